"""Profile outputs besides the terminal table: CSV, a PNG bar chart, Model Explorer node data."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from converters.tflite_model import read_tflite
from devices.opcost import OpCost
from devices.profiling.profiler import ProfileResult
from devices.profiling.quant_error import OpQuantError
from devices.profiling.stats import MethodResult, OpRow
from toolchain.base.atomic import write_bytes, write_text
from toolchain.base.errors import EdgecompError
from toolchain.base.types import OverlayMetric


@dataclass(frozen=True)
class MergedRow:
    """One op of one method, with the op's cost and quantization error when it is a TFLite node (an
    XNNPACK operator has neither); the CSV's columns, in order."""

    method: str
    mode: str
    index: int
    name: str
    kind: str  # node | xnnpack
    median_us: float
    p90_us: float
    mean_us: float
    time_us: float
    share: float
    below_resolution: bool
    macs: int | None = None
    flops: int | None = None
    param_bytes: int | None = None
    output_shape: str = ""  # e.g. 1x32x64
    output_dtype: str | None = None
    snr_db: float | None = None
    cosine: float | None = None


CSV_FIELDS = tuple(f.name for f in fields(MergedRow))


def _row(method: MethodResult, op: OpRow, cost: OpCost | None, error: OpQuantError | None) -> MergedRow:
    return MergedRow(
        method.method,
        method.mode,
        op.index,
        op.name,
        op.kind,
        op.median_us,
        op.p90_us,
        op.mean_us,
        op.time_us,
        op.share,
        op.below_resolution,
        macs=cost.macs if cost else None,
        flops=cost.flops if cost else None,
        param_bytes=cost.param_bytes if cost else None,
        output_shape="x".join(str(d) for d in cost.output_shape) if cost else "",
        output_dtype=cost.output_dtype if cost else None,
        snr_db=error.snr_db if error else None,
        cosine=error.cosine if error else None,
    )


def merged_rows(result: ProfileResult) -> list[MergedRow]:
    """One row per op per method, with the op's cost and quantization error when it is a TFLite node."""
    costs = {c.index: c for c in result.costs}
    errors = {e.index: e for e in result.quant_error}
    rows = []
    for m in result.methods:
        for o in m.ops:
            node = o.kind == "node"
            rows.append(
                _row(m, o, costs.get(o.index) if node else None, errors.get(o.index) if node else None)
            )
    return rows


def write_csv(result: ProfileResult, path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    w.writeheader()
    for row in merged_rows(result):
        w.writerow(asdict(row))
    write_text(path, buf.getvalue())


def write_png(result: ProfileResult, path: Path, top: int = 25) -> None:
    """Horizontal bars of per-op time for each method (needs matplotlib); a TFLite node's label carries
    its quantization error (SNR dB) when it was measured, so time and error read side by side."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EdgecompError("--png needs matplotlib", hint="pip install matplotlib") from None
    snr = {e.index: e.snr_db for e in result.quant_error if e.snr_db is not None}
    n = len(result.methods)
    fig, axes = plt.subplots(
        1, n, figsize=(7 * n, 0.3 * min(top, max(len(m.ops) for m in result.methods)) + 1.5), squeeze=False
    )
    for ax, m in zip(axes[0], result.methods, strict=True):
        ops = sorted(m.ops, key=lambda o: o.time_us, reverse=True)[:top][::-1]
        labels = [f"#{o.index} {o.name[:32]}{_snr_note(o, snr)}" for o in ops]
        ax.barh(
            labels,
            [o.time_us for o in ops],
            color=["#bbbbbb" if o.below_resolution else "#3b6ea8" for o in ops],
        )
        db_note = "; dB: the op's int8 output SNR vs float" if snr and _snr_note(ops[-1], snr) else ""
        ax.set_xlabel(f"time per query (µs, median; grey: below timer resolution, mean){db_note}")
        invoke = "below resolution" if m.invoke_us is None else f"{m.invoke_us:.1f} µs"
        ax.set_title(f"{m.method} ({m.mode}): sum {m.sum_us:.1f} µs, invoke {invoke}", fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_bytes(path, buf.getvalue())


def _snr_note(op: OpRow, snr: dict[int, float]) -> str:
    return f" · {snr[op.index]:.1f} dB" if op.kind == "node" and op.index in snr else ""


def model_explorer_node_data(result: ProfileResult, metric: OverlayMetric = OverlayMetric.TIME) -> dict:
    """GraphNodeData JSON for Model Explorer's overlay, keyed by each node's output tensor name.

    Load it in Model Explorer next to the .tflite ("Add per-node data"); no server is needed to write it.
    Uses the first node-indexed method (per-node or slicing); with `OverlayMetric.SNR` each node is its
    int8 output's SNR vs the float model (low = red): the quantization error overlay. No measured error
    is an EdgecompError (a float model, or profile without a float reference or with --no-quant-error).
    """

    info = read_tflite(Path(result.model))
    values: dict[int, float] = {}
    if metric == OverlayMetric.SNR:
        values = {e.index: e.snr_db for e in result.quant_error if e.snr_db is not None}
        if not values:
            raise EdgecompError(
                "no per-op quantization error to overlay: the model is float, or no float reference "
                "was found (or --no-quant-error was given)",
                hint="profile an int8 build dir, or pass --float-reference model_float.tflite",
            )
    else:
        method = next((m for m in result.methods if all(o.kind == "node" for o in m.ops)), None)
        if method is not None:
            values = {o.index: o.time_us for o in method.ops}
    results = {}
    for op in info.ops:
        if op.index in values and op.outputs:
            results[info.tensors[op.outputs[0]].name] = {"value": round(float(values[op.index]), 4)}
    low, high = ("#f5f5f5", "#c0392b") if metric != OverlayMetric.SNR else ("#c0392b", "#f5f5f5")
    return {"results": results, "gradient": [{"stop": 0, "bgColor": low}, {"stop": 1, "bgColor": high}]}


def write_model_explorer(
    result: ProfileResult, path: Path, metric: OverlayMetric = OverlayMetric.TIME
) -> None:
    write_text(path, json.dumps(model_explorer_node_data(result, metric), indent=1) + "\n")
