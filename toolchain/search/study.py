"""The Optuna study: ask a batch of trials, run them (execute.py), tell the measured objectives.

Three objectives, all minimized and all deterministic: gzipped size (bytes), val accuracy drop vs the source
(points), and the op-cost table's cost of one invoke (devices/opcost.py `estimated_us`, from the model's op
shapes). Size and accuracy-drop limits go to the sampler as constraints (<= 0 is feasible) through
`Trial.set_constraint`, so TPE prefers feasible regions. Latency is measured on this host for the report
and for a latency limit (the flag or the device profile's budget), which filters the front and the choice
but is never told to the sampler: wall-clock time on a shared machine moves with its load, and a sampler
that read it chose other trials on a busy machine (issue 25: one 30-trial bench found a model dominating
distill-prune-int8, its rerun none).

Reproducible: the sampler is seeded and trials are asked in fixed batches of `--workers` and told in trial
order, and trial builds are deterministic by the recipe's seed, so the same seed and batch size choose the
same trials whether they ran locally or on Ray, alone or beside other work. Resumable: the study lives in an
Optuna JournalStorage file in build/<name>.search/; rerunning the same command continues it up to N finished
trials, and a trial left running by an interrupted run is marked failed. A different base recipe, device,
limits, seed or objectives refuses the old journal instead of mixing two searches.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from toolchain.base.errors import RecipeError
from toolchain.recipe.compose import recipe_from_dict
from toolchain.recipe.schema import Recipe
from toolchain.recipe.space import SearchSpec
from toolchain.search import journal_mark
from toolchain.search.execute import TrialJob, TrialOutcome, make_executor
from toolchain.search.space import NONE, apply_params, preset_params, search_choices
from toolchain.search.trial import OBJECTIVES, TrialMetrics, TrialValidation
from toolchain.sources.detect import source_format
from toolchain.tokenizers.sources import is_wordpiece_vocab

STUDY_NAME = "edgecomp-search"


@dataclass(frozen=True)
class Limits:
    """Constraints after merging flags with the device profile's budgets (the tighter wins)."""

    max_size_kb: float | None = None  # raw model.tflite size, as the profiles' model_size_kb budget
    max_accuracy_drop: float | None = None  # points below the source model on val
    max_latency_ms: float | None = None  # host-measured median, the profile's threads

    def names(self) -> list[str]:
        pairs = [("size_kb", self.max_size_kb), ("accuracy_drop", self.max_accuracy_drop)]
        return [n for n, lim in [*pairs, ("latency_ms", self.max_latency_ms)] if lim is not None]

    def violations(self, m: TrialMetrics) -> list[float]:
        """One value per constraint (latency last); <= 0 satisfied (Optuna's convention)."""
        pairs = [
            (m.size_bytes / 1024.0, self.max_size_kb),
            (m.accuracy_drop_points, self.max_accuracy_drop),
            (m.latency_ms, self.max_latency_ms),
        ]
        return [round(v - lim, 6) for v, lim in pairs if lim is not None]

    def steering(self) -> list[str]:
        """The constraints the sampler reads: the deterministic ones (latency moves with machine load)."""
        return [n for n in self.names() if n != "latency_ms"]


@dataclass(frozen=True)
class SearchConfig:
    recipe: Recipe  # the base recipe (its `search:` section or the defaults give the space)
    device: str
    threads: int
    xnnpack: bool
    limits: Limits
    trials: int
    workers: int = 1
    ray_address: str | None = None
    seed: int = 0
    profiles_dirs: tuple[Path, ...] = ()  # where --device's profile was found besides the shipped ones

    @property
    def out_dir(self) -> Path:
        return self.recipe.output.dir / f"{self.recipe.name}.search"

    @property
    def spec(self) -> SearchSpec:
        return self.recipe.search or SearchSpec()


@dataclass
class TrialRecord:
    number: int
    state: str  # complete | failed | stopped (hopeless after a step: no quantization, no latency)
    params: dict[str, Any]
    metrics: TrialMetrics | None = None  # complete trials
    violations: list[float] = field(default_factory=list)
    error: str | None = None  # why it failed, or why it was stopped
    preset: str | None = None  # the shipped preset this trial rebuilds (seed_presets)
    validation: TrialValidation | None = None  # front members: the device validation (run.py)

    @property
    def feasible(self) -> bool:
        return self.state == "complete" and all(v <= 0 for v in self.violations)


def base_dict(recipe: Recipe) -> dict[str, Any]:
    """The recipe as plain data with absolute paths (what a trial and best.recipe.yaml start from)."""
    return yaml.safe_load(recipe.to_yaml())


def word_level_keras(recipe: Recipe) -> bool:
    """A Keras source with MediaPipe's word-level regex vocab: the builds vocab_prune can shrink."""
    vocab = recipe.data.vocab
    keras = source_format(recipe) in ("keras", "savedmodel")
    return keras and recipe.data.tokenizer is None and vocab is not None and not is_wordpiece_vocab(vocab)


def fingerprint_data(config: SearchConfig) -> dict[str, Any]:
    """What a journal is resumable for (toolchain/search/journal_mark.py): a journal told other objectives
    (latency before issue 25) is refused too."""
    c = config
    return {"recipe": base_dict(c.recipe), "device": c.device, "threads": c.threads,
            "limits": c.limits.__dict__, "seed": c.seed, "objectives": list(OBJECTIVES)}  # fmt: skip


def fingerprint(config: SearchConfig) -> str:
    return journal_mark.mark(fingerprint_data(config))


def suggest(trial: Any, space: dict[str, Any]) -> dict[str, Any]:
    """Sample one point; conditional knobs are only sampled when their step is on."""
    p: dict[str, Any] = {"quant_mode": trial.suggest_categorical("quant_mode", space["quant_mode"])}
    if "vocab_min_count" in space:
        p["vocab_min_count"] = trial.suggest_categorical("vocab_min_count", space["vocab_min_count"])
    if "prune" in space:
        p["prune"] = trial.suggest_categorical("prune", space["prune"])
        if p["prune"] == "magnitude":
            lo, hi = space["prune_sparsity"]
            p["prune_sparsity"] = round(trial.suggest_float("prune_sparsity", lo, hi, step=0.05), 4)
    if "lowrank" in space:
        p["lowrank"] = trial.suggest_categorical("lowrank", space["lowrank"])
        if p["lowrank"]:
            lo, hi = space["lowrank_reduction"]
            p["lowrank_reduction"] = round(trial.suggest_float("lowrank_reduction", lo, hi, step=0.05), 4)
    if "qat" in space and p["quant_mode"] == "int8":
        p["qat"] = trial.suggest_categorical("qat", space["qat"])
    if "student" in space:
        p["student"] = trial.suggest_categorical("student", space["student"])
    if "student_width" in space:
        p["student_width"] = trial.suggest_categorical("student_width", space["student_width"])
    return p


def trial_recipe(config: SearchConfig, params: dict[str, Any], number: int | None) -> Recipe:
    """The recipe of a trial (number given: its own output dir) or the final one (None: the base's name)."""

    data = apply_params(base_dict(config.recipe), params, config.spec)
    if number is not None:
        data["name"] = f"trial-{number:03d}"
        data["output"] = {"dir": str(config.out_dir.resolve() / "trials")}
    return recipe_from_dict(data, origin=f"search params {params}")


def _study(config: SearchConfig) -> Any:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(config.out_dir / "study.journal")))
    sampler = optuna.samplers.TPESampler(
        seed=config.seed,
        n_startup_trials=config.spec.startup_trials or min(10, max(2, config.trials // 3)),
    )
    study = optuna.create_study(
        study_name=STUDY_NAME,
        storage=storage,
        load_if_exists=True,
        directions=["minimize"] * 3,
        sampler=sampler,
    )
    journal_mark.check(study, fingerprint_data(config), config.out_dir, "search")
    return study


def _record(t: Any) -> TrialRecord:
    state = {"COMPLETE": "complete", "PRUNED": "stopped"}.get(t.state.name, "failed")
    params = t.user_attrs.get("params", dict(t.params))
    metrics = t.user_attrs.get("metrics")
    return TrialRecord(
        t.number, state, params, None if metrics is None else TrialMetrics.model_validate(metrics),
        t.user_attrs.get("violations", []), t.user_attrs.get("error"), t.user_attrs.get("preset"),
    )  # fmt: skip


def _finished(study: Any) -> list[Any]:
    return [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]


def _fail_stale(study: Any) -> None:
    import optuna

    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        optuna.trial.Trial(study, t._trial_id).set_user_attr("error", "interrupted (previous run)")
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)


def trial_build_dir(config: SearchConfig, number: int) -> Path:
    return config.out_dir.resolve() / "trials" / f"trial-{number:03d}"


def _job(config: SearchConfig, trial: Any, params: dict[str, Any]) -> TrialJob:
    trial_dir = trial_build_dir(config, trial.number)
    recipe = trial_recipe(config, params, trial.number)
    run_dir = trial_dir.parent / f"run-{trial.number:03d}"  # request, pid, result; the build is trial_dir
    for stale in (trial_dir, run_dir):
        if stale.exists():
            shutil.rmtree(stale)
    run_dir.mkdir(parents=True)
    request = {
        "recipe_yaml": recipe.to_yaml(),
        "device": config.device,
        "stop_above_drop": _stop_above(config),
    }
    (run_dir / "request.json").write_text(json.dumps(request))
    return TrialJob(trial.number, run_dir / "request.json")


def _stop_above(config: SearchConfig) -> float | None:
    """The post-step float val accuracy drop (points) that stops a trial as hopeless; None: never."""
    spec, limit = config.spec, config.limits.max_accuracy_drop
    return None if limit is None or not spec.stop_hopeless else round(limit + spec.hopeless_margin, 4)


def _tell(study: Any, config: SearchConfig, trial: Any, params: dict, out: TrialOutcome) -> TrialRecord:
    import optuna

    trial.set_user_attr("params", params)
    preset = trial.user_attrs.get("preset")
    if out.result is None:
        trial.set_user_attr("error", out.error)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return TrialRecord(trial.number, "failed", params, error=out.error, preset=preset)
    metrics = out.result.metrics
    if metrics is None:  # stopped as hopeless after a step
        why = out.result.stopped or "stopped"
        trial.set_user_attr("error", why)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return TrialRecord(trial.number, "stopped", params, error=why, preset=preset)
    violations = config.limits.violations(metrics)
    trial.set_user_attr("metrics", metrics.to_json())
    trial.set_user_attr("violations", violations)
    steering = config.limits.steering()
    for name, value in zip(config.limits.names(), violations, strict=True):
        if name in steering:  # read by the sampler (Optuna 5: Trial.set_constraint); latency never
            trial.set_constraint(name, value)
    study.tell(trial, [metrics.objective(k) for k in OBJECTIVES])
    return TrialRecord(trial.number, "complete", params, metrics, violations, preset=preset)


def run_study(
    config: SearchConfig,
    on_trial: Callable[[TrialRecord], None] = lambda r: None,
    on_start: Callable[[int], None] = lambda done: None,
) -> list[TrialRecord]:
    """Run (or resume) the study until `config.trials` trials have finished; all records, by number."""
    space = search_choices(
        config.spec, any(s.kind == "distill" for s in config.recipe.steps), word_level_keras(config.recipe)
    )
    if config.recipe.data.val is None:
        raise RecipeError(
            "search chooses on the val split, and the recipe has no data.val",
            hint="add data.val (labelled queries kept out of training and of data.test)",
        )
    study = _study(config)
    _fail_stale(study)
    done = _finished(study)
    if not study.get_trials(deepcopy=False) and config.spec.seed_presets:
        for name, params in preset_params(space, config.spec, base_dict(config.recipe)).items():
            study.enqueue_trial(params, user_attrs={"preset": name})
    on_start(len(done))
    for t in done:
        on_trial(_record(t))
    executor = make_executor(config.workers, config.ray_address)
    try:
        while len(_finished(study)) < config.trials:
            batch = min(executor.slots, config.trials - len(_finished(study)))
            asked = [study.ask() for _ in range(batch)]
            params = [suggest(t, space) for t in asked]
            outcomes = executor.run_batch([_job(config, t, p) for t, p in zip(asked, params, strict=True)])
            for t, p, out in zip(asked, params, outcomes, strict=True):
                on_trial(_tell(study, config, t, p, out))
    finally:
        executor.close()
    return [_record(t) for t in sorted(_finished(study), key=lambda t: t.number)]


__all__ = ["NONE", "Limits", "SearchConfig", "TrialRecord", "run_study"]
