"""Statistics for per-op timings: merge repeated processes, median/p90 per op, coverage of a whole invoke.

Every time here is a difference or a quantised reading, so each method states the smallest time it can tell
from zero (`resolution_us`) and nothing below it is passed off as a measurement:
- LiteRT's profiler stamps events in whole microseconds and adds its own cost to each event (measured here:
  a 16-float ADD that costs ~0.15 us unprofiled reads 0.35-0.55 us). The mean of integer samples is unbiased
  when the tick falls at random phases, so an op's `time_us` is a 10%-trimmed mean. But the profiler's own
  per-event cost rounds small ops up (a 1-float ADD, ~0.3 us, read exactly 1 us in every sample), so an op
  under LITERT_RESOLUTION_TICKS ticks is flagged `below_resolution`.
- Slicing times a one-op model and subtracts the fixed cost of an invoke() call, taken from a zero-op model
  timed in the same rounds. That fixed cost depends on context (after a slice vs after the whole model: up
  to ~0.9 us apart on this host), so the spread between the two zero-op medians (and their standard error)
  is the method's resolution; slices below it are flagged.
- The whole invoke is wall time paired call by call with a zero-op model's, the median of the differences,
  with its standard error: a difference not clearly above zero is `None` ("below resolution"), never a
  negative time.
A method is `resolved` when its whole invoke is resolved and most of its per-op time (>= half) sits in ops
above its resolution; only then is the sum/invoke `ratio` reported. Otherwise ratio is None and a note says
why: a sum of unresolvable ops compared with an invoke is not a coverage figure (100 tiny ADDs summed to
0.245 us against a 21 us invoke before this rule).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from converters.tflite_model import TFLiteModel

RESOLVED_SHARE = 0.5  # share of the per-op sum that must sit in resolved ops for a coverage ratio
LITERT_RESOLUTION_TICKS = 2.0  # profiler events: whole microseconds plus the profiler's own cost
SLICING_FLOOR_US = 0.05  # perf_counter_ns jitter around one invoke() call on this host kind


def median_se(v: np.ndarray) -> float:
    """Standard error of a median from the median absolute deviation (normal approximation)."""
    v = np.asarray(v, float)
    if len(v) < 2:
        return float("inf")
    mad = float(np.median(np.abs(v - np.median(v))))
    return 1.2533 * 1.4826 * mad / np.sqrt(len(v))


def paired_difference(a: list[float], b: list[float], floor: float) -> tuple[float, float]:
    """Median of a[i] - b[i] and the smallest difference it can tell from zero (3 standard errors)."""
    d = np.asarray(a, float)[: len(b)] - np.asarray(b, float)[: len(a)]
    return float(np.median(d)), max(floor, 3 * median_se(d))


@dataclass
class OpRow:
    index: int  # TFLite node index (per-node, slicing) or XNNPACK operator index (deployed)
    name: str
    kind: str  # node | xnnpack
    median_us: float
    p90_us: float
    mean_us: float
    time_us: float
    below_resolution: bool
    process_medians_us: list[float]
    share: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class MethodResult:
    method: str  # litert-profiler | slicing
    mode: str
    threads: int
    runs_per_process: int
    processes: int
    ops: list[OpRow]
    sum_us: float
    invoke_us: float | None  # unprofiled whole invoke minus a zero-op call; None when below resolution
    ratio: float | None  # sum_us / invoke_us, only when `resolved`
    invoke_spread: list[float | None]  # whole-invoke estimate of each process (None: below resolution)
    resolution_us: float = 0.0  # the smallest per-op time this method tells from zero
    invoke_resolution_us: float = 0.0
    resolved: bool = False
    extra: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**asdict(self), "ops": [o.to_dict() for o in self.ops]}


def _row(
    index: int, name: str, kind: str, per_process: list[np.ndarray], offset: float, tick: float, res: float
) -> OpRow:
    pooled = np.concatenate(per_process) - offset
    median, p90, mean = (float(x) for x in (np.median(pooled), np.percentile(pooled, 90), pooled.mean()))
    # integer-microsecond samples: a median is off by up to half a tick, a trimmed mean is not
    estimate = max(_trimmed_mean(pooled) if tick >= 1 else median, 0.0)
    return OpRow(
        index,
        name,
        kind,
        round(median, 3),
        round(p90, 3),
        round(mean, 3),
        round(estimate, 3),
        bool(round(estimate, 3) < round(res, 3)),  # judged on the numbers as reported
        [round(float(np.median(p)) - offset, 3) for p in per_process],
    )


def _trimmed_mean(v: np.ndarray, cut: float = 0.1) -> float:
    v = np.sort(v)
    k = int(len(v) * cut)
    return float(v[k : len(v) - k].mean()) if len(v) > 2 * k else float(v.mean())


def _finish(
    method: str,
    mode: str,
    threads: int,
    runs: int,
    ops: list[OpRow],
    invokes: list[tuple[float, float]],
    resolution: float,
    **extra,
) -> MethodResult:
    """Shares, the whole invoke (median over processes of each one's paired estimate) and the verdict."""
    total = round(sum(o.time_us for o in ops), 3)
    for o in ops:
        o.share = round(o.time_us / total, 4) if total else 0.0
    spread = [round(v, 3) if v > r else None for v, r in invokes]
    # Compared as reported (both rounded): 1.0 > 0.9996 held, and the report said invoke 1.0 > resolution 1.0.
    invoke_res = round(float(max(r for _, r in invokes)), 3)
    invoke = round(float(np.median([v for v, _ in invokes])), 3)
    invoke_ok = invoke > invoke_res
    resolved_time = sum(o.time_us for o in ops if not o.below_resolution)
    resolved = invoke_ok and total > 0 and resolved_time >= RESOLVED_SHARE * total
    res = MethodResult(
        method,
        mode,
        threads,
        runs,
        len(invokes),
        ops,
        round(total, 3),
        round(invoke, 3) if invoke_ok else None,
        round(total / invoke, 3) if resolved else None,
        spread,
        resolution_us=round(resolution, 3),
        invoke_resolution_us=round(invoke_res, 3),
        resolved=resolved,
        extra=extra,
    )
    below = [o for o in ops if o.below_resolution]
    if not invoke_ok:
        res.notes.append(
            f"whole invoke below resolution: not distinguishable from an empty invoke() call "
            f"(< {invoke_res:.2f} µs)"
        )
    if below:
        res.notes.append(
            f"{len(below)} of {len(ops)} ops are below this method's resolution ({resolution:.2f} µs): "
            "their times are not measurements"
            + ("" if resolved else "; no sum/invoke ratio is reported (profile a larger model or op)")
        )
    return res


def merge_litert(results: list[dict], mode: str, threads: int, runs: int) -> MethodResult:
    """Pool the C-API profiler's events over processes (same op list in each)."""
    first = results[0]["ops"]
    ops = []
    for j, op in enumerate(first):
        per = [np.asarray(r["ops"][j]["samples_us"], float) for r in results if len(r["ops"]) == len(first)]
        kind = "node" if op["event_type"] == "operator" else "xnnpack"
        ops.append(_row(op["index"], op["tag"], kind, per, 0.0, 1.0, LITERT_RESOLUTION_TICKS))
    # whole invoke without the profiler: each run's wall time minus a zero-op model's, timed beside it
    invokes = [paired_difference(r["wall_unprofiled_us"], r["null_wall_us"], 0.0) for r in results]
    res = _finish(
        "litert-profiler",
        mode,
        threads,
        runs,
        ops,
        invokes,
        LITERT_RESOLUTION_TICKS,
        invoke_profiled_us=float(np.median(np.concatenate([r["invoke_profiled_us"] for r in results]))),
        summary=results[0]["summary"],
        selftest=results[0]["selftest"],
    )
    res.notes.append("event times are whole microseconds: time = 10%-trimmed mean, median/p90 shown as is")
    res.notes.append("whole invoke = unprofiled run wall time minus a zero-op model's, paired run by run")
    return res


def merge_slicing(
    results: list[dict], info: TFLiteModel, kernels: str, threads: int, runs: int, unsliceable: list[str]
) -> MethodResult:
    ops, errors = [], []
    by_index = [{o["index"]: o for o in r["ops"]} for r in results]
    null_slices = np.concatenate([r["null_interleaved_us"] for r in results])
    offset = float(np.median(null_slices))
    # The zero-op call measured after the slices vs beside the whole model: how much the subtracted fixed
    # cost depends on context. No per-op difference smaller than that (or its standard error) is real.
    context = max(abs(float(np.median(r["null_us"]) - np.median(r["null_interleaved_us"]))) for r in results)
    resolution = max(SLICING_FLOOR_US, context, 3 * median_se(null_slices))
    for op in info.ops:
        found = [b[op.index] for b in by_index if op.index in b]
        if not found or "error" in found[0]:
            if found:
                errors.append(f"op {op.index} {op.op}: {found[0]['error'][:160]}")
            continue
        per = [np.asarray(f["samples_us"], float) for f in found]
        ops.append(_row(op.index, op.op, "node", per, offset, 0.001, resolution))
    invokes = [paired_difference(r["whole_us"], r["null_us"], SLICING_FLOOR_US) for r in results]
    res = _finish(
        "slicing",
        "per-node" if kernels == "builtin" else "deployed",
        threads,
        runs,
        ops,
        invokes,
        resolution,
        kernels=kernels,
        runtime_module=results[0].get("runtime_module"),
        invoke_overhead_us=round(float(np.median(results[0]["null_us"])), 3),
    )
    res.notes.append(
        "slicing method: each op alone as a one-op model fed real intermediate tensors, "
        "all slices invoked in model order every round (caches as inside the model); "
        "the cost of an empty invoke() is subtracted"
    )
    res.notes += [f"not timed: {u}" for u in unsliceable + errors]
    return res


def compare_methods(a: MethodResult, b: MethodResult, min_share: float = 0.05) -> list[dict]:
    """Per node, the two methods' times for ops above `min_share` of either total (node-indexed only)."""
    rows = []
    bi = {o.index: o for o in b.ops if o.kind == "node"}
    for o in a.ops:
        other = bi.get(o.index)
        if o.kind != "node" or other is None or max(o.share, other.share) < min_share:
            continue
        diff = abs(o.time_us - other.time_us) / max(o.time_us, other.time_us, 1e-9)
        rows.append(
            {
                "index": o.index,
                "op": o.name,
                a.method: o.time_us,
                b.method: other.time_us,
                "rel_diff": round(diff, 3),
            }
        )
    return rows
