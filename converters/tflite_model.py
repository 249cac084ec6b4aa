"""Read a .tflite flatbuffer without TensorFlow: ops and op versions, tensors, quant params, sizes."""

from __future__ import annotations

import gzip
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from converters.parameters import tflite_parameters
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


def tensor_name(tensor) -> str:
    """A tensor's name as str (the object API holds bytes)."""
    return tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)


def opcode_index(model, builtin: int, version: int | None = None) -> int:
    """Index of the builtin op `builtin` in `model.operatorCodes` (object API), added when missing.
    `version`: that version exactly (and added with it); None: any version (added as version 1)."""
    for i, oc in enumerate(model.operatorCodes or []):
        same = max(oc.builtinCode, oc.deprecatedBuiltinCode) == builtin and not oc.customCode
        if same and (version is None or oc.version == version):
            return i
    oc = tflite_schema().OperatorCodeT()
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = builtin, min(builtin, 127), version or 1
    model.operatorCodes = [*(model.operatorCodes or []), oc]
    return len(model.operatorCodes) - 1


def builtin_op_names() -> list[str]:
    """Every BuiltinOperator name the schema knows (the valid spellings of an op type)."""
    tflite_schema()
    return sorted(_OP_NAMES.values())


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
        """Weight values (converters/parameters.py: the one definition, shared with Keras and ONNX)."""

        return tflite_parameters(self.tensors)

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


MAX_RANK = 16
MAX_TENSOR_ELEMENTS = 1 << 28  # 1 GiB of float32 in one tensor: no on-device text model comes close


class _Budget:
    """Counts the vector elements a verification visits: shared sub-tables cannot make it quadratic."""

    def __init__(self, size: int) -> None:
        self.left = size // 2 + 1024  # every element costs >= 4 bytes in a file that does not share tables

    def take(self, n: int, what: str, size: int) -> int:
        if n < 0 or n * 4 > size:
            raise ValueError(f"{what}: {n} entries cannot fit in {size} bytes")
        self.left -= n
        if self.left < 0:
            raise ValueError(f"{what}: more entries than the file can hold")
        return n


def verify_tflite(data: bytes, origin: str = "model") -> None:
    """Check a .tflite's structure before anything is read or allocated from it: one InputFileError.

    The generated flatbuffer classes trust the file: a vector length of 2**32 makes `range()` loops run
    for hours, a tensor's buffer index past the end crashes the runtime, a shape of 2**40 makes numpy try to
    allocate terabytes (issue 12). Checked here: vector lengths fit in the file, buffer/tensor/opcode/op
    indices are in range, buffer offsets and sizes lie inside the file, shapes are non-negative and bounded,
    there is a subgraph and it has at least one output.
    """
    schema = tflite_schema()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise InputFileError(f"{origin} is not a TFLite model (no TFL3 identifier)", hint="re-convert it")
    try:
        _verify(schema.Model.GetRootAs(data, 0), len(data), _Budget(len(data)))
    except _Invalid as err:
        raise InputFileError(f"{origin} is an invalid TFLite model: {err}", hint="re-convert it") from None
    except Exception as err:  # an offset past the end of the bytes, a truncated table
        raise InputFileError(
            f"{origin} is a corrupt TFLite model ({err.__class__.__name__}: {str(err)[:120]})",
            hint="re-convert or re-download it",
        ) from None


class _Invalid(Exception):
    """A structural rule the file breaks (index out of range, zero outputs...)."""


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise _Invalid(message)


def _verify(model, size: int, budget: _Budget) -> None:
    n_codes = budget.take(model.OperatorCodesLength(), "operator codes", size)
    n_buffers = budget.take(model.BuffersLength(), "buffers", size)
    n_subgraphs = budget.take(model.SubgraphsLength(), "subgraphs", size)
    _check(n_subgraphs > 0, "it has no subgraph")
    for i in range(n_buffers):
        buf = model.Buffers(i)
        length = buf.DataLength()
        _check(length <= size, f"buffer {i} claims {length} bytes in a {size}-byte file")
        offset, extent = int(buf.Offset()), int(buf.Size())
        _check(offset == 0 or (offset > 0 and offset + extent <= size), f"buffer {i} lies outside the file")
    for i in range(n_codes):
        _utf8(model.OperatorCodes(i).CustomCode(), f"operator code {i}")
    for i in range(budget.take(model.MetadataLength(), "metadata", size)):
        md = model.Metadata(i)
        _check(md.Buffer() < n_buffers, f"metadata {i} names buffer {md.Buffer()}")
        _utf8(md.Name(), f"metadata {i}")
    for s in range(n_subgraphs):
        sg = model.Subgraphs(s)
        n_tensors = budget.take(sg.TensorsLength(), f"subgraph {s} tensors", size)
        for t in range(n_tensors):
            _verify_tensor(sg.Tensors(t), f"tensor {t}", n_buffers, size, budget)
        for kind, n in (("input", sg.InputsLength()), ("output", sg.OutputsLength())):
            ids = sg.InputsAsNumpy() if kind == "input" else sg.OutputsAsNumpy()
            budget.take(n, f"subgraph {s} {kind}s", size)
            _check(
                all(0 <= int(x) < n_tensors for x in (ids if n else ())), f"a {kind} index is out of range"
            )
        _check(s > 0 or sg.OutputsLength() > 0, "the main subgraph has no output")
        for o in range(budget.take(sg.OperatorsLength(), f"subgraph {s} operators", size)):
            op = sg.Operators(o)
            _check(0 <= op.OpcodeIndex() < n_codes, f"operator {o} has opcode index {op.OpcodeIndex()}")
            for n, ids in ((op.InputsLength(), op.InputsAsNumpy), (op.OutputsLength(), op.OutputsAsNumpy)):
                budget.take(n, f"operator {o} tensors", size)
                bad = [int(x) for x in (ids() if n else ()) if not -1 <= int(x) < n_tensors]
                _check(not bad, f"operator {o} names tensor {bad[:1]} of {n_tensors}")


def _utf8(name: bytes | None, what: str) -> None:
    try:
        (name or b"").decode("utf-8")
    except UnicodeDecodeError:
        raise _Invalid(f"{what} has a name that is not UTF-8") from None


def _verify_tensor(t, what: str, n_buffers: int, size: int, budget: _Budget) -> None:
    _check(t.Buffer() < n_buffers, f"{what} names buffer {t.Buffer()} of {n_buffers}")
    _utf8(t.Name(), what)
    for name, n, dims, low in (
        ("shape", t.ShapeLength(), t.ShapeAsNumpy, -1),  # dynamic dims: 1 in shape, but be lenient
        ("shape signature", t.ShapeSignatureLength(), t.ShapeSignatureAsNumpy, -1),
    ):
        _check(budget.take(n, what, size) <= MAX_RANK, f"{what} has rank {n} (at most {MAX_RANK})")
        values = [int(x) for x in dims()] if n else []
        _check(all(d >= low for d in values), f"{what} has a negative {name} {values}")
        elements = 1
        for d in values:
            elements *= max(d, 1)
        _check(elements <= MAX_TENSOR_ELEMENTS, f"{what} has {name} {values}: too large to allocate")
    q = t.Quantization()
    if q is not None:
        budget.take(q.ScaleLength() + q.ZeroPointLength(), f"{what} quantization", size)


def parse_tflite(data: bytes, origin: str = "model") -> TFLiteModel:
    """Parse flatbuffer bytes after `verify_tflite`; anything but a TFLite model is an InputFileError."""
    verify_tflite(data, origin)
    schema = tflite_schema()
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
