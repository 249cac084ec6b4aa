"""The convert-time quality gates, in one place for every source format, and why a build missed one.

A Keras build and an ONNX build are judged by the same function: accuracy drop and agreement vs source
(classifiers with a labelled split), max abs error and mean cosine vs onnxruntime (ONNX sources, the
`onnx_reference` block), recall@10, its drop and top-10 overlap vs source (retrieval, the `retrieval`
block of toolchain/evaluation/retrieval.py; which gates a task takes is data in toolchain/tasks.py). On
an unlabelled test split (a query log) the agreement gates judge `evaluation.unlabelled` and the label
gates are named as not applied (`unjudged`). A gate whose number is absent from the evaluation does not
apply. Every gate is a recipe key under `evaluation:` and a
`convert` flag of the same name (`--min-agreement`, ...).

A missed gate is not a dead end (issue 15): `rejection` names the gate, the measured value and the limit,
and, from `evaluation.by_stage` (toolchain/evaluation/metrics.py `stage_metrics`), which stage cost it
(source ->
after steps -> after quantization), with a hint for that stage: a milder step when the steps cost most,
per-op error and mixed precision when quantization did. The numbers are the report's; the pipeline writes
the candidate to `<build>.rejected/` and raises `BuildRejected` with this message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from toolchain.base.types import CostMost, Stage
from toolchain.evaluation.metrics import ACCURACY_DROP, AGREEMENT_VS_SOURCE
from toolchain.evaluation.retrieval import OVERLAP_VS_SOURCE, RECALL_AT_10, RECALL_DROP
from toolchain.evaluation.teacher_gates import (
    DEFAULTS_NOTE,
    TEACHER_DEFAULTS,
    recall_ratio,
    weak_intents,
    weak_text,
    weakest_text,
)
from toolchain.recipe.schema import EvaluationSpec
from toolchain.report.evaluation import (
    EvaluationSection,
    Flips,
    GateCheck,
    GateResults,
    ReferenceCheck,
    UnlabelledAgreement,
)
from toolchain.report.model import RejectedSection
from toolchain.tasks import CLASSIFIER_GATES, RETRIEVAL_GATES, TEACHER_DEFAULT_GATES

AGREEMENT_WHERE_SURE = "agreement with the teacher where it is sure"
AGREEMENT_WHERE_SOURCE_SURE = "agreement vs source where it is sure"
MACRO_F1_DROP = "macro-F1 drop vs source (points)"
LABEL_GATES = ("max_accuracy_drop", "max_macro_f1_drop", "min_recall_ratio")  # need a labelled split
RECALL_RATIO = "lowest per-intent recall as a share of the source's"
AUTO_PRESET = "distill-auto"  # the preset that searches for a student meeting the gates (issue 25)

# A check: (gate, metric, measured, message for the limit); a `max_` gate misses above its limit, a `min_`
# gate below it, and a gate the recipe leaves unset does not apply.
Check = tuple[str, str, float, Callable[[float], str]]


@dataclass(frozen=True)
class GateMiss:
    """A missed gate: its recipe key, the metric (named as in the report) and the numbers."""

    gate: str  # evaluation.<gate> in the recipe, --<gate> on the command line
    metric: str
    measured: float
    limit: float
    text: str  # "agreement vs source 96.89% is below 97.00%"


def failed_gate(
    gates: EvaluationSpec, evaluation: EvaluationSection, texts: Sequence[str] = ()
) -> GateMiss | None:
    """The first gate the evaluation misses, or None; `texts` name the worst query of an ONNX check."""
    misses = failed_gates(gates, evaluation, texts)
    return misses[0] if misses else None


def failed_gates(
    gates: EvaluationSpec, evaluation: EvaluationSection, texts: Sequence[str] = ()
) -> list[GateMiss]:
    """Every gate the evaluation misses, in the order of the checks (empty: the build passes)."""
    if evaluation.onnx_reference is not None:
        miss = _onnx_gates(gates, evaluation.onnx_reference, texts)
        if miss is not None:
            return [miss]
    if evaluation.retrieval is not None:
        miss = _retrieval_gates(gates, evaluation)
        return [miss] if miss is not None else []
    return [m for m in (_miss(gates, check) for check in classifier_checks(evaluation)) if m is not None]


def classifier_checks(evaluation: EvaluationSection) -> list[Check]:
    """The classifier gates' checks whose number the evaluation has (vs_source_float: for a foreign
    teacher's student the source is the teacher; where it is sure: evaluation.teacher)."""
    cmp = evaluation.vs_source_float
    if cmp is None:
        return _unlabelled_checks(evaluation.unlabelled) if evaluation.unlabelled is not None else []
    ref = "the teacher" if evaluation.teacher is not None else "source"
    drop, agree = cmp.accuracy_drop_points, cmp.top1_agreement
    f1_drop = round((cmp.reference.macro_f1 - cmp.converted.macro_f1) * 100, 2)
    checks: list[Check] = [
        ("max_accuracy_drop", ACCURACY_DROP, drop,
         lambda lim: f"accuracy drop {drop} points vs {ref} (limit {lim})"),
        _agreement_check(agree, cmp.flips, ref),
    ]  # fmt: skip
    t, f = evaluation.teacher, cmp.flips
    if t is not None and t.agreement_where_teacher_sure is not None:
        sure = t.agreement_where_teacher_sure
        checks.append(
            ("min_agreement_where_sure", AGREEMENT_WHERE_SURE, sure,
             lambda lim: f"agreement with the teacher where it is sure ({t.teacher_sure_queries} queries) "
             f"{sure:.2%} is below {lim:.2%}")
        )  # fmt: skip
    elif t is None and f is not None and f.agreement_where_sure is not None:  # any other classifier
        scope = f"{f.sure_queries} queries, its top-1 probability >= {f.sure_min_prob}"
        checks.append(_where_sure_check(f, f.agreement_where_sure, scope))
    checks.append(
        ("max_macro_f1_drop", MACRO_F1_DROP, f1_drop,
         lambda lim: f"macro-F1 drop {f1_drop} points vs {ref} (limit {lim})")
    )  # fmt: skip
    if cmp.support:
        ratio = recall_ratio(cmp)
        checks.append(("min_recall_ratio", RECALL_RATIO, ratio, lambda lim: weak_text(cmp, lim, ref)))
    return checks


def _unlabelled_checks(u: UnlabelledAgreement) -> list[Check]:
    """The agreement gates on an unlabelled split (the label gates need labels: `unjudged` names them)."""
    f = u.flips
    checks = [_agreement_check(u.top1_agreement, f, "source", f" on {u.queries} unlabelled queries")]
    if f.agreement_where_sure is not None:
        scope = f"{f.sure_queries} of {u.queries} unlabelled queries"
        checks.append(_where_sure_check(f, f.agreement_where_sure, scope))
    return checks


def _agreement_check(agree: float, f: Flips | None, ref: str, on: str = "") -> Check:
    """min_agreement vs `ref` (`on`: which queries, when not the labelled test split), with the flips."""

    def text(lim: float) -> str:
        return f"agreement vs {ref} {agree:.2%}{on} is below {lim:.2%}" + _flips_text(f, ref)

    return ("min_agreement", AGREEMENT_VS_SOURCE, agree, text)


def _where_sure_check(f: Flips, where: float, scope: str) -> Check:
    """min_agreement_where_sure vs source on the queries it is sure of (`scope` says which)."""

    def text(lim: float) -> str:
        flipped = f"({f.where_sure} flips there)"
        return f"agreement vs source where it is sure ({scope}) {where:.2%} is below {lim:.2%} {flipped}"

    return ("min_agreement_where_sure", AGREEMENT_WHERE_SOURCE_SURE, where, text)


def unjudged(gates: EvaluationSpec, evaluation: EvaluationSection) -> list[str]:
    """Lines for the gates the recipe sets that this evaluation cannot judge (they pass by default): a
    where-sure gate when the source is sure of no test query; the label gates on an unlabelled split."""
    u = evaluation.unlabelled
    if u is not None and evaluation.vs_source_float is None:
        lines = [
            f"gate {gate} not applied: the {u.queries} evaluated queries have no labels (min_agreement and "
            "min_agreement_where_sure are judged on them); pass a labelled --test for it"
            for gate in LABEL_GATES
            if getattr(gates, gate) is not None
        ]
        if gates.min_agreement_where_sure is not None and not u.flips.sure_queries:
            lines.append(f"gate min_agreement_where_sure not applied: the source is sure of none of the "
                         f"{u.queries} queries; use min_agreement")  # fmt: skip
        return lines
    cmp, t = evaluation.vs_source_float, evaluation.teacher
    f = cmp.flips if cmp is not None else None
    if gates.min_agreement_where_sure is None or t is not None or f is None or f.sure_queries:
        return []
    return [
        f"gate min_agreement_where_sure not applied: the source is sure (top-1 probability >= "
        f"{f.sure_min_prob}) of none of the {cmp.queries} test queries; use min_agreement"
    ]


def _flips_text(f: Flips | None, ref: str) -> str:
    """ " (9 flips, 7 of them where source was unsure of the query ...; 95% interval ...)": whether the
    miss is damage or the reference's own near-ties tipped, and how far another sample could move it."""
    if f is None or not f.total:
        return ""
    low, high = f.agreement_interval
    return (
        f" ({f.total} flips, {f.where_unsure} of them where {ref} was unsure of the query, its top-1 "
        f"probability < {f.sure_min_prob}; 95% interval of the agreement {low:.2%}-{high:.2%})"
    )


def gate_results(gates: EvaluationSpec, evaluation: EvaluationSection, origin: str) -> GateResults:
    """The report's `evaluation.gates`: every classifier gate that is set, measured and judged, and the
    weak intents (at min_recall_ratio, else the foreign-teacher default ratio)."""
    measured = {gate: (metric, value) for gate, metric, value, _ in classifier_checks(evaluation)}
    checks = []
    for gate in CLASSIFIER_GATES:
        limit = getattr(gates, gate)
        if limit is None:
            continue
        metric, value = measured.get(gate, (gate, None))
        passed = None if value is None else not _misses(gate, value, limit)
        checks.append(GateCheck(gate=gate, metric=metric, limit=limit, measured=value, passed=passed))
    cmp = evaluation.vs_source_float
    ratio = gates.min_recall_ratio or TEACHER_DEFAULT_GATES["min_recall_ratio"]
    weak = weak_intents(cmp, ratio) if cmp is not None and cmp.support else []
    t = evaluation.teacher
    return GateResults(
        origin=origin,
        checks=checks,
        weak_intents=weak,
        dead_intents=sum(w.dead for w in weak),
        teacher_sure_queries=t.teacher_sure_queries if t is not None else None,
    )


def _misses(gate: str, value: float, limit: float) -> bool:
    return value > limit if gate.startswith("max_") else value < limit


def _miss(gates: EvaluationSpec, check: Check) -> GateMiss | None:
    gate, metric, value, text = check
    limit = getattr(gates, gate)
    if limit is not None and _misses(gate, value, limit):
        return GateMiss(gate, metric, value, limit, text(limit))
    return None


def _first_miss(gates: EvaluationSpec, *checks: Check) -> GateMiss | None:
    return next((m for m in (_miss(gates, c) for c in checks) if m is not None), None)


def _retrieval_gates(gates: EvaluationSpec, evaluation: EvaluationSection) -> GateMiss | None:
    """recall@10 of the .tflite, its drop vs source (points), top-10 overlap vs source."""
    assert evaluation.retrieval is not None
    final = evaluation.retrieval.final
    recall, drop = final.recall_at_10, final.recall_at_10_drop_points
    overlap = final.top10_overlap_vs_source
    return _first_miss(
        gates,
        ("min_recall_at_10", RECALL_AT_10, recall, lambda lim: f"recall@10 {recall:.2%} is below {lim:.2%}"),
        ("max_recall_drop", RECALL_DROP, drop,
         lambda lim: f"recall@10 drop {drop} points vs source (limit {lim})"),
        ("min_top10_overlap", OVERLAP_VS_SOURCE, overlap,
         lambda lim: f"top-10 overlap vs source {overlap:.2%} is below {lim:.2%}"),
    )  # fmt: skip


def _onnx_gates(gates: EvaluationSpec, check: ReferenceCheck, texts: Sequence[str]) -> GateMiss | None:
    def query(i: int) -> str:
        return repr(texts[i]) if i < len(texts) else f"#{i}"

    err, cos = check.max_abs_error, check.mean_cosine
    worst_abs, worst_cos = query(check.worst_abs_query), query(check.worst_cosine_query)
    return _first_miss(
        gates,
        ("max_abs_error", "max abs error vs onnxruntime", err,
         lambda lim: f"output differs from onnxruntime by {err:.3g} (limit {lim}) on query {worst_abs}"),
        ("min_cosine", "mean cosine vs onnxruntime", cos,
         lambda lim: f"mean cosine vs onnxruntime {cos:.4f} below {lim}; worst {check.min_cosine:.4f} "
         f"on {worst_cos}"),
    )  # fmt: skip


def costliest_stage(miss: GateMiss, evaluation: EvaluationSection) -> CostMost:
    """The stage that lost most of the missed metric (ONNX gates: quantization)."""
    if miss.gate in RETRIEVAL_GATES:
        return _retrieval_stage(miss, evaluation)
    by_stage, u = evaluation.by_stage, evaluation.unlabelled
    if by_stage is None and u is not None:  # unlabelled: agreement lost by steps vs quantization
        by_steps = u.top1_agreement_vs_post_step_float - u.top1_agreement
        return CostMost.STEPS if by_steps > 1 - u.top1_agreement_vs_post_step_float else CostMost.QUANTIZATION
    steps = None if by_stage is None else by_stage.stage(Stage.AFTER_STEPS)
    if by_stage is None or steps is None or miss.gate not in CLASSIFIER_GATES:
        return CostMost.QUANTIZATION
    final = by_stage.stage(Stage.AFTER_QUANTIZATION)
    if miss.gate == "max_accuracy_drop":
        assert final is not None
        by_steps = steps.accuracy_drop_points
        by_quantization = final.accuracy_drop_points - by_steps
        return CostMost.STEPS if by_steps >= by_quantization else CostMost.QUANTIZATION
    source = by_stage.stage(Stage.SOURCE)
    if miss.gate == "max_macro_f1_drop" and final is not None and source is not None:
        by_steps = source.macro_f1 - steps.macro_f1
        return CostMost.STEPS if by_steps >= steps.macro_f1 - final.macro_f1 else CostMost.QUANTIZATION
    d = by_stage.disagreements_vs_source
    return CostMost.STEPS if d.from_steps >= d.from_quantization else CostMost.QUANTIZATION


def _retrieval_stage(miss: GateMiss, evaluation: EvaluationSection) -> CostMost:
    """The stage that lost most recall@10 (overlap gate: most top-10 overlap with the source)."""
    assert evaluation.retrieval is not None
    steps = evaluation.retrieval.stage(Stage.AFTER_STEPS)
    final = evaluation.retrieval.final
    if steps is None:
        return CostMost.QUANTIZATION
    if miss.gate == "min_top10_overlap":
        assert final.top10_overlap_vs_post_step_float is not None
        by_steps = 1.0 - steps.top10_overlap_vs_source
        by_quantization = 1.0 - final.top10_overlap_vs_post_step_float
    else:
        by_steps = steps.recall_at_10_drop_points
        by_quantization = final.recall_at_10_drop_points - by_steps
    return CostMost.STEPS if by_steps >= by_quantization else CostMost.QUANTIZATION


def stage_line(evaluation: EvaluationSection, step_kinds: Sequence[str]) -> str:
    """ "source accuracy 97.73% -> after steps (prune) ... -> after quantization ...; of the N ..."."""
    if evaluation.retrieval is not None:
        return _retrieval_line(evaluation, step_kinds)
    by_stage = evaluation.by_stage
    if by_stage is None:
        return ""
    parts = []
    for s in by_stage.stages:
        name = f"{s.stage}" + (f" ({', '.join(step_kinds)})" if s.stage == Stage.AFTER_STEPS else "")
        text = f"{name} accuracy {s.accuracy:.2%}"
        if s.stage != Stage.SOURCE:
            text += f", agreement vs source {s.agreement_vs_source:.2%}"
        if s.agreement_vs_post_step_float is not None and len(by_stage.stages) > 2:
            text += f", agreement vs post-step float {s.agreement_vs_post_step_float:.2%}"
        parts.append(text)
    d = by_stage.disagreements_vs_source
    line = "by stage: " + " -> ".join(parts)
    if d.total and len(by_stage.stages) > 2:
        line += (
            f"; of the {d.total} of {by_stage.queries} test queries that disagree with the source, "
            f"{d.from_steps} already did after the steps and {d.from_quantization} after quantization"
        )
    elif d.total:
        line += f"; {d.total} of {by_stage.queries} test queries disagree with the source (no steps)"
    return line


def _retrieval_line(evaluation: EvaluationSection, step_kinds: Sequence[str]) -> str:
    assert evaluation.retrieval is not None
    parts = []
    for s in evaluation.retrieval.stages:
        name = f"{s.stage}" + (f" ({', '.join(step_kinds)})" if s.stage == Stage.AFTER_STEPS else "")
        text = f"{name} recall@10 {s.recall_at_10:.2%}"
        if s.stage != Stage.SOURCE:
            text += f", top-10 overlap vs source {s.top10_overlap_vs_source:.2%}"
        parts.append(text)
    return "by stage: " + " -> ".join(parts)


def rejection(
    miss: GateMiss,
    evaluation: EvaluationSection,
    step_kinds: Sequence[str],
    where: str,
    also: Sequence[GateMiss] = (),
    origin: str = "recipe",
    preset: str | None = None,
) -> RejectedSection:
    """The report's `rejected` section for a missed gate (its message and hint are what the CLI prints);
    `where` is the `.rejected/` dir the candidate was written to; `also`: the other gates it missed;
    `origin` TEACHER_DEFAULTS when the gates are the foreign-teacher defaults; `preset`: the preset whose
    student this is (named in the hint, with `distill-auto` to try instead)."""
    cause = costliest_stage(miss, evaluation)
    stages = stage_line(evaluation, step_kinds)
    message = f"gate {miss.gate} failed: {miss.text}"
    message += "".join(f"; also {m.gate}: {m.text}" for m in also)
    cmp = evaluation.vs_source_float
    recall_missed = "min_recall_ratio" in {miss.gate, *(m.gate for m in also)}
    if evaluation.teacher is not None and cmp is not None and cmp.support and not recall_missed:
        message += f"; {weakest_text(cmp, 'the teacher')}"  # a student: where it is thin, dead or not
    message += f"; {stages}" if stages else ""
    flag = "--" + miss.gate.replace("_", "-")
    if cause == CostMost.STEPS:
        hint = (
            f"the steps ({', '.join(step_kinds)}) cost most: make them milder (prune: a lower "
            "target_sparsity or more epochs; distill: a larger student or more epochs; lowrank: a "
            "higher rank)"
        )
    else:
        hint = (
            f"quantization cost most: `edgecomp profile {where}` shows the per-op error vs the post-step "
            "float model; quantization.mode: mixed (--quantize mixed) keeps the damaging ops in float, "
            "chosen for this model (or int16x8, dynamic, weight_only)"
        )
    hint += f", or relax {flag}; the rejected candidate's report is in {where}/"
    if origin == TEACHER_DEFAULTS:
        who = f"the student of preset {preset}" if preset else "this student"
        fix = f"give your own gates, e.g. {flag}"
        if preset != AUTO_PRESET:
            fix = f"--preset {AUTO_PRESET} searches for the smallest student that meets them (or {fix})"
        hint = f"{who} misses {DEFAULTS_NOTE}; {fix}. {hint[0].upper()}{hint[1:]}"
    return RejectedSection(
        gate=miss.gate,
        metric=miss.metric,
        measured=miss.measured,
        limit=miss.limit,
        cost_most=cause,
        message=message,
        hint=hint,
    )
