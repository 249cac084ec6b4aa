"""`quantization.mode: mixed`: the most-integer model that meets the recipe's gate, chosen for this model.

From one calibrated float model (converters/calibrated.py) every candidate is a sub-second re-quantization
with a set of nodes left in float, run on real queries against the source model's outputs:

1. **Speed** (toolchain/quantization/speed.py): ops without multiply-accumulates (elementwise, normalisation,
   softmax) take the precision that runs faster here, per op type, measured.
2. **Sensitivity**: each op that is still int8 is quantized alone (everything else float) and its damage
   to the output is measured (1 - mean cosine vs the float model).
3. **Greedy repair**: starting from the plan of step 1, the most damaging ops per unit of cost (their
   share of the MACs, plus a small per-op overhead) go to float, in growing prefixes, until the gate holds
   on the search queries; then every float op with MACs is tried back in int8, largest first, and stays
   there if the gate still holds. The result is the smallest float set found, not a proven optimum.

The search aims halfway between the gate and a perfect score, so that queries it never saw (the test
split) still meet the gate. Without gates in the recipe it aims at the task's defaults
(toolchain/tasks.py `mixed_default_gates`) and says so (`targets.source: default`). What a candidate is
scored on is the task's (`TASK_METRICS`): top-1 agreement for a classifier, the cosine for an embedder,
the top-10 overlap with the float model for a retrieval model.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from converters.calibrated import choosable_nodes
from converters.tflite_model import parse_tflite
from devices.opcost import model_costs
from toolchain.base.errors import GateFailed
from toolchain.base.notices import announce
from toolchain.base.progress import Progress, SilentProgress
from toolchain.base.types import MixedReason, Task
from toolchain.quantization.scoring import (
    TASK_METRICS,
    Evaluator,
    SearchData,
    cosine_rows,
    gate_targets,
    misses,
    targets_from_gates,
)
from toolchain.quantization.speed import choose_by_speed
from toolchain.report.quantization import AimMiss, KeptOp, MixedMetrics, MixedSection, MixedTargets, SpeedRow

__all__ = ["TASK_METRICS", "SearchData", "search", "targets_from_gates", "worst_ops", "int8_mac_share"]

SENSITIVITY_QUERIES = 128
SEARCH_QUERIES = 500
OP_OVERHEAD = 0.005  # cost of one more float op (its QUANTIZE/DEQUANTIZE), as a share of all MACs
NEGLIGIBLE = 1e-6


@dataclass
class MixedPlan:
    float_nodes: list[str]
    records: list[KeptOp] = field(default_factory=list)
    speed: list[SpeedRow] = field(default_factory=list)
    metrics: MixedMetrics | None = None
    full_int8_metrics: MixedMetrics | None = None
    targets: MixedTargets | None = None
    gates: MixedTargets | None = None
    aim_missed: list[AimMiss] = field(default_factory=list)
    evaluations: int = 0
    seconds: float = 0.0
    split: str = ""
    calibrated: bytes = b""  # the model the plan quantizes (equalized when `equalized`)
    equalized: dict[str, float] = field(default_factory=dict)
    full_int8_unequalized: MixedMetrics | None = None

    def section(self) -> MixedSection:
        return MixedSection(
            float_nodes=len(self.float_nodes),
            search_split=self.split,
            targets=self.targets,
            gates=self.gates,
            aim_missed=self.aim_missed or None,
            equalized=self.equalized or None,
            full_int8_unequalized=self.full_int8_unequalized,
            full_int8=self.full_int8_metrics,
            chosen=self.metrics,
            kept_out_of_int8=self.records,
            speed_by_op_type=self.speed,
            candidates_evaluated=self.evaluations,
            search_seconds=round(self.seconds, 1),
            peak_memory_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            plan="searched",
        )


def _macs(calibrated: bytes) -> dict[int, int]:

    return {c.index: c.macs for c in model_costs(parse_tflite(calibrated))}


def sensitivity(
    ev: Evaluator, nodes: Sequence[Any], progress: Progress, keep: set[str] | None = None
) -> dict[str, float]:
    """Damage of each node quantized alone (all other choosable nodes and `keep` float): 1 - mean cosine
    vs that all-float candidate."""
    everything = {n.name for n in nodes} | (keep or set())
    rows = min(SENSITIVITY_QUERIES, len(ev.data.reference))
    base = ev.outputs(everything, rows)
    damage = {}
    with progress.task("mixed: per-op sensitivity", len(nodes)) as advance:
        for n in nodes:
            got = ev.outputs(everything - {n.name}, rows)
            damage[n.name] = max(0.0, float(1.0 - cosine_rows(got, base).mean()))
            advance(1)
    return damage


def _repair(
    ev: Evaluator, start: set[str], order: list[str], goal: MixedTargets, progress: Progress
) -> set[str]:
    """Smallest prefix of `order` (added to `start`) that meets `goal`: doubling, then bisection. The whole
    of `order` meets it (toolchain/quantization/mixed._goal checked that)."""
    if ev.ok(ev.metrics(start), goal):
        return start
    k, last_bad = 1, 0
    with progress.task(f"mixed: repairing (the first of {len(order)} ranked ops to float)", None):
        while True:
            k = min(k, len(order))
            if k == len(order) or ev.ok(ev.metrics(start | set(order[:k])), goal):
                break
            last_bad, k = k, k * 2
        lo, hi = last_bad, k  # prefix lo fails, prefix hi passes
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ev.ok(ev.metrics(start | set(order[:mid])), goal):
                hi = mid
            else:
                lo = mid
    return start | set(order[:hi])


def _goal(ev: Evaluator, everything: set[str], sensitive: int) -> tuple[MixedTargets, list[AimMiss]]:
    """What the repair aims at. The aim when the most-float candidate (`everything`: every sensitive op
    float) reaches it; else, when that candidate still meets the gates, its own metrics on the targets it
    misses (the best plan found that meets the gates), with how far each is from the aim; else a refusal."""
    best = ev.metrics(everything)
    short = misses(ev.targets, best)
    if not short:
        return ev.targets, []
    if misses(ev.gates, best):
        raise GateFailed(
            f"mixed precision cannot meet the gate on {ev.data.split}: even with all {sensitive} "
            f"sensitive ops in float the result is {best.to_json()} (gates {ev.gates.to_json()})",
            hint="the float model itself may miss the gate: check it with --quantize float32, or "
            "loosen evaluation gates; dynamic keeps activations in float",
        )
    relaxed = {name: got for name, (_, got) in short.items()}
    goal = ev.targets.model_copy(update=relaxed)
    missed = [
        AimMiss(
            metric=name,
            gate=getattr(ev.gates, name),
            aim=aim,
            reached=got,
            missed_by=abs(aim - got),
        )
        for name, (aim, got) in short.items()
    ]
    return goal, missed


def search(
    calibrated: bytes,
    data: SearchData,
    gates: Any,
    task: Task,
    progress: Progress | None = None,
    alternative: tuple[bytes, dict[str, float]] | None = None,
) -> MixedPlan:
    """Choose the float nodes of a mixed-precision model (see the module docstring). `alternative`: the
    calibrated model with its FC outputs equalized and {output: largest channel scale}
    (toolchain/quantization/plan.equalized); searched instead when its full-int8 candidate (the
    equalizing MULs float) scores a higher cosine than the plain one."""
    has_labels = data.labels is not None
    targets = targets_from_gates(gates, task, has_labels)
    limits = gate_targets(gates, task, has_labels)
    progress = progress or SilentProgress()
    with Evaluator(calibrated, data, task, targets, limits) as ev:  # one runtime child for every candidate
        t0 = time.perf_counter()
        keep: set[str] = set()
        plain = ev.metrics(set())
        if alternative is not None and alternative[1]:
            ev.use(alternative[0])
            keep = set(alternative[1])
            if ev.metrics(keep).mean_cosine <= plain.mean_cosine:
                ev.use(calibrated)
                keep = set()
        plan = _search(ev, progress, keep)
        plan.seconds = time.perf_counter() - t0
        if keep:
            plan.equalized = dict(alternative[1]) if alternative else {}
            plan.full_int8_unequalized = plain
        return plan


def _search(ev: Evaluator, progress: Progress, keep: set[str]) -> MixedPlan:
    """The search on `ev`'s calibrated model; the `keep` nodes (equalizing MULs) stay float throughout."""
    calibrated, data, targets = ev.calibrated, ev.data, ev.targets
    nodes = [n for n in choosable_nodes(calibrated) if n.name not in keep]
    macs = _macs(calibrated)
    total = max(1, sum(macs.get(n.index, 0) for n in nodes))
    full = ev.metrics(keep)
    groups: dict[str, list[str]] = {}
    for n in nodes:
        if not macs.get(n.index):
            groups.setdefault(n.op, []).append(n.name)
    with progress.task("mixed: speed of int8 vs float kernels", None):
        start, speed = choose_by_speed(ev.model, groups, keep, data.feeds, ev.host)
    damage = sensitivity(ev, [n for n in nodes if n.name not in start], progress, keep)
    by_name = {n.name: n for n in nodes}

    def cost(name: str) -> float:
        return macs.get(by_name[name].index, 0) / total + OP_OVERHEAD

    order = sorted(
        (name for name, d in damage.items() if d > NEGLIGIBLE), key=lambda nm: -damage[nm] / cost(nm)
    )
    goal, aim_missed = _goal(ev, start | set(order), len(order))
    if aim_missed:
        announce(_aim_note(aim_missed))
    chosen = _repair(ev, start, order, goal, progress)
    repaired = chosen - start
    if_int8: dict[str, MixedMetrics] = {}
    # largest back first; an op without MACs stays float (it costs no int8 share, and a real encoder has
    # dozens: each trial is a quantization and a pass over the search queries)
    with_macs = [nm for nm in repaired if macs.get(by_name[nm].index, 0)]
    for name in sorted(with_macs, key=lambda nm: -macs.get(by_name[nm].index, 0)):
        trial = chosen - {name}
        m = ev.metrics(trial)
        if ev.ok(m, goal):
            chosen = trial
        else:
            if_int8[name] = m
    final = ev.metrics(chosen)
    records = []
    for name in sorted(chosen - keep, key=lambda nm: by_name[nm].index):
        n = by_name[name]
        rec = KeptOp(node=name, op=n.op, macs=int(macs.get(n.index, 0)), reason=MixedReason.SPEED)
        if name in repaired:
            rec = KeptOp(
                node=name,
                op=n.op,
                macs=int(macs.get(n.index, 0)),
                reason=MixedReason.ERROR,
                damage_alone=round(damage.get(name, 0.0), 6),
                if_int8=if_int8.get(name),
            )
        records.append(rec)
    return MixedPlan(
        float_nodes=sorted(chosen),
        records=records,
        speed=[c.row() for c in speed],
        metrics=final,
        full_int8_metrics=full,
        targets=targets,
        gates=ev.gates,
        aim_missed=aim_missed,
        evaluations=ev.count,
        split=data.split,
        calibrated=calibrated,
    )


def _aim_note(missed: list[AimMiss]) -> str:
    parts = [
        f"{m.metric} {m.reached:g} meets the gate {m.gate:g} but is {m.missed_by:g} short of the aim "
        f"{m.aim:g}"
        for m in missed
    ]
    return "mixed: the search's aim was out of reach; kept the best plan that meets the gates (" + (
        "; ".join(parts) + ")"
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
