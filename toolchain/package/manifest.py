"""The package manifest (what an app team received), its README with the Kotlin snippet, and the zip."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

from toolchain.base.errors import InputFileError

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
ANDROID_ASSETS = Path("android/app/src/main/assets")
TASKS_TEXT = "com.google.mediapipe:tasks-text:0.10.21"


MANIFEST_SECTIONS = ("model", "labels", "metadata", "tokenizer")  # objects when present (inspect reads them)
MAX_MANIFEST_BYTES = 16 << 20


def read_manifest(path: Path) -> dict[str, Any]:
    """A received manifest.json as a dict; anything else (corrupt, not UTF-8, not an object, a section of
    the wrong type, huge) is an InputFileError naming the file."""
    path = Path(path)
    hint = "pass the manifest.json that came with the bundle (edgecomp package writes it)"
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise InputFileError(
                f"{path} is not a manifest: larger than {MAX_MANIFEST_BYTES >> 20} MiB", hint
            )
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, RecursionError, ValueError) as err:
        raise InputFileError(f"{path} is not valid JSON ({err.__class__.__name__})", hint=hint) from None
    if not isinstance(data, dict):
        raise InputFileError(f"{path} is not a manifest: a JSON {type(data).__name__}, no object", hint=hint)
    for key in MANIFEST_SECTIONS:
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise InputFileError(f"{path} is not a manifest: {key} is not an object", hint=hint)
    return data


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_entries(root: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file under `root` except the manifest, by relative path."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST_FILE):
        data = path.read_bytes()
        out[path.relative_to(root).as_posix()] = {"sha256": sha256(data), "size_bytes": len(data)}
    return out


def dumps(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2, default=str) + "\n"


def deterministic_zip(root: Path, prefix: str) -> bytes:
    """Zip a directory with sorted entries and fixed timestamps: same files, same bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(f"{prefix}/{path.relative_to(root).as_posix()}", (1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, path.read_bytes())
    return buf.getvalue()


def _query_expr(lowercase: bool) -> tuple[str, str]:
    """The Kotlin argument and its comment: `query.lowercase()` only when the package needs it."""
    if lowercase:
        return (
            "query.lowercase()",
            "MediaPipe does not lower-case; the model was trained on lower-cased queries.",
        )
    return "query", "The packaged tokenizer handles case itself (see the manifest's tokenizer section)."


def kotlin_snippet(
    asset: str, fallback: dict[str, Any], tie_margin: float = 1e-6, lowercase: bool = True
) -> str:
    arg, note = _query_expr(lowercase)
    if fallback.get("threshold") is not None:
        cut = f"{fallback['threshold']:g}f"
    elif fallback.get("best_threshold") is not None:
        cut = f"{fallback['best_threshold']:g}f /* target not reached: see the README */"
    else:
        cut = "0f /* no labelled split: choose a threshold */"
    return f"""```kotlin
// build.gradle.kts: implementation("{TASKS_TEXT}")
// the model is app/src/main/assets/{asset} (labels and vocab are inside it)
import com.google.mediapipe.tasks.core.BaseOptions
import com.google.mediapipe.tasks.text.textclassifier.TextClassifier

val options = TextClassifier.TextClassifierOptions.builder()
    .setBaseOptions(BaseOptions.builder().setModelAssetPath("{asset}").build())
    .build()
val classifier = TextClassifier.createFromOptions(context, options)

/** The intent, or null when the device is not confident enough: send the query to the server. */
fun intentOf(query: String): String? {{
    // {note}
    val cats = classifier.classify({arg})
        .classificationResult().classifications()[0].categories()
    val top = cats[0]
    // Two labels on the same int8 score (the packaged tie-break separates them by < 1/4 step): a coin
    // flip between two intents -> let the server decide.
    if (cats.size > 1 && top.score() - cats[1].score() < {tie_margin}f) return null
    return if (top.score() >= {cut}) top.categoryName() else null
}}
```"""


def _tie_margin(manifest: dict[str, Any]) -> float:
    """Half an int8 output step: scores closer than that were an exact int8 tie before the tie-break."""
    step = ((manifest.get("parity") or {}).get("tie_break") or {}).get("int8_step")
    return step / 2 if step else 1e-6


def _parity_lines(manifest: dict[str, Any]) -> list[str]:
    parity = manifest.get("parity") or {}
    low, raw = parity.get("lowercased"), parity.get("raw")
    if not low:
        return []
    if manifest.get("task") == "embedder":
        return [
            f"- parity in the app runtime: {parity['runtime']} TextEmbedder vs the toolchain on the "
            f"{low['queries']} queries of `{Path(parity['split']).name}`, lower-cased: {low['identical']} "
            f"identical vectors, max difference {low['max_abs_diff']:g}, min cosine {low['min_cosine']:g}.",
            f"- If the app forgets `query.lowercase()`: {raw['identical']} of {raw['queries']} vectors stay "
            f"identical (min cosine {raw['min_cosine']:g}).",
        ]
    if manifest.get("task") == "retrieval":
        return [
            f"- parity in the app runtime: {parity['runtime']} TextClassifier (max_results {low['k']}) vs "
            f"the toolchain (ai_edge_litert) on the {low['queries']} queries of "
            f"`{Path(parity['split']).name}`, lower-cased: {low['identical_top_k']} identical "
            f"top-{low['k']} id lists, in order; max score difference {low['max_abs_score_diff']:g}. Raw "
            f"(mixed-case) queries: {raw['agreement']:.2%}.",
        ]
    ties = low["tie_disagreements"]
    tie_note = f", {ties} of them on exact int8 score ties despite the tie-break" if ties else ""
    lines = [
        f"- parity in the app runtime: {parity['runtime']} TextClassifier vs the toolchain (ai_edge_litert) "
        f"on the {low['queries']} queries of `{Path(parity['split']).name}`, lower-cased: top-1 agreement "
        f"{low['agreement']:.2%} ({low['disagreements_count']} disagreements{tie_note}); "
        f"{low['agreement_up_to_ties']:.2%} up to ties; max score difference {low['max_abs_score_diff']:g}.",
    ]
    before = parity.get("raw_without_case_variants")
    if raw and before:
        lines.append(
            f"- Raw (mixed-case) queries: {raw['agreement']:.2%} top-1 agreement with the case variants "
            f"packed in the vocab ({before['agreement']:.2%} without them)"
            + (
                "; the app must still call `query.lowercase()` for the rest (see `parity.raw`)."
                if raw["agreement"] < 1.0
                else "; no `lowercase()` needed."
            )
        )
    elif raw and manifest.get("tokenizer", {}).get("kind") == "wordpiece":
        lines.append(
            f"- Raw queries (MediaPipe lower-cases ASCII itself): top-1 agreement {raw['agreement']:.2%}."
        )
    elif raw:
        lines.append(
            f"- If the app forgets `query.lowercase()`: agreement drops to {raw['agreement']:.2%} "
            f"({raw['disagreements_count']} of {raw['queries']} queries change intent)."
        )
    return lines


def _tokenizer_lines(manifest: dict[str, Any]) -> list[str]:
    tok = manifest.get("tokenizer_parity")
    if not tok:
        return []
    effect = ", ".join(f"{k} {v:g}" for k, v in tok["effect"].items())
    return [f"- tokenizer parity (training vs device WordPiece): {tok['summary']}; effect: {effect}."]


def readme(manifest: dict[str, Any]) -> str:
    """The bundle's README: what it is, how to load it, what was checked."""
    name, version, fmt = manifest["name"], manifest["version"], manifest["format"]
    model = manifest["model"]
    fallback = manifest.get("server_fallback") or {}
    lines = [
        f"# {name} {version}",
        "",
        manifest["metadata"]["description"],
        "",
        f"- model: `{model['file']}`, {model['size_bytes']:,} bytes (gzip {model['gzip_bytes']:,}), "
        f"sha256 `{model['sha256'][:16]}…`; {manifest['quantization']} quantization",
        f"- input: {model['inputs'][0]['dtype']} token ids {model['inputs'][0]['shape']}; "
        f"output: {model['outputs'][0]['dtype']} {_output_words(manifest)}",
        f"- runtime: {manifest['runtime']['required']}",
        f"- validation: {_validation_line(manifest['validation'])}",
    ]
    lines += _parity_lines(manifest) + _tokenizer_lines(manifest)
    if fallback.get("note"):
        lines.append(f"- server fallback: {fallback['note']}")
    if fallback.get("threshold") is not None:
        lines.append(
            f"- server fallback: answer on device when the top score >= {fallback['threshold']:g} "
            f"({fallback['coverage']:.1%} of `{Path(fallback['split']).name}` queries, "
            f"{fallback['accuracy_above']:.2%} "
            f"accurate); send the rest to the server."
        )
    if fmt in ("mediapipe", "android-assets"):
        lines += [
            "",
            "## Android",
            "",
            f"Copy `android/` into your project (or just `{model['asset']}`).",
            "",
        ]
        asset = Path(model["asset"]).name
        lowercase = bool(manifest.get("tokenizer", {}).get("app_must_lowercase", True))
        task = manifest.get("task")
        if task == "embedder":
            lines.append(embedder_snippet(asset, lowercase))
        elif task == "retrieval":
            lines.append(retrieval_snippet(asset, lowercase))
        else:
            lines.append(kotlin_snippet(asset, fallback, _tie_margin(manifest), lowercase))
    else:
        lines += ["", "## Python (ai-edge-litert / tflite-runtime)", "", _edge_snippet(manifest)]
    lines += ["", f"Check what you received: `edgecomp inspect {model['file']}` (verifies the sha256).", ""]
    return "\n".join(lines)


def _output_words(manifest: dict[str, Any]) -> str:
    if manifest.get("task") == "retrieval":
        return f"scores over {manifest['labels']['count']} product ids (the app takes the top 10)"
    if manifest.get("labels"):
        return f"scores over {manifest['labels']['count']} labels"
    return f"embedding of {manifest['model']['outputs'][0]['shape'][-1]} floats"


def embedder_snippet(asset: str, lowercase: bool = True) -> str:
    arg, note = _query_expr(lowercase)
    return f"""```kotlin
// build.gradle.kts: implementation("{TASKS_TEXT}")
import com.google.mediapipe.tasks.core.BaseOptions
import com.google.mediapipe.tasks.text.textembedder.TextEmbedder

val options = TextEmbedder.TextEmbedderOptions.builder()
    .setBaseOptions(BaseOptions.builder().setModelAssetPath("{asset}").build())
    .build()
val embedder = TextEmbedder.createFromOptions(context, options)
// {note}
val vector = embedder.embed({arg}).embeddingResult().embeddings()[0].floatEmbedding()
```"""


def retrieval_snippet(asset: str, lowercase: bool = True) -> str:
    arg, note = _query_expr(lowercase)
    return f"""```kotlin
// build.gradle.kts: implementation("{TASKS_TEXT}")
import com.google.mediapipe.tasks.core.BaseOptions
import com.google.mediapipe.tasks.text.textclassifier.TextClassifier

val options = TextClassifier.TextClassifierOptions.builder()
    .setBaseOptions(BaseOptions.builder().setModelAssetPath("{asset}").build())
    .setMaxResults(10)  // the top 10 products, best first (parity was checked with max_results 10)
    .build()
val retriever = TextClassifier.createFromOptions(context, options)

/** The 10 best product ids for a query (look them up in the app's catalog). */
fun productsFor(query: String): List<String> {{
    // {note}
    return retriever.classify({arg}).classificationResult().classifications()[0].categories()
        .map {{ it.categoryName() }}
}}
```"""


def _validation_line(validation: Any) -> str:
    if not isinstance(validation, dict):
        return str(validation)
    devices = ", ".join(
        f"{d} {'passed' if v['passed'] else 'FAILED'}" for d, v in sorted(validation["devices"].items())
    )
    extra = " (packaged with --allow-failed-validation)" if validation.get("override") else ""
    return f"{validation['status']}: {devices}{extra}"


def _edge_snippet(manifest: dict[str, Any]) -> str:
    model = manifest["model"]["file"]
    return f"""```python
import numpy as np
from ai_edge_litert.interpreter import Interpreter  # or tflite_runtime.interpreter

interp = Interpreter(model_path="{model}")
interp.allocate_tensors()
inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
interp.set_tensor(inp["index"], ids)  # int32 [1, {manifest["tokenizer"]["seq_len"]}]: vocab.txt, lower-cased
interp.invoke()
scale, zero = out["quantization"]
scores = (interp.get_tensor(out["index"]).astype(np.float32) - zero) * (scale or 1.0)
```"""


def verify(manifest: dict[str, Any], model_path: Path, model_data: bytes) -> list[str]:
    """Problems with a received model against its manifest (empty list: it matches)."""
    want = manifest.get("model", {})
    digest = sha256(model_data)
    if want.get("sha256") != digest:
        return [
            f"sha256 mismatch: manifest {str(want.get('sha256'))[:16]}…, {model_path.name} {digest[:16]}…"
        ]
    if want.get("size_bytes") != len(model_data):
        return [
            f"size mismatch: manifest {want.get('size_bytes')} bytes, {model_path.name} {len(model_data)}"
        ]
    return []
