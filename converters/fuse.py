"""Composed GELU subgraphs of a calibrated float model fused into one GELU op (mixed precision).

ONNX has no GELU before opset 20, so an exported BERT computes 0.5 * x * (1 + Erf(x / sqrt 2)), and
onnx2tf writes Erf as a rational approximation in elementwise ops: on all-MiniLM-L6-v2, 24 float ops per
layer on the widest activation (32 x 1536), about 15% of a dynamic-int8 invoke on this host, against one
XNNPACK GELU kernel (measured 14 us for that shape). A mixed model keeps these ops float either way, so
fusing them is what lets its int8 FCs pay off against dynamic's hybrid ones.

A region is fused only when it is provably GELU: a chain of elementwise ops whose only non-constant input
is x and whose only tensor read outside is y, evaluated here in numpy (float32, the model's own constants)
on x from -10 to 10 and equal to exact GELU (or to the tanh form, then `approximate`) within TOLERANCE.
Nothing runs the model and nothing is guessed from names; the same model always gives the same bytes.
y keeps its name and calibrated range, so a mixed plan names the fused op by y.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from converters.tflite_model import builtin_op_name, opcode_index, tensor_name, tflite_schema

TOLERANCE = 2e-5  # max |region(x) - gelu(x)| on [-10, 10] (the Erf approximation's error is ~1e-6 there)
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


class _Graph:
    """Producers, consumers and constants of subgraph 0 of a ModelT."""

    def __init__(self, model) -> None:
        self.model, self.sg = model, model.subgraphs[0]
        self.ops = list(self.sg.operators)
        codes = [model.operatorCodes[op.opcodeIndex] for op in self.ops]
        self.kind = [builtin_op_name(max(c.builtinCode, c.deprecatedBuiltinCode)) for c in codes]
        self.producer: dict[int, int] = {}
        self.consumers: dict[int, list[int]] = {}
        for i, op in enumerate(self.ops):
            for t in op.outputs if op.outputs is not None else []:
                self.producer[int(t)] = i
            for t in op.inputs if op.inputs is not None else []:
                if int(t) >= 0:
                    self.consumers.setdefault(int(t), []).append(i)
        self.outputs = {int(t) for t in self.sg.outputs}

    def constant(self, t: int) -> np.ndarray | None:
        tensor = self.sg.tensors[t]
        data = self.model.buffers[tensor.buffer].data if tensor.buffer else None
        if t in self.producer or data is None or len(data) == 0:
            return None
        if tensor.type != tflite_schema().TensorType.FLOAT32:
            return None
        shape = tuple(int(s) for s in tensor.shape) if tensor.shape is not None else ()
        return np.frombuffer(bytes(data), np.float32).reshape(shape)

    def elementwise(self, i: int) -> bool:
        op = self.ops[i]
        one = op.outputs is not None and len(op.outputs) == 1
        return one and (self.kind[i] in _UNARY or self.kind[i] in _BINARY) and _no_activation(op)


def _no_activation(op) -> bool:
    opts = op.builtinOptions
    return opts is None or not getattr(opts, "fusedActivationFunction", 0)


def _region(g: _Graph, x: int) -> list[int]:
    """Ops (graph order) computable from x and constants alone, within WINDOW ops of x's first reader."""
    readers = g.consumers.get(x, [])
    if not readers:
        return []
    avail, region = {x}, []
    start = min(readers)
    for i in range(start, min(len(g.ops), start + WINDOW)):
        if not g.elementwise(i):
            continue
        ins = [int(t) for t in g.ops[i].inputs if int(t) >= 0]
        live = [t for t in ins if g.constant(t) is None]
        if live and all(t in avail for t in live):
            region.append(i)
            avail.add(int(g.ops[i].outputs[0]))
    return region


def _slice(g: _Graph, region: list[int], y: int) -> list[int] | None:
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


def _evaluate(g: _Graph, ops: list[int], x: int, values: np.ndarray) -> np.ndarray:
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


def _which_gelu(g: _Graph, ops: list[int], x: int) -> tuple[bool, float] | None:
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
    for approximate in (False, True):
        ref = _gelu(values, approximate)
        k = float(np.float32(round(float(np.sum(got * ref) / np.sum(ref * ref)), 6)))
        if abs(k) > 1e-3 and float(np.max(np.abs(got - k * ref))) <= TOLERANCE * max(1.0, abs(k)):
            return approximate, k
    return None


def _candidates(g: _Graph) -> list[tuple[int, int, list[int], bool]]:
    """(x, y, island ops, (approximate, k)) of every composed GELU, disjoint, in graph order."""
    found, used = [], set()
    schema = tflite_schema()
    for x in sorted(g.consumers, key=lambda t: min(g.consumers[t])):
        if g.sg.tensors[x].type != schema.TensorType.FLOAT32 or g.constant(x) is not None:
            continue
        region = [i for i in _region(g, x) if i not in used]
        for i in reversed(region):  # the largest island first
            y = int(g.ops[i].outputs[0])
            island = _slice(g, region, y)
            if island is None or len(island) < MIN_OPS:
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
    g = _Graph(model)
    found = _candidates(g)
    if only is not None:
        found = [f for f in found if tensor_name(g.sg.tensors[f[1]]) in set(only)]
    if not found:
        return model_bytes, []
    code = opcode_index(model, schema.BuiltinOperator.GELU)
    replace: dict[int, list] = {}
    drop: set[int] = set()
    for x, y, island, (approximate, k) in found:
        ops = [_gelu_op(schema, code, x, y, approximate)]
        if k != 1.0 and not _scale_readers(g, y, k):
            ops = _gelu_times(schema, model, g, ops[0], y, k)
        replace[island[-1]] = ops  # where y was written: every reader of y comes after it
        drop.update(island[:-1])
    g.sg.operators = [new for i, op in enumerate(g.ops) if i not in drop for new in replace.get(i, [op])]
    builder = flatbuffers.Builder(len(model_bytes) + 65536)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), [tensor_name(g.sg.tensors[y]) for _, y, _, _ in found]


def _gelu_op(schema, code: int, x: int, y: int, approximate: bool):
    op = schema.OperatorT()
    op.opcodeIndex = code
    op.inputs, op.outputs = np.array([x], np.int32), np.array([y], np.int32)
    op.builtinOptionsType = schema.BuiltinOptions.GeluOptions
    op.builtinOptions = schema.GeluOptionsT()
    op.builtinOptions.approximate = approximate
    return op


def _scale_range(t, k: float) -> None:
    """A tensor's calibrated (min, max) after its values are divided by k > 0."""
    q = t.quantization
    if q is not None and q.min is not None and q.max is not None:
        q.min, q.max = np.asarray(q.min, np.float32) / k, np.asarray(q.max, np.float32) / k


def _scale_readers(g: _Graph, y: int, k: float) -> bool:
    """k * GELU folded into the weights of y's readers, when they are all FULLY_CONNECTED layers reading
    y as their input with float weights of their own (exact for a power of two such as GELU's 2)."""
    readers = g.consumers.get(y, [])
    if k <= 0 or y in g.outputs or not readers or math.frexp(k)[0] != 0.5:
        return False
    weights = []
    for i in readers:
        op = g.ops[i]
        if g.kind[i] != "FULLY_CONNECTED" or int(op.inputs[0]) != y or len(op.inputs) < 2:
            return False
        w = int(op.inputs[1])
        owners = sum(1 for t in g.sg.tensors if t.buffer == g.sg.tensors[w].buffer)
        if g.constant(w) is None or len(g.consumers.get(w, [])) != 1 or owners != 1:
            return False
        weights.append(w)
    for w in weights:
        t = g.sg.tensors[w]
        scaled = (g.constant(w) * np.float32(k)).astype(np.float32)
        g.model.buffers[t.buffer].data = np.frombuffer(scaled.tobytes(), np.uint8)
    _scale_range(g.sg.tensors[y], k)
    return True


def _gelu_times(schema, model, g: _Graph, gelu, y: int, k: float) -> list:
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
