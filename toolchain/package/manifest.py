"""The package manifest's files (what an app team received), its README with the Kotlin snippet, the zip.

The manifest itself is the typed `Manifest` (toolchain/package/manifest_model.py); everything here reads
its attributes.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

from converters.metadata import MEDIAPIPE_VERSION
from toolchain.base.types import ManifestKind, PackageFormat
from toolchain.package.manifest_model import (
    AppParity,
    FileEntry,
    Manifest,
    ManifestValidation,
    TokenizerParitySection,
)
from toolchain.package.parity import RankFeed, Top1Feed, VectorParity
from toolchain.report.stages import FallbackSection

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
ANDROID_ASSETS = Path("android/app/src/main/assets")
TASKS_TEXT = f"com.google.mediapipe:tasks-text:{MEDIAPIPE_VERSION}"
GRADLE = f'// build.gradle.kts: implementation("{TASKS_TEXT}")'


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_entries(root: Path) -> dict[str, FileEntry]:
    """sha256 and size of every file under `root` except the manifest, by relative path."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST_FILE):
        data = path.read_bytes()
        out[path.relative_to(root).as_posix()] = FileEntry(sha256=sha256(data), size_bytes=len(data))
    return out


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
    asset: str, fallback: FallbackSection, tie_margin: float = 1e-6, lowercase: bool = True
) -> str:
    arg, note = _query_expr(lowercase)
    if fallback.threshold is not None:
        cut = f"{fallback.threshold:g}f"
    elif fallback.best_threshold is not None:
        cut = f"{fallback.best_threshold:g}f /* target not reached: see the README */"
    else:
        cut = "0f /* no labelled split: choose a threshold */"
    return f"""```kotlin
{GRADLE}
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


def _tie_margin(manifest: Manifest) -> float:
    """Half an int8 output step: scores closer than that were an exact int8 tie before the tie-break."""
    tie_break = manifest.parity.tie_break if manifest.parity is not None else None
    step = tie_break.int8_step if tie_break is not None else None
    return step / 2 if step else 1e-6


def _vector_lines(parity: AppParity, low: VectorParity, raw: VectorParity) -> list[str]:
    drawn = f" ({parity.split_draw})" if parity.split_draw else ""
    return [
        f"- parity in the app runtime: {parity.runtime} TextEmbedder vs the toolchain on the "
        f"{low.queries} queries of `{Path(parity.split or '').name}`{drawn}, lower-cased: {low.identical} "
        f"identical vectors, max difference {low.max_abs_diff:g}, min cosine {low.min_cosine:g}.",
        f"- If the app forgets `query.lowercase()`: {raw.identical} of {raw.queries} vectors stay "
        f"identical (min cosine {raw.min_cosine:g}).",
    ]


def _rank_lines(parity: AppParity, low: RankFeed, raw: RankFeed) -> list[str]:
    return [
        f"- parity in the app runtime: {parity.runtime} TextClassifier (max_results {low.k}) vs "
        f"the toolchain (ai_edge_litert) on the {low.queries} queries of "
        f"`{Path(parity.split or '').name}`, lower-cased: {low.identical_top_k} identical "
        f"top-{low.k} id lists, in order; max score difference {low.max_abs_score_diff:g}. Raw "
        f"(mixed-case) queries: {raw.agreement:.2%}.",
    ]


def _top1_lines(manifest: Manifest, parity: AppParity, low: Top1Feed, raw: Top1Feed | None) -> list[str]:
    ties = low.tie_disagreements
    tie_note = f", {ties} of them on exact int8 score ties despite the tie-break" if ties else ""
    lines = [
        f"- parity in the app runtime: {parity.runtime} TextClassifier vs the toolchain (ai_edge_litert) "
        f"on the {low.queries} queries of `{Path(parity.split or '').name}`, lower-cased: top-1 agreement "
        f"{low.agreement:.2%} ({low.disagreements_count} disagreements{tie_note}); "
        f"{low.agreement_up_to_ties:.2%} up to ties; max score difference {low.max_abs_score_diff:g}.",
    ]
    before = parity.raw_without_case_variants
    if raw is not None and before is not None:
        lines.append(
            f"- Raw (mixed-case) queries: {raw.agreement:.2%} top-1 agreement with the case variants "
            f"packed in the vocab ({before.agreement:.2%} without them)"
            + (
                "; the app must still call `query.lowercase()` for the rest (see `parity.raw`)."
                if raw.agreement < 1.0
                else "; no `lowercase()` needed."
            )
        )
    elif raw is not None and manifest.is_wordpiece:
        lines.append(
            f"- Raw queries (MediaPipe lower-cases ASCII itself): top-1 agreement {raw.agreement:.2%}."
        )
        train = parity.vs_training_ids
        if isinstance(train, Top1Feed):  # sentencepiece: what lower-casing costs, end to end
            lines.append(
                f"- Against the toolchain on the training tokenizer's ids (case kept): {train.agreement:.2%} "
                f"top-1 agreement ({train.disagreements_count} of {train.queries} change intent); the exact "
                "tokenizer (tokenizer.json, sentencepiece.model) is in the bundle for `--format edge`."
            )
    elif raw is not None:
        lines.append(
            f"- If the app forgets `query.lowercase()`: agreement drops to {raw.agreement:.2%} "
            f"({raw.disagreements_count} of {raw.queries} queries change intent)."
        )
    return lines


def _parity_lines(manifest: Manifest) -> list[str]:
    """The README's parity lines; each feed's record says what was compared (vectors, top-k, top-1)."""
    parity = manifest.parity
    if parity is None:
        return []
    low, raw = parity.lowercased, parity.raw
    if isinstance(low, VectorParity) and isinstance(raw, VectorParity):
        return _vector_lines(parity, low, raw)
    if isinstance(low, RankFeed) and isinstance(raw, RankFeed):
        return _rank_lines(parity, low, raw)
    if isinstance(low, Top1Feed) and (raw is None or isinstance(raw, Top1Feed)):
        return _top1_lines(manifest, parity, low, raw)
    return []


def _tokenizer_lines(tok: TokenizerParitySection | None) -> list[str]:
    if tok is None:
        return []
    effect = ", ".join(f"{k} {v:g}" for k, v in tok.effect.to_json().items())
    what = "SentencePiece ids" if "SentencePiece" in tok.device_side else "WordPiece"
    return [f"- tokenizer parity (training vs device {what}): {tok.summary}; effect: {effect}."]


def _fallback_lines(fallback: FallbackSection) -> list[str]:
    lines = [f"- server fallback: {fallback.note}"] if fallback.note else []
    if fallback.threshold is not None:
        lines.append(
            f"- server fallback: answer on device when the top score >= {fallback.threshold:g} "
            f"({fallback.coverage:.1%} of `{Path(fallback.split or '').name}` queries, "
            f"{fallback.accuracy_above:.2%} "
            f"accurate); send the rest to the server."
        )
    return lines


def _android_lines(manifest: Manifest) -> list[str]:
    model = manifest.model
    lines = ["", "## Android", "", f"Copy `android/` into your project (or just `{model.asset}`).", ""]
    asset = Path(model.asset or model.file).name
    lowercase = manifest.tokenizer.app_must_lowercase
    snippet = SNIPPETS[manifest.task](manifest, asset, lowercase)
    runtime = manifest.parity.runtime if manifest.parity is not None else ""
    if runtime and runtime != f"MediaPipe {MEDIAPIPE_VERSION}":  # parity ran in MediaPipe 1.x
        snippet = snippet.replace(
            GRADLE,
            "// build.gradle.kts: the MediaPipe 1.x tasks-text your app ships (parity was measured in "
            f"Python {runtime}; tasks-text 0.10.x cannot load this model)",
        )
    return [*lines, snippet]


# The Kotlin an app team pastes, by the manifest's task (toolchain/tasks.py `manifest_kind`).
SNIPPETS: dict[ManifestKind, Callable[[Manifest, str, bool], str]] = {
    ManifestKind.CLASSIFIER: lambda m, asset, lower: kotlin_snippet(
        asset, m.server_fallback, _tie_margin(m), lower
    ),
    ManifestKind.EMBEDDER: lambda m, asset, lower: embedder_snippet(asset, lower),
    ManifestKind.RETRIEVAL: lambda m, asset, lower: retrieval_snippet(asset, lower),
}


def readme(manifest: Manifest) -> str:
    """The bundle's README: what it is, how to load it, what was checked."""
    model = manifest.model
    lines = [
        f"# {manifest.name} {manifest.version}",
        "",
        manifest.metadata.description,
        "",
        f"- model: `{model.file}`, {model.size_bytes:,} bytes (gzip {model.gzip_bytes:,}), "
        f"sha256 `{model.sha256[:16]}…`; {manifest.quantization} quantization",
        f"- input: {model.inputs[0].dtype} token ids {model.inputs[0].shape}; "
        f"output: {model.outputs[0].dtype} {_output_words(manifest)}",
        *_added_input_lines(manifest),
        f"- runtime: {manifest.runtime.required}",
        f"- validation: {_validation_line(manifest.validation)}",
    ]
    lines += _parity_lines(manifest) + _tokenizer_lines(manifest.tokenizer_parity)
    lines += _fallback_lines(manifest.server_fallback)
    if manifest.format in (PackageFormat.MEDIAPIPE, PackageFormat.ANDROID_ASSETS):
        lines += _android_lines(manifest)
    else:
        lines += ["", "## Python (ai-edge-litert / tflite-runtime)", "", _edge_snippet(manifest)]
    lines += ["", f"Check what you received: `edgecomp inspect {model.file}` (verifies the sha256)."]
    lines += ["`model_card.md`: where the model came from, metrics by stage, devices, limitations.", ""]
    return "\n".join(lines)


def _added_input_lines(manifest: Manifest) -> list[str]:
    added = manifest.parity.added_inputs if manifest.parity is not None else None
    return [
        f"- `{a.name}`: an input added for MediaPipe's BERT path (it feeds {a.role}); the model was exported "
        "without it and no op reads it, so it cannot change an output"
        for a in added or []
    ]


def _output_words(manifest: Manifest) -> str:
    labels = manifest.labels
    if manifest.task == ManifestKind.RETRIEVAL and labels is not None:
        return f"scores over {labels.count} product ids (the app takes the top 10)"
    if labels is not None:
        return f"scores over {labels.count} labels"
    return f"embedding of {manifest.model.outputs[0].shape[-1]} floats"


def embedder_snippet(asset: str, lowercase: bool = True) -> str:
    arg, note = _query_expr(lowercase)
    return f"""```kotlin
{GRADLE}
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
{GRADLE}
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


def _validation_line(validation: ManifestValidation | str) -> str:
    if not isinstance(validation, ManifestValidation):
        return str(validation)
    devices = ", ".join(
        f"{d} {'passed' if v.passed else 'FAILED'}" for d, v in sorted(validation.devices.items())
    )
    extra = " (packaged with --allow-failed-validation)" if validation.override else ""
    return f"{validation.status}: {devices}{extra}"


def _edge_snippet(manifest: Manifest) -> str:
    model = manifest.model.file
    return f"""```python
import numpy as np
from ai_edge_litert.interpreter import Interpreter  # or tflite_runtime.interpreter

interp = Interpreter(model_path="{model}")
interp.allocate_tensors()
inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
interp.set_tensor(inp["index"], ids)  # int32 [1, {manifest.tokenizer.seq_len}]: vocab.txt, lower-cased
interp.invoke()
scale, zero = out["quantization"]
scores = (interp.get_tensor(out["index"]).astype(np.float32) - zero) * (scale or 1.0)
```"""


def verify(manifest: Manifest, model_path: Path, model_data: bytes) -> list[str]:
    """Problems with a received model against its manifest (empty list: it matches)."""
    want = manifest.model
    digest = sha256(model_data)
    if want.sha256 != digest:
        return [f"sha256 mismatch: manifest {want.sha256[:16]}…, {model_path.name} {digest[:16]}…"]
    if want.size_bytes != len(model_data):
        return [f"size mismatch: manifest {want.size_bytes} bytes, {model_path.name} {len(model_data)}"]
    return []
