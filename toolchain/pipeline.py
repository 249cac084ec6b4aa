"""`edgecomp convert`: one orchestration for every source format.

A per-format backend (toolchain/backend_keras.py, toolchain/backend_onnx.py) loads the model with its
tokenizer and labels, runs the steps (Keras only), converts, gives the fp32 baseline and evaluates. This
module times the stages, checks the quantization result, runs the gates (toolchain/gates.py), assembles
the typed report and writes the build directory: in one place, so the two formats cannot drift apart.
Nothing is written unless every stage succeeds.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from toolchain import __version__
from toolchain.base.atomic import check_output_dir
from toolchain.base.errors import ConversionError, RecipeError
from toolchain.base.progress import Progress, SilentProgress
from toolchain.recipe import Recipe
from toolchain.tokenizers.interface import TextTokenizer


class SourceBackend(Protocol):
    """What the orchestration asks a source format for."""

    source_format: str
    strict_int8: bool  # refuse an int8 build that kept float kernels
    tokenizer: TextTokenizer | None  # None: an ONNX float conversion that came without one
    labels: list[str]  # empty for an embedding model
    task: str  # resolved: classification or embedding (recipe source.task may say auto)

    def run_steps(self, progress: Progress) -> tuple[list[dict], list[str]]: ...

    def convert(self, progress: Progress) -> tuple[bytes, dict, list[str]]: ...

    def fp32(self) -> bytes: ...

    def float_model(self, fp32: bytes) -> bytes | None: ...

    def source_section(self, fp32: bytes) -> dict[str, Any]: ...

    def tokenizer_section(self) -> dict[str, Any]: ...

    def evaluate(self, tflite: bytes, progress: Progress) -> tuple[dict, list[str]]: ...


@dataclass
class BuildResult:
    build_dir: Path
    model_path: Path
    report: dict[str, Any]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(p.read_bytes())
    else:
        h.update(path.read_bytes())
    return h.hexdigest()


def source_backend(recipe: Recipe) -> SourceBackend:
    from converters.keras_tflite import detect_format
    from toolchain.tokenizers.sources import FOLDER_MODEL

    src, fmt = recipe.source.path, recipe.source.format
    if fmt == "auto":  # a Hugging Face-style folder (model.onnx inside) is an ONNX source
        is_folder = src.is_dir() and (src / FOLDER_MODEL).is_file() and not (src / "saved_model.pb").is_file()
        foreign = {".tflite": "tflite", ".jsonl": "scores"}.get(src.suffix.lower())
        fmt = "onnx" if is_folder else foreign or detect_format(src)
    distill_first = bool(recipe.steps) and recipe.steps[0].kind == "distill"
    if fmt in ("onnx", "tflite", "scores") and distill_first:
        from toolchain.backend_student import StudentBackend

        return StudentBackend(recipe)
    if fmt in ("tflite", "scores"):
        raise RecipeError(
            f"a {'.tflite' if fmt == 'tflite' else 'teacher scores'} source can only teach a student: "
            f"{src.name} is not converted itself",
            hint="start the steps with `- kind: distill` (a student is trained from it), "
            "or convert the original Keras/ONNX model",
        )
    if fmt == "onnx":
        from toolchain.backend_onnx import OnnxBackend

        return OnnxBackend(recipe)
    from toolchain.backend_keras import KerasBackend

    return KerasBackend(recipe)


def _quantization(recipe: Recipe, backend: SourceBackend, info: Any, quant: dict) -> dict:
    from converters.tflite_model import non_int8_weight_ops

    q = recipe.quantization
    if q.mode == "int8" and "int8_mac_share" not in quant:
        from toolchain.mixed import int8_mac_share

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


def _gates(recipe: Recipe, backend: SourceBackend, evaluation: dict, texts: list[str]) -> None:
    """The recipe's gates; a failed full-int8 build names the ops that lose most and suggests mixed."""
    from toolchain.base.errors import GateFailed
    from toolchain.gates import check_gates

    try:
        check_gates(recipe.evaluation, evaluation, texts)
    except GateFailed as err:
        diagnose = getattr(backend, "int8_diagnosis", None)
        if recipe.quantization.mode != "int8" or recipe.quantization.float_fallback_ops or diagnose is None:
            raise
        worst = diagnose()
        if not worst:
            raise
        named = ", ".join(f"{op} {node!r} (1-cos {d:.3g})" for op, node, d in worst)
        raise GateFailed(
            f"{err.message}; quantized alone, these ops lose most: {named}",
            hint="quantization.mode: mixed (--quantize mixed) keeps the damaging ops in float, "
            "chosen for this model",
        ) from None


def build(recipe: Recipe, progress: Progress | None = None) -> BuildResult:
    """The whole `edgecomp convert`: nothing is written unless every stage succeeds."""
    from converters.tflite_model import gzip_size, parse_tflite
    from toolchain.build import sha256_bytes, write_build
    from toolchain.report_model import Report

    progress = progress or SilentProgress()
    check_output_dir(recipe.build_dir)  # refuse the user's folder before minutes of training, not after
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def lap(name: str) -> None:
        timings[name] = time.perf_counter() - t0 - sum(timings.values())

    backend = source_backend(recipe)
    if recipe.source.task != backend.task:  # the saved recipe records the resolved task
        recipe = recipe.model_copy(update={"source": recipe.source.model_copy(update={"task": backend.task})})
    lap("load")
    step_reports, warnings = backend.run_steps(progress)
    lap("steps")
    tflite, quant, cal_warnings = backend.convert(progress)
    warnings += cal_warnings
    if "mixed_float_nodes" in quant:  # the saved recipe replays the plan: same bytes, no search
        from toolchain.recipe import MixedSpec

        plan = MixedSpec(float_nodes=quant.pop("mixed_float_nodes"))
        recipe = recipe.model_copy(
            update={"quantization": recipe.quantization.model_copy(update={"mixed": plan})}
        )
    info = parse_tflite(tflite)
    quant = _quantization(recipe, backend, info, quant)
    fp32 = backend.fp32()
    lap("convert")
    evaluation, texts = backend.evaluate(tflite, progress)
    lap("evaluate")
    _gates(recipe, backend, evaluation, texts)
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
        }
    )
    labels = backend.labels or None
    build_dir, report = write_build(
        recipe, tflite, report, backend.tokenizer, labels, backend.float_model(fp32)
    )
    return BuildResult(build_dir, build_dir / "model.tflite", report.to_dict())
