"""report.md: a short human-readable rendering of every section report.json holds.

Rendering only; the report is written by toolchain/build.py (`write_build` at convert, `Build.record`
for validate, profile and package), which re-renders this file from the same data each time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _params(n: int | None) -> str:
    return f"{n:,}" if n is not None else "unknown"


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


def markdown(report: dict[str, Any]) -> str:
    """Summary of report.json: source, size, ops, steps, evaluation, validation, profile, package."""
    m, src = report["model"], report["source"]
    lines = [f"# {report['name']}", "", *_rejected(report.get("rejected"))]
    lines += [
        f"- source: `{src['path']}` ({src['format']}, {_params(src['parameters'])} params)",
        *_quantization(report["quantization"]),
        f"- size: {_kb(m['size_bytes'])} (gzip {_kb(m['gzip_bytes'])}); fp32 {_kb(src['fp32_tflite_bytes'])}"
        f" -> {report['ratios_vs_fp32']['size']}x smaller, gzip {report['ratios_vs_fp32']['gzip']}x",
        f"- ops: {', '.join(f'{k} x{v}' for k, v in m['ops'].items())}",
    ]
    if report.get("model_sha256"):
        lines.append(f"- model.tflite sha256: `{report['model_sha256']}`")
    for step in report.get("steps", []):
        extra = f", sparsity {step['achieved_sparsity']:.1%}" if "achieved_sparsity" in step else ""
        lines.append(
            f"- step {step['index']} {step['kind']}: float test accuracy {step['float_test_accuracy']}{extra}"
        )
    fm = report.get("float_model")
    if fm:
        lines.append(
            f"- post-step float model: `{fm['tflite']}`, `{fm['keras']}` (after steps "
            f"{', '.join(fm['after_steps'])}){'; ' + fm['note'] if fm.get('note') else ''}"
        )
    lines += _evaluation(report.get("evaluation") or {}, report.get("steps", []))
    for w in report.get("warnings", []):
        lines.append(f"- warning: {w}")
    lines += _validation(report.get("validation"))
    lines += _profile(report.get("profile"))
    lines += _package(report.get("package"))
    return "\n".join(lines) + "\n"


def _rejected(rejected: dict[str, Any] | None) -> list[str]:
    if not rejected:
        return []
    return [
        f"**REJECTED: {rejected.get('message', rejected['gate'])}**",
        "",
        f"- hint: {rejected.get('hint', '')}",
        "",
    ]


def _quantization(q: dict[str, Any]) -> list[str]:
    """Mode, graph preparation, int8 share of the MACs and, for mixed, every op kept out of int8."""
    share = f", {q['int8_mac_share']:.1%} of MACs in int8" if q.get("int8_mac_share") is not None else ""
    lines = [f"- quantization: {q['mode']}{share}"]
    prep = q.get("graph_preparation") or {}
    for c in prep.get("mask_constants", []) if prep.get("changed") else []:
        effect = prep["float_effect"]
        lines.append(
            f"- graph preparation: attention-mask constant {c['from']} -> {c['to']} (scores "
            f"{prep['attention_score_range']}), {prep['nan_guards_removed']} NaN guard(s) removed; float "
            f"outputs min cosine {effect['min_cosine']:.6f} on {effect['queries']} queries"
        )
    mixed = q.get("mixed")
    if not mixed or "kept_out_of_int8" not in mixed:
        return lines + ([f"- mixed: {mixed['plan']}, {mixed['float_nodes']} float nodes"] if mixed else [])
    lines.append(
        f"- mixed: {mixed['float_nodes']} ops kept float, {mixed['candidates_evaluated']} candidates in "
        f"{mixed['search_seconds']} s on {mixed['search_split']}; targets {mixed['targets']}; full int8 "
        f"{mixed['full_int8']} -> chosen {mixed['chosen']}"
    )
    lines += ["", "| op kept out of int8 | reason | MACs | int8 alone: 1-cos | gate metrics if int8 |"]
    lines.append("|---|---|---|---|---|")
    for r in mixed["kept_out_of_int8"]:
        if r["reason"] == "error":
            lines.append(
                f"| {r['op']} `{r['node']}` | error | {r['macs']:,} | {r['damage_alone']} | {r['if_int8']} |"
            )
    lines += [
        "",
        "| op type | count | int8 µs/query | float µs/query | precision (speed) |",
        "|---|---|---|---|---|",
    ]
    for c in mixed.get("speed_by_op_type", []):
        lines.append(f"| {c['op']} | {c['count']} | {c['int8_us']} | {c['float_us']} | {c['precision']} |")
    return lines + [""]


def _evaluation(ev: dict[str, Any], steps: list[dict[str, Any]]) -> list[str]:
    """Quality by stage (source -> after steps -> after quantization) and the named metrics."""
    from toolchain.evaluation.metrics import (
        ACCURACY_DROP,
        AGREEMENT_VS_SOURCE,
        disagreement_text,
        quality_summary,
    )
    from toolchain.evaluation.retrieval import retrieval_markdown

    lines: list[str] = []
    if "vs_source_float" in ev:
        c = ev["vs_source_float"]
        source = "source (teacher)" if "teacher" in ev else "source (float)"
        stages = (ev.get("by_stage") or {}).get("stages") or [  # reports written before by_stage
            {"stage": "source", **c["reference"], "agreement_vs_source": 1.0, "accuracy_drop_points": 0.0},
            {
                "stage": "after quantization",
                **c["converted"],
                "agreement_vs_source": c["top1_agreement"],
                "accuracy_drop_points": c["accuracy_drop_points"],
            },
        ]
        kinds = ", ".join(s["kind"] for s in steps)
        names = {
            "source": source,
            "after steps": f"after steps ({kinds}), float",
            "after quantization": "after quantization (.tflite)",
        }
        lines += [
            "",
            f"## Quality on {c['queries']} test queries",
            "",
            f"| stage | accuracy | macro-F1 | {AGREEMENT_VS_SOURCE} | {ACCURACY_DROP} |",
            "|---|---|---|---|---|",
        ]
        for s in stages:
            lines.append(
                f"| {names.get(s['stage'], s['stage'])} | {s['accuracy']:.4f} | {s['macro_f1']:.4f} | "
                f"{s['agreement_vs_source']:.2%} | {s['accuracy_drop_points']:.2f} |"
            )
        lines.append("")
        lines += [f"- {name}: {value}" for name, value in quality_summary(ev)]
        split = disagreement_text(ev)
        lines += [f"- {split}"] if split else []
    if "teacher" in ev:  # "source" above is the teacher
        lines.append(
            f"- agreement with the teacher ({ev['teacher']['teacher']}): "
            f"{ev['teacher']['agreement_with_teacher']:.2%}"
        )
        t = ev["teacher"]
        if t.get("agreement_where_teacher_sure") is not None:
            lines.append(
                f"- where the teacher is sure (top-1 leads top-2 by >= {t['teacher_sure_margin']}, "
                f"n={t['teacher_sure_queries']}): {t['agreement_where_teacher_sure']:.2%}; where it is "
                f"unsure (n={t['teacher_unsure_queries']}): {t['agreement_where_teacher_unsure'] or 0:.2%}"
            )
    lines += retrieval_markdown(ev, [s["kind"] for s in steps])
    if "onnx_reference" in ev:
        r = ev["onnx_reference"]
        lines += [
            "",
            f"vs onnxruntime on {r['queries']} queries: max abs error {r['max_abs_error']:.3g}, "
            f"mean cosine {r['mean_cosine']:.4f} (worst {r['min_cosine']:.4f})",
        ]
    return lines


def _validation(val: dict[str, Any] | None) -> list[str]:
    if not val:
        return []
    lines = ["", f"## Validation: {'passed' if val.get('passed') else 'FAILED'}", ""]
    lines += ["| device | result | runtime | failures |", "|---|---|---|---|"]
    for name, dev in sorted(val.get("devices", {}).items()):
        failures = [f"{c['name']}: {c['detail']}" for c in dev.get("checks", []) if c.get("status") == "fail"]
        result = "pass" if dev.get("passed") else "FAIL"
        lines.append(f"| {name} | {result} | {dev.get('runtime', '')} | {'; '.join(failures) or '-'} |")
    return lines


def _profile(prof: dict[str, Any] | None) -> list[str]:
    if not prof:
        return []
    lines = ["", "## Profile", ""]
    for m in prof.get("methods", []):
        invoke = "below resolution" if m.get("invoke_us") is None else f"{m['invoke_us']:.2f} µs"
        ratio = "no ratio: ops below resolution" if m.get("ratio") is None else f"ratio {m['ratio']:.2f}"
        lines.append(
            f"- {m['method']} ({m['mode']}): per-op sum {m['sum_us']:.2f} µs "
            f"vs whole invoke {invoke} ({ratio})"
        )
        for op in m.get("top_ops", [])[:5]:
            lines.append(f"  - {op.get('name', '?')}: {op.get('time_us', 0):.2f} µs")
    return lines


def _package(pkg: dict[str, Any] | None) -> list[str]:
    if not pkg:
        return []
    lines = [
        "",
        "## Package",
        "",
        f"- {pkg['format']} bundle `{pkg['bundle']}` (zip `{Path(pkg['zip']).name}`)",
    ]
    lines.append(f"- validation: {pkg.get('validation')}")
    parity = pkg.get("parity")
    if parity:
        lines.append(
            "- app-runtime parity: " + ", ".join(f"{k} {v:.2%}" for k, v in parity.items() if v is not None)
        )
    return lines
