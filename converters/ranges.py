"""Activation ranges for the int8 quantizer: which ones to trust, and writing new ones into a model.

The calibrated float model (converters/calibrated.py) carries each activation's observed min/max in its
tensor quantization parameters; the MLIR quantizer reads them back as the ranges it derives int8 scales
and zero points from. `with_activation_ranges` replaces them through the flatbuffer schema's object API
(as converters/tflite_edit.py edits models) and touches only the named tensors' `min` and `max`.

Attention masks are why a BERT's full-int8 model fails. onnx2tf writes the mask as `where(mask, 0,
-3.4e38)` added to the attention scores (Keras' MultiHeadAttention adds -1e9), so min/max calibration
gives those tensors a range of 3.4e38: an int8 step of 1.3e36 that rounds every real score to zero. Any
tensor whose calibrated range goes beyond HUGE (1e6) is taken for one holding a mask constant.
`mask_safe_ranges` gives the scores their real min/max (the masked positions saturate at its low end) and
the mask itself (-R, 0), R four times the widest range among the ops that read it. Measured on the BERT
fixture classifier (benchmarks/bench_ranges.py: 300 stratified calibration queries, 748 test queries,
onnxruntime 90.64% accuracy):

    ranges                          accuracy  agreement  cosine     bytes
    min/max                         27.67%    29.41%     0.692      328,784
    float fallback ops (today)      90.64%    99.47%     0.99997    333,920
    mask-safe, all int8             90.78%    99.47%     0.99994    328,784
    + percentile 0.001/99.999       90.51%    99.60%     0.99990
    + percentile 0.01/99.99         90.24%    99.33%     0.99993
    + percentile 0.1/99.9           90.11%    99.06%     0.99964
    percentile 0.01/99.99 alone     28.48%    30.21%     0.693

So the mask is the whole story; percentile ranges on the other activations move agreement by a few of
the 748 queries either way. R has a wide plateau (20 to 5000 gave the same numbers) bounded above by the
kernels (1e4: 5% accuracy) and below by the scores' spread; min/max on the mask beside real ranges on the
scores aborted the interpreter in allocate_tensors, and the min/max int8 model itself aborts under
builtin kernels (XNNPACK runs it), as a tiny masked Keras model's min/max int8 aborts in invoke.
The Keras BERT-style fixture (tests/fixtures/make_keras_bert.py, -1e9 mask, float 96.26% on 748 test
queries): min/max int8 6.95% accuracy, 5.9% agreement, cosine 0.11; mask-safe 96.79%, 98.66%, 0.9963.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from converters.calibrated import activation_ranges
from converters.tflite_model import parse_tflite, tensor_name, tflite_schema
from toolchain.base.errors import ConversionError

Range = tuple[float, float]
HUGE = 1e6  # beyond any real activation here; attention masks add -1e9 (Keras) or -3.4e38 (onnx2tf)
MASK_MARGIN = 4.0  # a mask tensor's range: this many times the widest range around the ops reading it
DEGENERATE = 1e-6  # a range narrower than this carries no information about the tensor's spread


def is_huge(r: Range) -> bool:
    return max(abs(r[0]), abs(r[1])) > HUGE


def _has_range(tensor) -> bool:
    q = tensor.quantization
    return q is not None and q.min is not None and q.max is not None and len(q.min) > 0 and len(q.max) > 0


def _consumer_width(info, name: str, known: Mapping[str, Range]) -> float:
    """The widest known range among the other inputs and the outputs of the ops that read `name`."""
    index = {t.name: t.index for t in info.tensors}.get(name)
    widths = [0.0]
    for op in info.ops:
        if index is None or index not in op.inputs:
            continue
        for i in (*op.inputs, *op.outputs):
            other = info.tensors[i].name if i >= 0 and i != index else None
            if other in known and not is_huge(known[other]):
                widths.append(known[other][1] - known[other][0])
    return max(widths)


def mask_safe_ranges(calibrated: bytes, real: Mapping[str, Range]) -> dict[str, Range]:
    """New ranges for the calibrated model's tensors whose range is huge (mask constants), from `real`.

    `real` holds each huge tensor's range over its values within +-HUGE (devices/activations.py with
    limit=HUGE). A tensor with a real spread takes it (the mask constants saturate at its end). A tensor
    of one real value c beside the constant (the mask itself) takes (c - R, c), or (c, c + R) for a
    positive constant, with R = MASK_MARGIN x the widest range among the ops that read it (their other
    inputs and outputs, real ranges where known), else the widest non-huge range of the model. A huge
    tensor missing from `real` is an error.
    """

    minmax = activation_ranges(calibrated)
    huge = [name for name, r in minmax.items() if is_huge(r)]
    missing = [name for name in huge if name not in real]
    if missing:
        raise ConversionError(
            f"no real range for mask-valued tensor(s) {', '.join(missing[:3])}",
            hint="devices.activations.percentile_ranges(..., limit=converters.ranges.HUGE) measures them",
        )
    known = {**minmax, **{name: real[name] for name in huge}}
    widths = [hi - lo for lo, hi in known.values() if DEGENERATE < hi - lo < HUGE]
    widest = max(widths, default=1.0)
    info = parse_tflite(calibrated) if huge else None
    out = {}
    for name in huge:
        lo, hi = real[name]
        if hi - lo > DEGENERATE:
            out[name] = (lo, hi)
            continue
        margin = MASK_MARGIN * (_consumer_width(info, name, known) or widest)
        if minmax[name][0] < -HUGE:
            out[name] = (min(lo, 0.0) - margin, max(hi, 0.0) + 0.0)  # + 0.0: no -0.0
        else:
            out[name] = (min(lo, 0.0) + 0.0, max(hi, 0.0) + margin)
    return out


def with_activation_ranges(calibrated: bytes, ranges: Mapping[str, Range]) -> bytes:
    """The calibrated model with the named tensors' (min, max) replaced; per-tensor ranges only.

    Every name must be a calibrated activation (a tensor that already has a min/max), every range finite
    with min <= max; anything else is a ConversionError naming it. No ranges: the same bytes.
    """

    if not ranges:
        return calibrated
    for name, (lo, hi) in ranges.items():
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ConversionError(f"activation range for {name} is not a finite min <= max: ({lo}, {hi})")
    schema = tflite_schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(calibrated), 0)
    found: set[str] = set()
    for sg in model.subgraphs or []:
        for tensor in sg.tensors or []:
            name = tensor_name(tensor)
            if name not in ranges or not _has_range(tensor):
                continue
            lo, hi = ranges[name]
            tensor.quantization.min = np.array([lo], dtype=np.float32)
            tensor.quantization.max = np.array([hi], dtype=np.float32)
            found.add(name)
    missing = sorted(set(ranges) - found)
    if missing:
        raise ConversionError(
            f"{len(missing)} tensor(s) are not calibrated activations of this model: "
            + ", ".join(missing[:3]),
            hint="take names from converters.calibrated.activation_ranges(calibrated)",
        )
    import flatbuffers

    builder = flatbuffers.Builder(len(calibrated) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
