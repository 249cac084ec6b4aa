"""report.json `distill_auto`: every student `student: auto` tried, and which one it kept (typed).

Written by toolchain/search/auto.py on the chosen student's build, and as candidates.json in
build/<name>.distill-auto/ whether or not one passed. The numbers are on the **val** split (the split the
choice is made on; the build's own `evaluation` is on test), against the teacher.
"""

from __future__ import annotations

from pydantic import Field

from toolchain.base.record import Record
from toolchain.report.evaluation import GateCheck
from toolchain.tasks import TEACHER_SURE_MIN_PROB


class StudentQuality(Record):
    """A student against its teacher on the same labelled queries (toolchain/evaluation/student_gates.py)."""

    queries: int = Field(description="queries measured")
    accuracy: float = Field(description="the student's accuracy")
    teacher_accuracy: float = Field(description="the teacher's accuracy on the same queries")
    accuracy_drop_points: float = Field(description="teacher minus student, points")
    agreement: float = Field(description="top-1 agreement with the teacher, every query")
    agreement_where_teacher_sure: float | None = Field(
        description="where the teacher's top-1 probability is >= 0.95 (student_gates.py SURE_MIN_PROB)"
    )
    teacher_sure_queries: int = Field(description="queries where the teacher is sure")
    teacher_accuracy_where_sure: float | None = Field(
        None, description="the teacher's own accuracy on the queries it is sure of"
    )
    macro_f1: float = Field(description="the student's macro-F1")
    teacher_macro_f1: float = Field(description="the teacher's macro-F1")
    macro_f1_drop_points: float | None = Field(
        None, description="the teacher's macro-F1 minus the student's, points"
    )
    worst_intent: str | None = Field(
        description="the intent whose recall is the lowest share of the teacher's (min_recall_ratio's number)"
    )
    worst_intent_recall: float | None = Field(description="the student's recall of its worst intent")
    teacher_recall_of_worst: float | None = Field(description="the teacher's recall of that intent")
    recall_ratio: float | None = Field(
        None, description="the worst intent's recall as a share of the teacher's (1.0: no intent lost)"
    )
    dead_intents: int | None = Field(
        None, description="intents the teacher gets right that the student never does"
    )


class CandidateResult(Record):
    """One student tried: what it is, what it measured, and the verdict of the gates."""

    trial: int | None = Field(
        description="the trial number in study.journal (None: not tried, a smaller one passed)"
    )
    family: str = Field(description="student family (word-cnn, word-bigru, teacher-cnn, tiny-bert)")
    width: int | str = Field(description="the student's width (embedding or units; tiny-bert: the model's)")
    hidden: int | str = Field(description="the student's hidden size (tiny-bert: the feed-forward size)")
    layers: int | None = Field(None, description="tiny-bert: encoder blocks")
    heads: int | str | None = Field(None, description="tiny-bert: attention heads")
    vocab: int | None = Field(
        description="a word-level student's vocab cap (None: the recipe's student_vocab)"
    )
    vocab_coverage: float | None = Field(
        None, description="a word-level student's vocab: the words making up this share of the queries' words"
    )
    per_channel: bool = Field(True, description="false: int8 weights with one scale per tensor")
    parameters: int = Field(
        description="the Keras student's, counted before training (the order of the ladder)"
    )
    int8_bytes: int | None = Field(
        description="model.tflite of the trial (None: stopped, failed or not tried)"
    )
    quality: StudentQuality | None = Field(
        None, description="what the student measured (None: stopped, failed or not tried)"
    )
    verdict: str = Field(description="passed | rejected | stopped | failed | not tried")
    reasons: list[str] = Field(description="the gates missed, why it stopped or failed")
    gates: list[GateCheck] = Field(
        default_factory=list, description="every gate applied to it, measured and judged (gates.py)"
    )


class DistillAutoSection(Record):
    """How `student: auto` chose the build's student."""

    split: str = Field(description="the split the candidates were measured on (val)")
    gates: list[str] = Field(description="the gates each candidate had to meet, as text")
    gates_from: str = Field(
        description="'recipe', or 'foreign-teacher defaults' when the recipe set no gate (tasks.py)"
    )
    order: str = Field(description="how the candidates were ordered")
    candidates: list[CandidateResult] = Field(description="every student in the ladder, in the order tried")
    chosen: int | None = Field(description="index into candidates; None: none met the gates")
    runner: str = Field(description="local workers N | ray <address>")
    search_dir: str = Field(description="build/<name>.distill-auto: study.journal, trials/, candidates.md")
    seconds: float = Field(description="wall time")


def _pct(v: float | None) -> str:
    return "" if v is None else f"{v:.2%}"


def _mark(c: CandidateResult, gate: str) -> str:
    check = next((g for g in c.gates if g.gate == gate), None)
    if check is None or check.passed is None:
        return ""
    return " ok" if check.passed else " MISS"


def candidate_rows(section: DistillAutoSection) -> list[list[str]]:
    """One row per candidate: family, width/hidden, parameters, int8 KB, then each gate's number and its
    verdict (ok / MISS): accuracy (drop), agreement where the teacher is sure, macro-F1 (drop), the worst
    intent's recall vs the teacher's (the share), dead intents; the verdict. For md and html."""
    rows = []
    for i, c in enumerate(section.candidates):
        q = c.quality
        cells = ["", "", "", "", ""]
        if q is not None:
            worst = ""
            if q.worst_intent is not None:
                worst = (
                    f"{q.worst_intent} {_pct(q.worst_intent_recall)} vs {_pct(q.teacher_recall_of_worst)}"
                    f" ({q.recall_ratio:.0%})"
                    if q.recall_ratio is not None
                    else ""
                )
            cells = [
                f"{_pct(q.accuracy)} ({-q.accuracy_drop_points:+g} pt)" + _mark(c, "max_accuracy_drop"),
                f"{_pct(q.agreement_where_teacher_sure)} ({_pct(q.agreement)} all)"
                + _mark(c, "min_agreement_where_sure")
                + _mark(c, "min_agreement"),
                f"{q.macro_f1:.3f} ({-(q.macro_f1_drop_points or 0):+g} pt)" + _mark(c, "max_macro_f1_drop"),
                worst + _mark(c, "min_recall_ratio"),
                "" if q.dead_intents is None else str(q.dead_intents),
            ]
        verdict = c.verdict + (" (kept)" if i == section.chosen else "")
        why = ": " + "; ".join(c.reasons) if c.reasons and c.verdict not in ("passed", "rejected") else ""
        rows.append(
            [
                c.family,
                f"{c.width}/{c.hidden}"
                + (f", {c.vocab} words" if c.vocab else "")
                + (f", words covering {c.vocab_coverage:.1%}" if c.vocab_coverage else "")
                + (f", {c.layers} layer(s) x {c.heads} heads" if c.layers else "")
                + (", per-tensor" if not c.per_channel else ""),
                f"{c.parameters:,}",
                "" if c.int8_bytes is None else f"{c.int8_bytes / 1024:.1f}",
                *cells,
                verdict + why,
            ]
        )
    return rows


CANDIDATE_COLUMNS = [
    "family", "width/hidden", "parameters", "int8 KB", "accuracy (vs teacher)",
    "agreement where the teacher is sure", "macro-F1 (vs teacher)",
    "worst intent: recall vs the teacher's (share)", "dead intents", "verdict",
]  # fmt: skip


def sure_text(section: DistillAutoSection) -> str:
    """What "sure" means and how often the teacher is right there (the ceiling of agreement with its right
    answers), from the first measured candidate (the teacher's numbers are the same for every one)."""
    q = next((c.quality for c in section.candidates if c.quality is not None), None)
    if q is None or q.teacher_accuracy_where_sure is None:
        return ""
    return (
        f" The teacher is sure of a query when its top-1 probability is >= {TEACHER_SURE_MIN_PROB}: "
        f"{q.teacher_sure_queries} of {q.queries} here, and it is right on "
        f"{q.teacher_accuracy_where_sure:.2%} of them."
    )


def candidates_markdown(section: DistillAutoSection) -> str:
    """The candidates as a markdown section (report.md and candidates.md)."""
    lines = [
        "## Students tried (distill-auto)",
        "",
        f"On the {section.split} split, against the teacher; gates ({section.gates_from}): "
        f"{', '.join(section.gates)}. Order: {section.order}. Ran on {section.runner} in "
        f"{section.seconds:g} s ({section.search_dir}).{sure_text(section)}",
        "",
        "| " + " | ".join(CANDIDATE_COLUMNS) + " |",
        "|" + "---|" * len(CANDIDATE_COLUMNS),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in candidate_rows(section)]
    return "\n".join(lines) + "\n"
