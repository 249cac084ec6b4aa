"""Issue 12, part 5: one error path. Every bad value is one `error:` line (or a usage error) and its code."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from toolchain.base.errors import UNEXPECTED_EXIT_CODE, DataError, RecipeError
from toolchain.cli.main import app


@pytest.mark.parametrize(
    "args, option",
    [
        (["profile", "m.tflite", "--threads", "0"], "--threads"),
        (["profile", "m.tflite", "--warmup", "-1"], "--warmup"),
        (["profile", "m.tflite", "--top", "-1"], "--top"),
        (["profile", "m.tflite", "--processes", "0"], "--processes"),
        (["profile", "m.tflite", "--runs", "0"], "--runs"),
        (["validate", "build/x", "--limit", "-5"], "--limit"),
        (["validate", "build/x", "--limit", "0"], "--limit"),
        (["convert", "m.keras", "--seq-len", "0"], "--seq-len"),
        (["convert", "m.keras", "--seed", "-1"], "--seed"),
        (["convert", "m.keras", "--seed", str(2**40)], "--seed"),
        (["convert", "m.keras", "--calibration-samples", "0"], "--calibration-samples"),
    ],
)
def test_out_of_range_options_are_usage_errors(args, option):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert option in result.output and "Traceback" not in result.output


def test_seq_lens_zero_is_refused():
    result = CliRunner().invoke(app, ["profile", "m.tflite", "--seq-lens", "8,0"])
    assert result.exit_code == 2 and "bad --seq-lens" in result.output


def test_help_shows_ranges():
    result = CliRunner().invoke(app, ["profile", "--help"], env={"COLUMNS": "200"})
    assert "x>=1" in result.output and "x>=0" in result.output


def test_unexpected_exception_has_its_own_code(monkeypatch):
    import toolchain.device_stages

    def boom(*a, **k):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(toolchain.device_stages, "profile_target", boom)
    result = CliRunner().invoke(app, ["profile", "m.tflite"])
    assert result.exit_code == UNEXPECTED_EXIT_CODE == 70
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: unexpected ZeroDivisionError")
    assert "EDGECOMP_DEBUG=1" in lines[0]


def test_full_disk_is_an_environment_error(monkeypatch):
    import errno

    import toolchain.device_stages

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", "/out/model.tflite")

    monkeypatch.setattr(toolchain.device_stages, "profile_target", full)
    result = CliRunner().invoke(app, ["profile", "m.tflite"])
    assert result.exit_code == 2 and "No space left on device: /out/model.tflite" in result.output


@pytest.mark.parametrize("reader", ["load_vocab", "load_labels", "load_queries"])
def test_invalid_utf8_is_a_data_error(tmp_path, reader):
    from toolchain import data

    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"f.jsonl:2: the .* file is not UTF-8 \(byte 0xe9"):
        getattr(data, reader)(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("source: !!python/object/apply:os.system ['touch PWNED']\n", "YAML tag"),
        ("source:\n  path: [unclosed\n", "not valid YAML at line"),
        ("name: x\n\tsource: y\n", "not valid YAML"),
    ],
)
def test_bad_yaml_recipes_are_recipe_errors(tmp_path, monkeypatch, text, message):
    from toolchain.recipe.compose import load_recipe

    monkeypatch.chdir(tmp_path)
    (tmp_path / "r.yaml").write_text(text)
    with pytest.raises(RecipeError, match=message):
        load_recipe(tmp_path / "r.yaml")
    assert not (tmp_path / "PWNED").exists()


def test_non_utf8_recipe(tmp_path):
    from toolchain.recipe.compose import load_recipe

    (tmp_path / "r.yaml").write_bytes(b"name: caf\xe9\n")
    with pytest.raises(RecipeError, match="not a UTF-8"):
        load_recipe(tmp_path / "r.yaml")


def test_misspelled_float_fallback_op_lists_valid_names(tmp_path):
    from toolchain.recipe.compose import load_recipe

    recipe = {"source": {"path": "m.onnx"}, "quantization": {"float_fallback_ops": ["BATCH_MATMULL"]}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.raises(RecipeError, match="unknown TFLite op BATCH_MATMULL") as err:
        load_recipe(tmp_path / "r.yaml")
    assert "did you mean BATCH_MATMUL" in err.value.message and "FULLY_CONNECTED" in err.value.message


def test_known_float_fallback_ops_are_normalised():
    from toolchain.recipe.compose import recipe_from_dict

    r = recipe_from_dict({"source": {"path": "m.onnx"}, "quantization": {"float_fallback_ops": ["softmax"]}})
    assert r.quantization.float_fallback_ops == ["SOFTMAX"]


def test_huge_input_shape_is_a_recipe_error():
    from toolchain.recipe.compose import recipe_from_dict

    with pytest.raises(RecipeError, match="every dimension must be"):
        recipe_from_dict({"source": {"path": "m.onnx", "input_shapes": {"input_ids": [1, 1 << 40]}}})
    with pytest.raises(RecipeError, match="elements"):
        recipe_from_dict({"source": {"path": "m.onnx", "input_shapes": {"input_ids": [60000, 60000]}}})
