"""Statistics for per-op timings: merge repeated processes, median/p90 per op, coverage of a whole invoke.

LiteRT's profiler stamps events in whole microseconds: an op shorter than a few microseconds has a median
of 0 or 1 whatever its true cost, while the mean of those integer samples is unbiased (the clock ticks at
random phases relative to the op). So an op is flagged `below_resolution` when its median is under
RESOLUTION_TICKS ticks; its `time_us` (used for shares and sums) is a 10%-trimmed mean of the integer
samples (robust to outliers, and not off by up to half a tick as a median is). Slicing times are in
nanoseconds with the fixed cost of one invoke() call subtracted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from converters.tflite_model import TFLiteModel

RESOLUTION_TICKS = 5


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
    invoke_us: float  # unprofiled whole invoke, same runtime/kernels/threads, call overhead subtracted
    ratio: float  # sum_us / invoke_us
    invoke_spread: list[float]  # whole-invoke median of each process
    extra: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {**asdict(self), "ops": [o.to_dict() for o in self.ops]}


def _row(
    index: int, name: str, kind: str, per_process: list[np.ndarray], offset: float, tick: float
) -> OpRow:
    pooled = np.concatenate(per_process) - offset
    median, p90, mean = (float(x) for x in (np.median(pooled), np.percentile(pooled, 90), pooled.mean()))
    below = median + offset < RESOLUTION_TICKS * tick
    # integer-microsecond samples: a median is off by up to half a tick, a trimmed mean is not
    estimate = _trimmed_mean(pooled) if tick >= 1 else (mean if below else median)
    return OpRow(
        index,
        name,
        kind,
        round(median, 3),
        round(p90, 3),
        round(mean, 3),
        round(max(estimate, 0.0), 3),
        bool(below),
        [round(float(np.median(p)) - offset, 3) for p in per_process],
    )


def _trimmed_mean(v: np.ndarray, cut: float = 0.1) -> float:
    v = np.sort(v)
    k = int(len(v) * cut)
    return float(v[k : len(v) - k].mean()) if len(v) > 2 * k else float(v.mean())


def _finish(
    method: str, mode: str, threads: int, runs: int, ops: list[OpRow], invokes: list[float], **extra
) -> MethodResult:
    total = sum(o.time_us for o in ops)
    for o in ops:
        o.share = round(o.time_us / total, 4) if total else 0.0
    invoke = float(np.median(invokes))
    return MethodResult(
        method,
        mode,
        threads,
        runs,
        len(invokes),
        ops,
        round(total, 3),
        round(invoke, 3),
        round(total / invoke, 3) if invoke > 0 else float("nan"),
        [round(v, 3) for v in invokes],
        extra=extra,
    )


def merge_litert(results: list[dict], mode: str, threads: int, runs: int) -> MethodResult:
    """Pool the C-API profiler's events over processes (same op list in each)."""
    first = results[0]["ops"]
    ops = []
    for j, op in enumerate(first):
        per = [np.asarray(r["ops"][j]["samples_us"], float) for r in results if len(r["ops"]) == len(first)]
        kind = "node" if op["event_type"] == "operator" else "xnnpack"
        ops.append(_row(op["index"], op["tag"], kind, per, 0.0, 1.0))
    # whole invoke without the profiler: wall time of a run minus a one-tiny-op model's, same process
    invokes = [float(np.median(r["wall_unprofiled_us"]) - r["selftest"]["null_wall_us"]) for r in results]
    res = _finish(
        "litert-profiler",
        mode,
        threads,
        runs,
        ops,
        invokes,
        invoke_profiled_us=float(np.median(np.concatenate([r["invoke_profiled_us"] for r in results]))),
        summary=results[0]["summary"],
        selftest=results[0]["selftest"],
    )
    res.notes.append("event times are whole microseconds: time = 10%-trimmed mean, median/p90 shown as is")
    res.notes.append("whole invoke = unprofiled LiteRtRunCompiledModel wall time minus a one-op model's")
    return res


def merge_slicing(
    results: list[dict], info: TFLiteModel, kernels: str, threads: int, runs: int, unsliceable: list[str]
) -> MethodResult:
    ops, errors = [], []
    by_index = [{o["index"]: o for o in r["ops"]} for r in results]
    for op in info.ops:
        found = [b[op.index] for b in by_index if op.index in b]
        if not found or "error" in found[0]:
            if found:
                errors.append(f"op {op.index} {op.op}: {found[0]['error'][:160]}")
            continue
        per = [np.asarray(f["samples_us"], float) for f in found]
        offset = float(np.median(np.concatenate([r["null_interleaved_us"] for r in results])))
        ops.append(_row(op.index, op.op, "node", per, offset, 0.001))
        ops[-1].below_resolution = ops[-1].median_us < 0.1  # under the call-overhead jitter
    invokes = [float(np.median(r["whole_us"]) - np.median(r["null_us"])) for r in results]
    res = _finish(
        "slicing",
        "per-node" if kernels == "builtin" else "deployed",
        threads,
        runs,
        ops,
        invokes,
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
