"""Read a .tflite flatbuffer without TensorFlow: ops and op versions, tensors, quant params, sizes."""

from __future__ import annotations

import gzip
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolchain.base.errors import InputFileError

_TYPE_NAMES: dict[int, str] = {}
_OP_NAMES: dict[int, str] = {}


def tflite_schema():
    """The generated flatbuffer schema module of .tflite files (LiteRT's, or TF's copy of it)."""
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # pragma: no cover - fall back to TF's copy of the same generated module
        from tensorflow.lite.python import schema_py_generated as schema
    if not _OP_NAMES:
        _OP_NAMES.update({v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")})
        _TYPE_NAMES.update({v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")})
    return schema


def builtin_op_name(code: int) -> str:
    """The BuiltinOperator name of an op code (`OP_<code>` when the schema does not know it)."""
    tflite_schema()
    return _OP_NAMES.get(code, f"OP_{code}")


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    is_constant: bool
    nbytes: int
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()


@dataclass(frozen=True)
class OpInfo:
    index: int
    op: str
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    custom: bool = False


@dataclass
class TFLiteModel:
    """What is inside a .tflite: enough to check kernels, op versions and sizes."""

    size_bytes: int
    gzip_bytes: int
    tensors: list[TensorInfo]
    ops: list[OpInfo]
    inputs: list[int]
    outputs: list[int]
    opcodes: dict[str, int] = field(default_factory=dict)  # op name -> highest version used
    subgraphs: int = 1
    metadata_names: list[str] = field(default_factory=list)

    @property
    def op_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(o.op for o in self.ops).items()))

    @property
    def parameter_count(self) -> int:
        return sum(int(np.prod(t.shape)) if t.shape else 1 for t in self.tensors if t.is_constant)

    @property
    def weight_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors if t.is_constant)

    def tensor(self, index: int) -> TensorInfo:
        return self.tensors[index]

    def input_dtypes(self, op: OpInfo) -> list[str]:
        return [self.tensors[i].dtype for i in op.inputs if i >= 0]

    def custom_ops(self) -> list[str]:
        return sorted({o.op for o in self.ops if o.custom})

    def summary(self) -> dict:
        return {
            "size_bytes": self.size_bytes,
            "gzip_bytes": self.gzip_bytes,
            "parameters": self.parameter_count,
            "weight_bytes": self.weight_bytes,
            "ops": self.op_counts,
            "op_versions": dict(sorted(self.opcodes.items())),
            "inputs": [_io_spec(self.tensors[i]) for i in self.inputs],
            "outputs": [_io_spec(self.tensors[i]) for i in self.outputs],
        }


def _io_spec(t: TensorInfo) -> dict:
    spec = {"name": t.name, "dtype": t.dtype, "shape": list(t.shape_signature or t.shape)}
    if t.scales:
        spec["quantization"] = {"scale": t.scales[0], "zero_point": t.zero_points[0]}
    return spec


def gzip_size(data: bytes) -> int:
    """Size of the download: gzip level 9 with a fixed header, so the number is reproducible."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def _tensor(schema, t, idx: int, buffers) -> TensorInfo:
    q = t.Quantization()
    scales = tuple(float(s) for s in q.ScaleAsNumpy()) if q is not None and q.ScaleLength() else ()
    zps = tuple(int(z) for z in q.ZeroPointAsNumpy()) if q is not None and q.ZeroPointLength() else ()
    buf = buffers[t.Buffer()] if t.Buffer() < len(buffers) else None
    nbytes = 0
    if buf is not None:
        nbytes = buf.DataLength() or int(buf.Size() if hasattr(buf, "Size") else 0)
    shape = tuple(int(x) for x in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    sig = tuple(int(x) for x in t.ShapeSignatureAsNumpy()) if t.ShapeSignatureLength() else shape
    name = t.Name().decode("utf-8", "replace") if t.Name() else f"t{idx}"
    return TensorInfo(
        idx, name, _TYPE_NAMES.get(t.Type(), str(t.Type())), shape, sig, nbytes > 0, nbytes, scales, zps
    )


def parse_tflite(data: bytes, origin: str = "model") -> TFLiteModel:
    """Parse flatbuffer bytes; anything that is not a TFLite model is an InputFileError."""
    schema = tflite_schema()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise InputFileError(f"{origin} is not a TFLite model (no TFL3 identifier)", hint="re-convert it")
    try:
        model = schema.Model.GetRootAs(data, 0)
        buffers = [model.Buffers(i) for i in range(model.BuffersLength())]
        codes = []
        for i in range(model.OperatorCodesLength()):
            oc = model.OperatorCodes(i)
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            custom = oc.CustomCode().decode() if oc.CustomCode() else None
            codes.append((custom or builtin_op_name(code), oc.Version(), custom is not None))
        sg = model.Subgraphs(0)
        tensors = [_tensor(schema, sg.Tensors(i), i, buffers) for i in range(sg.TensorsLength())]
        ops = []
        for i in range(sg.OperatorsLength()):
            op = sg.Operators(i)
            name, version, custom = codes[op.OpcodeIndex()]
            ins = tuple(int(x) for x in op.InputsAsNumpy()) if op.InputsLength() else ()
            outs = tuple(int(x) for x in op.OutputsAsNumpy()) if op.OutputsLength() else ()
            ops.append(OpInfo(i, name, version, ins, outs, custom))
        opcodes: dict[str, int] = {}
        for name, version, _ in codes:
            opcodes[name] = max(version, opcodes.get(name, 0))
        meta = [model.Metadata(i).Name().decode() for i in range(model.MetadataLength())]
        return TFLiteModel(
            size_bytes=len(data),
            gzip_bytes=gzip_size(data),
            tensors=tensors,
            ops=ops,
            inputs=[int(x) for x in sg.InputsAsNumpy()],
            outputs=[int(x) for x in sg.OutputsAsNumpy()],
            opcodes=opcodes,
            subgraphs=model.SubgraphsLength(),
            metadata_names=meta,
        )
    except InputFileError:
        raise
    except Exception as err:
        raise InputFileError(
            f"{origin} is a corrupt TFLite model ({err.__class__.__name__})",
            hint="re-convert or re-download it",
        ) from None


def read_tflite(path: Path) -> TFLiteModel:
    if not Path(path).is_file():
        raise InputFileError(f"model not found: {path}", hint="check the path")
    return parse_tflite(Path(path).read_bytes(), origin=str(path))


WEIGHT_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_3D", "TRANSPOSE_CONV", "BATCH_MATMUL")


def non_int8_weight_ops(model: TFLiteModel) -> list[str]:
    """FC/conv ops whose activation or weight inputs are not int8: empty means a full-integer model."""
    bad = []
    for op in model.ops:
        if op.op in WEIGHT_OPS:
            dtypes = [model.tensors[i].dtype for i in op.inputs[:2] if i >= 0]
            if any(d != "INT8" for d in dtypes):
                bad.append(f"{op.op}#{op.index}({'/'.join(dtypes)})")
    return bad
