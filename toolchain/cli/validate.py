"""`edgecomp validate BUILD --device NAME|all`: run the model as each device would; exit 1 if a gate fails."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from toolchain.base.errors import GateFailed
from toolchain.base.types import CheckStatus
from toolchain.cli.options import DEVICE_HELP, PROFILES_DIR_HELP, complete_device

if TYPE_CHECKING:  # devices.validate pulls numpy and pydantic models: `edgecomp --help` stays instant
    from devices.validate import DeviceReport, ValidationReport


def validate(
    build: Path = typer.Argument(..., help="Build directory (build/<name>) or a .tflite file."),
    device: list[str] = typer.Option(
        ..., "--device", "-d", help=f"{DEVICE_HELP} Repeatable, or 'all'.", autocompletion=complete_device
    ),
    profiles_dir: list[Path] | None = typer.Option(None, "--profiles-dir", help=PROFILES_DIR_HELP),
    max_accuracy_diff: float = typer.Option(
        0.5, "--max-accuracy-diff", min=0.0, help="Gate: |device - host| accuracy, in points."
    ),
    min_agreement: float = typer.Option(
        0.98, "--min-agreement", min=0.0, max=1.0, help="Gate: top-1 agreement with host (classifiers)."
    ),
    min_cosine: float = typer.Option(
        0.999, "--min-cosine", min=-1.0, max=1.0, help="Gate: mean cosine with host (embedding models)."
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Use only the first N eval queries."),
    as_json: bool = typer.Option(False, "--json", help="Print the validation report as JSON."),
    runner_script: Path | None = typer.Option(None, "--runner-script", hidden=True),
) -> None:
    """Validate a build on emulated devices: op versions, op policy, parity with the host, budgets."""
    # loaded when the command runs, so `edgecomp --help` stays instant
    from devices.profiles.schema import select_profiles
    from devices.validate import Gates
    from toolchain.cli import render
    from toolchain.device_stages import validate_target

    profiles = select_profiles(device, list(profiles_dir or []))
    report = validate_target(
        build,
        profiles,
        Gates(max_accuracy_diff=max_accuracy_diff, min_agreement=min_agreement, min_cosine=min_cosine),
        render.RichProgress(),
        runner_script=runner_script,
        limit=limit,
    )
    if as_json:
        render.print_json(report.to_json())
    else:
        render.stdout.print(summary_table(report))
        for dev in report.devices.values():
            render.stdout.print(device_table(dev))
    failed = [d for d in report.devices.values() if not d.passed]
    if failed:
        first = failed[0]
        raise GateFailed(
            f"{len(failed)} of {len(report.devices)} devices failed; {first.device}: {first.failures[0]}",
            hint="see the table (or --json) for every failed check",
        )


def _pct(v: float | None) -> str:
    return f"{v:.2%}" if v is not None else "-"


def summary_table(report: ValidationReport) -> Table:
    ref = report.reference
    t = Table(
        title=f"validation of {report.target}: {ref.queries} queries, host reference {ref.runtime} "
        f"accuracy {_pct(ref.host_accuracy)}"
    )
    for col in (
        "device",
        "result",
        "runtime",
        "accuracy",
        "Δ vs host",
        "top-1 agr.",
        "bit-exact",
        "max diff",
    ):
        t.add_column(col)
    t.add_column("peak MB", justify="right")
    for d in report.devices.values():
        m = d.metrics
        diff = m.accuracy_diff_points
        agreement = _pct(m.top1_agreement) if m.mean_cosine is None else f"cos {m.mean_cosine:.6f}"
        t.add_row(
            d.device,
            "[green]pass[/green]" if d.passed else "[red]FAIL[/red]",
            f"{d.runtime} {d.arch}",
            _pct(m.accuracy),
            f"{diff:+.2f} pt" if diff is not None else "-",
            agreement,
            _pct(m.bit_exact_fraction),
            f"{m.max_abs_diff:g}" if m.max_abs_diff is not None else "-",
            f"{m.peak_memory_mb:.1f}" if m.peak_memory_mb is not None else "-",
        )
    return t


_STYLE = {
    CheckStatus.PASS: "green",
    CheckStatus.FAIL: "red",
    CheckStatus.SKIP: "dim",
    CheckStatus.INFO: "cyan",
}


def device_table(dev: DeviceReport) -> Table:
    emu = "emulated, QEMU" if dev.emulated else "native"
    t = Table(title=f"{dev.device}: {dev.arch} {dev.cpu}, {dev.runtime} ({emu}, {dev.seconds:.1f} s)")
    t.add_column("check")
    t.add_column("status")
    t.add_column("detail")
    for c in dev.checks:
        style = _STYLE[c.status]
        t.add_row(c.name, f"[{style}]{c.status}[/{style}]", c.detail)
    return t
