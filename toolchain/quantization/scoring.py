"""Scoring a mixed-precision candidate: the gates and the aim, the task's metrics, and the Evaluator.

A candidate is the calibrated float model re-quantized with a set of nodes left in float
(converters/calibrated.py), run on the search queries in one runtime child for the whole search and
scored against the source model's outputs (toolchain/quantization/mixed.py searches with it). The aim lies
halfway between each gate and a perfect score; a plan must meet the gates, and should meet the aim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from converters.calibrated import quantize
from devices.host_runtime import HostRuntime
from devices.hostrun import HostRunner
from toolchain.base.types import Task
from toolchain.evaluation.metrics import SURE_MIN_PROB, probabilities
from toolchain.evaluation.retrieval import K, ranks, top_k_overlap
from toolchain.report.quantization import MixedMetrics, MixedTargets
from toolchain.tasks import MIXED_GATES, task_spec


def _gate_values(gates: Any, task: Task, has_labels: bool) -> tuple[dict[str, float], str]:
    """The gates a mixed plan must meet: the recipe's, or the task's defaults (toolchain/tasks.py) when it
    sets none; label-based gates need labelled search queries."""
    g = {k: getattr(gates, k, None) for k in MIXED_GATES}
    g = {k: v for k, v in g.items() if v is not None and k in task_spec(task).gates}
    source = "recipe"
    if not g:
        g, source = dict(task_spec(task).mixed_default_gates), "default"
    if not has_labels:
        g = {k: v for k, v in g.items() if k not in LABEL_GATES}
    return g, source


def targets_from_gates(gates: Any, task: Task, has_labels: bool) -> MixedTargets:
    """What a candidate should reach on the search queries: halfway between each gate and a perfect score
    (a `min_` gate g aims at (1 + g) / 2, a `max_` gate at g / 2)."""
    g, source = _gate_values(gates, task, has_labels)
    aims = {k: (1 + v) / 2 if k.startswith("min_") else v / 2 for k, v in g.items()}
    return MixedTargets(**aims, source=source)


def gate_targets(gates: Any, task: Task, has_labels: bool) -> MixedTargets:
    """What a candidate must reach: the gates themselves (a plan is refused only when these cannot hold)."""
    g, source = _gate_values(gates, task, has_labels)
    return MixedTargets(**g, source=source)


# target field -> (the MixedMetrics field it reads, True when larger is better)
TARGET_METRICS = {
    "min_cosine": ("mean_cosine", True),
    "min_agreement": ("agreement", True),
    "min_agreement_where_sure": ("agreement_where_sure", True),
    "max_accuracy_drop": ("accuracy_drop_points", False),
    "min_top10_overlap": ("top10_overlap", True),
    "max_recall_drop": ("recall_drop_points", False),
}


def misses(targets: MixedTargets, m: MixedMetrics) -> dict[str, tuple[float, float]]:
    """The targets `m` misses: {target field: (target, measured)}; a metric `m` lacks is not a miss."""
    out = {}
    for name, (metric, larger) in TARGET_METRICS.items():
        aim, got = getattr(targets, name), getattr(m, metric)
        if aim is not None and got is not None and (got < aim if larger else got > aim):
            out[name] = (aim, got)
    return out


LABEL_GATES = ("max_accuracy_drop", "max_recall_drop")  # measured against the labels of the search queries


MODELS_KEPT = 4  # candidate models kept in memory by the Evaluator


@dataclass
class SearchData:
    feeds: dict[str, np.ndarray]  # by .tflite input name, rows = queries
    reference: np.ndarray  # the source model's outputs on the same rows
    labels: np.ndarray | None = None  # label ids (classification, retrieval) of a labelled split
    split: str = ""


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def _top1(got: np.ndarray, ref: np.ndarray, labels: np.ndarray | None) -> dict[str, float | None]:
    """Classifiers: top-1 agreement with the float model, overall and where it is sure (top-1 probability
    >= SURE_MIN_PROB, the report's flips), and the accuracy drop (points) with labels."""
    same = got.argmax(1) == ref.argmax(1)
    sure = probabilities(ref).max(1) >= SURE_MIN_PROB
    out = {
        "agreement": round(float(np.mean(same)), 6),
        "agreement_where_sure": round(float(np.mean(same[sure])), 6) if sure.any() else None,
    }
    if labels is not None:
        acc = lambda p: float(np.mean(p.argmax(1) == labels)) * 100  # noqa: E731
        out["accuracy_drop_points"] = round(acc(ref) - acc(got), 4)
    return out


def _top10(got: np.ndarray, ref: np.ndarray, labels: np.ndarray | None) -> dict[str, float]:
    """Retrieval: the top-10 overlap with the float model, and the recall@10 drop (points) with labels."""
    out = {"top10_overlap": top_k_overlap(ref, got)}
    if labels is not None:
        hit = labels >= 0  # a query whose item item_prune dropped can no longer hit
        recall = lambda p: float(np.mean(ranks(p[hit], labels[hit]) < K)) * 100 if hit.any() else 0.0  # noqa: E731
        out["recall_drop_points"] = round(recall(ref) - recall(got), 4)
    return out


# What the search scores a candidate on besides the cosine, per task (the gates' metrics).
def _vectors(got: np.ndarray, ref: np.ndarray, labels: np.ndarray | None) -> dict[str, float]:
    """Embeddings: the cosine is the whole story."""
    return {}


TASK_METRICS = {Task.CLASSIFICATION: _top1, Task.RETRIEVAL: _top10, Task.EMBEDDING: _vectors}


class Evaluator:
    """Quantize with a float set, run on the search queries, score against the source (cached).

    Every candidate runs in one runtime child for the whole search (`host`, devices/host_runtime.HostRuntime,
    started on the first candidate, ended by close() or the `with` block): the search queries are written
    to it once, each candidate is a load, one invoke per query and a free, and a candidate that crashes
    LiteRT fails the search with a clean error naming it instead of ending edgecomp."""

    def __init__(
        self,
        calibrated: bytes,
        data: SearchData,
        task: Task,
        targets: MixedTargets,
        gates: MixedTargets | None = None,
    ) -> None:
        self.calibrated, self.data, self.task, self.targets = calibrated, data, task, targets
        self.gates = gates or targets
        self.count = 0
        self._cache: dict[frozenset[str], MixedMetrics] = {}
        self._models: dict[frozenset[str], bytes] = {}
        self.host = HostRuntime()

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.host.close()

    def use(self, calibrated: bytes) -> None:
        """Score candidates of another calibrated model from now on (the cache is for one model)."""
        self.calibrated, self._cache, self._models = calibrated, {}, {}

    def model(self, float_nodes: set[str]) -> bytes:
        """The candidate's bytes; the last MODELS_KEPT are kept (the speed table re-times its current plan
        against each op type, and a real encoder's quantization takes seconds)."""
        key = frozenset(float_nodes)
        if key not in self._models:
            while len(self._models) >= MODELS_KEPT:
                self._models.pop(next(iter(self._models)))
            self._models[key] = quantize(self.calibrated, sorted(float_nodes))
        return self._models[key]

    def outputs(self, float_nodes: set[str], rows: int | None = None) -> np.ndarray:
        self.count += 1
        feeds = {k: v[:rows] for k, v in self.data.feeds.items()}
        name = (
            f"the mixed-precision candidate with {len(float_nodes)} float ops"
            if float_nodes
            else "the full-int8 candidate of the mixed-precision search"
        )
        with HostRunner(self.model(float_nodes), threads=1, name=name, host=self.host) as runner:
            return runner.scores(feeds)

    def metrics(self, float_nodes: set[str]) -> MixedMetrics:
        key = frozenset(float_nodes)
        if key not in self._cache:
            got, ref = self.outputs(float_nodes), self.data.reference
            self._cache[key] = MixedMetrics(
                mean_cosine=round(float(cosine_rows(got, ref).mean()), 6),
                **TASK_METRICS[self.task](got, ref, self.data.labels),
            )
        return self._cache[key]

    def ok(self, m: MixedMetrics, targets: MixedTargets | None = None) -> bool:
        """Every target (default: the aim) the candidate's metrics measure is met."""
        return not misses(targets or self.targets, m)
