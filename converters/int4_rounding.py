"""How a 4-bit FULLY_CONNECTED weight is rounded: to nearest (the LiteRT Quantizer's), or GPTQ.

Round-to-nearest rounds every weight alone. GPTQ (Frantar et al., 2022, "GPTQ: Accurate Post-Training
Quantization for Generative Pre-trained Transformers") rounds the input columns of a weight one at a time
and moves each column's rounding error onto the columns not yet rounded, weighted by how the layer's real
inputs correlate, so that the layer's OUTPUT on those inputs changes least:

1. H = X^T X / rows over the layer's inputs X captured from the float model on calibration queries
   (devices/fc_inputs.py), damped (`DAMP` x its mean diagonal added to the diagonal); an input that is
   always 0 gets a diagonal of 1 and a weight column of 0.
2. Columns in the order of decreasing H diagonal (GPTQ's "act order": the inputs with the most energy are
   rounded first, while there are still many columns left to absorb their error); stable, so the same
   inputs always give the same bytes.
3. U, the upper Cholesky factor of H^-1. For each column j: q_j = clip(round(w_j / s)), the error
   e = (w_j - s q_j) / U[j, j], and every later column k gets w_k -= e U[j, k] (done lazily per block of
   BLOCK columns).

4. **Scales** (`clip_scales`): the quantizer writes max|w| / 7 per output channel (float32) or per block of
   inputs (float16), so one large value sets the grid of its whole row. Each row's scale (each block's) is
   shrunk to the ratio in 1.0 .. 0.5 (`CLIP_RATIOS`) whose round-to-nearest values change the layer's output
   on its inputs least (d H d^T for the row's error d; a block by its own diagonal part of H): a few large
   values clip, the rest get a finer grid. GPTQ then runs with those scales and with the quantizer's, and
   the weight keeps the one whose output error under H is smaller, so it is never worse than GPTQ alone by
   that measure. On all-MiniLM-L6-v2's 37 weights the output error fell to 0.41-0.82x (median 0.70x) per
   channel and 0.71-0.90x (median 0.82x) with 128-input blocks.

Only the 4-bit values and the scales' values change: the model has the same bytes count, tensors and
kernels as the round-to-nearest build. Values use the whole signed range -8..7 (the nearest build, with
the scale max|w| / 7, uses -7..7). Deterministic: float64 numpy, no randomness.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from converters.tflite_int4 import load_model, pack_int4, save_model, tflite_schema, unpack_int4
from toolchain.base.errors import InputFileError

DAMP = 0.01  # share of the mean Hessian diagonal added to the diagonal
CLIP_RATIOS = tuple(float(r) for r in np.linspace(1.0, 0.5, 21))  # of the quantizer's scale; 1.0 first
SMALLEST_NORMAL_FP16 = float(np.float16(2.0**-14))
BLOCK = 128  # columns per lazy update
QMIN, QMAX = -8, 7


def _column_scales(scales: np.ndarray, shape: tuple[int, int], block: int) -> np.ndarray:
    """The scale of every value of an [out, in] weight: one per row, or one per `block` inputs of a row."""
    out, inner = shape
    s = np.asarray(scales, np.float64)
    if block:
        return np.repeat(s.reshape(out, inner // block), block, axis=1)
    return np.broadcast_to(s.reshape(out, 1), shape)


def nearest_round(w: np.ndarray, scales: np.ndarray, block: int = 0) -> np.ndarray:
    """Each value alone to the nearest step (what the LiteRT Quantizer writes), as int8."""
    s = _column_scales(scales, w.shape, block)
    return np.clip(np.rint(w.astype(np.float64) / s), QMIN, QMAX).astype(np.int8)


def _upper_inverse_factor(h: np.ndarray) -> np.ndarray:
    """U, upper triangular, with U^T U = h^-1 (h symmetric positive definite)."""
    lower = np.linalg.cholesky(h)
    inv_lower = np.linalg.solve(lower, np.eye(len(h)))  # lower^-1
    return np.linalg.cholesky(inv_lower.T @ inv_lower).T


def gptq_round(w: np.ndarray, hessian: np.ndarray, scales: np.ndarray, block: int = 0) -> np.ndarray:
    """GPTQ's 4-bit values (int8, -8..7) of an [out, in] weight for the input Hessian `hessian` [in, in]
    and the given scales (per row, or per `block` inputs of each row); see the module doc."""
    out, inner = w.shape
    if hessian.shape != (inner, inner):
        raise ValueError(f"a Hessian of shape {hessian.shape} for a weight with {inner} inputs")
    weights = w.astype(np.float64).copy()
    h = np.array(hessian, np.float64)
    dead = np.diag(h) <= 0
    h[dead, dead] = 1.0
    weights[:, dead] = 0.0
    h[np.diag_indices(inner)] += DAMP * float(np.mean(np.diag(h)))
    order = np.argsort(-np.diag(h), kind="stable")
    weights, h = weights[:, order], h[np.ix_(order, order)]
    col_scales = _column_scales(scales, (out, inner), block)[:, order]
    u = _upper_inverse_factor(h)
    q = np.zeros((out, inner), np.int8)
    for start in range(0, inner, BLOCK):
        end = min(start + BLOCK, inner)
        part = weights[:, start:end].copy()
        errors = np.zeros_like(part)
        for i in range(end - start):
            j = start + i
            s = col_scales[:, j]
            qj = np.clip(np.rint(part[:, i] / s), QMIN, QMAX)
            q[:, j] = qj
            e = (part[:, i] - qj * s) / u[j, j]
            part[:, i:] -= np.outer(e, u[j, j:end])
            errors[:, i] = e
        weights[:, end:] -= errors @ u[start:end, end:]
    back = np.empty_like(order)
    back[order] = np.arange(inner)
    return q[:, back]


def hessian_error(
    w: np.ndarray, q: np.ndarray, scales: np.ndarray, hessian: np.ndarray, block: int = 0
) -> float:
    """sum over rows of d H d^T, d = w - dequantized q: the layer's squared output error on the inputs whose
    Hessian is `hessian` (times their count)."""
    d = w.astype(np.float64) - q.astype(np.float64) * _column_scales(scales, w.shape, block)
    return float(np.sum((d @ np.asarray(hessian, np.float64)) * d))


def clip_scales(
    w: np.ndarray,
    hessian: np.ndarray,
    scales: np.ndarray,
    block: int = 0,
    ratios: tuple[float, ...] = CLIP_RATIOS,
) -> np.ndarray:
    """The scales (shape of `scales`) each shrunk to the ratio whose round-to-nearest values give the least
    output error under `hessian` (per row; per block with the block's diagonal part of H). A tie keeps the
    larger scale (the first ratio, 1.0), so an all-zero row or block keeps its own. Blockwise scales are
    rounded to float16 before they are compared, as the model stores them, and never below its smallest
    normal value."""
    out, inner = w.shape
    w64, h = w.astype(np.float64), np.asarray(hessian, np.float64)
    parts = [(slice(0, inner), np.asarray(scales, np.float64).reshape(out, 1))] if not block else []
    if block:
        base = np.asarray(scales, np.float64).reshape(out, inner // block)
        parts = [(slice(b * block, (b + 1) * block), base[:, b : b + 1]) for b in range(inner // block)]
    chosen = []
    for cols, s0 in parts:
        wb, hb = w64[:, cols], h[cols, cols]
        best, least = s0.copy(), None
        for r in ratios:
            s = s0 * r
            if block:
                s = np.maximum(s.astype(np.float16).astype(np.float64), SMALLEST_NORMAL_FP16)
            d = wb - np.clip(np.rint(wb / s), QMIN, QMAX) * s
            err = np.sum((d @ hb) * d, axis=1, keepdims=True)
            if least is None:
                least = err
                continue
            better = err < least
            best, least = np.where(better, s, best), np.where(better, err, least)
        chosen.append(best)
    return np.concatenate(chosen, axis=1).reshape(np.shape(scales))


def gptq_with_scales(
    w: np.ndarray, hessian: np.ndarray, scales: np.ndarray, block: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """GPTQ's values with the clipped scales or with `scales`, whichever changes the layer's output less
    under `hessian` (see the module doc, 4): (values, their scales)."""
    plain = gptq_round(w, hessian, scales, block)
    clipped = clip_scales(w, hessian, scales, block)
    if np.array_equal(clipped, np.asarray(scales, np.float64).reshape(np.shape(clipped))):
        return plain, np.asarray(scales, np.float64)
    q = gptq_round(w, hessian, clipped, block)
    if hessian_error(w, q, clipped, hessian, block) < hessian_error(w, plain, scales, hessian, block):
        return q, clipped
    return plain, np.asarray(scales, np.float64)


def output_error(w: np.ndarray, q: np.ndarray, scales: np.ndarray, x: np.ndarray, block: int = 0) -> float:
    """Mean squared error of the layer's output on inputs `x` [rows, in]: float weight vs dequantized q."""
    deq = q.astype(np.float64) * _column_scales(scales, w.shape, block)
    return float(np.mean((x @ (w.astype(np.float64) - deq).T) ** 2))


def _float_weights(model) -> dict[str, np.ndarray]:
    float32 = tflite_schema().TensorType.FLOAT32
    sg = model.subgraphs[0]
    found = {}
    for t in sg.tensors:
        data = model.buffers[t.buffer].data if t.buffer < len(model.buffers) else None
        if data is None or not len(data) or t.type != float32:
            continue
        name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
        shape = tuple(int(d) for d in t.shape)
        found[name] = np.frombuffer(bytes(np.asarray(data, np.uint8)), np.float32).reshape(shape)
    return found


def float_weights(float_tflite: bytes, names: set[str]) -> dict[str, np.ndarray]:
    """The named constant float32 tensors of a float .tflite (the weights GPTQ starts from)."""
    return {k: v for k, v in _float_weights(load_model(float_tflite)).items() if k in names}


def apply_gptq(
    quantized: bytes,
    weights: Mapping[str, np.ndarray],
    hessians: Mapping[str, np.ndarray],
    cache: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] | None = None,
) -> tuple[bytes, list[str]]:
    """The quantized model with each INT4 FULLY_CONNECTED weight named in `hessians` re-rounded by GPTQ
    from its float values (`weights`, by name) and the scales the model already holds; and the names done
    (a name that is not an INT4 tensor of the model is left out: it is in 8 bits in this plan), with the
    scales chosen as in the module doc (4) written in place of the quantizer's. `cache` keeps each weight's
    (values, scales) by (name, block): the quantizer's scales of a weight are always the same, so a search
    that quantizes many plans rounds each weight once per form."""
    schema = tflite_schema()
    model = load_model(quantized)
    sg = model.subgraphs[0]
    done = []
    for t in sg.tensors:
        name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
        if name not in hessians or t.type != schema.TensorType.INT4 or t.quantization is None:
            continue
        if name not in weights:
            raise InputFileError(f"no float weight named {name} for GPTQ", hint="re-plan on this model")
        w = np.asarray(weights[name], np.float32)
        if w.ndim != 2:
            continue  # GPTQ here is for [out, in] FULLY_CONNECTED weights
        qp = t.quantization
        if qp.detailsType == schema.QuantizationDetails.BlockwiseQuantization:
            block = int(qp.details.blockSize)
            holder = model.buffers[sg.tensors[qp.details.scales].buffer]
            scales = np.frombuffer(bytes(np.asarray(holder.data, np.uint8)), np.float16).astype(np.float64)
        else:
            block, scales = 0, np.asarray(qp.scale, np.float64)
            if int(qp.quantizedDimension) != 0 or scales.size != w.shape[0]:
                continue  # not per output channel: leave it as the quantizer wrote it
        key = (name, block)
        got = cache.get(key) if cache is not None else None
        if got is None:
            got = gptq_with_scales(w, hessians[name], scales, block)
            if cache is not None:
                cache[key] = got
        q, chosen = got
        model.buffers[t.buffer].data = np.frombuffer(pack_int4(q), np.uint8)
        if block:
            holder.data = np.frombuffer(chosen.astype(np.float16).tobytes(), np.uint8)
        else:
            qp.scale = np.asarray(chosen, np.float32)
        done.append(name)
    if not done:
        return quantized, done
    return save_model(model, len(quantized)), done


def read_int4(quantized: bytes, name: str) -> np.ndarray:
    """The 4-bit values of a named INT4 tensor, int8, in its shape (tests, diagnosis)."""
    model = load_model(quantized)
    for t in model.subgraphs[0].tensors:
        if (t.name.decode() if isinstance(t.name, bytes) else str(t.name)) == name:
            shape = tuple(int(d) for d in t.shape)
            raw = bytes(np.asarray(model.buffers[t.buffer].data, np.uint8))
            return unpack_int4(raw, int(np.prod(shape))).reshape(shape)
    raise KeyError(name)
