"""The work behind `edgecomp package`: predictions, MediaPipe metadata + parity, threshold, bundle, zip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from converters.metadata import MEDIAPIPE_VERSION
from converters.tflite_model import parse_tflite
from devices.hostrun import HostRunner
from devices.opsupport import min_runtime_version
from toolchain import __version__
from toolchain.base.atomic import staged_dir, write_bytes
from toolchain.base.errors import DataError
from toolchain.base.progress import Progress
from toolchain.base.types import PackageFormat, TokenizerKind, ValidationStatus
from toolchain.build import Build, text_feeds
from toolchain.data import QuerySet, load_queries, representative_sample
from toolchain.package.manifest import (
    ANDROID_ASSETS,
    MANIFEST_FILE,
    MANIFEST_VERSION,
    TASKS_TEXT,
    deterministic_zip,
    file_entries,
    readme,
    sha256,
)
from toolchain.package.manifest_model import (
    AppParity,
    LabelsEntry,
    Manifest,
    ManifestTokenizer,
    ManifestValidation,
    ModelEntry,
    ModelSummary,
    PackageMetadata,
    RuntimeEntry,
    TokenizerParitySection,
)
from toolchain.package.mediapipe import mediapipe_model, tokenizer_kind
from toolchain.package.model_card import CARD_FILE, model_card
from toolchain.package.parity import server_fallback
from toolchain.package.spm import accuracy_gate, tokenization_cost
from toolchain.package.tokenizer import mismatch_gate, tokenizer_section
from toolchain.package.types import PackageOptions, PackageResult, PackageSplits, PackageValues
from toolchain.report.model import LATE_SECTIONS, Report
from toolchain.report.stages import FallbackSection, PackageSection, TokenizerParitySummary
from toolchain.tasks import task_spec


def _queries(build: Build, path: Path) -> QuerySet:
    data = build.recipe.data
    return load_queries(path, data.text_field, data.label_field if build.labels is not None else None)


def _parity_queries(build: Build, path: Path, drawn: bool) -> tuple[QuerySet, str | None]:
    """The parity queries and, when drawn, how. `drawn`: an embedder's calibration (or train) split
    stands in for a test split and, as for calibration, `quantization.calibration_samples` of its queries
    are drawn (stratified by length, the recipe's seed), so a large query log stays quick."""
    queries = _queries(build, path)
    if not drawn:
        return queries, None
    n = build.recipe.quantization.calibration_samples
    sample = representative_sample(queries, n, 1, build.recipe.seed, usable=str.strip)
    what = (
        f"{len(sample.texts)} of {len(queries)} queries, drawn like calibration (the build has no test split)"
    )
    return QuerySet(sample.texts, None, queries.source), what


def toolchain_scores(build: Build, texts: list[str], progress: Progress, what: str) -> np.ndarray:
    """The toolchain's own prediction: its tokenizer + the build's .tflite in the host runner."""

    if build.tokenizer is None:
        raise DataError(
            "the build has no tokenizer (an ONNX float build made without one): package checks parity on "
            "the queries of the test split",
            hint="re-convert with --tokenizer tokenizer.json (or --vocab vocab.txt)",
        )
    feeds = text_feeds(build.tflite, build.tokenizer.encode_batch(texts))
    with HostRunner(build.model_bytes, name=f"{build.dir.name}/model.tflite") as runner:
        return runner.scores(feeds, progress, f"toolchain (ai_edge_litert) on {what}")


def _required(build: Build, mediapipe: bool, version: str, op_versions: dict[str, int]) -> str:
    """The manifest's `runtime.required`: the app runtime the bundle was checked in, in words."""
    task = task_spec(build.task).mediapipe_task
    if mediapipe and version == MEDIAPIPE_VERSION:
        return f"MediaPipe Tasks {task}: {TASKS_TEXT} (Android) / mediapipe=={version} (Python)"
    if mediapipe:
        return (
            f"MediaPipe Tasks {task}: mediapipe=={version} (Python, where parity was measured) / a MediaPipe "
            "1.x tasks-text (Android); not tasks-text 0.10.x"
        )
    if op_versions.get("DEQUANTIZE", 0) >= 6:  # 4-bit weights (converters/tflite_int4.py)
        return (
            "TFLite interpreter with builtin ops and 4-bit weights (DEQUANTIZE v6): ai-edge-litert >= 2.1 "
            "(tflite-runtime 2.14 cannot load it; `edgecomp validate` names such a profile)"
        )
    return "TFLite interpreter with builtin ops: ai-edge-litert or tflite-runtime"


def _manifest(
    build: Build,
    values: PackageValues,
    model_bytes: bytes,
    model_file: str,
    validation: ManifestValidation | None,
    parity: AppParity | None,
    fallback: FallbackSection,
    opts: PackageOptions,
    tokenizer_parity: TokenizerParitySection | None = None,
) -> Manifest:

    shipped = parse_tflite(model_bytes)
    summary = ModelSummary.model_validate(shipped.summary())
    mediapipe = values.format != PackageFormat.EDGE
    required = _required(build, mediapipe, opts.mediapipe, summary.op_versions)
    return Manifest(
        manifest_version=MANIFEST_VERSION,
        name=values.name,
        version=values.version,
        format=values.format,
        created_by=f"edgecomp {__version__}",
        metadata=PackageMetadata(
            name=values.name,
            version=values.version,
            description=values.description,
            author=values.author,
            license=values.license,
        ),
        model=ModelEntry(
            file=model_file,
            asset=(ANDROID_ASSETS / f"{values.name}.tflite").as_posix() if mediapipe else None,
            sha256=sha256(model_bytes),
            size_bytes=summary.size_bytes,
            gzip_bytes=summary.gzip_bytes,
            inputs=summary.inputs,
            outputs=summary.outputs,
            validated_model_sha256=sha256(build.model_bytes),
            has_tasks_metadata="TFLITE_METADATA" in shipped.metadata_names,
        ),
        quantization=build.report.quantization.mode,
        tokenizer=_tokenizer_entry(build, parity),
        tokenizer_parity=tokenizer_parity,
        task=task_spec(build.task).manifest_kind,
        labels=None if build.labels is None else LabelsEntry(file="labels.txt", count=len(build.labels)),
        runtime=RuntimeEntry(
            required=required,
            min_runtime_version=min_runtime_version(model_bytes),
            op_versions=summary.op_versions,
            ops=summary.ops,
        ),
        recipe_sha256=sha256(build.recipe_bytes),
        report_sha256=report_digest(build.report),
        validation=ValidationStatus.NOT_RUN if validation is None else validation,
        allow_failed_validation=opts.allow_failed_validation,
        parity=parity,
        server_fallback=fallback,
    )


def _tokenizer_entry(build: Build, parity: AppParity | None) -> ManifestTokenizer:
    """The manifest's tokenizer: kind, vocab, and whether the app must call lowercase() first.

    regex: MediaPipe does not lower-case; the packed case variants fix raw queries unless `raw` parity
    is below 100% (then the remaining cases are listed there and the app must lower-case). wordpiece:
    MediaPipe ASCII-lowercases itself, so the app sends the raw query.
    """
    raw = parity.raw if parity is not None else None
    if build.report.tokenizer.kind in (TokenizerKind.WORDPIECE, TokenizerKind.SENTENCEPIECE):
        lowercase = False
    else:
        lowercase = raw is None or raw.agreement < 1.0
    variants = parity.case_variants if parity is not None else None
    entry = ManifestTokenizer.model_validate(
        {**build.report.tokenizer.to_json(), "vocab_file": "vocab.txt", "app_must_lowercase": lowercase}
    )
    if variants is not None:
        entry.packed_vocab_lines = variants.vocab_lines
    return entry


def report_digest(report: Report) -> str:
    """sha256 of what the package depends on: the convert-time report (canonical JSON), model sha included.

    The late sections are left out: `package` is rewritten by this very stage, and a validate or profile
    run after packaging adds or replaces `validation`/`profile` without changing the packaged model, so the
    digest would go stale for no reason. The validation the package relied on is copied into the manifest
    itself (`validation`), and `model_sha256` ties the digest to the exact model bytes.
    """
    body = {k: v for k, v in report.to_json().items() if k not in LATE_SECTIONS}
    return sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode())


def _write_bundle(
    final: Path,
    build: Build,
    manifest: Manifest,
    model_bytes: bytes,
    metadata_json: str | None,
    vocab: Path,
) -> bytes:
    """Write the bundle directory atomically; returns the zip bytes made from the staged files.

    `vocab` is the file packed in the model (a regex vocab with case variants) or the build's vocab.txt.
    """
    fmt, name = manifest.format, manifest.name
    with staged_dir(final) as stage:
        if fmt != "android-assets":
            (stage / f"{name}.tflite").write_bytes(model_bytes)
        if fmt != "edge":
            assets = stage / ANDROID_ASSETS
            assets.mkdir(parents=True)
            (assets / f"{name}.tflite").write_bytes(model_bytes)
        if metadata_json and fmt == "mediapipe":
            (stage / "metadata.json").write_text(metadata_json, encoding="utf-8")
        if build.labels is not None:
            shutil.copyfile(build.dir / "labels.txt", stage / "labels.txt")
        shutil.copyfile(vocab, stage / "vocab.txt")
        if manifest.tokenizer.kind == TokenizerKind.SENTENCEPIECE:  # the exact tokenizer, for the app
            for name in manifest.tokenizer.files or []:
                if name != "vocab.txt":
                    shutil.copyfile(build.dir / name, stage / name)
        (stage / "README.md").write_text(readme(manifest), encoding="utf-8")
        (stage / CARD_FILE).write_text(model_card(build, manifest), encoding="utf-8")
        stage.chmod(0o755)  # a bundle is meant to be shared, whatever the umask
        manifest.files = file_entries(stage)
        (stage / MANIFEST_FILE).write_text(manifest.dumps(), encoding="utf-8")
        return deterministic_zip(stage, final.name)


def _parity_summary(parity: AppParity | None) -> dict[str, float] | None:
    """The report's `package.parity`: the app runtime's agreement per feed (top-1, top-k, or the share of
    identical vectors)."""
    return None if parity is None else {name: feed.agreement for name, feed in parity.feeds().items()}


def _label_ids(build: Build, queries: QuerySet) -> np.ndarray | None:
    return None if build.labels is None or queries.labels is None else queries.label_ids(build.labels)


def run_package(
    build: Build,
    values: PackageValues,
    validation: ManifestValidation | None,
    splits: PackageSplits,
    opts: PackageOptions,
    tmp: Path,
    progress: Progress,
) -> PackageResult:
    parity_split = splits.test or splits.val or splits.queries
    assert parity_split is not None
    queries, drawn = _parity_queries(build, parity_split, drawn=splits.queries is not None)
    scores = toolchain_scores(build, queries.texts, progress, parity_split.name)
    model_bytes, metadata_json, parity, timings = build.model_bytes, None, None, {}
    tok_parity = None
    if values.format != PackageFormat.EDGE and tokenizer_kind(build) == "wordpiece":
        tok_parity = tokenizer_section(
            build, queries.texts, _label_ids(build, queries), str(parity_split), progress
        )
        mismatch_gate(tok_parity, values.max_tokenizer_mismatch)
    elif values.format != PackageFormat.EDGE and tokenizer_kind(build) == "sentencepiece":
        labels = _label_ids(build, queries)
        tok_parity = tokenization_cost(build, queries.texts, labels, str(parity_split), progress)
        mismatch_gate(tok_parity, values.max_tokenizer_mismatch)
        accuracy_gate(tok_parity, values.max_tokenizer_accuracy_drop, values.min_tokenizer_cosine)
    if values.format != PackageFormat.EDGE:
        model_bytes, metadata_json, parity, timings = mediapipe_model(
            build, values, tmp, queries.texts, scores, opts, progress
        )
        parity.split = str(parity_split)
        if drawn is not None:  # set only then: other manifests keep their keys
            parity.split_draw = drawn
    fb_split = splits.val or parity_split
    fb_queries = queries if fb_split == parity_split else _queries(build, fb_split)
    no_fallback = task_spec(build.task).no_fallback
    if no_fallback is not None or build.labels is None:
        fallback = FallbackSection(threshold=None, note=no_fallback or "the build has no labels")
    elif fb_queries.labels is None:
        fallback = FallbackSection(threshold=None, note=f"{fb_split.name} has no labels")
    else:
        fb_scores = (
            scores
            if fb_split == parity_split
            else toolchain_scores(build, fb_queries.texts, progress, fb_split.name)
        )
        fallback = server_fallback(
            fb_scores, fb_queries.label_ids(build.labels), values.min_confidence_accuracy, str(fb_split)
        ).section()
    model_file = (
        (ANDROID_ASSETS / f"{values.name}.tflite").as_posix()
        if values.format == PackageFormat.ANDROID_ASSETS
        else f"{values.name}.tflite"
    )
    manifest = _manifest(
        build, values, model_bytes, model_file, validation, parity, fallback, opts, tok_parity
    )
    final = (opts.out_dir / f"{values.name}-{values.version}").resolve()
    packed = tmp / "packed" / "vocab.txt"  # package/mediapipe.py wrote it for a regex model
    vocab = packed if values.format != PackageFormat.EDGE and packed.is_file() else build.vocab_path
    zip_bytes = _write_bundle(final, build, manifest, model_bytes, metadata_json, vocab)
    zip_path = final.with_name(final.name + ".zip")
    write_bytes(zip_path, zip_bytes)
    zip_path.chmod(0o644)
    build.record(
        "package",
        PackageSection(
            format=values.format,
            bundle=str(final),
            zip=str(zip_path),
            model_sha256=sha256(model_bytes),
            validation=ValidationStatus.NOT_RUN if validation is None else validation.status,
            parity=_parity_summary(parity),
            tokenizer_parity=None
            if tok_parity is None
            else TokenizerParitySummary(
                differing=tok_parity.differing,
                differing_share=tok_parity.differing_share,
                by_cause=tok_parity.by_cause,
                effect=tok_parity.effect,
            ),
            server_fallback=fallback,
            timings=timings,
        ),
    )
    return PackageResult(final, zip_path, manifest)
