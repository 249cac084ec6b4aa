"""Issue 24: Hugging Face folders as users bring them convert given only the folder and data.

The folders are tests/fixtures/make_hub_folders.py's (transformers' own classes, save_pretrained). Each is
exported by edgecomp in its isolated PyTorch environment (real torch, real child process), checked
against PyTorch on the test split (the report's `hub` section), then converted by the ONNX route in
dynamic mode and evaluated against onnxruntime. The exports are cached by content in the edgecomp cache
dir: only the first run on a machine starts PyTorch to export.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from toolchain.cli.main import app
from toolchain.recipe.compose import recipe_from_dict
from toolchain.report.model import Report
from toolchain.sources.loaded import load_source

pytestmark = pytest.mark.slow
DATA = Path(__file__).resolve().parents[2] / "examples" / "shopping_intent" / "data"


def _convert(folder: Path, out: Path, *flags: str) -> tuple[Report, str]:
    args = ["convert", str(folder), "--test", str(DATA / "test.jsonl"), "--out", str(out), *flags]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return Report.model_validate_json((out / "report.json").read_text()), result.output


def test_two_input_distilbert_folder_converts(hub_folders, tmp_path):
    report, output = _convert(hub_folders.distilbert, tmp_path / "distilbert", "--quantize", "dynamic")
    hub = report.hub
    assert hub is not None and hub.exported and hub.folder.kind == "transformers"
    assert hub.folder.inputs == ["input_ids", "attention_mask"] and len(report.model.inputs) == 2
    parity = hub.parity
    assert parity is not None and parity.metric == "max_abs_error" and parity.passed
    assert parity.value < 1e-4 and parity.queries == 748 and "test.jsonl" in parity.split
    assert "ONNX vs PyTorch: max_abs_error" in output
    assert "transformers folder (DistilBertForSequenceClassification): exported at 32 tokens" in (
        (tmp_path / "distilbert" / "report.md").read_text()
    )
    assert report.task == "classification" and len(report.labels) == 22
    assert report.labels[0] == "product_search_category"  # from config.json id2label
    compared = report.evaluation.vs_source_float
    assert compared is not None
    assert compared.reference.accuracy == pytest.approx(
        hub_folders.facts["distilbert_test_accuracy"], abs=2e-3
    )
    assert report.evaluation.onnx_reference.top1_agreement >= 0.98


def test_three_input_bert_folder_exports_within_the_limit(hub_folders):
    """The BERT folder's export and parity (its ONNX converts like tests/e2e/test_wordpiece_models.py's
    BERT; the same graph from the Hub layout converts in test_hub_layouts.py)."""
    loaded = _load(hub_folders.bert)
    hub = loaded.hub
    assert hub is not None and hub.folder.inputs == ["input_ids", "attention_mask", "token_type_ids"]
    assert [i.name for i in loaded.model.inputs] == hub.folder.inputs
    assert hub.parity is not None and hub.parity.value < 1e-4 and hub.parity.queries == 748
    assert loaded.labels == hub.folder.labels and len(loaded.labels) == 22


def _load(folder: Path):
    spec = {"source": {"path": str(folder)}, "data": {"test": str(DATA / "test.jsonl")}}
    return load_source(recipe_from_dict({**spec, "quantization": {"mode": "float32"}}))


def test_sentence_transformers_folder_converts(hub_folders, tmp_path):
    report, _ = _convert(hub_folders.sentence, tmp_path / "st", "--quantize", "dynamic")
    hub = report.hub
    assert hub is not None and hub.folder.kind == "sentence-transformers"
    assert (hub.folder.pooling, hub.folder.normalize, hub.folder.output) == (
        "mean",
        True,
        "sentence_embedding",
    )
    assert hub.seq_len == 32 and hub.folder.seq_len_from == "sentence_bert_config.json max_seq_length"
    parity = hub.parity
    assert parity is not None and parity.metric == "min_cosine" and parity.value >= 0.9999
    assert report.task == "embedding" and report.labels == []
    ref = report.evaluation.onnx_reference
    assert ref.mean_cosine >= 0.999 and ref.min_cosine >= 0.99
    import onnxruntime as ort  # reason: the exported graph itself normalises (Normalize, modules.json)

    sess = ort.InferenceSession(hub.onnx_file, providers=["CPUExecutionProvider"])
    ids = np.array([[2, 40, 50, 3] + [0] * 28], dtype=np.int64)
    mask = (ids > 0).astype(np.int64)
    vec = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
    assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)


def test_second_build_reuses_the_export_and_torch_outputs(hub_folders, tmp_path):
    """The same folder and queries again: nothing starts PyTorch (the section says so)."""
    first = _load(hub_folders.distilbert).hub
    again = _load(hub_folders.distilbert).hub
    assert first is not None and again is not None
    assert again.export_from_cache and again.parity is not None and again.parity.torch_from_cache
    assert again.parity.value == first.parity.value  # type: ignore[union-attr]


def test_inspect_folder(hub_folders):
    result = CliRunner().invoke(app, ["inspect", str(hub_folders.sentence), "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["kind"] == "sentence-transformers" and found["architecture"] == "BertModel"
    assert found["tokenizer"] == "wordpiece" and found["pooling"] == "mean" and found["normalize"] is True
    assert found["weights"] == ["model.safetensors"] and found["labels"] == []
    result = CliRunner().invoke(app, ["inspect", str(hub_folders.distilbert)])
    assert result.exit_code == 0, result.output
    for text in ("DistilBertForSequenceClassification", "input_ids, attention_mask", "22: product_search"):
        assert text in result.output
    result = CliRunner().invoke(app, ["inspect", str(hub_folders.pickle)])
    assert "pytorch_model.bin is a pickle: convert needs --trust-model-code" in result.output
