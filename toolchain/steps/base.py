"""What every compression step receives and returns; the step kinds are looked up in steps/registry.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolchain.base.errors import DataError
from toolchain.base.progress import Progress
from toolchain.data import QuerySet
from toolchain.report.steps import (
    AnyStepReport,
    DistillReport,
    LowRankReport,
    PruneReport,
    QATReport,
    VocabPruneReport,
    VocabTrimReport,
)
from toolchain.sources.keras_inputs import Rows


@dataclass
class StepContext:
    """Data a step may train on, already tokenized; the steps never read files themselves.

    `train_x`/`val_x` are id arrays, or dicts of arrays by input name for a multi-input (BERT-style) model.
    """

    train_x: Rows | None
    train_y: np.ndarray | None
    val_x: Rows | None
    val_y: np.ndarray | None
    labels: list[str]
    seed: int
    progress: Progress
    tokenizer: Any = None
    train_texts: list[str] | None = None
    trust_model_code: bool = False  # recipe source.trust_model_code: may a student file run its code
    teacher: Any = None  # toolchain.steps.teachers.Teacher: a foreign distill teacher scoring texts itself
    val_texts: list[str] | None = None
    splits: dict[str, QuerySet] | None = None  # every split the recipe gives, as texts (+ labels)

    def train_arrays(self) -> tuple[Rows, np.ndarray]:
        if self.train_x is None or self.train_y is None:
            raise DataError(
                "this step fine-tunes the model and needs labelled training data",
                hint="set data.train in the recipe or pass --train",
            )
        return self.train_x, self.train_y

    def val_arrays(self) -> tuple[Rows, np.ndarray] | None:
        if self.val_x is None or self.val_y is None:
            return None
        return self.val_x, self.val_y


@dataclass
class StepResult:
    """A step's output model and report; `tokenizer` is set when the step rewrote the vocab, `labels` when
    it dropped outputs (item_prune: the kept item ids, in the new output order)."""

    model: Any
    report: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    tokenizer: Any = None
    labels: list[str] | None = None


def step_summary(step: AnyStepReport) -> str:
    """One line per step for tables: what the step did, then params and accuracy (pipeline-added keys)."""
    if isinstance(step, PruneReport):
        what = f"{step.achieved_sparsity:.1%} sparse (target {step.target_sparsity:.0%})"
    elif isinstance(step, DistillReport):
        what = f"student {step.student_parameters:,} params ({step.parameter_ratio}x fewer)"
    elif isinstance(step, LowRankReport):
        ranks = ", ".join(f"{n} r{v.rank}" for n, v in step.layers.items() if v.rank)
        what = f"-{step.factorized_reduction:.0%} factorized params ({ranks})"
    elif isinstance(step, QATReport):
        what = f"{step.scheme.split(' ')[0]}, float: {', '.join(step.float_during_qat) or 'none'}"
    elif isinstance(step, VocabPruneReport):
        what = f"vocab {step.vocab_before} -> {step.vocab_after}"
    elif isinstance(step, VocabTrimReport):
        what = step.summary
    else:
        what = f"items {step.items_before} -> {step.items_after} (min {step.min_clicks} train clicks)"
    params, acc = step.parameters, step.float_test_accuracy
    tail = f"; {params:,} params (~{params * 4 / 1024:.0f} KB fp32)" if params else ""
    tail += f"; float acc {acc:.2%}" if acc is not None else ""
    return what + tail
