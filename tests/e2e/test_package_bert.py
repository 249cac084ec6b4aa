"""BERT (WordPiece) packaging in MediaPipe 0.10.21's own TextClassifier / TextEmbedder, and tokenizer parity.

The model is a Hugging Face-shaped BERT TFLite (tests/fixtures/bert_tflite.py: int64 input_ids /
attention_mask / token_type_ids, WordPiece vocab, tokenizer.json), int8 with an INT8 output. The build
directory (model.tflite, tokenizer.json, vocab.txt, labels.txt, recipe.yaml, report.json with tokenizer
kind `wordpiece`) is assembled here and read back by `load_build`; tests/e2e/test_package_bert_onnx.py
packages real `edgecomp convert` builds of the transformers-exported fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from converters.tflite_model import parse_tflite
from tests.fixtures.bert_tflite import SEQ_LEN, make_bert_tflite, read_split
from toolchain.base.errors import GateFailed
from toolchain.base.progress import SilentProgress
from toolchain.base.types import PackageFormat
from toolchain.build import Build, load_build, sha256_bytes
from toolchain.package.bundle import run_package
from toolchain.package.types import PackageOptions, PackageSplits, PackageValues
from toolchain.recipe.compose import recipe_from_dict

pytestmark = pytest.mark.slow

# One query per known divergence (toolchain/tokenizers/parity.py names them).
TRICKY = {
    "accent": "café shoes",
    "non_ascii_uppercase": "Éclair phone",
    "unicode_whitespace": "red\u00a0dress",
    "format_char": "red\u200bdress",
    "long_word": "é" * 60 + " shoes",
}


def _build(root: Path, task: str, test_texts: list[str]) -> Build:
    fx = make_bert_tflite(root, task, int8=True)
    model = fx.model.read_bytes()
    (root / "model.tflite").write_bytes(model)
    texts, intents = read_split("test")
    label_of = dict(zip(texts, intents, strict=True))
    rows = [{"text": t, "intent": label_of.get(t, intents[0])} for t in test_texts]
    (root / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    recipe = recipe_from_dict(
        {
            "name": f"bert-{task}",
            "source": {"path": str(fx.model), "task": task},
            "data": {"test": str(root / "test.jsonl")},
        }
    )
    (root / "recipe.yaml").write_text(recipe.to_yaml(), encoding="utf-8")
    info = parse_tflite(model)
    vocab = fx.vocab.read_text(encoding="utf-8").splitlines()
    report = {
        "edgecomp_version": "test",
        "name": recipe.name,
        "task": task,
        "model_sha256": sha256_bytes(model),
        "source": {"path": str(fx.model), "format": "onnx", "sha256": sha256_bytes(model), "parameters": 0}
        | {"fp32_tflite_bytes": len(model), "fp32_tflite_gzip_bytes": len(model)},
        "tokenizer": {"kind": "wordpiece", "seq_len": SEQ_LEN, "lowercase": True, "vocab_size": len(vocab)},
        "labels": fx.labels or [],
        "steps": [],
        "quantization": {"mode": "int8"},
        "model": info.summary(),
        "ratios_vs_fp32": {"size": 1.0, "gzip": 1.0},
        "evaluation": {},
        "warnings": [],
        "timings_s": {},
    }
    (root / "report.json").write_text(json.dumps(report), encoding="utf-8")
    build = load_build(root)  # the wordpiece tokenizer comes back from tokenizer.json
    assert build.tokenizer is not None and build.tokenizer.kind == "wordpiece"
    return build


def _package(build: Build, tmp: Path, max_mismatch: float | None = None):
    values = PackageValues(
        format=PackageFormat.MEDIAPIPE,
        name=build.recipe.name,
        version="1.0.0",
        description="BERT test",
        author="t",
        license="MIT",
        min_confidence_accuracy=0.5,
        max_tokenizer_mismatch=max_mismatch,
    )
    (tmp / "work").mkdir(exist_ok=True)
    splits = PackageSplits(val=None, test=build.recipe.data.test)
    opts = PackageOptions(out_dir=tmp / "dist", timeout_s=600)
    return run_package(build, values, None, splits, opts, tmp / "work", SilentProgress())


def test_bert_classifier_packages_for_textclassifier_with_exact_parity(tmp_path: Path) -> None:
    texts = read_split("test")[0] + list(TRICKY.values())
    build = _build(tmp_path / "build", "classification", texts)
    result = _package(build, tmp_path)
    m = result.manifest
    parity = m.parity
    for feed in (parity.raw, parity.lowercased):  # MediaPipe's own TextClassifier, every query
        assert feed.queries == len(texts) and feed.agreement == 1.0, feed
    assert parity.int32_inputs == ["input_ids", "attention_mask", "token_type_ids"]
    assert parity.dequantized_outputs and parity.tie_break is not None
    assert m.model.inputs and all(i.dtype == "INT32" for i in m.model.inputs)
    meta = json.loads((result.bundle_dir / "metadata.json").read_text())
    tensors = meta["subgraph_metadata"][0]["input_tensor_metadata"]
    assert [t["name"] for t in tensors] == ["ids", "mask", "segment_ids"]
    unit = meta["subgraph_metadata"][0]["input_process_units"][0]
    assert unit["options_type"] == "BertTokenizerOptions"
    assert unit["options"]["vocab_file"][0]["name"] == "vocab.txt"
    from toolchain.package.inspect import inspect_model

    checked = inspect_model(result.bundle_dir / "bert-classification.tflite")
    assert checked.ok, [c for c in checked.checks if not c.ok]
    assert checked.metadata.tokenizer.kind == "bert" and checked.metadata.vocab_size == len(
        (build.dir / "vocab.txt").read_text().splitlines()
    )
    assert m.tokenizer.app_must_lowercase is False
    assert "classifier.classify(query)" in (result.bundle_dir / "README.md").read_text()
    tok = m.tokenizer_parity
    assert tok.queries == len(texts) and tok.differing == len(TRICKY)
    assert {c: n for c, n in tok.by_cause.items() if n} == dict.fromkeys(TRICKY, 1)
    for cause, text in TRICKY.items():
        assert tok.examples[cause][0].text == text
    effect = tok.effect
    assert 0.3 < effect.train_ids_accuracy <= 1.0 and effect.flipped_predictions <= len(TRICKY)
    section = json.loads((build.dir / "report.json").read_text())["package"]
    assert section["tokenizer_parity"]["differing"] == len(TRICKY)
    assert section["parity"] == {"lowercased": 1.0, "raw": 1.0}


def test_plain_ascii_queries_have_no_tokenizer_differences_and_the_gate(tmp_path: Path) -> None:
    texts = read_split("test")[0]
    assert all(t.isascii() for t in texts)
    build = _build(tmp_path / "build", "classification", texts[:200] + list(TRICKY.values()))
    with pytest.raises(GateFailed, match=r"other ids than training on 5 of 205 queries") as err:
        _package(build, tmp_path, max_mismatch=0.01)
    assert err.value.exit_code == 1 and not (tmp_path / "dist").exists()
    from toolchain.package.mediapipe import device_tokenizer
    from toolchain.package.tokenizer import train_encoder
    from toolchain.tokenizers.parity import tokenizer_parity

    encode, side = train_encoder(build)
    assert side.startswith("Hugging Face tokenizers")
    report = tokenizer_parity(encode, device_tokenizer(build), texts)
    assert report.total == 748 and report.differing == 0


def test_bert_embedder_packages_for_textembedder(tmp_path: Path) -> None:
    texts = read_split("test")[0][:300] + list(TRICKY.values())
    build = _build(tmp_path / "build", "embedding", texts)
    m = _package(build, tmp_path).manifest
    assert m.task == "embedder" and m.parity.task.startswith("TextEmbedder")
    step = build.tflite.tensors[build.tflite.outputs[0]].scales[0]
    for vec in (m.parity.raw, m.parity.lowercased):
        assert vec.queries == len(texts) and vec.min_cosine >= 0.999 and vec.max_abs_diff <= step
    assert m.tokenizer_parity.differing == len(TRICKY)
    assert m.tokenizer_parity.effect.min_cosine_train_vs_device_ids < 0.999  # the skew shows
