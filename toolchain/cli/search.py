"""`edgecomp search MODEL --recipe R --device D`: the smallest, fastest build that meets the limits.

Thin: compose the base recipe, call toolchain.search.run.search, render. Optuna and Ray are imported only
below this command (pip install 'edgecomp[search]').
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from toolchain.base.errors import EdgecompError
from toolchain.cli.options import DEVICE_HELP, PROFILES_DIR_HELP, complete_device


def search(
    source: Path | None = typer.Argument(None, help="Teacher/source model (overrides the recipe's)."),
    recipe: Path | None = typer.Option(
        None, "--recipe", "-r", help="Base recipe YAML (its `search:` = space)."
    ),
    device: str = typer.Option(
        ..., "--device", "-d", help=f"{DEVICE_HELP} One device.", autocompletion=complete_device
    ),
    profiles_dir: list[Path] | None = typer.Option(None, "--profiles-dir", help=PROFILES_DIR_HELP),
    trials: int = typer.Option(
        ..., "--trials", "-n", min=1, help="Finished trials wanted (a rerun resumes)."
    ),
    max_size_kb: float | None = typer.Option(
        None, "--max-size-kb", min=0.001, help="model.tflite size limit."
    ),
    max_accuracy_drop: float | None = typer.Option(
        None, "--max-accuracy-drop", min=0.0, help="Val accuracy drop vs the source, in points."
    ),
    max_latency_ms: float | None = typer.Option(
        None, "--max-latency-ms", min=0.001, help="Host-measured median latency (profile's threads)."
    ),
    workers: int = typer.Option(1, "--workers", "-w", min=1, max=64, help="Trials run at once."),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="Run trials as Ray tasks on this cluster: auto, host:port, ray://host:10001.",
    ),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Sampler seed (default: the recipe's seed)."),
    validate: bool = typer.Option(
        True, "--validate/--no-validate", help="Validate each Pareto-front model on --device (its runtime)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the trials and the front as JSON."),
) -> None:
    """Search steps x quantization for the Pareto front of size, val accuracy and op cost (Optuna, Ray)."""
    # loaded when the command runs, so `edgecomp --help` stays instant
    from toolchain.cli import render
    from toolchain.cli.search_view import TrialsView, front_table
    from toolchain.recipe.compose import compose_recipe

    try:
        import optuna  # noqa: F401

        # loaded when the command runs, so `edgecomp --help` stays instant
        from toolchain.search.run import search as run_search
        from toolchain.search.run import search_config
    except ImportError:
        raise EdgecompError(
            "edgecomp search needs Optuna, which is not installed", hint="pip install 'edgecomp[search]'"
        ) from None
    base = compose_recipe(recipe, source, {})
    config = search_config(
        base,
        device,
        trials,
        max_size_kb,
        max_accuracy_drop,
        max_latency_ms,
        workers,
        ray_address,
        seed,
        tuple(profiles_dir or ()),
    )
    with TrialsView(render.progress_console(), trials) as view:
        result = run_search(config, view.add, view.start, validate, view.validated)
    if as_json:
        render.print_json(_as_json(result))
        return
    render.stdout.print(front_table(result.front, result.best))
    render.stdout.print(
        f"best recipe: {result.best_recipe}  (edgecomp convert --recipe {result.best_recipe})"
    )
    render.stdout.print(f"trials, front and plot: {result.out_dir}")


def _as_json(result: Any) -> dict[str, Any]:
    # loaded when the command runs, so `edgecomp --help` stays instant
    from toolchain.search.outputs import row

    return {
        "out_dir": str(result.out_dir),
        "best_recipe": str(result.best_recipe) if result.best_recipe else None,
        "best_trial": result.best.number if result.best else None,
        "pareto": [r.number for r in result.front],
        "trials": [
            {**row(r), "params": r.params, "validation": r.validation.to_json() if r.validation else None}
            for r in result.records
        ],
    }
