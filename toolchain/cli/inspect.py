"""`edgecomp inspect MODEL.tflite`: metadata, labels, tokenizer, ops, sizes, and the manifest check."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from toolchain.base.errors import GateFailed

if TYPE_CHECKING:  # the package module loads when the command runs: --help stays instant
    from toolchain.package.inspect import Inspection


def inspect(
    model: Path = typer.Argument(..., help="The .tflite to inspect (e.g. from a dist/ bundle)."),
    manifest: Path | None = typer.Option(
        None, "--manifest", help="manifest.json to check against (default: found beside the model)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print everything as JSON."),
) -> None:
    """Show what a model carries and verify it against its manifest (exit 1 on a mismatch)."""
    # loaded when the command runs, so `edgecomp --help` stays instant
    from toolchain.cli import render
    from toolchain.package.inspect import inspect_model  # loaded when the command runs (--help)

    result = inspect_model(model, manifest)
    if as_json:
        render.print_json(result.as_dict())
    else:
        for table in tables(result):
            render.stdout.print(table)
    if result.manifest_path is None:
        render.warn(["no manifest.json beside the model: nothing to verify against (pass --manifest)"])
    failed = [c for c in result.checks if not c.ok]
    if failed:
        raise GateFailed(
            f"{model} does not match {result.manifest_path}: {failed[0].name}: {failed[0].detail}",
            hint="the file was changed or is from another package: get the bundle again",
        )


def tables(result: Inspection) -> list[Table]:
    s = result.summary
    info = Table(title=str(result.path), show_header=False)
    info.add_column("", style="bold")
    info.add_column("")
    info.add_row("size", f"{s.size_bytes:,} B (gzip {s.gzip_bytes:,} B), {s.parameters:,} params")
    info.add_row("sha256", result.sha256)
    for spec in s.inputs:
        info.add_row("input", f"{spec.name} {spec.dtype} {spec.shape}")
    for spec in s.outputs:
        info.add_row("output", f"{spec.name} {spec.dtype} {spec.shape}")
    info.add_row("ops", ", ".join(f"{op} v{v}" for op, v in s.op_versions.items()))
    if s.custom_ops:
        info.add_row("custom ops", ", ".join(s.custom_ops))
    meta = result.metadata
    if meta is None:
        info.add_row("metadata", "none (not loadable by MediaPipe Tasks)")
    else:
        by = f"by {meta.author}" if meta.author else "author not set"
        info.add_row("metadata", f"{meta.name} {meta.version} {by} ({meta.license or 'license not set'})")
        info.add_row("description", meta.description or "")
        labels = meta.labels
        info.add_row("labels", f"{len(labels)} ({', '.join(labels[:4])}, …)" if labels else "none")
        tok = meta.tokenizer
        info.add_row(
            "tokenizer",
            f"{tok.kind}, {tok.vocab_file} ({len(meta.files.get(tok.vocab_file or '', b''))} bytes)"
            if tok and tok.kind == "sentencepiece"
            else f"{tok.kind} delimiter {tok.delim_regex!r}, {tok.vocab_file} ({meta.vocab_size} tokens)"
            if tok
            else "none",
        )
    out = [info]
    if result.checks:
        checks = Table(title=f"manifest check: {result.manifest_path}")
        for col in ("check", "result", "detail"):
            checks.add_column(col)
        for c in result.checks:
            checks.add_row(c.name, "[green]ok[/green]" if c.ok else "[red]MISMATCH[/red]", c.detail)
        out.append(checks)
    return out
