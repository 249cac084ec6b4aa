"""distill-auto's refusals from the CLI: one line, exit 2, before anything is trained or written."""

from __future__ import annotations

from typer.testing import CliRunner

from toolchain.cli.main import app


def _convert(tiny_untrained, tmp_path, *extra: str):
    t = tiny_untrained
    args = ["convert", str(t.model), "--train", str(t.train), "--val", str(t.val), "--labels", str(t.labels)]
    return CliRunner().invoke(app, [*args, "--vocab", str(t.vocab), "--out", str(tmp_path / "b"), *extra])


def test_distill_auto_needs_a_foreign_teacher(tiny_untrained, tmp_path):
    result = _convert(tiny_untrained, tmp_path, "--preset", "distill-auto")
    assert result.exit_code == 2, result.output
    assert "error: student auto chooses a student for a foreign teacher" in result.stderr
    assert "--preset distill-student-int8" in result.stderr
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.distill-auto").exists()


def test_workers_and_ray_address_are_for_distill_auto_only(tiny_untrained, tmp_path):
    result = _convert(tiny_untrained, tmp_path, "--preset", "int8", "--workers", "2")
    assert result.exit_code == 2, result.output
    assert "error: --workers and --ray-address build the candidate students of distill-auto" in result.stderr
    assert not (tmp_path / "b").exists()
