"""GPTQ rounding of 4-bit FULLY_CONNECTED weights (converters/int4_rounding.py, devices/fc_inputs.py).

The checks can fail: GPTQ must change a layer's output on its calibration inputs by clearly less than
round-to-nearest with the same scales, on held-out inputs of the same kind too, and give the same bytes
twice. The end-to-end check builds a one-FULLY_CONNECTED float .tflite by hand (flatbuffer object API, no
converter), quantizes it with the real LiteRT Quantizer (its own environment, a child) and runs both
roundings in ai_edge_litert."""

from __future__ import annotations

import numpy as np
import pytest

from converters.int4_rounding import QMAX, QMIN, gptq_round, nearest_round, output_error

IN, OUT, ROWS = 64, 16, 8


def _layer(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A weight and two sets of correlated inputs with a few outlier channels (as a transformer's)."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(IN, IN)) * 0.3 + np.eye(IN)
    w = (rng.normal(size=(OUT, IN)) * 0.1).astype(np.float32)

    def inputs(n: int) -> np.ndarray:
        x = rng.normal(size=(n, IN)) @ mix
        x[:, :3] *= 10
        return x.astype(np.float32)

    return w, inputs(400), inputs(400)


@pytest.mark.parametrize("block", [0, 32])
def test_gptq_changes_the_layer_output_less_than_rounding_to_nearest_with_the_same_scales(block: int) -> None:
    w, calib, held_out = _layer()
    if block:  # float16 scales, one per 32 inputs of each output channel, as the quantizer stores them
        scales = (np.abs(w.reshape(OUT, -1, block)).max(2) / 7).astype(np.float16).astype(np.float64)
    else:
        scales = np.abs(w).max(1).astype(np.float64) / 7
    h = calib.T.astype(np.float64) @ calib / len(calib)
    q, near = gptq_round(w, h, scales, block), nearest_round(w, scales, block)
    assert q.dtype == np.int8 and q.min() >= QMIN and q.max() <= QMAX
    for x in (calib, held_out):
        assert output_error(w, q, scales, x, block) < 0.5 * output_error(w, near, scales, x, block)
    assert np.array_equal(q, gptq_round(w, h, scales, block))  # deterministic
    # without information about the inputs (H = identity) GPTQ is no better than nearest: the gain above
    # comes from the inputs' correlations, not from a different grid
    flat = gptq_round(w, np.eye(IN), scales, block)
    assert np.mean(flat != near) < 0.05


def test_an_input_that_is_always_zero_gets_a_zero_column() -> None:
    w, calib, _ = _layer(1)
    calib[:, 5] = 0.0
    h = calib.T.astype(np.float64) @ calib / len(calib)
    q = gptq_round(w, h, np.abs(w).max(1).astype(np.float64) / 7)
    assert not q[:, 5].any()


def _tiny_fc(w: np.ndarray) -> bytes:
    """A float .tflite: x [1, ROWS, IN] -> FULLY_CONNECTED(w) -> y [ROWS, OUT]."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    m = schema.ModelT()
    m.version, m.description = 3, b"tiny fc"
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.FULLY_CONNECTED
    code.version = 1
    m.operatorCodes = [code]
    weight = schema.BufferT()
    weight.data = np.frombuffer(w.astype(np.float32).tobytes(), np.uint8)
    m.buffers = [schema.BufferT(), schema.BufferT(), weight, schema.BufferT()]

    def tensor(name: str, shape: list[int], buf: int):
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name.encode(), np.array(shape, np.int32), 0, buf
        return t

    sg = schema.SubGraphT()
    sg.tensors = [tensor("x", [1, ROWS, IN], 1), tensor("dense/w", [OUT, IN], 2), tensor("y", [ROWS, OUT], 3)]
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, np.array([0, 1, -1], np.int32), np.array([2], np.int32)
    op.builtinOptionsType = schema.BuiltinOptions.FullyConnectedOptions
    op.builtinOptions = schema.FullyConnectedOptionsT()
    sg.inputs, sg.outputs = np.array([0], np.int32), np.array([2], np.int32)
    sg.operators, sg.name = [op], b"main"
    m.subgraphs = [sg]
    b = flatbuffers.Builder(4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _run(model: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model)
    it.allocate_tensors()
    out = []
    for batch in x:
        it.set_tensor(it.get_input_details()[0]["index"], batch[None])
        it.invoke()
        out.append(it.get_tensor(it.get_output_details()[0]["index"]).copy())
    return np.stack(out)


@pytest.mark.slow  # the LiteRT Quantizer's child (its own environment)
def test_the_quantizer_with_hessians_writes_gptq_values_that_the_runtime_runs_closer_to_float() -> None:
    from converters.int4 import Quantizer
    from converters.int4_rounding import read_int4
    from devices.fc_inputs import input_hessians
    from toolchain.base.types import WeightWidth as W

    w, calib, held_out = _layer(2)
    model = _tiny_fc(w)
    x, xt = calib.reshape(-1, ROWS, IN), held_out.reshape(-1, ROWS, IN)
    mask = np.ones((len(x), ROWS), np.int32)
    mask[:, -2:] = 0  # the last two positions are padding: not in the Hessian
    h = input_hessians(model, {"x": x}, ["dense/w", "not-a-weight"], mask)
    assert set(h) == {"dense/w"}
    real = x[:, :-2].reshape(-1, IN).astype(np.float64)
    np.testing.assert_allclose(h["dense/w"], real.T @ real / len(real), rtol=1e-6)
    plans = [{"dense/w": W.INT4}, {"dense/w": W.INT4_BLOCK32}, {"dense/w": W.INT4_BLOCK64}]
    with Quantizer(model) as q:  # one child, both roundings
        near = [q.quantize(p) for p in [*plans, {"dense/w": W.INT8}]]
        q.set_hessians(h)
        gptq = [q.quantize(p) for p in [*plans, {"dense/w": W.INT8}]]
        assert q.quantize(plans[0]) == gptq[0]  # the same bytes again
    assert gptq.pop() == near.pop()  # 8 bits: not re-rounded
    ref = _run(model, xt)
    for n, g in zip(near, gptq, strict=True):
        assert len(n) == len(g)  # same tensors and scales: only the 4-bit values differ
        assert not np.array_equal(read_int4(n, "dense/w"), read_int4(g, "dense/w"))
        assert np.mean((_run(g, xt) - ref) ** 2) < 0.5 * np.mean((_run(n, xt) - ref) ** 2)
