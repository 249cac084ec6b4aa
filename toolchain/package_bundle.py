"""The work behind `edgecomp package`: predictions, MediaPipe metadata + parity, threshold, bundle, zip."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from toolchain import __version__
from toolchain.base.atomic import staged_dir, write_bytes
from toolchain.base.errors import DataError, GateFailed
from toolchain.base.progress import Progress
from toolchain.build import Build, text_feeds
from toolchain.data import DELIM_REGEX, QuerySet, load_queries
from toolchain.manifest import ANDROID_ASSETS, MANIFEST_FILE, MANIFEST_VERSION, TASKS_TEXT, sha256
from toolchain.package_parity import Parity, VectorParity, compare_top1, compare_vectors, server_fallback
from toolchain.package_types import PackageOptions, PackageResult

TOKENIZER_HINT = (
    "the on-device tokenizer does not reproduce the training one: check vocab.txt and the delimiter"
)


def _queries(build: Build, path: Path) -> QuerySet:
    data = build.recipe.data
    return load_queries(path, data.text_field, data.label_field if build.labels is not None else None)


def _kind(build: Build) -> str:
    """The manifest's task word: MediaPipe's TextClassifier or TextEmbedder."""
    return "classifier" if build.labels is not None else "embedder"


def toolchain_scores(build: Build, texts: list[str], progress: Progress, what: str) -> np.ndarray:
    """The toolchain's own prediction: its tokenizer + the build's .tflite in the host runner."""
    from devices.hostrun import HostRunner

    feeds = text_feeds(build.tflite, build.tokenizer.encode_batch(texts))
    return HostRunner(build.model_bytes).scores(feeds, progress, f"toolchain (ai_edge_litert) on {what}")


def _tokenizer_delim(build: Build) -> str:
    tok = build.report.tokenizer.model_dump()
    if tok.get("kind", "regex") != "regex":
        raise DataError(
            f"MediaPipe packaging supports the regex tokenizer; this build uses {tok.get('kind')!r}",
            hint="package it with --format edge",
        )
    return str(tok.get("delimiter", DELIM_REGEX))


def mediapipe_model(
    build: Build,
    values: dict[str, Any],
    tmp: Path,
    texts: list[str],
    scores: np.ndarray,
    opts: PackageOptions,
    progress: Progress,
) -> tuple[bytes, str, dict[str, Any], dict[str, float]]:
    """Model with float outputs + Tasks metadata, and its parity with the toolchain in MediaPipe's task."""
    from converters.metadata import ModelInfo, timed_session
    from converters.tflite_edit import dequantized_outputs

    float_out, changed = dequantized_outputs(build.model_bytes, tie_break=_kind(build) == "classifier")
    (tmp / "float_out.tflite").write_bytes(float_out)
    info = ModelInfo(
        values["name"], values["version"], values["description"], values["author"], values["license"]
    )
    kind = "regex" if _kind(build) == "classifier" else "embedder"
    model_path = tmp / "model.tflite"
    lowered_texts = [t.lower() for t in texts]
    session, setup_s = timed_session(progress, opts.timeout_s)
    with session:
        metadata_json = session.write_metadata(
            tmp / "float_out.tflite",
            model_path,
            kind,
            build.vocab_path,
            build.labels,
            info,
            delim=_tokenizer_delim(build),
        )
        t0 = time.perf_counter()
        if _kind(build) == "classifier":
            lowered = session.classify(model_path, lowered_texts, progress, "(lower-cased queries)")
            raw = session.classify(model_path, texts, progress, "(raw queries)")
        else:
            lowered_vec = np.array(session.embed(model_path, lowered_texts), dtype=np.float32)
            raw_vec = np.array(session.embed(model_path, texts), dtype=np.float32)
        run_s = time.perf_counter() - t0
    parity: dict[str, Any] = {"runtime": f"MediaPipe {session.version}", "dequantized_outputs": changed}
    out = build.tflite.tensors[build.tflite.outputs[0]]
    if changed and out.scales:
        from converters.tflite_edit import tie_break_eps

        n = int(out.shape[-1])
        eps = tie_break_eps(out.scales[0], n)
        parity["tie_break"] = {
            "eps": eps,
            "max_score_change": eps * (n - 1),
            "int8_step": out.scales[0],
            "rule": "among equal int8 scores the lower label index ranks first",
        }
    if _kind(build) == "classifier":
        assert build.labels is not None
        low = compare_top1("lowercased", texts, scores, lowered, build.labels)
        _parity_gate(low)
        raw_parity = compare_top1("raw", texts, scores, raw, build.labels)
        parity["task"] = "TextClassifier (same C++ task as Android tasks-text)"
        parity.update(lowercased=low.as_dict(), raw=raw_parity.as_dict(limit=10))
    else:
        vec = compare_vectors("lowercased", texts, scores, lowered_vec)
        _vector_gate(vec, build)
        parity["task"] = "TextEmbedder (same C++ task as Android tasks-text)"
        parity.update(lowercased=vec.as_dict(), raw=compare_vectors("raw", texts, scores, raw_vec).as_dict())
    timings = {
        "mediapipe_env_s": setup_s,
        "mediapipe_ms_per_query": round(run_s * 1e3 / max(1, 2 * len(texts)), 3),
    }
    return model_path.read_bytes(), metadata_json, parity, timings


def _vector_gate(parity: VectorParity, build: Build) -> None:
    """Embeddings must match to within one step of the int8 output (exact in practice)."""
    out = build.tflite.tensors[build.tflite.outputs[0]]
    step = out.scales[0] if out.scales else 1e-6
    if parity.max_abs_diff > step * 1.001:
        raise GateFailed(
            f"MediaPipe TextEmbedder vectors differ from the toolchain's by up to {parity.max_abs_diff:g} "
            f"(one output step is {step:g}; min cosine {parity.min_cosine:g}), e.g. {parity.worst_query!r}",
            hint=TOKENIZER_HINT,
        )


def _parity_gate(parity: Parity) -> None:
    """Fail on any label change, exact int8 ties included.

    The packaged model carries a tie-break bias (converters/tflite_edit.py), so MediaPipe's ranking among
    equal int8 scores is deterministic and must equal the toolchain's argmax (lowest index first).
    """
    real = list(parity.disagreements)
    if not real:
        return
    d = real[0]
    raise GateFailed(
        f"MediaPipe TextClassifier disagrees with the toolchain on {len(real)} of {parity.queries} queries, "
        f"e.g. {d.query!r}: toolchain {d.toolchain} ({d.toolchain_score:g}), MediaPipe {d.mediapipe} "
        f"({d.mediapipe_score:g})",
        hint=TOKENIZER_HINT,
    )


def _manifest(
    build: Build,
    values: dict[str, Any],
    model_bytes: bytes,
    model_file: str,
    validation: Any,
    parity: dict[str, Any] | None,
    fallback: dict[str, Any],
    opts: PackageOptions,
) -> dict[str, Any]:
    from converters.tflite_model import parse_tflite
    from devices.opsupport import min_runtime_version

    shipped = parse_tflite(model_bytes)
    summary = shipped.summary()
    mediapipe = values["format"] != "edge"
    required = (
        f"MediaPipe Tasks {'TextClassifier' if _kind(build) == 'classifier' else 'TextEmbedder'}: "
        f"{TASKS_TEXT} (Android) / mediapipe==0.10.21 (Python)"
        if mediapipe
        else "TFLite interpreter with builtin ops: ai-edge-litert or tflite-runtime"
    )
    return {
        "manifest_version": MANIFEST_VERSION,
        "name": values["name"],
        "version": values["version"],
        "format": values["format"],
        "created_by": f"edgecomp {__version__}",
        "metadata": {k: values[k] for k in ("name", "version", "description", "author", "license")},
        "model": {
            "file": model_file,
            "asset": (ANDROID_ASSETS / f"{values['name']}.tflite").as_posix() if mediapipe else None,
            "sha256": sha256(model_bytes),
            "size_bytes": summary["size_bytes"],
            "gzip_bytes": summary["gzip_bytes"],
            "inputs": summary["inputs"],
            "outputs": summary["outputs"],
            "validated_model_sha256": sha256(build.model_bytes),
            "has_tasks_metadata": "TFLITE_METADATA" in shipped.metadata_names,
        },
        "quantization": build.report.quantization.mode,
        "tokenizer": {
            **build.report.tokenizer.model_dump(),
            "vocab_file": "vocab.txt",
            "app_must_lowercase": True,
        },
        "task": _kind(build),
        "labels": None if build.labels is None else {"file": "labels.txt", "count": len(build.labels)},
        "runtime": {
            "required": required,
            "min_runtime_version": min_runtime_version(model_bytes),
            "op_versions": summary["op_versions"],
            "ops": summary["ops"],
        },
        "recipe_sha256": sha256(build.recipe_bytes),
        "report_sha256": report_digest(build.report.to_dict()),
        "validation": validation,
        "allow_failed_validation": opts.allow_failed_validation,
        "parity": parity,
        "server_fallback": fallback,
    }


def report_digest(report: dict[str, Any]) -> str:
    """sha256 of what the package depends on: the convert-time report (canonical JSON), model sha included.

    The late sections are left out: `package` is rewritten by this very stage, and a validate or profile
    run after packaging adds or replaces `validation`/`profile` without changing the packaged model, so the
    digest would go stale for no reason. The validation the package relied on is copied into the manifest
    itself (`validation`), and `model_sha256` ties the digest to the exact model bytes.
    """
    from toolchain.report_model import LATE_SECTIONS

    body = {k: v for k, v in report.items() if k not in LATE_SECTIONS}
    return sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode())


def _write_bundle(
    final: Path, build: Build, manifest: dict[str, Any], model_bytes: bytes, metadata_json: str | None
) -> bytes:
    """Write the bundle directory atomically; returns the zip bytes made from the staged files."""
    from toolchain.manifest import deterministic_zip, dumps, file_entries, readme

    fmt, name = manifest["format"], manifest["name"]
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
        shutil.copyfile(build.vocab_path, stage / "vocab.txt")
        (stage / "README.md").write_text(readme(manifest), encoding="utf-8")
        stage.chmod(0o755)  # a bundle is meant to be shared, whatever the umask
        manifest["files"] = file_entries(stage)
        (stage / MANIFEST_FILE).write_text(dumps(manifest), encoding="utf-8")
        return deterministic_zip(stage, final.name)


def _agreement(feed: dict[str, Any]) -> float:
    """Top-1 agreement (classifier) or the share of identical vectors (embedder)."""
    if "agreement" in feed:
        return float(feed["agreement"])
    return round(feed["identical"] / max(1, feed["queries"]), 6)


def run_package(
    build: Build,
    values: dict[str, Any],
    validation: Any,
    splits: dict[str, Path | None],
    opts: PackageOptions,
    tmp: Path,
    progress: Progress,
) -> PackageResult:
    parity_split = splits["test"] or splits["val"]
    assert parity_split is not None
    queries = _queries(build, parity_split)
    scores = toolchain_scores(build, queries.texts, progress, parity_split.name)
    model_bytes, metadata_json, parity, timings = build.model_bytes, None, None, {}
    if values["format"] != "edge":
        model_bytes, metadata_json, parity, timings = mediapipe_model(
            build, values, tmp, queries.texts, scores, opts, progress
        )
        parity["split"] = str(parity_split)
    fb_split = splits["val"] or parity_split
    fb_queries = queries if fb_split == parity_split else _queries(build, fb_split)
    if build.labels is None:
        fallback: dict[str, Any] = {"threshold": None, "note": "embedding model: no classification threshold"}
    elif fb_queries.labels is None:
        fallback = {"threshold": None, "note": f"{fb_split.name} has no labels"}
    else:
        fb_scores = (
            scores
            if fb_split == parity_split
            else toolchain_scores(build, fb_queries.texts, progress, fb_split.name)
        )
        fallback = server_fallback(
            fb_scores, fb_queries.label_ids(build.labels), values["min_confidence_accuracy"], str(fb_split)
        ).as_dict()
    model_file = (
        (ANDROID_ASSETS / f"{values['name']}.tflite").as_posix()
        if values["format"] == "android-assets"
        else f"{values['name']}.tflite"
    )
    manifest = _manifest(build, values, model_bytes, model_file, validation, parity, fallback, opts)
    final = (opts.out_dir / f"{values['name']}-{values['version']}").resolve()
    zip_bytes = _write_bundle(final, build, manifest, model_bytes, metadata_json)
    zip_path = final.with_name(final.name + ".zip")
    write_bytes(zip_path, zip_bytes)
    zip_path.chmod(0o644)
    build.record(
        "package",
        {
            "format": values["format"],
            "bundle": str(final),
            "zip": str(zip_path),
            "model_sha256": manifest["model"]["sha256"],
            "validation": validation if isinstance(validation, str) else validation["status"],
            "parity": None if parity is None else {k: _agreement(parity[k]) for k in ("lowercased", "raw")},
            "server_fallback": fallback,
            "timings": timings,
        },
    )
    return PackageResult(final, zip_path, manifest)
