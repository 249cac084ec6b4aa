"""Which ops without multiply-accumulates run faster in float than in int8, measured on this host.

Elementwise and normalisation ops (ADD, MUL, SQUARED_DIFFERENCE, RSQRT, MEAN, EXP, SOFTMAX, ...) carry no
MACs, so keeping them in float costs nothing in the int8 share of the work, but their int8 kernels rescale
every element and can be several times slower than XNNPACK's float ones (a 2-layer BERT measured here:
full int8 0.29-0.48 ms, the same model with those ops in float 0.06-0.09 ms). So their precision is chosen
by speed, per op type, from whole-model invokes of the two plans timed in alternation (the median of many
short rounds, so that another job on the machine slows both alike). The choice is a measurement, not a
guess, and it is recorded: the saved recipe rebuilds the same bytes without timing anything again.

The timing loop runs inside the toolchain's runtime child (devices/hostrun.time_rounds: an
abort in LiteRT fails the build with a clean error instead of ending edgecomp), next to the interpreters:
the child returns the per-round means and only the medians and ratios are taken here, so no protocol round
trip is ever timed. Both plans are loaded, warmed by one query and left with its inputs set, exactly as
the in-process loop was; the mixed search passes its own child, so the speed table starts nothing new.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from devices.host_runtime import HostRuntime
from devices.hostrun import HostRunner, time_rounds
from toolchain.base.types import Precision
from toolchain.report.quantization import SpeedRow

ROUNDS = 15
INVOKES = 20
ROUND_BUDGET_US = 60_000  # a round's invokes per model stop near this (a real encoder: 7 invokes, not 20)
MIN_INVOKES = 2
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


def paired_rounds(
    models: Sequence[bytes],
    feeds: Mapping[str, np.ndarray],
    host: HostRuntime | None = None,
    names: Sequence[str] = (),
) -> np.ndarray:
    """Mean whole-invoke time (µs) per round (rows) of each model (columns), rounds alternating, 1 thread,
    timed in the runtime child (`host`, or one of its own); `names` say what the models are in errors."""
    first = {k: np.asarray(v)[:1] for k, v in feeds.items()}
    names = list(names) or [f"speed-table model {i + 1} of {len(models)}" for i in range(len(models))]
    with contextlib.ExitStack() as stack:
        host = host or stack.enter_context(HostRuntime())
        runners = [
            stack.enter_context(HostRunner(m, threads=1, name=name, host=host))
            for m, name in zip(models, names, strict=True)
        ]
        for runner in runners:
            runner.run(first)  # sets the inputs, warms the kernels
        one = float(time_rounds(runners, 1, 1).max())  # µs of the slowest plan's invoke
        invokes = max(MIN_INVOKES, min(INVOKES, int(ROUND_BUDGET_US / max(one, 1.0))))
        return time_rounds(runners, ROUNDS, invokes)


def all_float(groups: Mapping[str, list[str]], base_float: set[str]) -> set[str]:
    """Every node of every op type in `groups` in float, with the `base_float` nodes: the rule's plan
    (`quantization.mac_free_ops: float`) and the one `choose_by_speed` starts from."""
    return set(base_float) | {n for names in groups.values() for n in names}


def choose_by_speed(
    quantize: Callable[[set[str]], bytes],
    groups: Mapping[str, list[str]],
    base_float: set[str],
    feeds: Mapping[str, np.ndarray],
    host: HostRuntime | None = None,
    advance: Callable[[int], None] | None = None,
) -> tuple[set[str], list[SpeedChoice]]:
    """Float nodes after deciding each op type in `groups` ({op type: node names}) by speed.

    Starts from every group in float (usually the fastest plan), then tries each type back in int8 and
    keeps it there if that is at least MIN_GAIN faster; `base_float` nodes stay float throughout. `host`:
    the runtime child to time in (default: one started for this table); `advance(1)` after each op type.
    """
    float_nodes = all_float(groups, base_float)
    choices = []
    for op, names in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        trial = float_nodes - set(names)
        plans = [f"the mixed candidate with {op} in float", f"the mixed candidate with {op} in int8"]
        rounds = paired_rounds([quantize(float_nodes), quantize(trial)], feeds, host, plans)
        as_float, as_int8 = (float(v) for v in np.median(rounds, axis=0))
        # decided on the median of per-round ratios: a load spike slows both plans of a round alike
        # int8 only when clearly faster: a MAC-free op in int8 adds error and saves no MACs (float on a tie;
        # under load, 3-invoke rounds of a real encoder put int8 SOFTMAX and LayerNorm pieces within 3%)
        keep_int8 = float(np.median(rounds[:, 1] / rounds[:, 0])) <= 1 - MIN_GAIN
        if keep_int8:
            float_nodes = trial
        precision = Precision.INT8 if keep_int8 else Precision.FLOAT
        choices.append(SpeedChoice(op, len(names), as_int8, as_float, precision))
        if advance is not None:
            advance(1)
    return float_nodes, choices
