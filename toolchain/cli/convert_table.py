"""The tables `edgecomp convert` prints: the build (sizes, quality, steps, ops) and its quality by stage.

Metric names come from toolchain/evaluation/metrics.py, so the table, report.json, report.md and the gate
messages
say the same thing: agreement vs source, agreement vs post-step float, accuracy drop (points).
"""

from __future__ import annotations

from rich.table import Table

from toolchain.base.types import Stage
from toolchain.evaluation.metrics import (
    ACCURACY_DROP,
    AGREEMENT_VS_POST_STEP,
    AGREEMENT_VS_SOURCE,
    disagreement_text,
    quality_summary,
)
from toolchain.evaluation.retrieval import retrieval_summary
from toolchain.report.distill_auto import CANDIDATE_COLUMNS, candidate_rows
from toolchain.report.evaluation import EvaluationSection
from toolchain.report.model import Report
from toolchain.steps.base import step_summary


def _kb(n: int) -> str:
    return f"{n / 1024:,.1f} KB"


def build_table(report: Report) -> Table:
    src, m, ev = report.source, report.model, report.evaluation
    title = f"{report.name}: {report.quantization.mode}"
    t = Table(title=title + (" (REJECTED)" if report.rejected else ""), show_header=True)
    t.add_column("")
    taught = src.teacher is not None  # a student distilled from a foreign teacher: fp32 is the float student
    t.add_column("fp32 student" if taught else "fp32 source", justify="right")
    t.add_column("converted", justify="right")
    t.add_column("ratio", justify="right")
    ratios = report.ratios_vs_fp32
    t.add_row("size", _kb(src.fp32_tflite_bytes), _kb(m.size_bytes), f"{ratios.size}x")
    t.add_row("size (gzip)", _kb(src.fp32_tflite_gzip_bytes), _kb(m.gzip_bytes), f"{ratios.gzip}x")
    _hub_rows(t, report)
    params = f"{src.parameters:,}" if src.parameters is not None else "?"
    t.add_row("parameters (teacher)" if taught else "parameters", params, f"{m.parameters:,}", "")
    c = ev.vs_source_float
    if c is not None:
        ref = " (teacher | converted)" if ev.teacher is not None else ""  # the fp32 column is the student's
        t.add_row(f"accuracy{ref}", f"{c.reference.accuracy:.2%}", f"{c.converted.accuracy:.2%}", "")
        t.add_row("macro-F1", f"{c.reference.macro_f1:.4f}", f"{c.converted.macro_f1:.4f}", "")
        for name, value in quality_summary(ev):
            t.add_row(name, "", value, "")
        if ev.teacher is not None and ev.teacher.agreement_where_teacher_sure is not None:
            sure, n = ev.teacher.agreement_where_teacher_sure, ev.teacher.teacher_sure_queries
            right = ev.teacher.teacher_accuracy_where_sure
            note = f"n={n}" + ("" if right is None else f", teacher right on {right:.2%}")
            t.add_row("agreement vs source where the teacher is sure", "", f"{sure:.2%}", note)
    elif ev.unlabelled is not None:  # a query log as the test split: agreement, no accuracy
        for name, value in quality_summary(ev):
            t.add_row(name, "", value, "")
    _retrieval_rows(t, ev)
    for step in report.steps:
        t.add_row(f"step {step.index}: {step.kind}", "", step_summary(step), "")
    t.add_row("ops", "", ", ".join(f"{k}x{v}" for k, v in m.ops.items()), "")
    return t


def _hub_rows(t: Table, report: Report) -> None:
    """A Hugging Face folder: what it was and the exported ONNX's parity with PyTorch."""
    hub = report.hub
    if hub is None:
        return
    what = hub.folder.architecture or hub.folder.kind
    how = f"exported at {hub.seq_len} tokens" if hub.exported else f"{hub.onnx_file} as it is"
    t.add_row(f"source: {hub.folder.kind} folder", "", f"{what}, {how}", "")
    p = hub.parity
    if p is not None:
        shown = f"{p.value:.2e}" if p.metric == "max_abs_error" else f"{p.value:.6f}"
        limit = f"< {p.limit:g}" if p.metric == "max_abs_error" else f">= {p.limit:g}"
        t.add_row(f"ONNX vs PyTorch: {p.metric}", "", shown, f"{limit}, n={p.queries}")


def _retrieval_rows(t: Table, ev: EvaluationSection) -> None:
    """A retrieval build: recall@1/@10 and MRR of source and .tflite, overlap, the item table's share."""
    section = ev.retrieval
    if section is None:
        return
    src, final = section.stages[0], section.final
    t.add_row("recall@1", f"{src.recall_at_1:.4f}", f"{final.recall_at_1:.4f}", "")
    t.add_row("recall@10", f"{src.recall_at_10:.4f}", f"{final.recall_at_10:.4f}", "")
    t.add_row("MRR", f"{src.mrr:.4f}", f"{final.mrr:.4f}", "")
    for name, value in retrieval_summary(ev):
        t.add_row(name, "", value, "")
    size = section.size
    if size:
        share = f"{size.item_table_share:.1%} of weights"
        kept = size.item_kernel.shape[0] if size.item_kernel is not None else section.items
        items = f"{kept} of {section.items} items" if kept != section.items else f"{kept} items"
        t.add_row(f"item table ({items})", "", _kb(size.item_table_bytes), share)


def stage_table(report: Report) -> Table | None:
    """Quality by stage: source -> after steps -> after quantization (None: no labelled test split)."""
    by_stage = report.evaluation.by_stage
    if by_stage is None:
        return None
    kinds = ", ".join(s.kind for s in report.steps)
    names = {
        Stage.SOURCE: "source",
        Stage.AFTER_STEPS: f"after steps ({kinds})",
        Stage.AFTER_QUANTIZATION: ".tflite",
    }
    t = Table(title="quality by stage", caption=disagreement_text(report.evaluation))
    for col in ("stage", "accuracy", "macro-F1", AGREEMENT_VS_SOURCE, AGREEMENT_VS_POST_STEP, ACCURACY_DROP):
        t.add_column(col, justify="left" if col == "stage" else "right")
    for s in by_stage.stages:
        post = s.agreement_vs_post_step_float
        t.add_row(
            names[s.stage],
            f"{s.accuracy:.2%}",
            f"{s.macro_f1:.4f}",
            f"{s.agreement_vs_source:.2%}",
            "" if post is None else f"{post:.2%}",
            f"{s.accuracy_drop_points:.2f}",
        )
    return t


def auto_table(report: Report) -> Table | None:
    """The students `student: auto` tried, smallest first (None: the build named its student)."""
    a = report.distill_auto
    if a is None:
        return None
    t = Table(title=f"students tried (distill-auto, on {a.split})", caption=f"gates: {', '.join(a.gates)}")
    for col in CANDIDATE_COLUMNS:
        t.add_column(col)
    for row in candidate_rows(a):
        t.add_row(*row)
    return t
