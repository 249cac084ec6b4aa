"""`edgecomp train`: a project folder -> model.keras + recipe.yaml (toolchain.project.train)."""

from __future__ import annotations

from pathlib import Path

import typer

from toolchain.cli.data import print_rows


def train(
    project: Path = typer.Argument(..., help="Project folder written by `edgecomp data`."),
    epochs: int = typer.Option(30, "--epochs", min=1, help="At most this many epochs."),
    patience: int = typer.Option(
        4, "--patience", min=1, help="Stop after this many epochs without a better val."
    ),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    seed: int | None = typer.Option(
        None, "--seed", min=0, max=2**32 - 1, help="Default: the project's (edgecomp data --seed)."
    ),
    embed_dim: int = typer.Option(64, "--embed-dim", min=1, help="Embedding width."),
    filters: int = typer.Option(128, "--filters", min=1, help="Conv1D filters."),
    hidden: int = typer.Option(128, "--hidden", min=1, help="Hidden Dense units."),
    build_dir: Path = typer.Option(
        Path("build"), "--build-dir", help="Where the recipe sends `edgecomp convert`'s build/<name>."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Train a baseline intent model (Embedding -> Conv1D -> max-pool -> Dense) and write its recipe."""
    # loaded when the command runs, so `edgecomp --help` stays instant
    from toolchain.cli import render
    from toolchain.project.train import TrainOptions, train_project

    options = TrainOptions(
        epochs=epochs,
        patience=patience,
        batch_size=batch_size,
        seed=seed,
        embed_dim=embed_dim,
        filters=filters,
        hidden=hidden,
        build_dir=build_dir,
    )
    summary = train_project(project, options, progress=render.RichProgress())
    if as_json:
        render.print_json(summary.to_json())
        return
    test = summary.test
    rows = [
        ["parameters", f"{summary.parameters:,}"],
        ["epochs", f"{summary.epochs_run} (best val: epoch {summary.best_epoch})"],
        ["val accuracy", f"{summary.val_accuracy[summary.best_epoch - 1]:.2%} (best epoch)"],
        ["test accuracy", f"{test.accuracy:.2%} ({test.queries} queries)"],
        ["test macro-F1", f"{test.macro_f1:.4f}"],
        ["gates", ", ".join(f"{k} {v}" for k, v in summary.gates.items())],
    ]
    print_rows(f"{summary.name}: baseline intent model", ["", "value"], rows)
    render.stdout.print(
        f"wrote {summary.model} and {summary.recipe}\n"
        f"next: edgecomp convert {project}/model.keras --recipe {project}/recipe.yaml "
        f"[--preset distill-prune-int8]",
        highlight=False,
    )
