"""converters/fuse.py on a hand-written .tflite (no converter): onnx2tf's composed Erf-GELU becomes one GELU
op with the same outputs, its factor 2 goes into the next layer's weights, and an island that is not
GELU is left alone. The same chain as the float16 and dynamic-int8 conversions store it (constants behind
DEQUANTIZE; int8 weights with per-channel scales) is fused too, the 2 going into the float16 weights or
the int8 weights' scales."""

from __future__ import annotations

import flatbuffers
import numpy as np
import pytest

from converters.fuse import fuse_gelu
from converters.tflite_model import parse_tflite, tflite_schema
from devices.host_runtime import HostRuntime
from devices.hostrun import HostRunner
from toolchain.base.errors import RecipeError
from toolchain.base.progress import SilentProgress
from toolchain.base.types import Task
from toolchain.quantization.plan import build_mixed
from toolchain.recipe.compose import recipe_from_dict

P, A = 0.3275911, (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erf_gelu_model(a1: float = A[0], storage: str = "float32") -> bytes:
    """x [1,4,16] -> x * (1 + erf(x / sqrt 2)) as onnx2tf writes it (Abramowitz-Stegun 7.1.26; GELU's 0.5
    folded away) -> FULLY_CONNECTED to 8 outputs. storage: float32; float16 (every constant a float16
    tensor behind a DEQUANTIZE, as converter mode float16 stores them); int8 (the FC weights int8 with
    per-channel scales, as mode dynamic stores them)."""
    s = tflite_schema()
    model, sg = s.ModelT(), s.SubGraphT()
    model.version, model.buffers, model.operatorCodes = 3, [s.BufferT()], []
    sg.tensors, sg.operators = [], []

    def tensor(name, shape, data=None, dtype=np.float32):
        t = s.TensorT()
        t.name, t.shape, t.type, t.buffer = name.encode(), np.array(shape, np.int32), s.TensorType.FLOAT32, 0
        if data is not None:
            t.type = {np.float32: s.TensorType.FLOAT32, np.float16: s.TensorType.FLOAT16}.get(dtype, 9)
            buf = s.BufferT()
            buf.data = np.frombuffer(np.asarray(data, dtype).tobytes(), np.uint8)
            model.buffers.append(buf)
            t.buffer = len(model.buffers) - 1
        sg.tensors.append(t)
        return len(sg.tensors) - 1

    def const(name, shape, data):
        if storage != "float16":
            return tensor(name, shape, data)
        return op("DEQUANTIZE", tensor(name + "/f16", shape, data, np.float16), shape=shape)

    def op(kind, *inputs, shape=None):
        code = getattr(s.BuiltinOperator, kind)
        names = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
        if code not in names:
            oc = s.OperatorCodeT()
            oc.builtinCode, oc.deprecatedBuiltinCode = code, min(code, 127)
            oc.version = 3 if kind == "DEQUANTIZE" else 1  # float16 input: version 3
            model.operatorCodes.append(oc)
            names.append(code)
        o = s.OperatorT()
        o.opcodeIndex = names.index(code)
        o.inputs = np.array(inputs, np.int32)
        o.outputs = np.array(
            [
                tensor(
                    f"t{len(sg.operators)}", shape or ([1, 4, 16] if kind != "FULLY_CONNECTED" else [1, 4, 8])
                )
            ],
            np.int32,
        )
        sg.operators.append(o)
        return int(o.outputs[0])

    c = lambda v: const(f"c{len(sg.tensors)}", [], [v])  # noqa: E731
    x = tensor("x", [1, 4, 16])
    z = op("MUL", x, c(2**-0.5))
    az = op("ABS", z)
    t = op("DIV", c(1.0), op("ADD", op("MUL", az, c(P)), c(1.0)))
    poly = op("MUL", t, c(A[4]))
    for coef in (A[3], A[2], A[1]):
        poly = op("MUL", op("ADD", poly, c(coef)), t)
    poly = op("MUL", op("ADD", poly, c(a1)), t)
    abs_erf = op("SUB", c(1.0), op("MUL", poly, op("EXP", op("MUL", op("NEG", az), az))))
    erf = op("MUL", op("DIV", z, op("ADD", az, c(1e-11))), abs_erf)
    y = op("MUL", x, op("ADD", erf, c(1.0)))
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(8, 16)) * 0.25
    if storage == "int8":
        scales = np.abs(weights).max(axis=1) / 127
        w = tensor("w", [8, 16], np.round(weights / scales[:, None]), np.int8)
        sg.tensors[w].quantization = s.QuantizationParametersT()
        sg.tensors[w].quantization.scale = scales.astype(np.float32)
        sg.tensors[w].quantization.zeroPoint = np.zeros(8, np.int64)
    else:
        w = const("w", [8, 16], weights)
    out = op("FULLY_CONNECTED", y, w, const("b", [8], rng.normal(size=8)))
    sg.inputs, sg.outputs = np.array([x], np.int32), np.array([out], np.int32)
    model.subgraphs = [sg]
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.fixture(scope="module")
def host():
    """One runtime child for the file's models (each child costs about 0.4 s to start)."""
    with HostRuntime() as runtime:
        yield runtime


def test_composed_erf_gelu_becomes_one_gelu_op_with_the_same_outputs(host) -> None:
    before = _erf_gelu_model()
    after, fused = fuse_gelu(before)
    ops = [o.op for o in parse_tflite(after).ops]
    assert ops == ["GELU", "FULLY_CONNECTED"] and len(fused) == 1  # 2 x GELU: the 2 is in the FC weights
    assert fuse_gelu(after) == (after, [])  # nothing left to fuse; deterministic
    assert fuse_gelu(before, only=fused)[0] == after and fuse_gelu(before, only=["other"]) == (before, [])
    not_gelu = _erf_gelu_model(a1=0.3)  # one coefficient off: no longer erf
    assert fuse_gelu(not_gelu) == (not_gelu, [])
    x = {"x": np.linspace(-6, 6, 64, dtype=np.float32).reshape(1, 4, 16)}
    with HostRunner(before, host=host) as a, HostRunner(after, host=host) as b:
        assert np.abs(a.scores(x) - b.scores(x)).max() < 1e-4


def test_a_saved_plan_naming_a_gelu_the_model_lacks_is_a_recipe_error() -> None:
    recipe = recipe_from_dict(
        {
            "source": {"path": "m.onnx"},
            "quantization": {"mode": "mixed", "mixed": {"float_nodes": [], "fused_gelu": ["no/such/gelu"]}},
        }
    )
    with pytest.raises(RecipeError, match="fused_gelu names 1 GELU"):
        build_mixed(_erf_gelu_model(), recipe, Task.EMBEDDING, lambda: None, SilentProgress())


@pytest.mark.parametrize("storage", ["float16", "int8"])
def test_the_chain_as_float16_and_dynamic_int8_store_it_is_fused_too(storage: str, host) -> None:
    before = _erf_gelu_model(storage=storage)
    after, fused = fuse_gelu(before)
    ops = [o.op for o in parse_tflite(after).ops]
    assert len(fused) == 1 and "EXP" not in ops and "MUL" not in ops, ops  # the 2 went into the FC
    assert ops.count("GELU") == 1 and ops.count("DEQUANTIZE") == (2 if storage == "float16" else 0)
    s = tflite_schema()
    w = lambda m: next(t for t in s.ModelT.InitFromPackedBuf(bytearray(m), 0).subgraphs[0].tensors  # noqa: E731
                       if t.name.startswith(b"w"))  # fmt: skip
    if storage == "int8":  # the int8 bytes stay; their scales doubled
        assert np.array_equal(w(after).quantization.scale, 2 * w(before).quantization.scale)
    assert fuse_gelu(_erf_gelu_model(a1=0.3, storage=storage))[1] == []
    x = {"x": np.linspace(-6, 6, 64, dtype=np.float32).reshape(1, 4, 16)}
    # builtin kernels: XNNPACK reads this hand-made float16 graph (a DEQUANTIZE per scalar) as NaN
    xnn = storage != "float16"
    with (
        HostRunner(before, xnnpack=xnn, host=host) as a,
        HostRunner(after, xnnpack=xnn, host=host) as b,
    ):
        # float16: the chain computes with float16-rounded coefficients, the GELU op exactly
        assert np.abs(a.scores(x) - b.scores(x)).max() < (2e-3 if storage == "float16" else 1e-4)
