"""The int4 search's size budget (toolchain/quantization/int4_repair.py `greedy`, `trade_in_budget`;
`quantization.int4.max_bytes`): the repair moves the most damaging weights per byte back to 8 bits only
while the model fits, then trades within the budget by the measured result. The plans'
sizes and scores come from a small table here (the search with real models runs in tests/e2e/test_int4.py
and benchmarks/bench_minilm_classifier.py); what is checked is the order and the stopping rule."""

from __future__ import annotations

import pytest

from toolchain.base.errors import GateFailed
from toolchain.base.progress import SilentProgress
from toolchain.base.types import WeightWidth as W
from toolchain.quantization.int4_repair import greedy as _greedy
from toolchain.quantization.int4_repair import trade_in_budget
from toolchain.report.quantization import MixedMetrics

SITES = {"a": 100, "b": 100, "c": 400, "table": 1000}  # params
DAMAGE = {"a": 0.05, "b": 0.001, "c": 0.04, "table": 0.002}  # per value, worst first: a, c, b, table


class Table:
    """Size: one byte per 8-bit value, half per 4-bit one. Good enough when a and c are both in 8 bits."""

    def __init__(self, eight: W = W.INT8) -> None:
        self.eight = eight

    def size(self, plan: dict[str, W]) -> int:
        return sum(SITES[w] // (1 if plan[w] in (W.INT8, W.INT8_HYBRID) else 2) for w in plan)

    def metrics(self, plan: dict[str, W]) -> dict[str, W]:
        return plan

    def ok(self, plan: dict[str, W]) -> bool:
        return plan["a"] == self.eight and plan["c"] == self.eight


def _run(max_bytes: int | None, eight: W = W.INT8):
    four = {w: W.INT4 for w in SITES}
    base = {w: eight for w in SITES}
    return _greedy(Table(eight), SITES, DAMAGE, four, SilentProgress(), max_bytes, base)  # type: ignore[arg-type]


def test_without_a_budget_the_repair_goes_as_far_as_the_targets_need() -> None:
    plan, limited = _run(None)
    assert not limited and plan == {"a": W.INT8, "c": W.INT8, "table": W.INT4, "b": W.INT4}


def test_a_budget_stops_the_repair_at_the_longest_prefix_that_fits_and_says_so() -> None:
    # all 4 bits: 800 bytes; a in 8: 850; a and c: 1050 (the targets' plan); budget 900 allows only a
    plan, limited = _run(900)
    assert limited and plan == {"a": W.INT8, "c": W.INT4, "table": W.INT4, "b": W.INT4}
    plan, limited = _run(1050)  # exactly the targets' plan fits
    assert not limited and plan["c"] == W.INT8 and plan["table"] == W.INT4


def test_the_8_bit_width_is_the_one_given_and_a_budget_all_4_bit_misses_is_an_error() -> None:
    plan, _ = _run(None, W.INT8_HYBRID)
    assert plan["a"] == plan["c"] == W.INT8_HYBRID
    with pytest.raises(GateFailed, match="over the budget of 799"):
        _run(799)


def test_blockwise_only_when_it_cuts_the_damage_by_more_than_the_gain() -> None:
    from toolchain.quantization.int4 import _width

    d = {W.INT4: 3e-4, W.INT4_BLOCK32: 1e-4}
    assert _width(d, 1.0) == W.INT4_BLOCK32  # any cut (the default)
    assert _width(d, 2.0) == W.INT4_BLOCK32  # a 3x cut beats 2
    assert _width(d, 4.0) == W.INT4  # not a 4x cut: per channel, the faster kernel
    assert _width({W.INT4: 1e-4, W.INT4_BLOCK32: 1e-4}, 1.0) == W.INT4  # a tie: per channel


def test_the_repair_ranks_weights_by_the_damage_they_add_beyond_the_all_8_bit_plan() -> None:
    from toolchain.quantization.int4 import _marginal

    # every measurement includes the 8-bit plan's own 7e-4: a small weight adding nothing must not rank
    # worst per value (7e-4 / 100 > 1.2e-3 / 400 before, 0 < 5e-4 / 400 after)
    extra = _marginal({"small": 7e-4, "large": 1.2e-3}, 7e-4)
    assert extra == pytest.approx({"small": 0.0, "large": 5e-4})
    assert _marginal({"a": 1e-4}, -1e-6) == {"a": 1e-4}  # a floor below zero (cosine > 1 by rounding): none


class Joint:
    """Agreement that the weights' damage alone does not predict: `big` matters most together, while `small`
    has the most damage per value alone. One byte per 8-bit value, half per 4-bit one."""

    SITES = {"small": 100, "big": 400, "table": 1000}
    DAMAGE = {"small": 0.01, "big": 0.02, "table": 0.001}  # per value: small 1e-4 > big 5e-5 > table 1e-6
    count = 0

    def size(self, plan: dict[str, W]) -> int:
        return sum(self.SITES[w] // (1 if plan[w] == W.INT8 else 2) for w in plan)

    def metrics(self, plan: dict[str, W]) -> MixedMetrics:
        self.count += 1
        lost = 0.008 * (plan["big"] == W.INT4) + 0.001 * (plan["small"] == W.INT4)
        return MixedMetrics(mean_cosine=1 - lost / 10, agreement=round(0.995 - lost, 6))

    def ok(self, m: MixedMetrics) -> bool:
        return m.agreement is not None and m.agreement >= 0.99


def test_a_budget_limited_plan_is_traded_for_one_that_meets_the_targets_within_the_budget() -> None:
    ev, four = Joint(), {w: W.INT4 for w in Joint.SITES}
    eight = {w: W.INT8 for w in Joint.SITES}
    # all 4 bits 750 bytes; the order puts small first (800), small + big is 1000: the budget 960 stops it
    plan, limited = _greedy(ev, Joint.SITES, Joint.DAMAGE, four, SilentProgress(), 960, eight)  # type: ignore[arg-type]
    assert limited and plan == {"small": W.INT8, "big": W.INT4, "table": W.INT4}
    traded, kept = trade_in_budget(ev, plan, Joint.SITES, Joint.DAMAGE, four, eight, 960, SilentProgress())
    assert traded == {"small": W.INT4, "big": W.INT8, "table": W.INT4}  # big back, paid by small: 950 bytes
    assert kept == ["big <- small"]
    assert ev.size(traded) <= 960 and ev.ok(ev.metrics(traded))
    # a budget no trade fits in (big in 8 needs 950) leaves the plan as it was
    plan, limited = _greedy(ev, Joint.SITES, Joint.DAMAGE, four, SilentProgress(), 900, eight)  # type: ignore[arg-type]
    same = trade_in_budget(ev, plan, Joint.SITES, Joint.DAMAGE, four, eight, 900, SilentProgress())
    assert same == (plan, [])
