"""The step kinds a recipe may name, looked up to their implementation.

A module of its own so that the dependency points one way: the steps import steps/base.py (StepContext,
StepResult), and only this table imports the steps. The step modules load TensorFlow, so they are imported
on lookup, not when the table is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from toolchain.base.errors import RecipeError
from toolchain.steps import distill, item_prune, lowrank, prune, qat, vocab, vocab_trim
from toolchain.steps.base import StepContext, StepResult

StepRunner = Callable[[Any, Any, StepContext], StepResult]


def step_runner(kind: str) -> StepRunner:
    """Look up a step implementation by its recipe `kind`."""

    runners: dict[str, StepRunner] = {
        "prune": prune.run,
        "distill": distill.run,
        "lowrank": lowrank.run,
        "qat": qat.run,
        "vocab_prune": vocab.run,
        "vocab_trim": vocab_trim.run,
        "item_prune": item_prune.run,
    }
    if kind not in runners:
        raise RecipeError(f"unknown step kind {kind!r}", hint=f"valid step kinds: {', '.join(runners)}")
    return runners[kind]
