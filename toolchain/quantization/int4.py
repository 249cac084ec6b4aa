"""`quantization.mode: int4`: each weight in 4 bits where the gate holds and every target device runs it.

From the float .tflite of the final model, every constant weight of a dense op (per output channel, by the
LiteRT Quantizer) or an embedding table (per row) is a site that can be stored in 4 or 8 bits
(converters/int4.py): tables and int8 weights behind a DEQUANTIZE that runs once, int4 dense weights
(FULLY_CONNECTED, CONV_2D) in the op's hybrid kernel, so latency stays at the float model's (measured on
the example's teacher: 18.9 vs 19.1 µs; int8 6.3 µs): int4 buys size, not speed.

1. **Devices**: each profile of `quantization.int4.devices` is asked (its own runtime, devices/kernels.py)
   whether it loads DEQUANTIZE v6 (an int4 input). If one cannot, no weight goes to 4 bits: the build is
   int8 weight-only, and the report names the device and the runtime's words.
2. **Sensitivity**, as the mixed search (toolchain/quantization/mixed.py) measures it: each site alone in
   4 bits (the rest 8) and its damage, 1 - mean cosine with the float model on the search queries; a
   FULLY_CONNECTED weight is measured both per output channel and blockwise (one scale per 32 inputs,
   `int4_block32`) when `quantization.int4.blockwise` is on, and takes the width that damages less (per
   channel on a tie: blockwise needs XNNPACK's kernel, and MediaPipe 1.2.3 fails to open such a model).
3. **Greedy**: all sites in 4 bits; while the targets fail, the sites with the most damage per byte saved
   (beyond the all-8-bit plan's own damage, which every measurement includes) go back to 8 bits in growing
   prefixes; then each 8-bit site is tried in 4 bits again, largest first.
4. **Table scales**: each 4-bit embedding table is tried with one scale per column instead of per row
   (per-row scales and their int64 zero points are 12 bytes a row: 16.5 KB for the example's 1,374-row
   table, a sixth of its int4 build), and keeps it if the targets still hold.

5. **Rounding** (`quantization.int4.rounding: gptq`): the inputs of every FULLY_CONNECTED layer are
   captured from the float model on the recipe's calibration queries (devices/fc_inputs.py, real tokens
   only) and each 4-bit FULLY_CONNECTED weight is rounded by GPTQ (converters/int4_rounding.py) instead of
   to nearest, in every candidate the search measures and in the build: same scales and bytes, a smaller
   change of each layer's output. The Hessians come from the float model's inputs (not re-captured from
   the partly quantized model), so every plan rounds a weight the same way.
6. **8-bit kernel** (`quantization.int4.hybrid_int8`): an 8-bit FULLY_CONNECTED / CONV_2D weight goes
   to the op's hybrid kernel (`int8_hybrid`, as `-Q dynamic` stores it: dynamic int8's speed) instead of
   behind a DEQUANTIZE (float math, the float model's speed). Off by default (the outputs stay as they were).
7. **Budget** (`quantization.int4.max_bytes`): the repair in 3 may move weights back to 8 bits only while
   the model still fits the budget (the longest prefix of its order that fits, found by bisection on the
   real quantized size); if the targets still miss there, the plan is that one and the report says
   `budget_limited` (the recipe's gates then judge the build; with a budget the search goes on even when
   every weight in 8 bits misses the targets). A budget that even all-4-bit misses is an
   error. A budget-limited plan is then traded within the budget (toolchain/quantization/int4_repair.py):
   the prefix order ranks weights by their damage alone, which is only a proxy for what they do together.

8. **Kernel cost** (`quantization.int4.max_kernel_cost`, toolchain/quantization/kernel_cost.py): the
   plan's FULLY_CONNECTED time by the target runtimes' fixed kernel table (devices/kernels.py; XNNPACK runs
   per-channel int4 at 0.95x dynamic int8's kernel, blockwise 1.0x / 1.13x / 1.36x for 128 / 64 / 32 inputs
   per scale, `quantization.int4.blocks`) is held under the cap: blockwise weights move to cheaper forms,
   the least extra damage per time saved first, before the repair and again at the end.

The targets are the mixed search's (`targets_from_gates`: halfway between the recipe's gates and a perfect
score, or the task's defaults). A plan replays without a search (`quantization.int4.weights`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from converters.int4 import BITS, DEFAULT_BLOCKS, Quantizer, weight_sites
from devices.fc_inputs import input_hessians
from devices.host_runtime import HostRuntime
from devices.hostrun import HostRunner
from devices.kernels import INT4_PROBE, missing_kernel
from devices.profiles.schema import get_profile
from toolchain.base.errors import GateFailed
from toolchain.base.progress import Progress, SilentProgress
from toolchain.base.types import Int4Rounding, Task, WeightWidth
from toolchain.quantization.int4_repair import greedy, trade_in_budget
from toolchain.quantization.kernel_cost import cap_plan, fc_costs, plan_cost
from toolchain.quantization.mixed import TASK_METRICS, SearchData, targets_from_gates
from toolchain.report.quantization import Int4Section, Int4Weight, MixedMetrics, MixedTargets

I4, I8, I4C, I8H = WeightWidth.INT4, WeightWidth.INT8, WeightWidth.INT4_COLUMNS, WeightWidth.INT8_HYBRID
Plan = dict[str, WeightWidth]
Calibration = Callable[[], tuple[dict[str, np.ndarray], np.ndarray | None]]  # feeds, token mask


@dataclass
class Int4Build:
    tflite: bytes
    plan: Plan
    section: Int4Section


def device_support(devices: Sequence[str]) -> dict[str, str | None]:
    """Per profile: None when its runtime runs int4 weights, else why not."""
    return {name: missing_kernel(get_profile(name), *INT4_PROBE) for name in devices}


class Int4Evaluator:
    """Quantize a plan, run it on the search queries in one runtime child, score it against the float
    model (cached by plan)."""

    def __init__(self, quantizer: Quantizer, data: SearchData, task: Task, targets: MixedTargets) -> None:
        self.q, self.data, self.task, self.targets = quantizer, data, task, targets
        self.count = 0
        self._cache: dict[frozenset[tuple[str, WeightWidth]], MixedMetrics] = {}
        self._sizes: dict[frozenset[tuple[str, WeightWidth]], int] = {}
        self.host = HostRuntime()

    def close(self) -> None:
        self.host.close()

    def size(self, plan: Plan) -> int:
        """The quantized model's bytes (cached by plan)."""
        key = frozenset(plan.items())
        if key not in self._sizes:
            self._sizes[key] = len(self.q.quantize(plan))
        return self._sizes[key]

    def metrics(self, plan: Plan) -> MixedMetrics:
        key = frozenset(plan.items())
        if key not in self._cache:
            self.count += 1
            fours = sum(BITS[b] == 4 for b in plan.values())
            name = f"the int4 candidate with {fours} of {len(plan)} weights in 4 bits"
            model = self.q.quantize(plan)
            self._sizes[key] = len(model)
            with HostRunner(model, threads=1, name=name, host=self.host) as runner:
                got = runner.scores(self.data.feeds)
            ref = self.data.reference
            cos = np.sum(got * ref, 1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(ref, axis=1) + 1e-12)
            self._cache[key] = MixedMetrics(
                mean_cosine=round(float(cos.mean()), 6), **TASK_METRICS[self.task](got, ref, self.data.labels)
            )
        return self._cache[key]

    def ok(self, m: MixedMetrics) -> bool:
        t = self.targets
        misses = (
            (t.min_cosine, m.mean_cosine, lambda aim, got: got < aim),
            (t.min_agreement, m.agreement, lambda aim, got: got < aim),
            (t.min_agreement_where_sure, m.agreement_where_sure, lambda aim, got: got < aim),
            (t.max_accuracy_drop, m.accuracy_drop_points, lambda aim, got: got > aim),
            (t.min_top10_overlap, m.top10_overlap, lambda aim, got: got < aim),
            (t.max_recall_drop, m.recall_drop_points, lambda aim, got: got > aim),
        )
        return not any(aim is not None and got is not None and miss(aim, got) for aim, got, miss in misses)


def _columns(ev: Int4Evaluator, plan: Plan, tables: list[str], sites: dict[str, int]) -> Plan:
    """Each 4-bit table tried with one scale per column (fewer bytes), largest first; kept if it holds."""
    for w in sorted((t for t in tables if plan[t] == I4), key=lambda t: -sites[t]):
        trial = {**plan, w: I4C}
        if ev.ok(ev.metrics(trial)):
            plan = trial
    return plan


def search_int4(
    float_tflite: bytes,
    data: SearchData,
    task: Task,
    gates: object,
    devices: Sequence[str],
    given: Plan | None = None,
    progress: Progress | None = None,
    blockwise: bool = False,
    *,
    rounding: Int4Rounding = Int4Rounding.NEAREST,
    calibration: Calibration | None = None,
    max_bytes: int | None = None,
    hybrid_int8: bool = False,
    hessians: Mapping[str, np.ndarray] | None = None,
    blockwise_gain: float = 1.0,
    blocks: Sequence[int] = DEFAULT_BLOCKS,
    max_kernel_cost: float | None = None,
) -> Int4Build:
    """The int4 build of `float_tflite` (see the module doc); `given` replays a saved plan; `calibration`
    (rounding gptq) gives the queries whose layer inputs GPTQ rounds by, or `hessians` the inputs' Hessians
    already made (a benchmark replaying plans on one model)."""
    progress = progress or SilentProgress()
    t0 = time.perf_counter()
    support = device_support(devices)
    allowed = all(v is None for v in support.values())
    targets = targets_from_gates(gates, task, data.labels is not None)
    gptq_queries = None
    if hessians is None:
        made = _hessians(float_tflite, rounding, calibration, progress) if allowed else ({}, None)
        hessians, gptq_queries = made
    elif rounding != Int4Rounding.GPTQ:
        hessians = {}
    costs = fc_costs(devices) if max_kernel_cost is not None else None
    hybrid_int8 = hybrid_int8 or costs is not None  # float-math 8-bit weights would cost 3.9x
    with Quantizer(float_tflite, hessians=hessians) as quantizer:
        sites = {w: s.params for w, s in quantizer.sites.items()}
        ops = {w: s.op for w, s in quantizer.sites.items()}

        def capped(p: Plan) -> Plan:
            return p if costs is None else cap_plan(p, by_width, ops, sites, costs, max_kernel_cost or 0.0)

        damage: dict[str, float] = {}
        by_width: dict[str, dict[WeightWidth, float]] = {}
        before: MixedMetrics | None = None
        trades: list[str] | None = None
        if given is not None:
            plan, how = dict(given), "given"
            if not allowed and any(BITS[b] == 4 for b in plan.values()):
                worst = next(v for v in support.values() if v is not None)
                raise GateFailed(
                    f"the saved int4 plan has 4-bit weights, but {worst}",
                    hint="drop quantization.int4.weights to search again, or target other devices",
                )
            section_metrics: tuple[MixedMetrics | None, MixedMetrics | None] = (None, None)
            evaluations, limited = 0, None
        else:
            how = "searched"
            ev = Int4Evaluator(quantizer, data, task, targets)
            try:
                all8: Plan = {
                    w: I8H if hybrid_int8 and s.takes(I8H) else I8 for w, s in quantizer.sites.items()
                }
                base = ev.metrics(all8)
                if not ev.ok(base) and max_bytes is None:  # with a budget: the best plan that fits
                    raise GateFailed(
                        f"even with every weight in 8 bits the result is {base.to_json()}, short of the "
                        f"targets {targets.to_json()}",
                        hint="relax the recipe's gates, or use mode float16 / dynamic",
                    )
                plan, limited = all8, None
                if allowed:
                    able = [(w, b) for w, s in quantizer.sites.items() for b in s.widths(blockwise, blocks)]
                    with progress.task("int4: sensitivity", len(able)) as advance:
                        for w, b in able:
                            got = max(0.0, 1.0 - ev.metrics({**all8, w: b}).mean_cosine)
                            by_width.setdefault(w, {})[b] = got
                            advance(1)
                    four = {w: _width(d, blockwise_gain) for w, d in by_width.items()}
                    four = {w: b for w, b in capped({**all8, **four}).items() if w in four}
                    damage = {w: by_width[w][b] for w, b in four.items()}
                    extra = _marginal(damage, 1.0 - base.mean_cosine)
                    plan, limited = greedy(ev, sites, extra, four, progress, max_bytes, all8)
                    if limited and max_bytes is not None:  # the prefix order is a proxy: trade in budget
                        before = ev.metrics(plan)
                        plan, trades = trade_in_budget(
                            ev, plan, sites, extra, four, all8, max_bytes, progress
                        )
                        limited = not ev.ok(ev.metrics(plan))
                    tables = [w for w, s in quantizer.sites.items() if s.table]
                    plan = capped(_columns(ev, plan, tables, sites))
                section_metrics = (base, ev.metrics(plan))
                evaluations = ev.count
            finally:
                ev.close()
        tflite = quantizer.quantize(plan)
        version = quantizer.version
        infos = quantizer.sites
    total = sum(sites[w] for w in plan) or 1
    section = Int4Section(
        quantizer=version,
        plan=how,
        devices=support,
        int4_allowed=allowed,
        targets=targets if how == "searched" else None,
        all_int8=section_metrics[0],
        chosen=section_metrics[1],
        weights=[
            Int4Weight(
                weight=w,
                op=infos[w].op,
                params=infos[w].params,
                width=plan[w],
                table=infos[w].table,
                damage_alone=round(damage[w], 6) if w in damage else None,
                damage_by_width={b: round(d, 6) for b, d in by_width.get(w, {}).items()},
            )
            for w in plan
        ],
        int4_params_share=round(sum(sites[w] for w, b in plan.items() if BITS[b] == 4) / total, 4),
        candidates_evaluated=evaluations,
        search_seconds=round(time.perf_counter() - t0, 1),
        search_split=data.split,
        rounding=rounding,
        gptq_queries=gptq_queries,
        max_bytes=max_bytes,
        budget_limited=limited if max_bytes is not None else None,
        before_trades=before,
        trades=trades,
        max_kernel_cost=max_kernel_cost,
        kernel_cost=round(plan_cost(plan, ops, sites, costs), 3) if costs is not None else None,
    )
    return Int4Build(tflite, plan, section)


def _marginal(damage: Mapping[str, float], floor: float) -> dict[str, float]:
    """Each weight's damage in 4 bits beyond the all-8-bit plan's own (`floor`, which every measurement
    includes): the repair's order is by it per value, so a small weight whose 4 bits add nothing is not
    ranked worst only because the 8-bit error is divided by few values."""
    return {w: max(0.0, d - max(0.0, floor)) for w, d in damage.items()}


def _width(damage: Mapping[WeightWidth, float], gain: float) -> WeightWidth:
    """The 4-bit width a weight takes: per channel, unless another width cuts its damage alone by more
    than `gain` times (1: any cut; per channel on a tie). Blockwise kernels run slower than per channel."""
    first = next(iter(damage))  # per channel: widths() lists it first
    best = min(damage, key=damage.__getitem__)
    return best if damage[best] * gain < damage[first] else first


def _hessians(
    float_tflite: bytes, rounding: Int4Rounding, calibration: Calibration | None, progress: Progress
) -> tuple[dict[str, np.ndarray], int | None]:
    """Rounding gptq: the input Hessian of every FULLY_CONNECTED weight that can go to 4 bits, on the
    calibration queries, and how many queries; nearest: none."""
    if rounding != Int4Rounding.GPTQ:
        return {}, None
    if calibration is None:
        raise GateFailed("int4 rounding gptq needs calibration queries", hint="give --calibration or --train")
    feeds, mask = calibration()
    fc = [s.weight for s in weight_sites(float_tflite) if s.op == "FULLY_CONNECTED" and s.int4]
    queries = len(next(iter(feeds.values()))) if feeds else 0
    return input_hessians(float_tflite, feeds, fc, mask, progress), queries


def build_int4(
    float_tflite: bytes,
    recipe: Any,
    task: Task,
    data: Callable[[], SearchData],
    progress: Progress,
    calibration: Calibration | None = None,
) -> Int4Build:
    """Mode int4 for a backend: the recipe's devices, saved plan, rounding and budget; the search queries
    (and the calibration queries' feeds, for GPTQ) made on demand."""
    spec = recipe.quantization.int4
    devices = spec.devices if spec is not None else ["x86-host"]
    given = spec.weights if spec is not None else None
    blockwise = spec.blockwise if spec is not None else False
    return search_int4(
        float_tflite,
        data(),
        task,
        recipe.evaluation,
        devices,
        given,
        progress,
        blockwise,
        rounding=spec.rounding if spec is not None else Int4Rounding.NEAREST,
        calibration=calibration,
        max_bytes=spec.max_bytes if spec is not None else None,
        hybrid_int8=spec.hybrid_int8 if spec is not None else False,
        blockwise_gain=spec.blockwise_gain if spec is not None else 1.0,
        blocks=spec.blocks if spec is not None else DEFAULT_BLOCKS,
        max_kernel_cost=spec.max_kernel_cost if spec is not None else None,
    )
