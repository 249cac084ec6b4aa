"""`edgecomp package BUILD --format mediapipe|android-assets|edge`: the bundle an app team drops in."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from toolchain.base.types import ManifestKind
from toolchain.package.manifest_model import AppParity, ManifestValidation
from toolchain.package.parity import RankFeed, VectorParity
from toolchain.package.types import PackageOptions, PackageResult


def package(
    build: Path = typer.Argument(..., help="Build directory (build/<name>) made by `edgecomp convert`."),
    fmt: str | None = typer.Option(
        None, "--format", "-f", help="mediapipe | android-assets | edge (default: recipe package.format)."
    ),
    out: Path = typer.Option(Path("dist"), "--out", "-o", help="Where dist/<name>-<version>/ goes."),
    name: str | None = typer.Option(None, "--name", help="Package name (default: recipe name)."),
    version: str | None = typer.Option(None, "--version", help="Package version (default: 1.0.0)."),
    description: str | None = typer.Option(
        None, "--description", help="Model metadata (default: recipe package.description, else derived)."
    ),
    author: str | None = typer.Option(
        None, "--author", help="Model metadata (default: recipe package.author, else left out)."
    ),
    license_: str | None = typer.Option(
        None,
        "--license",
        help="Model metadata, e.g. MIT (default: recipe package.license, else left out).",
    ),
    min_confidence_accuracy: float | None = typer.Option(
        None, "--min-confidence-accuracy", help="Server fallback: on-device accuracy wanted (default 0.98)."
    ),
    max_tokenizer_mismatch: float | None = typer.Option(
        None,
        "--max-tokenizer-mismatch",
        help="WordPiece builds: fail if more than this share of queries tokenize differently on device.",
    ),
    allow_failed_validation: bool = typer.Option(
        False, "--allow-failed-validation", help="Package even though validation failed (recorded)."
    ),
    timeout: float = typer.Option(300.0, "--timeout", min=1.0, help="Seconds per MediaPipe request."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Package a validated build: MediaPipe metadata, parity in MediaPipe's TextClassifier, bundle + zip."""
    from toolchain.cli import render
    from toolchain.package.packager import package as run_package

    opts = PackageOptions(
        format=fmt,
        name=name,
        version=version,
        description=description,
        author=author,
        license=license_,
        min_confidence_accuracy=min_confidence_accuracy,
        max_tokenizer_mismatch=max_tokenizer_mismatch,
        out_dir=out,
        allow_failed_validation=allow_failed_validation,
        timeout_s=timeout,
    )
    result = run_package(build, opts, render.RichProgress())
    fallback_note = result.manifest.server_fallback.note
    if result.manifest.task == ManifestKind.RETRIEVAL:
        fallback_note = ""  # a top-10 list has no confidence threshold: nothing to warn about
    render.warn(result.warnings + ([f"server fallback: {fallback_note}"] if fallback_note else []))
    render.note(result.notes)
    if as_json:
        render.print_json(result.manifest.to_json())
        return
    render.stdout.print(summary_table(result))
    render.stdout.print(f"bundle: {result.bundle_dir}\nzip:    {result.zip_path}", highlight=False)


def _parity_row(parity: AppParity) -> str:
    """One line per kind of feed: identical vectors, identical top-k lists, or top-1 agreement."""
    low, raw = parity.lowercased, parity.raw
    raw_note = f"; raw (no lowercase()) {raw.agreement:.2%}" if raw is not None else ""
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
