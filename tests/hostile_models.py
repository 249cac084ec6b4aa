"""Tiny .tflite and ONNX files built in code for the hostile-input tests (no TensorFlow needed)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from typing import Any

import flatbuffers


def tflite_bytes(mutate: Callable[[Any], None] | None = None, metadata: bytes | None = None) -> bytes:
    """ADD(x, w) -> y as a valid .tflite; `mutate(model_t)` breaks it on purpose before packing."""
    from ai_edge_litert import schema_py_generated as s

    def tensor(name: str, buffer: int, shape: list[int]) -> Any:
        t = s.TensorT()
        t.name, t.buffer, t.shape, t.type = name.encode(), buffer, shape, s.TensorType.FLOAT32
        return t

    model = s.ModelT()
    model.version = 3
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.ADD
    code.version = 1
    model.operatorCodes = [code]
    empty, weights = s.BufferT(), s.BufferT()
    weights.data = list(b"\0\0\x80?" * 4)
    model.buffers = [empty, weights, s.BufferT()]
    sg = s.SubGraphT()
    sg.tensors = [tensor("x", 0, [1, 4]), tensor("w", 1, [1, 4]), tensor("y", 2, [1, 4])]
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1], [2]
    sg.operators, sg.inputs, sg.outputs = [op], [0], [2]
    model.subgraphs = [sg]
    if metadata is not None:
        md_buf = s.BufferT()
        md_buf.data = list(metadata)
        model.buffers.append(md_buf)
        md = s.MetadataT()
        md.name, md.buffer = b"TFLITE_METADATA", len(model.buffers) - 1
        model.metadata = [md]
    if mutate is not None:
        mutate(model)
    b = flatbuffers.Builder(0)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def empty_metadata() -> bytes:
    """A MediaPipe metadata flatbuffer (identifier M001) with no fields set."""
    b = flatbuffers.Builder(0)
    b.StartObject(0)
    b.Finish(b.EndObject(), file_identifier=b"M001")
    return bytes(b.Output())


def with_zip(model: bytes, files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return model + buf.getvalue()
