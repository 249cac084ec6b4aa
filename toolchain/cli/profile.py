"""`edgecomp profile BUILD`: per-op latency (which op costs time) and quantization error (which hurts)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from devices.cpuinfo import HostCpu
from toolchain.base.atomic import check_output_file
from toolchain.base.errors import EdgecompError
from toolchain.base.types import OverlayMetric, ProfileMethod, ProfileMode
from toolchain.cli.options import DEVICE_HELP, PROFILES_DIR_HELP, complete_device

if TYPE_CHECKING:  # the profiler and the report model load when a command runs: --help stays instant
    from devices.profiling.export import MergedRow
    from devices.profiling.profiler import ProfileResult
    from devices.profiling.stats import MethodResult
    from toolchain.report.stages import SweepRow


def profile(
    source: Path = typer.Argument(..., help="Build dir (build/<name>) or a .tflite file."),
    device: str | None = typer.Option(
        None,
        "--device",
        "-d",
        help=f"{DEVICE_HELP} One device; default: x86-host's runtime (litert 2.3.0).",
        autocompletion=complete_device,
    ),
    profiles_dir: list[Path] | None = typer.Option(None, "--profiles-dir", help=PROFILES_DIR_HELP),
    method: ProfileMethod = typer.Option(
        ProfileMethod.AUTO, "--method", help="litert (C-API profiler), slice (single-op models), both, auto."
    ),
    mode: ProfileMode = typer.Option(
        ProfileMode.DEPLOYED, "--mode", help="deployed (XNNPACK, as shipped) or per-node (builtin kernels)."
    ),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="Threads (default: the device's, else 1)."
    ),
    runs: int = typer.Option(300, "--runs", min=1, help="Measured runs per process."),
    warmup: int = typer.Option(30, "--warmup", min=0, help="Warm-up runs per process (not measured)."),
    processes: int = typer.Option(
        3, "--processes", min=1, max=64, help="Repeat in this many separate processes."
    ),
    seq_lens: str | None = typer.Option(None, "--seq-lens", help="Latency sweep, e.g. 8,16,32,64."),
    float_reference: Path | None = typer.Option(
        None, "--float-reference", help="Float .tflite/.keras for per-op quantization error."
    ),
    no_quant_error: bool = typer.Option(False, "--no-quant-error", help="Skip the quantization error."),
    trust_model_code: bool = typer.Option(
        False,
        "--trust-model-code",
        help="Load a .h5/SavedModel --float-reference although a Lambda layer in it would run its code.",
    ),
    top: int = typer.Option(15, "--top", min=1, help="Ops shown in the table."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole profile as JSON."),
    csv_path: Path | None = typer.Option(None, "--csv", help="Write one row per op to this CSV."),
    png_path: Path | None = typer.Option(None, "--png", help="Write a bar chart of per-op time."),
    explorer_path: Path | None = typer.Option(
        None, "--model-explorer", help="Write Model Explorer node data JSON (see --overlay)."
    ),
    overlay: OverlayMetric = typer.Option(
        OverlayMetric.TIME,
        "--overlay",
        help="What --model-explorer colours each op by: time (latency) or snr (quantization error, dB).",
    ),
) -> None:
    """Show where an on-device query spends its time, op by op (like benchmark_model op profiling)."""
    # loaded when the command runs, so `edgecomp --help` stays instant
    from devices.profiles.schema import get_profile
    from devices.profiling.profiler import ProfileOptions
    from toolchain.cli import render
    from toolchain.device_stages import profile_target

    try:
        lens = tuple(int(x) for x in seq_lens.split(",")) if seq_lens else ()
        if any(n < 1 or n > 1 << 16 for n in lens):
            raise ValueError(seq_lens)
    except ValueError:
        raise EdgecompError(
            f"bad --seq-lens {seq_lens!r}", hint="comma-separated token counts from 1 to 65536, e.g. 8,16,32"
        ) from None
    options = ProfileOptions(
        str(method.value),
        str(mode.value),
        runs,
        warmup,
        processes,
        seq_lens=lens,
        float_reference=float_reference,
        quant_error=not no_quant_error,
        trust_model_code=trust_model_code,
    )
    if overlay == OverlayMetric.SNR and no_quant_error:
        raise EdgecompError("--overlay snr needs the quantization error", hint="drop --no-quant-error")
    for option, out in (("--csv", csv_path), ("--png", png_path), ("--model-explorer", explorer_path)):
        if out is not None:
            check_output_file(out, option)  # before minutes of profiling, not after
    target = get_profile(device, profiles_dir or []) if device is not None else None
    result = profile_target(source, options, target, threads, render.RichProgress())
    from devices.profiling import export as profile_export  # loaded when the command runs (--help)

    if csv_path:
        profile_export.write_csv(result, csv_path)
    if png_path:
        profile_export.write_png(result, png_path)
    if explorer_path:
        profile_export.write_model_explorer(result, explorer_path, overlay)
    if as_json:
        render.print_json(result.to_dict())
        return
    render.note(result.notes)
    render.stdout.print(host_line(result))
    for table in tables(result, top):
        render.stdout.print(table)
    for m in result.methods:
        render.stdout.print(coverage_line(m))


def host_line(result: ProfileResult) -> str:
    """The CPU the times come from: a latency is a property of its ISA as much as of the model."""
    cpu = HostCpu.model_validate(result.target["host_cpu"])
    emulated = " under QEMU (emulated: not a device latency)" if result.target.get("emulated") else ""
    return f"host CPU: {cpu.summary}{emulated}"


def _us(v: float | None, res: float) -> str:
    return f"< {res:.2f} µs (below resolution)" if v is None else f"{v:.2f} µs"


def coverage_line(m: MethodResult) -> str:
    """Sum of per-op times vs the whole invoke, or why the two cannot be compared."""
    spread = ", ".join("below res." if v is None else f"{v:.2f}" for v in m.invoke_spread)
    ratio = f"ratio {m.ratio:.2f}" if m.ratio is not None else "no ratio: ops below resolution"
    return (
        f"{m.method} ({m.mode}): sum of per-op times {m.sum_us:.2f} µs vs whole invoke "
        f"{_us(m.invoke_us, m.invoke_resolution_us)} (median; {ratio}; per-op resolution "
        f"{m.resolution_us:.2f} µs; per-process invoke {spread})"
    )


def _op_table(m: MethodResult, rows: list[MergedRow], top: int) -> Table:
    t = Table(
        title=f"{m.method} · {m.mode} · {m.threads} thread(s) · {m.processes}x{m.runs_per_process} runs"
    )
    for col, just in [
        ("#", "right"),
        ("op", "left"),
        ("output", "left"),
        ("median µs", "right"),
        ("p90 µs", "right"),
        ("share", "right"),
        ("MACs", "right"),
        ("params", "right"),
        ("SNR dB", "right"),
        ("", "left"),
    ]:
        t.add_column(col, justify=just)
    for r in rows[:top]:
        t.add_row(
            str(r.index),
            r.name[:40],
            f"{r.output_dtype or ''} {r.output_shape or ''}",
            f"{r.median_us:.2f}",
            f"{r.p90_us:.2f}",
            f"{r.share:.1%}",
            _si(r.macs),
            _si(r.param_bytes, "B"),
            "" if r.snr_db is None else f"{r.snr_db:.1f}",
            "below resolution" if r.below_resolution else "",
        )
    return t


def _type_table(m: MethodResult, rows: list[MergedRow]) -> Table:
    by_type: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        by_type[r.name if r.kind == "node" else r.name.split(" (")[0]].append(r.time_us)
    bt = Table(title=f"{m.method}: by op type")
    for col in ("op type", "count", "time µs", "share"):
        bt.add_column(col, justify="left" if col == "op type" else "right")
    for name, vals in sorted(by_type.items(), key=lambda kv: -sum(kv[1])):
        bt.add_row(name, str(len(vals)), f"{sum(vals):.2f}", f"{sum(vals) / max(m.sum_us, 1e-9):.1%}")
    return bt


def _sweep_table(sweep: list[SweepRow]) -> Table:
    st = Table(title="latency by sequence length (whole invoke incl. the invoke() call)")
    for col in ("tokens", "median µs", "p90 µs"):
        st.add_column(col, justify="right")
    for s in sweep:
        cells = ["n/a", s.error[:60]] if s.error is not None else [f"{s.median_us:.2f}", f"{s.p90_us:.2f}"]
        st.add_row(str(s.length), *cells)
    return st


def tables(result: ProfileResult, top: int) -> list[Table]:
    out = []
    from devices.profiling.export import merged_rows  # loaded when the command runs (--help)
    from toolchain.report.stages import SweepRow  # loaded when the command runs (--help)

    merged = merged_rows(result)
    for m in result.methods:
        rows = sorted((r for r in merged if r.method == m.method), key=lambda r: -r.time_us)
        out += [_op_table(m, rows, top), _type_table(m, rows)]
    if result.sweep:
        out.append(_sweep_table([SweepRow.model_validate(s) for s in result.sweep]))
    return out


def _si(n: int | None, unit: str = "") -> str:
    if n is None:
        return ""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.1f}{suffix}{unit}"
    return f"{n}{unit}"
