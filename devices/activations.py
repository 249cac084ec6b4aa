"""Percentile ranges of a float model's activations, from every intermediate tensor on real queries.

Min/max calibration lets one outlier set an activation's int8 step; a percentile range (0.01 to 99.99 by
default) clips that tail instead. Here the calibrated (float) model runs in the host's ai_edge_litert with
`experimental_preserve_all_tensors` and builtin kernels only (an XNNPACK-delegated graph does not keep its
intermediate tensors), one invoke per row, and each chosen tensor's percentiles come out exact, equal to
`np.percentile` (linear interpolation) over every value of every row: the static shapes fix how many
values there will be, so only the few smallest and largest values that the interpolation can touch are
kept while the rows stream past, not the whole activation (about 300 rows x 150 tensors x 16k values for
a small BERT). `limit` leaves out values beyond +-limit first: 1e30 looks past the -3.4e38 that masked
attention adds, so the range describes the real scores instead of the mask constant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from devices.hostrun import match_feeds
from toolchain.base.errors import DataError
from toolchain.base.progress import Progress, SilentProgress
from toolchain.base.quiet import native_output_silenced

Range = tuple[float, float]


@dataclass
class _Tails:
    """The k smallest and k largest values seen so far of one tensor, and how many values counted."""

    k_low: int
    k_high: int
    low: np.ndarray
    high: np.ndarray
    count: int = 0

    def add(self, values: np.ndarray) -> None:
        self.count += values.size
        low = np.concatenate([self.low, values])
        self.low = low if low.size <= self.k_low else np.partition(low, self.k_low - 1)[: self.k_low]
        high = np.concatenate([self.high, values])
        cut = high.size - self.k_high
        self.high = high if cut <= 0 else np.partition(high, cut)[cut:]

    def percentiles(self, lower: float, upper: float) -> Range | None:
        if not self.count:
            return None
        n = self.count
        low, high = np.sort(self.low), np.sort(self.high)
        return _at(low, lower / 100 * (n - 1)), _at(high, upper / 100 * (n - 1) - (n - high.size))


def _at(ordered: np.ndarray, pos: float) -> float:
    """np.percentile's linear interpolation at position `pos` of the sorted values `ordered`."""
    pos = min(max(pos, 0.0), ordered.size - 1.0)
    below = int(np.floor(pos))
    above = min(below + 1, ordered.size - 1)
    a, b = float(ordered[below]), float(ordered[above])
    return a + (pos - below) * (b - a) if a != b else a


def _tail_size(n: int, fraction: float) -> int:
    """Values to keep so that the interpolation at `fraction` from one end still has both neighbours."""
    return int(min(n, np.floor(fraction * (n - 1)) + 2))


def all_tensors_interpreter(model: bytes):
    """Host ai_edge_litert, builtin kernels only, every tensor kept, allocated (the range readers and the
    FC-input Hessians of devices/fc_inputs.py run it)."""
    from ai_edge_litert.interpreter import (  # reason: imported only when ranges are read
        Interpreter,
        OpResolverType,
    )

    with native_output_silenced():
        it = Interpreter(
            model_content=model,
            num_threads=1,
            experimental_preserve_all_tensors=True,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        it.allocate_tensors()
    return it


def percentile_ranges(
    model: bytes,
    feeds: Mapping[str, np.ndarray],
    tensors: Iterable[str],
    lower: float = 0.01,
    upper: float = 99.99,
    limit: float | None = None,
    progress: Progress | None = None,
) -> dict[str, Range]:
    """(lower, upper) percentiles of each named float tensor over all rows of `feeds` (fed by input name).

    A tensor whose values all lie beyond `limit` is left out of the answer. An unknown name is a DataError.
    """
    if not 0 <= lower < upper <= 100:
        raise DataError(f"percentiles must satisfy 0 <= lower < upper <= 100, got {lower} and {upper}")
    it = all_tensors_interpreter(model)
    details = {d["name"]: d for d in it.get_tensor_details()}
    names = list(dict.fromkeys(tensors))
    missing = [n for n in names if n not in details]
    if missing:
        raise DataError(
            f"{len(missing)} tensor(s) not in the model: {', '.join(missing[:3])}",
            hint="take names from converters.calibrated.activation_ranges(calibrated)",
        )
    inputs = it.get_input_details()
    named = match_feeds([d["name"] for d in inputs], feeds)
    rows = len(next(iter(named.values()))) if named else 0
    tails = {}
    for name in names:
        n = rows * int(np.prod(details[name]["shape"]))
        tails[name] = _Tails(
            _tail_size(n, lower / 100),
            _tail_size(n, 1 - upper / 100),
            np.zeros(0, np.float32),
            np.zeros(0, np.float32),
        )
    progress = progress or SilentProgress()
    with progress.task("percentile ranges (ai_edge_litert, all tensors kept)", rows) as advance:
        for i in range(rows):
            for d in inputs:
                it.set_tensor(d["index"], np.asarray(named[d["name"]][i])[None, ...].astype(d["dtype"]))
            it.invoke()
            for name in names:
                values = it.get_tensor(details[name]["index"]).astype(np.float32).ravel()
                tails[name].add(values if limit is None else values[np.abs(values) <= limit])
            advance(1)
    out = {}
    for name in names:
        found = tails[name].percentiles(lower, upper)
        if found is not None:
            out[name] = found
    return out


def channel_ranges(
    model: bytes, feeds: Mapping[str, np.ndarray], tensors: Iterable[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-channel (last axis) min and max of each named float tensor over all rows of `feeds`.

    Run as `percentile_ranges` is (host ai_edge_litert, builtin kernels, all tensors kept): the ranges that
    converters/equalize.py divides out of a fully connected layer's output channels.
    """
    it = all_tensors_interpreter(model)
    details = {d["name"]: d for d in it.get_tensor_details()}
    names = [n for n in dict.fromkeys(tensors) if n in details]
    inputs = it.get_input_details()
    named = match_feeds([d["name"] for d in inputs], feeds)
    rows = len(next(iter(named.values()))) if named else 0
    lo: dict[str, np.ndarray] = {}
    hi: dict[str, np.ndarray] = {}
    for i in range(rows):
        for d in inputs:
            it.set_tensor(d["index"], np.asarray(named[d["name"]][i])[None, ...].astype(d["dtype"]))
        it.invoke()
        for name in names:
            v = it.get_tensor(details[name]["index"]).astype(np.float32)
            v = v.reshape(-1, v.shape[-1])
            lo[name] = np.minimum(lo[name], v.min(0)) if name in lo else v.min(0)
            hi[name] = np.maximum(hi[name], v.max(0)) if name in hi else v.max(0)
    return {name: (lo[name], hi[name]) for name in lo}
