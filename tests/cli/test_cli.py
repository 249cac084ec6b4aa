"""The CLI through CliRunner: real builds, --json, and bad inputs that fail cleanly and leave no files."""

import json
import zipfile

import pytest
import yaml
from typer.testing import CliRunner

from toolchain.base.errors import InputFileError
from toolchain.cli.main import app

runner = CliRunner()


def _invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _no_artifacts(out_dir):
    return not out_dir.exists() or not any(out_dir.iterdir())


def test_help_lists_commands():
    result = _invoke("--help")
    assert result.exit_code == 0 and "convert" in result.output
    assert _invoke("--version").output.startswith("edgecomp ")


@pytest.mark.slow
def test_convert_with_flags_prune_int8_json(tiny_project, tmp_path):
    out = tmp_path / "build" / "intent"
    result = _invoke(
        "convert",
        tiny_project.model,
        "--prune",
        "polynomial",
        "--target-sparsity",
        "0.5",
        "--prune-epochs",
        "2",
        "--quantize",
        "int8",
        "--calibration",
        tiny_project.train,
        "--calibration-samples",
        "100",
        "--out",
        out,
        "--json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["quantization"]["mode"] == "int8"
    draw = report["quantization"]["calibration_draw"]  # 4 intents x about 25 (rounding per length bucket)
    assert draw["drawn"] == 100 and draw["labels"]["count"] == 4
    assert 23 <= draw["labels"]["per_label_min"] <= draw["labels"]["per_label_max"] <= 27
    assert abs(report["steps"][0]["achieved_sparsity"] - 0.5) <= 0.02
    assert report["evaluation"]["vs_final_float"]["top1_agreement"] >= 0.95
    assert json.loads((out / "report.json").read_text())["name"] == "intent"
    saved = yaml.safe_load((out / "recipe.yaml").read_text())
    assert saved["steps"][0]["kind"] == "prune" and saved["quantization"]["mode"] == "int8"


@pytest.mark.slow
def test_convert_with_recipe_prints_a_table(tiny_project, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        yaml.safe_dump(
            json.loads(
                json.dumps(
                    tiny_project.recipe_dict(name="table", output={"dir": str(tmp_path / "b")}), default=str
                )
            )
        )
    )
    result = _invoke("convert", "--recipe", recipe, "--quantize", "dynamic")
    assert result.exit_code == 0, result.output
    assert "agreement vs source" in result.stdout and (tmp_path / "b" / "table" / "model.tflite").is_file()


def _bad(tiny_project, tmp_path, *extra, recipe=None):
    out = tmp_path / "out"
    args = ["convert", *extra, "--out", out / "m"]
    if recipe is not None:
        args += ["--recipe", recipe]
    return _invoke(*args), out


def test_missing_model(tiny_data, tmp_path):
    result, out = _bad(tiny_data, tmp_path, tmp_path / "nope.keras")
    assert result.exit_code == 2 and "error: model not found" in result.stderr
    assert "hint:" in result.stderr and _no_artifacts(out)


def test_corrupt_keras_files(tiny_data, tmp_path):
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"\x00not a model" * 10)
    result, out = _bad(tiny_data, tmp_path, garbage, "--vocab", tiny_data.vocab, "--labels", tiny_data.labels)
    assert result.exit_code == 2 and "not a valid .keras file" in result.stderr and _no_artifacts(out)
    zipped = tmp_path / "zipped.keras"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("config.json", "{broken")
    result, out = _bad(tiny_data, tmp_path, zipped)
    assert result.exit_code == 2 and "could not load Keras model" in result.stderr and _no_artifacts(out)


def test_unknown_recipe_key(tiny_untrained, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"source": {"path": str(tiny_untrained.model)}, "quantisation": {}}))
    result, out = _bad(tiny_untrained, tmp_path, recipe=recipe)
    assert result.exit_code == 2
    assert "unknown key 'quantisation'" in result.stderr and "valid keys here" in result.stderr
    assert _no_artifacts(out)


def test_bad_flag_value_names_the_choices(tiny_untrained, tmp_path):
    result, out = _bad(tiny_untrained, tmp_path, tiny_untrained.model, "--quantize", "int2")
    assert result.exit_code == 2 and "--quantize" in result.stderr and "'int4'" in result.stderr


@pytest.mark.slow
def test_empty_calibration_file(tiny_project, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result, out = _bad(tiny_project, tmp_path, tiny_project.model, "--calibration", empty)
    assert result.exit_code == 2 and "calibration file" in result.stderr and "is empty" in result.stderr
    assert _no_artifacts(out)


@pytest.mark.slow
def test_too_little_calibration_data(tiny_project, tmp_path):
    few = tmp_path / "few.jsonl"
    few.write_text("".join(json.dumps({"text": f"red shoes {i}"}) + "\n" for i in range(10)))
    result, out = _bad(tiny_project, tmp_path, tiny_project.model, "--calibration", few)
    assert result.exit_code == 2 and "too little calibration data: 10 usable queries" in result.stderr
    assert _no_artifacts(out)


@pytest.mark.slow
def test_wrong_input_length(tiny_project, tmp_path):
    result, out = _bad(tiny_project, tmp_path, tiny_project.model, "--seq-len", "8")
    assert result.exit_code == 2
    assert "wrong input length: the model takes 16 tokens" in result.stderr and _no_artifacts(out)


@pytest.mark.slow
def test_failed_gate_exits_1_and_writes_only_the_rejected_candidate(tiny_project, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        yaml.safe_dump(
            json.loads(json.dumps(tiny_project.recipe_dict(evaluation={"min_agreement": 1.01}), default=str))
        )
    )
    result, out = _bad(tiny_project, tmp_path, recipe=recipe)
    assert result.exit_code == 2 and "min_agreement" in result.stderr  # 1.01 is not a valid fraction
    # A vocabulary of 3 specials + 1 word maps almost every query to the same ids, so the model answers one
    # intent for nearly all of them: the accuracy must drop (75 points on the 4 balanced intents).
    recipe.write_text(
        yaml.safe_dump(
            json.loads(
                json.dumps(
                    tiny_project.recipe_dict(
                        steps=[{"kind": "vocab_prune", "max_size": 4}],
                        evaluation={"max_accuracy_drop": 0.0},
                    ),
                    default=str,
                )
            )
        )
    )
    result, out = _bad(tiny_project, tmp_path, recipe=recipe)
    assert result.exit_code == 1 and "accuracy drop 75.0 points vs source (limit 0.0)" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["m.rejected"]  # not build/m: it missed its gate
    assert "top-1 agreement" not in result.stdout and "agreement vs source" in result.stdout


def test_debug_env_shows_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECOMP_DEBUG", "1")
    result = _invoke("convert", tmp_path / "nope.keras")
    # the library's exception itself escapes (with its traceback), not the SystemExit of the error mapping
    assert result.exit_code == 1 and isinstance(result.exception, InputFileError), repr(result.exception)
    assert "model not found" in str(result.exception) and "error: model not found" not in result.stderr
