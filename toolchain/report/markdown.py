"""report.md: a short human-readable rendering of every section report.json holds (report.html draws it:
toolchain/report/html.py).

Rendering only; the report is written by toolchain/build.py (`write_build` at convert, `Build.record`
for validate, profile and package), which re-renders this file from the same typed Report each time.
"""

from __future__ import annotations

from pathlib import Path

from devices.validate import ValidationReport
from toolchain.base.types import CheckStatus, MixedReason, Stage
from toolchain.evaluation.metrics import (
    ACCURACY_DROP,
    AGREEMENT_VS_SOURCE,
    disagreement_text,
    flip_lines,
    quality_summary,
)
from toolchain.evaluation.retrieval import retrieval_markdown
from toolchain.report.distill_auto import candidates_markdown
from toolchain.report.evaluation import EvaluationSection, StageMetrics
from toolchain.report.hub import HubExportSection
from toolchain.report.model import RejectedSection, Report
from toolchain.report.quantization import Int4Section, QuantizationSection
from toolchain.report.stages import PackageSection, ProfileSection
from toolchain.report.steps import AnyStepReport, DistillReport, PruneReport, VocabTrimReport


def _params(n: int | None) -> str:
    return f"{n:,}" if n is not None else "unknown"


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


def markdown(report: Report) -> str:
    """Summary of report.json: source, size, ops, steps, evaluation, validation, profile, package."""
    m, src, ratios = report.model, report.source, report.ratios_vs_fp32
    lines = [f"# {report.name}", "", *_rejected(report.rejected)]
    lines += [
        f"- source: `{src.path}` ({src.format}, {_params(src.parameters)} params)",
        *_hub(report.hub),
        *_quantization(report.quantization),
        f"- size: {_kb(m.size_bytes)} (gzip {_kb(m.gzip_bytes)}); fp32 {_kb(src.fp32_tflite_bytes)}"
        f" -> {ratios.size}x smaller, gzip {ratios.gzip}x",
        f"- ops: {', '.join(f'{k} x{v}' for k, v in m.ops.items())}",
    ]
    if report.model_sha256:
        lines.append(f"- model.tflite sha256: `{report.model_sha256}`")
    for step in report.steps:
        extra = f", sparsity {step.achieved_sparsity:.1%}" if isinstance(step, PruneReport) else ""
        extra += f"; {step.summary}" if isinstance(step, VocabTrimReport) else ""
        extra += _augmentation(step) if isinstance(step, DistillReport) else ""
        lines.append(
            f"- step {step.index} {step.kind}: float test accuracy {step.float_test_accuracy}{extra}"
        )
    fm = report.float_model
    if fm:
        lines.append(
            f"- post-step float model: `{fm.tflite}`, `{fm.keras}` (after steps "
            f"{', '.join(fm.after_steps)}){'; ' + fm.note if fm.note else ''}"
        )
    lines += _evaluation(report.evaluation, report.steps)
    if report.distill_auto is not None:
        lines += ["", *candidates_markdown(report.distill_auto).splitlines(), ""]
    for w in report.warnings:
        lines.append(f"- warning: {w}")
    lines += _validation(report.validation)
    lines += _profile(report.profile)
    lines += _package(report.package)
    return "\n".join(lines) + "\n"


def _augmentation(step: DistillReport) -> str:
    """A distill step's augmented rows and why augmentation was on (empty when it was off)."""
    if step.augment_origin is None or step.augment is None:
        return ""
    copies = step.augment.get("copies")
    return f"; augmentation ({step.augment_origin}): {step.rows.augmented:,} rows, {copies} copies per query"


def _hub(hub: HubExportSection | None) -> list[str]:
    """A Hugging Face folder: its kind, how it became ONNX and the check against PyTorch."""
    if hub is None:
        return []
    f = hub.folder
    how = f"exported at {hub.seq_len} tokens in {hub.environment}" if hub.exported else "converted as it is"
    line = f"- {f.kind} folder ({f.architecture or f.onnx_file}): {how}"
    p = hub.parity
    if p is not None:
        line += f"; ONNX vs PyTorch {p.metric} {p.value:.3g} (limit {p.limit:g}, {p.queries} queries)"
    return [line]


def _rejected(rejected: RejectedSection | None) -> list[str]:
    if not rejected:
        return []
    return [f"**REJECTED: {rejected.message}**", "", f"- hint: {rejected.hint}", ""]


def _int4(q: Int4Section | None) -> list[str]:
    """Mode int4: which weights went to 4 bits, and the devices that kept them out when one could not."""
    if q is None:
        return []
    by = ", ".join(f"{w.op} {w.params:,} {w.width}" for w in q.weights)
    share = f"{q.int4_params_share:.1%} of weights in 4 bits"
    lines = [f"- int4 ({q.plan}, LiteRT Quantizer {q.quantizer}): {share}: {by}"]
    lines += [f"  - {d}: cannot run int4 ({why})" for d, why in q.devices.items() if why is not None]
    return lines


def _quantization(q: QuantizationSection) -> list[str]:
    """Mode, graph preparation, int8 share of the MACs and, for mixed, every op kept out of int8."""
    share = f", {q.int8_mac_share:.1%} of MACs in int8" if q.int8_mac_share is not None else ""
    lines = [f"- quantization: {q.mode}{share}"]
    prep = q.graph_preparation
    if prep is not None and prep.changed and prep.float_effect is not None:
        for c in prep.mask_constants or []:
            lines.append(
                f"- graph preparation: attention-mask constant {c.from_} -> {c.to} (scores "
                f"{list(prep.attention_score_range or ())}), {prep.nan_guards_removed} NaN guard(s) removed; "
                f"float outputs min cosine {prep.float_effect.min_cosine:.6f} on {prep.float_effect.queries} "
                "queries"
            )
    lines += _int4(q.int4)
    mixed = q.mixed
    if mixed is None:
        return lines
    if not mixed.searched:
        return [*lines, f"- mixed: {mixed.plan}, {mixed.float_nodes} float nodes"]
    dump = lambda part: part.to_json() if part is not None else None  # noqa: E731 - as report.json has it
    lines.append(
        f"- mixed: {mixed.float_nodes} ops kept float, {mixed.candidates_evaluated} candidates in "
        f"{mixed.search_seconds} s on {mixed.search_split} (peak memory {mixed.peak_memory_mb} MB, runtime "
        f"child {mixed.runtime_peak_memory_mb} MB); "
        f"targets {dump(mixed.targets)}; full int8 "
        f"{dump(mixed.full_int8)} -> chosen {dump(mixed.chosen)}"
    )
    for miss in mixed.aim_missed or []:
        lines.append(
            f"- mixed: aim out of reach: {miss.metric} {miss.reached} meets the gate {miss.gate} but is "
            f"{miss.missed_by} short of the aim {miss.aim} (the best plan found that meets the gates)"
        )
    if mixed.damage_by_op_type:
        types = ", ".join(f"{op} {d:g}" for op, d in mixed.damage_by_op_type.items())
        lines.append(f"- mixed: 1 - cosine with one op type quantized alone: {types}")
    lines += ["", "| op kept out of int8 | reason | MACs | int8 alone: 1-cos | gate metrics if int8 |"]
    lines.append("|---|---|---|---|---|")
    for r in mixed.kept_out_of_int8 or []:
        if r.reason == MixedReason.ERROR:
            alone = r.damage_alone if r.damage_alone is not None else f"{r.type_damage_alone} (its type)"
            lines.append(f"| {r.op} `{r.node}` | error | {r.macs:,} | {alone} | {dump(r.if_int8)} |")
    if not mixed.speed_by_op_type:
        rule = sum(r.reason == MixedReason.SPEED for r in mixed.kept_out_of_int8 or [])
        return [
            *lines,
            "",
            f"- mixed: {rule} ops without MACs kept float by rule (`quantization.mac_free_ops: float`; "
            "`timed` times their int8 and float kernels on this host instead)",
            "",
        ]
    lines += [
        "",
        "| op type | count | int8 µs/query | float µs/query | precision (speed) |",
        "|---|---|---|---|---|",
    ]
    for c in mixed.speed_by_op_type:
        lines.append(f"| {c.op} | {c.count} | {c.int8_us} | {c.float_us} | {c.precision} |")
    return [*lines, ""]


def _fallback_stages(ev: EvaluationSection) -> list[StageMetrics]:
    """Reports written before `by_stage`: the source and the converted model from `vs_source_float`."""
    c = ev.vs_source_float
    assert c is not None
    return [
        StageMetrics(
            stage=Stage.SOURCE,
            accuracy=c.reference.accuracy,
            macro_f1=c.reference.macro_f1,
            agreement_vs_source=1.0,
            accuracy_drop_points=0.0,
        ),
        StageMetrics(
            stage=Stage.AFTER_QUANTIZATION,
            accuracy=c.converted.accuracy,
            macro_f1=c.converted.macro_f1,
            agreement_vs_source=c.top1_agreement,
            accuracy_drop_points=c.accuracy_drop_points,
        ),
    ]


def _evaluation(ev: EvaluationSection, steps: list[AnyStepReport]) -> list[str]:
    """Quality by stage (source -> after steps -> after quantization) and the named metrics."""
    lines: list[str] = []
    c = ev.vs_source_float
    if c is not None:
        source = "source (teacher)" if ev.teacher is not None else "source (float)"
        stages = ev.by_stage.stages if ev.by_stage is not None else _fallback_stages(ev)
        kinds = ", ".join(s.kind for s in steps)
        names = {
            Stage.SOURCE: source,
            Stage.AFTER_STEPS: f"after steps ({kinds}), float",
            Stage.AFTER_QUANTIZATION: "after quantization (.tflite)",
        }
        lines += [
            "",
            f"## Quality on {c.queries} test queries",
            "",
            f"| stage | accuracy | macro-F1 | {AGREEMENT_VS_SOURCE} | {ACCURACY_DROP} |",
            "|---|---|---|---|---|",
        ]
        for s in stages:
            lines.append(
                f"| {names[s.stage]} | {s.accuracy:.4f} | {s.macro_f1:.4f} | "
                f"{s.agreement_vs_source:.2%} | {s.accuracy_drop_points:.2f} |"
            )
        lines.append("")
        lines += [f"- {name}: {value}" for name, value in quality_summary(ev)]
        split = disagreement_text(ev)
        lines += [f"- {split}"] if split else []
        surest = flip_lines(ev)
        if surest:
            lines.append("- the flips the source was surest of (its top-1 probability; runner-up):")
            lines += [f"  - {x}" for x in surest]
    u = ev.unlabelled
    if c is None and u is not None:  # a query log as the test split: agreement only
        lines += ["", f"## Agreement on {u.queries} unlabelled queries", ""]
        lines += [f"- {name}: {value}" for name, value in quality_summary(ev)]
        surest = flip_lines(ev)
        if surest:
            lines.append("- the flips the source was surest of (its top-1 probability; runner-up):")
            lines += [f"  - {x}" for x in surest]
    t = ev.teacher
    if t is not None:  # "source" above is the teacher
        lines.append(f"- agreement with the teacher ({t.teacher}): {t.agreement_with_teacher:.2%}")
        if t.agreement_where_teacher_sure is not None:
            right = t.teacher_accuracy_where_sure
            rule = (  # a report written under the margin rule says so
                f"top-1 probability >= {t.teacher_sure_min_prob}"
                if t.teacher_sure_min_prob is not None
                else f"top-1 leads top-2 by >= {t.teacher_sure_margin}"
            )
            lines.append(
                f"- where the teacher is sure ({rule}, "
                f"n={t.teacher_sure_queries}"
                + ("" if right is None else f", the teacher right on {right:.2%} of them")
                + f"): {t.agreement_where_teacher_sure:.2%}; where it is "
                f"unsure (n={t.teacher_unsure_queries}): {t.agreement_where_teacher_unsure or 0:.2%}"
            )
    lines += gates_markdown(ev)
    lines += retrieval_markdown(ev, [f"{s.kind}" for s in steps])
    r = ev.onnx_reference
    if r is not None:
        lines += [
            "",
            f"vs onnxruntime on {r.queries} queries: max abs error {r.max_abs_error:.3g}, "
            f"mean cosine {r.mean_cosine:.4f} (worst {r.min_cosine:.4f})",
        ]
    return lines


def _validation(val: ValidationReport | None) -> list[str]:
    if not val:
        return []
    lines = ["", f"## Validation: {'passed' if val.passed else 'FAILED'}", ""]
    lines += ["| device | result | runtime | failures |", "|---|---|---|---|"]
    for name, dev in sorted(val.devices.items()):
        failures = [f"{c.name}: {c.detail}" for c in dev.checks if c.status == CheckStatus.FAIL]
        result = "pass" if dev.passed else "FAIL"
        lines.append(f"| {name} | {result} | {dev.runtime} | {'; '.join(failures) or '-'} |")
    return lines


def _profile(prof: ProfileSection | None) -> list[str]:
    if not prof:
        return []
    lines = ["", "## Profile", ""]
    if prof.target.host_cpu is not None:
        lines.append(f"- measured on {prof.target.host_cpu.summary}")
    for m in prof.methods:
        invoke = "below resolution" if m.invoke_us is None else f"{m.invoke_us:.2f} µs"
        ratio = "no ratio: ops below resolution" if m.ratio is None else f"ratio {m.ratio:.2f}"
        lines.append(
            f"- {m.method} ({m.mode}): per-op sum {m.sum_us:.2f} µs vs whole invoke {invoke} ({ratio})"
        )
        for op in m.top_ops[:5]:
            lines.append(f"  - {op.name}: {op.time_us:.2f} µs")
    return lines


def _package(pkg: PackageSection | None) -> list[str]:
    if not pkg:
        return []
    lines = [
        "",
        "## Package",
        "",
        f"- {pkg.format} bundle `{pkg.bundle}` (zip `{Path(pkg.zip).name}`)",
        f"- validation: {pkg.validation}",
    ]
    if pkg.parity:
        lines.append(
            "- app-runtime parity: "
            + ", ".join(f"{k} {v:.2%}" for k, v in pkg.parity.items() if v is not None)
        )
    return lines


def gates_markdown(ev: EvaluationSection) -> list[str]:
    """A foreign teacher's student: the gates applied (whose), each met or missed, and the weak intents."""
    g = ev.gates
    if g is None:
        return []
    verdict = {True: "met", False: "MISSED", None: "not measured"}
    lines = ["", f"Gates ({g.origin}):", "", "| gate | limit | measured | |", "|---|---:|---:|---|"]
    for c in g.checks:
        measured = "-" if c.measured is None else f"{c.measured:g}"
        lines.append(f"| {c.gate} | {c.limit:g} | {measured} | {verdict[c.passed]} |")
    if g.weak_intents:
        lines += ["", f"Intents below the recall ratio ({g.dead_intents} dead, recall 0):", ""]
        lines += ["| intent | n | recall | teacher's recall |", "|---|---:|---:|---:|"]
        lines += [
            f"| {w.label} | {w.support} | {w.recall:.2%} | {w.reference_recall:.2%} |" for w in g.weak_intents
        ]
    return lines
