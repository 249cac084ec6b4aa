"""Activation smoothing (converters/onnx_smooth.py) on a crafted ONNX graph with one outlier channel.

The graph is what a BERT layer gives a dense layer: an input whose channel 3 is 40x the others, read by two
dense layers (like Q and K), then a ReLU and a third dense layer. Smoothing must keep the float outputs
(rounding only), insert one MUL per shared input, and make per-token int8 quantization of the activations
(what a dynamic-range kernel does) lose less: the reason it exists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converters.onnx_smooth import smooth

D, T = 16, 8  # channels, tokens


def _graph(path: Path, rng: np.random.Generator) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = {f"w{i}": rng.normal(0, 0.3, (D, D)).astype(np.float32) for i in range(3)}
    nodes = [
        helper.make_node("MatMul", ["x", "w0"], ["q"]),
        helper.make_node("MatMul", ["x", "w1"], ["k"]),
        helper.make_node("Add", ["q", "k"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, T, D])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, T, D])],
        [numpy_helper.from_array(v, k) for k, v in w.items()],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))


def _rows(rng: np.random.Generator, n: int) -> list[dict[str, np.ndarray]]:
    x = rng.normal(0, 1, (n, T, D)).astype(np.float32)
    x[..., 3] *= 40.0  # the outlier channel
    return [{"x": row} for row in x]


def _run(path: Path, rows: list[dict[str, np.ndarray]], extra: str | None = None) -> list[np.ndarray]:
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    if extra:
        model.graph.output.append(onnx.helper.make_tensor_value_info(extra, onnx.TensorProto.FLOAT, None))
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [s.run([extra or "y"], {"x": r["x"][None]})[0][0] for r in rows]


def _per_token_int8(x: np.ndarray) -> np.ndarray:
    """Asymmetric int8 per row (token), as XNNPACK's and TFLite's dynamic-range kernels quantize inputs."""
    lo, hi = np.minimum(x.min(-1, keepdims=True), 0), np.maximum(x.max(-1, keepdims=True), 0)
    scale = np.maximum(hi - lo, 1e-12) / 255
    zero = np.round(-lo / scale) - 128
    return (np.clip(np.round(x / scale) + zero, -128, 127) - zero) * scale


def test_smoothing_is_exact_in_float_and_shrinks_the_int8_activation_error(tmp_path):
    import onnx
    from onnx import numpy_helper

    rng = np.random.default_rng(0)
    src, out = tmp_path / "g.onnx", tmp_path / "s.onnx"
    _graph(src, rng)
    calib, held = _rows(rng, 64), _rows(rng, 32)
    got, section = smooth(src, out, calib, 0.5)
    assert got == out and section["changed"] and section["alpha"] == 0.5
    assert section["inputs_smoothed"] == 2 and section["dense_layers"] == 3  # x (two readers) and r
    assert section["worst_peak_ratio"] > 20 and section["float_max_abs_diff"] < 1e-3
    before, after = np.stack(_run(src, held)), np.stack(_run(out, held))
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-3)  # exact up to float rounding

    model = onnx.load(str(out))
    muls = [n for n in model.graph.node if n.op_type == "Mul"]
    assert len(muls) == 2
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    x_mul = next(n for n in muls if n.input[0] == "x")
    inv = inits[x_mul.input[1]]
    assert inv[3] < inv[np.arange(D) != 3].min()  # the outlier channel is divided most
    # the dense layers reading x: int8 per-token activations, before vs after smoothing, float weights
    w0 = numpy_helper.to_array(onnx.load(str(src)).graph.initializer[0])
    w0s = inits[model.graph.initializer[0].name]
    x = np.stack([r["x"] for r in held])
    exact = x @ w0
    err_plain = np.abs(_per_token_int8(x) @ w0 - exact).mean()
    err_smooth = np.abs(_per_token_int8(x * inv) @ w0s - exact).mean()
    assert err_smooth < 0.5 * err_plain, (err_smooth, err_plain)


def test_a_graph_without_dense_layers_is_left_as_it_is(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    src = tmp_path / "relu.onnx"
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, T, D])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, T, D])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(src))
    got, section = smooth(src, tmp_path / "out.onnx", _rows(np.random.default_rng(1), 4), 0.3)
    assert got == src and section["changed"] is False and not (tmp_path / "out.onnx").exists()


@pytest.mark.parametrize("mode", ["float32", "float16", "weight_only"])
def test_smooth_is_refused_where_activations_stay_float(mode):
    from pydantic import ValidationError

    from toolchain.recipe.schema import QuantizationSpec

    with pytest.raises(ValidationError, match="keeps activations in float"):
        QuantizationSpec(mode=mode, smooth=0.3)
    assert QuantizationSpec(mode="dynamic", smooth=0.3).smooth == 0.3
