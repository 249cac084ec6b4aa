"""`edgecomp doctor` (issue 27) on this machine: real lookups of packages, tools, disk, caches, profiles."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from toolchain.cli.main import app
from toolchain.doctor import CORE


def _doctor(env: dict[str, str]):
    return CliRunner().invoke(app, ["doctor", "--json"], env=env)


def test_doctor_on_this_machine(tmp_path):
    result = _doctor({"EDGECOMP_CACHE": str(tmp_path)})
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {c["name"]: c for c in report["checks"]}
    assert report["core_ok"] and rows["python"]["status"] == "ok"
    locks = rows["environment locks"]  # this machine's Python has the committed hash locks
    assert locks["status"] == "ok" and "litert-2.3.0, mediapipe-0.10.21" in locks["found"]
    assert all(rows[d]["status"] == "ok" for d in CORE)
    assert rows["x86-host"]["found"].endswith("runs natively; runtime not set up")  # an empty cache
    assert rows["x86-host"]["fix"] == "edgecomp devices setup x86-host (or on first use)"
    assert rows["cache"]["found"].startswith(f"{tmp_path}: 0.00 GB in 0 entries")
    table = CliRunner().invoke(app, ["doctor"], env={"EDGECOMP_CACHE": str(tmp_path)}, terminal_width=300)
    assert (
        table.exit_code == 0 and "extra [search]" in table.stdout and "android-arm64-litert" in table.stdout
    )


def test_doctor_says_what_to_install_without_the_apt_tools(tmp_path):
    (tmp_path / "bin").mkdir()
    result = _doctor({"EDGECOMP_CACHE": str(tmp_path), "PATH": str(tmp_path / "bin")})
    assert result.exit_code == 0, result.output  # the core still works: emulated devices do not
    rows = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert rows["qemu-aarch64-static"]["status"] == "warn"
    assert rows["mmdebstrap"]["fix"] == "sudo apt-get install --no-install-recommends mmdebstrap"
    arm = rows["android-arm64-litert"]
    assert arm["status"] == "warn" and "missing qemu-aarch64-static, mmdebstrap, zstd" in arm["found"]
    assert rows["x86-host"]["status"] == "ok"


def test_doctor_fails_when_the_cache_cannot_be_used(tmp_path):
    a_file = tmp_path / "f"
    a_file.write_text("x")
    result = CliRunner().invoke(app, ["doctor"], env={"EDGECOMP_CACHE": str(a_file)})
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cache: the cache path") and result.stderr.count("\n") == 1
