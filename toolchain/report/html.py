"""report.html: the build's report to look at, one self-contained file beside report.md.

Rendered from the same typed Report as report.md (toolchain/build.py writes both at convert and again each
time validate, profile or package records a section), plus the model's bytes for the size breakdown by
tensor kind (converters/tflite_sizes.py). Self-contained on purpose: inline CSS and inline SVG, no script
at all, and a Content-Security-Policy that forbids any fetch, so the page opens the same from a laptop, a
CI artifact or an air-gapped machine, and a browser would refuse (and log) anything that tried to load.
Every number in a chart is also printed beside it. Sections appear when the report holds their data:
quality by stage (classifier), recall by stage (retrieval), closeness to onnxruntime (ONNX sources), the
per-intent recall change with its support, the size by tensor kind; validate, profile and package add
theirs (toolchain/report/html_stages.py).
"""

from __future__ import annotations

from html import escape

from converters.tflite_sizes import KINDS, size_by_kind
from toolchain.base.errors import InputFileError
from toolchain.base.types import Stage
from toolchain.evaluation.metrics import (
    ACCURACY_DROP,
    AGREEMENT_VS_POST_STEP,
    AGREEMENT_VS_SOURCE,
    disagreement_text,
    quality_summary,
)
from toolchain.report.charts import Bar, bars, diverging, stacked
from toolchain.report.distill_auto import CANDIDATE_COLUMNS, candidate_rows
from toolchain.report.evaluation import Comparison, EvaluationSection, StageMetrics
from toolchain.report.html_stages import (
    Section,
    kb,
    package_section,
    pct,
    profile_section,
    table,
    validation_section,
)
from toolchain.report.model import Report
from toolchain.report.steps import PruneReport, VocabTrimReport

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
MAX_INTENT_BARS = 30  # the largest recall changes drawn; the table lists every label
CSS = """
:root{--fg:#1d2330;--mute:#667085;--line:#e4e7ec;--a:#3b6ea8;--b:#8fb3dd;--bad:#c0392b;--good:#2e8b57}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);margin:0;background:#f7f8fa}main{max-width:1080px;margin:0 auto;padding:20px 24px 40px}
h1{font-size:24px;margin:8px 0 4px}h2{font-size:18px;margin:0 0 10px}h3{font-size:15px;margin:14px 0 6px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 18px;margin:14px 0}
nav a{margin-right:12px;color:var(--a);text-decoration:none}.sub{color:var(--mute)}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}.card{background:#fff;border:1px solid var(--line);
border-radius:8px;padding:8px 12px;min-width:130px}.card b{display:block;font-size:18px}
.card span{color:var(--mute);font-size:12px}table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}th{color:var(--mute);font-weight:600}
td.t,th.t{text-align:left;max-width:420px;overflow-wrap:anywhere}.pass{color:var(--good);font-weight:600}
.fail{color:var(--bad);font-weight:600}.info{color:var(--mute)}.rejected{border:2px solid var(--bad);
background:#fdf1f0}.rejected h2{color:var(--bad)}code{font-size:12px;background:#f2f4f7;padding:1px 4px;
border-radius:3px;overflow-wrap:anywhere}.side{display:flex;flex-wrap:wrap;gap:18px}.side>div{flex:1 1 400px}
svg.chart{max-width:100%;height:auto;display:block;margin:4px 0 8px}svg .lbl{font-size:12px;fill:var(--fg);
text-anchor:end}svg .val,svg .key{font-size:11px;fill:var(--mute)}svg .axis{stroke:#98a2b3}
.bar-a{fill:var(--a)}.bar-b{fill:var(--b)}.bar-bad{fill:var(--bad)}.bar-good{fill:var(--good)}
.bar-muted{fill:#cfd4dc}.part-0{fill:#3b6ea8}.part-1{fill:#e08a2e}.part-2{fill:#2e8b57}.part-3{fill:#8e6bb8}
.part-4{fill:#c0392b}.part-5{fill:#98a2b3}.part-6{fill:#5fa8a0}.part-7{fill:#d4b13f}
ul{margin:6px 0;padding-left:20px}details summary{cursor:pointer;color:var(--a)}
footer{color:var(--mute);font-size:12px;margin-top:18px}
"""


def html(report: Report, model: bytes | None = None) -> str:
    """The whole page: a header with the headline numbers, then one <section> per part of the report."""
    sections = [
        _rejected(report),
        _quality(report.evaluation, report),
        _per_intent(report.evaluation),
        _size(report, model),
        _steps(report),
        _distill_auto(report),
        validation_section(report.validation),
        profile_section(report.profile),
        package_section(report.package, report),
    ]
    shown = [s for s in sections if s is not None]
    nav = " ".join(f'<a href="#{s.id}">{escape(s.title)}</a>' for s in shown)
    body = "".join(s.render() for s in shown)
    title = f"{report.name}: edgecomp report"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>"
        f"{_header(report)}<nav>{nav}</nav>{body}"
        f"<footer>edgecomp {escape(report.edgecomp_version)} · rendered from report.json "
        "(report.md holds the same numbers as text)</footer></main></body></html>\n"
    )


def _header(report: Report) -> str:
    m, src, q, tok = report.model, report.source, report.quantization, report.tokenizer
    share = f", {q.int8_mac_share:.1%} of MACs in int8" if q.int8_mac_share is not None else ""
    params = f"{src.parameters:,} params" if src.parameters is not None else "parameters unknown"
    cards = [
        (kb(m.size_bytes), f"model.tflite ({report.ratios_vs_fp32.size}x smaller than fp32)"),
        (kb(m.gzip_bytes), f"gzip download ({report.ratios_vs_fp32.gzip}x)"),
        (f"{q.mode}", f"quantization{share}"),
        (f"{m.parameters:,}", "parameters"),
        (
            f"{tok.kind}",
            f"tokenizer, {tok.seq_len} tokens" + (f", {tok.vocab_size:,} words" if tok.vocab_size else ""),
        ),
    ]
    cards += [(value, name) for name, value in _headline(report.evaluation)]
    card_html = "".join(f"<div class=card><b>{escape(v)}</b><span>{escape(k)}</span></div>" for v, k in cards)
    return (
        f"<h1>{escape(report.name)}</h1><div class=sub>{escape(str(report.task))} model from "
        f"<code>{escape(src.path)}</code> ({escape(str(src.format))}, {params})</div>"
        f"<div class=cards>{card_html}</div>"
    )


def _headline(ev: EvaluationSection) -> list[tuple[str, str]]:
    rows = quality_summary(ev)[:2]
    r = ev.retrieval
    if r is not None:
        rows = [
            ("recall@10 (.tflite)", pct(r.final.recall_at_10)),
            ("top-10 overlap vs source", pct(r.final.top10_overlap_vs_source)),
        ]
    if ev.onnx_reference is not None and not rows:
        rows = [("mean cosine vs onnxruntime", f"{ev.onnx_reference.mean_cosine:.4f}")]
    return rows


def _rejected(report: Report) -> Section | None:
    r = report.rejected
    if r is None:
        return None
    body = (
        f"<p><b>{escape(r.message)}</b></p><p>hint: {escape(r.hint)}</p>"
        f"<p class=sub>gate <code>{escape(r.gate)}</code>: {escape(r.metric)} measured {r.measured:g}, limit "
        f"{r.limit:g}; cost most: {escape(str(r.cost_most))}</p>"
    )
    if r.int8_worst_ops:
        rows = [[op, node, f"{damage:.4g}"] for op, node, damage in r.int8_worst_ops]
        body += "<h3>ops that hurt most when quantized alone</h3>" + table(["op", "node", "1 - cosine"], rows)
    return Section("rejected", "REJECTED candidate", body, css="rejected")


def _distill_auto(report: Report) -> Section | None:
    """Every student `student: auto` tried, the kept one marked (the same rows as report.md)."""
    a = report.distill_auto
    if a is None:
        return None
    body = (
        f"<p class=sub>on the {escape(a.split)} split, against the teacher; gates ({escape(a.gates_from)}): "
        f"{escape(', '.join(a.gates))}. {escape(a.order)}; ran on {escape(a.runner)} in {a.seconds:g} s.</p>"
    )
    body += table(CANDIDATE_COLUMNS, candidate_rows(a))
    return Section("distill-auto", "Students tried", body)


def _stage_name(stage: Stage, report: Report, ev: EvaluationSection) -> str:
    kinds = ", ".join(str(s.kind) for s in report.steps)
    return {
        Stage.SOURCE: "source (teacher)" if ev.teacher is not None else "source (float)",
        Stage.AFTER_STEPS: f"after steps ({kinds}), float",
        Stage.AFTER_QUANTIZATION: "after quantization (.tflite)",
    }[stage]


def _classifier_stages(ev: EvaluationSection, c: Comparison) -> list[StageMetrics]:
    if ev.by_stage is not None:
        return ev.by_stage.stages
    return [  # reports written before `by_stage`
        StageMetrics(stage=Stage.SOURCE, accuracy=c.reference.accuracy, macro_f1=c.reference.macro_f1,
                     agreement_vs_source=1.0, accuracy_drop_points=0.0),
        StageMetrics(stage=Stage.AFTER_QUANTIZATION, accuracy=c.converted.accuracy,
                     macro_f1=c.converted.macro_f1, agreement_vs_source=c.top1_agreement,
                     accuracy_drop_points=c.accuracy_drop_points),
    ]  # fmt: skip


def _quality(ev: EvaluationSection, report: Report) -> Section | None:
    parts: list[str] = []
    title = "Quality"
    c = ev.vs_source_float
    if c is not None:
        title = "Accuracy by stage"
        stages = _classifier_stages(ev, c)
        names = [_stage_name(s.stage, report, ev) for s in stages]
        chart = [Bar(f"{s.stage} · accuracy", s.accuracy, pct(s.accuracy)) for s in stages]
        chart += [Bar(f"{s.stage} · agreement", s.agreement_vs_source, pct(s.agreement_vs_source), "b")
                  for s in stages]  # fmt: skip
        rows = [
            [n, f"{s.accuracy:.4f}", f"{s.macro_f1:.4f}", pct(s.agreement_vs_source),
             pct(s.agreement_vs_post_step_float) if s.agreement_vs_post_step_float is not None else "",
             f"{s.accuracy_drop_points:.2f}"]
            for n, s in zip(names, stages, strict=True)
        ]  # fmt: skip
        head = ["stage", "accuracy", "macro-F1", AGREEMENT_VS_SOURCE, AGREEMENT_VS_POST_STEP, ACCURACY_DROP]
        parts += [f"<p class=sub>{c.queries} test queries</p>", bars(chart, 1.0, title), table(head, rows)]
        split = disagreement_text(ev)
        parts += [f"<p>{escape(split)}</p>"] if split else []
    r = ev.retrieval
    if r is not None:
        title = "Recall by stage"
        names = [_stage_name(s.stage, report, ev) for s in r.stages]
        chart = []
        for s in r.stages:
            chart += [Bar(f"{s.stage} · recall@1", s.recall_at_1, pct(s.recall_at_1), "b"),
                      Bar(f"{s.stage} · recall@{r.k}", s.recall_at_10, pct(s.recall_at_10))]  # fmt: skip
        rows = [[n, f"{s.recall_at_1:.4f}", f"{s.recall_at_10:.4f}", f"{s.mrr:.4f}",
                 pct(s.top10_overlap_vs_source), f"{s.recall_at_10_drop_points:.2f}"]
                for n, s in zip(names, r.stages, strict=True)]  # fmt: skip
        head = [
            "stage",
            "recall@1",
            f"recall@{r.k}",
            "MRR",
            "top-10 overlap vs source",
            "recall@10 drop (points)",
        ]
        parts += [
            f"<p class=sub>{r.queries} test queries over {r.items} items</p>",
            bars(chart, 1.0),
            table(head, rows),
        ]
        if r.size is not None:
            parts.append(
                f"<p>item table: {kb(r.size.item_table_bytes)} ({pct(r.size.item_table_share)} of the "
                "weights)</p>"
            )
    t = ev.teacher
    if t is not None:
        parts.append(
            f"<p>agreement with the teacher ({escape(t.teacher)}): {pct(t.agreement_with_teacher)}</p>"
        )
    o = ev.onnx_reference
    if o is not None:
        title = title if parts else "Closeness to onnxruntime"
        parts += [
            "<h3>vs onnxruntime on the same inputs</h3>",
            bars(
                [
                    Bar("mean cosine", o.mean_cosine, f"{o.mean_cosine:.4f}"),
                    Bar("worst cosine", o.min_cosine, f"{o.min_cosine:.4f}", "b"),
                ],
                1.0,
            ),  # fmt: skip
            table(
                ["queries", "max abs error", "mean cosine", "worst cosine", "top-1 agreement"],
                [
                    [
                        str(o.queries),
                        f"{o.max_abs_error:.3g}",
                        f"{o.mean_cosine:.4f}",
                        f"{o.min_cosine:.4f}",
                        pct(o.top1_agreement),
                    ]
                ],
            ),  # fmt: skip
        ]
    if ev.skipped:
        parts.append(f"<p class=sub>not evaluated: {escape(ev.skipped)}</p>")
    if not parts:
        return None
    if ev.split:
        parts.append(f"<p class=sub>split <code>{escape(ev.split)}</code>; {escape(ev.runtime or '')}</p>")
    return Section("quality", title, "".join(parts))


def _per_intent(ev: EvaluationSection) -> Section | None:
    c = ev.vs_source_float
    if c is None or not c.recall_change:
        return None
    order = sorted(c.recall_change, key=lambda k: (c.recall_change[k], k))
    biggest = sorted(order, key=lambda k: -abs(c.recall_change[k]))[:MAX_INTENT_BARS]
    change = {k: c.recall_change[k] * 100 for k in order}  # points
    chart = [
        Bar(f"{k} (n={c.support.get(k, 0)})", change[k], f"{change[k]:+.1f} pt")
        for k in order
        if k in biggest
    ]
    weak = {w.label: w for w in ev.gates.weak_intents} if ev.gates is not None else {}
    rows = [[k, str(c.support.get(k, 0)), pct(c.reference.recall.get(k, 0.0)),
             pct(c.converted.recall.get(k, 0.0)), f"{change[k]:+.1f}"] for k in order]  # fmt: skip
    if ev.gates is not None:  # a foreign teacher's student: the weak and dead intents are flagged
        for row in rows:
            w = weak.get(row[0])
            row.append("" if w is None else "DEAD" if w.dead else "weak")
    changed = sum(1 for v in c.recall_change.values() if v)
    head = ["intent", "n", "recall source", "recall .tflite", "change (pt)"]
    head += ["gate"] * (ev.gates is not None)
    body = (
        f"<p class=sub>recall per intent, .tflite minus source, in points; n = test queries of the intent. "
        f"{changed} of {len(order)} intents changed; with a small n one query moves recall by 100/n points."
        f"</p>{_gates(ev)}{diverging(chart, title='recall change per intent')}"
        f"<details{' open' * bool(weak)}><summary>every intent</summary>{table(head, rows)}</details>"
    )
    return Section("intents", "Per-intent changes", body)


def _gates(ev: EvaluationSection) -> str:
    """A foreign teacher's student: the gates applied (whose), each met or missed, and the weak intents."""
    g = ev.gates
    if g is None:
        return ""
    verdict = {True: "met", False: "MISSED", None: "not measured"}
    rows = [[c.gate, f"{c.limit:g}", "-" if c.measured is None else f"{c.measured:g}", verdict[c.passed]]
            for c in g.checks]  # fmt: skip
    weak = ", ".join(f"{w.label} ({pct(w.recall)} vs {pct(w.reference_recall)}, n={w.support})"
                     for w in g.weak_intents)  # fmt: skip
    n = len(g.weak_intents)
    text = f"{n} intents below the recall ratio, {g.dead_intents} dead (recall 0): {weak}" if n else ""
    checks = table(["gate", "limit", "measured", ""], rows, text=frozenset({0, 3}))
    return f"<p class=sub>gates ({escape(g.origin)})</p>{checks}<p class=sub>{escape(text)}</p>"


def _size(report: Report, model: bytes | None) -> Section | None:
    if model is None:
        return None
    try:
        sizes = size_by_kind(model)
    except InputFileError:
        return None  # a model that is not TFLite has no breakdown; load_build refuses it anyway
    parts = [Bar(k, float(sizes.kinds[k]), kb(sizes.kinds[k])) for k in KINDS]
    rows = [[k, f"{sizes.kinds[k]:,}", pct(sizes.kinds[k] / max(sizes.total, 1))] for k in KINDS]
    rows.append(["total (model.tflite)", f"{sizes.total:,}", "100.0%"])
    src = report.source
    body = (
        f"<p class=sub>model.tflite {kb(sizes.total)} (gzip {kb(report.model.gzip_bytes)}); the fp32 TFLite "
        f"{kb(src.fp32_tflite_bytes)} (gzip {kb(src.fp32_tflite_gzip_bytes)})</p>"
        f"{stacked(parts, 'size by tensor kind')}{table(['kind', 'bytes', 'share'], rows)}"
    )
    if sizes.metadata:
        body += (
            "<p class=sub>metadata: "
            + ", ".join(f"{escape(k)} {v:,} B" for k, v in sizes.metadata.items())
            + "</p>"
        )
    return Section("size", "Size by tensor kind", body)


def _steps(report: Report) -> Section | None:
    q = report.quantization
    items = [f"quantization: <b>{escape(str(q.mode))}</b>"]
    if q.calibration_queries:
        items.append(f"calibrated on {q.calibration_queries} queries ({escape(q.calibration_source or '')})")
    if q.calibration_convergence is not None:
        items.append(f"calibration: {escape(q.calibration_convergence.summary)}")
    if q.mixed is not None:
        items.append(f"mixed: {q.mixed.float_nodes} ops kept float ({escape(q.mixed.plan)})")
    for s in report.steps:
        acc = "" if s.float_test_accuracy is None else f", float test accuracy {s.float_test_accuracy:.4f}"
        extra = f", sparsity {s.achieved_sparsity:.1%}" if isinstance(s, PruneReport) else ""
        extra += f"; {escape(s.summary)}" if isinstance(s, VocabTrimReport) else ""
        items.append(f"step {s.index} <b>{escape(str(s.kind))}</b>{acc}{extra}")
    items += [f"<span class=fail>warning</span>: {escape(w)}" for w in report.warnings]
    ops = ", ".join(f"{k} ×{v}" for k, v in report.model.ops.items())
    body = "<ul>" + "".join(f"<li>{i}</li>" for i in items) + f"</ul><p class=sub>ops: {escape(ops)}</p>"
    if report.model_sha256:
        body += f"<p class=sub>model.tflite sha256 <code>{escape(report.model_sha256)}</code></p>"
    return Section("build", "Steps and quantization", body)
