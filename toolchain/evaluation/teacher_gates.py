"""The gates of a foreign teacher's student (issue 25): the defaults when the recipe gives none, and the
intents a student loses.

A preset student is a fixed guess: on a user's imbalanced data it can keep the headline accuracy close to the
teacher's while rare intents die (recall 0). So a student of a foreign teacher (the recipe source is an ONNX
/ TFLite / scores teacher) is judged, when the recipe sets no gate, by the task's `teacher_default_gates`
(toolchain/tasks.py TEACHER_DEFAULT_GATES): accuracy within 1.5 points of the teacher, agreement >= 95%
where the teacher is sure (its top-1 probability >= 0.95, tasks.py TEACHER_SURE_MIN_PROB; the report's
`teacher_sure_queries`, with the teacher's own accuracy on them), macro-F1 within 2 points, and no intent
whose recall is below half the teacher's recall for it (`min_recall_ratio`; an intent the teacher itself
never gets right does not count). Any gate the user gives replaces all the defaults. The checks themselves
are toolchain/evaluation/gates.py's, as for every build; here are the per-intent numbers they read.
"""

from __future__ import annotations

from toolchain.base.types import Task
from toolchain.recipe.schema import EvaluationSpec
from toolchain.report.evaluation import Comparison, WeakIntent
from toolchain.tasks import task_spec

TEACHER_DEFAULTS = "foreign-teacher defaults"  # GateResults.origin when the recipe set no gate
DEFAULTS_NOTE = (
    "the default gates of a foreign teacher's student (no gate was given): accuracy within 1.5 points of "
    "the teacher, agreement >= 95% where it is sure, macro-F1 within 2 points, no intent below half the "
    "teacher's recall"
)


def effective_gates(
    gates: EvaluationSpec, task: Task | str, foreign_teacher: bool
) -> tuple[EvaluationSpec, str]:
    """The gates a build is judged by and whose they are: the recipe's, or, for a foreign teacher's
    student when the recipe sets no gate at all, the task's `teacher_default_gates` (toolchain/tasks.py).
    Any gate the user gives replaces all the defaults."""
    defaults = task_spec(task).teacher_default_gates if foreign_teacher else {}
    if not defaults or any(v is not None for v in gates.model_dump().values()):
        return gates, "recipe"
    return gates.model_copy(update=defaults), TEACHER_DEFAULTS


def recall_ratio(cmp: Comparison) -> float:
    """The lowest recall of any intent as a share of the reference's recall for it (1.0: none lost); an
    intent the reference never gets right (recall 0) or without test queries is not counted."""
    ratios = [
        cmp.converted.recall[k] / r
        for k, r in cmp.reference.recall.items()
        if r > 0 and cmp.support.get(k, 0) > 0
    ]
    return round(min(ratios), 4) if ratios else 1.0


def weak_intents(cmp: Comparison, min_ratio: float) -> list[WeakIntent]:
    """The intents whose recall is below `min_ratio` of the reference's, worst (lowest ratio) first."""
    weak = [
        WeakIntent(
            label=k,
            recall=cmp.converted.recall[k],
            reference_recall=r,
            support=cmp.support.get(k, 0),
            dead=cmp.converted.recall[k] == 0,
        )
        for k, r in cmp.reference.recall.items()
        if r > 0 and cmp.support.get(k, 0) > 0 and cmp.converted.recall[k] < min_ratio * r
    ]
    return sorted(weak, key=lambda w: (w.recall / w.reference_recall, -w.support, w.label))


MAX_NAMED = 12  # weak intents named in the one-line error (all of them are in the report)
WEAKEST_NAMED = 3  # intents named when the recall gate holds but another gate missed


def weakest_text(cmp: Comparison, ref: str) -> str:
    """ "0 dead intents; weakest vs the teacher: shop_baby 62% (the teacher 100%, n=8), ..." for a
    rejection whose recall gate held: the per-intent picture still says where the student is thin."""
    ranked = weak_intents(cmp, float("inf"))  # every counted intent, lowest share of the reference first
    below = [w for w in ranked if w.recall < w.reference_recall]
    if not below:
        return f"every intent's recall at least {ref}'s (0 dead)"
    dead = sum(w.dead for w in below)
    named = ", ".join(
        f"{w.label} {w.recall:.0%} ({ref} {w.reference_recall:.0%}, n={w.support})"
        for w in below[:WEAKEST_NAMED]
    )
    return f"{dead} dead intents; weakest vs {ref}: {named}"


def weak_text(cmp: Comparison, limit: float, ref: str) -> str:
    """ "3 of 32 intents (2 dead) have recall below 50% of the teacher's: shop_baby 0% (the teacher
    100%, n=4), ..." """
    weak = weak_intents(cmp, limit)
    dead = sum(w.dead for w in weak)
    named = ", ".join(
        f"{w.label} {w.recall:.0%} ({ref} {w.reference_recall:.0%}, n={w.support})" for w in weak[:MAX_NAMED]
    )
    more = f", and {len(weak) - MAX_NAMED} more" if len(weak) > MAX_NAMED else ""
    return (
        f"{len(weak)} of {len(cmp.reference.recall)} intents ({dead} dead) have recall below {limit:.0%} of "
        f"{ref}'s: {named}{more}"
    )
