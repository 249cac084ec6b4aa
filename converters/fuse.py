"""Composed GELU subgraphs of a .tflite fused into one GELU op (every ONNX build, and mixed precision).

ONNX has no GELU before opset 20, so an exported BERT computes 0.5 * x * (1 + Erf(x / sqrt 2)), and
onnx2tf writes Erf as a rational approximation in elementwise ops: on all-MiniLM-L6-v2, 24 float ops per
layer on the widest activation (32 x 1536), about 15% of a dynamic-int8 invoke on this host, against one
XNNPACK GELU kernel (measured 14 us for that shape).

A region is fused only when it is provably GELU: a chain of elementwise ops whose only non-constant input
is x and whose only tensor read outside is y, evaluated here in numpy (float32, the model's own constants)
on x from -10 to 10 and equal to exact GELU (or to the tanh form, then `approximate`) within TOLERANCE.
Nothing runs the model and nothing is guessed from names; the same model always gives the same bytes.
y keeps its name and calibrated range, so a mixed plan names the fused op by y.

Every conversion mode has the chain in its own form: float32 constants; float16 constants behind
DEQUANTIZE ops; dynamic int8 (float chain, int8 weights of the next layer); full int8 (the chain's ops in
int8, QUANTIZE/DEQUANTIZE between its float parts). The region is evaluated on the float values the model
stands for (quantized constants dequantized, QUANTIZE/DEQUANTIZE as identity), so an int8 chain is proven
to approximate GELU and becomes one int8 GELU (a lookup table: closer to GELU than the chain's 24 rounding
steps). A constant factor k left on the output (GELU's 2 when the converter moved its 0.5 into the next
layer) goes into the next FULLY_CONNECTED layers exactly: float weights times k, or the per-channel
scales of quantized weights times k (no weight byte changes; a full-int8 y's scale divided by k, so the
layer's integers are the same); else one MUL by k stays (float models only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from converters.tflite_graph import Graph
from converters.tflite_model import opcode_index, tensor_name, tflite_schema

TOLERANCE = 2e-5  # max |region(x) - gelu(x)| on [-10, 10] (the Erf approximation's error is ~1e-6 there)
# ... when the chain's constants are stored as float16 (their 2^-11 rounding moves the chain off GELU:
# max 2.7e-4 measured on a tiny BERT; the fused GELU is then nearer exact GELU than the chain was)
TOLERANCE_FLOAT16 = 1e-3
MIN_OPS = 4  # a shorter region is not a composed GELU worth a rewrite
WINDOW = 64  # ops after x's producer that may belong to its region

_UNARY = {
    "ABS": np.abs,
    "NEG": np.negative,
    "EXP": np.exp,
    "SQRT": np.sqrt,
    "RSQRT": lambda a: 1 / np.sqrt(a),
    "SQUARE": np.square,
    "TANH": np.tanh,
    "LOGISTIC": lambda a: 1 / (1 + np.exp(-a)),
    "QUANTIZE": lambda a: a,  # in the float values the model stands for, (de)quantizing is the identity
    "DEQUANTIZE": lambda a: a,
}
_BINARY = {
    "ADD": np.add,
    "SUB": np.subtract,
    "MUL": np.multiply,
    "DIV": np.divide,
    "POW": np.power,
    "MAXIMUM": np.maximum,
    "MINIMUM": np.minimum,
}


def _gelu(x: np.ndarray, approximate: bool) -> np.ndarray:
    x = x.astype(np.float64)
    if approximate:
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def _elementwise(g: Graph, i: int) -> bool:
    op = g.ops[i]
    one = op.outputs is not None and len(op.outputs) == 1
    return one and (g.kind[i] in _UNARY or g.kind[i] in _BINARY) and _no_activation(op)


def _no_activation(op) -> bool:
    opts = op.builtinOptions
    return opts is None or not getattr(opts, "fusedActivationFunction", 0)


def _live_inputs(g: Graph) -> list[list[int] | None]:
    """Per op: its non-constant inputs if it is an elementwise op without a fused activation, else None."""
    return [
        [int(t) for t in g.ops[i].inputs if int(t) >= 0 and g.constant(int(t)) is None]
        if _elementwise(g, i)
        else None
        for i in range(len(g.ops))
    ]


def _region(g: Graph, x: int, live_inputs: list[list[int] | None]) -> list[int]:
    """Ops (graph order) computable from x and constants alone, within WINDOW ops of x's first reader."""
    readers = g.consumers.get(x, [])
    if not readers:
        return []
    avail, region = {x}, []
    start = min(readers)
    for i in range(start, min(len(g.ops), start + WINDOW)):
        live = live_inputs[i]
        if live and all(t in avail for t in live):
            region.append(i)
            avail.add(int(g.ops[i].outputs[0]))
    return region


def _slice(g: Graph, region: list[int], y: int) -> list[int] | None:
    """The ops of `region` that y depends on, if they form a closed island: nothing they write but y is
    read outside them or is a model output."""
    in_region = set(region)
    need, todo = set(), [g.producer[y]]
    while todo:
        i = todo.pop()
        if i in need:
            continue
        need.add(i)
        for t in g.ops[i].inputs:
            p = g.producer.get(int(t))
            if p is not None and p in in_region:
                todo.append(p)
    for i in need:
        t = int(g.ops[i].outputs[0])
        if t != y and (t in g.outputs or any(c not in need for c in g.consumers.get(t, []))):
            return None
    return sorted(need)


def _evaluate(g: Graph, ops: list[int], x: int, values: np.ndarray) -> np.ndarray:
    env = {x: values}
    for i in ops:
        op = g.ops[i]
        args = []
        for t in op.inputs:
            t = int(t)
            args.append(env[t] if t in env else g.constant(t))
        with np.errstate(all="ignore"):
            kind = g.kind[i]
            out = _UNARY[kind](args[0]) if kind in _UNARY else _BINARY[kind](args[0], args[1])
        env[int(op.outputs[0])] = np.asarray(out, np.float32)
    return env[int(g.ops[ops[-1]].outputs[0])]


def _which_gelu(g: Graph, ops: list[int], x: int) -> tuple[bool, float] | None:
    """(approximate, k) when the island computes k * GELU(x) (approximate: the tanh form; k: a constant
    the converter left outside, e.g. 2 when GELU's 0.5 went into the next layer's weights), else None."""
    shape = tuple(int(s) for s in g.sg.tensors[x].shape)
    n = int(np.prod(shape)) if shape else 1
    if n <= 0 or any(s <= 0 for s in shape):
        return None
    values = np.linspace(-10, 10, n, dtype=np.float32).reshape(shape)
    try:
        got = _evaluate(g, ops, x, values).astype(np.float64)
    except (ValueError, KeyError, TypeError):  # a shape that does not broadcast: not an elementwise island
        return None
    if got.shape != values.shape or not np.all(np.isfinite(got)):
        return None
    half = tflite_schema().TensorType.FLOAT16
    tol = TOLERANCE_FLOAT16 if any(g.sg.tensors[t].type == half for t in _sources(g, ops)) else TOLERANCE
    for approximate in (False, True):
        ref = _gelu(values, approximate)
        fit = float(np.float32(round(float(np.sum(got * ref) / np.sum(ref * ref)), 6)))
        power = math.copysign(2.0 ** round(math.log2(abs(fit))), fit) if abs(fit) > 1e-3 else fit
        for k in (power, fit):  # a power of two first: it folds exactly into the next layer
            if abs(k) > 1e-3 and float(np.max(np.abs(got - k * ref))) <= tol * max(1.0, abs(k)):
                return approximate, k
    return None


def _sources(g: Graph, ops: list[int]) -> set[int]:
    """The stored tensors behind the constants the ops read (through DEQUANTIZE)."""
    found = set()
    for i in ops:
        for t in (int(t) for t in g.ops[i].inputs):
            p = g.producer.get(t)
            found.add(int(g.ops[p].inputs[0]) if p is not None and g.kind[p] == "DEQUANTIZE" else t)
    return found


def _candidates(g: Graph) -> list[tuple[int, int, list[int], bool]]:
    """(x, y, island ops, (approximate, k)) of every composed GELU, disjoint, in graph order."""
    found, used = [], set()
    schema = tflite_schema()
    activations = (schema.TensorType.FLOAT32, schema.TensorType.INT8)  # float models and full int8
    live_inputs = _live_inputs(g)
    for x in sorted(g.consumers, key=lambda t: min(g.consumers[t])):
        if g.sg.tensors[x].type not in activations or not any(live_inputs[c] for c in g.consumers[x]):
            continue
        if g.constant(x) is not None:
            continue
        region = [i for i in _region(g, x, live_inputs) if i not in used]
        for i in reversed(region):  # the largest island first
            y = int(g.ops[i].outputs[0])
            island = _slice(g, region, y)
            if island is None or len(island) < MIN_OPS or g.sg.tensors[y].type != g.sg.tensors[x].type:
                continue
            approximate = _which_gelu(g, island, x)
            if approximate is not None:
                found.append((x, y, island, approximate))
                used.update(island)
                break
    return found


def fuse_gelu(model_bytes: bytes, only: Sequence[str] | None = None) -> tuple[bytes, list[str]]:
    """The model with each composed GELU island replaced by one GELU op, and the fused outputs' names
    (`only`: fuse just these, as a saved plan names them). Unchanged bytes when nothing matches."""
    import flatbuffers  # reason: the flatbuffers runtime is only needed to write the edited model

    schema = tflite_schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(model_bytes), 0)
    g = Graph(model)
    found = _candidates(g)
    if only is not None:
        found = [f for f in found if tensor_name(g.sg.tensors[f[1]]) in set(only)]
    replace: dict[int, list] = {}
    drop: set[int] = set()
    fused = []
    for x, y, island, (approximate, k) in found:
        quantized = g.sg.tensors[x].type != schema.TensorType.FLOAT32
        # int8 GELU is op version 2 (TFLite's op_version.cc); float, version 1
        code = opcode_index(model, schema.BuiltinOperator.GELU, 2 if quantized else 1)
        ops = [_gelu_op(schema, code, x, y, approximate)]
        if k != 1.0 and not _scale_readers(g, y, k):
            if quantized:  # an int8 MUL by k would need its own scales: the chain stays
                continue
            ops = _gelu_times(schema, model, g, ops[0], y, k)
        replace[island[-1]] = ops  # where y was written: every reader of y comes after it
        drop.update(island[:-1])
        fused.append(y)
    if not fused:
        return model_bytes, []
    drop.update(_constant_dequantizes(g, drop | set(replace)))
    g.sg.operators = [new for i, op in enumerate(g.ops) if i not in drop for new in replace.get(i, [op])]
    builder = flatbuffers.Builder(len(model_bytes) + 65536)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), [tensor_name(g.sg.tensors[y]) for y in fused]


def _constant_dequantizes(g: Graph, inside: set[int]) -> set[int]:
    """The DEQUANTIZE ops that feed constants (float16 models) only to the fused islands: dead now."""
    dead = set()
    for i in inside:
        for t in g.ops[i].inputs:
            p = g.producer.get(int(t))
            if p is None or g.kind[p] != "DEQUANTIZE" or g.constant(int(t)) is None:
                continue
            if int(t) not in g.outputs and all(c in inside for c in g.consumers.get(int(t), [])):
                dead.add(p)
    return dead


def _gelu_op(schema, code: int, x: int, y: int, approximate: bool):
    op = schema.OperatorT()
    op.opcodeIndex = code
    op.inputs, op.outputs = np.array([x], np.int32), np.array([y], np.int32)
    op.builtinOptionsType = schema.BuiltinOptions.GeluOptions
    op.builtinOptions = schema.GeluOptionsT()
    op.builtinOptions.approximate = approximate
    return op


def _scale_range(t, k: float) -> None:
    """A tensor's calibrated (min, max), and its int8 scale, after its values are divided by k > 0."""
    q = t.quantization
    if q is not None and q.min is not None and q.max is not None:
        q.min, q.max = np.asarray(q.min, np.float32) / k, np.asarray(q.max, np.float32) / k
    if q is not None and q.scale is not None and len(q.scale):
        q.scale = (np.asarray(q.scale, np.float32) / np.float32(k)).astype(np.float32)


def _owned(g: Graph, t: int) -> bool:
    """t's buffer belongs to t alone (rewriting its bytes changes nothing else)."""
    return sum(1 for other in g.sg.tensors if other.buffer == g.sg.tensors[t].buffer) == 1


def _weight_fold(g: Graph, w: int):
    """How k goes into a FULLY_CONNECTED weight w: ("data", tensor) for float32 or float16 bytes that
    layer alone reads (float16: behind a DEQUANTIZE), ("scale", tensor) for quantized weights (their
    scales; a weight other layers share too gets its own tensor on the same bytes), None when it cannot."""
    types = tflite_schema().TensorType
    t = g.sg.tensors[w]
    q = t.quantization
    if t.type in (types.INT8, types.UINT8) and q is not None and q.scale is not None and len(q.scale):
        return ("scale", w) if g.data(w) is not None else None
    if len(g.consumers.get(w, [])) != 1:
        return None
    p = g.producer.get(w)
    if p is not None and g.kind[p] == "DEQUANTIZE":
        src = int(g.ops[p].inputs[0])
        fp16 = g.sg.tensors[src].type == types.FLOAT16 and g.data(src) is not None
        return ("data", src) if fp16 and len(g.consumers.get(src, [])) == 1 and _owned(g, src) else None
    if g.data(w) is None or t.type != types.FLOAT32:
        return None
    return ("data", w) if _owned(g, w) else None


def _scale_readers(g: Graph, y: int, k: float) -> bool:
    """k * GELU folded into y's readers, when they are all FULLY_CONNECTED layers reading y as their
    input with weights of their own (exact for a power of two such as GELU's 2): float weights times k,
    or quantized weights' scales times k (the int8 bytes stay; an int8 y's scale is divided by k)."""
    readers = g.consumers.get(y, [])
    if k <= 0 or y in g.outputs or not readers or math.frexp(k)[0] != 0.5:
        return False
    folds = []
    for i in readers:
        op = g.ops[i]
        if g.kind[i] != "FULLY_CONNECTED" or int(op.inputs[0]) != y or len(op.inputs) < 2:
            return False
        fold = _weight_fold(g, int(op.inputs[1]))
        if fold is None:
            return False
        folds.append((*fold, i))
    writes = {}
    for how, w, _ in folds:
        t = g.sg.tensors[w]
        if how == "data":
            dtype = np.float16 if t.type == tflite_schema().TensorType.FLOAT16 else np.float32
            raw = np.frombuffer(bytes(g.model.buffers[t.buffer].data), dtype)
            writes[w] = (raw * dtype(k)).astype(dtype)
            if not np.all(np.isfinite(writes[w][np.isfinite(raw)])):
                return False  # float16 overflow: nothing written, the MUL stays
    for how, w, i in folds:
        t = g.sg.tensors[w]
        if how == "data":
            g.model.buffers[t.buffer].data = np.frombuffer(writes[w].tobytes(), np.uint8)
            continue
        if len(g.consumers[w]) > 1:  # shared (equal weights deduplicated): this layer's own tensor
            t = _own_tensor(g, w, i, k)
        t.quantization.scale = (np.asarray(t.quantization.scale, np.float32) * np.float32(k)).astype(
            np.float32
        )
    _scale_range(g.sg.tensors[y], k)
    return True


def _own_tensor(g: Graph, w: int, reader: int, k: float):
    """A copy of tensor w (the same buffer, its own quantization) that op `reader` reads instead."""
    src, copy = g.sg.tensors[w], tflite_schema().TensorT()
    copy.shape, copy.type, copy.buffer = np.array(src.shape, np.int32), src.type, src.buffer
    copy.name = f"{tensor_name(src)}/x{k:g}".encode()
    copy.quantization = tflite_schema().QuantizationParametersT()
    for field in ("scale", "zeroPoint", "quantizedDimension", "min", "max"):
        setattr(copy.quantization, field, getattr(src.quantization, field))
    g.sg.tensors.append(copy)
    new = len(g.sg.tensors) - 1
    g.ops[reader].inputs[1] = new
    g.consumers[w].remove(reader)
    g.consumers[new] = [reader]
    return copy


def _gelu_times(schema, model, g: Graph, gelu, y: int, k: float) -> list:
    """GELU into a new tensor, then a MUL by the constant k into y."""
    src = g.sg.tensors[y]
    mid = schema.TensorT()
    mid.shape, mid.type, mid.buffer = np.array(src.shape, np.int32), src.type, 0
    mid.name = (tensor_name(src) + "/gelu").encode()
    if src.quantization is not None:
        mid.quantization = schema.QuantizationParametersT()
        mid.quantization.min, mid.quantization.max = src.quantization.min, src.quantization.max
        if k > 0:
            _scale_range(mid, k)
    const = schema.TensorT()
    const.shape, const.type, const.name = (
        np.array([], np.int32),
        src.type,
        (tensor_name(src) + "/gelu_k").encode(),
    )
    buf = schema.BufferT()
    buf.data = np.frombuffer(np.float32(k).tobytes(), np.uint8)
    model.buffers.append(buf)
    const.buffer = len(model.buffers) - 1
    g.sg.tensors += [mid, const]
    gelu.outputs = np.array([len(g.sg.tensors) - 2], np.int32)
    mul = schema.OperatorT()
    mul.opcodeIndex = opcode_index(model, schema.BuiltinOperator.MUL)
    mul.inputs = np.array([len(g.sg.tensors) - 2, len(g.sg.tensors) - 1], np.int32)
    mul.outputs = np.array([y], np.int32)
    mul.builtinOptionsType = schema.BuiltinOptions.MulOptions
    mul.builtinOptions = schema.MulOptionsT()
    return [gelu, mul]
