"""The search space as recipe data (`search:` in a recipe) and how sampled params become a recipe.

Every knob maps onto one existing step or the quantization mode, so a trial is an ordinary recipe: the
chosen one is saved as best.recipe.yaml and `edgecomp convert` rebuilds it byte for byte. A knob set to
null is left out of the space; the defaults search prune sparsity (with 2:4 as an alternative), low-rank
energy, QAT on/off and four quantization modes; the student width joins when the recipe distills.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from toolchain.base.errors import RecipeError
from toolchain.step_configs import Strict

SearchQuantMode = Literal["int8", "mixed", "dynamic", "float16"]
NONE = "none"  # the categorical value meaning "no such step in this trial"


class SearchSpec(Strict):
    """Ranges a search samples from; null removes a knob."""

    quant_modes: list[SearchQuantMode] = Field(
        default_factory=lambda: ["int8", "dynamic", "float16", "mixed"],
        description="quantization modes tried",
    )
    prune_sparsity: tuple[float, float] | None = Field(
        (0.5, 0.9),
        description="[low, high] magnitude-pruning target sparsity (a trial may also skip pruning)",
    )
    prune_2_4: bool = Field(True, description="also try structured 2:4 sparsity instead of magnitude pruning")
    prune_epochs: int = Field(3, ge=1, description="fine-tuning epochs of a sampled prune step")
    lowrank_energy: tuple[float, float] | None = Field(
        (0.8, 0.97), description="[low, high] share of sum(s^2) kept by SVD (a trial may also skip it)"
    )
    lowrank_epochs: int = Field(1, ge=1, description="fine-tuning epochs of a sampled lowrank step")
    qat: bool = Field(True, description="try quantization-aware fine-tuning on and off (int8 trials)")
    qat_epochs: int = Field(1, ge=1)
    student_widths: list[int] | None = Field(
        default_factory=lambda: [8, 16, 24, 32],
        description="embedding widths of the distilled student (only when the recipe has a distill step)",
    )

    @model_validator(mode="after")
    def _ranges(self) -> SearchSpec:
        for name in ("prune_sparsity", "lowrank_energy"):
            rng = getattr(self, name)
            if rng is not None and not (
                0.0 < rng[0] <= rng[1] < 1.0 or (name == "lowrank_energy" and rng[1] == 1.0)
            ):
                raise ValueError(f"{name} must be [low, high] with 0 < low <= high < 1")
        if not self.quant_modes:
            raise ValueError("quant_modes is empty: give at least one mode")
        return self


def search_choices(spec: SearchSpec, has_distill: bool) -> dict[str, Any]:
    """The space as Optuna-free data: name -> list of choices, or (low, high) for a float range."""
    space: dict[str, Any] = {"quant_mode": list(dict.fromkeys(spec.quant_modes))}
    if spec.prune_sparsity is not None:
        space["prune"] = [NONE, "magnitude", *(["2:4"] if spec.prune_2_4 else [])]
        space["prune_sparsity"] = tuple(spec.prune_sparsity)
    elif spec.prune_2_4:
        space["prune"] = [NONE, "2:4"]
    if spec.lowrank_energy is not None:
        space["lowrank"] = [False, True]
        space["lowrank_energy"] = tuple(spec.lowrank_energy)
    if spec.qat:
        space["qat"] = [False, True]
    if has_distill and spec.student_widths:
        space["student_width"] = sorted(set(spec.student_widths))
    knobs = [v for v in space.values() if isinstance(v, tuple) or len(v) > 1]
    if not knobs:
        raise RecipeError(
            "the search space is empty: every knob has one value",
            hint="give `search:` at least two quant_modes, or a prune_sparsity / lowrank_energy range",
        )
    return space


def apply_params(base: dict[str, Any], params: dict[str, Any], spec: SearchSpec) -> dict[str, Any]:
    """A recipe dict (model_dump of the base recipe) with the sampled params applied; `search` removed.

    Steps keep the order check_step_order wants: distill -> lowrank -> prune -> qat; steps of the base
    recipe of the searched kinds are replaced, others (vocab_prune, distill) are kept.
    """
    data = {k: v for k, v in base.items() if k != "search"}
    mode = params["quant_mode"]
    steps = [dict(s) for s in data.get("steps", []) if s["kind"] not in ("lowrank", "prune", "qat")]
    if "student_width" in params:
        for s in steps:
            if s["kind"] == "distill" and s.get("student") is not None:
                s["student"] = {**s["student"], "embed_dim": int(params["student_width"])}
    if params.get("lowrank"):
        steps.append(
            {"kind": "lowrank", "energy": float(params["lowrank_energy"]), "epochs": spec.lowrank_epochs}
        )
    prune = params.get("prune", NONE)
    if prune == "magnitude":
        steps.append(
            {"kind": "prune", "target_sparsity": float(params["prune_sparsity"]), "epochs": spec.prune_epochs}
        )
    elif prune == "2:4":
        steps.append({"kind": "prune", "m_by_n": "2:4", "schedule": "constant", "epochs": spec.prune_epochs})
    if params.get("qat") and mode == "int8":
        steps.append({"kind": "qat", "epochs": spec.qat_epochs})
    data["steps"] = steps
    quant = {k: v for k, v in dict(data.get("quantization") or {}).items() if k != "mixed"}
    data["quantization"] = {**quant, "mode": mode}
    return data
