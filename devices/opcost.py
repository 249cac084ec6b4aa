"""Work per op from tensor shapes: multiply-accumulates, FLOPs, parameter bytes and activation bytes.

`estimated_us` turns a model's op costs into one deterministic number through a fixed op-cost table
(throughput per output dtype, bytes moved, a per-op dispatch cost). It predicts no device: it ranks models by
their work the same way on every machine and under any load, which is what a seeded search needs to steer
by (toolchain/search/study.py; measured latency there is reported and checked against limits only).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from converters.tflite_model import OpInfo, TFLiteModel

ELEMENTWISE = {
    "ADD",
    "SUB",
    "MUL",
    "DIV",
    "MAXIMUM",
    "MINIMUM",
    "RELU",
    "RELU6",
    "LOGISTIC",
    "TANH",
    "HARD_SWISH",
    "SQUARED_DIFFERENCE",
    "RSQRT",
    "SQRT",
    "EXP",
    "ABS",
    "NEG",
    "LEAKY_RELU",
    "GELU",
    "QUANTIZE",
    "DEQUANTIZE",
    "POW",
    "PRELU",
    "ELU",
    "LOG",
    "SIN",
    "COS",
    "SQUARE",
}
REDUCE = {"SUM", "MEAN", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "MAX_POOL_2D", "AVERAGE_POOL_2D"}
FLOPS_PER_ELEMENT = {"SOFTMAX": 5, "LOG_SOFTMAX": 5, "L2_NORMALIZATION": 3, "LAYER_NORM": 8}


@dataclass(frozen=True)
class OpCost:
    index: int
    op: str
    macs: int
    flops: int
    param_bytes: int
    activation_bytes: int  # non-constant inputs + outputs
    output_shape: tuple[int, ...]
    output_dtype: str

    def to_dict(self) -> dict:
        return asdict(self)


def _numel(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape)) if shape else 1


def _macs(model: TFLiteModel, op: OpInfo) -> int:
    t = model.tensors
    ins = [t[i] for i in op.inputs if i >= 0]
    out = t[op.outputs[0]] if op.outputs else None
    if out is None or len(ins) < 2:
        return 0
    w, n_out = ins[1].shape, _numel(out.shape)
    if op.op == "FULLY_CONNECTED" and len(w) == 2:
        return n_out * w[1]
    if op.op == "CONV_2D" and len(w) == 4:
        return n_out * w[1] * w[2] * w[3]
    if op.op == "DEPTHWISE_CONV_2D" and len(w) == 4:
        return n_out * w[1] * w[2]
    if op.op == "CONV_3D" and len(w) == 5:
        return n_out * w[0] * w[1] * w[2] * w[3]
    if op.op == "TRANSPOSE_CONV" and len(w) == 4 and len(op.inputs) > 2 and op.inputs[2] >= 0:
        return _numel(t[op.inputs[2]].shape) * w[0] * w[1] * w[2]
    if op.op == "BATCH_MATMUL" and ins[0].shape:
        return n_out * ins[0].shape[-1]
    return 0


def op_cost(model: TFLiteModel, op: OpInfo) -> OpCost:
    t = model.tensors
    ins = [t[i] for i in op.inputs if i >= 0]
    outs = [t[i] for i in op.outputs if i >= 0]
    macs = _macs(model, op)
    n_out = sum(_numel(o.shape) for o in outs)
    n_in = sum(_numel(i.shape) for i in ins if not i.is_constant)
    if macs:
        flops = 2 * macs
    elif op.op in ELEMENTWISE:
        flops = n_out
    elif op.op in REDUCE:
        flops = n_in
    else:
        flops = FLOPS_PER_ELEMENT.get(op.op, 0) * n_out
    first = outs[0] if outs else None
    return OpCost(
        index=op.index,
        op=op.op,
        macs=int(macs),
        flops=int(flops),
        param_bytes=sum(i.nbytes for i in ins if i.is_constant),
        activation_bytes=sum(_nbytes(x) for x in ins if not x.is_constant) + sum(_nbytes(o) for o in outs),
        output_shape=tuple(first.shape) if first else (),
        output_dtype=first.dtype if first else "",
    )


_DTYPE_BYTES = {
    "FLOAT32": 4,
    "INT32": 4,
    "INT8": 1,
    "UINT8": 1,
    "INT16": 2,
    "FLOAT16": 2,
    "INT64": 8,
    "BOOL": 1,
}


def _nbytes(tensor) -> int:
    return _numel(tensor.shape) * _DTYPE_BYTES.get(tensor.dtype, 4)


def model_costs(model: TFLiteModel) -> list[OpCost]:
    return [op_cost(model, op) for op in model.ops]


# The fixed op-cost table of `estimated_us`: flops per microsecond by the op's output dtype (an int8 kernel
# does ~4x the work of a float one per cycle on SIMD CPUs), bytes per microsecond, and a dispatch cost per op.
FLOPS_PER_US = {"FLOAT32": 4000.0, "FLOAT16": 4000.0, "INT8": 16000.0, "UINT8": 16000.0, "INT16": 8000.0}
BYTES_PER_US = 8000.0
DISPATCH_US = 0.2
LOOKUP_OPS = {"GATHER", "EMBEDDING_LOOKUP"}  # read the rows they output, not the whole table


def estimated_us(costs: list[OpCost]) -> float:
    """A load-free cost of one invoke from the op-cost table (deterministic; not a device prediction)."""
    total = 0.0
    for c in costs:
        moved = c.activation_bytes if c.op in LOOKUP_OPS else c.param_bytes + c.activation_bytes
        rate = FLOPS_PER_US.get(c.output_dtype, FLOPS_PER_US["FLOAT32"])
        total += DISPATCH_US + c.flops / rate + moved / BYTES_PER_US
    return round(total, 4)
