"""Profile outputs besides the terminal table: CSV, a PNG bar chart, Model Explorer node data."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from devices.profiling.profiler import ProfileResult
from toolchain.base.atomic import write_bytes, write_text

CSV_FIELDS = (
    "method",
    "mode",
    "index",
    "name",
    "kind",
    "median_us",
    "p90_us",
    "mean_us",
    "time_us",
    "share",
    "below_resolution",
    "macs",
    "flops",
    "param_bytes",
    "output_shape",
    "output_dtype",
    "snr_db",
    "cosine",
)


def merged_rows(result: ProfileResult) -> list[dict]:
    """One row per op per method, with the op's cost and quantization error when it is a TFLite node."""
    costs = {c["index"]: c for c in result.costs}
    errors = {e["index"]: e for e in result.quant_error}
    rows = []
    for m in result.methods:
        for o in m.ops:
            row = {"method": m.method, "mode": m.mode, **o.to_dict()}
            if o.kind == "node":
                c, e = costs.get(o.index, {}), errors.get(o.index, {})
                row.update({k: c.get(k) for k in ("macs", "flops", "param_bytes", "output_dtype")})
                row["output_shape"] = "x".join(str(d) for d in c.get("output_shape", ()))
                row.update(snr_db=e.get("snr_db"), cosine=e.get("cosine"))
            rows.append(row)
    return rows


def write_csv(result: ProfileResult, path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    w.writeheader()
    for row in merged_rows(result):
        w.writerow(row)
    write_text(path, buf.getvalue())


def write_png(result: ProfileResult, path: Path, top: int = 25) -> None:
    """Horizontal bars of per-op time for each method (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from toolchain.base.errors import EdgecompError

        raise EdgecompError("--png needs matplotlib", hint="pip install matplotlib") from None
    n = len(result.methods)
    fig, axes = plt.subplots(
        1, n, figsize=(7 * n, 0.3 * min(top, max(len(m.ops) for m in result.methods)) + 1.5), squeeze=False
    )
    for ax, m in zip(axes[0], result.methods, strict=True):
        ops = sorted(m.ops, key=lambda o: o.time_us, reverse=True)[:top][::-1]
        labels = [f"#{o.index} {o.name[:32]}" for o in ops]
        ax.barh(
            labels,
            [o.time_us for o in ops],
            color=["#bbbbbb" if o.below_resolution else "#3b6ea8" for o in ops],
        )
        ax.set_xlabel("time per query (µs, median; grey: below timer resolution, mean)")
        invoke = "below resolution" if m.invoke_us is None else f"{m.invoke_us:.1f} µs"
        ax.set_title(f"{m.method} ({m.mode}): sum {m.sum_us:.1f} µs, invoke {invoke}", fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_bytes(path, buf.getvalue())


def model_explorer_node_data(result: ProfileResult, metric: str = "time_us") -> dict:
    """GraphNodeData JSON for Model Explorer's overlay, keyed by each node's output tensor name.

    Load it in Model Explorer next to the .tflite ("Add per-node data"); no server is needed to write it.
    Uses the first node-indexed method (per-node or slicing); `metric` may also be 'snr_db'.
    """
    from converters.tflite_model import read_tflite

    info = read_tflite(Path(result.model))
    values: dict[int, float] = {}
    if metric == "snr_db":
        values = {e["index"]: e["snr_db"] for e in result.quant_error if e["snr_db"] is not None}
    else:
        method = next((m for m in result.methods if all(o.kind == "node" for o in m.ops)), None)
        if method is not None:
            values = {o.index: o.time_us for o in method.ops}
    results = {}
    for op in info.ops:
        if op.index in values and op.outputs:
            results[info.tensors[op.outputs[0]].name] = {"value": round(float(values[op.index]), 4)}
    low, high = ("#f5f5f5", "#c0392b") if metric != "snr_db" else ("#c0392b", "#f5f5f5")
    return {"results": results, "gradient": [{"stop": 0, "bgColor": low}, {"stop": 1, "bgColor": high}]}


def write_model_explorer(result: ProfileResult, path: Path, metric: str = "time_us") -> None:
    write_text(path, json.dumps(model_explorer_node_data(result, metric), indent=1) + "\n")
