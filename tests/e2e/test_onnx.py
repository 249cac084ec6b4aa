"""ONNX in: real PyTorch-exported models through onnxsim + onnx2tf to TFLite, checked against onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from typer.testing import CliRunner

from converters import onnx_tflite as ox
from toolchain.base.errors import ConversionError, DataError, InputFileError, StepError
from toolchain.cli.main import app
from toolchain.recipe.compose import recipe_from_dict

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "shopping_intent" / "data"


def _save(tmp: Path, name: str, node, inputs, outputs, opset: int = 17) -> Path:
    graph = helper.make_graph([node] if node else [], "g", inputs, outputs)
    opsets = [helper.make_opsetid("", opset)]
    if node is not None and node.domain:
        opsets.append(helper.make_opsetid(node.domain, 1))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    path = tmp / name
    onnx.save(model, str(path))
    return path


def _io(name, elem=TensorProto.FLOAT, dims=(1, 4)):
    return helper.make_tensor_value_info(name, elem, list(dims))


# ---- errors: fast, no conversion --------------------------------------------------------------------------


def test_unsupported_op_is_named_with_its_node(tmp_path):
    path = _save(
        tmp_path,
        "swish.onnx",
        helper.make_node("Swish", ["x"], ["y"], name="act1"),
        [_io("x")],
        [_io("y")],
        opset=24,
    )
    with pytest.raises(ConversionError, match="opset 24"):  # too new is refused first
        ox.inspect_onnx(path)
    path = _save(
        tmp_path,
        "custom.onnx",
        helper.make_node("FancyOp", ["x"], ["y"], name="n7", domain="acme"),
        [_io("x")],
        [_io("y")],
    )
    with pytest.raises(
        ConversionError, match=r"ONNX op FancyOp \(domain acme\) in node 'n7' cannot be converted"
    ):
        ox.inspect_onnx(path)


def test_opset_too_old(tmp_path):
    path = _save(
        tmp_path, "old.onnx", helper.make_node("Relu", ["x"], ["y"]), [_io("x")], [_io("y")], opset=7
    )
    with pytest.raises(ConversionError, match="uses ONNX opset 7; edgecomp converts opsets 10-21"):
        ox.inspect_onnx(path)


def test_string_input_is_refused(tmp_path):
    path = _save(
        tmp_path,
        "str.onnx",
        helper.make_node("Identity", ["q"], ["y"]),
        [_io("q", TensorProto.STRING, (1,))],
        [_io("y", TensorProto.STRING, (1,))],
    )
    with pytest.raises(ConversionError, match="input 'q' is a string tensor"):
        ox.inspect_onnx(path)


def test_shapes_that_stay_dynamic(tmp_path):
    path = _save(
        tmp_path,
        "dyn.onnx",
        helper.make_node("Relu", ["features"], ["y"]),
        [_io("features", dims=("batch", "width"))],
        [_io("y", dims=("batch", "width"))],
    )
    info = ox.inspect_onnx(path)
    with pytest.raises(
        DataError, match=r"input 'features' has dynamic shape \['batch', 'width'\] that stays"
    ):
        ox.fixed_shapes(info, {}, seq_len=32)
    assert ox.fixed_shapes(info, {"features": [1, 8]}, None) == {"features": [1, 8]}
    with pytest.raises(DataError, match="unknown inputs"):
        ox.fixed_shapes(info, {"nope": [1, 8]}, None)


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage")
    with pytest.raises(InputFileError, match="not a valid ONNX model"):
        ox.inspect_onnx(bad)
    with pytest.raises(InputFileError, match="model not found"):
        ox.inspect_onnx(tmp_path / "none.onnx")


def test_bad_input_shape_flag(tmp_path):
    result = CliRunner().invoke(
        app, ["convert", str(tmp_path / "m.onnx"), "--input-shape", "input_ids=1by32"]
    )
    assert result.exit_code == 2 and "expected NAME=DIMxDIM" in result.stderr


# ---- real models: PyTorch-exported, cached -----------------------------------------------------------------


def _recipe(models: Path, tmp: Path, model: str, **extra):
    base = {
        "name": extra.pop("name", "onnx"),
        "source": {"path": str(models / model)},
        "data": {"test": str(DATA / "test.jsonl"), "calibration": str(DATA / "train.jsonl"), "seq_len": 32},
        # 200 calibration queries: test_mixed.py's full-int8 build of intent_encoder.onnx draws the same, so
        # both int8 builds quantize one prepared graph and a run converts it with onnx2tf once
        "quantization": {"mode": "float32", "calibration_samples": 200},
        "output": {"dir": str(tmp)},
    }
    for key, value in extra.items():
        base[key] = {**base.get(key, {}), **value}
    return recipe_from_dict(base)


@pytest.mark.slow
def test_flex_op_is_refused_and_named(tmp_path):
    """Without the pseudo-op rewrite, Erf has no TFLite builtin: refuse rather than ship FlexErf."""
    from converters.keras_tflite import saved_model_to_tflite

    path = _save(tmp_path, "erf.onnx", helper.make_node("Erf", ["x"], ["y"]), [_io("x")], [_io("y")])
    saved = ox.onnx_to_saved_model(path, tmp_path / "sm", ["x"], pseudo_ops=())
    with pytest.raises(ConversionError) as err:
        try:
            saved_model_to_tflite(saved, "float32")
        except ConversionError as raw:
            raise ox.explain_conversion_error(raw) from None
    assert "op Erf has no TFLite builtin kernel" in str(err.value) and "Select-TF" in str(err.value)


@pytest.mark.slow
def test_intent_classifier_fp32_matches_onnxruntime(onnx_float_builds):
    """The shared float32 build (conftest): intent_encoder.onnx, saved with external data, to .tflite."""
    report = onnx_float_builds.clf_report.to_json()
    ref = report["evaluation"]["onnx_reference"]
    assert ref["max_abs_error"] < 1e-4 and ref["top1_agreement"] == 1.0
    ops = report["model"]["ops"]  # its Erf-GELUs fused, and still within 1e-4 of onnxruntime
    assert report["quantization"]["fused_gelu"] == ops["GELU"] >= 1 and "EXP" not in ops, ops
    # the PyTorch export's int64 ids stay int64 through onnx2tf (the toolchain feeds them as exported)
    assert report["source"]["format"] == "onnx"
    assert {i["name"]: i["dtype"] for i in report["model"]["inputs"]} == {
        "serving_default_attention_mask:0": "INT64",
        "serving_default_input_ids:0": "INT64",
    }


@pytest.mark.slow
def test_intent_classifier_int8_within_1_5_points(onnx_models, tmp_path):
    from converters.keras_tflite import TRANSFORMER_FLOAT_OPS
    from toolchain.pipeline import build

    recipe = _recipe(
        onnx_models,
        tmp_path,
        "intent_encoder.onnx",
        name="int8",
        quantization={"mode": "int8", "float_fallback_ops": list(TRANSFORMER_FLOAT_OPS)},
        evaluation={"max_accuracy_drop": 1.5},
    )
    report = build(recipe).report.to_json()
    cmp = report["evaluation"]["vs_source_float"]
    assert cmp["accuracy_drop_points"] <= 1.5 and cmp["reference"]["accuracy"] > 0.8
    assert report["quantization"]["full_integer"] is False
    assert report["model"]["ops"]["FULLY_CONNECTED"] >= 1
    draw = report["quantization"]["calibration_draw"]
    assert draw["drawn"] == report["quantization"]["calibration_queries"] and draw["length_buckets"]


@pytest.mark.slow
@pytest.mark.parametrize("mode, min_cos", [("float16", 0.999), ("int8", 0.98)])
def test_embedding_model_cosine(onnx_models, tmp_path, mode, min_cos):
    from toolchain.pipeline import build

    recipe = _recipe(
        onnx_models,
        tmp_path,
        "embedder.onnx",
        name=f"emb-{mode}",
        source={"task": "embedding"},
        quantization={"mode": mode},
        evaluation={"min_cosine": min_cos},
    )
    result = build(recipe)
    report = result.report.to_json()
    ref = report["evaluation"]["onnx_reference"]
    assert ref["queries"] == 200 and ref["mean_cosine"] >= min_cos
    # each layer's exported Erf-GELU is one GELU op: float16 (constants behind DEQUANTIZE), full int8
    ops = report["model"]["ops"]
    assert report["quantization"]["fused_gelu"] == ops["GELU"] >= 1 and "EXP" not in ops, ops
    assert not (result.dir / "labels.txt").exists()  # an embedding build has no labels


@pytest.mark.slow
def test_external_data_and_steps_refused(onnx_float_builds, tmp_path):
    """The shared float32 classifier build (conftest) was converted from a copy saved with external data."""
    from toolchain.pipeline import build

    ext = onnx_float_builds.ext
    assert (ext / "weights.bin").stat().st_size > 100_000
    assert (
        onnx.load(str(ext / "intent_encoder.onnx"), load_external_data=False)
        .graph.initializer[0]
        .external_data
    )  # the weights really are outside the .onnx
    report = onnx_float_builds.clf_report.to_json()
    assert report["source"]["path"] == str(ext / "intent_encoder.onnx")
    assert report["evaluation"]["onnx_reference"]["max_abs_error"] < 1e-4
    with pytest.raises(StepError, match="compression steps need a Keras model"):
        build(
            recipe_from_dict(
                {
                    **json.loads(
                        json.dumps(_recipe(ext, tmp_path, "intent_encoder.onnx").model_dump(mode="json"))
                    ),
                    "steps": [{"kind": "prune"}],
                }
            )
        )
    assert np.isfinite(report["evaluation"]["onnx_reference"]["mean_cosine"])


@pytest.mark.slow
def test_a_query_log_as_the_test_split_is_judged_on_agreement(onnx_models, tmp_path):
    """An unlabelled --test (an app's query log): agreement vs source with its flips and interval in the
    report, min_agreement judged on it; a label gate is named as not applied instead of passing silently."""
    import yaml

    log = tmp_path / "log.jsonl"
    texts = [json.loads(line)["text"] for line in (DATA / "test.jsonl").open(encoding="utf-8")]
    log.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    recipe = _recipe(
        onnx_models,
        tmp_path,
        "intent_encoder.onnx",
        name="log",
        data={"test": str(log)},
        quantization={"mode": "dynamic"},
        evaluation={"min_agreement": 0.9, "max_accuracy_drop": 1.0},
    )
    path = tmp_path / "log.yaml"
    path.write_text(yaml.safe_dump(recipe.model_dump(mode="json", exclude_none=True)), encoding="utf-8")
    result = CliRunner().invoke(app, ["convert", "--recipe", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert "gate max_accuracy_drop not applied: the 748 evaluated queries have no labels" in result.stderr
    ev = json.loads(result.stdout)["evaluation"]
    assert ev.get("vs_source_float") is None and ev.get("by_stage") is None
    u = ev["unlabelled"]
    assert u["queries"] == len(texts) == 748 and 0.9 <= u["top1_agreement"] <= 1.0
    assert u["top1_agreement"] == round(ev["onnx_reference"]["top1_agreement"], 4)  # no steps: one reference
    f = u["flips"]
    assert f["total"] == round((1 - u["top1_agreement"]) * 748) and f["agreement_interval"][0] < 1.0
    md = (tmp_path / "log" / "report.md").read_text(encoding="utf-8")
    assert "## Agreement on 748 unlabelled queries" in md and "agreement vs source: " in md
    from rich.console import Console

    from toolchain.build import load_build
    from toolchain.cli.convert_table import build_table

    console = Console(record=True, width=300)
    console.print(build_table(load_build(tmp_path / "log").report))
    table = console.export_text()
    assert f"{u['top1_agreement']:.2%} (748 unlabelled queries)" in table and "accuracy" not in table
