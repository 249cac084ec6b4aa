"""Calibration quality: have the activation ranges settled, and which ranges should int8 use.

`range_convergence` calibrates on growing prefixes of the calibration sample
(toolchain/quantization/stratify.py keeps
every prefix stratified) and reports how far each activation's (min, max) moved from one step to the
next, relative to its range on the larger sample: (|dmin| + |dmax|) / (max - min). Tensors whose range
holds an attention-mask constant (-1e9 in Keras, -3.4e38 from onnx2tf: beyond converters/ranges.py HUGE,
1e6) or has no width are left out and counted, since a relative change means nothing for them. Converged
means that at the last step the median change is under `threshold` and at most 5% of the tensors moved by
more than four times that: more queries of the same kind would barely move the int8 scales. The median
alone is not enough: on the tiny test classifier 4 queries against 200 moved the median tensor by 4%
(padding fixes the conv ranges from the first query) while the logits' range moved 21%. Nor is the
largest change: on the BERT fixture classifier (149 activations, 5 of them mask-valued;
benchmarks/bench_ranges.py) 150 -> 300 stratified queries moved the median 0.1% but one LayerNorm
variance tensor 25%, a heavy tail that more queries keep stretching; 75 -> 150 moved the median 1.0%
(largest 43%).

`refined_ranges` is the set of ranges to write into the calibrated model before `quantize`: mask-safe
ranges for the mask-constant tensors (the fix that takes a BERT's full int8 from 28% to 91% accuracy, a
Keras BERT's from 7% to 97%: converters/ranges.py) and, optionally, percentile ranges for every other
activation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from converters.calibrated import activation_ranges
from converters.ranges import DEGENERATE, HUGE, Range, is_huge, mask_safe_ranges
from devices.activations import percentile_ranges
from toolchain.base.errors import DataError
from toolchain.base.progress import Progress
from toolchain.report.quantization import Convergence, ConvergenceStep, IgnoredTensors

CONVERGED = 0.05  # median relative range change at the last step
MAX_FACTOR = 4.0  # ... and few tensors moved by more than this many times that:
OUTLIER_SHARE = 0.05  # at most this share of the compared tensors


def range_changes(
    before: Mapping[str, Range], after: Mapping[str, Range]
) -> tuple[dict[str, float], dict[str, int]]:
    """Relative change per tensor from `before` to `after` (the larger sample), and what was skipped."""
    changes: dict[str, float] = {}
    skipped = {"huge": 0, "degenerate": 0}
    for name, (lo, hi) in after.items():
        if name not in before:
            continue
        if is_huge((lo, hi)) or is_huge(before[name]):
            skipped["huge"] += 1
        elif hi - lo <= DEGENERATE:
            skipped["degenerate"] += 1
        else:
            changes[name] = (abs(lo - before[name][0]) + abs(hi - before[name][1])) / (hi - lo)
    return changes, skipped


def _sizes(total: int, fractions: Sequence[float]) -> list[int]:
    if any(not 0 < f <= 1 for f in fractions):
        raise DataError(f"fractions must lie in (0, 1], got {list(fractions)}")
    sizes = sorted({max(1, round(f * total)) for f in fractions})
    if len(sizes) < 2:
        raise DataError(
            f"range convergence needs two different sample sizes; {total} queries at fractions "
            f"{list(fractions)} give {sizes}",
            hint="use more calibration queries or fractions further apart",
        )
    return sizes


def range_convergence(
    calibrate_fn: Callable[[Sequence[Any]], bytes],
    items: Sequence[Any],
    fractions: Sequence[float] = (0.25, 0.5, 1.0),
    threshold: float = CONVERGED,
) -> Convergence:
    """Calibrate on prefixes of `items` (fractions of it) and report the range changes step by step.

    `calibrate_fn(items)` returns a calibrated model (converters.keras_tflite.calibrate_keras or
    calibrate_saved_model with the model bound). The answer is the report's `calibration_convergence`.
    """

    sizes = _sizes(len(items), fractions)
    steps: list[ConvergenceStep] = []
    previous: dict[str, Range] | None = None
    skipped = {"huge": 0, "degenerate": 0}
    for n in sizes:
        ranges = activation_ranges(calibrate_fn(items[:n]))
        step = ConvergenceStep(queries=n, tensors=len(ranges))
        if previous is not None:
            changes, skipped = range_changes(previous, ranges)
            values = np.array(list(changes.values()) or [0.0])
            worst = max(changes, key=changes.__getitem__) if values.max() > 0 else None
            step = ConvergenceStep(
                queries=n,
                tensors=len(ranges),
                compared=len(changes),
                median_change=round(float(np.median(values)), 6),
                max_change=round(float(values.max()), 6),
                max_tensor=worst,
                over_limit=int((values > MAX_FACTOR * threshold).sum()) if changes else 0,
            )
        steps.append(step)
        previous = ranges
    ignored = IgnoredTensors(
        huge=skipped["huge"],
        degenerate=skipped["degenerate"],
        note="tensors holding a mask constant (|x| > 1e6: huge) or with a zero-width range are not compared",
    )
    last = steps[-1]
    assert last.median_change is not None and last.over_limit is not None and last.compared is not None
    converged = last.median_change < threshold and last.over_limit <= OUTLIER_SHARE * last.compared
    return Convergence(
        steps=steps,
        threshold=threshold,
        converged=converged,
        ignored=ignored,
        summary=_sentence(steps, converged, ignored, MAX_FACTOR * threshold),
    )


def _sentence(steps: list[ConvergenceStep], converged: bool, ignored: IgnoredTensors, limit: float) -> str:
    a, b = steps[-2], steps[-1]
    verdict = "converged" if converged else "not converged"
    text = (
        f"Activation ranges {verdict}: from {a.queries} to {b.queries} calibration queries the median "
        f"tensor range moved {b.median_change:.1%} (largest {b.max_change:.1%}"
        + (f", {b.max_tensor}" if b.max_tensor else "")
        + ")"
    )
    if b.over_limit:
        text += f"; {b.over_limit} of {b.compared} tensors moved more than {limit:.0%}"
    if ignored.huge or ignored.degenerate:
        text += (
            f"; {ignored.huge} tensor(s) holding mask constants (|x| > 1e6) and {ignored.degenerate} "
            "with a zero-width range were not compared"
        )
    if not converged:
        text += "; more calibration queries would still move the int8 scales"
    return text + "."


def refined_ranges(
    calibrated: bytes,
    feeds: Mapping[str, np.ndarray],
    percentiles: tuple[float, float] | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, Range], dict[str, Any]]:
    """Ranges to write into `calibrated` (converters.ranges.with_activation_ranges) and a report of them.

    Mask-constant tensors get mask-safe ranges from their real values on `feeds` (the calibration rows,
    fed by input name); with `percentiles` (e.g. (0.001, 99.999)) every other activation gets its
    percentile range over the same rows.
    """

    minmax = activation_ranges(calibrated)
    huge = [name for name, r in minmax.items() if is_huge(r)]
    ranges: dict[str, Range] = {}
    if huge:
        real = percentile_ranges(calibrated, feeds, huge, 0.0, 100.0, limit=HUGE, progress=progress)
        real = {name: real.get(name, minmax[name]) for name in huge}  # only the constant: left as it is
        ranges.update(mask_safe_ranges(calibrated, real))
    if percentiles is not None:
        others = [name for name in minmax if name not in ranges]
        lower, upper = percentiles
        ranges.update(percentile_ranges(calibrated, feeds, others, lower, upper, progress=progress))
    report = {
        "mask_tensors": len(huge),
        "percentiles": None if percentiles is None else list(percentiles),
        "ranges_replaced": len(ranges),
        "activations": len(minmax),
    }
    return ranges, report
