"""Run the CLI as a real subprocess, signal it at a chosen moment, and look for what it left behind.

Nothing here measures time: the suite must pass on a loaded machine. Every wait polls for an outcome and
is bounded only by a hang guard, a limit far above any real wait that stops a hung test; reaching it fails
the test as a hang, never as "too slow".
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START_GUARD_S = 900.0  # until the moment to signal (a convert, or a QEMU guest starting, on a busy box)
EXIT_GUARD_S = 120.0  # from the signal to the exit, and for SIGKILLed children to be reaped


def wait_for(condition: Callable[[], bool], guard_s: float) -> bool:
    """Poll `condition` until it holds (True), or until the hang guard `guard_s` is reached (False)."""
    deadline = time.monotonic() + guard_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def processes_with_env(marker: str, word: str = "") -> list[int]:
    """Pids whose environment holds `marker` (a test's private TMPDIR, which every child inherits) and
    whose command line has `word`: children that outlived the command."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
            if marker.encode() in (proc / "environ").read_bytes() and word.encode() in cmdline:
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def interrupt_when(
    args: list[str], tmp: Path, ready: Callable[[], bool], sig: signal.Signals
) -> tuple[int, str]:
    """Run `edgecomp ARGS` with TMPDIR=`tmp`, send `sig` once `ready()` holds; returns (exit code, stderr).

    stderr goes to a file, not a pipe nobody reads until the end, so chatter cannot block the command."""
    cmd = [sys.executable, "-m", "toolchain.cli.main", *args]
    env = {**os.environ, "TMPDIR": str(tmp), "TF_CPP_MIN_LOG_LEVEL": "3"}
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
        try:
            started = wait_for(lambda: proc.poll() is not None or ready(), START_GUARD_S)
            assert started, f"hang: not ready to be signalled after {START_GUARD_S:.0f} s"
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"ended ({proc.returncode}) before it was signalled: {log.read()[-2000:]}")
            proc.send_signal(sig)
            try:
                proc.wait(timeout=EXIT_GUARD_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"hang: still running {EXIT_GUARD_S:.0f} s after {sig.name}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        log.seek(0)
        return proc.returncode, log.read()


def assert_interrupted_cleanly(got: tuple[int, str], want: int, sig: signal.Signals, tmp: Path) -> None:
    """`got` (exit code, stderr) is exit `want`, one `error:` line and no traceback; TMPDIR is empty and no
    child process is left."""
    code, err = got
    assert code == want, err[-2000:]
    assert "Traceback" not in err
    assert [ln for ln in err.splitlines() if ln.startswith("error:")] == [
        f"error: interrupted by {sig.name}; nothing was written"
    ], err[-2000:]
    assert list(tmp.iterdir()) == []
    # SIGKILLed children are reaped by init, not at once: wait (bounded) for them to vanish
    gone = wait_for(lambda: not processes_with_env(str(tmp)), EXIT_GUARD_S)
    assert gone, f"processes left behind: {processes_with_env(str(tmp))}"


@contextlib.contextmanager
def busy_loop() -> Iterator[int]:
    """A real CPU-bound process (a Python busy loop) beside the test's work; killed by its pid after."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()
