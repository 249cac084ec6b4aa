"""`edgecomp package`: a validated build -> dist/<name>-<version>/ that an app team drops into its project.

mediapipe / android-assets: the int8 model gets float score outputs (one exact DEQUANTIZE) and MediaPipe
Tasks metadata (regex tokenizer + vocab with case variants, or BERT: WordPiece vocab, int32 ids / mask /
segment_ids), labels, general info; MediaPipe's own TextClassifier must reproduce the toolchain's top-1 on
every query of the test split (package/mediapipe.py). An embedding build (source.task: embedding, no
labels.txt): TextEmbedder metadata, and its vectors must equal the toolchain's (on the test split, else
val, else a calibration-like draw of its calibration or train queries). A retrieval build
(labels = product ids): the classifier path, and MediaPipe with max_results 10 must list the toolchain's
top-10 ids in order on every query. A WordPiece build also gets a train-vs-device tokenizer parity
report, gated by package.max_tokenizer_mismatch (package/tokenizer.py).
edge: the validated bytes as they are.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from converters.metadata import MEDIAPIPE_RUNTIMES, MEDIAPIPE_VERSION
from converters.tflite_int4 import blockwise_weights
from toolchain.base.errors import DataError, GateFailed
from toolchain.base.progress import Progress, SilentProgress
from toolchain.base.types import PackageFormat, ValidationStatus
from toolchain.build import Build, load_build
from toolchain.package.bundle import run_package
from toolchain.package.manifest_model import DeviceStatus, ManifestValidation
from toolchain.package.types import FORMATS, PackageOptions, PackageResult, PackageSplits, PackageValues
from toolchain.recipe.compose import apply_overrides


def validation_status(build: Build) -> ManifestValidation | None:
    """The build's `validation` section (toolchain/device_stages.py) reduced to what the manifest records
    (None: validate was not run)."""
    section = build.report.validation
    if section is None:
        return None
    devices = {
        name: DeviceStatus(
            passed=dev.passed,
            runtime=dev.runtime,
            arch=dev.arch,
            failures=dev.failures,
        )
        for name, dev in sorted(section.devices.items())
    }
    passed = section.passed and all(d.passed for d in devices.values())
    return ManifestValidation(
        status=ValidationStatus.PASSED if passed else ValidationStatus.FAILED, devices=devices
    )


def check_packageable(
    build: Build, allow_failed_validation: bool
) -> tuple[ManifestValidation | None, list[str]]:
    """Refuse Flex/custom ops, a label count that is not the output size, and failed validation."""
    flex = [op for op in build.tflite.custom_ops() if op.startswith("Flex")]
    if flex:
        raise GateFailed(
            f"the model uses Select-TF (Flex) ops: {', '.join(flex)}; app runtimes ship builtin ops only",
            hint="re-convert without SELECT_TF_OPS (quantization.mode int8 uses TFLITE_BUILTINS_INT8)",
        )
    custom = build.tflite.custom_ops()
    if custom:
        raise GateFailed(
            f"the model uses custom ops: {', '.join(custom)}; MediaPipe/LiteRT do not have their kernels",
            hint="re-convert with builtin ops only",
        )
    out = build.tflite.tensors[build.tflite.outputs[0]]
    n_out = int(out.shape[-1]) if out.shape else 0
    if build.labels is not None and n_out != len(build.labels):
        raise DataError(
            f"labels.txt has {len(build.labels)} labels but the model outputs {n_out} scores",
            hint="use the labels file the model was trained with, one label per output, in order",
        )
    status = validation_status(build)
    warnings = []
    if status is None:
        warnings.append(
            "validation not run: the manifest says so (run `edgecomp validate BUILD --device ...`)"
        )
    elif status.status == ValidationStatus.FAILED:
        failed = [
            f"{d}: {'; '.join(v.failures[:2]) or 'failed'}" for d, v in status.devices.items() if not v.passed
        ]
        if not allow_failed_validation:
            raise GateFailed(
                f"validation failed on {'; '.join(failed)}",
                hint="fix the build, or pass --allow-failed-validation (recorded in the manifest)",
            )
        status.override = True
        warnings.append(f"packaging a build whose validation failed ({'; '.join(failed)})")
    return status, warnings


def check_app_runtime(build: Build, fmt: PackageFormat, mediapipe: str) -> None:
    """Refuse a model the app runtime that parity runs in cannot load (measured, docs/guides/int4.md):
    4-bit weights in MediaPipe 0.10.21, blockwise 4-bit weights in MediaPipe 1.2.3. `edge` bundles run in
    LiteRT, which loads both (the manifest names the runtime)."""
    if mediapipe not in MEDIAPIPE_RUNTIMES:
        raise DataError(
            f"--mediapipe {mediapipe}: edgecomp checks parity in MediaPipe {' or '.join(MEDIAPIPE_RUNTIMES)}",
            hint="pass the version your app ships, one of those",
        )
    int4 = [t.name for t in build.tflite.tensors if t.dtype == "INT4"]
    if fmt == PackageFormat.EDGE or not int4:
        return
    if mediapipe == MEDIAPIPE_VERSION:  # measured: "Tensor ... requires 24576 bytes, but is allocated with"
        raise GateFailed(
            f"the model stores {len(int4)} weights in 4 bits (INT4, e.g. {int4[0]}); MediaPipe "
            f"{MEDIAPIPE_VERSION}, the app runtime parity runs in by default, cannot load INT4 tensors",
            hint=f"if the app ships MediaPipe 1.x, pass --mediapipe {MEDIAPIPE_RUNTIMES[-1]}; for tasks-text "
            "0.10 re-convert with --quantize int8 or mixed; or --format edge for LiteRT 2.x",
        )
    blockwise = blockwise_weights(build.model_bytes)
    if blockwise:  # measured: "Calculator::Open() for node ... text_classifier failed"
        raise GateFailed(
            f"the model has {len(blockwise)} blockwise 4-bit weights (e.g. {blockwise[0]}); MediaPipe "
            f"{mediapipe} fails to open such a model",
            hint="re-convert with quantization.int4.blockwise: false (per-channel 4 bits runs there), or "
            "--format edge for LiteRT 2.3",
        )


def _split_path(build: Build, split: str) -> Path | None:
    """A split the recipe names (missing file: DataError naming it), or None if it names none."""
    return build.split_path(split) if getattr(build.recipe.data, split) is not None else None


def package_splits(build: Build) -> PackageSplits:
    """The recipe's splits package reads. A classifier needs a labelled one (test or val: top-1 parity and
    the fallback threshold); an embedder, any queries: test, val, else its calibration or train split."""
    splits = PackageSplits(val=_split_path(build, "val"), test=_split_path(build, "test"))
    if splits.test is not None or splits.val is not None:
        return splits
    if build.labels is not None:
        raise DataError(
            "the build's recipe has no test or val split (a classifier's parity and fallback threshold "
            "need labelled queries)",
            hint="re-convert with --test data/test.jsonl (or --val)",
        )
    queries = _split_path(build, "calibration") or _split_path(build, "train")
    if queries is None:
        raise DataError(
            "the build's recipe has no query split (data.test, val, calibration or train) for the "
            "MediaPipe parity check",
            hint="re-convert with --test or --calibration naming a jsonl/csv of queries",
        )
    return PackageSplits(val=None, test=None, queries=queries)


def default_description(
    name: str, labels: list[str] | None, output_size: int, task: str = "classification"
) -> str:
    """The metadata description when neither the recipe nor a flag gives one: what this model does."""
    if task == "retrieval" and labels is not None:
        return f"{name}: scores {len(labels)} products for a search query (the app lists the top 10)."
    if labels is None:
        return f"{name}: maps a search query to a {output_size}-value embedding vector."
    shown = ", ".join(labels[:3]) + (", ..." if len(labels) > 3 else "")
    return f"{name}: classifies a search query into one of {len(labels)} intents ({shown})."


def unset_fields_notice(values: PackageValues) -> str | None:
    """One line naming the metadata fields that stay empty (edgecomp never fills in an author or licence)."""
    unset = [k for k, v in (("author", values.author), ("license", values.license)) if not v]
    if not unset:
        return None
    keys, flags = " / ".join(f"package.{k}" for k in unset), " / ".join(f"--{k}" for k in unset)
    return (
        f"package metadata: {' and '.join(unset)} not set, so left out of the package "
        f"(set {keys} in the recipe, or pass {flags})"
    )


# What edgecomp 0.1.0 wrote into every saved recipe.yaml as package defaults until issue 15: a build converted
# before still has all three, and they are edgecomp's words, not the user's, so together they count as unset.
LEGACY_DEFAULTS = {
    "description": "Classifies a search query into an intent.",
    "author": "edgecomp",
    "license": "Apache-2.0",
}


def _recipe_value(spec: Any, key: str) -> str | None:
    value = getattr(spec, key)
    legacy = all(getattr(spec, k) == v for k, v in LEGACY_DEFAULTS.items())
    return None if legacy else value


def _resolved(build: Build, opts: PackageOptions) -> PackageValues:
    spec = build.recipe.package
    name = opts.name or spec.name or build.recipe.name
    out = build.tflite.tensors[build.tflite.outputs[0]]
    fmt = opts.format or spec.format
    if fmt not in FORMATS:
        raise DataError(f"unknown package format {fmt!r}", hint=f"one of: {', '.join(FORMATS)}")
    values = PackageValues(
        format=PackageFormat(fmt),
        name=name,
        version=opts.version or spec.version,
        description=opts.description
        or _recipe_value(spec, "description")
        or default_description(
            name, build.labels, int(out.shape[-1]) if out.shape else 0, build.recipe.source.task
        ),
        author=opts.author or _recipe_value(spec, "author"),
        license=opts.license or _recipe_value(spec, "license"),
        min_confidence_accuracy=opts.min_confidence_accuracy or spec.min_confidence_accuracy,
        max_tokenizer_mismatch=spec.max_tokenizer_mismatch
        if opts.max_tokenizer_mismatch is None
        else opts.max_tokenizer_mismatch,
        max_tokenizer_accuracy_drop=spec.max_tokenizer_accuracy_drop,
        min_tokenizer_cosine=spec.min_tokenizer_cosine,
    )
    # Check flag values with the recipe's own rules (a name/version must be a safe file name).

    checked = {
        "package.name": values.name,
        "package.version": values.version,
        "package.min_confidence_accuracy": values.min_confidence_accuracy,
        "package.max_tokenizer_mismatch": values.max_tokenizer_mismatch,
    }
    apply_overrides(build.recipe, checked, origin="package flags")
    return values


def package(
    build_dir: Path, opts: PackageOptions = PackageOptions(), progress: Progress | None = None
) -> PackageResult:
    """Package a build; raises (and writes nothing) on any refusal or parity failure."""
    progress = progress or SilentProgress()
    t0 = time.perf_counter()
    build = load_build(build_dir)
    build.check_files()
    values = _resolved(build, opts)
    validation, warnings = check_packageable(build, opts.allow_failed_validation)
    check_app_runtime(build, values.format, opts.mediapipe)
    if values.format == PackageFormat.EDGE and opts.mediapipe != MEDIAPIPE_VERSION:
        warnings.append(f"--mediapipe {opts.mediapipe} is ignored with --format edge: no MediaPipe runs")
    notice = unset_fields_notice(values)
    splits = package_splits(build)
    with tempfile.TemporaryDirectory(prefix="edgecomp-package-") as tmp:
        result = run_package(build, values, validation, splits, opts, Path(tmp), progress)
    result.warnings[:0] = warnings
    result.notes += [notice] if notice else []
    result.seconds = round(time.perf_counter() - t0, 2)
    return result
