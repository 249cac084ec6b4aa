"""The int4 search's kernel cost cap (toolchain/quantization/kernel_cost.py, `int4.max_kernel_cost`): a
plan's FULLY_CONNECTED time from the runtime's fixed table (devices/kernels.py), blockwise weights moved to
per channel or larger blocks, the least extra damage per time saved first, until the plan is no slower
than dynamic int8. The damages here are a small table; the search on real models runs in
tests/e2e/test_int4.py and benchmarks/bench_minilm_classifier.py, the block sizes on a real quantized
layer in test_int4_gptq.py."""

from __future__ import annotations

import pytest

from converters.int4 import WeightSite
from devices.kernels import FC_KERNEL_COST
from toolchain.base.errors import GateFailed
from toolchain.base.types import WeightWidth as W
from toolchain.quantization.kernel_cost import cap_plan, fc_costs, plan_cost

COSTS = FC_KERNEL_COST["litert"]
OPS = {"q": "FULLY_CONNECTED", "ffn": "FULLY_CONNECTED", "out": "FULLY_CONNECTED", "table": "GATHER"}
PARAMS = {"q": 100, "ffn": 400, "out": 400, "table": 10_000}
BY_WIDTH = {  # damage alone per form
    "q": {W.INT4: 4e-4, W.INT4_BLOCK128: 3e-4, W.INT4_BLOCK32: 1e-4},
    "ffn": {W.INT4: 9e-4, W.INT4_BLOCK128: 2e-4, W.INT4_BLOCK32: 1e-4},
    "out": {W.INT4: 5e-4, W.INT4_BLOCK128: 4e-4},
    "table": {W.INT4: 1e-3},
}


def test_the_table_says_what_the_profiler_measured_on_xnnpack() -> None:
    # per channel faster than dynamic's kernel, blockwise slower the smaller its blocks, float math slowest
    assert COSTS[W.INT4] < COSTS[W.INT8_HYBRID] <= COSTS[W.INT4_BLOCK128]
    assert COSTS[W.INT4_BLOCK128] < COSTS[W.INT4_BLOCK64] < COSTS[W.INT4_BLOCK32] < COSTS[W.INT8]
    assert fc_costs(["x86-host", "android-arm64-litert"]) == COSTS


def test_a_device_without_a_measured_runtime_is_named() -> None:
    with pytest.raises(GateFailed, match="edge-arm64-tflite214 .tflite-runtime 2.14.0"):
        fc_costs(["edge-arm64-tflite214"])


def test_the_plan_cost_weighs_each_fully_connected_weight_by_its_size_and_skips_tables() -> None:
    plan = {"q": W.INT4_BLOCK32, "ffn": W.INT4, "out": W.INT8_HYBRID, "table": W.INT4}
    want = (100 * 1.36 + 400 * 0.95 + 400 * 1.0) / 900
    assert plan_cost(plan, OPS, PARAMS, COSTS) == pytest.approx(want)


def test_blockwise_weights_go_per_channel_least_damage_per_time_first_until_the_cap_holds() -> None:
    plan = {"q": W.INT4_BLOCK32, "ffn": W.INT4_BLOCK32, "out": W.INT4_BLOCK128, "table": W.INT4}
    assert plan_cost(plan, OPS, PARAMS, COSTS) > 1.0
    capped = cap_plan(plan, BY_WIDTH, OPS, PARAMS, COSTS, 1.0)
    assert plan_cost(capped, OPS, PARAMS, COSTS) <= 1.0
    # cost 1.2; ffn block32 -> 128 adds 1e-4 damage for 144 units of time saved (the cheapest move): 1.04;
    # out -> per channel 1e-4 for 20 (5e-6 a unit) before q -> block128 2e-4 for 36 (5.6e-6): 1.018; then
    # q -> block128: 0.978. The table is never touched.
    assert capped == {"q": W.INT4_BLOCK128, "ffn": W.INT4_BLOCK128, "out": W.INT4, "table": W.INT4}
    assert cap_plan(capped, BY_WIDTH, OPS, PARAMS, COSTS, 1.0) == capped  # holds: nothing moves
    fast = cap_plan(plan, BY_WIDTH, OPS, PARAMS, COSTS, 0.95)  # only per channel is that fast
    assert all(fast[w] == W.INT4 for w in ("q", "ffn", "out"))


def test_8_bit_weights_stay_and_a_cap_that_cannot_hold_stops_at_the_cheapest_forms() -> None:
    plan = {"q": W.INT4_BLOCK32, "ffn": W.INT8, "out": W.INT4, "table": W.INT8}
    capped = cap_plan(plan, BY_WIDTH, OPS, PARAMS, COSTS, 1.0)  # ffn in float math: 3.9
    assert capped == {**plan, "q": W.INT4}
    assert plan_cost(capped, OPS, PARAMS, COSTS) > 1.0


def test_the_block_sizes_a_fully_connected_weight_can_take() -> None:
    fc = WeightSite("w", "FULLY_CONNECTED", 0, "y;", 384 * 16, False, 384)
    assert fc.widths(True, (32,)) == (W.INT4, W.INT4_BLOCK32)  # the default: as before
    assert fc.widths(True, (32, 64, 128)) == (W.INT4, W.INT4_BLOCK128, W.INT4_BLOCK64, W.INT4_BLOCK32)
    assert fc.widths(False, (128,)) == (W.INT4,)
    small = WeightSite("v", "FULLY_CONNECTED", 0, "z;", 96 * 16, False, 96)  # 96: no whole 64 or 128 block
    assert small.widths(True, (32, 64, 128)) == (W.INT4, W.INT4_BLOCK32)
    assert fc.takes(W.INT4_BLOCK128) and not small.takes(W.INT4_BLOCK128)
