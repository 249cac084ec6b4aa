"""Calibration draws stratified by label and length (toolchain/quantization/stratify.py via
data.representative_sample)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from toolchain import data as d
from toolchain.base.errors import DataError
from toolchain.quantization.stratify import length_buckets, stratified_draw


def _file(tmp_path, rows: list[tuple[str, str]], name: str = "cal.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps({"text": t, "intent": lab}) + "\n" for t, lab in rows))
    return d.load_queries(path)


def _sorted_by_label(counts: dict[str, int]) -> list[tuple[str, str]]:
    """A file grouped by label (as exports often are), lengths 1..8 words cycling within each label."""
    rows = []
    for lab, n in counts.items():
        rows += [(" ".join([lab] * (1 + i % 8)), lab) for i in range(n)]
    return rows


def test_rare_label_and_long_queries_are_drawn_in_proportion(tmp_path):
    qs = _file(tmp_path, _sorted_by_label({"common": 500, "mid": 100, "rare": 4}))
    sample = d.representative_sample(qs, samples=30, minimum=10, seed=0)
    labels = Counter(t.split()[0] for t in sample.texts)
    # 30 of 604: a proportional share of 0.2 for `rare`, which a plain random draw misses 4 times in 5;
    # each (label, length bucket) stratum gets one, the rest goes by size
    assert labels["rare"] >= 1 and labels["common"] >= 18 and labels["mid"] >= 4, labels
    words = Counter(min(len(t.split()), 8) for t in sample.texts)
    assert set(words) == set(range(1, 9)) or len(words) >= 6  # every length bucket is present
    drawn = sample.drawn.to_json()
    assert drawn["by"] == ["label", "length"] and drawn["drawn"] == 30 and drawn["available"] == 604
    assert drawn["labels"] == {
        "count": 3,
        "per_label_min": labels["rare"],
        "per_label_max": labels["common"],
    }
    buckets = drawn["length_buckets"]
    assert len(buckets) == 4 and sum(b["drawn"] for b in buckets) == 30
    assert buckets[0]["words"][0] == 1 and buckets[-1]["words"][1] == 8
    assert sum(b["available"] for b in buckets) == 604


def test_every_prefix_is_stratified(tmp_path):
    """A file grouped by label: the first quarter of the draw still holds every label and short and long
    queries (prefixes are what toolchain/quantization/calibration.py calibrates on)."""
    qs = _file(tmp_path, _sorted_by_label({"a": 200, "b": 200, "c": 200}))
    texts = d.representative_sample(qs, samples=60, minimum=10, seed=3).texts
    first = texts[:15]
    assert {t.split()[0] for t in first} == {"a", "b", "c"}
    lengths = [len(t.split()) for t in first]
    assert min(lengths) <= 2 and max(lengths) >= 7
    half = Counter(t.split()[0] for t in texts[:30])
    assert all(abs(n - 10) <= 2 for n in half.values()), half


def test_draw_is_deterministic_and_takes_all_when_short(tmp_path):
    qs = _file(tmp_path, _sorted_by_label({"a": 40, "b": 10}))
    a = d.representative_sample(qs, samples=20, minimum=5, seed=7)
    b = d.representative_sample(qs, samples=20, minimum=5, seed=7)
    c = d.representative_sample(qs, samples=20, minimum=5, seed=8)
    assert a == b and a.texts != c.texts
    everything = d.representative_sample(qs, samples=500, minimum=5, seed=7)
    assert sorted(everything.texts) == sorted(qs.texts)
    assert "asked for 500 queries" in everything.warnings[0] and everything.drawn.drawn == 50
    texts, warnings = d.representative_texts(qs, 20, 5, 7)  # the old signature still answers
    assert texts == a.texts and warnings == []
    with pytest.raises(DataError, match="too little calibration data: 50 usable"):
        d.representative_sample(qs, samples=500, minimum=51, seed=7)


def test_unlabelled_equal_length_file_is_one_stratum(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps({"text": f"red shoes {i}"}) + "\n" for i in range(50)))
    sample = d.representative_sample(d.load_queries(path), samples=10, minimum=5, seed=1)
    assert len(set(sample.texts)) == 10
    assert sample.drawn.by == ["length"] and "labels" not in sample.drawn.to_json()
    assert sample.drawn.to_json()["length_buckets"] == [{"words": [3, 3], "available": 50, "drawn": 10}]


def test_length_buckets_skip_empty_ranges():
    # quartile edges 1, 5.5 and 10 with nothing between 2 and 9 words: two buckets, numbered 0 and 1
    assert length_buckets([1, 1, 1, 10, 10, 10]).tolist() == [0, 0, 0, 1, 1, 1]
    draw = stratified_draw(None, [1, 1, 1, 10, 10, 10], 2, seed=0)
    assert sorted(draw.indices[:1] + draw.indices[1:]) == sorted(draw.indices)
    assert {i < 3 for i in draw.indices} == {True, False}  # one short, one long
