"""Gates for a distilled student against its teacher, on per-query predictions: the seam of distill-auto.

`StudentGates` is the interface: a function from a student's and its teacher's predictions on the same
labelled queries (`QueryPredictions`) to a `GateVerdict` (pass, and the reasons of every miss).
toolchain/search/auto.py judges each candidate student with `student_gates(recipe.evaluation)`; the
default gates for a foreign teacher plug in here (replace `FOREIGN_TEACHER_DEFAULTS` / extend
`student_gates`), nothing else in distill-auto knows what the gates are.

Today: the recipe's classifier gates measured against the teacher (`max_accuracy_drop`: the teacher's
accuracy minus the student's, points; `min_agreement`: top-1 agreement with the teacher), with the
semantics of toolchain/evaluation/gates.py (a `max_` gate misses above its limit, a `min_` gate below;
each miss a `GateMiss`). A recipe without either gets FOREIGN_TEACHER_DEFAULTS: accuracy within 1.5 points
of the teacher and agreement >= 95%.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from toolchain.evaluation.gates import GateMiss
from toolchain.evaluation.metrics import classification_metrics
from toolchain.recipe.schema import EvaluationSpec
from toolchain.report.distill_auto import StudentQuality

FOREIGN_TEACHER_DEFAULTS = EvaluationSpec(max_accuracy_drop=1.5, min_agreement=0.95)
SURE_MARGIN = 0.2  # the teacher's top-1 minus top-2 probability (toolchain/sources/student.py)


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

    @property
    def reasons(self) -> list[str]:
        return [m.text for m in self.misses]


StudentGates = Callable[[QueryPredictions], GateVerdict]


def quality(p: QueryPredictions) -> StudentQuality:
    """Accuracy, agreement (overall and where the teacher is sure), macro-F1 and the worst intent."""
    names = p.label_names
    s = classification_metrics(p.labels, p.student, names)
    t = classification_metrics(p.labels, p.teacher, names)
    top = np.sort(p.teacher_probs, axis=1)
    sure = (top[:, -1] - top[:, -2]) >= SURE_MARGIN
    same = p.student == p.teacher
    present = [n for i, n in enumerate(names) if np.any(p.labels == i)]
    worst = min(present, key=lambda n: (s.recall[n], names.index(n))) if present else None
    return StudentQuality(
        queries=int(len(p.labels)),
        accuracy=s.accuracy,
        teacher_accuracy=t.accuracy,
        accuracy_drop_points=round((t.accuracy - s.accuracy) * 100, 2),
        agreement=round(float(same.mean()), 4),
        agreement_where_teacher_sure=round(float(same[sure].mean()), 4) if sure.any() else None,
        teacher_sure_queries=int(sure.sum()),
        macro_f1=s.macro_f1,
        teacher_macro_f1=t.macro_f1,
        worst_intent=worst,
        worst_intent_recall=None if worst is None else s.recall[worst],
        teacher_recall_of_worst=None if worst is None else t.recall[worst],
    )


def effective_gates(spec: EvaluationSpec) -> tuple[EvaluationSpec, str]:
    """The recipe's classifier gates, or the foreign-teacher defaults when it sets neither."""
    if spec.max_accuracy_drop is None and spec.min_agreement is None:
        return FOREIGN_TEACHER_DEFAULTS, "defaults for a foreign teacher"
    return spec, "the recipe's evaluation gates"


def gate_texts(spec: EvaluationSpec) -> list[str]:
    out = []
    if spec.max_accuracy_drop is not None:
        out.append(f"accuracy within {spec.max_accuracy_drop:g} pt of the teacher")
    if spec.min_agreement is not None:
        out.append(f"agreement with the teacher >= {spec.min_agreement:.0%}")
    return out


def student_gates(spec: EvaluationSpec) -> StudentGates:
    """The gates a candidate student must meet (the recipe's, else the defaults): THE SEAM."""
    gates, _ = effective_gates(spec)

    def judge(p: QueryPredictions) -> GateVerdict:
        q = quality(p)
        misses = []
        drop, agree = q.accuracy_drop_points, q.agreement
        if gates.max_accuracy_drop is not None and drop > gates.max_accuracy_drop:
            limit = gates.max_accuracy_drop
            text = f"accuracy {q.accuracy:.2%} is {drop:g} pt below the teacher's (limit {limit:g})"
            misses.append(
                GateMiss("max_accuracy_drop", "accuracy drop vs teacher", drop, gates.max_accuracy_drop, text)
            )
        if gates.min_agreement is not None and agree < gates.min_agreement:
            text = f"agreement with the teacher {agree:.2%} is below {gates.min_agreement:.2%}"
            misses.append(GateMiss("min_agreement", "agreement vs teacher", agree, gates.min_agreement, text))
        return GateVerdict(not misses, misses, q)

    return judge
