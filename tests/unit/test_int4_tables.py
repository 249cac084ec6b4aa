"""The 4-bit table layout (converters/tflite_int4.py): TFLite's packed INT4 nibble order and the per-row
symmetric scales. The models themselves are run in tests/e2e/test_int4.py."""

from __future__ import annotations

import numpy as np

from converters.tflite_int4 import pack_int4, quantize_rows


def test_two_values_a_byte_the_first_in_the_low_nibble_and_an_odd_count_padded() -> None:
    assert pack_int4(np.array([1, -1, 7, -8, 3], np.int8)) == bytes([0xF1, 0x87, 0x03])


def test_rows_are_scaled_to_their_own_largest_value_and_stay_within_plus_minus_seven() -> None:
    table = np.array([[0.5, -1.0, 0.25], [0.0, 0.0, 0.0], [7.0, 3.5, -7.0]], np.float32)
    q, scales = quantize_rows(table, 4)
    assert q.dtype == np.int8 and np.abs(q).max() <= 7
    np.testing.assert_allclose(scales, [1.0 / 7, 1.0, 1.0], rtol=1e-6)  # an all-zero row keeps scale 1
    assert q[0].tolist() == [4, -7, 2] and q[1].tolist() == [0, 0, 0] and q[2].tolist() == [7, 4, -7]
    q8, s8 = quantize_rows(table, 8)
    assert np.abs(q8).max() == 127 and np.allclose(q8 * s8[:, None], table, atol=s8.max() / 2)


def test_blockwise_int4_is_offered_only_to_fully_connected_weights_whose_inputs_fill_whole_blocks() -> None:
    from converters.int4 import WeightSite
    from toolchain.base.types import WeightWidth as W

    def site(op: str, inner: int, table: bool = False) -> WeightSite:
        return WeightSite("w", op, 0, "out;", 64 * inner, table, inner)

    assert site("FULLY_CONNECTED", 64).widths() == (W.INT4, W.INT4_BLOCK32)
    assert site("FULLY_CONNECTED", 48).widths() == (W.INT4,)  # 48 inputs: no whole 32-blocks
    assert site("CONV_2D", 64).widths() == (W.INT4,)  # AEQ's blockwise policy has no CONV_2D
    assert site("BATCH_MATMUL", 64).widths() == ()  # no hybrid int4 kernel: int8 only
    assert site("GATHER", 64, table=True).widths() == (W.INT4,)  # tables: per row (int4_columns after)
