"""Issue 12, part 4: SIGINT/SIGTERM end a convert with 130/143, leaving nothing behind.

The convert runs as a real subprocess with a private TMPDIR; the signal is sent once the process has
created its temp dir (TensorFlow's converter workspace) or its staging dir, found by polling, so the test
asserts outcomes and never sleeps a fixed time nor measures one (tests/support/processes.py).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.support.processes import ROOT, assert_interrupted_cleanly, interrupt_when

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_int8_convert(tiny_project, tmp_path, sig, code):
    tmp, out = tmp_path / "tmp", tmp_path / "out" / "tiny"
    tmp.mkdir()
    t = tiny_project
    args = ["convert", str(t.model), "--vocab", str(t.vocab), "--labels", str(t.labels)]
    args += ["--train", str(t.train), "--test", str(t.test), "-Q", "int8"]
    args += ["--calibration-samples", "400", "--out", str(out)]

    def busy() -> bool:
        if any(tmp.iterdir()):
            return True
        return out.parent.is_dir() and any(p.name.endswith(".staging") for p in out.parent.iterdir())

    assert_interrupted_cleanly(interrupt_when(args, tmp, busy, sig), code, sig, tmp)
    assert not out.exists()
    assert not out.parent.exists() or [p.name for p in out.parent.iterdir()] == []


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
def test_signal_during_onnx_convert_kills_the_onnx2tf_child(
    onnx_models, tmp_path, monkeypatch, sig, code, ready
):
    monkeypatch.setenv("EDGECOMP_ONNX2TF_CACHE", "0")  # onnx2tf runs, not a copy of its earlier SavedModel
    tmp, out = tmp_path / "tmp", tmp_path / "out" / "enc"
    tmp.mkdir()
    data = ROOT / "examples" / "shopping_intent" / "data"
    args = ["convert", str(onnx_models / "intent_encoder.onnx"), "--test", str(data / "test.jsonl")]
    args += ["--calibration", str(data / "train.jsonl"), "--seq-len", "32"]
    args += ["-Q", "float32", "--out", str(out)]
    assert_interrupted_cleanly(interrupt_when(args, tmp, lambda: ready(tmp), sig), code, sig, tmp)
    assert not out.exists()


def test_a_signal_that_native_code_wraps_still_exits_as_interrupted(monkeypatch):
    """TensorFlow's converter calls Python through pybind11, which can hand Interrupted back as a
    RuntimeError ("MISMATCH of original and normalized active exception types"); a clean-clone CI run
    reported that as a bug (exit 70) instead of exit 143. The real signal goes to this process here, and the
    callback wraps it the way pybind11 does."""
    import os

    from typer.testing import CliRunner

    import devices.profiles.schema
    from toolchain.cli.main import app

    def native_callback(*_args, **_kwargs):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except BaseException as err:  # what pybind11 does with the Python error it could not normalize
            raise RuntimeError("pybind11::error_already_set: MISMATCH of original and normalized") from err

    monkeypatch.setattr(devices.profiles.schema, "load_profiles", native_callback)
    result = CliRunner().invoke(app, ["devices", "list"])
    assert result.exit_code == 143, result.output
    assert "interrupted by SIGTERM; nothing was written" in result.output
    assert "bug in edgecomp" not in result.output
