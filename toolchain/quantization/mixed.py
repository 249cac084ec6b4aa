"""`quantization.mode: mixed`: the most-integer model that meets the recipe's gate, chosen for this model.

From one calibrated float model (converters/calibrated.py) every candidate is a sub-second re-quantization
with a set of nodes left in float, run on real queries against the source model's outputs:

1. **Speed** (toolchain/quantization/speed.py): ops without multiply-accumulates (elementwise, normalisation,
   softmax) take the precision that runs faster here, per op type, measured.
2. **Sensitivity**: each op that is still int8 is quantized alone (everything else float) and its damage
   to the output is measured (1 - mean cosine vs the float model).
3. **Greedy repair**: starting from the plan of step 1, the most damaging ops per unit of cost (their
   share of the MACs, plus a small per-op overhead) go to float, in growing prefixes, until the gate holds
   on the search queries; then every float op is tried back in int8, largest first, and stays there if the
   gate still holds. The result is the smallest float set found, not a proven optimum.

The search aims halfway between the gate and a perfect score, so that queries it never saw (the test
split) still meet the gate. Without gates in the recipe it aims at the task's defaults
(toolchain/tasks.py `mixed_default_gates`) and says so (`targets.source: default`). What a candidate is
scored on is the task's (`TASK_METRICS`): top-1 agreement for a classifier, the cosine for an embedder,
the top-10 overlap with the float model for a retrieval model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from converters.calibrated import choosable_nodes, quantize
from converters.tflite_model import parse_tflite
from devices.host_runtime import HostRuntime
from devices.hostrun import HostRunner
from devices.opcost import model_costs
from toolchain.base.errors import GateFailed
from toolchain.base.progress import Progress, SilentProgress
from toolchain.base.types import MixedReason, Task
from toolchain.evaluation.retrieval import K, ranks, top_k_overlap
from toolchain.quantization.speed import choose_by_speed
from toolchain.report.quantization import KeptOp, MixedMetrics, MixedSection, MixedTargets, SpeedRow
from toolchain.tasks import MIXED_GATES, task_spec

SENSITIVITY_QUERIES = 128
SEARCH_QUERIES = 500
OP_OVERHEAD = 0.005  # cost of one more float op (its QUANTIZE/DEQUANTIZE), as a share of all MACs
NEGLIGIBLE = 1e-6


def targets_from_gates(gates: Any, task: Task, has_labels: bool) -> MixedTargets:
    """What a candidate must reach on the search queries: halfway between each gate and a perfect score
    (a `min_` gate g aims at (1 + g) / 2, a `max_` gate at g / 2). The gates are the recipe's, or the task's
    defaults (toolchain/tasks.py) when it sets none; label-based gates need labelled search queries."""
    g = {k: getattr(gates, k, None) for k in MIXED_GATES}
    g = {k: v for k, v in g.items() if v is not None and k in task_spec(task).gates}
    source = "recipe"
    if not g:
        g, source = dict(task_spec(task).mixed_default_gates), "default"
    if not has_labels:
        g = {k: v for k, v in g.items() if k not in LABEL_GATES}
    aims = {k: (1 + v) / 2 if k.startswith("min_") else v / 2 for k, v in g.items()}
    return MixedTargets(**aims, source=source)


LABEL_GATES = ("max_accuracy_drop", "max_recall_drop")  # measured against the labels of the search queries


@dataclass
class SearchData:
    feeds: dict[str, np.ndarray]  # by .tflite input name, rows = queries
    reference: np.ndarray  # the source model's outputs on the same rows
    labels: np.ndarray | None = None  # label ids (classification, retrieval) of a labelled split
    split: str = ""


@dataclass
class MixedPlan:
    float_nodes: list[str]
    records: list[KeptOp] = field(default_factory=list)
    speed: list[SpeedRow] = field(default_factory=list)
    metrics: MixedMetrics | None = None
    full_int8_metrics: MixedMetrics | None = None
    targets: MixedTargets | None = None
    evaluations: int = 0
    seconds: float = 0.0
    split: str = ""

    def section(self) -> MixedSection:
        return MixedSection(
            float_nodes=len(self.float_nodes),
            search_split=self.split,
            targets=self.targets,
            full_int8=self.full_int8_metrics,
            chosen=self.metrics,
            kept_out_of_int8=self.records,
            speed_by_op_type=self.speed,
            candidates_evaluated=self.evaluations,
            search_seconds=round(self.seconds, 1),
            plan="searched",
        )


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def _top1(got: np.ndarray, ref: np.ndarray, labels: np.ndarray | None) -> dict[str, float]:
    """Classifiers: top-1 agreement with the float model, and the accuracy drop (points) with labels."""
    out = {"agreement": round(float(np.mean(got.argmax(1) == ref.argmax(1))), 6)}
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

    def __init__(self, calibrated: bytes, data: SearchData, task: Task, targets: MixedTargets) -> None:
        self.calibrated, self.data, self.task, self.targets = calibrated, data, task, targets
        self.count = 0
        self._cache: dict[frozenset[str], MixedMetrics] = {}
        self.host = HostRuntime()

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.host.close()

    def model(self, float_nodes: set[str]) -> bytes:

        return quantize(self.calibrated, sorted(float_nodes))

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
                mean_cosine=round(float(_cos(got, ref).mean()), 6),
                **TASK_METRICS[self.task](got, ref, self.data.labels),
            )
        return self._cache[key]

    def ok(self, m: MixedMetrics) -> bool:
        """Every target the candidate's metrics measure is met."""
        t = self.targets
        misses = (
            (t.min_cosine, m.mean_cosine, lambda aim, got: got < aim),
            (t.min_agreement, m.agreement, lambda aim, got: got < aim),
            (t.max_accuracy_drop, m.accuracy_drop_points, lambda aim, got: got > aim),
            (t.min_top10_overlap, m.top10_overlap, lambda aim, got: got < aim),
            (t.max_recall_drop, m.recall_drop_points, lambda aim, got: got > aim),
        )
        return not any(aim is not None and got is not None and miss(aim, got) for aim, got, miss in misses)


def _macs(calibrated: bytes) -> dict[int, int]:

    return {c.index: c.macs for c in model_costs(parse_tflite(calibrated))}


def sensitivity(ev: Evaluator, nodes: Sequence[Any], progress: Progress) -> dict[str, float]:
    """Damage of each node quantized alone (all other choosable nodes float): 1 - mean cosine vs float."""
    everything = {n.name for n in nodes}
    rows = min(SENSITIVITY_QUERIES, len(ev.data.reference))
    base = ev.outputs(everything, rows)
    damage = {}
    with progress.task("mixed: per-op sensitivity", len(nodes)) as advance:
        for n in nodes:
            got = ev.outputs(everything - {n.name}, rows)
            damage[n.name] = max(0.0, float(1.0 - _cos(got, base).mean()))
            advance(1)
    return damage


def _repair(ev: Evaluator, start: set[str], order: list[str], progress: Progress) -> set[str]:
    """Smallest prefix of `order` (added to `start`) that meets the targets: doubling, then bisection."""
    if ev.ok(ev.metrics(start)):
        return start
    k, last_bad = 1, 0
    with progress.task("mixed: repairing the worst ops", None):
        while True:
            k = min(k, len(order))
            if ev.ok(ev.metrics(start | set(order[:k]))):
                break
            if k == len(order):
                m = ev.metrics(start | set(order))
                raise GateFailed(
                    f"mixed precision cannot meet the gate on {ev.data.split}: even with all {len(order)} "
                    f"sensitive ops in float the result is {m.to_json()} (targets {ev.targets.to_json()})",
                    hint="the float model itself may miss the gate: check it with --quantize float32, or "
                    "loosen evaluation gates; dynamic keeps activations in float",
                )
            last_bad, k = k, k * 2
        lo, hi = last_bad, k  # prefix lo fails, prefix hi passes
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ev.ok(ev.metrics(start | set(order[:mid]))):
                hi = mid
            else:
                lo = mid
    return start | set(order[:hi])


def search(
    calibrated: bytes,
    data: SearchData,
    gates: Any,
    task: Task,
    progress: Progress | None = None,
) -> MixedPlan:
    """Choose the float nodes of a mixed-precision model (see the module docstring)."""
    targets = targets_from_gates(gates, task, data.labels is not None)
    with Evaluator(calibrated, data, task, targets) as ev:  # one runtime child for every candidate
        return _search(ev, progress or SilentProgress())


def _search(ev: Evaluator, progress: Progress) -> MixedPlan:

    calibrated, data, targets = ev.calibrated, ev.data, ev.targets
    t0 = time.perf_counter()
    nodes = choosable_nodes(calibrated)
    macs = _macs(calibrated)
    total = max(1, sum(macs.get(n.index, 0) for n in nodes))
    full = ev.metrics(set())
    groups: dict[str, list[str]] = {}
    for n in nodes:
        if not macs.get(n.index):
            groups.setdefault(n.op, []).append(n.name)
    with progress.task("mixed: speed of int8 vs float kernels", None):
        start, speed = choose_by_speed(ev.model, groups, set(), data.feeds, ev.host)
    damage = sensitivity(ev, [n for n in nodes if n.name not in start], progress)
    by_name = {n.name: n for n in nodes}

    def cost(name: str) -> float:
        return macs.get(by_name[name].index, 0) / total + OP_OVERHEAD

    order = sorted(
        (name for name, d in damage.items() if d > NEGLIGIBLE), key=lambda nm: -damage[nm] / cost(nm)
    )
    chosen = _repair(ev, start, order, progress)
    repaired = chosen - start
    if_int8: dict[str, MixedMetrics] = {}
    for name in sorted(repaired, key=lambda nm: -macs.get(by_name[nm].index, 0)):  # largest back first
        trial = chosen - {name}
        m = ev.metrics(trial)
        if ev.ok(m):
            chosen = trial
        else:
            if_int8[name] = m
    final = ev.metrics(chosen)
    records = []
    for name in sorted(chosen, key=lambda nm: by_name[nm].index):
        n = by_name[name]
        rec = KeptOp(node=name, op=n.op, macs=int(macs.get(n.index, 0)), reason=MixedReason.SPEED)
        if name in if_int8:
            rec = KeptOp(
                node=name,
                op=n.op,
                macs=int(macs.get(n.index, 0)),
                reason=MixedReason.ERROR,
                damage_alone=round(damage.get(name, 0.0), 6),
                if_int8=if_int8[name],
            )
        records.append(rec)
    return MixedPlan(
        float_nodes=sorted(chosen),
        records=records,
        speed=[c.row() for c in speed],
        metrics=final,
        full_int8_metrics=full,
        targets=targets,
        evaluations=ev.count,
        seconds=time.perf_counter() - t0,
        split=data.split,
    )


def int8_mac_share(model: Any) -> float:
    """Share of the model's multiply-accumulates done by ops with int8 inputs (bytes or TFLiteModel)."""

    info = parse_tflite(model) if isinstance(model, bytes) else model
    costs = model_costs(info)
    total = sum(c.macs for c in costs)
    int8 = sum(
        c.macs
        for c, op in zip(costs, info.ops, strict=True)
        if c.macs and info.tensors[op.inputs[0]].dtype == "INT8"
    )
    return round(int8 / total, 4) if total else 0.0


def worst_ops(calibrated: bytes, data: SearchData, task: Task, n: int = 3) -> list[tuple[str, str, float]]:
    """The n ops that damage the output most when quantized alone: (op type, node, 1 - cosine)."""

    nodes = choosable_nodes(calibrated)
    with Evaluator(calibrated, data, task, MixedTargets(source="none")) as ev:
        damage = sensitivity(ev, nodes, SilentProgress())
    ranked = sorted(nodes, key=lambda x: -damage[x.name])[:n]
    return [(x.op, x.name, round(damage[x.name], 4)) for x in ranked]
