"""The tables `edgecomp convert` prints: the build (sizes, quality, steps, ops) and its quality by stage.

Metric names come from toolchain/evaluation/metrics.py, so the table, report.json, report.md and the gate
messages
say the same thing: agreement vs source, agreement vs post-step float, accuracy drop (points).
"""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _kb(n: int) -> str:
    return f"{n / 1024:,.1f} KB"


def build_table(report: dict[str, Any]) -> Table:
    from toolchain.evaluation.metrics import quality_summary
    from toolchain.steps.base import step_summary

    src, m = report["source"], report["model"]
    title = f"{report['name']}: {report['quantization']['mode']}"
    t = Table(title=title + (" (REJECTED)" if report.get("rejected") else ""), show_header=True)
    t.add_column("")
    taught = "teacher" in src  # a student distilled from a foreign teacher: fp32 is the float student
    t.add_column("fp32 student" if taught else "fp32 source", justify="right")
    t.add_column("converted", justify="right")
    t.add_column("ratio", justify="right")
    ratios = report["ratios_vs_fp32"]
    t.add_row("size", _kb(src["fp32_tflite_bytes"]), _kb(m["size_bytes"]), f"{ratios['size']}x")
    t.add_row("size (gzip)", _kb(src["fp32_tflite_gzip_bytes"]), _kb(m["gzip_bytes"]), f"{ratios['gzip']}x")
    params = f"{src['parameters']:,}" if src["parameters"] is not None else "?"
    t.add_row("parameters (teacher)" if taught else "parameters", params, f"{m['parameters']:,}", "")
    ev = report.get("evaluation", {})
    if "vs_source_float" in ev:
        c = ev["vs_source_float"]
        ref = " (teacher | converted)" if "teacher" in ev else ""  # the fp32 column is the student's
        acc = c["reference"]["accuracy"], c["converted"]["accuracy"]
        t.add_row(f"accuracy{ref}", f"{acc[0]:.2%}", f"{acc[1]:.2%}", "")
        t.add_row("macro-F1", f"{c['reference']['macro_f1']:.4f}", f"{c['converted']['macro_f1']:.4f}", "")
        for name, value in quality_summary(ev):
            t.add_row(name, "", value, "")
        sure = (ev.get("teacher") or {}).get("agreement_where_teacher_sure")
        if sure is not None:
            n = ev["teacher"]["teacher_sure_queries"]
            t.add_row("agreement vs source where the teacher is sure", "", f"{sure:.2%}", f"n={n}")
    _retrieval_rows(t, ev)
    for step in report.get("steps", []):
        t.add_row(f"step {step['index']}: {step['kind']}", "", step_summary(step), "")
    t.add_row("ops", "", ", ".join(f"{k}x{v}" for k, v in m["ops"].items()), "")
    return t


def _retrieval_rows(t: Table, ev: dict[str, Any]) -> None:
    """A retrieval build: recall@1/@10 and MRR of source and .tflite, overlap, the item table's share."""
    from toolchain.evaluation.retrieval import retrieval_summary

    section = ev.get("retrieval")
    if not section:
        return
    src, final = section["stages"][0], section["stages"][-1]
    for key, name in (("recall_at_1", "recall@1"), ("recall_at_10", "recall@10"), ("mrr", "MRR")):
        t.add_row(name, f"{src[key]:.4f}", f"{final[key]:.4f}", "")
    for name, value in retrieval_summary(ev):
        t.add_row(name, "", value, "")
    size = section.get("size")
    if size:
        share = f"{size['item_table_share']:.1%} of weights"
        kept = (size.get("item_kernel") or {}).get("shape", [section["items"]])[0]
        items = f"{kept} of {section['items']} items" if kept != section["items"] else f"{kept} items"
        t.add_row(f"item table ({items})", "", _kb(size["item_table_bytes"]), share)


def stage_table(report: dict[str, Any]) -> Table | None:
    """Quality by stage: source -> after steps -> after quantization (None: no labelled test split)."""
    from toolchain.evaluation.metrics import (
        ACCURACY_DROP,
        AGREEMENT_VS_POST_STEP,
        AGREEMENT_VS_SOURCE,
        disagreement_text,
    )

    ev = report.get("evaluation") or {}
    by_stage = ev.get("by_stage")
    if not by_stage:
        return None
    kinds = ", ".join(s["kind"] for s in report.get("steps", []))
    names = {"source": "source", "after steps": f"after steps ({kinds})", "after quantization": ".tflite"}
    t = Table(title="quality by stage", caption=disagreement_text(ev))
    for col in ("stage", "accuracy", "macro-F1", AGREEMENT_VS_SOURCE, AGREEMENT_VS_POST_STEP, ACCURACY_DROP):
        t.add_column(col, justify="left" if col == "stage" else "right")
    for s in by_stage["stages"]:
        post = s.get("agreement_vs_post_step_float")
        t.add_row(
            names.get(s["stage"], s["stage"]),
            f"{s['accuracy']:.2%}",
            f"{s['macro_f1']:.4f}",
            f"{s['agreement_vs_source']:.2%}",
            "" if post is None else f"{post:.2%}",
            f"{s['accuracy_drop_points']:.2f}",
        )
    return t
