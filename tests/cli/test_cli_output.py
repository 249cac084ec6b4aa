"""Output that a person pipes: `edgecomp devices list | cat` shows every device name whole, at any COLUMNS."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from toolchain.cli import render
from toolchain.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
PROFILE_NAMES = sorted(
    yaml.safe_load(p.read_text())["name"] for p in (ROOT / "devices" / "profiles").glob("*.yaml")
)


@pytest.mark.parametrize("columns", [None, "80", "40"])
def test_devices_list_piped_shows_every_profile_name_in_full(columns, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE")}
    env["EDGECOMP_CACHE"] = str(tmp_path)  # `ready` is a stat of the cache: nothing is provisioned here
    if columns is not None:
        env["COLUMNS"] = columns
    proc = subprocess.run(
        [sys.executable, "-m", "toolchain.cli.main", "devices", "list"],
        cwd=ROOT,
        env=env,
        capture_output=True,  # stdout is a pipe, as in `edgecomp devices list | cat`
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(PROFILE_NAMES) >= 6
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("│")]
    first_cells = sorted(ln.split("│")[1].strip() for ln in rows)
    assert first_cells == PROFILE_NAMES  # one row per profile, its name whole in one cell
    assert "…" not in proc.stdout


def test_devices_list_json_lists_every_profile():
    res = CliRunner().invoke(app, ["devices", "list", "--json"])
    assert res.exit_code == 0, res.output
    assert sorted(p["name"] for p in json.loads(res.stdout)) == PROFILE_NAMES


def _table() -> Table:
    t = Table(title="devices")
    for col in ("name", "runtime", "cpu"):
        t.add_column(col)
    t.add_row("android-arm64-litert", "tflite-runtime 2.14.0", "cortex-a76")
    return t


def test_a_narrow_terminal_wraps_a_long_cell_instead_of_cutting_it():
    plain = Console(file=io.StringIO(), force_terminal=True, width=30, color_system=None)
    plain.print(_table())
    assert "…" in plain.file.getvalue()  # rich's default on a narrow terminal: the name is cut
    ours = render._Stdout(file=io.StringIO(), force_terminal=True, width=30, color_system=None)
    ours.print(_table())
    out = ours.file.getvalue()
    assert "…" not in out
    first_column = "".join(ln.split("│")[1].strip() for ln in out.splitlines() if ln.startswith("│"))
    assert first_column == "android-arm64-litert"


@pytest.mark.parametrize("as_json", [False, True])
def test_a_reader_that_closes_the_pipe_early_is_not_an_edgecomp_bug(as_json, tmp_path):
    """`edgecomp devices list | head -0`: stdout's reader is gone before anything is written. Rich's tables
    and our JSON writer both end quietly with exit 1 (rich's own convention), not as an "unexpected" bug."""
    env = {**os.environ, "EDGECOMP_CACHE": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolchain.cli.main", "devices", "list", *(["--json"] if as_json else [])],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()  # the only read end: the child's first write gets EPIPE
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 1
    assert err == ""  # no "unexpected BrokenPipeError ... this is a bug", no "Exception ignored" on exit
