"""Magnitude pruning with tfmot schedules, fine-tuned with UpdatePruningStep, stripped before export."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolchain.errors import StepError
from toolchain.recipe import PruneStep
from toolchain.steps.base import StepContext, StepResult
from toolchain.steps.training import compile_for_finetune, fit, outputs_probabilities
from toolchain.tfenv import keras


@dataclass(frozen=True)
class ScheduleSteps:
    """Where the schedule acts, in optimizer steps, and what it will reach."""

    total_steps: int
    begin_step: int
    end_step: int  # -1: until the end (constant schedule)
    frequency: int
    events: int
    final_sparsity: float
    warnings: list[str] = field(default_factory=list)


def _sparsity_at(cfg: PruneStep, step: int, begin: int, end: int) -> float:
    if cfg.schedule == "constant":
        return cfg.target_sparsity
    progress = min(1.0, max(0.0, (step - begin) / max(1, end - begin)))
    return cfg.target_sparsity + (cfg.initial_sparsity - cfg.target_sparsity) * (1.0 - progress) ** 3


def plan_schedule(cfg: PruneStep, n_train: int) -> ScheduleSteps:
    """Derive begin/end/frequency from epochs and data size when not given, and check what will happen.

    tfmot prunes only at steps where (step - begin) % frequency == 0, within [begin, end]; with the default
    frequency of 100 a small dataset would never be pruned. That is an error here, not a silent no-op.
    """
    steps_per_epoch = max(1, math.ceil(n_train / cfg.batch_size))
    total = steps_per_epoch * cfg.epochs
    begin = cfg.begin_step if cfg.begin_step is not None else 0
    if cfg.schedule == "polynomial":
        end = cfg.end_step if cfg.end_step is not None else max(begin + 1, int(total * 0.6))
        freq = cfg.frequency or max(1, min(100, (end - begin) // 20))
        if cfg.end_step is None:  # align so that the last pruning event lands exactly on end_step
            end = begin + max(1, (end - begin) // freq) * freq
    else:
        end = cfg.end_step if cfg.end_step is not None else -1
        freq = cfg.frequency or max(1, min(100, steps_per_epoch // 2))
    last = total - 1 if end == -1 else min(end, total - 1)
    event_steps = list(range(begin, last + 1, freq)) if begin <= last else []
    where = f"{cfg.epochs} epochs x {steps_per_epoch} steps = {total} steps"
    if not event_steps:
        raise StepError(
            f"prune: no pruning step would run (begin_step {begin}, {where})",
            hint="lower begin_step or train for more epochs",
        )
    final = _sparsity_at(cfg, event_steps[-1], begin, end)
    warnings = []
    if final <= cfg.initial_sparsity + 1e-6 and cfg.schedule == "polynomial":
        raise StepError(
            f"prune: frequency {freq} means the only pruning step is {begin}, which prunes to the initial "
            f"sparsity {cfg.initial_sparsity:.0%} ({where})",
            hint="lower frequency or leave it unset so edgecomp derives it",
        )
    if final < cfg.target_sparsity - 0.005:
        warnings.append(
            f"prune: the last pruning step ({event_steps[-1]}) reaches {final:.1%}, "
            f"not {cfg.target_sparsity:.0%} ({where}); set end_step to a multiple of frequency within the run"
        )
    return ScheduleSteps(total, begin, end, freq, len(event_steps), final, warnings)


def _schedule(cfg: PruneStep, plan: ScheduleSteps) -> Any:
    from tensorflow_model_optimization.sparsity import keras as sparsity

    if cfg.schedule == "constant":
        return sparsity.ConstantSparsity(cfg.target_sparsity, plan.begin_step, plan.end_step, plan.frequency)
    return sparsity.PolynomialDecay(
        cfg.initial_sparsity, cfg.target_sparsity, plan.begin_step, plan.end_step, frequency=plan.frequency
    )


def prunable_weight_names(layer: Any) -> list[str]:
    """The weights tfmot would prune in this layer (empty: not prunable)."""
    from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry

    registry = prune_registry.PruneRegistry
    if not registry.supports(layer):
        return []
    return list(registry._weight_names(layer))  # noqa: SLF001 - tfmot keeps this table private


def layer_sparsity(model: Any, layer_names: list[str]) -> dict[str, dict[str, float | int]]:
    """Fraction of exact zeros in each named layer's prunable weights."""
    out = {}
    for name in layer_names:
        layer = model.get_layer(name)
        wanted = set(prunable_weight_names(layer))
        arrays = [w.numpy() for w in layer.weights if w.name.split("/")[-1].split(":")[0] in wanted]
        total = sum(a.size for a in arrays)
        zeros = sum(int(np.count_nonzero(a == 0)) for a in arrays)
        out[name] = {"sparsity": round(zeros / total, 4) if total else 0.0, "weights": total}
    return out


def run(cfg: PruneStep, model: Any, ctx: StepContext) -> StepResult:
    """Wrap prunable layers, fine-tune with the schedule, strip the wrappers, measure sparsity."""
    from tensorflow_model_optimization.sparsity import keras as sparsity

    names = [layer.name for layer in model.layers]
    unknown = sorted(set(cfg.exclude) - set(names))
    if unknown:
        raise StepError(f"prune: exclude names unknown layers {unknown}", hint=f"layers: {', '.join(names)}")
    x, y = ctx.train_arrays()
    plan = plan_schedule(cfg, len(x))
    schedule = _schedule(cfg, plan)
    pruned_names: list[str] = []

    def wrap(layer: Any) -> Any:
        if layer.name in cfg.exclude or not prunable_weight_names(layer):
            return layer
        pruned_names.append(layer.name)
        return sparsity.prune_low_magnitude(layer, pruning_schedule=schedule)

    wrapped = keras().models.clone_model(model, clone_function=wrap)
    if not pruned_names:
        raise StepError(
            "prune: no prunable layer (Dense, Conv, Embedding) left after exclude",
            hint="remove names from exclude",
        )
    compile_for_finetune(wrapped, cfg.learning_rate, outputs_probabilities(model))
    metrics = fit(
        wrapped,
        x,
        y,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        callbacks=[sparsity.UpdatePruningStep()],
        progress=ctx.progress,
        description=f"prune ({cfg.schedule} -> {cfg.target_sparsity:.0%})",
        validation=ctx.val_arrays(),
    )
    stripped = sparsity.strip_pruning(wrapped)
    per_layer = layer_sparsity(stripped, pruned_names)
    total_w = sum(v["weights"] for v in per_layer.values())
    overall = sum(v["sparsity"] * v["weights"] for v in per_layer.values()) / max(1, total_w)
    report = {
        "schedule": cfg.schedule,
        "target_sparsity": cfg.target_sparsity,
        "achieved_sparsity": round(overall, 4),
        "begin_step": plan.begin_step,
        "end_step": plan.end_step,
        "frequency": plan.frequency,
        "total_steps": plan.total_steps,
        "pruning_events": plan.events,
        "excluded": list(cfg.exclude),
        "layers": per_layer,
        "train_metrics": {k: round(v, 4) for k, v in metrics.items()},
    }
    return StepResult(model=stripped, report=report, warnings=list(plan.warnings))
