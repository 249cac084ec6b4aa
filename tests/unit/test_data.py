"""Tokenizer (must match MediaPipe's RegexTokenizer), datasets, calibration draws."""

import numpy as np
import pytest

from toolchain import data as d
from toolchain.base.errors import DataError, InputFileError

VOCAB = {"<PAD>": 0, "<START>": 1, "<UNKNOWN>": 2, "red": 3, "shoes": 4, "where's": 5, "my": 6, "order": 7}


def test_split_matches_the_on_device_regex():
    # RE2's \w is ASCII: accented letters split like any delimiter; apostrophes stay inside words.
    assert d.split_words("Where's MY order?!") == ["where's", "my", "order"]
    assert d.split_words("  red--shoes, size_10 ") == ["red", "shoes", "size_10"]
    assert d.split_words("café") == ["caf"]
    assert d.split_words("???") == []


def test_encode_start_unknown_pad_and_truncate():
    tok = d.Tokenizer(VOCAB, 5)
    assert tok.encode("red shoes").tolist() == [1, 3, 4, 0, 0]
    assert tok.encode("red boots").tolist() == [1, 3, 2, 0, 0]
    assert tok.encode("red shoes red shoes red shoes").tolist() == [1, 3, 4, 3, 4]
    assert tok.encode("").tolist() == [1, 0, 0, 0, 0]
    assert tok.encode_batch(["red", "my order"]).dtype == np.int32


def test_vocab_must_follow_the_mediapipe_convention(tmp_path):
    with pytest.raises(DataError, match="<PAD> to 0"):
        d.Tokenizer({"<START>": 1, "<UNKNOWN>": 2, "<PAD>": 3}, 8)
    tok = d.Tokenizer(VOCAB, 8)
    tok.save_vocab(tmp_path / "vocab.txt")
    assert (tmp_path / "vocab.txt").read_text().splitlines()[:3] == ["<PAD> 0", "<START> 1", "<UNKNOWN> 2"]
    assert d.load_vocab(tmp_path / "vocab.txt") == VOCAB


def test_build_vocab_is_deterministic_and_frequency_ordered():
    texts = ["b a", "a c", "a b", "c"]
    vocab = d.build_vocab(texts)
    assert list(vocab)[3:] == ["a", "b", "c"]
    assert d.build_vocab(list(reversed(texts))) == vocab
    assert "c" not in d.build_vocab(["a a b b c"], min_count=2)
    # coverage: the most frequent words that make up that share of the 10 words (a 4, b 3, c 2, d 1)
    words = ["a a a a b b b c c d"]
    assert list(d.build_vocab(words, coverage=0.7))[3:] == ["a", "b"]
    assert list(d.build_vocab(words, coverage=0.71))[3:] == ["a", "b", "c"]
    assert list(d.build_vocab(words, max_size=4, coverage=1.0))[3:] == ["a"]


def test_load_queries_jsonl_csv_and_errors(tmp_path):
    j = tmp_path / "q.jsonl"
    j.write_text('{"text": "red shoes", "intent": "search"}\n\n{"text": "hi", "intent": "chat"}\n')
    qs = d.load_queries(j)
    assert qs.texts == ["red shoes", "hi"] and qs.labels == ["search", "chat"]
    c = tmp_path / "q.csv"
    c.write_text("text\nred shoes\n")
    assert d.load_queries(c).labels is None
    with pytest.raises(InputFileError, match="not found"):
        d.load_queries(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\nnot json\n')
    with pytest.raises(DataError, match="bad.jsonl:2: not valid JSON"):
        d.load_queries(bad)
    nofield = tmp_path / "nofield.jsonl"
    nofield.write_text('{"query": "x"}\n')
    with pytest.raises(DataError, match="no string field 'text'"):
        d.load_queries(nofield)
    with pytest.raises(DataError, match="not in the model's label list: chat"):
        qs.label_ids(["search"])


def test_calibration_draw_is_seeded_and_refuses_too_little(tmp_path):
    path = tmp_path / "cal.jsonl"
    path.write_text("".join(f'{{"text": "red shoes {i}"}}\n' for i in range(30)) + '{"text": "!!!"}\n')
    qs = d.load_queries(path)
    tok = d.Tokenizer(VOCAB, 6)
    a, warn = d.representative_ids(qs, tok, samples=10, minimum=5, seed=1)
    b, _ = d.representative_ids(qs, tok, samples=10, minimum=5, seed=1)
    assert a.shape == (10, 6) and np.array_equal(a, b) and warn == []
    _, warn = d.representative_ids(qs, tok, samples=100, minimum=5, seed=1)
    assert "has 30" in warn[0]  # the punctuation-only query is not usable
    with pytest.raises(DataError, match="too little calibration data: 30 usable queries"):
        d.representative_ids(qs, tok, samples=100, minimum=31, seed=1)
