"""`edgecomp package BUILD --format mediapipe|android-assets|edge`: the bundle an app team drops in."""

from __future__ import annotations

from pathlib import Path

import typer

from toolchain.base.types import ManifestKind, PackageFormat


def package(
    build: Path = typer.Argument(..., help="Build directory (build/<name>) made by `edgecomp convert`."),
    fmt: PackageFormat | None = typer.Option(
        None, "--format", "-f", help="What to build (default: the recipe's package.format)."
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
    mediapipe: str = typer.Option(
        "0.10.21",
        "--mediapipe",
        help="The app's MediaPipe, which parity runs in: 0.10.21 (tasks-text 0.10) or 1.2.3 (MediaPipe 1.x, "
        "LiteRT 2.3 inside: runs 4-bit weights). The metadata is written by 0.10.21 either way.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Package a validated build: MediaPipe metadata, parity in MediaPipe's TextClassifier, bundle + zip.

    Parity runs on the test split (else val; an embedder without either: its calibration queries).

    A BERT export without token_type_ids gets an unused third input for MediaPipe's BERT path.

    A build with 4-bit weights (`--quantize int4`) needs `--mediapipe 1.2.3` (or `--format edge`):
    MediaPipe 0.10.21 cannot load them.
    """
    # the packager (MediaPipe metadata, parity) and its tables load when the command runs (--help: instant)
    from toolchain.cli import render
    from toolchain.cli.package_view import summary_table
    from toolchain.package.packager import package as run_package
    from toolchain.package.types import PackageOptions

    opts = PackageOptions(
        format=None if fmt is None else str(fmt.value),
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
        mediapipe=mediapipe,
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
