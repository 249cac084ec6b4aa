"""Issue 12, part 4: SIGINT/SIGTERM end a convert promptly, with 130/143, leaving nothing behind.

The convert runs as a real subprocess with a private TMPDIR; the signal is sent once the process has
created its temp dir (TensorFlow's converter workspace) or its staging dir, found by polling, so the test
asserts outcomes and never sleeps a fixed time.
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


def _busy(tmp: Path, out_parent: Path) -> bool:
    if any(tmp.iterdir()):
        return True
    return out_parent.is_dir() and any(p.name.endswith(".staging") for p in out_parent.iterdir())


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_int8_convert(tiny_project, tmp_path, sig, code):
    tmp, out = tmp_path / "tmp", tmp_path / "out" / "tiny"
    tmp.mkdir()
    t = tiny_project
    cmd = [sys.executable, "-m", "toolchain.cli.main", "convert", str(t.model), "--vocab", str(t.vocab)]
    cmd += ["--labels", str(t.labels), "--train", str(t.train), "--test", str(t.test), "-q", "int8"]
    cmd += ["--calibration-samples", "400", "--out", str(out)]
    env = {**os.environ, "TMPDIR": str(tmp), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not _busy(tmp, out.parent) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, f"convert ended before it was signalled: {proc.stderr.read()[-2000:]}"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # pragma: no cover
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err[-2000:]
    assert "Traceback" not in err
    assert [ln for ln in err.splitlines() if ln.startswith("error:")] == [
        f"error: interrupted by {signal.Signals(sig).name}; nothing was written"
    ]
    assert list(tmp.iterdir()) == []
    assert not out.exists()
    assert not out.parent.exists() or [p.name for p in out.parent.iterdir()] == []
