"""A SIGTERM whose exception was swallowed on the way (Python drops an exception raised in an at-fork hook:
logging's _releaseLock after a child starts) must still stop every commit: the build went on to write with
exit 0 in a loaded `make test` (test_signal_during_onnx_convert_kills_the_onnx2tf_child)."""

import os
import signal

import pytest

from toolchain.base.atomic import staged_dir, write_text
from toolchain.base.errors import Interrupted, clear_interrupts, note_interrupt


@pytest.fixture
def swallowed_sigterm():
    note_interrupt(signal.SIGTERM)  # what the handler records before raising the exception that got lost
    yield
    clear_interrupts()


def test_a_staged_build_is_not_committed(swallowed_sigterm, tmp_path):
    with pytest.raises(Interrupted), staged_dir(tmp_path / "build") as stage:
        (stage / "model.tflite").write_bytes(b"x")
    assert os.listdir(tmp_path) == []  # neither the build nor its staging dir


def test_a_file_is_not_replaced(swallowed_sigterm, tmp_path):
    (tmp_path / "report.json").write_text("old")
    with pytest.raises(Interrupted):
        write_text(tmp_path / "report.json", "new")
    assert sorted(os.listdir(tmp_path)) == ["report.json"] and (tmp_path / "report.json").read_text() == "old"


def test_without_a_signal_both_commit(tmp_path):
    with staged_dir(tmp_path / "build") as stage:
        (stage / "model.tflite").write_bytes(b"x")
    write_text(tmp_path / "f.txt", "y")
    assert (tmp_path / "build" / "model.tflite").read_bytes() == b"x" and (
        tmp_path / "f.txt"
    ).read_text() == "y"


def test_a_signal_belongs_to_its_command(monkeypatch, tmp_path):
    """The CLI forgets the signal when its command ends: a later library call in the same process (a test
    worker, an app embedding edgecomp) must not find it pending and refuse to write."""
    from typer.testing import CliRunner

    import devices.profiles.schema
    from toolchain.base.errors import pending_interrupt
    from toolchain.cli.main import app

    def signalled(*_args, **_kwargs):
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(devices.profiles.schema, "load_profiles", signalled)
    assert CliRunner().invoke(app, ["devices", "list"]).exit_code == 143
    assert pending_interrupt() is None
    write_text(tmp_path / "after.txt", "ok")
