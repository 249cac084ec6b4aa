"""`edgecomp inspect MODEL.tflite`: metadata, labels, tokenizer, ops, sizes, and the manifest check.
`edgecomp inspect DIR`: what a model folder holds (toolchain/sources/hub_folder.py), before converting."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from toolchain.base.errors import GateFailed

if TYPE_CHECKING:  # the package module loads when the command runs: --help stays instant
    from toolchain.package.inspect import Inspection
    from toolchain.report.hub import HubFolderInfo


def inspect(
    model: Path = typer.Argument(
        ...,
        help="The .tflite to inspect (e.g. from a dist/ bundle), or a model folder (transformers, "
        "sentence-transformers, the Hub's onnx/ layout, model.onnx) to see what convert would take.",
    ),
    manifest: Path | None = typer.Option(
        None, "--manifest", help="manifest.json to check against (default: found beside the model)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print everything as JSON."),
) -> None:
    """Show what a model carries and verify it against its manifest (exit 1 on a mismatch); for a model
    folder, what convert would find in it."""
    # loaded when the command runs, so `edgecomp --help` stays instant
    from toolchain.cli import render

    if model.is_dir() and not (model / "saved_model.pb").is_file():
        from toolchain.sources.hub_folder import inspect_folder  # reason: loaded when the command runs

        found = inspect_folder(model)
        if as_json:
            render.print_json(found.to_json())
        else:
            render.stdout.print(folder_table(found))
        return
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


def folder_table(info: HubFolderInfo) -> Table:
    """What a model folder holds, one row per fact (plain rows when piped: names are never cut)."""
    t = Table(title=f"{info.path}: {info.kind} folder", show_header=False)
    t.add_column("", style="bold")
    t.add_column("")
    rows = [
        ("architecture", " / ".join(x for x in (info.architecture, info.model_type) if x) or "-"),
        ("head", info.head or "-"),
        ("inputs", ", ".join(info.inputs) or "-"),
        ("output", info.output or "-"),
        ("tokenizer", f"{info.tokenizer} ({info.tokenizer_file})" if info.tokenizer_file else info.tokenizer),
        ("pooling", f"{info.pooling}{', normalized' if info.normalize else ''}" if info.pooling else "-"),
        (
            "labels",
            f"{len(info.labels)}: {', '.join(info.labels[:5])}{', …' * (len(info.labels) > 5)}"
            if info.labels
            else "none",
        ),
        ("weights", f"{', '.join(info.weights)} ({info.weights_format})" if info.weights else "none"),
        ("onnx files", ", ".join(info.onnx_files) or "none"),
        ("converts", info.onnx_file or ("exported to ONNX by edgecomp" if info.weights else "-")),
        ("query length", f"{info.seq_len} ({info.seq_len_from})" if info.seq_len else "not set (--seq-len)"),
    ]
    for name, value in rows:
        t.add_row(name, value)
    for note in info.notes:
        t.add_row("note", note)
    return t
