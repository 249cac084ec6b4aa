"""First-time downloads are announced with their size, once; a provisioned cache says nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from toolchain.base import venvs
from toolchain.base.notices import KNOWN_SIZES_MB, first_use_notice, notice_sink, size_text


def test_first_use_notice_names_what_where_and_how_big(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    target = tmp_path / ".cache" / "edgecomp" / "envs" / "litert-2.3.0-0123456789ab"
    line = first_use_notice("litert-2.3.0", ("ai-edge-litert==2.3.0", "numpy<2"), target, "litert-2.3.0")
    assert line == (
        "first use of litert-2.3.0: installing ai-edge-litert==2.3.0 (~190 MB) into "
        "~/.cache/edgecomp/envs/litert-2.3.0-0123456789ab, once; later runs reuse it"
    )
    other = first_use_notice("x-1.0", ("x==1.0",), Path("/opt/envs/x"), "x-1.0")
    assert "(size not measured)" in other and "into /opt/envs/x" in other
    assert size_text(KNOWN_SIZES_MB["mediapipe-0.10.21"]) == "~990 MB" and size_text(1500) == "~1.5 GB"


def _provisioned(root: Path, spec: venvs.VenvSpec) -> Path:
    path = root / f"{spec.name}-{spec.key}"
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").symlink_to(sys.executable)
    (path / venvs.MARKER).write_text(json.dumps({"key": spec.key}))
    return path


def test_a_provisioned_runtime_says_nothing(monkeypatch, tmp_path):
    from devices.profiles.schema import get_profile
    from devices.runtimes import provision

    monkeypatch.setenv("EDGECOMP_CACHE", str(tmp_path))
    profile = get_profile("x86-host")
    spec = venvs.runtime_venv_spec(profile.runtime, profile.runtime_version)
    path = _provisioned(tmp_path / "envs", spec)
    monkeypatch.setattr(venvs, "_run", lambda cmd, what: (_ for _ in ()).throw(AssertionError(what)))
    heard: list[str] = []
    with notice_sink(heard.append):
        env = provision(profile)
    assert env.root == path.resolve() and heard == []


def test_a_missing_environment_is_announced_before_anything_is_installed(monkeypatch, tmp_path):
    events: list[str] = []

    def fake_run(cmd: list[str], what: str) -> None:
        events.append(f"run: {what}")
        if "venv" in cmd:  # `python -m venv STAGE`
            stage = Path(cmd[-1])
            (stage / "bin").mkdir(parents=True)
            (stage / "bin" / "python").symlink_to(sys.executable)

    monkeypatch.setattr(venvs, "_run", fake_run)
    spec = venvs.runtime_venv_spec("litert", "2.3.0")
    with notice_sink(lambda line: events.append(f"note: {line}")):
        venvs.ensure_venv(spec, tmp_path)
        venvs.ensure_venv(spec, tmp_path)  # the second call finds it: no notice, no install
    assert len(events) == 3 and events[0].startswith("note: first use of litert-2.3.0: installing ")
    assert "ai-edge-litert==2.3.0 (~190 MB)" in events[0]
    assert events[1:] == [
        "run: creating venv litert-2.3.0",
        f"run: pip install -r {spec.lock.name}"
        if spec.lock
        else f"run: pip install {' '.join(spec.requirements)}",
    ]


def test_the_cli_prints_the_notice_on_stderr_once(monkeypatch, tmp_path):
    from devices import runtimes
    from toolchain.cli.main import app

    def fake_run(cmd: list[str], what: str) -> None:
        if "venv" in cmd:
            (Path(cmd[-1]) / "bin").mkdir(parents=True)
            (Path(cmd[-1]) / "bin" / "python").symlink_to(sys.executable)

    monkeypatch.setenv("EDGECOMP_CACHE", str(tmp_path))
    monkeypatch.setattr(venvs, "_run", fake_run)
    monkeypatch.setattr(runtimes, "self_test", lambda env, timeout=120.0: "ok")
    runner = CliRunner()
    first = runner.invoke(app, ["devices", "setup", "x86-host", "--json"])
    assert first.exit_code == 0, first.output
    assert "note: first use of litert-2.3.0: installing ai-edge-litert==2.3.0 (~190 MB)" in first.stderr
    assert "note:" not in first.stdout and json.loads(first.stdout)[0]["profile"] == "x86-host"
    again = runner.invoke(app, ["devices", "setup", "x86-host", "--json"])
    assert again.exit_code == 0 and "note:" not in again.stderr
