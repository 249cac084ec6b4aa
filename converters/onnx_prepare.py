"""Graph preparation of an ONNX transformer before integer quantization: exact or nearly so, measured.

A full-int8 transformer collapses first on its attention mask. Exporters add a huge negative constant to
the masked attention scores (-10000, float32 min, or -inf as `Where(mask, 0, -inf)` in transformers 5):
calibration then sees a score range of 1e38 and every real score rounds to the same int8 step. Here the
constant is clipped to a bound calibrated on real queries: far enough below every observed score that a
masked position's softmax weight stays under e^-16 of the row's largest, near enough that int8 can still
tell the real scores apart. The NaN guard exporters put after the softmax (`Where(IsNaN(p), 0, p)`, for
rows where everything is masked) can never fire once the constant is finite, so it is removed.

The change is checked, not assumed: the prepared and the original graph run side by side in onnxruntime on
the calibration queries, and the outputs must agree to 1e-4 cosine, else the original graph is kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HUGE_NEGATIVE = -1e4  # a constant at or below this, on the way to a softmax, is an additive mask
MARGIN = 16.0  # e^-16: a masked position's weight relative to the row's largest unmasked one
MAX_COSINE_LOSS = 1e-4
HOPS_TO_SOFTMAX = 8  # Where -> Reshape -> Expand -> Reshape -> Add -> Softmax in nn.TransformerEncoder


def _constants(model: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _reaches_softmax(model: Any, tensor: str) -> list[str]:
    """The Softmax inputs this tensor reaches within a few ops (through Add/Where/Mul/Sub/Cast/...)."""
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    found, frontier = [], [tensor]
    for _ in range(HOPS_TO_SOFTMAX):
        nxt = []
        for name in frontier:
            for node in consumers.get(name, []):
                if node.op_type == "Softmax":
                    found.append(node.input[0])
                else:
                    nxt.extend(node.output)
        frontier = nxt
    return sorted(set(found))


def find_mask_constants(model: Any) -> tuple[list[str], list[str]]:
    """(names of huge-negative float constants that feed a softmax, the softmax inputs they reach)."""
    values = _constants(model)
    masks, scores = [], set()
    for name, value in values.items():
        if value.dtype.kind != "f" or value.size == 0 or value.size > 16:
            continue
        if np.all(value <= HUGE_NEGATIVE):
            reached = _reaches_softmax(model, name)
            if reached:
                masks.append(name)
                scores.update(reached)
    return sorted(masks), sorted(scores)


def _set_constant(model: Any, name: str, bound: float) -> None:
    from onnx import numpy_helper

    for init in model.graph.initializer:
        if init.name == name:
            old = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array(np.full_like(old, bound), name))
            return
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            for attr in node.attribute:
                if attr.name == "value":
                    old = numpy_helper.to_array(attr.t)
                    attr.t.CopyFrom(numpy_helper.from_array(np.full_like(old, bound), name))


def remove_nan_guards(model: Any) -> int:
    """Drop `Where(IsNaN(t), c, t)` after a softmax (never true once the mask is finite); count them."""
    producer = {o: n for n in model.graph.node for o in n.output}
    removed = 0
    for node in list(model.graph.node):
        if node.op_type != "Where" or len(node.input) != 3:
            continue
        cond = producer.get(node.input[0])
        if cond is None or cond.op_type != "IsNaN" or cond.input[0] != node.input[2]:
            continue
        src = producer.get(node.input[2])
        if src is None or src.op_type != "Softmax":
            continue
        out, kept = node.output[0], node.input[2]
        if any(o.name == out for o in model.graph.output):
            continue
        for other in model.graph.node:
            for i, name in enumerate(other.input):
                if name == out:
                    other.input[i] = kept
        model.graph.node.remove(node)
        removed += 1
    used = {name for n in model.graph.node for name in n.input} | {o.name for o in model.graph.output}
    for node in list(model.graph.node):
        if node.op_type == "IsNaN" and node.output[0] not in used:
            model.graph.node.remove(node)
    return removed


class RowRunner:
    """An onnxruntime session run one calibration row at a time, with extra tensors as outputs."""

    def __init__(self, model: Any, extra_outputs: Sequence[str] = ()) -> None:
        import onnx
        import onnxruntime as ort

        m = onnx.ModelProto()
        m.CopyFrom(model)
        for name in extra_outputs:
            m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def run(self, feeds: Sequence[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
        return [self.session.run(None, {k: row[k][None, ...] for k in self.inputs}) for row in feeds]


def _finite_or_text(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)  # report.json is strict JSON: "-inf", not -Infinity


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def prepare_for_int8(path: Path, out: Path, feeds: Sequence[dict[str, np.ndarray]]) -> tuple[Path, dict]:
    """Clip the attention-mask constant to a calibrated bound and drop NaN guards, if that is exact enough.

    `feeds` are calibration rows by ONNX input name (one query each, in the input's dtype). Returns the
    graph to quantize (`out`, or `path` unchanged) and a report section.
    """
    import onnx

    model = onnx.load(str(path))
    masks, score_tensors = find_mask_constants(model)
    if not masks:
        return path, {"changed": False, "note": "no additive attention-mask constant found"}
    rows = list(feeds)
    before = RowRunner(model, score_tensors).run(rows)
    n_out = len(model.graph.output)
    scores = np.concatenate([r[n_out + i].ravel() for r in before for i in range(len(score_tensors))])
    real = scores[np.isfinite(scores) & (scores > HUGE_NEGATIVE / 2)]
    if real.size == 0:
        return path, {"changed": False, "note": "the attention scores were all masked on these queries"}
    lo, hi = float(real.min()), float(real.max())
    bound = -float(math.ceil((hi - lo) + MARGIN))
    old = {name: _finite_or_text(float(np.min(_constants(model)[name]))) for name in masks}
    for name in masks:
        _set_constant(model, name, bound)
    guards = remove_nan_guards(model)
    after = RowRunner(model).run(rows)
    ref = np.stack([r[0].reshape(-1) for r in before]).astype(np.float64)
    got = np.stack([r[0].reshape(-1) for r in after]).astype(np.float64)
    cos = _cosines(ref, got)
    effect = {
        "queries": len(rows),
        "min_cosine": float(cos.min()),
        "max_abs_error": float(np.abs(ref - got).max()),
    }
    section = {
        "mask_constants": [{"tensor": n, "from": old[n], "to": bound} for n in masks],
        "attention_score_range": [round(lo, 4), round(hi, 4)],
        "nan_guards_removed": guards,
        "float_effect": effect,
    }
    if 1.0 - effect["min_cosine"] > MAX_COSINE_LOSS:
        return path, {
            "changed": False,
            **section,
            "note": f"kept the original graph: clipping moved the float outputs by more than "
            f"{MAX_COSINE_LOSS} cosine",
        }
    onnx.save(model, str(out))
    return out, {"changed": True, **section}
