"""MediaPipe's device BERT tokenizer, reproduced, and its parity with a Hugging Face WordPiece tokenizer.

The expectations in the device tests are derived by hand from the C++ rules listed in
toolchain/tokenizers/mediapipe_bert.py; the parity tests train a real WordPiece vocab with `tokenizers`
(BertNormalizer lowercase + strip_accents, as BERT uncased does) on the example's queries.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from toolchain.base.errors import DataError
from toolchain.tokenizers.mediapipe_bert import (
    PUNCT_RANGES,
    MediaPipeBertTokenizer,
    is_kept_delimiter,
    load_vocab_file,
    split_words,
)
from toolchain.tokenizers.parity import accuracy_effect, hf_train_encoder, tokenizer_parity

TRAIN = Path(__file__).resolve().parents[2] / "examples" / "shopping_intent" / "data" / "train.jsonl"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
HAND_VOCAB = [*SPECIALS, "run", "##ning", "running", "shoe", "##s", ",", "!", "$", "a", "##a", "é", "##é"]


def device(seq_len: int | None = 16, vocab: list[str] = HAND_VOCAB, **kw: bool) -> MediaPipeBertTokenizer:
    return MediaPipeBertTokenizer(vocab, seq_len, **kw)


# ---- the device tokenizer against hand-derived expectations ----


def test_punctuation_splits_and_longest_match_wordpiece() -> None:
    tok = device()
    assert tok.tokens("Running, SHOES!") == ["running", ",", "shoe", "##s", "!"]  # "running", not run ##ning
    assert tok.tokens("runs $run") == ["run", "##s", "$", "run"]  # ASCII symbols split too
    # one unmatched position makes the whole word one [UNK]; the pieces found before it are dropped
    assert tok.tokens("runx running") == ["[UNK]", "running"]


def test_word_limit_is_100_utf8_bytes() -> None:
    tok = device(seq_len=None)
    assert tok.tokens("a" * 100) == ["a"] + ["##a"] * 99
    assert tok.tokens("a" * 101) == ["[UNK]"]
    assert tok.tokens("é" * 50) == ["é"] + ["##é"] * 49  # 50 chars, 100 bytes: kept
    assert tok.tokens("é" * 50 + "a") == ["[UNK]"]  # 51 chars, 101 bytes
    assert tok.tokens("é" * 60) == ["[UNK]"]  # 60 chars, 120 bytes (Hugging Face counts 60 < 100)


def test_truncation_keeps_sep_last_and_pads_with_zero() -> None:
    tok = device(seq_len=4)
    out = tok.encode("a a a a")
    assert tok.model_tokens("a a a a") == ["[CLS]", "a", "a", "[SEP]"]
    assert out["input_ids"].tolist() == [2, 13, 13, 3]
    assert out["attention_mask"].tolist() == [1, 1, 1, 1]
    padded = device(seq_len=6).encode("a")
    assert padded["input_ids"].tolist() == [2, 13, 3, 0, 0, 0]
    assert padded["attention_mask"].tolist() == [1, 1, 1, 0, 0, 0]
    assert padded["token_type_ids"].tolist() == [0] * 6
    assert {v.dtype for v in padded.values()} == {np.dtype(np.int32)}
    assert device(seq_len=2).model_tokens("a a") == ["[CLS]", "[SEP]"]
    assert device(seq_len=None).encode("a a")["input_ids"].tolist() == [2, 13, 13, 3]  # dynamic: no padding
    with pytest.raises(ValueError, match="at least 2"):
        device(seq_len=1)


def test_a_special_token_missing_from_the_vocab_gets_id_0() -> None:
    tok = device(vocab=["[PAD]", "[CLS]", "[SEP]", "a"])  # no [UNK]: LookupId fails, the id stays 0
    assert tok.model_tokens("b a") == ["[CLS]", "[UNK]", "a", "[SEP]"]
    assert tok.ids("b a") == [1, 0, 3, 2]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a\tb\nc\rd\fe  f", ["a", "b", "c", "d", "e", "f"]),  # RE2 \s = [\t\n\f\r ]
        ("a\vb", ["a\vb"]),  # vertical tab is not RE2 \s
        ("a\u00a0b a\u3000b a\u2028b", ["a\u00a0b", "a\u3000b", "a\u2028b"]),  # Unicode spaces stay
        ("red\u200bdress soft\u00adware", ["red\u200bdress", "soft\u00adware"]),  # Cf stays in the word
        ("a\x07b", ["a\x07b"]),  # control chars are word characters
        ("a\x00b c", ["a"]),  # 0.10.21: the text ends at the first NUL
        ("日本語abc", ["日", "本", "語", "abc"]),  # CJK ideographs each a token
        ("カメラ", ["カメラ"]),  # katakana is not in the CJK ranges
        ("€5 $5 shoes\U0001f45f", ["€5", "$", "5", "shoes\U0001f45f"]),  # non-ASCII symbols stay
        ("«hi» ¿qué?—no", ["«", "hi", "»", "¿", "qué", "?", "—", "no"]),  # \p{P} splits
        ("ÉCLAIR İstanbul Café", ["Éclair", "İstanbul", "café"]),  # ASCII-only lower-casing
        ("e\u0301", ["e\u0301"]),  # no NFC/NFD: a combining accent stays
    ],
)
def test_split_per_character_class(text: str, words: list[str]) -> None:
    assert device().words(text) == words


def test_nul_handling_of_newer_mediapipe() -> None:
    assert split_words("a\x00b c", nul_truncates=False) == ["a\x00b", "c"]


def test_punctuation_table_is_re2_unicode_15() -> None:
    table = {c for lo, hi in PUNCT_RANGES for c in range(lo, hi + 1)}
    python = {c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)).startswith("P")}
    assert len(table) == 842
    if unicodedata.unidata_version == "14.0.0":  # Python 3.11; Unicode 15 added Kawi and Devanagari Ext-A
        added = set(range(0x11B00, 0x11B0A)) | set(range(0x11F43, 0x11F50))
        assert table - python == added and not python - table
    assert is_kept_delimiter("\U00011f43") and not is_kept_delimiter("\U0001f45f")


def test_vocab_file_skips_empty_lines_and_carriage_returns(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"[PAD]\r\n[UNK]\n\n[CLS]\n[SEP]\nshoe\n")
    assert load_vocab_file(path) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "shoe"]
    assert MediaPipeBertTokenizer.from_vocab_file(path, 8).ids("shoe") == [2, 4, 3]


# ---- parity with a Hugging Face WordPiece tokenizer trained on the example's queries ----


def _queries(n: int) -> list[str]:
    with TRAIN.open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line, _ in zip(f, range(n), strict=False)]


@pytest.fixture(scope="module")
def hf_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    import tokenizers
    from tokenizers import models, normalizers, pre_tokenizers, processors, trainers

    tok = tokenizers.Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=600, special_tokens=SPECIALS, show_progress=False)
    tok.train_from_iterator(_queries(400), trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", 3)]
    )
    path = tmp_path_factory.mktemp("hf") / "tokenizer.json"
    tok.save(str(path))
    vocab = sorted(tok.get_vocab(), key=tok.get_vocab().get)
    assert tok.token_to_id("[SEP]") == 3 and vocab[:5] == SPECIALS
    return path, vocab


def test_plain_ascii_queries_tokenize_identically(hf_tokenizer: tuple[Path, list[str]]) -> None:
    path, vocab = hf_tokenizer
    texts = _queries(1000)
    assert all(t.isascii() for t in texts)
    report = tokenizer_parity(hf_train_encoder(path), MediaPipeBertTokenizer(vocab, 32), texts)
    assert report.total == 1000 and report.differing == 0, report.examples
    assert report.summary().startswith("0/1000 queries (0.0%)")


CRAFTED = {
    "accent": ["café latte mug", "crème brûlée set", "pokémon cards"],
    "non_ascii_uppercase": ["ÉCLAIR pan", "ÜBER cool shoes"],
    "unicode_whitespace": ["running\u00a0shoes", "red\u3000dress"],
    "format_char": ["red\u200bdress", "soft\u00adware"],
    "control_char": ["blue\x07jeans", "gift\x0bcard", "gift\fcard"],
    "long_word": ["é" * 60],  # 120 bytes, 60 characters
}
SAME = ["return my order", "a" * 120, "Running, SHOES!", "wireless earbuds 日本"]  # ASCII > 100: [UNK] both


def test_crafted_divergences_are_named_by_cause(hf_tokenizer: tuple[Path, list[str]]) -> None:
    path, vocab = hf_tokenizer
    texts = [t for group in CRAFTED.values() for t in group] + SAME
    encode, tok = hf_train_encoder(path), MediaPipeBertTokenizer(vocab, 32)
    report = tokenizer_parity(encode, tok, texts, max_examples=1)
    expected = {cause: len(group) for cause, group in CRAFTED.items()}
    assert {c: n for c, n in report.counts.items() if n} == expected
    assert report.differing == sum(expected.values()) and report.total == len(texts)
    example = report.examples["non_ascii_uppercase"][0]
    assert example.text == "ÉCLAIR pan" and example.causes == ("non_ascii_uppercase", "accent")
    assert example.device_tokens[1] == "[UNK]" and "[UNK]" not in example.train_tokens
    assert len(report.examples["accent"]) == 1  # max_examples
    assert report.examples["long_word"][0].device_tokens == ("[CLS]", "[UNK]", "[SEP]")


def test_train_ids_are_cut_like_the_device(hf_tokenizer: tuple[Path, list[str]]) -> None:
    path, vocab = hf_tokenizer
    long_query = " ".join(_queries(40))
    report = tokenizer_parity(hf_train_encoder(path), MediaPipeBertTokenizer(vocab, 16), [long_query])
    assert report.differing == 0


def test_hf_encoder_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no tokenizer file"):
        hf_train_encoder(tmp_path / "tokenizer.json")


def test_accuracy_effect() -> None:
    labels = np.array([0, 1, 1, 0])
    train = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    device_scores = np.array([[0.9, 0.1], [0.7, 0.3], [0.3, 0.7], [0.4, 0.6]])
    effect = accuracy_effect(labels, train, device_scores)
    assert (effect.train_accuracy, effect.device_accuracy, effect.flipped) == (1.0, 0.5, 2)
    assert effect.delta == -0.5
    with pytest.raises(ValueError, match="both be"):
        accuracy_effect(labels, train, device_scores[:2])
