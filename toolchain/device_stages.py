"""The stages after convert: validate and profile a Build (or a bare .tflite) and record their sections.

devices/ receives a model path and named arrays and returns typed results; it never reads a build
directory. This module is the other half: it loads the Build (toolchain/build.py, the one reader), refuses
a build whose model.tflite changed since convert, makes the input arrays from the build's own split and
tokenizer, calls devices/, and records the section through `Build.record` (the one writer). The CLI calls
these functions and renders what they return; it writes nothing itself.

`profile` measures a build's per-op quantization error against its post-step float model (float.tflite,
saved by convert: after pruning or distillation the source would count the steps' damage as quantization
error), else the source model; `--float-reference` overrides both. validate and profile also take a
rejected candidate (`<name>.rejected/`), to see why it missed its gate; package does not.

A build whose recipe names no evaluation split is run on synthetic inputs, asked for explicitly here and
named as such in the result; a split that is named but missing is an error. A bare .tflite gets synthetic
inputs (parity only), as before.
"""

from __future__ import annotations

from pathlib import Path

from converters.tflite_model import read_tflite
from devices.profiles.schema import DeviceProfile
from devices.profiling.profiler import ProfileOptions, ProfileResult, profile_model
from devices.validate import Gates, ValidationReport, validate
from toolchain.base.errors import InputFileError
from toolchain.base.progress import Progress
from toolchain.build import FLOAT_FILE, Build, EvalSet, load_build, synthetic_eval_set
from toolchain.report.stages import (
    MethodSummary,
    MixedFloatOp,
    OpTiming,
    ProfileSection,
    ProfileTarget,
    QuantErrorRow,
    SweepRow,
)
from toolchain.tasks import task_spec


def _eval_set(build: Build, splits: tuple[str, ...], limit: int | None) -> EvalSet:
    """The first split of `splits` the recipe names (missing file: DataError), else synthetic inputs."""
    split = next((s for s in splits if getattr(build.recipe.data, s) is not None), None)
    if split is None:
        return build.eval_set(synthetic=True, limit=limit)
    return build.eval_set(split, limit=limit)


def _bare_model(path: Path) -> Path:
    if path.suffix == ".tflite" and path.is_file():
        return path.resolve()
    raise InputFileError(f"not a build dir or .tflite: {path}", hint="pass build/<name> or a model.tflite")


def validate_target(
    target: Path,
    profiles: list[DeviceProfile],
    gates: Gates = Gates(),
    progress: Progress | None = None,
    runner_script: Path | None = None,
    limit: int | None = None,
    write_report: bool = True,
) -> ValidationReport:
    """`edgecomp validate`: a build dir (its test/val split; adds `validation` to its report) or a .tflite.

    The parity gate is the build's task's (toolchain/tasks.py): top-1 agreement with the host run for
    classifiers and retrieval, the cosine of the vectors for an embedding model."""
    path = Path(target)
    if not path.is_dir():
        model = _bare_model(path)
        ev = synthetic_eval_set(read_tflite(model), limit or 256)
        report = validate(
            model, ev.feeds, None, profiles, gates, progress, runner_script, ev.source, str(target)
        )
        report.reference.float_accuracy = None  # no build, no float model
        return report
    build = load_build(path, allow_rejected=True)  # a rejected candidate may be looked at
    build.check_files()
    ev = _eval_set(build, ("test", "val"), limit)
    gates = gates.model_copy(update={"parity": task_spec(build.task).device_parity})
    report = validate(
        build.model_path,
        ev.feeds,
        ev.label_ids,
        profiles,
        gates,
        progress,
        runner_script,
        ev.source,
        str(target),
    )
    float_cmp = build.report.evaluation.vs_source_float
    report.reference.float_accuracy = None if float_cmp is None else float_cmp.reference.accuracy
    if write_report:
        build.record("validation", report, merge=merge_validation)
    return report


def merge_validation(previous: ValidationReport | None, new: ValidationReport) -> ValidationReport:
    """Devices validated earlier stay in the section; a device validated again is replaced."""
    devices = {**(previous.devices if previous is not None else {}), **new.devices}
    return new.model_copy(update={"devices": devices, "passed": all(d.passed for d in devices.values())})


def profile_section(result: ProfileResult) -> ProfileSection:
    """What report.json keeps of a profile: per method the totals and the top ops."""
    return ProfileSection(
        target=ProfileTarget.model_validate(result.target),
        methods=[
            MethodSummary(
                method=m.method,
                mode=m.mode,
                sum_us=m.sum_us,
                invoke_us=m.invoke_us,
                ratio=m.ratio,
                resolved=m.resolved,
                resolution_us=m.resolution_us,
                top_ops=[
                    OpTiming.model_validate(o.to_dict()) for o in sorted(m.ops, key=lambda o: -o.time_us)[:10]
                ],
            )
            for m in result.methods
        ],
        quant_error=[QuantErrorRow.model_validate(q.to_dict()) for q in result.quant_error],
        sweep=[SweepRow.model_validate(r) for r in result.sweep],
    )


def profile_target(
    source: Path,
    options: ProfileOptions | None = None,
    device: str | DeviceProfile | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
) -> ProfileResult:
    """`edgecomp profile`: a build dir (real queries, its float reference; adds `profile`) or a .tflite."""
    options = options or ProfileOptions()
    path = Path(source)
    if not path.is_dir():
        model = path if path.suffix != ".tflite" or not path.exists() else path.resolve()
        return profile_model(model, options, device, threads, progress)
    build = load_build(path, allow_rejected=True)  # a rejected candidate may be looked at
    build.check_files()
    ev = _eval_set(build, ("test", "calibration", "val"), options.queries)
    what = ev.source if ev.label_ids is None and not ev.texts else f"{len(ev)} real queries from {ev.source}"
    result = profile_model(
        build.model_path,
        options,
        device,
        threads,
        progress,
        arrays=ev.feeds,
        input_source=what,
        float_reference=options.float_reference or build.float_reference(),
    )
    if result.quant_error:
        what = "given" if options.float_reference else "the build's post-step float model"
        if not options.float_reference and Path(result.quant_reference or "").name != FLOAT_FILE:
            what = "the build's source model"
        result.notes.append(f"quantization error measured against {result.quant_reference} ({what})")
        note = None if options.float_reference else build.float_reference_note()
        result.notes += [note] if note else []
    section = profile_section(result)
    plan = build.recipe.quantization.mixed
    if plan is not None:
        section.mixed_float_ops = mixed_float_op_times(build, plan.float_nodes, result)
    build.record("profile", section)
    return result


def mixed_float_op_times(build: Build, float_nodes: list[str], result: ProfileResult) -> list[MixedFloatOp]:
    """Each op a mixed build kept in float, with its profiled time per method (the op keeps the node's
    output tensor name) and why the search kept it (the report's `quantization.mixed`). Times need
    `--mode per-node`; in deployed mode they are None."""
    info = build.tflite
    index = {info.tensors[op.outputs[0]].name: op for op in info.ops if op.outputs}
    mixed = build.report.quantization.mixed
    reasons = {r.node: r.reason for r in (mixed.kept_out_of_int8 or [])} if mixed is not None else {}
    rows = []
    for node in float_nodes:
        op = index.get(node)
        if op is None:
            continue
        times = {
            m.method: next((o.time_us for o in m.ops if o.index == op.index), None) for m in result.methods
        }
        rows.append(
            MixedFloatOp(node=node, op=op.op, index=op.index, time_us=times, reason=reasons.get(node))
        )
    return rows
