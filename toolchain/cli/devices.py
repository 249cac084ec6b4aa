"""`edgecomp devices list|show|setup`: device profiles and their isolated runtimes."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Device profiles and their emulated runtimes.")

PROFILES_DIR = typer.Option(
    None, "--profiles-dir", help="Extra directory of profile YAMLs (also: $EDGECOMP_PROFILES)."
)


def _dirs(profiles_dir: list[Path] | None) -> list[Path]:
    return list(profiles_dir or [])


def _fmt(v: float | None, unit: str) -> str:
    return f"{v:g} {unit}" if v is not None else "-"


@app.command("list")
def list_devices(
    profiles_dir: list[Path] | None = PROFILES_DIR,
    as_json: bool = typer.Option(False, "--json", help="Print the profiles as JSON."),
) -> None:
    """List the device profiles (shipped and your own)."""
    from rich.table import Table

    # loaded when the command runs, so `edgecomp --help` stays instant
    from devices.profiles.schema import load_profiles
    from devices.runtimes import is_provisioned
    from toolchain.cli import render

    profiles = load_profiles(_dirs(profiles_dir))
    if as_json:
        render.print_json([p.model_dump(mode="json") for p in profiles.values()])
        return
    t = Table(title="device profiles (edgecomp devices show NAME for details)")
    for col in ("name", "arch", "cpu", "runtime", "threads", "xnnpack", "ops", "size/mem budget", "ready"):
        t.add_column(col)
    for p in profiles.values():
        ops = "int8-only" if p.ops.int8_only else ("whitelist" if p.ops.allowed else "any")
        b = p.budgets
        budget = f"{_fmt(b.model_size_kb, 'KB')} / {_fmt(b.peak_memory_mb, 'MB')}"
        ready = "yes" if is_provisioned(p) else "no"
        t.add_row(
            p.name,
            p.arch,
            p.cpu,
            p.runtime_label,
            str(p.threads),
            "on" if p.xnnpack else "off",
            ops,
            budget,
            ready,
        )
    render.stdout.print(t)


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Profile name."),
    profiles_dir: list[Path] | None = PROFILES_DIR,
    as_json: bool = typer.Option(False, "--json", help="Print the profile as JSON."),
) -> None:
    """Show one profile, and whether its runtime is provisioned."""
    import yaml

    # loaded when the command runs, so `edgecomp --help` stays instant
    from devices.profiles.schema import get_profile
    from toolchain.cli import render

    prof = get_profile(name, _dirs(profiles_dir))
    data = prof.model_dump(mode="json")
    if as_json:
        render.print_json(data)
        return
    render.stdout.print(yaml.safe_dump(data, sort_keys=False).rstrip(), highlight=False)


@app.command("setup")
def setup(
    names: list[str] = typer.Argument(..., help="Profile names, or 'all'."),
    profiles_dir: list[Path] | None = PROFILES_DIR,
    force: bool = typer.Option(False, "--force", help="Delete the cached runtime first and rebuild it."),
    as_json: bool = typer.Option(False, "--json", help="Print the provisioned runtimes as JSON."),
) -> None:
    """Provision the runtimes of the named devices (once; re-running is safe and quick)."""
    import time

    from rich.table import Table

    # loaded when the command runs, so `edgecomp --help` stays instant
    from devices.profiles.schema import select_profiles
    from devices.runtimes import disk_usage, provision, remove
    from toolchain.cli import render

    rows = []
    for prof in select_profiles(names, _dirs(profiles_dir)):
        if force:
            remove(prof)
        t0 = time.perf_counter()
        env = provision(prof, render.RichProgress(), check=True)
        rows.append(
            {
                **env.describe(),
                "seconds": round(time.perf_counter() - t0, 1),
                "disk_mb": round(disk_usage(env.root) / 1e6, 1),
            }
        )
    if as_json:
        render.print_json(rows)
        return
    t = Table(title="provisioned runtimes")
    for col in ("profile", "arch", "cpu", "runtime", "seconds", "disk MB", "path"):
        t.add_column(col)
    for r in rows:
        t.add_row(
            r["profile"],
            r["arch"],
            r["cpu"],
            r["runtime"],
            f"{r['seconds']:.1f}",
            f"{r['disk_mb']:.0f}",
            r["root"],
        )
    render.stdout.print(t)
