"""What a search writes into build/<name>.search/: trials.csv/json, pareto.md/png, best.recipe.yaml."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from toolchain.base.atomic import write_text
from toolchain.search.space import NONE
from toolchain.search.study import Limits, TrialRecord

COLUMNS = (
    "number", "state", "feasible", "preset", "quant_mode", "vocab_min_count", "prune", "prune_sparsity",
    "lowrank", "lowrank_reduction", "qat", "student", "student_width", "size_bytes", "gzip_bytes",
    "val_accuracy", "accuracy_drop_points", "val_agreement", "cost_us", "latency_ms", "latency_runtime",
    "device_validation", "model_sha256", "error",
)  # fmt: skip


def validation_text(r: TrialRecord) -> str | None:
    """passed / failed on the device (front members), None when not validated."""
    if r.validation is None:
        return None
    return "passed" if r.validation.passed else "failed: " + "; ".join(r.validation.failures)


def row(r: TrialRecord) -> dict[str, Any]:
    base = {"number": r.number, "state": r.state, "feasible": r.feasible, "error": r.error,
            "preset": r.preset, "device_validation": validation_text(r)}  # fmt: skip
    measured = r.metrics.to_json() if r.metrics is not None else {}
    return {k: base.get(k, r.params.get(k, measured.get(k))) for k in COLUMNS}


def write_tables(out: Path, records: list[TrialRecord], front: list[TrialRecord]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(row(r) for r in records)
    write_text(out / "trials.csv", buf.getvalue())
    on_front = {r.number for r in front}
    trials = [
        {
            **row(r),
            "params": r.params,
            "pareto": r.number in on_front,
            "validation": None if r.validation is None else r.validation.to_json(),
        }
        for r in records
    ]
    write_text(out / "trials.json", json.dumps({"trials": trials}, indent=1) + "\n")
    lines = [
        "| trial | params | raw KB | gzip KB | val acc | drop (pt) | agreement | cost µs | latency ms"
        " | device |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in front:
        m = r.metrics
        assert m is not None  # the front holds complete trials
        lines.append(
            f"| {r.number} | {params_text(r.params)} | {m.size_bytes / 1024:.1f}"
            f" | {m.gzip_bytes / 1024:.1f} | {m.val_accuracy:.4f} | {m.accuracy_drop_points:.2f}"
            f" | {m.val_agreement:.4f} | {m.cost_us:.2f}"
            f" | {m.latency_ms:.3f} | {validation_text(r) or 'not validated'} |"
        )
    write_text(out / "pareto.md", "\n".join(lines) + "\n")


def params_text(params: dict[str, Any]) -> str:
    parts = [params["quant_mode"]]
    if int(params.get("vocab_min_count", 1)) > 1:
        parts.append(f"vocab >= {params['vocab_min_count']}")
    if params.get("student_width"):
        parts.append(f"student {params['student_width']}")
    if params.get("student", NONE) != NONE:
        parts.append(f"student of {params['student']}")
    if params.get("lowrank"):
        parts.append(f"lowrank -{params['lowrank_reduction']:.0%}")
    if params.get("prune") == "magnitude":
        parts.append(f"prune {params['prune_sparsity']:.2f}")
    elif params.get("prune") == "2:4":
        parts.append("2:4")
    if params.get("qat"):
        parts.append("qat")
    return " + ".join(parts)


def write_plot(
    out: Path, records: list[TrialRecord], front: list[TrialRecord], limits: Limits
) -> Path | None:
    """Size vs accuracy and latency vs accuracy, front highlighted, constraint region shaded; None without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    done = [r for r in records if r.state == "complete"]

    def value(r: TrialRecord, name: str) -> float:
        assert r.metrics is not None  # complete trials
        return r.metrics.objective(name)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    panels = (("size_bytes", 1 / 1024, "model.tflite size (KB)", limits.max_size_kb),
              ("latency_ms", 1.0, "host latency (ms)", limits.max_latency_ms))  # fmt: skip
    ys_all = [value(r, "accuracy_drop_points") for r in done] or [0.0]
    y_lo, y_hi = min(*ys_all, 0.0), max(*ys_all, limits.max_accuracy_drop or 0.0)
    y_pad = (y_hi - y_lo) * 0.08 or 0.5
    for ax, (key, scale, label, limit) in zip(axes, panels, strict=True):
        xs_all = [value(r, key) * scale for r in done] or [1.0]
        x_view = max(xs_all) * 1.15 if limit is None else min(max(xs_all) * 1.15, limit * 1.15)
        x_view = max(x_view, max(xs_all) * 1.05)  # every trial stays in view
        ax.set_xlim(0, x_view)
        ax.set_ylim(y_lo - y_pad, y_hi + y_pad)
        # the region that meets the limits (clipped to the view; unbounded sides run to its edge)
        x_edge = min(limit, x_view) if limit is not None else x_view
        y_edge = limits.max_accuracy_drop if limits.max_accuracy_drop is not None else y_hi + y_pad
        ax.fill_between([0, x_edge], y_lo - y_pad, y_edge, color="tab:green", alpha=0.1, label="meets limits")
        if limit is not None and limit <= x_view:
            ax.axvline(limit, color="tab:green", lw=1, ls="--")
        if limits.max_accuracy_drop is not None:
            ax.axhline(limits.max_accuracy_drop, color="tab:green", lw=1, ls="--")
        for group, style in ((done, {"c": "0.6", "s": 18}), (front, {"c": "tab:red", "s": 36})):
            xs = [value(r, key) * scale for r in group]
            ys = [value(r, "accuracy_drop_points") for r in group]
            ax.scatter(xs, ys, label="Pareto front" if group is front else "trials", zorder=3, **style)
        for r in front:
            ax.annotate(str(r.number), (value(r, key) * scale, value(r, "accuracy_drop_points")), fontsize=7)
        ax.set_xlabel(label)
        ax.set_ylabel("val accuracy drop vs source (points)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "pareto.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
