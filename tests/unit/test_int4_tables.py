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
    assert site("FULLY_CONNECTED", 64).widths(blockwise=False) == (W.INT4,)  # quantization.int4.blockwise off
    assert site("FULLY_CONNECTED", 48).widths() == (W.INT4,)  # 48 inputs: no whole 32-blocks
    assert site("CONV_2D", 64).widths() == (W.INT4,)  # AEQ's blockwise policy has no CONV_2D
    assert site("BATCH_MATMUL", 64).widths() == ()  # no hybrid int4 kernel: int8 only
    assert site("GATHER", 64, table=True).widths() == (W.INT4,)  # tables: per row (int4_columns after)


def test_an_all_zero_block_gets_a_normal_scale_and_zero_values_so_xnnpack_loads_it() -> None:
    from ai_edge_litert import schema_py_generated as schema

    from converters.tflite_int4 import SMALLEST_NORMAL_FP16, _load, _save, fix_zero_block_scales

    model, sg = schema.ModelT(), schema.SubGraphT()
    weights = pack_int4(np.array([1, -2] * 16 + [7] * 32, np.int8))  # 2 x 32: block 1 has scale 0 below
    model.buffers = [schema.BufferT(), schema.BufferT(), schema.BufferT()]
    model.buffers[1].data = np.frombuffer(weights, np.uint8)
    model.buffers[2].data = np.frombuffer(np.array([0.5, 0.0], np.float16).tobytes(), np.uint8)
    w, s = schema.TensorT(), schema.TensorT()
    w.shape, w.type, w.buffer, w.name = np.array([2, 32], np.int32), schema.TensorType.INT4, 1, b"w"
    s.shape, s.type, s.buffer, s.name = np.array([2, 1], np.int32), schema.TensorType.FLOAT16, 2, b"s"
    details = schema.BlockwiseQuantizationT()
    details.scales, details.zeroPoints, details.blockSize = 1, -1, 32
    w.quantization = schema.QuantizationParametersT()
    w.quantization.detailsType = schema.QuantizationDetails.BlockwiseQuantization
    w.quantization.details = details
    sg.tensors, sg.inputs, sg.outputs, sg.operators = [w, s], [], [], []
    model.subgraphs, model.version, model.operatorCodes = [sg], 3, []
    data = _save(model, 256)

    fixed = _load(fix_zero_block_scales(data))
    scales = np.frombuffer(bytes(np.asarray(fixed.buffers[2].data, np.uint8)), np.float16)
    assert scales.tolist() == [0.5, float(SMALLEST_NORMAL_FP16)]
    packed = bytes(np.asarray(fixed.buffers[1].data, np.uint8))
    assert packed[:16] == weights[:16] and packed[16:] == bytes(16)  # the zero block's values are 0
    assert fix_zero_block_scales(_save(fixed, 256)) == _save(fixed, 256)  # nothing left to fix: unchanged
