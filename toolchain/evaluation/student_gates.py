"""Gates for a distilled student against its teacher, on per-query predictions: distill-auto's verdict.

`student_gates(spec, task)` is a function from a student's and its teacher's predictions on the same
labelled queries (`QueryPredictions`) to a `GateVerdict` (pass, every miss, every gate's check). It judges
a candidate exactly as the final build is judged: the gates are toolchain/evaluation/teacher_gates.py
`effective_gates` (the recipe's, else the task's foreign-teacher defaults, toolchain/tasks.py
TEACHER_DEFAULT_GATES: accuracy within 1.5 points, agreement >= 95% where the teacher is sure (its top-1
probability >= TEACHER_SURE_MIN_PROB, 0.95), macro-F1 within 2 points, no intent below half the teacher's
recall), and the checks are toolchain/evaluation/gates.py `failed_gates` / `gate_results`, run on an
evaluation section made from the predictions (the teacher is the source, as in a foreign teacher's build).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolchain.base.types import Task
from toolchain.evaluation.gates import GateMiss, failed_gates, gate_results
from toolchain.evaluation.metrics import compare
from toolchain.evaluation.teacher_gates import effective_gates, recall_ratio, weak_intents
from toolchain.recipe.schema import EvaluationSpec
from toolchain.report.distill_auto import StudentQuality
from toolchain.report.evaluation import EvaluationSection, GateCheck, TeacherAgreement
from toolchain.tasks import TEACHER_SURE_MIN_PROB as SURE_MIN_PROB


def confident_agreement(
    teacher_probs: np.ndarray, student_scores: np.ndarray, labels: np.ndarray | None = None
) -> dict[str, Any]:
    """Agreement on the queries where the teacher is sure (its top-1 probability >= SURE_MIN_PROB), how
    many queries it is unsure of, and (given the labels) the teacher's own accuracy where it is sure: where
    it is unsure its argmax is close to a coin toss that a student with another tokenizer cannot copy, so
    this separates the student's mistakes from the teacher's doubt."""
    sure = teacher_probs.max(1) >= SURE_MIN_PROB
    teacher = teacher_probs.argmax(1)
    same = teacher == student_scores.argmax(1)
    right = None if labels is None or not sure.any() else float((teacher == labels)[sure].mean())
    return {
        "agreement_where_teacher_sure": round(float(same[sure].mean()), 4) if sure.any() else None,
        "teacher_sure_queries": int(sure.sum()),
        "teacher_unsure_queries": int((~sure).sum()),
        "agreement_where_teacher_unsure": round(float(same[~sure].mean()), 4) if (~sure).any() else None,
        "teacher_sure_min_prob": SURE_MIN_PROB,
        "teacher_accuracy_where_sure": None if right is None else round(right, 4),
    }


@dataclass(frozen=True)
class QueryPredictions:
    """A student's and its teacher's predictions on the same labelled queries."""

    labels: np.ndarray  # (n,) true label ids
    teacher_probs: np.ndarray  # (n, k) the teacher's probabilities
    student: np.ndarray  # (n,) the student's predicted ids (its int8 model)
    label_names: list[str]

    @property
    def teacher(self) -> np.ndarray:
        return self.teacher_probs.argmax(1)


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    misses: list[GateMiss] = field(default_factory=list)
    quality: StudentQuality | None = None
    checks: list[GateCheck] = field(default_factory=list)  # every gate applied, measured and judged

    @property
    def reasons(self) -> list[str]:
        return [f"{m.gate}: {m.text}" for m in self.misses]


StudentGates = Callable[[QueryPredictions], GateVerdict]


def evaluation_of(p: QueryPredictions) -> EvaluationSection:
    """The predictions as a foreign teacher's build evaluates them: the teacher is the source."""
    student = np.eye(len(p.label_names))[p.student]
    cmp = compare(p.teacher_probs, student, p.labels, p.label_names)
    teacher = TeacherAgreement(
        agreement_with_teacher=cmp.top1_agreement,
        teacher_accuracy=cmp.reference.accuracy,
        student_accuracy=cmp.converted.accuracy,
        accuracy_drop_points=cmp.accuracy_drop_points,
        teacher="teacher",
        **confident_agreement(p.teacher_probs, student, p.labels),
    )
    return EvaluationSection(vs_source_float=cmp, teacher=teacher)


def quality(p: QueryPredictions, evaluation: EvaluationSection | None = None) -> StudentQuality:
    """Accuracy, agreement (overall and where the teacher is sure), macro-F1 and the worst intent (the
    lowest recall as a share of the teacher's, the min_recall_ratio gate's number)."""
    ev = evaluation or evaluation_of(p)
    cmp, t = ev.vs_source_float, ev.teacher
    assert cmp is not None and t is not None
    ranked = weak_intents(cmp, 2.0)  # every intent the teacher gets right, lowest share of its recall first
    worst = ranked[0] if ranked else None
    return StudentQuality(
        queries=cmp.queries,
        accuracy=cmp.converted.accuracy,
        teacher_accuracy=cmp.reference.accuracy,
        accuracy_drop_points=cmp.accuracy_drop_points,
        agreement=cmp.top1_agreement,
        agreement_where_teacher_sure=t.agreement_where_teacher_sure,
        teacher_sure_queries=t.teacher_sure_queries,
        teacher_accuracy_where_sure=t.teacher_accuracy_where_sure,
        macro_f1=cmp.converted.macro_f1,
        teacher_macro_f1=cmp.reference.macro_f1,
        macro_f1_drop_points=round((cmp.reference.macro_f1 - cmp.converted.macro_f1) * 100, 2),
        worst_intent=None if worst is None else worst.label,
        worst_intent_recall=None if worst is None else worst.recall,
        teacher_recall_of_worst=None if worst is None else worst.reference_recall,
        recall_ratio=recall_ratio(cmp),
        dead_intents=sum(w.dead for w in ranked),
    )


GATE_TEXTS = {
    "max_accuracy_drop": "accuracy within {:g} pt of the teacher",
    "min_agreement": "agreement with the teacher >= {:.0%}",
    # the rule for "sure" is in the text, so a distill-auto journal judged by another rule is not resumed
    "min_agreement_where_sure": "agreement >= {:.0%} where the teacher is sure (top-1 probability >= "
    + f"{SURE_MIN_PROB})",
    "max_macro_f1_drop": "macro-F1 within {:g} pt of the teacher's",
    "min_recall_ratio": "no intent's recall below {:.0%} of the teacher's",
}


def gate_texts(spec: EvaluationSpec) -> list[str]:
    """The classifier gates that are set, as text (the candidates table's header)."""
    return [
        text.format(getattr(spec, gate))
        for gate, text in GATE_TEXTS.items()
        if getattr(spec, gate) is not None
    ]


def student_gates(spec: EvaluationSpec, task: Task | str = Task.CLASSIFICATION) -> StudentGates:
    """The gates a candidate student must meet: the final build's (`effective_gates` for a foreign
    teacher's student), checked by gates.py as the build checks them."""
    gates, origin = effective_gates(spec, task, foreign_teacher=True)

    def judge(p: QueryPredictions) -> GateVerdict:
        ev = evaluation_of(p)
        misses = failed_gates(gates, ev)
        checks = gate_results(gates, ev, origin).checks
        return GateVerdict(not misses, misses, quality(p, ev), checks)

    return judge
