"""Issue 24: the Hub's onnx/ layout (notice and --onnx-file), a pickled pytorch_model.bin with
--trust-model-code, and Hugging Face folders as distillation teachers (the int8 students and their
MediaPipe packages: tests/e2e/test_distill_folder_teachers.py).

Folders from tests/fixtures/make_hub_folders.py; the pickle's refusal (with a live payload) is in
tests/hostile/test_hostile_hub.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolchain.base.errors import ConversionError, DataError, UntrustedModelError
from toolchain.cli.main import app
from toolchain.recipe.compose import recipe_from_dict
from toolchain.report.model import Report
from toolchain.sources.loaded import load_source
from toolchain.steps.teachers import load_teacher

pytestmark = pytest.mark.slow
DATA = Path(__file__).resolve().parents[2] / "examples" / "shopping_intent" / "data"


def test_hub_onnx_layout_is_found_with_a_notice(hub_folders, tmp_path):
    out = tmp_path / "hub"
    args = ["convert", str(hub_folders.hub_onnx), "--test", str(DATA / "test.jsonl"), "--out", str(out), "-Q"]
    args.append("float32")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "converting onnx/model.onnx (also onnx/model_quantized.onnx; pick one with --onnx-file)" in (
        result.output
    )
    report = Report.model_validate_json((out / "report.json").read_text())
    assert report.source.model_file == str(hub_folders.hub_onnx / "onnx" / "model.onnx")
    assert report.hub is not None and report.hub.folder.kind == "hub-onnx" and not report.hub.exported
    assert report.tokenizer.kind == "wordpiece"  # the tokenizer files at the folder's top
    compared = report.evaluation.vs_source_float
    assert compared is not None and compared.top1_agreement >= 0.999
    assert compared.reference.accuracy == pytest.approx(hub_folders.facts["bert_test_accuracy"], abs=2e-3)


def test_onnx_file_flag_picks_another(hub_folders, tmp_path):
    folder = tmp_path / "hub-onnx"
    shutil.copytree(hub_folders.hub_onnx, folder)
    shutil.copyfile(folder / "onnx" / "model.onnx", folder / "onnx" / "model_O1.onnx")  # an optimum variant
    spec = {
        "source": {"path": str(folder), "onnx_file": "onnx/model_O1.onnx"},
        "data": {"test": str(DATA / "test.jsonl")},
        "quantization": {"mode": "float32"},
    }
    loaded = load_source(recipe_from_dict(spec))  # opened as it is: no notice, no export
    assert loaded.model.path == folder / "onnx" / "model_O1.onnx"
    assert loaded.hub is not None and loaded.hub.onnx_file.endswith("model_O1.onnx")
    spec["source"]["onnx_file"] = "onnx/model_quantized.onnx"  # onnxruntime's int8: refused before onnx2tf
    with pytest.raises(ConversionError, match="already quantized by onnxruntime") as err:
        load_source(recipe_from_dict(spec))
    assert "--onnx-file onnx/model.onnx" in (err.value.hint or "")


def test_pickle_folder_exports_only_with_the_flag(hub_folders):
    spec = {
        "source": {"path": str(hub_folders.pickle)},
        "data": {"test": str(DATA / "test.jsonl")},
        "quantization": {"mode": "float32"},
    }
    with pytest.raises(UntrustedModelError, match="pytorch_model.bin is a pickle"):
        load_source(recipe_from_dict(spec))
    spec["source"]["trust_model_code"] = True
    hub = load_source(recipe_from_dict(spec)).hub
    assert hub is not None and hub.folder.weights_format == "pickle"
    assert hub.parity is not None and hub.parity.passed and hub.parity.value < 1e-4


def test_an_embedder_folder_cannot_teach_a_classifier(hub_folders):
    with pytest.raises(DataError, match="sentence-transformers encoder .* a classifier student"):
        load_teacher(hub_folders.sentence, 22)


def test_hub_onnx_folder_teaches_with_its_own_tokenizer(hub_folders):
    teacher = load_teacher(hub_folders.hub_onnx, 22)
    assert teacher.hub is not None and teacher.hub.folder.onnx_file == "onnx/model.onnx"
    assert teacher.tokenizer is not None and teacher.tokenizer.kind == "wordpiece"
    logits = teacher.score(["red running shoes", "where is my order"], lambda n: None)
    assert logits.shape == (2, 22)
