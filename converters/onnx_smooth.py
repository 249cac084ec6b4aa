"""Activation smoothing (SmoothQuant, Xiao et al. 2023) of an ONNX graph before 8-bit activations.

Pretrained encoders carry a few activation channels tens of times larger than the rest (all-MiniLM-L6-v2:
the attention-output LayerNorm's outputs peak at 28-30 against a median channel peak of 1.9). A dynamic or
static int8 kernel quantizes each token's activations with one scale, so those channels crush the others.
Smoothing divides each input channel j of a dense layer by

    s_j = max|X_j| ** alpha / max|W_j,:| ** (1 - alpha)

(max|X_j| over the calibration queries, W_j,: the weight row it multiplies) and multiplies that weight row
by s_j: exact in float (X W = (X / s)(s W)), and the outliers move into the weights, whose per-channel
scales absorb them. Here the division is a MUL node inserted before the dense layers that share an input
(Q, K and V share one: one MUL, one s from the largest of their rows); post-LayerNorm BERTs reuse the
LayerNorm output in the residual, so it cannot be folded into the LayerNorm's gamma. The MatMuls changed
are those whose second input is a 2-D initializer (what TFLite makes FULLY_CONNECTED); the float effect
is measured in onnxruntime on the calibration queries and reported (it should be rounding only).
Measured on all-MiniLM-L6-v2's intent classifier (trimmed), simulating per-token int8 activations and
per-channel int8 weights in onnxruntime: 9 of 748 test queries flip top-1 against the float model without
smoothing, 3 with alpha 0.3 (the trim's own 3), 5 with 0.5, 6 with 0.7. The real dynamic builds in
ai_edge_litert (benchmarks/bench_minilm_classifier.py): 7 flips, 5 with 0.3, 9 with 0.15; under 4-bit
weights it costs agreement (the outliers then sit in the weights), so it is off by default.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from converters.onnx_prepare import RowRunner

EPS = 1e-5


def _weights(model: Any) -> dict[str, Any]:
    return {i.name: i for i in model.graph.initializer}


def smoothable(model: Any) -> dict[str, list[Any]]:
    """Input tensor -> the MatMul nodes reading it with a 2-D initializer as their weight."""
    from onnx import numpy_helper

    inits = _weights(model)
    groups: dict[str, list[Any]] = defaultdict(list)
    for node in model.graph.node:
        if node.op_type != "MatMul" or node.input[1] not in inits or node.input[0] in inits:
            continue
        if numpy_helper.to_array(inits[node.input[1]]).ndim == 2:
            groups[node.input[0]].append(node)
    return dict(groups)


def channel_peaks(inputs: Sequence[str], rows: Sequence[Sequence[np.ndarray]]) -> dict[str, Any]:
    """max |x| per last-axis channel of each tensor in `inputs`, over the rows' values of them (one row
    per calibration query, in the order of `inputs`)."""
    peaks: dict[str, np.ndarray] = {}
    for row in rows:
        for name, value in zip(inputs, row, strict=True):
            v = np.abs(np.asarray(value, np.float64)).reshape(-1, value.shape[-1]).max(0)
            peaks[name] = v if name not in peaks else np.maximum(peaks[name], v)
    return peaks


def smooth(path: Path, out: Path, feeds: Sequence[dict[str, np.ndarray]], alpha: float) -> tuple[Path, dict]:
    """The graph at `path` smoothed into `out` (the module doc) and a report section; `path` unchanged
    when no dense layer reads a tensor."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    groups = smoothable(model)
    if not groups:
        return path, {"changed": False, "alpha": alpha, "note": "no MatMul with a constant 2-D weight"}
    rows, inputs, n_out = list(feeds), list(groups), len(model.graph.output)
    before = RowRunner(model, inputs).run(rows)  # one pass: the outputs and the dense layers' inputs
    peaks = channel_peaks(inputs, [r[n_out:] for r in before])
    inits = _weights(model)
    inserted, ratios, dense = [], [], 0
    for k, (name, nodes) in enumerate(sorted(groups.items())):
        ws = {n.input[1]: numpy_helper.to_array(inits[n.input[1]]).astype(np.float32) for n in nodes}
        w_peak = np.max([np.abs(w).max(1) for w in ws.values()], axis=0)
        x_peak = peaks[name]
        if x_peak.shape != w_peak.shape:  # not a per-channel match (a reshaped input): leave it
            continue
        s = (np.maximum(x_peak, EPS) ** alpha / np.maximum(w_peak, EPS) ** (1 - alpha)).astype(np.float32)
        s = np.where(np.isfinite(s) & (s > 0), s, 1.0).astype(np.float32)
        ratios.append(float(x_peak.max() / max(np.median(x_peak), EPS)))
        for wname, w in ws.items():
            inits[wname].CopyFrom(numpy_helper.from_array(w * s[:, None], wname))
        scale, smoothed = f"edgecomp_smooth_{k}_inv", f"edgecomp_smooth_{k}_out"
        model.graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), scale))
        mul = helper.make_node("Mul", [name, scale], [smoothed], name=f"edgecomp_smooth_{k}")
        for n in nodes:
            n.input[0] = smoothed
        inserted.append((mul, nodes[0]))
        dense += len(nodes)
    order = list(model.graph.node)
    for mul, first in inserted:  # each MUL right before the first dense layer that reads it (topological)
        order.insert(order.index(first), mul)
    del model.graph.node[:]
    model.graph.node.extend(order)
    onnx.save(model, str(out))
    after = RowRunner(model).run(rows)
    ref = np.concatenate([r[0].reshape(-1) for r in before]).astype(np.float64)
    got = np.concatenate([r[0].reshape(-1) for r in after]).astype(np.float64)
    section = {
        "changed": True,
        "alpha": alpha,
        "inputs_smoothed": len(inserted),
        "dense_layers": dense,
        "worst_peak_ratio": round(max(ratios), 2) if ratios else None,
        "float_max_abs_diff": float(np.abs(ref - got).max()),
        "queries": len(rows),
    }
    return out, section
