"""Metrics for the report: accuracy, macro-F1, agreement, recall change; closeness to a float reference.

The models themselves run elsewhere (devices/hostrun.py for the .tflite, the source backends for float).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def reference_check(ref: np.ndarray, got: np.ndarray) -> dict:
    """Max abs error, cosine per query (mean, worst with its index), top-1 agreement."""
    cos = np.sum(ref * got, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1) + 1e-12)
    err = np.abs(ref - got).max(1)
    return {
        "queries": int(len(ref)),
        "max_abs_error": float(err.max()),
        "worst_abs_query": int(err.argmax()),
        "mean_cosine": float(cos.mean()),
        "min_cosine": float(cos.min()),
        "worst_cosine_query": int(cos.argmin()),
        "top1_agreement": float(np.mean(ref.argmax(1) == got.argmax(1))),
    }


@dataclass(frozen=True)
class Metrics:
    accuracy: float
    macro_f1: float
    recall: dict[str, float]

    def as_dict(self) -> dict:
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1, "recall": self.recall}


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]) -> Metrics:
    recall, f1s = {}, []
    for i, name in enumerate(labels):
        tp = int(np.sum((y_pred == i) & (y_true == i)))
        support = int(np.sum(y_true == i))
        predicted = int(np.sum(y_pred == i))
        r = tp / support if support else 0.0
        p = tp / predicted if predicted else 0.0
        recall[name] = round(r, 4)
        if support:
            f1s.append(2 * p * r / (p + r) if p + r else 0.0)
    acc = float(np.mean(y_true == y_pred)) if len(y_true) else 0.0
    return Metrics(round(acc, 4), round(float(np.mean(f1s)) if f1s else 0.0, 4), recall)


def compare(reference: np.ndarray, candidate: np.ndarray, y_true: np.ndarray, labels: Sequence[str]) -> dict:
    """Float-vs-converted comparison for the report."""
    ref_pred, cand_pred = reference.argmax(1), candidate.argmax(1)
    ref_m = classification_metrics(y_true, ref_pred, labels)
    cand_m = classification_metrics(y_true, cand_pred, labels)
    recall_change = {k: round(cand_m.recall[k] - ref_m.recall[k], 4) for k in labels}
    return {
        "queries": int(len(y_true)),
        "reference": ref_m.as_dict(),
        "converted": cand_m.as_dict(),
        "accuracy_drop_points": round((ref_m.accuracy - cand_m.accuracy) * 100, 2),
        "top1_agreement": round(float(np.mean(ref_pred == cand_pred)), 4),
        "max_abs_score_diff": round(float(np.max(np.abs(reference - candidate))), 5),
        "recall_change": recall_change,
        "worst_recall_change": min(recall_change.items(), key=lambda kv: kv[1]) if recall_change else None,
    }
