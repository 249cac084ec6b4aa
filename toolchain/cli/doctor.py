"""`edgecomp doctor`: check this machine (toolchain/doctor.py) and say what to install; exit 1 if the core
cannot work here."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from toolchain.cli import render

_STYLE = {"ok": "green", "warn": "yellow", "fail": "red"}


def doctor(as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON.")) -> None:
    """Check Python, packages, apt tools, disk, caches and which device profiles can run here."""
    from toolchain.doctor import diagnose  # loaded when the command runs: it reads every profile

    report = diagnose()
    if as_json:
        render.print_json(report.to_json())
    else:
        t = Table(title="edgecomp doctor")
        for col in ("area", "check", "status", "found", "to fix"):
            t.add_column(col)
        for c in report.checks:
            style = _STYLE[c.status]
            cells = (escape(c.name), f"[{style}]{c.status}[/{style}]", escape(c.found), escape(c.fix or ""))
            t.add_row(c.area, *cells)
        render.stdout.print(t)
    if not report.core_ok:
        first = next(c for c in report.checks if c.status == "fail")
        render.stderr.print(
            f"error: {first.name}: {first.found} (hint: {first.fix})", highlight=False, markup=False
        )
        raise typer.Exit(1)
