"""The search space as recipe data (`search:` in a recipe): the ranges `edgecomp search` samples from.

How sampled params become a recipe is toolchain/search/space.py; the recipe only holds the ranges.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from toolchain.recipe.strict import Strict

SearchQuantMode = Literal["int8", "mixed", "dynamic", "float16"]
StudentPreset = Literal["distill-int8", "distill-prune-int8", "distill-student-int8"]


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
    prune_epochs: int = Field(4, ge=1, description="fine-tuning epochs of a sampled prune step")
    prune_2_4_epochs: int = Field(3, ge=1, description="fine-tuning epochs of a sampled 2:4 step")
    lowrank_reduction: tuple[float, float] | None = Field(
        (0.3, 0.7), description="[low, high] share of parameters SVD removes per layer (a trial may skip it)"
    )
    lowrank_epochs: int = Field(2, ge=1, description="fine-tuning epochs of a sampled lowrank step")
    qat: bool = Field(True, description="try quantization-aware fine-tuning on and off (int8 trials)")
    qat_epochs: int = Field(2, ge=1)
    vocab_min_counts: list[int] | None = Field(
        default_factory=lambda: [1, 2, 3, 4],
        description="vocab_prune min_count values tried (1: no vocab pruning); word-level vocab models only",
    )
    startup_trials: int | None = Field(
        None,
        ge=1,
        description="trials sampled at random (seeded) before TPE takes over; default min(10, max(2, N/3)). "
        "Both are the same on every run with the same seed: TPE reads deterministic objectives only",
    )
    seed_presets: bool = Field(True, description="run the presets this space expresses as the first trials")
    stop_hopeless: bool = Field(
        True,
        description="stop a trial after a step whose float val accuracy drop already exceeds "
        "--max-accuracy-drop by hopeless_margin (no quantization, no latency: the trial is 'stopped')",
    )
    hopeless_margin: float = Field(
        0.5, ge=0.0, description="points beyond the accuracy limit that stop a trial"
    )
    student_widths: list[int] | None = Field(
        default_factory=lambda: [8, 16, 24, 32],
        description="embedding widths of the student, when the recipe has a distill step",
    )
    students: list[StudentPreset] | None = Field(
        default_factory=lambda: ["distill-int8", "distill-prune-int8", "distill-student-int8"],
        description="when the recipe does not distill: the distill steps of these presets (student, epochs, "
        "alpha) tried as a first step (word-level Keras classifiers)",
    )
    student_prune_epochs: int = Field(10, ge=1, description="prune fine-tuning epochs after a student")
    student_prune_learning_rate: float = Field(
        0.003, gt=0.0, description="prune fine-tuning learning rate after a student (a fresh, small model)"
    )

    @model_validator(mode="after")
    def _ranges(self) -> SearchSpec:
        for name in ("prune_sparsity", "lowrank_reduction"):
            rng = getattr(self, name)
            if rng is not None and not 0.0 < rng[0] <= rng[1] < 1.0:
                raise ValueError(f"{name} must be [low, high] with 0 < low <= high < 1")
        if not self.quant_modes:
            raise ValueError("quant_modes is empty: give at least one mode")
        return self
