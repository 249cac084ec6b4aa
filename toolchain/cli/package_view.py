"""The tables `edgecomp package` prints: the bundle, its validation and the app-runtime parity."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from toolchain.package.manifest_model import AppParity, ManifestValidation
from toolchain.package.parity import RankFeed, VectorParity
from toolchain.package.types import PackageResult


def _parity_row(parity: AppParity) -> str:
    """One line per kind of feed: identical vectors, identical top-k lists, or top-1 agreement."""
    low, raw = parity.lowercased, parity.raw
    raw_note = f"; raw (no lowercase()) {raw.agreement:.2%}" if raw is not None else ""
    if parity.vs_training_ids is not None:  # sentencepiece: MediaPipe vs the training tokenizer's ids
        raw_note += f"; vs training-side ids (case kept) {parity.vs_training_ids.agreement:.2%}"
    if isinstance(low, VectorParity):
        return (
            f"{low.identical}/{low.queries} identical vectors (lower-cased), max diff "
            f"{low.max_abs_diff:g}, min cosine {low.min_cosine:g}"
        )
    if isinstance(low, RankFeed):
        return (
            f"{low.identical_top_k}/{low.queries} identical top-{low.k} id lists (lower-cased), "
            f"max score diff {low.max_abs_score_diff:g}{raw_note}"
        )
    return (
        f"{low.agree}/{low.queries} top-1 agree (lower-cased; "
        f"{low.tie_disagreements} differ only on exact score ties: "
        f"{low.agreement_up_to_ties:.2%} up to ties), max score diff "
        f"{low.max_abs_score_diff:g}{raw_note}"
    )


def summary_table(result: PackageResult) -> Table:
    m = result.manifest
    t = Table(title=f"{m.name} {m.version} ({m.format})", show_header=False)
    t.add_column("", style="bold")
    t.add_column("")
    model = m.model
    t.add_row("model", f"{model.file}  {model.size_bytes:,} B (gzip {model.gzip_bytes:,} B)")
    t.add_row("sha256", model.sha256)
    t.add_row("runtime", m.runtime.required)
    val = m.validation
    t.add_row(
        "validation",
        str(val)
        if not isinstance(val, ManifestValidation)
        else val.status + (" (overridden)" if val.override else ""),
    )
    if m.parity is not None:
        t.add_row("MediaPipe parity", _parity_row(m.parity))
    tok = m.tokenizer_parity
    if tok is not None:
        t.add_row("tokenizer parity", f"{tok.summary}; effect {tok.effect.to_json()}")
    fb = m.server_fallback
    if fb.threshold is not None:
        t.add_row(
            "server fallback",
            f"score >= {fb.threshold:g}: {fb.coverage:.1%} on device at {fb.accuracy_above:.2%} "
            f"(target {fb.target_accuracy:.0%}, {Path(fb.split or '').name})",
        )
    else:
        t.add_row("server fallback", fb.note)
    t.add_row("seconds", f"{result.seconds:g}")
    return t
