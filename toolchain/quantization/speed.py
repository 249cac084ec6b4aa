"""Which ops without multiply-accumulates run faster in float than in int8, measured on this host.

Elementwise and normalisation ops (ADD, MUL, SQUARED_DIFFERENCE, RSQRT, MEAN, EXP, SOFTMAX, ...) carry no
MACs, so keeping them in float costs nothing in the int8 share of the work, but their int8 kernels rescale
every element and can be several times slower than XNNPACK's float ones (a 2-layer BERT measured here:
full int8 0.29-0.48 ms, the same model with those ops in float 0.06-0.09 ms). So their precision is chosen
by speed, per op type, from whole-model invokes of the two plans timed in alternation (the median of many
short rounds, so that another job on the machine slows both alike). The choice is a measurement, not a
guess, and it is recorded: the saved recipe rebuilds the same bytes without timing anything again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from toolchain.base.types import Precision
from toolchain.report.quantization import SpeedRow

ROUNDS = 15
INVOKES = 20
MIN_GAIN = 0.03  # a plan must be at least 3% faster to count as faster


@dataclass(frozen=True)
class SpeedChoice:
    op: str
    count: int
    int8_us: float
    float_us: float
    precision: Precision

    def row(self) -> SpeedRow:
        """The report's `quantization.mixed.speed_by_op_type` row."""
        return SpeedRow(
            op=self.op,
            count=self.count,
            int8_us=round(self.int8_us, 2),
            float_us=round(self.float_us, 2),
            precision=self.precision,
        )


def _interpreter(model: bytes, feeds: Mapping[str, np.ndarray]):
    from devices.hostrun import HostRunner

    runner = HostRunner(model, threads=1)
    runner.run({k: np.asarray(v)[:1] for k, v in feeds.items()})  # sets the inputs, warms the kernels
    return runner.interpreter


def paired_rounds(models: Sequence[bytes], feeds: Mapping[str, np.ndarray]) -> np.ndarray:
    """Mean whole-invoke time (µs) per round (rows) of each model (columns), rounds alternating, 1 thread."""
    its = [_interpreter(m, feeds) for m in models]
    samples: list[list[float]] = [[] for _ in its]
    for _ in range(ROUNDS):
        for i, it in enumerate(its):
            t0 = time.perf_counter()
            for _ in range(INVOKES):
                it.invoke()
            samples[i].append((time.perf_counter() - t0) / INVOKES * 1e6)
    return np.array(samples).T


def choose_by_speed(
    quantize: Callable[[set[str]], bytes],
    groups: Mapping[str, list[str]],
    base_float: set[str],
    feeds: Mapping[str, np.ndarray],
) -> tuple[set[str], list[SpeedChoice]]:
    """Float nodes after deciding each op type in `groups` ({op type: node names}) by speed.

    Starts from every group in float (usually the fastest plan), then tries each type back in int8 and
    keeps it there if that is not slower; `base_float` nodes stay float throughout.
    """
    float_nodes = set(base_float) | {n for names in groups.values() for n in names}
    choices = []
    for op, names in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        trial = float_nodes - set(names)
        rounds = paired_rounds([quantize(float_nodes), quantize(trial)], feeds)
        as_float, as_int8 = (float(v) for v in np.median(rounds, axis=0))
        # decided on the median of per-round ratios: a load spike slows both plans of a round alike
        keep_int8 = float(np.median(rounds[:, 1] / rounds[:, 0])) <= 1 + MIN_GAIN
        if keep_int8:
            float_nodes = trial
        precision = Precision.INT8 if keep_int8 else Precision.FLOAT
        choices.append(SpeedChoice(op, len(names), as_int8, as_float, precision))
    return float_nodes, choices
