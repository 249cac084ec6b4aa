"""`edgecomp search` as one library call: resolve the limits, run the study, write the outputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devices.profiles.schema import get_profile
from toolchain.base.atomic import write_text
from toolchain.base.errors import EdgecompError, GateFailed
from toolchain.device_stages import validate_target
from toolchain.recipe.schema import Recipe
from toolchain.search.front import choose, pareto_front
from toolchain.search.outputs import write_plot, write_tables
from toolchain.search.study import (
    Limits,
    SearchConfig,
    TrialRecord,
    run_study,
    trial_build_dir,
    trial_recipe,
)
from toolchain.search.trial import TrialValidation


@dataclass(frozen=True)
class SearchResult:
    out_dir: Path
    records: list[TrialRecord]
    front: list[TrialRecord]
    best: TrialRecord | None
    best_recipe: Path | None
    plot: Path | None


def _tighter(flag: float | None, budget: float | None) -> float | None:
    given = [v for v in (flag, budget) if v is not None]
    return min(given) if given else None


def search_config(
    recipe: Recipe,
    device: str,
    trials: int,
    max_size_kb: float | None = None,
    max_accuracy_drop: float | None = None,
    max_latency_ms: float | None = None,
    workers: int = 1,
    ray_address: str | None = None,
    seed: int | None = None,
    profiles_dirs: tuple[Path, ...] = (),
) -> SearchConfig:
    """The device profile's budgets and the flags merged (the tighter limit wins); seed defaults to the
    recipe's."""

    profile = get_profile(device, profiles_dirs)
    b = profile.budgets
    limits = Limits(
        _tighter(max_size_kb, b.model_size_kb),
        max_accuracy_drop,
        _tighter(max_latency_ms, b.latency_ms),
    )
    return SearchConfig(
        recipe=recipe,
        device=profile.name,
        threads=profile.threads,
        xnnpack=profile.xnnpack,
        limits=limits,
        trials=trials,
        workers=workers,
        ray_address=ray_address,
        seed=recipe.seed if seed is None else seed,
        profiles_dirs=tuple(profiles_dirs),
    )


def validate_front(
    config: SearchConfig, front: list[TrialRecord], on_done: Callable[[TrialRecord], None] = lambda r: None
) -> None:
    """Each front member's build through `edgecomp validate` on the search's device (its runtime, emulated
    when the device's arch is not this host's), on the val split the trial was measured on; the result is
    kept in `record.validation`, and `choose` skips members that fail."""

    profile = get_profile(config.device, config.profiles_dirs)
    for r in front:
        report = validate_target(trial_build_dir(config, r.number), [profile], write_report=False)
        device = report.devices[profile.name]
        r.validation = TrialValidation(
            device=device.device,
            runtime=device.runtime,
            passed=report.passed,
            failures=device.failures,
            seconds=round(device.seconds, 1),
        )
        on_done(r)


def search(
    config: SearchConfig,
    on_trial: Callable[[TrialRecord], None] = lambda r: None,
    on_start: Callable[[int], None] = lambda done: None,
    validate: bool = True,
    on_validated: Callable[[TrialRecord], None] = lambda r: None,
) -> SearchResult:
    """Run or resume the search, validate the front on the device (`validate`), write build/<name>.search/;
    GateFailed when no trial meets the limits or no front member passes validation (the trials and the plot
    are written first, so the user sees how far off they were)."""
    records = run_study(config, on_trial, on_start)
    out = config.out_dir
    front = pareto_front(records)
    if validate:
        validate_front(config, front, on_validated)
    write_tables(out, records, front)
    plot = write_plot(out, records, front, config.limits)
    best = choose(front)
    result = SearchResult(out, records, front, best, None, plot)
    complete = [r for r in records if r.state == "complete"]
    if not complete:
        first = next((r.error for r in records if r.error), "no trial ran")
        raise EdgecompError(
            f"every trial failed ({first})", hint=f"see {out / 'trials.csv'} and the trials/ folder"
        )
    if best is None and front:
        first = front[0]
        failures = first.validation.failures if first.validation is not None else []
        where = trial_build_dir(config, first.number)
        raise GateFailed(
            f"no Pareto-front model passes validation on {config.device}: trial {first.number}: "
            f"{'; '.join(failures)[:200]}",
            hint=f"run `edgecomp validate {where} --device {config.device}` for the details",
        )
    if best is None:
        closest = min(complete, key=lambda r: max(r.violations))
        m = closest.metrics
        assert m is not None
        raise GateFailed(
            f"no trial meets the constraints {_limits_text(config.limits)}; closest: trial {closest.number}"
            f" ({m.size_bytes / 1024:.1f} KB, drop {m.accuracy_drop_points:.2f} pt, {m.latency_ms:.3f} ms)",
            hint=f"loosen --max-size-kb, --max-accuracy-drop or --max-latency-ms, or widen `search:` ({out})",
        )
    path = out / "best.recipe.yaml"
    write_text(path, trial_recipe(config, best.params, None).to_yaml())
    return SearchResult(out, records, front, best, path, result.plot)


def _limits_text(limits: Limits) -> str:
    parts = []
    if limits.max_size_kb is not None:
        parts.append(f"size <= {limits.max_size_kb:g} KB")
    if limits.max_accuracy_drop is not None:
        parts.append(f"drop <= {limits.max_accuracy_drop:g} pt")
    if limits.max_latency_ms is not None:
        parts.append(f"latency <= {limits.max_latency_ms:g} ms")
    return "(" + ", ".join(parts) + ")" if parts else "(none)"
