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


def test_smooth_is_refused_for_a_keras_source_before_anything_is_written(tiny_untrained, tmp_path):
    """quantization.smooth rewrites an ONNX graph; a Keras source (or a student) is refused up front."""
    result = _convert(tiny_untrained, tmp_path, "-Q", "dynamic", "--smooth", "0.3")
    assert result.exit_code == 2, result.output
    assert "error: quantization.smooth rewrites an ONNX graph's dense layers" in result.stderr
    assert "\n" not in result.stderr.split("error: ", 1)[1].strip()
    assert not (tmp_path / "b").exists()


def test_per_tensor_is_refused_outside_int8_before_anything_is_written(tiny_untrained, tmp_path):
    result = _convert(tiny_untrained, tmp_path, "-Q", "dynamic", "--per-tensor")
    assert result.exit_code == 2, result.output
    assert "quantization.per_channel: false is for mode int8, not dynamic" in result.stderr
    assert "\n" not in result.stderr.split("error: ", 1)[1].strip()
    assert not (tmp_path / "b").exists()
