"""Cut a .tflite into single-op models (flatbuffer rewrite, no TensorFlow) for per-op timing on any runtime.

Each slice holds one operator of the main subgraph: its constant inputs keep their weights, its other inputs
become the slice's inputs and its outputs the slice's outputs, so it can be fed the real intermediate tensors
that the whole model computes. Also builds the tiny models the profiler needs: a zero-op model (the fixed
cost of one `invoke()` call, subtracted from every timing) and a one-op ADD model (the self-test).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.tflite_model import builtin_op_name, tflite_schema
from toolchain.base.errors import InputFileError

# Ops that call other subgraphs cannot run alone.
_CONTROL_FLOW = {"WHILE", "IF", "CALL_ONCE", "CALL", "STABLEHLO_COMPOSITE"}


def _schema():

    return tflite_schema()


@dataclass(frozen=True)
class Slice:
    """One operator as a standalone model; inputs/outputs are tensor indices of the full model."""

    op_index: int
    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    model: bytes | None  # None when the op cannot run alone (reason says why)
    reason: str = ""
    feeds: tuple[int, ...] = ()  # full-model tensors that feed the slice's inputs, in its input order


def load_model_t(data: bytes):
    schema = _schema()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise InputFileError("not a TFLite model (no TFL3 identifier)", hint="re-convert it")
    try:
        return schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as err:
        raise InputFileError(
            f"corrupt TFLite model ({err.__class__.__name__})", hint="re-convert or re-download it"
        ) from None


def pack(model_t) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model_t.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _op_name(model_t, op) -> str:

    code = model_t.operatorCodes[op.opcodeIndex]
    if code.customCode:
        return code.customCode.decode() if isinstance(code.customCode, bytes) else str(code.customCode)
    return builtin_op_name(max(code.builtinCode, code.deprecatedBuiltinCode))


def _is_constant(model_t, tensor) -> bool:
    buf = model_t.buffers[tensor.buffer] if tensor.buffer < len(model_t.buffers) else None
    has_data = buf is not None and (
        (buf.data is not None and len(buf.data) > 0) or (getattr(buf, "size", 0) or 0) > 0
    )
    return bool(has_data)


def slice_model(data: bytes) -> list[Slice]:
    """One Slice per operator of subgraph 0, in execution order."""
    model_t = load_model_t(data)
    schema = _schema()
    sg = model_t.subgraphs[0]
    slices = []
    for idx, op in enumerate(sg.operators or []):
        name = _op_name(model_t, op)
        ins = tuple(int(i) for i in (op.inputs if op.inputs is not None else []))
        outs = tuple(int(i) for i in (op.outputs if op.outputs is not None else []))
        if name in _CONTROL_FLOW or (op.intermediates is not None and len(op.intermediates)):
            reason = "calls other subgraphs" if name in _CONTROL_FLOW else "has intermediate tensors"
            slices.append(Slice(idx, name, ins, outs, None, reason))
            continue
        used = [i for i in dict.fromkeys(ins + outs) if i >= 0]
        remap = {old: new for new, old in enumerate(used)}
        buffers = [schema.BufferT()]  # buffer 0 is the empty buffer by convention
        tensors = []
        for old in used:
            t = copy.copy(sg.tensors[old])
            if _is_constant(model_t, t) and old not in outs:
                buffers.append(model_t.buffers[t.buffer])
                t.buffer = len(buffers) - 1
            else:
                t.buffer = 0
            tensors.append(t)
        live_ins = [remap[i] for i in dict.fromkeys(ins) if i >= 0 and tensors[remap[i]].buffer == 0]
        new_op = copy.copy(op)
        new_op.opcodeIndex = 0
        new_op.inputs = [remap[i] if i >= 0 else -1 for i in ins]
        new_op.outputs = [remap[i] for i in outs]
        sub = schema.SubGraphT()
        sub.tensors, sub.operators = tensors, [new_op]
        sub.inputs, sub.outputs = live_ins, [remap[i] for i in outs]
        sub.name = f"op{idx}_{name}"
        m = schema.ModelT()
        m.version = model_t.version
        m.description = b"edgecomp single-op slice"
        m.operatorCodes = [model_t.operatorCodes[op.opcodeIndex]]
        m.subgraphs, m.buffers = [sub], buffers
        feeds = tuple(used[i] for i in live_ins)
        slices.append(Slice(idx, name, ins, outs, pack(m), feeds=feeds))
    return slices


def _tensor(schema, name: str, shape: list[int], buffer: int = 0):
    t = schema.TensorT()
    t.name, t.shape, t.type, t.buffer = name.encode(), shape, schema.TensorType.FLOAT32, buffer
    return t


def null_model(shape: tuple[int, ...] = (1, 4)) -> bytes:
    """A model with no operator (its input is its output): what one invoke() call costs by itself."""
    schema = _schema()
    sub = schema.SubGraphT()
    sub.tensors, sub.operators, sub.inputs, sub.outputs = [_tensor(schema, "x", list(shape))], [], [0], [0]
    m = schema.ModelT()
    m.version, m.subgraphs, m.buffers, m.operatorCodes = 3, [sub], [schema.BufferT()], []
    return pack(m)


def add_model(n_ops: int = 1, width: int = 8) -> bytes:
    """x + c repeated n_ops times on a float [1, width] tensor: the profiler's self-test model."""
    schema = _schema()
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.ADD
    code.version = 1
    const = schema.BufferT()
    const.data = np.full(width, 0.5, np.float32).view(np.uint8)
    tensors = [_tensor(schema, "x", [1, width]), _tensor(schema, "c", [1, width], buffer=1)]
    ops = []
    for i in range(n_ops):
        tensors.append(_tensor(schema, f"y{i}", [1, width]))
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = 0, [0 if i == 0 else len(tensors) - 2, 1], [len(tensors) - 1]
        op.builtinOptionsType = schema.BuiltinOptions.AddOptions
        op.builtinOptions = schema.AddOptionsT()
        ops.append(op)
    sub = schema.SubGraphT()
    sub.tensors, sub.operators, sub.inputs, sub.outputs = tensors, ops, [0], [len(tensors) - 1]
    m = schema.ModelT()
    m.version, m.subgraphs, m.operatorCodes = 3, [sub], [code]
    m.buffers = [schema.BufferT(), const]
    return pack(m)


def with_custom_op(data: bytes, op_index: int = 0, name: str = "EdgecompMissingOp") -> bytes:
    """Replace one op's kernel by a custom op no runtime has (tests the 'runtime lacks this op' path)."""
    schema = _schema()
    m = load_model_t(data)
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode, code.version = name.encode(), 1
    m.operatorCodes.append(code)
    op = m.subgraphs[0].operators[op_index]
    op.opcodeIndex = len(m.operatorCodes) - 1
    op.builtinOptionsType, op.builtinOptions = 0, None
    return pack(m)


def write_slices(slices: list[Slice], out_dir: Path) -> dict[int, str]:
    """Write the runnable slices as op<index>.tflite; returns op index -> path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for s in slices:
        if s.model is not None:
            p = out_dir / f"op{s.op_index:04d}.tflite"
            p.write_bytes(s.model)
            paths[s.op_index] = str(p)
    return paths
