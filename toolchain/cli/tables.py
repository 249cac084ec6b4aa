"""Rich tables for results."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _kb(n: int) -> str:
    return f"{n / 1024:,.1f} KB"


def build_table(report: dict[str, Any]) -> Table:
    src, m = report["source"], report["model"]
    t = Table(title=f"{report['name']}: {report['quantization']['mode']}", show_header=True)
    t.add_column("")
    taught = "teacher" in src  # a student distilled from a foreign teacher: fp32 is the float student
    t.add_column("fp32 student" if taught else "fp32 source", justify="right")
    t.add_column("converted", justify="right")
    t.add_column("ratio", justify="right")
    t.add_row(
        "size", _kb(src["fp32_tflite_bytes"]), _kb(m["size_bytes"]), f"{report['ratios_vs_fp32']['size']}x"
    )
    t.add_row(
        "size (gzip)",
        _kb(src["fp32_tflite_gzip_bytes"]),
        _kb(m["gzip_bytes"]),
        f"{report['ratios_vs_fp32']['gzip']}x",
    )
    params = f"{src['parameters']:,}" if src["parameters"] is not None else "?"
    t.add_row("parameters (teacher)" if taught else "parameters", params, f"{m['parameters']:,}", "")
    ev = report.get("evaluation", {})
    if "vs_source_float" in ev:
        c = ev["vs_source_float"]
        t.add_row(
            "accuracy",
            f"{c['reference']['accuracy']:.2%}",
            f"{c['converted']['accuracy']:.2%}",
            f"{-c['accuracy_drop_points']:+.2f} pt",
        )
        t.add_row("macro-F1", f"{c['reference']['macro_f1']:.4f}", f"{c['converted']['macro_f1']:.4f}", "")
        if "teacher" in ev:
            t.add_row("agreement with teacher", "", f"{ev['teacher']['agreement_with_teacher']:.2%}", "")
        t.add_row("top-1 agreement", "", f"{ev['vs_final_float']['top1_agreement']:.2%}", "vs float")
        worst = c.get("worst_recall_change")
        if worst:
            t.add_row("worst recall change", "", f"{worst[0]}", f"{worst[1] * 100:+.1f} pt")
    from toolchain.steps.base import step_summary

    for step in report.get("steps", []):
        t.add_row(f"step {step['index']}: {step['kind']}", "", step_summary(step), "")
    t.add_row("ops", "", ", ".join(f"{k}x{v}" for k, v in m["ops"].items()), "")
    return t
