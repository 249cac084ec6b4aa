"""`edgecomp convert`: one orchestration for every source format.

A per-format backend (toolchain/sources/keras.py, toolchain/sources/onnx.py) loads the model with its
tokenizer and labels, runs the steps (Keras only), converts, gives the fp32 baseline and the post-step
float model, and evaluates. This module times the stages, checks the quantization result, runs the gates
(toolchain/evaluation/gates.py), assembles the typed report and writes the build directory: in one place,
so the two
formats cannot drift apart. Nothing is written unless every stage runs. A candidate that runs but misses a
gate is written in full to `build/<name>.rejected/` (never over build/<name>, which stays as it was) with a
`rejected` section in its report, and `BuildRejected` (exit 1) carries that report for the CLI to print; a
later build that passes removes the stale `.rejected/` it made (the marker says edgecomp made it).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from toolchain import __version__
from toolchain.base.atomic import check_output_dir, remove_own_dir
from toolchain.base.errors import BuildRejected, ConversionError, RecipeError
from toolchain.base.progress import Progress, SilentProgress
from toolchain.base.types import CostMost
from toolchain.recipe.schema import Recipe
from toolchain.report.evaluation import EvaluationSection
from toolchain.report.model import RejectedSection, Report
from toolchain.tokenizers.interface import TextTokenizer

# Called after each step with the step's report (its `float_test_accuracy` is the post-step float model on
# the evaluation split) and the source model's accuracy on that split; it may raise to stop the build (the
# search stops a hopeless trial this way, before quantization and evaluation).
StepHook = Callable[[dict[str, Any], float | None], None]


class SourceBackend(Protocol):
    """What the orchestration asks a source format for."""

    source_format: str
    strict_int8: bool  # refuse an int8 build that kept float kernels
    tokenizer: TextTokenizer | None  # None: an ONNX float conversion that came without one
    labels: list[str]  # empty for an embedding model
    task: str  # resolved: classification, embedding or retrieval (recipe source.task may say auto)

    def run_steps(
        self, progress: Progress, on_step: StepHook | None = None
    ) -> tuple[list[dict], list[str]]: ...

    def convert(self, progress: Progress) -> tuple[bytes, dict, list[str]]: ...

    def fp32(self) -> bytes: ...

    def float_model(self, fp32: bytes) -> bytes | None: ...

    def float_keras(self) -> Any: ...  # the post-step Keras model (None: no steps)

    def source_section(self, fp32: bytes) -> dict[str, Any]: ...

    def tokenizer_section(self) -> dict[str, Any]: ...

    def evaluate(self, tflite: bytes, progress: Progress) -> tuple[dict, list[str]]: ...


@dataclass
class BuildResult:
    build_dir: Path
    model_path: Path
    report: Report
    removed_rejected: bool = False  # a stale <name>.rejected/ of this build was removed


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(p.read_bytes())
    else:
        h.update(path.read_bytes())
    return h.hexdigest()


def source_format(recipe: Recipe) -> str:
    """keras, savedmodel, onnx, tflite or scores: the recipe's source.format, or what is on disk."""
    from converters.keras_tflite import detect_format
    from toolchain.tokenizers.sources import FOLDER_MODEL

    src, fmt = recipe.source.path, recipe.source.format
    if fmt == "auto":  # a Hugging Face-style folder (model.onnx inside) is an ONNX source
        is_folder = src.is_dir() and (src / FOLDER_MODEL).is_file() and not (src / "saved_model.pb").is_file()
        foreign = {".tflite": "tflite", ".jsonl": "scores"}.get(src.suffix.lower())
        fmt = "onnx" if is_folder else foreign or detect_format(src)
    return fmt


def source_backend(recipe: Recipe) -> SourceBackend:
    src, fmt = recipe.source.path, source_format(recipe)
    if recipe.source.task == "retrieval" and fmt not in ("keras", "savedmodel"):
        raise RecipeError(
            f"source.task retrieval takes a Keras model (one score per catalog item); {src.name} is {fmt}",
            hint="convert the retrieval model from Keras (.keras / SavedModel), or drop --task retrieval",
        )
    distill_first = bool(recipe.steps) and recipe.steps[0].kind == "distill"
    if fmt in ("onnx", "tflite", "scores") and distill_first:
        from toolchain.sources.student import StudentBackend

        return StudentBackend(recipe)
    if fmt in ("tflite", "scores"):
        raise RecipeError(
            f"a {'.tflite' if fmt == 'tflite' else 'teacher scores'} source can only teach a student: "
            f"{src.name} is not converted itself",
            hint="start the steps with `- kind: distill` (a student is trained from it), "
            "or convert the original Keras/ONNX model",
        )
    if fmt == "onnx":
        from toolchain.sources.onnx import OnnxBackend

        return OnnxBackend(recipe)
    from toolchain.sources.keras import KerasBackend

    return KerasBackend(recipe)


def _quantization(recipe: Recipe, backend: SourceBackend, info: Any, quant: dict) -> dict:
    from converters.tflite_model import non_int8_weight_ops

    q = recipe.quantization
    if q.mode == "int8" and "int8_mac_share" not in quant:
        from toolchain.quantization.mixed import int8_mac_share

        quant["int8_mac_share"] = int8_mac_share(info)
    if q.float_fallback_ops:
        quant.update(float_fallback_ops=list(q.float_fallback_ops), full_integer=False)
    elif q.mode == "int8" and backend.strict_int8:
        quant["non_int8_weight_ops"] = non_int8_weight_ops(info)
        if quant["non_int8_weight_ops"]:
            raise ConversionError(
                f"int8 model still has float kernels: {quant['non_int8_weight_ops'][:3]}",
                hint="this op has no int8 kernel; use int16x8 or dynamic",
            )
    return quant


def _rejection(
    recipe: Recipe, backend: SourceBackend, evaluation: EvaluationSection, texts: list[str]
) -> RejectedSection | None:
    """None when every gate passes, else the `rejected` section naming the gate, the value and the stage
    that cost it; a full-int8 build that quantization cost names the ops that lose most."""
    from toolchain.build import rejected_dir
    from toolchain.evaluation.gates import failed_gate, rejection

    miss = failed_gate(recipe.evaluation, evaluation, texts)
    if miss is None:
        return None
    kinds = [s.kind for s in recipe.steps]
    section = rejection(miss, evaluation, kinds, str(rejected_dir(recipe.build_dir)))
    diagnose = getattr(backend, "int8_diagnosis", None)
    q = recipe.quantization
    quantization_cost = section.cost_most == CostMost.QUANTIZATION
    if quantization_cost and q.mode == "int8" and not q.float_fallback_ops and diagnose:
        worst = diagnose()
        if worst:
            named = ", ".join(f"{op} {node!r} (1-cos {d:.3g})" for op, node, d in worst)
            section.message += f"; quantized alone, these ops lose most: {named}"
            section.int8_worst_ops = [tuple(w) for w in worst]
    return section


def _float_model_section(recipe: Recipe, saved: bool) -> dict[str, Any] | None:
    """What float.tflite / float.keras hold in a build with steps (None: no steps, the source is it)."""
    if not recipe.steps or not saved:
        return None
    kept = [f"{i} {s.kind}" for i, s in enumerate(recipe.steps) if s.kind != "qat"]
    section: dict[str, Any] = {"tflite": "float.tflite", "keras": "float.keras", "after_steps": kept}
    if len(kept) < len(recipe.steps):
        section["note"] = "before the qat step: a QAT model's fake-quant nodes have no float export"
    return section


def build(recipe: Recipe, progress: Progress | None = None, on_step: StepHook | None = None) -> BuildResult:
    """The whole `edgecomp convert`: nothing is written unless every stage succeeds (see StepHook)."""
    from converters.tflite_model import gzip_size, parse_tflite
    from toolchain.build import rejected_dir, sha256_bytes, write_build

    progress = progress or SilentProgress()
    check_output_dir(recipe.build_dir)  # refuse the user's folder before minutes of training, not after
    if any(v is not None for v in recipe.evaluation.model_dump().values()):
        check_output_dir(rejected_dir(recipe.build_dir))  # where a candidate that misses a gate goes
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def lap(name: str) -> None:
        timings[name] = time.perf_counter() - t0 - sum(timings.values())

    backend = source_backend(recipe)
    if recipe.source.task != backend.task:  # the saved recipe records the resolved task
        recipe = recipe.model_copy(update={"source": recipe.source.model_copy(update={"task": backend.task})})
    lap("load")
    step_reports, warnings = backend.run_steps(progress, on_step)
    lap("steps")
    tflite, quant, cal_warnings = backend.convert(progress)
    warnings += cal_warnings
    if "mixed_float_nodes" in quant:  # the saved recipe replays the plan: same bytes, no search
        from toolchain.recipe.schema import MixedSpec

        plan = MixedSpec(float_nodes=quant.pop("mixed_float_nodes"))
        recipe = recipe.model_copy(
            update={"quantization": recipe.quantization.model_copy(update={"mixed": plan})}
        )
    info = parse_tflite(tflite)
    quant = _quantization(recipe, backend, info, quant)
    fp32 = backend.fp32()
    lap("convert")
    evaluation_data, texts = backend.evaluate(tflite, progress)
    evaluation = EvaluationSection.model_validate(evaluation_data)
    lap("evaluate")
    rejected = _rejection(recipe, backend, evaluation, texts)
    float_tflite, float_keras = backend.float_model(fp32), backend.float_keras()
    report = Report.model_validate(
        {
            "edgecomp_version": __version__,
            "name": recipe.name,
            "task": backend.task,
            "model_sha256": sha256_bytes(tflite),
            "source": {
                "path": str(recipe.source.path),
                "format": backend.source_format,
                "sha256": sha256_file(recipe.source.path),
                **backend.source_section(fp32),
                "fp32_tflite_bytes": len(fp32),
                "fp32_tflite_gzip_bytes": gzip_size(fp32),
            },
            "tokenizer": backend.tokenizer_section(),
            "labels": backend.labels,
            "steps": step_reports,
            "quantization": quant,
            "model": info.summary(),
            "ratios_vs_fp32": {
                "size": round(len(fp32) / info.size_bytes, 2),
                "gzip": round(gzip_size(fp32) / info.gzip_bytes, 2),
            },
            "evaluation": evaluation,
            "warnings": warnings,
            "timings_s": {k: round(v, 2) for k, v in timings.items()},
            "float_model": _float_model_section(recipe, float_keras is not None),
            "rejected": rejected,
        }
    )
    labels = backend.labels or None
    final = rejected_dir(recipe.build_dir) if rejected else recipe.build_dir
    build_dir, report = write_build(
        recipe, tflite, report, backend.tokenizer, labels, float_tflite, float_keras, final
    )
    if rejected:  # the good build (if any) is untouched; the candidate is beside it
        raise BuildRejected(rejected.message, rejected.hint, report, build_dir)
    stale = remove_own_dir(rejected_dir(recipe.build_dir))  # an earlier rejected candidate of this build
    return BuildResult(build_dir, build_dir / "model.tflite", report, stale)
