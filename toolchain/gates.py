"""The convert-time quality gates, in one place for every source format.

A Keras build and an ONNX build are judged by the same function: accuracy drop and top-1 agreement vs the
float source (classifiers with a labelled split), max abs error and mean cosine vs onnxruntime (ONNX
sources, the `onnx_reference` block). A gate whose number is absent from the evaluation does not apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from toolchain.base.errors import GateFailed
from toolchain.recipe import EvaluationSpec


def check_gates(gates: EvaluationSpec, evaluation: dict[str, Any], texts: Sequence[str] = ()) -> None:
    """Raise GateFailed for the first gate the evaluation misses; `texts` name the worst query."""
    check = evaluation.get("onnx_reference")
    if check is not None:
        _onnx_gates(gates, check, texts)
    cmp = evaluation.get("vs_source_float")
    if cmp is not None:
        if gates.max_accuracy_drop is not None and cmp["accuracy_drop_points"] > gates.max_accuracy_drop:
            raise GateFailed(
                f"accuracy dropped {cmp['accuracy_drop_points']} points (limit {gates.max_accuracy_drop})",
                hint="try a milder step or quantization mode; the report shows per-intent recall",
            )
        if gates.min_agreement is not None and cmp["top1_agreement"] < gates.min_agreement:
            raise GateFailed(
                f"top-1 agreement {cmp['top1_agreement']:.2%} below {gates.min_agreement:.2%}",
                hint="inspect per-op error (edgecomp profile), or use mode mixed, int16x8 or dynamic",
            )


def _onnx_gates(gates: EvaluationSpec, check: dict[str, Any], texts: Sequence[str]) -> None:
    def query(i: int) -> str:
        return repr(texts[i]) if i < len(texts) else f"#{i}"

    if gates.max_abs_error is not None and check["max_abs_error"] > gates.max_abs_error:
        raise GateFailed(
            f"output differs from onnxruntime by {check['max_abs_error']:.3g} (limit {gates.max_abs_error})"
            f" on query {query(check['worst_abs_query'])}",
            hint="inspect per-op error",
        )
    if gates.min_cosine is not None and check["mean_cosine"] < gates.min_cosine:
        raise GateFailed(
            f"mean cosine vs onnxruntime {check['mean_cosine']:.4f} below {gates.min_cosine}; worst "
            f"{check['min_cosine']:.4f} on {query(check['worst_cosine_query'])}",
            hint="try mode mixed (chooses float ops for this model), dynamic, float16 or int16x8",
        )
