"""A calibration sample stratified by label and by query length, in an order whose prefixes stay stratified.

A plain random draw of 300 from a file of 3000 queries can leave a rare intent with one query or none, and
the longest queries (the ones that fill every position and push activation ranges out) are a tail that a
random draw under-samples by chance. Here each (label, length bucket) stratum gets its proportional share
(largest-remainder rounding, at least one query per stratum when the sample is larger than the number of
strata); length buckets are the quartiles of the word count over the usable queries (duplicate edges
merged, so a file of equal-length queries is one bucket). Within a stratum the queries are a seeded
random choice.

The draw is returned interleaved: the j-th of a stratum's k queries sits at (j + 0.5) / k, so every prefix
of the sample is itself close to stratified. toolchain/quantization/calibration.py calibrates on growing
prefixes to
see whether activation ranges have settled; prefixes of a draw sorted by file position would instead be
whatever the file starts with (often a single intent).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from toolchain.report.quantization import CalibrationDraw, LabelSpread, LengthBucket

LENGTH_QUANTILES = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class Draw:
    """Indices into the pool (interleaved order) and what was drawn, for the report."""

    indices: list[int]
    report: CalibrationDraw


def length_buckets(lengths: Sequence[int]) -> np.ndarray:
    """Bucket number per query: word count at or below the first quartile edge is 0, and so on."""
    values = np.asarray(lengths, dtype=np.float64)
    if not len(values):
        return np.zeros(0, dtype=np.int64)
    edges = np.unique(np.quantile(values, LENGTH_QUANTILES))
    edges = edges[edges < values.max()]  # an edge at the maximum would leave the last bucket empty
    raw = np.searchsorted(edges, values, side="left")
    return np.unique(raw, return_inverse=True)[1].astype(np.int64).reshape(-1)  # empty buckets dropped


def _allocate(sizes: np.ndarray, n: int) -> np.ndarray:
    """Per-stratum counts summing to n: one each when n allows, the rest by largest remainder."""
    base = (sizes > 0).astype(np.int64) if n >= int((sizes > 0).sum()) else np.zeros_like(sizes)
    room = sizes - base
    rest = n - int(base.sum())
    if rest <= 0 or not room.sum():
        return base
    quota = rest * room / room.sum()
    counts = np.floor(quota).astype(np.int64)
    left = rest - int(counts.sum())
    order = np.lexsort((np.arange(len(sizes)), -(quota - counts)))  # largest remainder, then stratum order
    counts[order[:left]] += 1
    return base + counts


def stratified_draw(labels: Sequence[str] | None, lengths: Sequence[int], n: int, seed: int) -> Draw:
    """`n` pool indices (all of them when the pool is smaller), stratified and interleaved; deterministic."""
    total = len(lengths)
    n = min(n, total)
    buckets = length_buckets(lengths)
    keys = [("" if labels is None else labels[i], int(buckets[i])) for i in range(total)]
    members: dict[tuple[str, int], list[int]] = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    strata = sorted(members)
    counts = _allocate(np.array([len(members[s]) for s in strata], dtype=np.int64), n)
    rng = np.random.default_rng(seed)
    placed: list[tuple[float, int, int]] = []
    for si, (stratum, k) in enumerate(zip(strata, counts, strict=True)):
        picks = rng.permutation(len(members[stratum]))[:k]
        placed += [((j + 0.5) / k, si, members[stratum][int(p)]) for j, p in enumerate(picks)]
    indices = [i for _, _, i in sorted(placed)]
    return Draw(indices, _report(labels, lengths, buckets, indices, total))


def _report(
    labels: Sequence[str] | None, lengths: Sequence[int], buckets: np.ndarray, drawn: list[int], total: int
) -> CalibrationDraw:
    spread = None
    if labels is not None:
        per = {lab: 0 for lab in sorted(set(labels))}
        for i in drawn:
            per[labels[i]] += 1
        spread = LabelSpread(count=len(per), per_label_min=min(per.values()), per_label_max=max(per.values()))
    words = np.asarray(lengths, dtype=np.int64)
    taken = np.bincount(buckets[drawn], minlength=int(buckets.max()) + 1) if total else np.zeros(0)
    length_buckets = [
        LengthBucket(
            words=(int(words[buckets == b].min()), int(words[buckets == b].max())),
            available=int((buckets == b).sum()),
            drawn=int(taken[b]),
        )
        for b in range(len(taken))
    ]
    report = CalibrationDraw(
        method="stratified",
        by=["label", "length"] if labels is not None else ["length"],
        drawn=len(drawn),
        available=total,
        length_buckets=length_buckets,
    )
    if spread is not None:
        report.labels = spread
    return report
