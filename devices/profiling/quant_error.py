"""Per-op quantization error: int8 intermediate tensors vs the float model's, on the same real queries.

Both models are run in the runtime environment with experimental_preserve_all_tensors (slice_child
'capture'); here each int8 op output is dequantized and compared with the float tensor of the same name
(converter tensor names survive quantization; a leading model-name scope may differ, and as a last resort
ops are matched by position when both models have the same op sequence). The error is cumulative: it is
what the op's output carries, including what it inherited from earlier ops; the jump in SNR from an op's
input to its output is the error that op adds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from converters.tflite_model import TFLiteModel


@dataclass(frozen=True)
class OpQuantError:
    index: int
    op: str
    tensor: str
    snr_db: float | None  # 10*log10(signal power / error power); None when the float tensor is all zero
    cosine: float | None
    max_abs_error: float
    added_snr_db: float | None  # SNR drop from the op's (worst) activation input to its output

    def to_dict(self) -> dict:
        return asdict(self)


def _scope_free(name: str) -> str:
    return name.split("/", 1)[1] if "/" in name else name


def match_tensors(quant: TFLiteModel, ref: TFLiteModel) -> dict[int, int]:
    """Quantized tensor index -> float tensor index for op outputs and model inputs."""
    by_name = {t.name: t.index for t in ref.tensors}
    by_scope = {_scope_free(t.name): t.index for t in ref.tensors}
    wanted = [i for op in quant.ops for i in op.outputs] + list(quant.inputs)
    out: dict[int, int] = {}
    for i in wanted:
        name = quant.tensors[i].name
        j = by_name.get(name, by_scope.get(_scope_free(name)))
        if j is not None:
            out[i] = j
    if len(out) < len(wanted) and [o.op for o in quant.ops] == [o.op for o in ref.ops]:
        for qo, ro in zip(quant.ops, ref.ops, strict=True):
            for a, b in zip(qo.outputs, ro.outputs, strict=False):
                out.setdefault(a, b)
    return out


def dequantize(model: TFLiteModel, index: int, values: np.ndarray) -> np.ndarray:
    t = model.tensors[index]
    if t.dtype in ("INT8", "UINT8", "INT16") and t.scales:
        return (values.astype(np.float64) - t.zero_points[0]) * t.scales[0]
    return values.astype(np.float64)


def _metrics(ref: np.ndarray, got: np.ndarray) -> tuple[float | None, float | None, float]:
    ref, got = ref.reshape(-1), got.reshape(-1)
    signal, noise = float(np.sum(ref**2)), float(np.sum((ref - got) ** 2))
    snr = None if signal == 0 else (float("inf") if noise == 0 else 10 * np.log10(signal / noise))
    denom = float(np.linalg.norm(ref) * np.linalg.norm(got))
    cos = None if denom == 0 else float(np.dot(ref, got) / denom)
    return snr, cos, float(np.max(np.abs(ref - got))) if ref.size else 0.0


def per_op_error(
    quant: TFLiteModel,
    quant_tensors: dict[str, np.ndarray],
    ref: TFLiteModel,
    ref_tensors: dict[str, np.ndarray],
) -> list[OpQuantError]:
    """Compare every op output present in both captures (arrays keyed by tensor index as str)."""
    pairs = match_tensors(quant, ref)
    snr_of: dict[int, float | None] = {}

    def compare(i: int) -> tuple[float | None, float | None, float] | None:
        j = pairs.get(i)
        if j is None or str(i) not in quant_tensors or str(j) not in ref_tensors:
            return None
        q, r = quant_tensors[str(i)], ref_tensors[str(j)]
        if q.shape != r.shape:
            return None
        return _metrics(r.astype(np.float64), dequantize(quant, i, q))

    for i in quant.inputs:
        m = compare(i)
        snr_of[i] = m[0] if m else None
    out = []
    for op in quant.ops:
        if not op.outputs:
            continue
        m = compare(op.outputs[0])
        if m is None:
            continue
        snr_of[op.outputs[0]] = m[0]
        in_snrs = [snr_of.get(i) for i in op.inputs if i >= 0 and not quant.tensors[i].is_constant]
        finite = [s for s in in_snrs if s is not None and np.isfinite(s)]
        added = None
        if m[0] is not None and np.isfinite(m[0]):
            added = round(min(finite) - m[0], 2) if finite else None
        out.append(
            OpQuantError(
                op.index,
                op.op,
                quant.tensors[op.outputs[0]].name,
                None if m[0] is None else round(m[0], 2) if np.isfinite(m[0]) else 999.0,
                None if m[1] is None else round(m[1], 6),
                round(m[2], 6),
                added,
            )
        )
    return out
