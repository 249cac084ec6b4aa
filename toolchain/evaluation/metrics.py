"""Metrics for the report: accuracy, macro-F1, agreement, recall change; closeness to a float reference.

One vocabulary, used by the table, report.json, report.md and the gates (docs/guides/report.md):
the **source** is the float model given to convert (for a distilled student: the teacher); the
**post-step float** is the float Keras model after the compression steps (the source itself when there are
none); the **converted** model is the .tflite. "agreement vs source" and "agreement vs post-step float" are
top-1 agreement of the converted model with each; "accuracy drop (points)" is the source's test accuracy
minus the converted model's, in percentage points. `stage_metrics` gives each stage's numbers against the
source and splits the converted model's disagreements with the source into those the steps already made
and those quantization added, so a failed gate can say which stage cost it.

The models themselves run elsewhere (devices/hostrun.py for the .tflite, the source backends for float).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from toolchain.base.types import Stage
from toolchain.report.evaluation import (
    ByStage,
    Comparison,
    Disagreements,
    EvaluationSection,
    Flip,
    Flips,
    Metrics,
    ReferenceCheck,
    StageMetrics,
    UnlabelledAgreement,
)
from toolchain.tasks import TEACHER_SURE_MIN_PROB as SURE_MIN_PROB


def reference_check(ref: np.ndarray, got: np.ndarray) -> ReferenceCheck:
    """Max abs error, cosine per query (mean, worst with its index), top-1 agreement."""
    cos = np.sum(ref * got, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1) + 1e-12)
    err = np.abs(ref - got).max(1)
    return ReferenceCheck(
        queries=int(len(ref)),
        max_abs_error=float(err.max()),
        worst_abs_query=int(err.argmax()),
        mean_cosine=float(cos.mean()),
        min_cosine=float(cos.min()),
        worst_cosine_query=int(cos.argmin()),
        top1_agreement=float(np.mean(ref.argmax(1) == got.argmax(1))),
    )


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> Metrics:
    recall, f1s = {}, []
    for i, name in enumerate(labels):
        tp = int(np.sum((y_pred == i) & (y_true == i)))
        support = int(np.sum(y_true == i))
        predicted = int(np.sum(y_pred == i))
        r = tp / support if support else 0.0
        p = tp / predicted if predicted else 0.0
        recall[name] = round(r, 4)
        if support:
            f1s.append(2 * p * r / (p + r) if p + r else 0.0)
    acc = float(np.mean(y_true == y_pred)) if len(y_true) else 0.0
    macro_f1 = round(float(np.mean(f1s)) if f1s else 0.0, 4)
    return Metrics(accuracy=round(acc, 4), macro_f1=macro_f1, recall=recall)


FLIPS_SHOWN = 5


def softmax(z: np.ndarray) -> np.ndarray:
    """Probabilities of logits along the last axis (numerically stable)."""
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def probabilities(scores: np.ndarray) -> np.ndarray:
    """Scores as probabilities: rows that already are (non-negative, summing to 1) as they are, else the
    softmax of the logits."""
    s = np.asarray(scores, np.float64)
    if s.min() >= 0 and np.allclose(s.sum(1), 1.0, atol=1e-3):
        return s
    return softmax(s)


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion hits / n (it stays inside 0..1 near 100%)."""
    if n <= 0:
        return (0.0, 1.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(float(max(0.0, centre - half)), 4), round(float(min(1.0, centre + half)), 4))


def flips(
    reference: np.ndarray, candidate: np.ndarray, labels: Sequence[str], texts: Sequence[str] | None = None
) -> Flips:
    """The candidate's top-1 disagreements with the reference, split by whether the reference was sure of
    the query (top-1 probability >= SURE_MIN_PROB, the teacher gates' rule), the surest few listed."""
    probs = probabilities(reference)
    order = np.argsort(-probs, 1)
    top, cand = order[:, 0], candidate.argmax(1)
    sure = probs.max(1) >= SURE_MIN_PROB
    flipped = np.flatnonzero(top != cand)
    surest = sorted(flipped, key=lambda i: -probs[i, top[i]])[:FLIPS_SHOWN]
    same = top == cand
    return Flips(
        total=int(len(flipped)),
        sure_min_prob=SURE_MIN_PROB,
        sure_queries=int(sure.sum()),
        where_sure=int((~same & sure).sum()),
        where_unsure=int((~same & ~sure).sum()),
        agreement_where_sure=round(float(same[sure].mean()), 4) if sure.any() else None,
        agreement_interval=wilson(int(same.sum()), len(same)),
        most_confident=[
            Flip(
                query=int(i),
                text=texts[i] if texts is not None and i < len(texts) else None,
                source=labels[top[i]],
                source_prob=round(float(probs[i, top[i]]), 4),
                source_runner_up=labels[order[i, 1]],
                converted=labels[cand[i]],
            )
            for i in surest
        ],
    )


def compare(
    reference: np.ndarray,
    candidate: np.ndarray,
    y_true: np.ndarray,
    labels: Sequence[str],
    texts: Sequence[str] | None = None,
) -> Comparison:
    """Float-vs-converted comparison for the report (`texts`: the queries, named in the flips)."""
    ref_pred, cand_pred = reference.argmax(1), candidate.argmax(1)
    ref_m = classification_metrics(y_true, ref_pred, labels)
    cand_m = classification_metrics(y_true, cand_pred, labels)
    recall_change = {k: round(cand_m.recall[k] - ref_m.recall[k], 4) for k in labels}
    return Comparison(
        queries=int(len(y_true)),
        reference=ref_m,
        converted=cand_m,
        accuracy_drop_points=round((ref_m.accuracy - cand_m.accuracy) * 100, 2),
        top1_agreement=round(float(np.mean(ref_pred == cand_pred)), 4),
        max_abs_score_diff=round(float(np.max(np.abs(reference - candidate))), 5),
        recall_change=recall_change,
        worst_recall_change=min(recall_change.items(), key=lambda kv: kv[1]) if recall_change else None,
        support={k: int(np.sum(y_true == i)) for i, k in enumerate(labels)},  # test queries per intent
        flips=flips(reference, candidate, labels, texts) if len(labels) > 1 else None,
    )


def unlabelled_agreement(
    source: np.ndarray,
    post_step: np.ndarray,
    converted: np.ndarray,
    labels: Sequence[str],
    texts: Sequence[str],
) -> UnlabelledAgreement:
    """The converted model's top-1 against the source's and the post-step float's on unlabelled queries."""
    cand = converted.argmax(1)
    return UnlabelledAgreement(
        queries=int(len(cand)),
        top1_agreement=round(float(np.mean(source.argmax(1) == cand)), 4),
        top1_agreement_vs_post_step_float=round(float(np.mean(post_step.argmax(1) == cand)), 4),
        flips=flips(source, converted, labels, texts),
    )


def stage_metrics(
    source: np.ndarray,
    post_step: np.ndarray | None,
    converted: np.ndarray,
    y_true: np.ndarray,
    labels: Sequence[str],
) -> ByStage:
    """Accuracy and agreement vs source at each stage: source -> after steps -> after quantization.

    `post_step` is None for a build without steps (the source is the post-step float). `disagreements`
    splits the converted model's disagreements with the source: `from_steps` (the post-step float already
    disagreed on that query) and `from_quantization` (it agreed; the .tflite does not)."""
    src_pred, conv_pred = source.argmax(1), converted.argmax(1)
    post_pred = post_step.argmax(1) if post_step is not None else src_pred
    src_accuracy = classification_metrics(y_true, src_pred, labels).accuracy

    def stage(name: Stage, pred: np.ndarray) -> StageMetrics:
        m = classification_metrics(y_true, pred, labels)
        return StageMetrics(
            stage=name,
            accuracy=m.accuracy,
            macro_f1=m.macro_f1,
            agreement_vs_source=round(float(np.mean(pred == src_pred)), 4),
            accuracy_drop_points=round((src_accuracy - m.accuracy) * 100, 2),
        )

    stages = [stage(Stage.SOURCE, src_pred)]
    if post_step is not None:
        stages.append(stage(Stage.AFTER_STEPS, post_pred))
    final = stage(Stage.AFTER_QUANTIZATION, conv_pred)
    final.agreement_vs_post_step_float = round(float(np.mean(conv_pred == post_pred)), 4)
    stages.append(final)
    wrong = conv_pred != src_pred
    from_steps = int(np.sum(wrong & (post_pred != src_pred)))
    return ByStage(
        queries=int(len(y_true)),
        stages=stages,
        disagreements_vs_source=Disagreements(
            total=int(np.sum(wrong)),
            from_steps=from_steps,
            from_quantization=int(np.sum(wrong)) - from_steps,
        ),
    )


# The metric names, identical in the table, report.md, the gate messages and the docs (docs/guides/report.md).
AGREEMENT_VS_SOURCE = "agreement vs source"
AGREEMENT_VS_POST_STEP = "agreement vs post-step float"
ACCURACY_DROP = "accuracy drop (points)"


def worst_recall_text(cmp: Comparison) -> str | None:
    """ "order_status -50.0 pt (n=2)": the intent whose recall fell most vs source, with its test support."""
    if not cmp.worst_recall_change:
        return None
    label, change = cmp.worst_recall_change
    n = cmp.support.get(label)
    return f"{label} {change * 100:+.1f} pt" + (f" (n={n})" if n is not None else "")


def quality_summary(evaluation: EvaluationSection) -> list[tuple[str, str]]:
    """(metric name, value) rows of a classifier's evaluation, in the one vocabulary (empty: none)."""
    src, final = evaluation.vs_source_float, evaluation.vs_final_float
    if src is None:
        return _unlabelled_summary(evaluation.unlabelled) if evaluation.unlabelled is not None else []
    rows = [
        (ACCURACY_DROP, f"{src.accuracy_drop_points:.2f}"),
        (AGREEMENT_VS_SOURCE, f"{src.top1_agreement:.2%}"),
    ]
    if src.flips is not None:
        rows += _flip_rows(src.flips, src.queries)
    if final is not None:
        rows.append((AGREEMENT_VS_POST_STEP, f"{final.top1_agreement:.2%}"))
    worst = worst_recall_text(src)
    if worst:
        rows.append(("worst recall change", worst))
    return rows


def _flip_rows(f: Flips, queries: int) -> list[tuple[str, str]]:
    """The agreement's 95% interval and the flips where the source is sure."""
    low, high = f.agreement_interval
    sure = f"top-1 probability >= {f.sure_min_prob}: {f.sure_queries} queries"
    return [
        (f"{AGREEMENT_VS_SOURCE}, 95% interval", f"{low:.2%}-{high:.2%} (n={queries})"),
        ("disagreements where the source is sure", f"{f.where_sure} of {f.total} ({sure})"),
    ]


def _unlabelled_summary(u: UnlabelledAgreement) -> list[tuple[str, str]]:
    return [
        (AGREEMENT_VS_SOURCE, f"{u.top1_agreement:.2%} ({u.queries} unlabelled queries)"),
        *_flip_rows(u.flips, u.queries),
        (AGREEMENT_VS_POST_STEP, f"{u.top1_agreement_vs_post_step_float:.2%}"),
    ]


def disagreement_text(evaluation: EvaluationSection) -> str | None:
    """ "18 of 748 test queries disagree with the source: 17 already after the steps, 1 from quantization"."""
    by_stage = evaluation.by_stage
    if by_stage is None:
        return None
    d = by_stage.disagreements_vs_source
    if len(by_stage.stages) < 3:
        return f"{d.total} of {by_stage.queries} test queries disagree with the source (no steps)"
    return (
        f"{d.total} of {by_stage.queries} test queries disagree with the source: {d.from_steps} "
        f"already after the steps, {d.from_quantization} from quantization"
    )


def flip_lines(evaluation: EvaluationSection) -> list[str]:
    """The flips vs the source the source was surest of: `"red running shoes" product_search (0.998) ->
    order_status`, surest first (empty: none, or a report from before the flips)."""
    c, u = evaluation.vs_source_float, evaluation.unlabelled
    f = c.flips if c is not None else u.flips if u is not None else None
    if f is None:
        return []
    return [
        f"{'query ' + str(x.query) if x.text is None else repr(x.text)}: {x.source} ({x.source_prob:.3f}; "
        f"runner-up {x.source_runner_up}) -> {x.converted}"
        for x in f.most_confident
    ]
