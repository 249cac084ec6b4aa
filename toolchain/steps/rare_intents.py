"""Rare intents in distillation: class-balanced loss weights and hard labels where the teacher is sure.

A student trained on a long-tail dataset sees a rare intent a few dozen times against hundreds for the
head, and the KD loss (a mean over rows) lets it give the rare intent up: on the issue-25 teacher, 16 of 42
intents died in the preset student. Two knobs of the distill step (toolchain/recipe/steps.py); by default
class balance is on for a foreign teacher, and nothing is on for the chain's own model or for exactly
balanced training rows, which then train exactly as before (the example's builds stay byte-identical):

- `class_balance`: each row's CE and KD terms are weighted by its intent's frequency to the power -1/2
  (`sqrt`) or -1 (`inverse`), normalised to a mean of 1 over the rows, so the total loss keeps its scale.
  A row's intent is its label, or the teacher's top label for unlabelled and augmented rows;
- `sure_label_weight`: an extra cross-entropy on the teacher's top label (at temperature 1) on the rows
  where the teacher is sure (its top-1 probability >= `pseudo_label_min_confidence`): the hard label
  sharpens the rare intent's boundary where the soft targets at temperature T spread it out.

loss = (1 - alpha) * CE_w(labels) + alpha * T^2 * KL_w + sure_label_weight * CE_w(teacher's top, sure rows)
where _w is the class-balanced weighted mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

AUTO_BALANCE = "sqrt"  # a foreign teacher's default class_balance
# sure_label_weight is off by default: alone it helps the long-tail teacher's rare intents a little (+13
# points of their mean recall over 3 seeds, benchmarks/bench_rare_intents.py), added to class balance +
# augmentation it is within seed noise, and on the weak BERT fixture teacher (89.6%, sure on a third of
# the training rows) it cost the student 2.3 points of accuracy and 0.7 of agreement.
AUTO_SURE_WEIGHT = 0.0
POWER = {"sqrt": 0.5, "inverse": 1.0}


@dataclass(frozen=True)
class RareIntents:
    """The resolved knobs and the per-row arrays the distiller's train step reads (None: both off)."""

    balance: str  # none | sqrt | inverse
    sure_weight: float
    row_weight: np.ndarray  # float32 per row, mean 1
    sure_label: np.ndarray  # int32: the teacher's top label
    sure: np.ndarray  # float32 0/1: the teacher is sure of the row
    teacher_sure_rows: int

    def describe(self) -> dict[str, Any]:
        weights = self.row_weight
        return {
            "class_balance": self.balance,
            "sure_label_weight": self.sure_weight,
            "teacher_sure_rows": self.teacher_sure_rows,
            "row_weight_range": [round(float(weights.min()), 4), round(float(weights.max()), 4)],
        }


def class_weights(y: np.ndarray, n_labels: int, balance: str) -> np.ndarray:
    """Per-row weights: the row's intent frequency ** -POWER[balance], mean 1 over the rows (all 1: none)."""
    if balance == "none":
        return np.ones(len(y), np.float32)
    counts = np.bincount(y, minlength=n_labels).astype(np.float64)
    per_class = np.where(counts > 0, counts, 1.0) ** -POWER[balance]
    rows = per_class[y]
    return (rows / rows.mean()).astype(np.float32)


def rare_intents(
    balance: str,
    sure_weight: float | None,
    min_confidence: float,
    y: np.ndarray,
    teacher_probs: np.ndarray,
    foreign_teacher: bool,
) -> RareIntents | None:
    """The knobs resolved (auto: on for a foreign teacher) and their arrays; None when both are off, so the
    distiller trains exactly as before."""
    mode = (AUTO_BALANCE if foreign_teacher else "none") if balance == "auto" else balance
    weight = (AUTO_SURE_WEIGHT if foreign_teacher else 0.0) if sure_weight is None else sure_weight
    counts = np.bincount(y, minlength=teacher_probs.shape[1])
    balanced = bool(np.all(counts[counts > 0] == counts.max()))  # class weights would all be 1
    if (mode == "none" or balanced) and weight == 0.0:
        return None
    sure = teacher_probs.max(-1) >= min_confidence
    return RareIntents(
        balance=mode,
        sure_weight=float(weight),
        row_weight=class_weights(y, teacher_probs.shape[1], mode),
        sure_label=teacher_probs.argmax(-1).astype(np.int32),
        sure=sure.astype(np.float32),
        teacher_sure_rows=int(sure.sum()),
    )
