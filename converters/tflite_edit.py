"""Small, exact edits of a .tflite flatbuffer (no TensorFlow): float outputs for app runtimes.

MediaPipe Tasks' classifiers accept UINT8, FLOAT32 or BOOL score tensors, not INT8. A full-integer model keeps
its int8 graph and gets one DEQUANTIZE op per int8 output: `(q - zero_point) * scale` in float, the same
numbers the toolchain reads from the int8 tensor, so predictions are unchanged.

Int8 softmax scores often tie exactly, and MediaPipe orders equal scores with std::sort (unspecified, and
libc++ on Android may differ from libstdc++). So a constant tie-break ADD follows: b[i] = (n-1-i) * eps with
eps = scale / (4n). It moves no score by more than a quarter step, so it never reorders two scores that
differ, and among exact ties the lowest label index ranks first, exactly like the toolchain's argmax.
An int8 model converted with float I/O (onnx2tf's BERT builds) ends in DEQUANTIZE inside the graph: its
FLOAT32 scores tie just the same (measured: 3 of 748 test queries of the BERT fixture classifier, where
MediaPipe listed the higher label index first), so that output gets the same ADD with the int8 step.
"""

from __future__ import annotations

import numpy as np

from toolchain.base.errors import InputFileError

_QUANTIZED = ("INT8", "UINT8")
TIE_BREAK_SUFFIX = "/tie_break"  # the bias constant's tensor name: `<output>/tie_break`


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _type_name(schema, code: int) -> str:
    return next((k for k, v in vars(schema.TensorType).items() if v == code and not k.startswith("_")), "?")


def _opcode_index(schema, model, builtin: int, version: int) -> int:
    for i, oc in enumerate(model.operatorCodes or []):
        code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        if code == builtin and oc.version == version and not oc.customCode:
            return i
    oc = schema.OperatorCodeT()
    oc.builtinCode = builtin
    oc.deprecatedBuiltinCode = min(builtin, 127)
    oc.version = version
    model.operatorCodes = [*(model.operatorCodes or []), oc]
    return len(model.operatorCodes) - 1


def tie_break_eps(scale: float, n: int) -> float:
    """The tie-break step: all n biases together stay below a quarter of one quantization step."""
    return float(scale) / (4.0 * max(1, n))


def _append_tie_break(schema, model, sg, src_idx: int, name: str, scale: float) -> int:
    """ADD(src, b) with b[i] = (n-1-i) * eps; returns the new output tensor index."""
    src = sg.tensors[src_idx]
    n = int(src.shape[-1])
    bias = (np.arange(n - 1, -1, -1, dtype=np.float32) * np.float32(tie_break_eps(scale, n))).astype(
        np.float32
    )
    buf = schema.BufferT()
    buf.data = np.frombuffer(bias.tobytes(), dtype=np.uint8)
    model.buffers.append(buf)
    const = schema.TensorT()
    const.shape = np.array([n], dtype=np.int32)
    const.type = schema.TensorType.FLOAT32
    const.name = f"{name}{TIE_BREAK_SUFFIX}".encode()
    const.buffer = len(model.buffers) - 1
    sg.tensors.append(const)
    out = schema.TensorT()
    out.shape = None if src.shape is None else np.array(src.shape, dtype=np.int32)
    out.shapeSignature = None if src.shapeSignature is None else np.array(src.shapeSignature, np.int32)
    out.type = schema.TensorType.FLOAT32
    out.name = name.encode()
    out.buffer = 0
    sg.tensors.append(out)
    op = schema.OperatorT()
    op.opcodeIndex = _opcode_index(schema, model, schema.BuiltinOperator.ADD, 1)
    op.inputs = np.array([src_idx, len(sg.tensors) - 2], dtype=np.int32)
    op.outputs = np.array([len(sg.tensors) - 1], dtype=np.int32)
    op.builtinOptionsType = schema.BuiltinOptions.AddOptions
    op.builtinOptions = schema.AddOptionsT()
    sg.operators.append(op)
    return len(sg.tensors) - 1


def _dequantized_step(schema, model, sg, out_idx: int) -> float | None:
    """The int8 step behind a FLOAT32 output made by DEQUANTIZE of a per-tensor int8 tensor, else None.

    An int8 model converted with float I/O ends that way (onnx2tf builds of BERT classifiers do): its
    float scores are still int8 values times a scale, so they tie exactly as int8 scores do.
    """
    for op in sg.operators:
        if op.outputs is None or out_idx not in list(op.outputs):
            continue
        code = model.operatorCodes[op.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) != schema.BuiltinOperator.DEQUANTIZE:
            return None
        src = sg.tensors[op.inputs[0]]
        q = src.quantization
        if _type_name(schema, src.type) in _QUANTIZED and q is not None and q.scale is not None:
            return float(q.scale[0]) if len(q.scale) == 1 else None
        return None
    return None


def output_int8_step(data: bytes) -> float | None:
    """The quantization step of the first output: its own int8 scale, or the int8 tensor it dequantizes."""
    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    sg = model.subgraphs[0]
    out = sg.tensors[sg.outputs[0]]
    q = out.quantization
    if _type_name(schema, out.type) in _QUANTIZED and q is not None and q.scale is not None:
        return float(q.scale[0]) if len(q.scale) == 1 else None
    return _dequantized_step(schema, model, sg, int(sg.outputs[0]))


def _retarget(model, sg, pos: int, out_idx: int, new_idx: int) -> None:
    """Make tensor `new_idx` the subgraph's output number `pos` (and in the signature defs)."""
    sg.outputs[pos] = new_idx
    for sig in model.signatureDefs or []:
        for tmap in sig.outputs or []:
            if sig.subgraphIndex == 0 and tmap.tensorIndex == out_idx:
                tmap.tensorIndex = new_idx


def dequantized_outputs(data: bytes, tie_break: bool = True) -> tuple[bytes, list[str]]:
    """Return the model with each quantized output followed by DEQUANTIZE, and the outputs it changed.

    With `tie_break`, a FLOAT32 output that is a DEQUANTIZE of an int8 tensor gets the tie-break ADD too
    (listed as `name (tie-break)`). A model with nothing to change is returned unchanged (same bytes).
    """
    schema = _schema()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise InputFileError("not a TFLite model (no TFL3 identifier)", hint="re-convert it")
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    sg = model.subgraphs[0]
    changed: list[str] = []
    for pos, out_idx in enumerate(list(sg.outputs)):
        old = sg.tensors[out_idx]
        step = _dequantized_step(schema, model, sg, out_idx) if tie_break else None
        if step is not None and _type_name(schema, old.type) == "FLOAT32":
            name = old.name.decode() if isinstance(old.name, bytes) else str(old.name)
            old.name = f"{name}/dequantized".encode()
            new_idx = _append_tie_break(schema, model, sg, out_idx, name, step)
            _retarget(model, sg, pos, out_idx, new_idx)
            changed.append(f"{name} (tie-break)")
            continue
        if _type_name(schema, old.type) not in _QUANTIZED or old.quantization is None:
            continue
        if old.quantization.scale is None or len(old.quantization.scale) != 1:
            continue  # per-axis quantized outputs do not occur for classifier scores
        name = old.name.decode() if isinstance(old.name, bytes) else str(old.name)
        new = schema.TensorT()
        new.shape = None if old.shape is None else np.array(old.shape, dtype=np.int32)
        new.shapeSignature = None if old.shapeSignature is None else np.array(old.shapeSignature, np.int32)
        new.type = schema.TensorType.FLOAT32
        new.name = name.encode()
        old.name = f"{name}/quantized".encode()
        buf = schema.BufferT()
        model.buffers.append(buf)
        new.buffer = len(model.buffers) - 1
        sg.tensors.append(new)
        new_idx = len(sg.tensors) - 1
        # DEQUANTIZE v2 takes int8 inputs (v1: uint8 only), per TFLite's op versioning.
        version = 2 if _type_name(schema, old.type) == "INT8" else 1
        op = schema.OperatorT()
        op.opcodeIndex = _opcode_index(schema, model, schema.BuiltinOperator.DEQUANTIZE, version)
        op.inputs = np.array([out_idx], dtype=np.int32)
        op.outputs = np.array([new_idx], dtype=np.int32)
        op.builtinOptionsType = schema.BuiltinOptions.NONE
        sg.operators.append(op)
        if tie_break:
            new.name = f"{name}/dequantized".encode()
            new_idx = _append_tie_break(schema, model, sg, new_idx, name, float(old.quantization.scale[0]))
        _retarget(model, sg, pos, out_idx, new_idx)
        changed.append(name)
    if not changed:
        return data, []
    import flatbuffers

    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), changed


# Ops whose int8 weights (input 1) a dynamic-range model runs through hybrid kernels.
WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")


def _op_name(schema, model, op) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    return next((k for k, v in vars(schema.BuiltinOperator).items() if v == builtin), "?")


def weight_only(data: bytes) -> tuple[bytes, list[str]]:
    """A dynamic-range model with its hybrid kernels replaced by DEQUANTIZE(int8 weights) -> float op.

    Dynamic-range (hybrid) kernels quantize the activations per call, and each runtime does it its own way:
    measured on the retrieval example (3,000 items), ai_edge_litert's XNNPACK and builtin kernels and
    MediaPipe 0.10.21 gave scores up to 0.33 apart, so 13 to 80 of 2,101 test queries listed their top 10
    in another order. With the weights dequantized (a DEQUANTIZE of a constant runs once, its float output
    is kept), every runtime does the same float math: the weights stay int8 on disk (same size, same
    per-channel scales), at the cost of the float copy in memory. Returns the bytes and the changed ops'
    weight tensor names; a model without hybrid ops is returned unchanged.
    """
    schema = _schema()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise InputFileError("not a TFLite model (no TFL3 identifier)", hint="re-convert it")
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    sg = model.subgraphs[0]
    added, changed = [], []
    for op in sg.operators:
        if _op_name(schema, model, op) not in WEIGHT_OPS or op.inputs is None or len(op.inputs) < 2:
            continue
        if op.inputs[0] < 0 or op.inputs[1] < 0:  # an omitted optional input
            continue
        act, weights = sg.tensors[op.inputs[0]], sg.tensors[op.inputs[1]]
        buf = model.buffers[weights.buffer]
        if _type_name(schema, act.type) != "FLOAT32" or _type_name(schema, weights.type) != "INT8":
            continue
        if buf.data is None and not getattr(buf, "size", 0):
            continue  # not a constant
        name = weights.name.decode() if isinstance(weights.name, bytes) else str(weights.name)
        new = schema.TensorT()
        new.shape = np.array(weights.shape, dtype=np.int32)
        new.type = schema.TensorType.FLOAT32
        new.name = f"{name}/dequantized".encode()
        model.buffers.append(schema.BufferT())
        new.buffer = len(model.buffers) - 1
        sg.tensors.append(new)
        scales = None if weights.quantization is None else weights.quantization.scale
        per_channel = scales is not None and len(scales) > 1
        deq = schema.OperatorT()  # DEQUANTIZE v5: per-channel int8 input; v2: per-tensor int8
        deq.opcodeIndex = _opcode_index(
            schema, model, schema.BuiltinOperator.DEQUANTIZE, 5 if per_channel else 2
        )
        deq.inputs = np.array([op.inputs[1]], dtype=np.int32)
        deq.outputs = np.array([len(sg.tensors) - 1], dtype=np.int32)
        deq.builtinOptionsType = schema.BuiltinOptions.NONE
        added.append(deq)
        op.inputs[1] = len(sg.tensors) - 1
        changed.append(name)
    if not changed:
        return data, []
    sg.operators = [*added, *sg.operators]  # constants only: they may run first
    import flatbuffers

    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), changed
