"""What every compression step receives and returns, and the registry of step kinds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolchain.errors import DataError, RecipeError
from toolchain.progress import Progress


@dataclass
class StepContext:
    """Data a step may train on, already tokenized; the steps never read files themselves."""

    train_x: np.ndarray | None
    train_y: np.ndarray | None
    val_x: np.ndarray | None
    val_y: np.ndarray | None
    labels: list[str]
    seed: int
    progress: Progress
    tokenizer: Any = None
    train_texts: list[str] | None = None

    def train_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self.train_x is None or self.train_y is None:
            raise DataError(
                "this step fine-tunes the model and needs labelled training data",
                hint="set data.train in the recipe or pass --train",
            )
        return self.train_x, self.train_y

    def val_arrays(self) -> tuple[np.ndarray, np.ndarray] | None:
        if self.val_x is None or self.val_y is None:
            return None
        return self.val_x, self.val_y


@dataclass
class StepResult:
    """A step's output model and report; `tokenizer` is set when the step rewrote the vocab."""

    model: Any
    report: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    tokenizer: Any = None


StepRunner = Callable[[Any, Any, StepContext], StepResult]


def step_runner(kind: str) -> StepRunner:
    """Look up a step implementation by its recipe `kind`."""
    from toolchain.steps import prune

    runners: dict[str, StepRunner] = {"prune": prune.run}
    if kind not in runners:
        raise RecipeError(f"unknown step kind {kind!r}", hint=f"valid step kinds: {', '.join(runners)}")
    return runners[kind]
