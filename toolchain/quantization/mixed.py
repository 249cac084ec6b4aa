"""`quantization.mode: mixed`: the most-integer model that meets the recipe's gate, chosen for this model.

From one calibrated float model (converters/calibrated.py) every candidate is a re-quantization with a set
of nodes left in float, run on real queries against the source model's outputs (one runtime child for all):

1. **MAC-free ops**: ops without multiply-accumulates (elementwise, normalisation, softmax) stay float, by
   rule (`quantization.mac_free_ops: float`, the default): int8 would add error and save no MACs, and the
   same recipe must give the same bytes under any load. With `timed` (toolchain/quantization/speed.py) a
   type goes int8 where its int8 kernels run clearly faster on this host, measured; the plan then depends
   on the host and its load, and the saved recipe replays it.
2. **Sensitivity per op type**: the ops still int8 are grouped by type (FULLY_CONNECTED, BATCH_MATMUL, ...)
   and each group is quantized alone (everything else float); its damage to the output (1 - mean cosine vs
   the float model) is divided by its cost (its share of the MACs, plus a small per-op overhead). On a real
   encoder this is where the attention BATCH_MATMULs show up: 1.4% of all-MiniLM-L6-v2's MACs, most of
   its error once its FC outputs are equalized. A few candidates, where one per op took 17 minutes there.
3. **Greedy repair**: whole groups go to float in that order, in growing prefixes, until the aim holds on
   the search queries; then every float op with at least BACK_MIN_SHARE of the MACs is tried back in
   int8, largest first, and stays there if the aim (or the gate, see below) still holds. The result
   is the smallest float set found, not a proven optimum.

The search aims halfway between the gate and a perfect score, so that queries it never saw (the test
split) still meet the gate. A plan that reaches the aim only with less than MIN_INT8_MAC_SHARE of the MACs
in int8 loses to one that meets the gates with more (`aim_missed` then says by how much it is short of the
aim): on all-MiniLM-L6-v2 the aim (cosine 0.995) cost two thirds of the int8 MACs, the gate (0.99) 1.4%.
Without gates in the recipe it aims at the task's defaults (toolchain/tasks.py `mixed_default_gates`) and
says so (`targets.source: default`). What a candidate is scored on is the task's (`TASK_METRICS`): top-1
agreement for a classifier, the cosine for an embedder, the top-10 overlap for a retrieval model.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from converters.calibrated import choosable_nodes
from converters.tflite_model import parse_tflite
from devices.opcost import model_costs
from toolchain.base.errors import GateFailed
from toolchain.base.notices import announce
from toolchain.base.progress import Progress, SilentProgress
from toolchain.base.types import MacFreeOps, MixedReason, Task
from toolchain.quantization.scoring import (
    TASK_METRICS,
    Evaluator,
    SearchData,
    cosine_rows,
    gate_targets,
    misses,
    targets_from_gates,
)
from toolchain.quantization.speed import all_float, choose_by_speed
from toolchain.report.quantization import AimMiss, KeptOp, MixedMetrics, MixedSection, MixedTargets, SpeedRow

__all__ = ["TASK_METRICS", "SearchData", "search", "targets_from_gates", "worst_ops", "int8_mac_share"]

SENSITIVITY_QUERIES = 128
MIN_INT8_MAC_SHARE = 0.9  # under this, a plan that meets the gates beats one that meets the aim
BACK_MIN_SHARE = 0.005  # a float op with fewer of the MACs is not tried back in int8 (MiniLM's BATCH_MATMULs)
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
    type_damage: dict[str, float] = field(default_factory=dict)  # op type -> 1 - cosine, quantized alone
    int8_mac_share: float | None = None  # of the searched ops' MACs
    runtime_peak_mb: int | None = None  # the runtime child's peak resident memory
    mac_free_ops: MacFreeOps = MacFreeOps.FLOAT

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
            mac_free_ops=self.mac_free_ops,
            speed_by_op_type=self.speed or None,
            damage_by_op_type=self.type_damage or None,
            int8_mac_floor=MIN_INT8_MAC_SHARE,
            candidates_evaluated=self.evaluations,
            search_seconds=round(self.seconds, 1),
            peak_memory_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            runtime_peak_memory_mb=self.runtime_peak_mb,
            plan="searched",
        )


def _macs(calibrated: bytes) -> dict[int, int]:

    return {c.index: c.macs for c in model_costs(parse_tflite(calibrated))}


def sensitivity(
    ev: Evaluator, groups: Mapping[str, Sequence[str]], progress: Progress, keep: set[str] | None = None
) -> dict[str, float]:
    """Damage of each group of nodes ({key: node names}) quantized alone (every other grouped node and
    `keep` float): 1 - mean cosine vs that all-float candidate."""
    everything = {n for names in groups.values() for n in names} | (keep or set())
    rows = min(SENSITIVITY_QUERIES, len(ev.data.reference))
    base = ev.outputs(everything, rows)
    damage = {}
    with progress.task(f"mixed: sensitivity of {len(groups)} op groups", len(groups)) as advance:
        for key, names in groups.items():
            got = ev.outputs(everything - set(names), rows)
            damage[key] = max(0.0, float(1.0 - cosine_rows(got, base).mean()))
            advance(1)
    return damage


def _repair(
    ev: Evaluator, start: set[str], order: list[set[str]], goal: MixedTargets, progress: Progress
) -> set[str]:
    """`start` plus the smallest prefix of the groups in `order` that meets `goal`: doubling, then
    bisection (the whole of `order` meets it: toolchain/quantization/mixed._goal checked that)."""
    if ev.ok(ev.metrics(start), goal):
        return start

    def upto(k: int) -> set[str]:
        return start.union(*order[:k])

    k, last_bad = 1, 0
    with progress.task(f"mixed: repairing (the first of {len(order)} ranked op groups to float)", None):
        while True:
            k = min(k, len(order))
            if k == len(order) or ev.ok(ev.metrics(upto(k)), goal):
                break
            last_bad, k = k, k * 2
        lo, hi = last_bad, k  # prefix lo fails, prefix hi passes
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ev.ok(ev.metrics(upto(mid)), goal):
                hi = mid
            else:
                lo = mid
    return upto(hi)


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
    return ev.targets.model_copy(update=relaxed), _aim_misses(ev, best)


def search(
    calibrated: bytes,
    data: SearchData,
    gates: Any,
    task: Task,
    progress: Progress | None = None,
    alternative: tuple[bytes, dict[str, float]] | None = None,
    mac_free_ops: MacFreeOps = MacFreeOps.FLOAT,
) -> MixedPlan:
    """Choose the float nodes of a mixed-precision model (see the module docstring). `alternative`: the
    calibrated model with its FC outputs equalized and {output: largest channel scale}
    (toolchain/quantization/plan.equalized); searched instead when its full-int8 candidate (the
    equalizing MULs float) scores a higher cosine than the plain one. `mac_free_ops`: step 1's rule."""
    has_labels = data.labels is not None
    targets = targets_from_gates(gates, task, has_labels)
    limits = gate_targets(gates, task, has_labels)
    progress = progress or SilentProgress()
    with Evaluator(calibrated, data, task, targets, limits) as ev:  # one runtime child for every candidate
        t0 = time.perf_counter()
        keep: set[str] = set()
        with progress.task("mixed: full int8, plain and with FC outputs equalized", None):
            plain = ev.metrics(set())
            if alternative is not None and alternative[1]:
                ev.use(alternative[0])
                keep = set(alternative[1])
                if ev.metrics(keep).mean_cosine <= plain.mean_cosine:
                    ev.use(calibrated)
                    keep = set()
        plan = _search(ev, progress, keep, mac_free_ops)
        plan.seconds = time.perf_counter() - t0
        plan.runtime_peak_mb = ev.host.peak_mb()
        if keep:
            plan.equalized = dict(alternative[1]) if alternative else {}
            plan.full_int8_unequalized = plain
        return plan


def _search(ev: Evaluator, progress: Progress, keep: set[str], mac_free_ops: MacFreeOps) -> MixedPlan:
    """The search on `ev`'s calibrated model; the `keep` nodes (equalizing MULs) stay float throughout."""
    calibrated, data, targets = ev.calibrated, ev.data, ev.targets
    nodes = [n for n in choosable_nodes(calibrated) if n.name not in keep]
    by_name = {n.name: n for n in nodes}
    by_index = _macs(calibrated)
    macs = {n.name: by_index.get(n.index, 0) for n in nodes}
    total = max(1, sum(macs.values()))
    full = ev.metrics(keep)
    groups: dict[str, list[str]] = {}
    for n in nodes:
        if not macs[n.name]:
            groups.setdefault(n.op, []).append(n.name)
    start, speed = all_float(groups, keep), []
    if mac_free_ops == MacFreeOps.TIMED:
        with progress.task(
            f"mixed: speed of int8 vs float kernels ({len(groups)} op types)", len(groups)
        ) as tick:
            start, speed = choose_by_speed(ev.model, groups, keep, data.feeds, ev.host, tick)
    by_type: dict[str, list[str]] = {}
    for n in nodes:
        if n.name not in start:
            by_type.setdefault(n.op, []).append(n.name)
    damage = sensitivity(ev, by_type, progress, keep | start)  # start: MAC-free ops float by speed

    def cost(op: str) -> float:
        return sum(macs[nm] for nm in by_type[op]) / total + OP_OVERHEAD * len(by_type[op])

    ranked = sorted((op for op, d in damage.items() if d > NEGLIGIBLE), key=lambda op: -damage[op] / cost(op))
    order = [set(by_type[op]) for op in ranked]
    goal, aim_missed = _goal(ev, start.union(*order), sum(len(g) for g in order))
    chosen = _repair(ev, start, order, goal, progress)
    int8_share = lambda fl: 1 - sum(macs.get(nm, 0) for nm in fl) / total  # noqa: E731
    settled = False
    if int8_share(chosen) < MIN_INT8_MAC_SHARE and goal != ev.gates:
        at_gates = _repair(ev, start, order, ev.gates, progress)
        if int8_share(at_gates) > int8_share(chosen):
            chosen, goal, settled = at_gates, ev.gates, True
    repaired = chosen - start
    if_int8: dict[str, MixedMetrics] = {}
    # largest back first; an op with under BACK_MIN_SHARE of the MACs stays float (it costs next to no int8
    # share, and a real encoder has dozens: each trial is a quantization and a pass over the search queries)
    with_macs = sorted(
        (nm for nm in repaired if macs[nm] >= BACK_MIN_SHARE * total), key=lambda nm: -macs[nm]
    )
    with progress.task(f"mixed: trying {len(with_macs)} float ops back in int8", len(with_macs)) as tick:
        for name in with_macs:
            trial = chosen - {name}
            m = ev.metrics(trial)
            if ev.ok(m, goal):
                chosen = trial
            else:
                if_int8[name] = m
            tick(1)
    final = ev.metrics(chosen)
    if settled:
        aim_missed = _aim_misses(ev, final)
    if aim_missed:
        announce(_aim_note(aim_missed, settled))
    records = []
    for name in sorted(chosen - keep, key=lambda nm: by_name[nm].index):
        n = by_name[name]
        rec = KeptOp(node=name, op=n.op, macs=int(macs[name]), reason=MixedReason.SPEED)
        if name in repaired:
            rec = KeptOp(
                node=name,
                op=n.op,
                macs=int(macs[name]),
                reason=MixedReason.ERROR,
                type_damage_alone=round(damage.get(n.op, 0.0), 6),
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
        type_damage={op: round(d, 6) for op, d in damage.items()},
        int8_mac_share=round(int8_share(chosen), 4),
        mac_free_ops=mac_free_ops,
    )


def _aim_misses(ev: Evaluator, m: MixedMetrics) -> list[AimMiss]:
    """How far `m` is from each aim it misses."""
    return [
        AimMiss(metric=name, gate=getattr(ev.gates, name), aim=aim, reached=got, missed_by=abs(aim - got))
        for name, (aim, got) in misses(ev.targets, m).items()
    ]


def _aim_note(missed: list[AimMiss], settled: bool = False) -> str:
    why = (
        f"the aim needed more than {1 - MIN_INT8_MAC_SHARE:.0%} of the MACs in float"
        if settled
        else "the search's aim was out of reach"
    )
    parts = [
        f"{m.metric} {m.reached:g} meets the gate {m.gate:g} but is {m.missed_by:g} short of the aim "
        f"{m.aim:g}"
        for m in missed
    ]
    return f"mixed: {why}; kept the best plan that meets the gates (" + ("; ".join(parts) + ")")


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
    """The n ops that damage the output most when quantized alone: (op type, node, 1 - cosine). Op types
    first (one candidate each), then each op of the worst types, until they hold n ops."""

    nodes = choosable_nodes(calibrated)
    types: dict[str, list[str]] = {}
    for node in nodes:
        types.setdefault(node.op, []).append(node.name)
    everything = {node.name for node in nodes}
    with Evaluator(calibrated, data, task, MixedTargets(source="none")) as ev:
        by_type = sensitivity(ev, types, SilentProgress())
        picked: list[str] = []
        for op in sorted(types, key=lambda op: -by_type[op]):
            if len(picked) >= n:
                break
            picked += types[op]
        damage = sensitivity(ev, {name: [name] for name in picked}, SilentProgress(), everything)
    ranked = sorted((x for x in nodes if x.name in damage), key=lambda x: -damage[x.name])[:n]
    return [(x.op, x.name, round(damage[x.name], 4)) for x in ranked]
