"""Issue 12, part 4: SIGINT/SIGTERM during `validate` on an emulated ARM phone and during `package`.

The command runs as a real subprocess with a private TMPDIR (its marker: every child inherits it). The
signal is sent once the child that matters is running, found by polling /proc (the QEMU guest, the
MediaPipe child), so the test asserts outcomes and never sleeps a fixed time. Then: exit 143/130 within
5 s of the signal, one `error:` line, no temp dir left, no process left, nothing written to the build
or the dist folder.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
EXIT_WITHIN_S = 5.0


def processes_with(marker: str, word: str = "") -> list[int]:
    """Pids whose environment holds `marker` (our private TMPDIR) and whose command line has `word`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes() and word.encode() in (
                proc / "cmdline"
            ).read_bytes().replace(b"\0", b" "):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def int8_build(tiny_project, tmp_path_factory) -> Path:
    from toolchain.pipeline import build
    from toolchain.recipe import recipe_from_dict

    out = tmp_path_factory.mktemp("signal-builds")
    return build(
        recipe_from_dict(tiny_project.recipe_dict(name="tiny-sig", output={"dir": str(out)}))
    ).build_dir


def interrupt_when(cmd: list[str], tmp: Path, child_word: str, sig: signal.Signals) -> tuple[int, str, float]:
    """Run `cmd`, send `sig` once a process with `child_word` in its command line runs under our TMPDIR;
    returns (exit code, stderr, seconds from the signal to the exit)."""
    env = {**os.environ, "TMPDIR": str(tmp), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600
        while proc.poll() is None and time.monotonic() < deadline:
            if processes_with(str(tmp), child_word):
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"ended before it was signalled: {proc.stderr.read()[-2000:]}"
        assert processes_with(str(tmp), child_word), f"no {child_word} child started"
        t0 = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        return proc.returncode, err, time.monotonic() - t0
    finally:
        if proc.poll() is None:  # pragma: no cover
            proc.kill()
            proc.wait()


def assert_clean(tmp: Path, code: int, want: int, err: str, seconds: float, sig: signal.Signals) -> None:
    assert code == want, err[-2000:]
    assert seconds < EXIT_WITHIN_S, f"exit took {seconds:.1f} s after {sig.name}"
    assert "Traceback" not in err
    assert [ln for ln in err.splitlines() if ln.startswith("error:")] == [
        f"error: interrupted by {sig.name}; nothing was written"
    ]
    assert list(tmp.iterdir()) == []
    deadline = time.monotonic() + 30  # SIGKILLed children are reaped by init: wait for them to vanish
    while processes_with(str(tmp)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with(str(tmp)) == []


@pytest.mark.qemu
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_validate_on_an_emulated_phone(int8_build, tmp_path, sig, code):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    report = (int8_build / "report.json").read_bytes()
    cmd = [
        sys.executable,
        "-m",
        "toolchain.cli.main",
        "validate",
        str(int8_build),
        "-d",
        "android-arm64-litert",
    ]
    got, err, seconds = interrupt_when(cmd, tmp, "qemu-aarch64", sig)
    assert_clean(tmp, got, code, err, seconds, sig)
    assert (int8_build / "report.json").read_bytes() == report  # no validation section recorded


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_package_kills_the_mediapipe_child(int8_build, tmp_path, sig, code):
    tmp, dist = tmp_path / "tmp", tmp_path / "dist"
    tmp.mkdir()
    cmd = [sys.executable, "-m", "toolchain.cli.main", "package", str(int8_build), "--format", "mediapipe"]
    cmd += ["--out", str(dist)]
    got, err, seconds = interrupt_when(cmd, tmp, "mediapipe_child", sig)
    assert_clean(tmp, got, code, err, seconds, sig)
    assert not dist.exists() or [p.name for p in dist.iterdir()] == []
