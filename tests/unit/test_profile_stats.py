"""devices/profiling/stats.py: the verdicts hold for the numbers as reported, not only before rounding."""

import numpy as np

from devices.profiling.stats import OpRow, _finish


def _op(t: float) -> OpRow:
    return OpRow(0, "ADD", "node", t, t, t, t, False, [t])


def test_an_invoke_equal_to_its_resolution_after_rounding_is_not_reported_as_measured():
    """1.0 (1.0004 rounded) > 0.9996 held before the resolution was rounded, and the report then said
    invoke 1.0 µs above a 1.0 µs resolution (a `make test -n 2` failure of
    test_litert_both_methods_map_every_node on a loaded machine)."""
    res = _finish("litert", "per-node", 1, 10, [_op(0.5)], [(1.0004, 0.9996)], 0.1)
    assert res.invoke_us is None and res.invoke_resolution_us == 1.0 and not res.resolved
    ok = _finish("litert", "per-node", 1, 10, [_op(0.5)], [(1.002, 1.0001)], 0.1)
    assert ok.invoke_us == 1.002 and ok.invoke_us > ok.invoke_resolution_us


def test_an_op_below_resolution_is_judged_on_the_reported_numbers():
    from devices.profiling.stats import _row

    row = _row(0, "ADD", "node", [np.array([0.9996] * 5)], 0.0, 0.001, 0.9998)
    assert (row.time_us, row.below_resolution) == (1.0, False)  # 1.0 µs is not below a 1.0 µs resolution
