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


def _processes_with_env(marker: str) -> list[int]:
    """Pids whose environment holds `marker` (our private TMPDIR): children that outlived the CLI."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _child_started(tmp: Path) -> bool:
    return any(p.name.startswith("edgecomp-child-") for p in tmp.iterdir())


def _tf_temp_files(tmp: Path) -> bool:
    """TensorFlow has written its autograph modules (onnx2tf child or the converter): a kill now used to
    leave them, and the converter's temp dir, in TMPDIR."""
    return any(tmp.rglob("__autograph_generated_file*"))


def _onnx2tf_writing(tmp: Path) -> bool:
    return any((p / "saved_model").exists() for p in tmp.glob("edgecomp-onnx-*"))


@pytest.mark.parametrize(
    "sig, code, ready",
    [
        (signal.SIGTERM, 143, _child_started),
        (signal.SIGTERM, 143, _onnx2tf_writing),
        (signal.SIGINT, 130, _onnx2tf_writing),
        (signal.SIGTERM, 143, _tf_temp_files),
    ],
)
def test_signal_during_onnx_convert_kills_the_onnx2tf_child(onnx_models, tmp_path, sig, code, ready):
    tmp, out = tmp_path / "tmp", tmp_path / "out" / "enc"
    tmp.mkdir()
    data = ROOT / "examples" / "shopping_intent" / "data"
    cmd = [sys.executable, "-m", "toolchain.cli.main", "convert", str(onnx_models / "intent_encoder.onnx")]
    cmd += ["--test", str(data / "test.jsonl"), "--calibration", str(data / "train.jsonl"), "--seq-len", "32"]
    cmd += ["-q", "float32", "--out", str(out)]
    env = {**os.environ, "TMPDIR": str(tmp), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if ready(tmp):
                break
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
    assert list(tmp.iterdir()) == []
    assert not out.exists()
    deadline = time.monotonic() + 30  # SIGKILLed children are reaped by init: wait for them to vanish
    while _processes_with_env(str(tmp)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with_env(str(tmp)) == []
