"""report.json `distill_auto`: every student `student: auto` tried, and which one it kept (typed).

Written by toolchain/search/auto.py on the chosen student's build, and as candidates.json in
build/<name>.distill-auto/ whether or not one passed. The numbers are on the **val** split (the split the
choice is made on; the build's own `evaluation` is on test), against the teacher.
"""

from __future__ import annotations

from pydantic import Field

from toolchain.base.record import Record


class StudentQuality(Record):
    """A student against its teacher on the same labelled queries (toolchain/evaluation/student_gates.py)."""

    queries: int = Field(description="queries measured")
    accuracy: float = Field(description="the student's accuracy")
    teacher_accuracy: float = Field(description="the teacher's accuracy on the same queries")
    accuracy_drop_points: float = Field(description="teacher minus student, points")
    agreement: float = Field(description="top-1 agreement with the teacher, every query")
    agreement_where_teacher_sure: float | None = Field(
        description="top-1 leads top-2 by >= 0.2 (sources/student.py)"
    )
    teacher_sure_queries: int = Field(description="queries where the teacher is sure")
    macro_f1: float = Field(description="the student's macro-F1")
    teacher_macro_f1: float = Field(description="the teacher's macro-F1")
    worst_intent: str | None = Field(
        description="the intent the student recalls least (ties: the first label)"
    )
    worst_intent_recall: float | None = Field(description="the student's recall of its worst intent")
    teacher_recall_of_worst: float | None = Field(description="the teacher's recall of that intent")


class CandidateResult(Record):
    """One student tried: what it is, what it measured, and the verdict of the gates."""

    trial: int | None = Field(
        description="the trial number in study.journal (None: not tried, a smaller one passed)"
    )
    family: str = Field(description="student family (word-cnn, word-bigru, teacher-cnn)")
    width: int = Field(description="the student's width (embedding or units)")
    hidden: int = Field(description="the student's hidden size")
    vocab: int | None = Field(
        description="a word-level student's vocab cap (None: the recipe's student_vocab)"
    )
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


class DistillAutoSection(Record):
    """How `student: auto` chose the build's student."""

    split: str = Field(description="the split the candidates were measured on (val)")
    gates: list[str] = Field(description="the gates each candidate had to meet, as text")
    gates_from: str = Field(
        description="the recipe's evaluation gates, or the defaults for a foreign teacher"
    )
    order: str = Field(description="how the candidates were ordered")
    candidates: list[CandidateResult] = Field(description="every student in the ladder, in the order tried")
    chosen: int | None = Field(description="index into candidates; None: none met the gates")
    runner: str = Field(description="local workers N | ray <address>")
    search_dir: str = Field(description="build/<name>.distill-auto: study.journal, trials/, candidates.md")
    seconds: float = Field(description="wall time")


def _pct(v: float | None) -> str:
    return "" if v is None else f"{v:.2%}"


def candidate_rows(section: DistillAutoSection) -> list[list[str]]:
    """One row per candidate: family, width/hidden, parameters, int8 KB, accuracy, agreement (where the
    teacher is sure), macro-F1, worst intent and its recall (the teacher's), verdict; for md and html."""
    rows = []
    for i, c in enumerate(section.candidates):
        q = c.quality
        worst = ""
        if q is not None and q.worst_intent is not None:
            worst = (
                f"{q.worst_intent} {_pct(q.worst_intent_recall)} (teacher {_pct(q.teacher_recall_of_worst)})"
            )
        verdict = c.verdict + (" (kept)" if i == section.chosen else "")
        rows.append(
            [
                c.family,
                f"{c.width}/{c.hidden}" + (f", {c.vocab} words" if c.vocab else ""),
                f"{c.parameters:,}",
                "" if c.int8_bytes is None else f"{c.int8_bytes / 1024:.1f}",
                "" if q is None else f"{_pct(q.accuracy)} (teacher {_pct(q.teacher_accuracy)})",
                "" if q is None else f"{_pct(q.agreement)} ({_pct(q.agreement_where_teacher_sure)})",
                "" if q is None else f"{q.macro_f1:.3f} (teacher {q.teacher_macro_f1:.3f})",
                worst,
                verdict + (": " + "; ".join(c.reasons) if c.reasons and c.verdict != "passed" else ""),
            ]
        )
    return rows


CANDIDATE_COLUMNS = [
    "family", "width/hidden", "parameters", "int8 KB", "accuracy", "agreement (teacher sure)", "macro-F1",
    "worst intent: recall", "verdict",
]  # fmt: skip


def candidates_markdown(section: DistillAutoSection) -> str:
    """The candidates as a markdown section (report.md and candidates.md)."""
    lines = [
        "## Students tried (distill-auto)",
        "",
        f"On the {section.split} split, against the teacher; gates ({section.gates_from}): "
        f"{', '.join(section.gates)}. Order: {section.order}. Ran on {section.runner} in "
        f"{section.seconds:g} s ({section.search_dir}).",
        "",
        "| " + " | ".join(CANDIDATE_COLUMNS) + " |",
        "|" + "---|" * len(CANDIDATE_COLUMNS),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in candidate_rows(section)]
    return "\n".join(lines) + "\n"
