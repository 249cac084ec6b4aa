"""Magnitude pruning with tfmot schedules, fine-tuned with UpdatePruningStep, stripped before export."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolchain.base.errors import StepError
from toolchain.base.tfenv import keras
from toolchain.recipe.steps import PruneStep
from toolchain.report.steps import LayerSparsity
from toolchain.sources.keras_inputs import rows
from toolchain.steps.base import StepContext, StepResult
from toolchain.steps.training import compile_for_finetune, fit, outputs_probabilities


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


def layer_sparsity(model: Any, layer_names: list[str]) -> dict[str, LayerSparsity]:
    """Fraction of exact zeros in each named layer's prunable weights."""
    out = {}
    for name in layer_names:
        layer = model.get_layer(name)
        wanted = set(prunable_weight_names(layer))
        arrays = [w.numpy() for w in layer.weights if w.name.split("/")[-1].split(":")[0] in wanted]
        total = sum(a.size for a in arrays)
        zeros = sum(int(np.count_nonzero(a == 0)) for a in arrays)
        out[name] = LayerSparsity(sparsity=round(zeros / total, 4) if total else 0.0, weights=total)
    return out


def run(cfg: PruneStep, model: Any, ctx: StepContext) -> StepResult:
    """Wrap prunable layers, fine-tune with the schedule, strip the wrappers, measure sparsity."""
    from tensorflow_model_optimization.sparsity import keras as sparsity

    names = [layer.name for layer in model.layers]
    unknown = sorted(set(cfg.exclude) - set(names))
    if unknown:
        raise StepError(f"prune: exclude names unknown layers {unknown}", hint=f"layers: {', '.join(names)}")
    x, y = ctx.train_arrays()
    plan = plan_schedule(cfg, rows(x))
    schedule = _schedule(cfg, plan)
    pruned_names: list[str] = []

    structure, skipped = structured_options(cfg), []

    def wrap(layer: Any) -> Any:
        if layer.name in cfg.exclude or not prunable_weight_names(layer):
            return layer
        if structure and not structured_ok(cfg, layer):
            skipped.append(layer.name)
            return layer
        pruned_names.append(layer.name)
        return sparsity.prune_low_magnitude(layer, pruning_schedule=schedule, **structure)

    wrapped = keras().models.clone_model(model, clone_function=wrap)
    if not pruned_names:
        raise StepError(
            "prune: no prunable layer (Dense, Conv, Embedding) left after exclude"
            + (f" ({_structure_name(cfg)} needs rank-2 weights: Dense, Embedding)" if structure else ""),
            hint="remove names from exclude, or drop m_by_n/block",
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
    total_w = sum(v.weights for v in per_layer.values())
    overall = sum(v.sparsity * v.weights for v in per_layer.values()) / max(1, total_w)
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
        "sparsity_honesty": sparsity_honesty(stripped, pruned_names, cfg),
    }
    warnings = list(plan.warnings)
    if structure:
        report["structure"] = _structure_name(cfg)
        report["structured_skipped"] = skipped
        if cfg.m_by_n:
            report["m_by_n_verified"] = verify_m_by_n(stripped, pruned_names, cfg.m_by_n)
        if skipped:
            why = f"{_structure_name(cfg)} needs rank-2 weights"
            warnings.append(f"prune: {', '.join(skipped)} left dense ({why})")
    return StepResult(model=stripped, report=report, warnings=warnings)


def _structure_name(cfg: PruneStep) -> str:
    return f"{cfg.m_by_n} structured" if cfg.m_by_n else f"block {cfg.block[0]}x{cfg.block[1]}"


def structured_options(cfg: PruneStep) -> dict[str, Any]:
    """Extra prune_low_magnitude arguments for 2:4-style or block sparsity."""
    if cfg.m_by_n:
        m, n = (int(v) for v in cfg.m_by_n.split(":"))
        return {"sparsity_m_by_n": (m, n)}
    if cfg.block:
        return {"block_size": tuple(cfg.block)}
    return {}


def structured_ok(cfg: PruneStep, layer: Any) -> bool:
    """tfmot builds m-by-n and block masks for rank-2 weights only (Dense kernels, embedding tables)."""
    wanted = set(prunable_weight_names(layer))
    ranks = {len(w.shape) for w in layer.weights if w.name.split("/")[-1].split(":")[0] in wanted}
    return ranks == {2}


def verify_m_by_n(model: Any, names: list[str], m_by_n: str) -> dict[str, bool]:
    """Every group of N consecutive weights along the input axis holds at least M zeros."""
    m, n = (int(v) for v in m_by_n.split(":"))
    out = {}
    for name in names:
        w = model.get_layer(name).get_weights()[0]
        rows = w.T  # tfmot groups N consecutive rows of a rank-2 weight (the input axis of a Dense kernel)
        cols = rows.shape[-1] - rows.shape[-1] % n
        groups = rows[:, :cols].reshape(rows.shape[0], -1, n)
        out[name] = bool(np.all(np.sum(groups == 0, axis=-1) >= m))
    return out


def sparsity_honesty(model: Any, names: list[str], cfg: PruneStep) -> str:
    """Whether a runtime will run the pruned ops faster, or only the gzipped download shrinks."""
    kinds = sorted({model.get_layer(n).__class__.__name__ for n in names})
    layers = [model.get_layer(n) for n in names]
    one_by_one = [
        lay.name for lay in layers if lay.__class__.__name__ == "Conv2D" and tuple(lay.kernel_size) == (1, 1)
    ]
    if cfg.m_by_n:
        return (
            f"{cfg.m_by_n} structured sparsity in {', '.join(kinds)}: only hardware with sparse tensor "
            "cores (some GPUs/NPUs) exploits it; LiteRT's CPU kernels and XNNPACK run these ops dense, so on "
            "a phone CPU only the gzipped download is smaller"
        )
    if one_by_one:
        return (
            f"pruned 1x1 Conv2D layers ({', '.join(one_by_one)}) can use XNNPACK's sparse inference path, "
            "but only in a float32/float16 model whose CNN subgraph qualifies; int8 models and the other "
            f"pruned ops ({', '.join(kinds)}) run dense: latency and RAM unchanged, the gzipped download is "
            "smaller"
        )
    return (
        f"no speed-up: LiteRT runs the pruned {', '.join(kinds)} ops with dense kernels (XNNPACK's sparse "
        "path covers only 1x1 Conv2D in float CNNs), so latency and RAM are unchanged; only the gzipped "
        "download is smaller, because the zeros compress"
    )


def tflite_weight_sparsity(tflite: bytes) -> float:
    """Share of weights equal to their zero point in the FC / conv / embedding weight tensors of a .tflite."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=tflite)
    interp.allocate_tensors()
    details = {d["index"]: d for d in interp.get_tensor_details()}
    weight_input = {"FULLY_CONNECTED": 1, "CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "GATHER": 0}
    zeros = total = 0
    seen = set()
    for op in interp._get_ops_details():  # noqa: SLF001 - the public API has no op list
        pos = weight_input.get(op["op_name"])
        if pos is None or op["inputs"][pos] in seen:
            continue
        idx = int(op["inputs"][pos])
        seen.add(idx)
        try:
            w = interp.get_tensor(idx)
        except ValueError:  # not a constant
            continue
        zp = details[idx]["quantization_parameters"]["zero_points"]
        zero = int(zp[0]) if len(zp) and np.all(zp == zp[0]) else 0
        zeros += int(np.sum(w == zero))
        total += w.size
    return round(zeros / max(total, 1), 4)
