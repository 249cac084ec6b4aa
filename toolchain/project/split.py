"""Split labelled queries into train/val/test so that no test phrasing is also a training phrasing.

A random split of templated or logged queries puts "track order 1234" in train and "track order 98" in test,
and "return my jacket" in train and "return my lamp" in test: the test score then measures memory, not how
the model does on wordings it has not seen. So queries are grouped first and whole groups go to one split:

- the **skeleton** of a query is its tokens as the phone splits them (toolchain.data.split_words), with
  apostrophes dropped ("wheres" = "where's") and every number masked as `#` (a token holding a digit, or
  an English number word: "3 star hotel" = "three star hotel");
- two queries of one label are in one group when their skeletons are equal or differ in exactly one word
  (same length: "return my jacket" ~ "return my lamp"), and groups chain through such pairs (union-find).
  Near-duplicates of another label stay apart: they are different examples, not the same phrasing.

Then, per label, groups are put in a seeded order (sha256 of seed, label and the group's least skeleton, so
the input file's order does not matter) and the held-out splits take groups in that order while they fit
their share (test first, then val); when none fits, the smallest group, so each split gets at least one and
overshoots by at most the smallest group. The rest is train. When near-duplicate chaining leaves a label
too few groups for that (train would lose more than TOLERANCE of its share, or a split would get nothing),
the label is grouped by exact skeletons instead and the summary says so. Fewer than 3 exact groups is an
error: some split would have no new phrasing of that label.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from toolchain.base.errors import DataError
from toolchain.data import split_words

SPLITS = ("train", "val", "test")
TOLERANCE = 0.15  # how far below its share train may fall before near-duplicate grouping is given up
MASK = "_"


# fmt: off
NUMBER_WORDS = frozenset((
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "thirty",
    "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "thousand", "million",
))
# fmt: on


def skeleton(text: str) -> tuple[str, ...]:
    """The phrasing of a query: tokenizer words, apostrophes dropped, numbers (digits or words) as '#'."""
    words = (w.replace("'", "") for w in split_words(text))
    return tuple("#" if w in NUMBER_WORDS or any(c.isdigit() for c in w) else w for w in words if w)


def near_keys(skel: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The skeleton with each one word masked: queries sharing a key differ in at most that word."""
    if len(skel) < 2:
        return []
    return [skel[:i] + (MASK,) + skel[i + 1 :] for i in range(len(skel))]


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def group_queries(texts: Sequence[str], near: bool = True) -> list[list[int]]:
    """Groups of indices into `texts` (one label's): equal skeletons, and with `near` one-word variants."""
    skels = [skeleton(t) for t in texts]
    uf = _UnionFind(len(texts))
    owner: dict[tuple[str, ...], int] = {}
    for i, s in enumerate(skels):
        for key in [s, *(near_keys(s) if near else [])]:
            if key in owner:
                uf.union(owner[key], i)
            else:
                owner[key] = i
    groups: dict[int, list[int]] = {}
    for i in range(len(texts)):
        groups.setdefault(uf.find(i), []).append(i)
    return list(groups.values())


def _order_key(seed: int, label: str, first: str) -> str:
    return hashlib.sha256(f"{seed}\0{label}\0{first}".encode()).hexdigest()


def _assign(sizes: list[int], shares: dict[str, float]) -> dict[str, list[int]]:
    """Group positions (already in seeded order) per split; see the module docstring."""
    total = sum(sizes)
    remaining = list(range(len(sizes)))
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    for split, reserve in (("test", 2), ("val", 1)):  # leave a group for val and for train
        need, taken = shares[split] * total, 0
        while len(remaining) > reserve and taken < need:
            fit = next((g for g in remaining if sizes[g] <= need - taken), None)
            if fit is None:
                if taken:
                    break
                fit = min(remaining, key=lambda g: sizes[g])
            out[split].append(fit)
            remaining.remove(fit)
            taken += sizes[fit]
    out["train"] = remaining
    return out


@dataclass(frozen=True)
class LabelSplit:
    counts: dict[str, int]
    groups: int
    grouping: str  # "near" or "exact"


@dataclass(frozen=True)
class Split:
    """Indices into the input per split, and what the grouping did per label."""

    indices: dict[str, list[int]]
    labels: dict[str, LabelSplit]
    leaks: dict[str, int] = field(default_factory=dict)


def _split_label(
    label: str, texts: list[str], shares: dict[str, float], seed: int
) -> tuple[dict[str, list[int]], LabelSplit]:
    train_share = 1.0 - shares["val"] - shares["test"]
    for grouping in ("near", "exact"):
        groups = group_queries(texts, near=grouping == "near")
        groups.sort(key=lambda g: _order_key(seed, label, min(" ".join(skeleton(texts[i])) for i in g)))
        parts = _assign([len(g) for g in groups], shares)
        picked = {s: sorted(i for g in parts[s] for i in groups[g]) for s in SPLITS}
        counts = {s: len(picked[s]) for s in SPLITS}
        balanced = counts["train"] >= (train_share - TOLERANCE) * len(texts) or grouping == "exact"
        if all(counts.values()) and balanced:
            return picked, LabelSplit(counts, len(groups), grouping)
    raise DataError(
        f"label '{label}': only {len(groups)} distinct phrasing(s) among its {len(texts)} queries (numbers "
        "aside); train, val and test each need wordings the others do not have",
        hint=f"add differently worded queries for '{label}', or merge it into another label",
    )


def count_leaks(texts: Sequence[str], labels: Sequence[str], indices: dict[str, list[int]]) -> dict[str, int]:
    """Held-out queries whose skeleton is in train (any label), or a one-word variant of it (same label)."""
    exact = {skeleton(texts[i]) for i in indices["train"]}
    near = {(labels[i], k) for i in indices["train"] for k in near_keys(skeleton(texts[i]))}
    leaks = {"exact": 0, "near": 0}
    for split in ("val", "test"):
        for i in indices[split]:
            s = skeleton(texts[i])
            if s in exact:
                leaks["exact"] += 1
            elif any((labels[i], k) in near for k in near_keys(s)):
                leaks["near"] += 1
    return leaks


def split_queries(
    texts: Sequence[str],
    labels: Sequence[str],
    val_share: float = 0.1,
    test_share: float = 0.1,
    seed: int = 0,
) -> Split:
    """Stratified, grouped, deterministic train/val/test split (module docstring); indices into `texts`."""
    if not (0 < val_share < 1 and 0 < test_share < 1 and val_share + test_share < 0.9):
        raise DataError(
            f"val share {val_share}, test share {test_share}: each must be in (0, 1), leaving train >= 10%",
            hint="e.g. --val-share 0.1 --test-share 0.1",
        )
    shares = {"val": val_share, "test": test_share}
    by_label: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_label.setdefault(lab, []).append(i)
    indices: dict[str, list[int]] = {s: [] for s in SPLITS}
    per_label: dict[str, LabelSplit] = {}
    for label in sorted(by_label):
        members = by_label[label]
        picked, info = _split_label(label, [texts[i] for i in members], shares, seed)
        for s in SPLITS:
            indices[s].extend(members[j] for j in picked[s])
        per_label[label] = info
    indices = {s: sorted(v) for s, v in indices.items()}
    return Split(indices, per_label, count_leaks(texts, labels, indices))
