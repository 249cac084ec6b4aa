"""Run the float model and the .tflite on a labelled split; accuracy, macro-F1, agreement, recall change."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolchain.base.errors import DataError
from toolchain.base.progress import Progress, SilentProgress


def predict_keras(model: Any, ids: np.ndarray, batch_size: int = 256) -> np.ndarray:
    return np.asarray(model.predict(ids, batch_size=batch_size, verbose=0), dtype=np.float32)


class TFLiteRunner:
    """A .tflite in ai_edge_litert's interpreter, one query at a time as on the phone."""

    def __init__(self, model_bytes: bytes, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        from toolchain.base.quiet import native_output_silenced

        with native_output_silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate"
            self.interpreter = Interpreter(model_content=model_bytes, num_threads=num_threads)
            self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        seq = int(self.input["shape"][-1])
        self.seq_len = seq

    def _feed(self, ids: np.ndarray) -> None:
        if ids.shape[-1] != self.seq_len:
            raise DataError(
                f"wrong input length: the model takes {self.seq_len} tokens, got {ids.shape[-1]}",
                hint=f"set data.seq_len to {self.seq_len} (or leave it unset)",
            )
        x = ids.reshape(self.input["shape"]).astype(self.input["dtype"])
        self.interpreter.set_tensor(self.input["index"], x)

    def raw(self, ids: np.ndarray) -> np.ndarray:
        """Output as stored (int8 for full-integer models)."""
        self._feed(ids)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"]).reshape(-1).copy()

    def scores(self, ids: np.ndarray) -> np.ndarray:
        """Output dequantized to float."""
        out = self.raw(ids)
        scale, zero = self.output["quantization"]
        if scale:
            return (out.astype(np.float32) - zero) * scale
        return out.astype(np.float32)

    def predict(
        self, ids: np.ndarray, progress: Progress | None = None, description: str = "tflite"
    ) -> np.ndarray:
        progress = progress or SilentProgress()
        rows = []
        with progress.task(description, len(ids)) as advance:
            for row in ids:
                rows.append(self.scores(row[None, :]))
                advance(1)
        return np.stack(rows) if rows else np.zeros((0, 0), np.float32)

    def median_latency_ms(self, ids: np.ndarray, warmup: int = 20, runs: int = 200) -> float:
        """Median wall time of one invoke (set_tensor + invoke + get_tensor), in milliseconds."""
        for i in range(warmup):
            self.raw(ids[i % len(ids)][None, :])
        times = []
        for i in range(runs):
            row = ids[i % len(ids)][None, :]
            t0 = time.perf_counter()
            self.raw(row)
            times.append(time.perf_counter() - t0)
        return float(np.median(times) * 1e3)


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
