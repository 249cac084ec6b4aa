"""The BERT fixtures look like what users bring: a transformers export with its own WordPiece vocab.

What edgecomp must accept, checked on the files alone (onnx, tokenizers, onnxruntime; no edgecomp code):
three int64 inputs named as transformers names them, a BERT vocab ([PAD] = 0, [UNK], [CLS], [SEP], [MASK],
`##` subwords), a tokenizer.json that wraps text in [CLS] ... [SEP], config.json labels, a classifier that
is accurate in onnxruntime and an embedder that gives unit vectors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "shopping_intent"
SEQ_LEN = 32
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Measured: 0.906 (torch and onnxruntime agree) on test.jsonl; margin for another CPU's float rounding.
MIN_TEST_ACCURACY = 0.87


def _test_split() -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in (EXAMPLE / "data" / "test.jsonl").read_text().splitlines() if line]
    return [r["text"] for r in rows], [r["intent"] for r in rows]


def _encode(folder: Path, texts: list[str]) -> dict[str, np.ndarray]:
    """What a user's app does with tokenizer.json: pad/truncate to the static length, three int64 arrays."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_truncation(SEQ_LEN)
    tok.enable_padding(length=SEQ_LEN, pad_id=tok.token_to_id("[PAD]"), pad_token="[PAD]")
    enc = tok.encode_batch(texts)
    return {
        "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
    }


def _run(folder: Path, texts: list[str]) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    return sess.run(None, _encode(folder, texts))[0]


# ---- fast: the vocabulary learner alone (no torch) ---------------------------------------------------------


def test_wordpiece_vocab_is_bert_shaped_and_deterministic():
    from tests.fixtures.make_bert_models import bert_wordpiece, learn_wordpiece_vocab

    texts = ["Running shoes", "running socks", "Café shoes", "shoes, shoes!", "return my shoes"] * 3
    vocab = learn_wordpiece_vocab(texts, size=60)
    assert vocab == learn_wordpiece_vocab(list(reversed(texts)), size=60)  # ties never follow input order
    assert vocab[:5] == SPECIALS and len(vocab) == len(set(vocab)) <= 60
    assert "shoes" in vocab and "cafe" in vocab  # lower-cased, accents stripped: the tokenizer's own words
    assert any(t.startswith("##") and len(t) > 3 for t in vocab)  # merged subwords, not only characters
    tok = bert_wordpiece({t: i for i, t in enumerate(vocab)})
    assert tok.encode("running shoes").tokens == ["[CLS]", "running", "shoes", "[SEP]"]
    assert tok.encode("shoess").tokens == ["[CLS]", "shoes", "##s", "[SEP]"]


# ---- slow: the built folders -------------------------------------------------------------------------------


@pytest.mark.slow
# torch.onnx.export leaves the embedder's width symbolic (after the L2 normalisation's Div), as in users'
# sentence-embedding exports: the width is only known by running the model.
@pytest.mark.parametrize(
    ("name", "output", "width"), [("classifier", "logits", 22), ("embedder", "sentence_embedding", None)]
)
def test_onnx_has_three_int64_inputs_named_like_transformers(bert_models, name, output, width):
    import onnx

    model = onnx.load(str(getattr(bert_models, name) / "model.onnx"))
    assert {o.domain: o.version for o in model.opset_import}.get("") == 17
    inputs = [
        (i.name, i.type.tensor_type.elem_type, [d.dim_param for d in i.type.tensor_type.shape.dim])
        for i in model.graph.input
    ]
    want = [
        (n, onnx.TensorProto.INT64, ["batch", "sequence"])
        for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    assert inputs == want
    (out,) = model.graph.output
    assert out.name == output and out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    batch, last = out.type.tensor_type.shape.dim
    assert batch.dim_param == "batch"
    assert last.dim_value == width if width else last.dim_param and not last.dim_value


@pytest.mark.slow
@pytest.mark.parametrize("name", ["classifier", "embedder"])
def test_folder_is_a_hugging_face_bert_folder(bert_models, name):
    folder = getattr(bert_models, name)
    assert {"model.onnx", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "config.json"} <= {
        p.name for p in folder.iterdir()
    }
    vocab = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab[:5] == SPECIALS  # [PAD] at id 0, as in bert-base-uncased's vocab (there [UNK] is 100)
    subwords = [t for t in vocab if t.startswith("##")]
    assert len(subwords) > 500 and any(len(t) > 4 for t in subwords)
    assert 2000 <= len(vocab) <= 4000
    tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    assert (
        tokenizer["model"]["type"] == "WordPiece" and tokenizer["model"]["continuing_subword_prefix"] == "##"
    )
    assert tokenizer["model"]["vocab"] == {t: i for i, t in enumerate(vocab)}  # the two files agree
    assert tokenizer["normalizer"]["type"] == "BertNormalizer" and tokenizer["normalizer"]["lowercase"]
    assert tokenizer["pre_tokenizer"]["type"] == "BertPreTokenizer"
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "bert" and config["vocab_size"] == len(vocab)
    assert config["max_position_embeddings"] == 64 and config["hidden_size"] == 64


@pytest.mark.slow
def test_tokenizer_json_wraps_the_query_in_cls_and_sep(bert_models):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(bert_models.classifier / "tokenizer.json"))
    enc = tok.encode("Red running shoes under 50")
    assert enc.tokens == ["[CLS]", "red", "running", "shoes", "under", "50", "[SEP]"]
    assert enc.ids[0] == tok.token_to_id("[CLS]") == 2 and enc.ids[-1] == tok.token_to_id("[SEP]") == 3
    assert enc.type_ids == [0] * 7 and enc.attention_mask == [1] * 7
    pieces = tok.encode("Unbelievablecheapness").tokens[1:-1]  # an unseen word falls into ## subwords
    assert len(pieces) > 1 and all(p.startswith("##") for p in pieces[1:]) and "[UNK]" not in pieces
    padded = _encode(bert_models.classifier, ["red running shoes under 50"])
    assert padded["input_ids"].shape == (1, SEQ_LEN) and padded["input_ids"][0, 7:].tolist() == [0] * 25


@pytest.mark.slow
def test_classifier_config_labels_match_labels_txt(bert_models):
    labels = (bert_models.classifier / "labels.txt").read_text(encoding="utf-8").split()
    assert labels == (EXAMPLE / "labels.txt").read_text(encoding="utf-8").split()
    config = json.loads((bert_models.classifier / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {str(i): name for i, name in enumerate(labels)}
    assert config["label2id"] == {name: i for i, name in enumerate(labels)}


@pytest.mark.slow
def test_classifier_is_accurate_in_onnxruntime(bert_models):
    texts, intents = _test_split()
    labels = (bert_models.classifier / "labels.txt").read_text(encoding="utf-8").split()
    logits = _run(bert_models.classifier, texts)
    accuracy = float((logits.argmax(-1) == np.array([labels.index(i) for i in intents])).mean())
    assert accuracy > MIN_TEST_ACCURACY
    # tokenizer.json alone gives what transformers gave the build: the same accuracy to the example
    assert accuracy == pytest.approx(bert_models.facts["test_accuracy_onnxruntime"], abs=1e-9)
    assert bert_models.facts["max_abs_error"]["classifier"] < 1e-4


@pytest.mark.slow
def test_embedder_gives_unit_vectors_that_group_by_intent(bert_models):
    texts, intents = _test_split()
    emb = _run(bert_models.embedder, texts)
    assert emb.shape == (len(texts), 64) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    cos = emb @ emb.T
    same = np.equal.outer(intents, intents) & ~np.eye(len(texts), dtype=bool)
    assert cos[same].mean() > cos[~np.equal.outer(intents, intents)].mean() + 0.2
    assert bert_models.facts["max_abs_error"]["embedder"] < 1e-4


@pytest.mark.slow
def test_two_input_folders_are_distilbert_exports(two_input_models):
    """make_two_input_models.py: DistilBERT's two int64 inputs (no token_type_ids), its config and
    tokenizer class, accurate in onnxruntime; the embedder gives unit vectors."""
    import onnx
    import onnxruntime as ort

    texts, intents = _test_split()
    outputs = {}
    for name, arch, output in (
        ("classifier", "DistilBertForSequenceClassification", "logits"),
        ("embedder", "DistilBertModel", "sentence_embedding"),
    ):
        folder = getattr(two_input_models, name)
        model = onnx.load(str(folder / "model.onnx"))
        inputs = [(i.name, i.type.tensor_type.elem_type) for i in model.graph.input]
        assert inputs == [("input_ids", onnx.TensorProto.INT64), ("attention_mask", onnx.TensorProto.INT64)]
        assert [o.name for o in model.graph.output] == [output]
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        assert config["model_type"] == "distilbert" and config["architectures"] == [arch]
        tok_config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        assert tok_config["tokenizer_class"].startswith("DistilBertTokenizer")
        feeds = _encode(folder, texts)
        del feeds["token_type_ids"]
        sess = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        outputs[name] = sess.run(None, feeds)[0]
    labels = (two_input_models.classifier / "labels.txt").read_text(encoding="utf-8").split()
    accuracy = float(
        (outputs["classifier"].argmax(-1) == np.array([labels.index(i) for i in intents])).mean()
    )
    assert accuracy > MIN_TEST_ACCURACY  # measured 0.916
    assert accuracy == pytest.approx(two_input_models.facts["test_accuracy_onnxruntime"], abs=1e-9)
    np.testing.assert_allclose(np.linalg.norm(outputs["embedder"], axis=1), 1.0, atol=1e-5)
