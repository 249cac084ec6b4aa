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

The scales are the ones the quantizer already wrote (per output channel, float32; or per block of 32 inputs,
float16): GPTQ changes only the 4-bit values, so the model has the same bytes count, tensors and kernels
as the round-to-nearest build. Values use the whole signed range -8..7 (the nearest build, with the scale
max|w| / 7, uses -7..7). Deterministic: float64 numpy, no randomness.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from converters.tflite_int4 import load_model, pack_int4, save_model, tflite_schema, unpack_int4
from toolchain.base.errors import InputFileError

DAMP = 0.01  # share of the mean Hessian diagonal added to the diagonal
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
    cache: dict[tuple[str, int], np.ndarray] | None = None,
) -> tuple[bytes, list[str]]:
    """The quantized model with each INT4 FULLY_CONNECTED weight named in `hessians` re-rounded by GPTQ
    from its float values (`weights`, by name) and the scales the model already holds; and the names done
    (a name that is not an INT4 tensor of the model is left out: it is in 8 bits in this plan). `cache`
    keeps each weight's values by (name, block): the quantizer's scales of a weight are always the same,
    so a search that quantizes many plans rounds each weight once per form."""
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
        q = cache.get(key) if cache is not None else None
        if q is None:
            q = gptq_round(w, hessians[name], scales, block)
            if cache is not None:
                cache[key] = q
        model.buffers[t.buffer].data = np.frombuffer(pack_int4(q), np.uint8)
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
