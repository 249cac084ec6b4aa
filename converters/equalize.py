"""Output-channel equalization of fully connected layers in a calibrated float model (mixed precision).

A pretrained encoder's FFN output carries a few outlier channels: on all-MiniLM-L6-v2 one channel of the
first FFN output reaches 193 while the median channel stays under 1, so a per-tensor int8 step of 0.9
leaves most channels with one or two levels. Here each such layer's output channel c is divided by
s_c = max(1, max|y_c| / median_c max|y_c|): the weight row and the bias are divided by s_c (exact in
float), the layer writes a new tensor `<output>/equalized` whose calibrated range is the equalized one, and
a float MUL by s_c writes the original output tensor, so every consumer is unchanged. Quantized, the layer
stays int8 (its output now spans the typical channels' range) and the MUL, kept float by the mixed plan,
puts the outliers back: in effect a per-channel activation scale that TFLite's per-tensor int8 lacks.
Deterministic: the same calibrated model and ranges give the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from converters.tflite_model import opcode_index, tensor_name, tflite_schema

EQUALIZED_SUFFIX = "/equalized"
SCALE_SUFFIX = "/channel_scale"
MIN_RATIO = 2.0  # a layer whose largest channel is under this many times the median channel is left as is


def _float_buffer(schema, model, values: np.ndarray, replace: int | None = None) -> int:
    """A buffer holding `values`: buffer `replace` rewritten in place (the calibrated model does not grow
    by a copy of every equalized weight), else a new one."""
    data = np.frombuffer(values.astype(np.float32).tobytes(), dtype=np.uint8)
    if replace is not None:
        model.buffers[replace].data = data
        return replace
    buf = schema.BufferT()
    buf.data = data
    model.buffers.append(buf)
    return len(model.buffers) - 1


def channel_scales(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """s_c = max(1, max|y_c| / median over channels of max|y_c|)."""
    peak = np.maximum(np.abs(lo), np.abs(hi)).astype(np.float64)
    typical = float(np.median(peak)) or 1.0
    return np.maximum(1.0, peak / typical).astype(np.float32)


def equalize_outputs(
    calibrated: bytes, ranges: Mapping[str, tuple[np.ndarray, np.ndarray]], min_ratio: float = MIN_RATIO
) -> tuple[bytes, dict[str, float]]:
    """The calibrated model with the FULLY_CONNECTED outputs named in `ranges` ({output tensor name:
    per-channel (min, max)}) equalized, and {output name: largest channel scale} of those changed (layers
    under `min_ratio`, with shared weights or without a float weight buffer are left as they are)."""
    import flatbuffers  # reason: the flatbuffers runtime is only needed to write the edited model

    schema = tflite_schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(calibrated), 0)
    sg = model.subgraphs[0]
    fc = schema.BuiltinOperator.FULLY_CONNECTED
    uses: dict[int, int] = {}
    for op in sg.operators:
        for i in op.inputs if op.inputs is not None else []:
            uses[int(i)] = uses.get(int(i), 0) + 1
    owners: dict[int, int] = {}  # buffer -> tensors reading it
    for t in sg.tensors:
        owners[t.buffer] = owners.get(t.buffer, 0) + 1
    mul_code = opcode_index(model, schema.BuiltinOperator.MUL)
    operators, changed = [], {}
    for op in sg.operators:
        operators.append(op)
        code = model.operatorCodes[op.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) != fc or op.outputs is None:
            continue
        out = int(op.outputs[0])
        name = tensor_name(sg.tensors[out])
        if name not in ranges:
            continue
        lo, hi = ranges[name]
        s = channel_scales(lo, hi)
        weights = [int(i) for i in op.inputs[1:] if int(i) >= 0]
        if float(s.max()) < min_ratio or any(uses.get(i, 0) > 1 for i in weights):
            continue
        wt = sg.tensors[weights[0]]
        data = model.buffers[wt.buffer].data
        if wt.type != schema.TensorType.FLOAT32 or data is None or len(data) == 0:
            continue
        w = np.frombuffer(bytes(data), np.float32).reshape(wt.shape)
        own = lambda t: t.buffer if owners.get(t.buffer) == 1 else None  # noqa: E731
        wt.buffer = _float_buffer(schema, model, w / s[:, None], own(wt))
        if len(weights) > 1:
            bt = sg.tensors[weights[1]]
            b = np.frombuffer(bytes(model.buffers[bt.buffer].data), np.float32)
            bt.buffer = _float_buffer(schema, model, b / s, own(bt))
        src = sg.tensors[out]
        eq = schema.TensorT()
        eq.shape = np.array(src.shape, np.int32)
        if src.shapeSignature is not None:
            eq.shapeSignature = np.array(src.shapeSignature, np.int32)
        eq.type, eq.name, eq.buffer = src.type, (name + EQUALIZED_SUFFIX).encode(), 0
        eq.quantization = schema.QuantizationParametersT()
        eq.quantization.min = np.array([float(np.min(lo / s))], np.float32)
        eq.quantization.max = np.array([float(np.max(hi / s))], np.float32)
        sg.tensors.append(eq)
        scale = schema.TensorT()
        scale.shape = np.array([len(s)], np.int32)
        scale.type, scale.name = schema.TensorType.FLOAT32, (name + SCALE_SUFFIX).encode()
        scale.buffer = _float_buffer(schema, model, s)
        sg.tensors.append(scale)
        op.outputs = np.array([len(sg.tensors) - 2], np.int32)
        mul = schema.OperatorT()
        mul.opcodeIndex = mul_code
        mul.inputs = np.array([len(sg.tensors) - 2, len(sg.tensors) - 1], np.int32)
        mul.outputs = np.array([out], np.int32)
        mul.builtinOptionsType = schema.BuiltinOptions.MulOptions
        mul.builtinOptions = schema.MulOptionsT()
        operators.append(mul)
        changed[name] = round(float(s.max()), 2)
    if not changed:
        return calibrated, {}
    sg.operators = operators
    builder = flatbuffers.Builder(len(calibrated) + 65536)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), changed


def fc_outputs(calibrated: bytes) -> list[str]:
    """Output tensor names of the model's FULLY_CONNECTED ops (the candidates for equalization)."""
    schema = tflite_schema()
    model = schema.Model.GetRootAsModel(calibrated, 0)
    sg = model.Subgraphs(0)
    names = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) == schema.BuiltinOperator.FULLY_CONNECTED:
            names.append(sg.Tensors(op.Outputs(0)).Name().decode())
    return names
