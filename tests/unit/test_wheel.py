"""Issue 27: `pipx install .` / `uv tool install .` give a working CLI, so the wheel must carry every file
the packages read at run time (device profiles, the environments' locks, the child-side wire scripts)
and the `edgecomp` entry point. The wheel is built for real (`pip wheel --no-deps`, no network)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("toolchain", "converters", "devices")


def test_the_wheel_carries_every_package_file_and_the_entry_point(tmp_path):
    files = ["pyproject.toml", "README.md", "LICENSE"]
    tracked = subprocess.run(
        ["git", "ls-files", *PACKAGES], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked, "not a git checkout"
    for name in [*files, *tracked, *(str(p.relative_to(ROOT)) for p in ROOT.glob("toolchain/base/locks/*"))]:
        (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)  # a copy: the build writes
        shutil.copy2(ROOT / name, tmp_path / "src" / name)  # build/ and *.egg-info beside the sources
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet"]
    cmd = [*build, "--wheel-dir", str(tmp_path / "dist"), str(tmp_path / "src")]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("edgecomp-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    missing = sorted(set(tracked) - names)
    assert not missing, f"files the wheel leaves out (pyproject.toml package-data): {missing}"
    locks = {n for n in names if n.startswith("toolchain/base/locks/")}
    assert {p.name for p in (ROOT / "toolchain/base/locks").glob("*.txt")} == {Path(n).name for n in locks}
    assert "edgecomp = toolchain.cli.main:app" in entry_points
