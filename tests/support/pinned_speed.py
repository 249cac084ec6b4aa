"""The mixed search's speed step with its choice pinned, so that a test of what comes after it (the error
repair, the saved plan, validate, profile, package) needs no quiet machine and runs in a test worker.

`pinned_speed()` still times every op type, int8 against float, with the real `choose_by_speed` in the
search's runtime child (the report's speed rows are measured, in fewer and shorter rounds than the search
takes, since nothing reads them), then keeps every op type without multiply-accumulates in float,
whatever was faster this time: the plan the search starts from, and the one the elementwise kernels
usually win (toolchain/quantization/speed.py). So the model's bytes no longer depend on another job on
the machine, and the test needs no `serial` mark (tests/support/heavy.py records only the unpinned
choice). The tests that check the choice by speed itself stay serial (test_mixed's Keras replay,
test_task_behaviour's retrieval build).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import pytest

import toolchain.quantization.mixed as mixed
from toolchain.base.types import Precision
from toolchain.quantization import speed

PINNED_ROUNDS, PINNED_INVOKES = 3, 5


def _pinned(quantize, groups, base_float, feeds, host=None, advance=None):
    measure = getattr(speed.choose_by_speed, "__wrapped__", speed.choose_by_speed)  # not recorded as TIMED
    _, measured = measure(quantize, groups, base_float, feeds, host, advance)
    float_nodes = set(base_float) | {n for names in groups.values() for n in names}
    return float_nodes, [dataclasses.replace(c, precision=Precision.FLOAT) for c in measured]


@contextlib.contextmanager
def pinned_speed() -> Iterator[None]:
    """Inside: every mixed search keeps its MAC-free op types in float (timed, but not chosen by speed)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mixed, "choose_by_speed", _pinned)
        # the choice no longer reads the times: fewer, shorter rounds (the search's: 15 of 20 invokes)
        patch.setattr(speed, "ROUNDS", PINNED_ROUNDS)
        patch.setattr(speed, "INVOKES", PINNED_INVOKES)
        yield
