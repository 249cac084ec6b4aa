"""`edgecomp convert`: one orchestration for every source format.

The source is loaded once (toolchain/sources/loaded.py: model, tokenizer, labels, splits, calibration
sample) and handed to a thin per-format backend (toolchain/sources/keras.py, onnx.py, student.py) that
runs the steps (Keras only), converts and evaluates. The stages exchange typed values
(toolchain/sources/backend.py: StepsResult -> Conversion -> Evaluation), passed along here; no backend
keeps state between calls. This module times the stages, checks the quantization result, runs the gates
(toolchain/evaluation/gates.py), assembles the typed report and writes the build directory: in one place,
so the formats cannot drift apart. `build()` returns the `Build` as written (toolchain/build.py, the
object `load_build` reads), so no caller reads the directory back. Nothing is written unless every stage
runs. A candidate that runs but misses a gate is written in full to `build/<name>.rejected/` (never over
build/<name>, which stays as it was) with a `rejected` section in its report, and `BuildRejected` (exit 1)
carries that report for the CLI to print; a later build that passes removes the stale `.rejected/` it
made (the marker says edgecomp made it) and announces it (toolchain/base/notices.py).
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

from converters.tflite_model import gzip_size, non_int8_weight_ops, parse_tflite
from toolchain import __version__
from toolchain.base.atomic import check_output_dir, remove_own_dir
from toolchain.base.errors import BuildRejected, ConversionError, RecipeError
from toolchain.base.notices import announce
from toolchain.base.progress import Progress, SilentProgress
from toolchain.base.types import CostMost, QuantMode, StepKind
from toolchain.build import Build, rejected_dir, sha256_bytes, write_build
from toolchain.evaluation.gates import AUTO_PRESET, failed_gates, gate_results, rejection, unjudged
from toolchain.evaluation.teacher_gates import TEACHER_DEFAULTS, effective_gates
from toolchain.quantization.mixed import int8_mac_share
from toolchain.recipe.presets import PRESETS, preset_plan
from toolchain.recipe.schema import EvaluationSpec, Int4Spec, MixedSpec, Recipe
from toolchain.recipe.students import StudentSpec
from toolchain.report.distill_auto import DistillAutoSection
from toolchain.report.model import (
    FloatModelSection,
    ModelSection,
    Ratios,
    RejectedSection,
    Report,
    SourceSection,
)
from toolchain.report.quantization import Int4Section, QuantizationSection
from toolchain.sources.backend import (
    Conversion,
    Evaluation,
    SourceBackend,
    StepHook,
    StepsResult,
    tokenizer_section,
)
from toolchain.sources.keras import KerasBackend
from toolchain.sources.loaded import LoadedSource, load_source
from toolchain.sources.onnx import OnnxBackend
from toolchain.sources.student import StudentBackend

log = logging.getLogger(__name__)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(p.read_bytes())
    else:
        h.update(path.read_bytes())
    return h.hexdigest()


def source_backend(source: LoadedSource) -> SourceBackend:
    """The thin backend for what was loaded: a foreign teacher's student, an ONNX graph, or Keras."""
    keras = source.teacher is not None or source.format != "onnx"
    if keras and source.recipe.quantization.smooth is not None:  # before minutes of training, not after
        raise RecipeError(
            "quantization.smooth rewrites an ONNX graph's dense layers before quantization; this build "
            f"converts a Keras model ({'a student' if source.teacher is not None else source.format})",
            hint="drop quantization.smooth (--smooth): a Keras model or a student trains its own activations",
        )
    if source.teacher is not None:
        return StudentBackend(source)
    if source.format == "onnx":
        return OnnxBackend(source)
    return KerasBackend(source)


def _quantization(
    recipe: Recipe, backend: SourceBackend, info: Any, quant: QuantizationSection
) -> QuantizationSection:
    """The converted model's checks added to the backend's section: its int8 MAC share, and for a strict
    full-int8 build the ops that kept float kernels (an error)."""
    q, update = recipe.quantization, {}
    if q.mode == QuantMode.INT8 and quant.int8_mac_share is None:
        update["int8_mac_share"] = int8_mac_share(info)
    if q.float_fallback_ops:
        update.update(float_fallback_ops=list(q.float_fallback_ops), full_integer=False)
    elif q.mode == QuantMode.INT8 and backend.strict_int8:
        update["non_int8_weight_ops"] = floats = non_int8_weight_ops(info)
        if floats:
            raise ConversionError(
                f"int8 model still has float kernels: {floats[:3]}",
                hint="this op has no int8 kernel; use int16x8 or dynamic",
            )
    return quant.model_copy(update=update)


def _rejection(
    recipe: Recipe,
    backend: SourceBackend,
    steps: StepsResult,
    conversion: Conversion,
    evaluation: Evaluation,
    gates: tuple[EvaluationSpec, str],
    preset: str | None = None,
) -> RejectedSection | None:
    """None when every gate passes, else the `rejected` section naming the gate (and the others missed),
    the value and the stage that cost it; a full-int8 build that quantization cost names the ops that lose
    most. `gates`: the gates and their origin (gates.effective_gates); `preset`: the student's preset, when
    known better than `_preset_of` (distill-auto's chosen student is a concrete one)."""
    for line in unjudged(gates[0], evaluation.section):
        announce(line)
    misses = failed_gates(gates[0], evaluation.section, evaluation.texts)
    if not misses:
        return None
    kinds = [s.kind for s in recipe.steps]
    where = str(rejected_dir(recipe.build_dir))
    section = rejection(
        misses[0], evaluation.section, kinds, where, misses[1:], gates[1], preset or _preset_of(recipe)
    )
    q = recipe.quantization
    if section.cost_most == CostMost.QUANTIZATION and q.mode == QuantMode.INT8 and not q.float_fallback_ops:
        worst = backend.int8_diagnosis(steps, conversion)
        if worst:
            named = ", ".join(f"{op} {node!r} (1-cos {d:.3g})" for op, node, d in worst)
            section.message += f"; quantized alone, these ops lose most: {named}"
            section.int8_worst_ops = [tuple(w) for w in worst]
    return section


def _preset_of(recipe: Recipe) -> str | None:
    """The preset whose distillation student the recipe's first step trains (None: another student)."""
    first = recipe.steps[0] if recipe.steps else None
    if first is None or first.kind != StepKind.DISTILL or first.student is None:
        return None
    if first.student == "auto":
        return AUTO_PRESET
    student = first.student.model_dump()
    for name in PRESETS:
        plan = preset_plan(name)["steps"]
        if not plan or plan[0]["kind"] != StepKind.DISTILL or not isinstance(plan[0].get("student"), dict):
            continue
        if StudentSpec.model_validate(plan[0]["student"]).model_dump() == student:  # with its defaults
            return name
    return None


def _float_model_section(recipe: Recipe, saved: bool) -> FloatModelSection | None:
    """What float.tflite / float.keras hold in a build with steps (None: no steps, the source is it)."""
    if not recipe.steps or not saved:
        return None
    kept = [f"{i} {s.kind}" for i, s in enumerate(recipe.steps) if s.kind != StepKind.QAT]
    section = FloatModelSection(tflite="float.tflite", keras="float.keras", after_steps=kept)
    if len(kept) < len(recipe.steps):
        section.note = "before the qat step: a QAT model's fake-quant nodes have no float export"
    return section


def _with_plan(recipe: Recipe, plan: MixedSpec | None) -> Recipe:
    """The recipe to save: a mixed-precision plan goes in, so it replays (same bytes, no search)."""
    if plan is None:
        return recipe
    return recipe.model_copy(update={"quantization": recipe.quantization.model_copy(update={"mixed": plan})})


def _with_int4_plan(recipe: Recipe, section: Int4Section | None) -> Recipe:
    """The recipe to save: an int4 plan goes in, so it replays (same bytes, no search)."""
    if section is None:
        return recipe
    spec = recipe.quantization.int4 or Int4Spec()
    spec = spec.model_copy(update={"weights": {w.weight: w.width for w in section.weights}})
    return recipe.model_copy(update={"quantization": recipe.quantization.model_copy(update={"int4": spec})})


def build(
    recipe: Recipe,
    progress: Progress | None = None,
    on_step: StepHook | None = None,
    distill_auto: DistillAutoSection | None = None,
) -> Build:
    """The whole `edgecomp convert`: nothing is written unless every stage succeeds (see StepHook).

    Returns the Build as written (what `load_build` would read back). A candidate that misses a gate
    raises BuildRejected; a stale `<name>.rejected/` of an earlier run is removed and announced.
    `distill_auto`: the students `student: auto` tried before choosing this one (toolchain/search/auto.py)."""
    progress = progress or SilentProgress()
    check_output_dir(recipe.build_dir)  # refuse the user's folder before minutes of training, not after
    if any(v is not None for v in recipe.evaluation.model_dump().values()):
        check_output_dir(rejected_dir(recipe.build_dir))  # where a candidate that misses a gate goes
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def lap(name: str) -> None:
        timings[name] = time.perf_counter() - t0 - sum(timings.values())
        log.debug("%s: %.1f s", name, timings[name])

    source = load_source(recipe)
    backend = source_backend(source)
    if recipe.source.task != source.task:  # the saved recipe records the resolved task
        recipe = recipe.model_copy(update={"source": recipe.source.model_copy(update={"task": source.task})})
    gates = effective_gates(recipe.evaluation, source.task, source.teacher is not None)
    if gates[1] == TEACHER_DEFAULTS:  # a foreign teacher's student is gated even when the recipe is not
        check_output_dir(rejected_dir(recipe.build_dir))
    lap("load")
    steps = backend.run_steps(progress, on_step)
    lap("steps")
    conversion = backend.convert(steps, progress)
    warnings = steps.warnings + (source.calibration.warnings if source.calibration else [])
    recipe = _with_plan(recipe, conversion.mixed_plan)
    recipe = _with_int4_plan(recipe, conversion.quantization.int4)
    info = parse_tflite(conversion.tflite)
    quant = _quantization(recipe, backend, info, conversion.quantization)
    fp32 = conversion.fp32
    lap("convert")
    evaluation = backend.evaluate(steps, conversion, progress)
    lap("evaluate")
    auto = AUTO_PRESET if distill_auto is not None else None
    rejected = _rejection(recipe, backend, steps, conversion, evaluation, gates, auto)
    if source.teacher is not None and evaluation.section.vs_source_float is not None:
        evaluation.section.gates = gate_results(gates[0], evaluation.section, gates[1])
    float_tflite, float_keras = backend.float_model(steps, conversion)
    report = Report(
        edgecomp_version=__version__,
        name=recipe.name,
        task=source.task,
        model_sha256=sha256_bytes(conversion.tflite),
        source=SourceSection(
            path=str(recipe.source.path),
            format=source.format,
            sha256=sha256_file(recipe.source.path),
            **backend.source_section(conversion),
            fp32_tflite_bytes=len(fp32),
            fp32_tflite_gzip_bytes=gzip_size(fp32),
        ),
        hub=source.hub,
        tokenizer=tokenizer_section(steps.tokenizer, source.seq_len),
        labels=steps.labels,
        steps=steps.reports,
        quantization=quant,
        model=ModelSection.model_validate(info.summary()),
        ratios_vs_fp32=Ratios(
            size=round(len(fp32) / info.size_bytes, 2), gzip=round(gzip_size(fp32) / info.gzip_bytes, 2)
        ),
        evaluation=evaluation.section,
        warnings=warnings,
        timings_s={k: round(v, 2) for k, v in timings.items()},
        float_model=_float_model_section(recipe, float_keras is not None),
        rejected=rejected,
        distill_auto=distill_auto,
    )
    labels = steps.labels or None
    final = rejected_dir(recipe.build_dir) if rejected else recipe.build_dir
    build_dir, report = write_build(
        recipe, conversion.tflite, report, steps.tokenizer, labels, float_tflite, float_keras, final
    )
    if rejected:  # the good build (if any) is untouched; the candidate is beside it
        raise BuildRejected(rejected.message, rejected.hint, report, build_dir)
    if remove_own_dir(rejected_dir(recipe.build_dir)):  # an earlier rejected candidate of this build
        announce(f"removed the stale {build_dir.name}.rejected/ of an earlier run")
    return Build(build_dir, recipe, report, steps.tokenizer, labels, conversion.tflite, info)
