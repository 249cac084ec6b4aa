"""Embedding tables stored in 4 (or 8) bits per value, one scale per row, behind a DEQUANTIZE.

The LiteRT Quantizer (ai-edge-quantizer 0.10) quantizes EMBEDDING_LOOKUP tables per row, but the tables
that the TF converter writes for a Keras `Embedding` and onnx2tf writes for an ONNX `Gather` are GATHER
params, which its weight-only policy does not cover (measured: "only supports UniformQuantParams" for the
GATHER table). This module does for a constant GATHER / EMBEDDING_LOOKUP table what AEQ's weight-only mode
does for a dense layer: the table becomes an INT4 (or INT8) constant with a per-row scale (symmetric, zero
point 0, quantized dimension 0), and a DEQUANTIZE of it feeds the unchanged float op. A DEQUANTIZE of a
constant runs once when the interpreter is prepared (its float output is kept), so the float math and the
ids are those of the float model.

Op versions: AEQ 0.10 leaves every op at version 1 and so claims an int4 DEQUANTIZE runs on any runtime;
`set_int4_versions` gives each DEQUANTIZE of an INT4 constant version 6, the version TFLite's own
op_version.cc assigns (tensorflow/lite/tools/versioning/op_version.cc), so a runtime without the int4
kernel refuses the model by name in `edgecomp validate` (tflite-runtime 2.14: "DEQUANTIZE v6 is not
supported ... it has up to v5"), instead of failing at prepare or, for hybrid int4 CONV_2D, running to NaN
(measured in tflite-runtime 2.14.0).
"""

from __future__ import annotations

import numpy as np

from converters.tflite_model import opcode_index, tensor_name
from toolchain.base.errors import InputFileError

INT4_DEQUANTIZE_VERSION = 6  # op_version.cc: DEQUANTIZE with an int4 input
INT8_PER_ROW_DEQUANTIZE_VERSION = 5  # per-channel int8 input
TABLE_OPS = {"GATHER": 0, "EMBEDDING_LOOKUP": 1}  # op -> the input that holds the table


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _load(data: bytes):
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise InputFileError("not a TFLite model (no TFL3 identifier)", hint="re-convert it")
    model = _schema().ModelT.InitFromPackedBuf(bytearray(data), 0)
    for buf in model.buffers or []:  # AEQ writes constants after the flatbuffer (offset, size): inline them
        if getattr(buf, "offset", 0) and buf.offset > 1:
            buf.data = np.frombuffer(data[buf.offset : buf.offset + buf.size], np.uint8)
            buf.offset = buf.size = 0
    return model


def _save(model, size_hint: int) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(size_hint + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def tflite_schema():
    """ai_edge_litert's generated TFLite flatbuffer schema module."""
    return _schema()


def load_model(data: bytes):
    """The model as the flatbuffer object API's ModelT, every buffer inline (for edits)."""
    return _load(data)


def save_model(model, size_hint: int) -> bytes:
    return _save(model, size_hint)


def _builtin(code) -> int:
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def pack_int4(values: np.ndarray) -> bytes:
    """Signed 4-bit values, two per byte, the first in the low nibble (TFLite's packed INT4 layout)."""
    flat = values.astype(np.int8).reshape(-1)
    if flat.size % 2:
        flat = np.concatenate([flat, np.zeros(1, np.int8)])
    low, high = flat[0::2].astype(np.uint8) & 0x0F, flat[1::2].astype(np.uint8) & 0x0F
    return (low | (high << 4)).astype(np.uint8).tobytes()


def unpack_int4(raw: bytes, count: int) -> np.ndarray:
    """The inverse of `pack_int4`: `count` signed 4-bit values as int8."""
    b = np.frombuffer(raw, np.uint8)
    both = np.stack([b & 0x0F, b >> 4], axis=1).reshape(-1)[:count].astype(np.int8)
    return np.where(both > 7, both - 16, both).astype(np.int8)


def quantize_rows(table: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(int values, per-row scales): symmetric, round to nearest, |q| <= 2^(bits-1) - 1."""
    qmax = 2 ** (bits - 1) - 1
    rows = table.reshape(table.shape[0], -1).astype(np.float64)
    amax = np.abs(rows).max(axis=1)
    scales = np.where(amax > 0, amax / qmax, 1.0)
    q = np.clip(np.rint(rows / scales[:, None]), -qmax, qmax).astype(np.int8)
    return q.reshape(table.shape), scales.astype(np.float32)


def quantize_tables(data: bytes, tables: dict[str, int], columns: frozenset[str] = frozenset()) -> bytes:
    """`tables`: weight tensor name -> bits (4 or 8). Each named constant float table of a GATHER /
    EMBEDDING_LOOKUP is stored in that many bits behind a DEQUANTIZE, with one scale per row, or per
    column for the names in `columns` (fewer scales: a 1,374 x 64 table carries 16.5 KB of per-row scales
    and int64 zero points, 0.8 KB per column); a name that is not such a table is an error."""
    if not tables:
        return data
    schema = _schema()
    model = _load(data)
    sg = model.subgraphs[0]
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    done: dict[str, int] = {}  # table name -> its dequantized tensor (a table shared by two ops is done once)
    added = []
    for op in sg.operators:
        slot = TABLE_OPS.get(names.get(_builtin(model.operatorCodes[op.opcodeIndex]), ""))
        if slot is None or op.inputs is None or len(op.inputs) <= slot or op.inputs[slot] < 0:
            continue
        tensor = sg.tensors[op.inputs[slot]]
        name = tensor_name(tensor)
        if name not in tables:
            continue
        if name in done:
            op.inputs[slot] = done[name]
            continue
        buf = model.buffers[tensor.buffer]
        if tensor.type != schema.TensorType.FLOAT32 or buf.data is None or not len(buf.data):
            raise InputFileError(
                f"table {name} is not a constant float32 tensor", hint="re-convert in float32"
            )
        bits = tables[name]
        shape = tuple(int(d) for d in tensor.shape)
        table = np.frombuffer(bytes(np.asarray(buf.data, np.uint8)), np.float32).reshape(shape)
        axis = 1 if name in columns else 0
        if axis:
            q, scales = quantize_rows(np.ascontiguousarray(np.moveaxis(table, 1, 0)), bits)
            q = np.ascontiguousarray(np.moveaxis(q, 0, 1))
        else:
            q, scales = quantize_rows(table, bits)
        float_copy = schema.TensorT()
        float_copy.shape, float_copy.type = np.array(shape, np.int32), schema.TensorType.FLOAT32
        float_copy.name = f"{name}/dequantized".encode()
        model.buffers.append(schema.BufferT())
        float_copy.buffer = len(model.buffers) - 1
        sg.tensors.append(float_copy)
        quant = schema.QuantizationParametersT()
        quant.scale, quant.zeroPoint = scales, np.zeros(len(scales), np.int64)
        quant.quantizedDimension = axis
        tensor.quantization = quant
        tensor.type = schema.TensorType.INT4 if bits == 4 else schema.TensorType.INT8
        raw = pack_int4(q) if bits == 4 else q.astype(np.int8).tobytes()
        buf.data = np.frombuffer(raw, np.uint8)
        deq = schema.OperatorT()
        version = INT4_DEQUANTIZE_VERSION if bits == 4 else INT8_PER_ROW_DEQUANTIZE_VERSION
        deq.opcodeIndex = opcode_index(model, schema.BuiltinOperator.DEQUANTIZE, version)
        deq.inputs = np.array([op.inputs[slot]], np.int32)
        deq.outputs = np.array([len(sg.tensors) - 1], np.int32)
        deq.builtinOptionsType = schema.BuiltinOptions.NONE
        added.append(deq)
        done[name] = op.inputs[slot] = len(sg.tensors) - 1
    missing = sorted(set(tables) - set(done))
    if missing:
        raise InputFileError(
            f"no GATHER/EMBEDDING_LOOKUP table named {missing[0]}", hint="re-plan on this model"
        )
    sg.operators = [*added, *sg.operators]  # constants only: they may run first
    return _save(model, len(data))


def set_int4_versions(data: bytes) -> bytes:
    """Every DEQUANTIZE of an INT4 tensor at version 6 (what TFLite's converter writes), so the op-version
    probe names a runtime without int4 kernels; a model without one is returned unchanged."""
    schema = _schema()
    model = _load(data)
    changed = False
    for sg in model.subgraphs:
        for op in sg.operators:
            code = model.operatorCodes[op.opcodeIndex]
            if _builtin(code) != schema.BuiltinOperator.DEQUANTIZE or code.version >= INT4_DEQUANTIZE_VERSION:
                continue
            if sg.tensors[op.inputs[0]].type == schema.TensorType.INT4:
                op.opcodeIndex = opcode_index(
                    model, schema.BuiltinOperator.DEQUANTIZE, INT4_DEQUANTIZE_VERSION
                )
                changed = True
    return _save(model, len(data)) if changed else data


SMALLEST_NORMAL_FP16 = np.float16(2.0**-14)


def fix_zero_block_scales(data: bytes) -> bytes:
    """A blockwise int4 weight whose block is all zeros (a pruned model) gets a float16 scale of 0 from the
    LiteRT Quantizer (its 1e-9 floor underflows float16), which XNNPACK refuses ("unsupported scale value
    (0.000000) ... for INT4 tensor"). Each such block gets the smallest normal float16 scale and its values
    are set to 0, so it still dequantizes to 0; a model without one is returned unchanged."""
    schema = _schema()
    model = _load(data)
    changed = False
    for sg in model.subgraphs:
        for t in sg.tensors:
            q = t.quantization
            if q is None or q.detailsType != schema.QuantizationDetails.BlockwiseQuantization:
                continue
            holder = model.buffers[sg.tensors[q.details.scales].buffer]
            scales = np.frombuffer(bytes(np.asarray(holder.data, np.uint8)), np.float16).copy()
            zero = scales == 0
            if not zero.any() or t.type != schema.TensorType.INT4:
                continue
            block = int(q.details.blockSize)
            packed = np.asarray(model.buffers[t.buffer].data, np.uint8).copy()
            for i in np.flatnonzero(zero):  # block i covers values i*block .. (i+1)*block - 1, two a byte
                packed[i * block // 2 : (i + 1) * block // 2] = 0
            scales[zero] = SMALLEST_NORMAL_FP16
            holder.data = np.frombuffer(scales.tobytes(), np.uint8)
            model.buffers[t.buffer].data = packed
            changed = True
    return _save(model, len(data)) if changed else data


def blockwise_weights(data: bytes) -> list[str]:
    """The names of the tensors with blockwise scales (`int4_block*`: one float16 scale per block of
    inputs), which XNNPACK's blockwise kernel runs and MediaPipe 1.2.3 fails to open (measured)."""
    schema = _schema()
    model = _load(data)
    return [
        tensor_name(t)
        for sg in model.subgraphs
        for t in sg.tensors
        if t.quantization is not None
        and t.quantization.detailsType == schema.QuantizationDetails.BlockwiseQuantization
    ]
