"""Where the bytes of a .tflite go: constant tensors by what reads them, metadata, and the graph itself.

Every buffer is counted once (tensors may share one), by the role of the tensor that holds it:
- embedding: the table a GATHER / EMBEDDING_LOOKUP reads rows from (input 0);
- dense: the weights of FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, BATCH_MATMUL
  (a retrieval model's item table is the weight of its last FULLY_CONNECTED: dense);
- bias: input 2 of FULLY_CONNECTED / CONV_2D / DEPTHWISE_CONV_2D;
- other constants: everything else constant (shapes, axes, LayerNorm scales, attention-mask constants);
- metadata: the model's metadata buffers (MediaPipe's TFLITE_METADATA, min_runtime_version,
  CONVERSION_METADATA) and the associated files a packaged model carries as a zip after the flatbuffer
  (labels.txt, vocab.txt: `associated files` in `metadata`);
- graph: the rest of the file (op codes, tensor descriptors and names, quantization parameters, padding).
A weight_only or dynamic build keeps int8 weights behind a DEQUANTIZE: the role is that of the DEQUANTIZE's
output, so its weights still count as dense or embedding. The kinds add up to the file size exactly.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from converters.tflite_model import builtin_op_name, tflite_schema, verify_tflite

EMBEDDING, DENSE, BIAS, OTHER, METADATA, GRAPH = (
    "embedding",
    "dense",
    "bias",
    "other constants",
    "metadata",
    "graph",
)
KINDS = (EMBEDDING, DENSE, BIAS, OTHER, METADATA, GRAPH)
_LOOKUP_OPS = ("GATHER", "EMBEDDING_LOOKUP", "GATHER_ND")
_WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "BATCH_MATMUL")
_BIAS_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")
_PRIORITY = {EMBEDDING: 0, DENSE: 1, BIAS: 2, OTHER: 3}  # a tensor read in two roles takes the first


@dataclass(frozen=True)
class SizeBreakdown:
    """Bytes per kind (KINDS order, all present) and per metadata entry; `total` is the file size."""

    total: int
    kinds: dict[str, int]
    metadata: dict[str, int]


def _buffer_size(buf) -> int:
    if buf is None:
        return 0
    return int(buf.DataLength() or (buf.Size() if hasattr(buf, "Size") else 0))


def _role(op: str, position: int) -> str | None:
    if op in _LOOKUP_OPS and position == 0:
        return EMBEDDING
    if op in _WEIGHT_OPS and position == 1:
        return DENSE
    if op in _BIAS_OPS and position == 2:
        return BIAS
    return None


Readers = dict[int, list[tuple[str, int, tuple[int, ...]]]]  # tensor -> (op, input position, op outputs)


def _reader_role(readers: Readers, tensor: int, depth: int = 0) -> str:
    """The kind of a constant tensor by the ops that read it (through a DEQUANTIZE to its readers)."""
    found = []
    for op, pos, outs in readers.get(tensor, []):
        if op == "DEQUANTIZE" and pos == 0 and outs and depth < 4:
            found.append(_reader_role(readers, outs[0], depth + 1))
        else:
            found.append(_role(op, pos) or OTHER)
    return min(found, key=_PRIORITY.__getitem__) if found else OTHER


def size_by_kind(data: bytes, origin: str = "model") -> SizeBreakdown:
    """The breakdown of a .tflite's bytes (an InputFileError for anything but a TFLite model)."""
    verify_tflite(data, origin)
    schema = tflite_schema()
    model = schema.Model.GetRootAs(data, 0)
    buffers = [model.Buffers(i) for i in range(model.BuffersLength())]
    codes = []
    for i in range(model.OperatorCodesLength()):
        oc = model.OperatorCodes(i)
        codes.append(builtin_op_name(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())))
    role_of_buffer: dict[int, str] = {}
    for s in range(model.SubgraphsLength()):
        sg = model.Subgraphs(s)
        readers: Readers = {}
        for i in range(sg.OperatorsLength()):
            op = sg.Operators(i)
            outs = tuple(int(x) for x in op.OutputsAsNumpy()) if op.OutputsLength() else ()
            ins = [int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else []
            for pos, t in enumerate(ins):
                if t >= 0:
                    readers.setdefault(t, []).append((codes[op.OpcodeIndex()], pos, outs))

        for t in range(sg.TensorsLength()):
            b = sg.Tensors(t).Buffer()
            if 0 < b < len(buffers) and _buffer_size(buffers[b]):
                mine = _reader_role(readers, t)
                had = role_of_buffer.get(b)
                role_of_buffer[b] = mine if had is None else min(had, mine, key=_PRIORITY.__getitem__)
    metadata: dict[str, int] = {}
    meta_buffers = set()
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        b = entry.Buffer()
        name = entry.Name().decode("utf-8", "replace") if entry.Name() else f"metadata {i}"
        size = _buffer_size(buffers[b]) if 0 <= b < len(buffers) else 0
        metadata[name] = metadata.get(name, 0) + size
        meta_buffers.add(b)
    kinds = dict.fromkeys(KINDS, 0)
    for b, kind in role_of_buffer.items():
        if b not in meta_buffers:
            kinds[kind] += _buffer_size(buffers[b])
    attached = _associated_files(data)
    if attached:
        metadata["associated files"] = attached
    kinds[METADATA] = sum(metadata.values())
    kinds[GRAPH] = max(0, len(data) - sum(kinds.values()))
    return SizeBreakdown(total=len(data), kinds=kinds, metadata=metadata)


def _associated_files(data: bytes) -> int:
    """Bytes of the zip MediaPipe's metadata writer appends after the flatbuffer (0: none)."""
    if b"PK\x05\x06" not in data[-(1 << 16) - 22 :]:
        return 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return 0
    return len(data) - min(i.header_offset for i in infos) if infos else 0
