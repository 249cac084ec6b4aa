"""The grouped, stratified train/val/test split of `edgecomp data` (toolchain/project/split.py)."""

import random
from collections import Counter

import pytest

from tests.support.travel_queries import travel_queries
from toolchain.base.errors import DataError
from toolchain.project.split import count_leaks, group_queries, near_keys, skeleton, split_queries


def _travel(per_intent: int = 60, seed: int = 7) -> tuple[list[str], list[str]]:
    rows = travel_queries(per_intent, seed)
    return [r["query"] for r in rows], [r["label"] for r in rows]


def _texts(texts: list[str], split, name: str) -> set[str]:
    return {texts[i] for i in split.indices[name]}


def test_skeleton_masks_numbers_case_punctuation_and_apostrophes():
    assert skeleton("Where's order #12345?") == ("wheres", "order", "#")
    assert skeleton("wheres ORDER 9") == skeleton("Where's order 12345")
    assert skeleton("flight LH400 status") == ("flight", "#", "status")
    assert skeleton("Three star hotel") == skeleton("3 star hotel") == ("#", "star", "hotel")
    assert near_keys(("a", "b")) == [("_", "b"), ("a", "_")] and near_keys(("a",)) == []


def test_one_word_variants_chain_into_one_group_two_word_variants_do_not():
    texts = ["return my jacket", "return my lamp", "return the lamp", "send back my red shoes", "refund 12"]
    groups = sorted(sorted(g) for g in group_queries(texts))
    assert groups == [[0, 1, 2], [3], [4]]  # jacket ~ lamp (one word), my lamp ~ the lamp (one word)
    assert sorted(sorted(g) for g in group_queries(["cheap red shoes", "cheap blue jacket"])) == [[0], [1]]
    assert len(group_queries(texts, near=False)) == 5


def test_split_is_deterministic_and_independent_of_the_file_order():
    texts, labels = _travel()
    a = split_queries(texts, labels, seed=3)
    assert split_queries(texts, labels, seed=3) == a
    order = list(range(len(texts)))
    random.Random(0).shuffle(order)
    shuffled = split_queries([texts[i] for i in order], [labels[i] for i in order], seed=3)
    for name in ("train", "val", "test"):
        assert _texts([texts[i] for i in order], shuffled, name) == _texts(texts, a, name)
    other = split_queries(texts, labels, seed=4)
    assert _texts(texts, other, "test") != _texts(texts, a, "test")


def test_every_label_is_in_every_split_near_its_share():
    texts, labels = _travel(per_intent=80)
    split = split_queries(texts, labels, val_share=0.15, test_share=0.15)
    assert sorted(i for s in split.indices.values() for i in s) == list(range(len(texts)))
    for label, info in split.labels.items():
        total = sum(info.counts.values())
        assert info.grouping == "near" and info.groups >= 3
        for name in ("val", "test"):
            assert 0 < info.counts[name] <= 0.15 * total + 12  # over by at most one group
        assert info.counts["train"] >= 0.55 * total
        got = Counter(labels[i] for i in split.indices["test"])[label]
        assert got == info.counts["test"]


def test_no_test_or_val_phrasing_is_in_train():
    texts, labels = _travel()
    split = split_queries(texts, labels)
    assert split.leaks == {"exact": 0, "near": 0}
    train = {skeleton(texts[i]) for i in split.indices["train"]}
    train_near = {(labels[i], k) for i in split.indices["train"] for k in near_keys(skeleton(texts[i]))}
    for i in split.indices["test"] + split.indices["val"]:
        assert skeleton(texts[i]) not in train
        assert not any((labels[i], k) in train_near for k in near_keys(skeleton(texts[i])))
    # a plain random split of the same queries leaks plenty: the check is not vacuous
    rng = random.Random(0)
    order = rng.sample(range(len(texts)), len(texts))
    naive = {"train": order[:288], "val": order[288:324], "test": order[324:]}
    assert sum(count_leaks(texts, labels, naive).values()) > 10


def test_a_label_that_chains_into_one_group_falls_back_to_exact_phrasings():
    items = ["shoes", "lamp", "desk", "sofa", "rug", "bed", "tv", "fan", "mug", "pen", "cup", "hat"]
    texts = [f"buy {x}" for x in items] + [f"weather in city {i}" for i in range(3)]
    texts += ["will it rain", "is it sunny today", "forecast please", "how cold is it", "umbrella needed",
              "temperature outside", "snow tomorrow", "wind speed", "humidity now"]  # fmt: skip
    labels = ["shop"] * len(items) + ["weather"] * 12
    split = split_queries(texts, labels, val_share=0.2, test_share=0.2)
    assert split.labels["shop"].grouping == "exact" and split.labels["shop"].groups == 12
    assert split.labels["weather"].grouping == "near"
    assert split.leaks["exact"] == 0 and split.leaks["near"] > 0  # the fallback is reported, not hidden


def test_too_few_phrasings_and_bad_shares_are_one_line_errors():
    texts = [f"order {i}" for i in range(20)] + [f"q{i} x" for i in range(10)] + ["a b c", "d e f", "g h i"]
    labels = ["status"] * 20 + ["other"] * 13
    with pytest.raises(DataError, match=r"label 'status': only 1 distinct phrasing") as err:
        split_queries(texts, labels)
    assert "add differently worded queries for 'status'" in err.value.hint
    with pytest.raises(DataError, match="leaving train >= 10%"):
        split_queries(texts, labels, val_share=0.5, test_share=0.45)
