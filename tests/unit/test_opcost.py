"""The op-cost table the search steers by: a function of op shapes and dtypes only (no clock)."""

from __future__ import annotations

from devices.opcost import OpCost, estimated_us


def _op(op: str, flops: int, params: int, acts: int, dtype: str) -> OpCost:
    return OpCost(0, op, flops // 2, flops, params, acts, (1, 8), dtype)


def test_int8_work_costs_less_than_the_same_float_work_and_more_work_costs_more():
    float_fc = [_op("FULLY_CONNECTED", 200_000, 40_000, 1_000, "FLOAT32")]
    int8_fc = [_op("FULLY_CONNECTED", 200_000, 10_000, 250, "INT8")]
    wider = [_op("FULLY_CONNECTED", 400_000, 20_000, 500, "INT8")]
    assert estimated_us(int8_fc) < estimated_us(float_fc)
    assert estimated_us(int8_fc) < estimated_us(wider)
    assert estimated_us(int8_fc) == estimated_us(list(int8_fc))  # a pure function of the table


def test_an_embedding_lookup_costs_the_rows_it_reads_not_the_whole_table():
    small = estimated_us([_op("GATHER", 0, 4_000, 512, "FLOAT32")])
    huge_table = estimated_us([_op("GATHER", 0, 4_000_000, 512, "FLOAT32")])
    assert small == huge_table
    assert estimated_us([_op("ADD", 0, 4_000_000, 512, "FLOAT32")]) > small
