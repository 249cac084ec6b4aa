"""Retrieval metrics (task `retrieval`): recall@1, recall@10, MRR and top-10 overlap, by stage.

A retrieval model scores every catalog item for a query (one output per product id in labels.txt); the
consumer takes the top k. So the quality is recall@k of the clicked product and, for compression, how much
of the float model's top-10 list the converted model keeps (`top10_overlap`: mean |A ∩ B| / 10). Top k is
taken with ties broken towards the lower item index (a stable sort), the same rule as the packaged model's
tie-break bias (converters/tflite_edit.py), so toolchain and app agree on the order of equal scores.

`retrieval_stages` gives each stage (source -> after steps -> after quantization) its recall and its overlap
with the source, and the converted model's overlap with the post-step float model: the report's
`evaluation.retrieval`, which the retrieval gates read (toolchain/evaluation/gates.py).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from toolchain.base.types import Stage
from toolchain.report.evaluation import (
    EvaluationSection,
    ItemKernel,
    RetrievalEvaluation,
    RetrievalStage,
    TableSize,
)

K = 10
RECALL_AT_10 = "recall@10"
RECALL_DROP = "recall@10 drop (points)"
OVERLAP_VS_SOURCE = "top-10 overlap vs source"
OVERLAP_VS_POST_STEP = "top-10 overlap vs post-step float"


def top_k(scores: np.ndarray, k: int = K) -> np.ndarray:
    """The k best item indices per query, best first; equal scores: the lower index first."""
    k = min(k, scores.shape[1])
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def ranks(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """0-based rank of item y[i] in query i's list (items scored higher, or equal with a lower index)."""
    own = scores[np.arange(len(y)), y][:, None]
    lower_index = np.arange(scores.shape[1])[None, :] < y[:, None]
    return np.sum((scores > own) | ((scores == own) & lower_index), axis=1)


class RecallMetrics(NamedTuple):
    recall_at_1: float
    recall_at_10: float
    mrr: float


def retrieval_metrics(scores: np.ndarray, y: np.ndarray) -> RecallMetrics:
    """recall@1, recall@10 and MRR of the clicked item."""
    r = ranks(scores, y)
    return RecallMetrics(
        round(float(np.mean(r < 1)), 4),
        round(float(np.mean(r < K)), 4),
        round(float(np.mean(1.0 / (r + 1))), 4),
    )


def top_k_overlap(reference: np.ndarray, candidate: np.ndarray, k: int = K) -> float:
    """Mean share of the reference's top k that the candidate also lists in its top k."""
    a, b = top_k(reference, k), top_k(candidate, k)
    shared = [len(set(ra.tolist()) & set(rb.tolist())) for ra, rb in zip(a, b, strict=True)]
    return round(float(np.mean(shared)) / a.shape[1], 4) if len(shared) else 1.0


def retrieval_stages(
    source: np.ndarray, post_step: np.ndarray | None, converted: np.ndarray, y: np.ndarray
) -> RetrievalEvaluation:
    """The report's `evaluation.retrieval`: per stage recall@1/@10, MRR and top-10 overlap vs source."""
    base_recall_10 = retrieval_metrics(source, y)[1]

    def stage(name: Stage, scores: np.ndarray) -> RetrievalStage:
        recall_1, recall_10, mrr = retrieval_metrics(scores, y)
        return RetrievalStage(
            stage=name,
            recall_at_1=recall_1,
            recall_at_10=recall_10,
            mrr=mrr,
            top10_overlap_vs_source=top_k_overlap(source, scores),
            top1_agreement_vs_source=round(float(np.mean(top_k(source, 1) == top_k(scores, 1))), 4),
            recall_at_10_drop_points=round((base_recall_10 - recall_10) * 100, 2),
        )

    stages = [stage(Stage.SOURCE, source)]
    if post_step is not None:
        stages.append(stage(Stage.AFTER_STEPS, post_step))
    final = stage(Stage.AFTER_QUANTIZATION, converted)
    final.top10_overlap_vs_post_step_float = top_k_overlap(
        post_step if post_step is not None else source, converted
    )
    stages.append(final)
    return RetrievalEvaluation(queries=int(len(y)), items=int(source.shape[1]), k=K, stages=stages)


def table_bytes(tensors: list[Any], n_items: int) -> TableSize:
    """Bytes of the item table in a .tflite (constant tensors with an n_items-long axis: the kernel, or
    both low-rank factors' item side, and the prior) vs the rest, and the quantization of the kernel."""
    consts = [t for t in tensors if t.is_constant]
    table = [t for t in consts if n_items in t.shape and n_items > 1]
    items = sum(t.nbytes for t in table)
    total = sum(t.nbytes for t in consts)
    kernel = max(table, key=lambda t: t.nbytes, default=None)
    return TableSize(
        item_table_bytes=int(items),
        other_weight_bytes=int(total - items),
        item_table_share=round(items / total, 4) if total else 0.0,
        item_kernel=None
        if kernel is None
        else ItemKernel(dtype=kernel.dtype, shape=list(kernel.shape), scales=len(kernel.scales)),
    )


def retrieval_summary(evaluation: EvaluationSection) -> list[tuple[str, str]]:
    """(metric, value) rows for the convert table and report.md (empty: not a retrieval build)."""
    section = evaluation.retrieval
    if section is None:
        return []
    final = section.final
    rows = [
        (RECALL_DROP, f"{final.recall_at_10_drop_points:.2f}"),
        (OVERLAP_VS_SOURCE, f"{final.top10_overlap_vs_source:.2%}"),
    ]
    if len(section.stages) > 2:
        rows.append((OVERLAP_VS_POST_STEP, f"{final.top10_overlap_vs_post_step_float:.2%}"))
    return rows


def retrieval_markdown(evaluation: EvaluationSection, step_kinds: list[str]) -> list[str]:
    """The report.md block: a stage table and the summary rows."""
    section = evaluation.retrieval
    if section is None:
        return []
    names = {
        Stage.AFTER_STEPS: f"after steps ({', '.join(step_kinds)}), float",
        Stage.AFTER_QUANTIZATION: ".tflite",
    }
    lines = [
        "",
        f"## Retrieval quality on {section.queries} test queries over {section.items} items",
        "",
        f"| stage | recall@1 | {RECALL_AT_10} | MRR | {OVERLAP_VS_SOURCE} | {RECALL_DROP} |",
        "|---|---|---|---|---|---|",
    ]
    for s in section.stages:
        lines.append(
            f"| {names.get(s.stage, s.stage)} | {s.recall_at_1:.4f} | {s.recall_at_10:.4f} | "
            f"{s.mrr:.4f} | {s.top10_overlap_vs_source:.2%} | {s.recall_at_10_drop_points:.2f} |"
        )
    return [*lines, "", *(f"- {name}: {value}" for name, value in retrieval_summary(evaluation))]
