"""The tokenizer interface without models: kinds, detection, binding to model inputs, save/load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from toolchain import data as d
from toolchain.base.errors import DataError
from toolchain.base.types import TokenizerKind
from toolchain.tokenizers import sources
from toolchain.tokenizers.binding import ModelInput, bind_inputs, canonical_name
from toolchain.tokenizers.regex import RegexTokenizer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "shopping_intent"
BERT_VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "red",
    "run",
    "##ning",
    "shoe",
    "##s",
    "cafe",
    "café",
]


@pytest.fixture
def bert_vocab(tmp_path) -> Path:
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(BERT_VOCAB) + "\n")
    return path


def test_a_bert_vocab_is_wordpiece_and_encodes_like_bert(bert_vocab):
    tok = sources.vocab_tokenizer(bert_vocab, 8)
    assert tok.kind == "wordpiece"
    enc = tok.encode_batch(["Red running shoes xyz", "a b c d e f g h"])
    assert enc["input_ids"][0].tolist() == [2, 5, 6, 7, 8, 9, 1, 3]  # [CLS] ... [UNK] [SEP]
    assert enc["input_ids"][1].tolist() == [2, 1, 1, 1, 1, 1, 1, 3]  # truncated: [SEP] stays last
    short = tok.encode_batch(["red"])
    assert short["input_ids"][0].tolist() == [2, 5, 3, 0, 0, 0, 0, 0]
    assert short["attention_mask"][0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    assert short["token_type_ids"].max() == 0 and short["input_ids"].dtype == np.int32
    info = tok.describe()
    assert info["lowercase"] is True and info["strip_accents"] is True and info["vocab_size"] == 12
    assert info["special_tokens"] == {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}
    assert tok.encode_batch(["Café"])["input_ids"][0, 1] == 10  # BERT-uncased strips the accent


def test_tokenizer_config_can_keep_case_and_accents(bert_vocab):
    (bert_vocab.parent / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False}))
    tok = sources.vocab_tokenizer(bert_vocab, 8)
    assert tok.describe()["lowercase"] is False
    assert tok.encode_batch(["café Red"])["input_ids"][0, 1:3].tolist() == [11, 1]


def test_a_regex_vocab_stays_regex_with_todays_ids():
    tok = sources.vocab_tokenizer(EXAMPLE / "vocab.txt", 16)
    words = d.Tokenizer(d.load_vocab(EXAMPLE / "vocab.txt"), 16)
    assert isinstance(tok, RegexTokenizer) and tok.kind == "regex"
    texts = ["red running shoes under 50", "where's my order?"]
    enc = tok.encode_batch(texts)
    assert np.array_equal(enc["input_ids"], words.encode_batch(texts))
    assert np.array_equal(enc["attention_mask"], (enc["input_ids"] != 0).astype(np.int32))
    assert tok.describe()["kind"] == "regex" and tok.describe()["delimiter"] == d.DELIM_REGEX


def test_wordpiece_refusals(tmp_path, bert_vocab):
    with pytest.raises(DataError, match=r"maps \[PAD\] to 4"):
        moved = tmp_path / "moved"
        moved.mkdir()
        (moved / "vocab.txt").write_text("\n".join([*BERT_VOCAB[1:5], "[PAD]", *BERT_VOCAB[5:]]) + "\n")
        sources.vocab_tokenizer(moved / "vocab.txt", 8)
    from tokenizers import Tokenizer, models

    bpe = tmp_path / "bpe.json"
    Tokenizer(models.BPE()).save(str(bpe))
    with pytest.raises(DataError, match="has no pad token"):  # BPE is read as SentencePiece-style now
        sources.find_tokenizer(bpe, None, tmp_path / "m.onnx", 8)
    Tokenizer(models.WordLevel({"a": 0}, unk_token="a")).save(str(bpe))
    with pytest.raises(DataError, match="is a WordLevel tokenizer, not WordPiece"):
        sources.find_tokenizer(bpe, None, tmp_path / "m.onnx", 8)


def test_saved_tokenizers_load_back_as_the_same_kind(tmp_path, bert_vocab):
    for tok in (sources.vocab_tokenizer(bert_vocab, 8), sources.vocab_tokenizer(EXAMPLE / "vocab.txt", 16)):
        out = tmp_path / tok.kind
        out.mkdir()
        files = tok.save(out)
        back = sources.load_saved(out, TokenizerKind(tok.kind), tok.seq_len)
        assert back is not None and back.kind == tok.kind and sorted(files) == sorted(tok.describe()["files"])
        texts = ["Red running shoes", "café"]
        assert all(np.array_equal(tok.encode_batch(texts)[k], v) for k, v in back.encode_batch(texts).items())
    assert (tmp_path / "wordpiece" / "vocab.txt").read_text().splitlines() == BERT_VOCAB
    assert sources.load_saved(tmp_path, TokenizerKind.NONE, 8) is None


def test_binding_by_name_alias_and_dtype():
    enc = {"input_ids": np.ones((2, 4), np.int32), "attention_mask": np.zeros((2, 4), np.int32)}
    enc["token_type_ids"] = np.full((2, 4), 7, np.int32)
    assert canonical_name("serving_default_input_word_ids:0") == "input_ids"
    model = [
        ModelInput("input_mask", "int64"),
        ModelInput("ids", "int32"),
        ModelInput("segment_ids", "int64"),
    ]
    bound = bind_inputs(enc, model)
    assert list(bound) == ["input_mask", "ids", "segment_ids"]
    assert bound["input_mask"].dtype == np.int64 and bound["segment_ids"].max() == 7
    single = bind_inputs(enc, [ModelInput("input_1", "int32")])  # a one-input model takes the ids
    assert single["input_1"].sum() == 8
    with pytest.raises(
        DataError, match=r"can fill model input\(s\) pixel_values: the tokenizer gives input_ids"
    ):
        bind_inputs(enc, [ModelInput("input_ids", "int64"), ModelInput("pixel_values", "float32")])


def test_folder_labels_from_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"id2label": {"1": "b", "0": "a", "10": "k"}}))
    assert sources.config_labels(tmp_path / "model.onnx") == ["a", "b", "k"]
    (tmp_path / "config.json").write_text(json.dumps({"id2label": {"0": "LABEL_0", "1": "LABEL_1"}}))
    assert sources.config_labels(tmp_path) is None  # transformers' placeholders: no labels


def test_unicode_words_keep_every_script():
    """UNICODE_DELIM_REGEX (RE2 `[^\\pL\\pN\\pM_']+`): letters, digits and combining marks of any script are
    word characters; the default ASCII delimiter drops Cyrillic and splits accented words."""
    text = "Доставляете в Казахстан? cafe\u0301 crème brûlée, नमस्ते O'Neil_2"
    assert d.split_words(text, d.UNICODE_DELIM_REGEX) == [
        "доставляете", "в", "казахстан", "cafe\u0301", "crème", "brûlée", "नमस्ते", "o'neil_2",
    ]  # fmt: skip
    assert d.split_words(text) == ["cafe", "cr", "me", "br", "l", "e", "o'neil_2"]
    tok = d.Tokenizer(d.build_vocab([text], delimiter=d.UNICODE_DELIM_REGEX), 8, d.UNICODE_DELIM_REGEX)
    assert tok.describe()["delimiter"] == d.UNICODE_DELIM_REGEX and 2 not in tok.encode(text)[1:]
    with pytest.raises(d.DataError, match="unknown word delimiter"):
        d.split_words(text, r"\s+")
