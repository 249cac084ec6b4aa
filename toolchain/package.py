"""`edgecomp package`: a validated build -> dist/<name>-<version>/ that an app team drops into its project.

mediapipe / android-assets: the int8 model gets float score outputs (one exact DEQUANTIZE) and MediaPipe
Tasks metadata (regex tokenizer + vocab, labels, general info), and MediaPipe's own TextClassifier must
reproduce the toolchain's top-1 on every query of the test split. A build without labels.txt is an
embedding model: TextEmbedder metadata, and its vectors must equal the toolchain's. edge: the validated
bytes as they are.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from converters.tflite_model import TFLiteModel, parse_tflite
from toolchain.base.errors import DataError, GateFailed, InputFileError
from toolchain.base.progress import Progress, SilentProgress
from toolchain.recipe import Recipe, recipe_from_dict

FORMATS = ("mediapipe", "android-assets", "edge")


@dataclass(frozen=True)
class PackageOptions:
    """Flags; None means: take it from the build recipe's `package` section."""

    format: str | None = None
    name: str | None = None
    version: str | None = None
    description: str | None = None
    author: str | None = None
    license: str | None = None
    min_confidence_accuracy: float | None = None
    out_dir: Path = Path("dist")
    allow_failed_validation: bool = False
    timeout_s: float = 300.0


@dataclass
class Build:
    """A build directory as written by `edgecomp convert` (+ validate)."""

    dir: Path
    model_bytes: bytes
    model: TFLiteModel
    report: dict[str, Any]
    report_bytes: bytes
    recipe: Recipe
    recipe_bytes: bytes
    labels: list[str] | None  # None: an embedding model (no labels.txt)

    @property
    def vocab_path(self) -> Path:
        return self.dir / "vocab.txt"

    @property
    def task(self) -> str:
        return "classifier" if self.labels is not None else "embedder"


@dataclass
class PackageResult:
    bundle_dir: Path
    zip_path: Path
    manifest: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def load_build(build_dir: Path) -> Build:
    from toolchain.data import load_labels

    build_dir = Path(build_dir)
    if build_dir.suffix == ".tflite":
        raise InputFileError(
            f"{build_dir} is a bare model", hint="package a build directory (edgecomp convert writes one)"
        )
    for name in ("model.tflite", "report.json", "recipe.yaml", "vocab.txt"):
        if not (build_dir / name).is_file():
            raise InputFileError(
                f"{build_dir} is not a complete build: {name} is missing",
                hint="run `edgecomp convert --recipe ...` to make the build",
            )
    model_bytes = (build_dir / "model.tflite").read_bytes()
    report_bytes = (build_dir / "report.json").read_bytes()
    recipe_bytes = (build_dir / "recipe.yaml").read_bytes()
    return Build(
        dir=build_dir,
        model_bytes=model_bytes,
        model=parse_tflite(model_bytes, origin=str(build_dir / "model.tflite")),
        report=json.loads(report_bytes),
        report_bytes=report_bytes,
        recipe=recipe_from_dict(yaml.safe_load(recipe_bytes), origin=str(build_dir / "recipe.yaml")),
        recipe_bytes=recipe_bytes,
        labels=load_labels(build_dir / "labels.txt") if (build_dir / "labels.txt").is_file() else None,
    )


def validation_status(report: dict[str, Any]) -> dict[str, Any] | str:
    """The build's `validation` section (devices/validate.py) reduced to what the manifest records."""
    section = report.get("validation")
    if not section:
        return "not run"
    devices = {
        name: {
            "passed": bool(dev.get("passed")),
            "runtime": dev.get("runtime"),
            "arch": dev.get("arch"),
            "failures": [
                f"{c['name']}: {c['detail']}" for c in dev.get("checks", []) if c["status"] == "fail"
            ],
        }
        for name, dev in sorted(section.get("devices", {}).items())
    }
    passed = bool(section.get("passed")) and all(d["passed"] for d in devices.values())
    return {"status": "passed" if passed else "failed", "devices": devices}


def check_packageable(build: Build, allow_failed_validation: bool) -> tuple[dict[str, Any] | str, list[str]]:
    """Refuse Flex/custom ops, a label count that is not the output size, and failed validation."""
    flex = [op for op in build.model.custom_ops() if op.startswith("Flex")]
    if flex:
        raise GateFailed(
            f"the model uses Select-TF (Flex) ops: {', '.join(flex)}; app runtimes ship builtin ops only",
            hint="re-convert without SELECT_TF_OPS (quantization.mode int8 uses TFLITE_BUILTINS_INT8)",
        )
    custom = build.model.custom_ops()
    if custom:
        raise GateFailed(
            f"the model uses custom ops: {', '.join(custom)}; MediaPipe/LiteRT do not have their kernels",
            hint="re-convert with builtin ops only",
        )
    out = build.model.tensors[build.model.outputs[0]]
    n_out = int(out.shape[-1]) if out.shape else 0
    if build.labels is not None and n_out != len(build.labels):
        raise DataError(
            f"labels.txt has {len(build.labels)} labels but the model outputs {n_out} scores",
            hint="use the labels file the model was trained with, one label per output, in order",
        )
    status = validation_status(build.report)
    warnings = []
    if status == "not run":
        warnings.append(
            "validation not run: the manifest says so (run `edgecomp validate BUILD --device ...`)"
        )
    elif status["status"] == "failed":
        failed = [
            f"{d}: {'; '.join(v['failures'][:2]) or 'failed'}"
            for d, v in status["devices"].items()
            if not v["passed"]
        ]
        if not allow_failed_validation:
            raise GateFailed(
                f"validation failed on {'; '.join(failed)}",
                hint="fix the build, or pass --allow-failed-validation (recorded in the manifest)",
            )
        status["override"] = True
        warnings.append(f"packaging a build whose validation failed ({'; '.join(failed)})")
    return status, warnings


def _split_path(build: Build, split: str) -> Path | None:
    path = getattr(build.recipe.data, split)
    if path is None:
        return None
    if not Path(path).is_file():
        raise InputFileError(
            f"the build's {split} split is not found: {path}",
            hint="run edgecomp package from the directory you ran convert in (paths are as recorded)",
        )
    return Path(path)


def _resolved(build: Build, opts: PackageOptions) -> dict[str, Any]:
    spec = build.recipe.package
    values = {
        "format": opts.format or spec.format,
        "name": opts.name or spec.name or build.recipe.name,
        "version": opts.version or spec.version,
        "description": opts.description or spec.description,
        "author": opts.author or spec.author,
        "license": opts.license or spec.license,
        "min_confidence_accuracy": opts.min_confidence_accuracy or spec.min_confidence_accuracy,
    }
    if values["format"] not in FORMATS:
        raise DataError(f"unknown package format {values['format']!r}", hint=f"one of: {', '.join(FORMATS)}")
    # Check flag values with the recipe's own rules (a name/version must be a safe file name).
    from toolchain.recipe import apply_overrides

    keys = ("name", "version", "min_confidence_accuracy")
    apply_overrides(build.recipe, {f"package.{k}": values[k] for k in keys}, origin="package flags")
    return values


def package(
    build_dir: Path, opts: PackageOptions = PackageOptions(), progress: Progress | None = None
) -> PackageResult:
    """Package a build; raises (and writes nothing) on any refusal or parity failure."""
    from toolchain.package_bundle import run_package

    progress = progress or SilentProgress()
    t0 = time.perf_counter()
    build = load_build(build_dir)
    values = _resolved(build, opts)
    validation, warnings = check_packageable(build, opts.allow_failed_validation)
    splits = {s: _split_path(build, s) for s in ("val", "test")}
    if splits["test"] is None and splits["val"] is None:
        raise DataError("the build's recipe has no test or val split", hint="add data.test to the recipe")
    with tempfile.TemporaryDirectory(prefix="edgecomp-package-") as tmp:
        result = run_package(build, values, validation, splits, opts, Path(tmp), progress)
    result.warnings[:0] = warnings
    result.seconds = round(time.perf_counter() - t0, 2)
    return result
