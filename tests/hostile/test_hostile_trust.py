"""Issue 12, part 1: loading an untrusted model runs none of its code.

The fixture models carry a Lambda whose function writes a marker file when called: Keras calls it while it
rebuilds the graph on load, so the marker proves whether code ran.
"""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from toolchain.cli.main import app

pytestmark = pytest.mark.slow


def _lambda_model(mark):
    from toolchain.base.tfenv import keras

    k = keras()
    fn = eval(f"lambda x: (__import__('pathlib').Path({str(mark)!r}).write_text('ran'), x)[1]")  # noqa: S307
    inp = k.Input((16,), dtype="int32", name="input_ids")
    x = k.layers.Embedding(200, 8)(inp)
    x = k.layers.Lambda(fn, name="payload")(x)
    x = k.layers.GlobalAveragePooling1D()(x)
    return k.Model(inp, k.layers.Dense(4, activation="softmax")(x))


@pytest.fixture(scope="module")
def hostile_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    mark = root / "MARK"
    model = _lambda_model(mark)
    paths = {"h5": root / "m.h5", "savedmodel": root / "sm", "keras": root / "m.keras"}
    model.save(paths["h5"])
    model.save(paths["savedmodel"], save_format="tf")
    model.save(paths["keras"])
    mark.unlink(missing_ok=True)
    return paths, mark


def _convert(tiny_project, tmp_path, source, *flags):
    recipe = tiny_project.recipe_dict(output={"dir": str(tmp_path / "build")})
    recipe["source"] = {"path": str(source)}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return CliRunner().invoke(app, ["convert", "--recipe", str(path), *flags])


@pytest.mark.parametrize("kind", ["h5", "savedmodel"])
def test_h5_and_savedmodel_refused_without_flag(hostile_models, tiny_project, tmp_path, kind):
    paths, mark = hostile_models
    result = _convert(tiny_project, tmp_path, paths[kind])
    assert result.exit_code == 2, result.output
    assert "--trust-model-code" in result.output and "Lambda" in result.output
    assert "corrupt" not in result.output
    assert not mark.exists()
    assert not (tmp_path / "build").exists()


def test_keras_lambda_refused_by_safe_mode(hostile_models, tiny_project, tmp_path):
    paths, mark = hostile_models
    result = _convert(tiny_project, tmp_path, paths["keras"])
    assert result.exit_code == 2, result.output
    assert "--trust-model-code" in result.output and "corrupt" not in result.output
    assert not mark.exists()


@pytest.mark.parametrize("kind", ["h5", "savedmodel", "keras"])
def test_trusted_models_load(hostile_models, kind):
    from converters.keras_tflite import load_keras_model

    paths, mark = hostile_models
    mark.unlink(missing_ok=True)
    model = load_keras_model(paths[kind], trust_model_code=True)
    assert model.outputs[0].shape[-1] == 4
    assert mark.exists()  # the Lambda did run: the refusals above are not vacuous
    mark.unlink(missing_ok=True)


def test_student_and_float_reference_follow_the_rule(hostile_models, tmp_path):
    from devices.profiling.profiler import _float_tflite
    from toolchain.base.errors import UntrustedModelError
    from toolchain.steps.student import load_student

    paths, mark = hostile_models
    with pytest.raises(UntrustedModelError, match="trust-model-code"):
        load_student(paths["h5"], 16, 4)
    with pytest.raises(UntrustedModelError, match="trust-model-code"):
        _float_tflite(paths["savedmodel"], tmp_path)
    assert not mark.exists()
