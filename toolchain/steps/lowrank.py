"""Low-rank factorization: W (m x n) ~ A (m x r) @ B (r x n) from the truncated SVD, where it saves weights.

By default every Dense layer but the classifier, and every embedding table, is factorized. A Dense layer
becomes Dense(r, no bias) `<name>_lr` -> Dense(n, original bias and activation) `<name>`; an embedding
table E (vocab x d) becomes Embedding(vocab, r) `<name>_lr` -> Dense(d, no bias) `<name>`. The singular
values are split evenly (A = U sqrt(S), B = sqrt(S) Vt), then the model is briefly fine-tuned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from toolchain.base.errors import StepError
from toolchain.recipe.steps import LowRankStep
from toolchain.steps.base import StepContext, StepResult
from toolchain.steps.graph import LayerPlan, dense_spec, layer_spec, rewrite
from toolchain.steps.training import compile_for_finetune, fit, outputs_probabilities

FACTORIZABLE = ("Dense", "Embedding")


@dataclass(frozen=True)
class RankChoice:
    layer: str
    shape: tuple[int, int]
    rank: int | None  # None: left as is
    energy_kept: float | None
    params_before: int
    params_after: int
    note: str = ""


def _matrix(layer: Any) -> np.ndarray:
    return layer.get_weights()[0]  # Dense kernel (in x out) or embedding table (vocab x dim)


def saving_rank_limit(m: int, n: int) -> int:
    """The largest rank that still saves parameters: r (m + n) < m n."""
    return (m * n - 1) // (m + n)


def choose_rank(cfg: LowRankStep, name: str, s: np.ndarray, m: int, n: int, bias: int = 0) -> int:
    """The rank the recipe asks for this layer (validated against the matrix)."""
    explicit = cfg.ranks.get(name, cfg.rank)
    if explicit is not None:
        if explicit > min(m, n):
            raise StepError(
                f"lowrank: rank {explicit} is larger than the matrix of {name} ({m} x {n})",
                hint=f"use a rank below {min(m, n)} (saves parameters below {saving_rank_limit(m, n) + 1})",
            )
        return explicit
    if cfg.energy is not None:
        share = np.cumsum(s**2) / max(float(np.sum(s**2)), 1e-12)
        return int(np.searchsorted(share, cfg.energy - 1e-9) + 1)
    reduction = cfg.param_reduction if cfg.param_reduction is not None else 0.5
    return max(1, int(((1.0 - reduction) * (m * n + bias) - bias) / (m + n)))  # bias counted, kept


def targets(cfg: LowRankStep, model: Any) -> list[Any]:
    names = [layer.name for layer in model.layers]
    unknown = sorted((set(cfg.layers) | set(cfg.exclude) | set(cfg.ranks)) - set(names))
    if unknown:
        raise StepError(f"lowrank: unknown layers {unknown}", hint=f"layers: {', '.join(names)}")
    chosen = []
    head = model.layers[-1].name  # the classifier: its rank is capped by the label count, so skip it
    for layer in model.layers:
        if layer.name == head and layer.name not in cfg.layers:
            continue
        kind = layer.__class__.__name__
        if cfg.layers and layer.name not in cfg.layers or layer.name in cfg.exclude:
            continue
        if kind not in FACTORIZABLE:
            if cfg.layers:
                raise StepError(
                    f"lowrank: {layer.name} is a {kind}; only Dense and Embedding layers can be factorized",
                    hint="remove it from lowrank.layers",
                )
            continue
        chosen.append(layer)
    if not chosen:
        raise StepError("lowrank: no Dense or Embedding layer to factorize", hint="check layers/exclude")
    return chosen


def plan_layer(cfg: LowRankStep, layer: Any) -> tuple[RankChoice, LayerPlan | None]:
    w = _matrix(layer)
    m, n = w.shape
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
    before = int(layer.count_params())
    bias = before - m * n
    r = choose_rank(cfg, layer.name, s, m, n, bias)
    energy = round(float(np.sum(s[:r] ** 2) / max(np.sum(s**2), 1e-12)), 4)
    if r > saving_rank_limit(m, n):
        note = f"rank {r} would not save parameters (needs < {saving_rank_limit(m, n) + 1}); left as is"
        return RankChoice(layer.name, (m, n), None, None, before, before, note), None
    root = np.sqrt(s[:r])
    a = (u[:, :r] * root).astype(np.float32)
    b = (root[:, None] * vt[:r]).astype(np.float32)
    after = r * (m + n) + bias
    choice = RankChoice(layer.name, (m, n), r, energy, before, after)
    if layer.__class__.__name__ == "Embedding":
        plan = LayerPlan(layer_spec(layer, output_dim=r), dense_spec(n, use_bias=False), [a], [b])
    else:
        rest = layer.get_weights()[1:]
        plan = LayerPlan(dense_spec(r, use_bias=False), layer_spec(layer, units=n), [a], [b, *rest])
    return choice, plan


def _val_accuracy(model: Any, ctx: StepContext) -> float | None:
    val = ctx.val_arrays()
    if val is None:
        return None
    return round(float(np.mean(model.predict(val[0], batch_size=512, verbose=0).argmax(1) == val[1])), 4)


def run(cfg: LowRankStep, model: Any, ctx: StepContext) -> StepResult:
    """Factorize the chosen layers, fine-tune briefly, report rank and saved parameters per layer."""
    choices, plans = [], {}
    for layer in targets(cfg, model):
        choice, plan = plan_layer(cfg, layer)
        choices.append(choice)
        if plan is not None:
            plans[layer.name] = plan
    warnings = [f"lowrank: {c.layer}: {c.note}" for c in choices if c.note]
    if not plans:
        raise StepError(
            "lowrank: no layer would save parameters at the chosen ranks",
            hint="lower rank/energy or raise param_reduction",
        )
    new = rewrite(model, plans)
    acc_before_finetune = _val_accuracy(new, ctx)
    x, y = ctx.train_arrays()
    compile_for_finetune(new, cfg.learning_rate, outputs_probabilities(new))
    metrics = fit(
        new,
        x,
        y,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        callbacks=[],
        progress=ctx.progress,
        description=f"lowrank fine-tune ({len(plans)} layers)",
        validation=ctx.val_arrays(),
    )
    before = sum(c.params_before for c in choices)
    after = sum(c.params_after for c in choices)
    report = {
        "rule": _rule(cfg),
        "layers": {
            c.layer: {
                "shape": list(c.shape),
                "rank": c.rank,
                "energy_kept": c.energy_kept,
                "params_before": c.params_before,
                "params_after": c.params_after,
                "saved": c.params_before - c.params_after,
                **({"note": c.note} if c.note else {}),
            }
            for c in choices
        },
        "factorized_params_before": before,
        "factorized_params_after": after,
        "factorized_reduction": round(1 - after / max(before, 1), 4),
        "val_accuracy_after_svd": acc_before_finetune,
        "val_accuracy_after_finetune": _val_accuracy(new, ctx),
        "train_metrics": {k: round(v, 4) for k, v in metrics.items()},
    }
    return StepResult(model=new, report=report, warnings=warnings)


def _rule(cfg: LowRankStep) -> str:
    if cfg.rank is not None:
        return f"rank {cfg.rank}"
    if cfg.energy is not None:
        return f"energy {cfg.energy}"
    if cfg.param_reduction is not None:
        return f"param_reduction {cfg.param_reduction}"
    return f"ranks {cfg.ranks}"
