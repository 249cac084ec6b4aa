"""Keras -> TFLite in every mode, read back from the flatbuffer; int8 is really full-integer; determinism."""

import hashlib

import numpy as np
import pytest

from converters.tflite_model import non_int8_weight_ops, parse_tflite, read_tflite
from toolchain.base.errors import InputFileError
from toolchain.recipe.compose import recipe_from_dict

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def builds(tiny_project, tiny_int8, tiny_float32):
    """Every mode; int8 and float32 are the shared builds (conftest: this recipe, named tiny-<mode>)."""
    from toolchain.pipeline import build

    out = {"float32": tiny_float32, "int8": tiny_int8}
    for mode in ("float16", "dynamic", "int16x8"):
        recipe = recipe_from_dict(
            tiny_project.recipe_dict(
                name=mode,
                quantization={"mode": mode, "calibration_samples": 100, "min_calibration_samples": 50},
            )
        )
        out[mode] = build(recipe)
    return out


def test_every_mode_converts_runs_and_agrees(builds):
    for mode, result in builds.items():
        ev = result.report.to_json()["evaluation"]["vs_final_float"]
        assert ev["top1_agreement"] >= 0.97, mode
        assert result.report.to_json()["model"]["inputs"][0]["dtype"] == "INT32", mode


def test_int8_is_full_integer_with_int8_output_and_int32_ids(builds):
    model = read_tflite(builds["int8"].model_path)
    assert non_int8_weight_ops(model) == []
    fc_conv = [op for op in model.ops if op.op in ("FULLY_CONNECTED", "CONV_2D")]
    assert fc_conv and all(model.tensors[op.inputs[1]].dtype == "INT8" for op in fc_conv)
    assert model.tensors[model.outputs[0]].dtype == "INT8"
    assert model.tensors[model.inputs[0]].dtype == "INT32"
    assert "DEQUANTIZE" not in model.op_counts and "QUANTIZE" not in model.op_counts


def test_float_modes_are_not_full_integer(builds):
    assert non_int8_weight_ops(read_tflite(builds["float32"].model_path))
    model = read_tflite(builds["int16x8"].model_path)  # 16-bit activations, 8-bit weights, float scores out
    fc_conv = [op for op in model.ops if op.op in ("FULLY_CONNECTED", "CONV_2D")]
    assert fc_conv and {model.tensors[op.outputs[0]].dtype for op in fc_conv} == {"INT16"}
    assert {model.tensors[op.inputs[1]].dtype for op in fc_conv} == {"INT8"}
    assert model.tensors[model.outputs[0]].dtype == "FLOAT32" and model.op_counts["DEQUANTIZE"] == 1


def test_sizes_shrink_as_expected(builds):
    size = {m: r.report.to_json()["model"]["size_bytes"] for m, r in builds.items()}
    assert size["int8"] < size["float16"] < size["float32"]
    assert builds["int8"].report.to_json()["ratios_vs_fp32"]["size"] > 1.5


def test_build_dir_holds_model_recipe_report(builds):
    d = builds["int8"].dir
    for name in ("model.tflite", "recipe.yaml", "report.json", "report.md", "labels.txt", "vocab.txt"):
        assert (d / name).is_file(), name
    assert not [p for p in d.parent.iterdir() if p.name.startswith(".")]


def test_same_recipe_and_seed_give_identical_bytes(example_build, tmp_path):
    """Two independent builds of one recipe (seeded prune to 80% for 4 epochs, then int8): the shipped
    example's, made once per run for the session (conftest), and this one in another output dir (which
    convert does not read)."""
    from tests.support.builds import example_recipe
    from toolchain.pipeline import build

    again = build(example_recipe(tmp_path))
    assert again.dir.parent == tmp_path and again.dir != example_build.dir
    assert again.report.to_json()["steps"][0]["kind"] == "prune"
    first = hashlib.sha256(example_build.model_path.read_bytes()).hexdigest()
    assert hashlib.sha256(again.model_path.read_bytes()).hexdigest() == first


def test_reader_rejects_non_tflite_and_truncated(tmp_path, builds):
    with pytest.raises(InputFileError, match="not a TFLite model"):
        parse_tflite(b"hello world, not a model")
    data = builds["int8"].model_path.read_bytes()
    with pytest.raises(InputFileError, match="corrupt"):
        parse_tflite(data[:64])
    info = parse_tflite(data)
    assert info.parameter_count > 0 and info.opcodes["FULLY_CONNECTED"] >= 1
    assert np.isclose(info.tensors[info.outputs[0]].scales[0], 1 / 256)


def test_the_report_splits_the_flips_by_how_sure_the_source_was(tiny_int8):
    """A real build's flips: as many as by_stage's disagreements, named by their test query, in report.md."""
    ev = tiny_int8.report.evaluation
    f, by = ev.vs_source_float.flips, ev.by_stage.disagreements_vs_source
    assert f.total == by.total == f.where_sure + f.where_unsure
    low, high = f.agreement_interval
    assert low <= ev.vs_source_float.top1_agreement <= high
    texts = [line for line in (tiny_int8.dir / "report.md").read_text().splitlines() if "runner-up" in line]
    assert len(texts) == min(f.total, 5) and len(f.most_confident) == len(texts)
    assert all(x.text and x.source != x.converted for x in f.most_confident)
