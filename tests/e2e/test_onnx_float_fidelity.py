"""A float conversion that does not compute what onnxruntime computes is refused, never written.

onnx2tf mistook the sequence axis for the hidden one on a BERT whose hidden size equals the query length
(hidden 32 at 32 tokens): the float32 TFLite agreed with onnxruntime on 0.1% of the queries, mean cosine
-0.42, and the build was written with exit 0 because no user gate was set. At 24 tokens it is exact.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from toolchain.cli.main import app

pytestmark = pytest.mark.slow
EXAMPLE_TEST = Path(__file__).resolve().parents[2] / "examples" / "shopping_intent" / "data" / "test.jsonl"


def _hidden_32_bert(bert_models, out: Path) -> Path:
    """An untrained 1-layer BertForSequenceClassification, hidden 32, on the fixture's tokenizer."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    from tests.fixtures.common import export_onnx
    from tests.fixtures.make_bert_models import INPUTS, logits_only

    out.mkdir()
    for f in bert_models.classifier.iterdir():
        if f.is_file() and f.name != "model.onnx":
            shutil.copy(f, out / f.name)
    labels = [x for x in (out / "labels.txt").read_text("utf-8").splitlines() if x]
    tok = PreTrainedTokenizerFast.from_pretrained(str(out))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=len(labels),
    )
    model = BertForSequenceClassification(config).eval()
    batch = tok(
        ["red shoes"], padding="max_length", max_length=32, return_tensors="pt", return_token_type_ids=True
    )
    with torch.no_grad():
        export_onnx(
            logits_only(model), tuple(batch[k] for k in INPUTS), INPUTS, "logits", out / "model.onnx", True
        )
    return out


def test_a_wrong_float_conversion_is_refused_and_another_length_converts(bert_models, tmp_path):
    model = _hidden_32_bert(bert_models, tmp_path / "h32")
    args = ["convert", str(model), "--test", str(EXAMPLE_TEST), "-Q", "float32"]
    bad = CliRunner().invoke(app, [*args, "--seq-len", "32", "--out", str(tmp_path / "b32")])
    assert bad.exit_code == 3, bad.output[-1500:]
    assert "does not compute what onnxruntime computes" in bad.output and "--seq-len" in bad.output
    assert not (tmp_path / "b32").exists()  # nothing written
    good = CliRunner().invoke(app, [*args, "--seq-len", "24", "--out", str(tmp_path / "b24")])
    assert good.exit_code == 0, good.output[-1500:]
    assert (tmp_path / "b24" / "model.tflite").is_file()
