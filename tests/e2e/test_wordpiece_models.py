"""BERT-class models end to end: Hugging Face-style folders with their own WordPiece tokenizer.

The `bert_models` fixture (tests/fixtures/make_bert_models.py): a BertForSequenceClassification with its
own WordPiece vocab, exported the way transformers models are (int64 input_ids, attention_mask,
token_type_ids -> logits), and a mean-pooling BertModel embedder (-> sentence_embedding), each a Hugging
Face-style folder. Real onnx2tf, real onnxruntime and LiteRT; no mocks.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.support.builds import copy_build
from toolchain.build import load_build
from toolchain.cli.main import app
from toolchain.data import load_queries

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "shopping_intent" / "data"


def _run(*args: str) -> dict:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def _convert(source: Path, out: Path, *flags: str) -> dict:
    return _run("convert", str(source), "--seq-len", "32", "--out", str(out), "--json", *flags)


@pytest.fixture(scope="module")
def bert_builds(
    bert_models, bert_int8_classifier, bert_dynamic_classifier, tmp_path_factory
) -> dict[str, Path]:
    """float32 from the Hugging Face folder (tokenizer.json from the folder, labels from config.json's
    id2label), int8 with selective float fallback (--tokenizer, --labels, recipe; shared with
    test_package_bert_onnx, conftest), dynamic (--vocab; shared with test_distill_foreign_teacher)."""
    root = tmp_path_factory.mktemp("bert")
    clf = bert_models.classifier
    test, cal = str(DATA / "test.jsonl"), str(DATA / "train.jsonl")
    folder = root / "intent-bert"
    shutil.copytree(clf, folder)
    (folder / "labels.txt").unlink()
    _convert(folder, root / "fp32", "--test", test, "--calibration", cal, "-Q", "float32")
    # copies of the shared builds: validate, profile and package record their sections in the build
    return {
        "fp32": root / "fp32",
        "int8": copy_build(bert_int8_classifier, root),
        "dynamic": copy_build(bert_dynamic_classifier, root),
    }


@pytest.mark.slow
def test_float32_matches_onnxruntime_with_the_models_own_tokenizer(bert_builds):
    b = load_build(bert_builds["fp32"])
    ev = b.report.evaluation.model_dump()
    ref, cmp = ev["onnx_reference"], ev["vs_source_float"]
    assert ref["max_abs_error"] < 1e-4 and ref["top1_agreement"] == 1.0 and ref["queries"] == 748
    assert b.report.quantization.fused_gelu == b.report.model.ops["GELU"] == 2  # within 1e-4, fused
    assert cmp["converted"]["accuracy"] == cmp["reference"]["accuracy"] > 0.8
    tok = b.report.tokenizer.model_dump()
    assert tok["kind"] == "wordpiece" and tok["seq_len"] == 32 and tok["lowercase"] is True
    assert tok["special_tokens"]["[PAD]"] == 0 and tok["special_tokens"]["[CLS]"] == 2
    assert b.tokenizer is not None and b.tokenizer.kind == "wordpiece" and b.tokenizer_kind == "wordpiece"
    assert (b.dir / "tokenizer.json").is_file() and b.vocab_path.read_text().splitlines()[:3] == [
        "[PAD]",
        "[UNK]",
        "[CLS]",
    ]
    feeds = b.eval_set("test", limit=4).feeds  # every input bound by name, int64 as exported
    assert set(feeds) == {"input_ids", "attention_mask", "token_type_ids"}
    assert feeds["input_ids"].dtype == np.int64 and (feeds["input_ids"][:, 0] == 2).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["int8", "dynamic"])
def test_quantized_builds_validate_profile_and_package(bert_builds, tmp_path, name):
    build_dir = bert_builds[name]
    report = json.loads((build_dir / "report.json").read_text())
    cmp = report["evaluation"]["vs_source_float"]
    assert cmp["accuracy_drop_points"] <= 1.5, cmp
    ops = report["model"]["ops"]  # both layers' Erf-GELU chains (24 ops each) are one GELU op each
    assert report["quantization"]["fused_gelu"] == ops["GELU"] == 2 and "EXP" not in ops and "ABS" not in ops
    if name == "int8":
        assert report["quantization"]["full_integer"] is False and report["model"]["ops"]["FULLY_CONNECTED"]
    else:
        assert report["tokenizer"]["source"].endswith("vocab.txt")  # a BERT vocab.txt -> wordpiece
    val = _run("validate", str(build_dir), "-d", "x86-host", "--limit", "60", "--json")
    dev = val["devices"]["x86-host"]
    assert val["passed"] and dev["metrics"]["top1_agreement"] == 1.0
    prof = _run("profile", str(build_dir), "--runs", "5", "--warmup", "1", "--processes", "1", "--json")
    assert "real queries" in prof["input_source"]
    rows = prof["methods"][0]["ops"]  # per-op rows for the encoder (XNNPACK operators or TFLite nodes)
    assert len(rows) >= 10 and any("fully" in r["name"].lower() for r in rows), [r["name"] for r in rows]
    _run("package", str(build_dir), "--format", "edge", "--out", str(tmp_path / "dist"), "--json")
    pkg = json.loads((build_dir / "report.json").read_text())["package"]
    assert pkg["format"] == "edge" and Path(pkg["zip"]).is_file()


@pytest.mark.slow
def test_folder_forms(bert_models, bert_builds, tmp_path):
    """`edgecomp convert folder/`: tokenizer.json from the folder, labels from config.json's id2label (the
    classifier is bert_builds' float32 build, converted from its folder without labels.txt)."""
    labels = (bert_models.classifier / "labels.txt").read_text().split()
    clf = json.loads((bert_builds["fp32"] / "report.json").read_text())
    assert clf["task"] == "classification" and clf["labels"] == labels
    assert clf["evaluation"]["onnx_reference"]["max_abs_error"] < 1e-4
    assert clf["evaluation"]["onnx_reference"]["top1_agreement"] == 1.0
    test = str(DATA / "test.jsonl")
    emb = _convert(bert_models.embedder, tmp_path / "emb", "--test", test, "-Q", "float32", "--no-fuse-gelu")
    ref = emb["evaluation"]["onnx_reference"]
    assert emb["task"] == "embedding" and ref["queries"] == 200 and ref["min_cosine"] >= 0.9999
    ops = emb["model"]["ops"]  # --no-fuse-gelu: the converter's graph, each Erf as 24 elementwise ops
    assert "GELU" not in ops and ops["EXP"] == ops["ABS"] == 2 and "fused_gelu" not in emb["quantization"]
    assert load_build(tmp_path / "emb").recipe.conversion.fuse_gelu is False
    b = load_build(tmp_path / "emb")
    assert b.labels is None and b.recipe.source.task == "embedding" and b.tokenizer.kind == "wordpiece"


@pytest.mark.slow
def test_smooth_moves_outliers_into_the_weights_and_keeps_the_float_model(bert_models, tmp_path):
    """`-Q dynamic --smooth 0.3` on the BERT embedder: one MUL per dense-layer input (2 layers x 4), the
    float effect measured on the calibration queries (rounding only), the dynamic build still within a
    cosine of 0.999 of onnxruntime, and the recipe replays it (quantization.smooth)."""
    test, cal = str(DATA / "test.jsonl"), str(DATA / "train.jsonl")
    flags = ["--test", test, "--calibration", cal, "-Q", "dynamic", "--smooth", "0.3"]
    report = _convert(bert_models.embedder, tmp_path / "sq", *flags)
    sm = report["quantization"]["smoothing"]
    assert sm["changed"] and sm["alpha"] == 0.3 and sm["inputs_smoothed"] == 8 and sm["dense_layers"] == 12
    assert sm["float_max_abs_diff"] < 1e-4 and sm["queries"] > 0
    assert "graph_preparation" not in report["quantization"]  # dynamic: the mask constant is left alone
    assert report["evaluation"]["onnx_reference"]["mean_cosine"] >= 0.999
    assert load_build(tmp_path / "sq").recipe.quantization.smooth == 0.3


@pytest.mark.slow
def test_no_tokenizer_float_works_and_int8_is_refused(bert_models, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(bert_models.embedder / "model.onnx", bare / "embedder.onnx")
    report = _convert(bare / "embedder.onnx", tmp_path / "b", "--task", "embedding", "-Q", "float32")
    ref = report["evaluation"]["onnx_reference"]
    assert report["tokenizer"]["kind"] == "none" and ref["min_cosine"] >= 0.9999
    assert "random token ids" in report["evaluation"]["split"]
    assert any("no tokenizer" in w for w in report["warnings"])
    b = load_build(tmp_path / "b")
    assert b.tokenizer is None and "no tokenizer" in b.eval_set("test").source
    result = CliRunner().invoke(
        app, ["convert", str(bare / "embedder.onnx"), "--seq-len", "32", "-Q", "int8"]
    )
    assert result.exit_code != 0
    assert "int8 calibrates on real queries" in result.output and "--tokenizer" in result.output


@pytest.mark.slow
def test_the_onnx_int8_report_names_its_flips(bert_builds):
    """ONNX path: the flips vs the source come with their test queries (logits softmaxed for "sure")."""
    b = load_build(bert_builds["int8"])
    cmp, by = b.report.evaluation.vs_source_float, b.report.evaluation.by_stage
    f = cmp.flips
    assert f is not None and f.total == by.disagreements_vs_source.total == f.where_sure + f.where_unsure
    texts = set(load_queries(DATA / "test.jsonl", "text").texts)
    assert all(x.text in texts and x.source != x.converted for x in f.most_confident)
    assert 0 < f.sure_queries <= cmp.queries and f.sure_min_prob == 0.95
