"""Case variants for the packed regex vocab (toolchain/package/vocab.py), without MediaPipe."""

from __future__ import annotations

from pathlib import Path

from toolchain.data import SPECIAL_TOKENS
from toolchain.package.vocab import case_variants, raw_words, write_packed_vocab

VOCAB = {"<PAD>": 0, "<START>": 1, "<UNKNOWN>": 2, "running": 3, "shoes": 4, "iphone": 5, "men's": 6}


def test_variants_share_the_lower_case_id() -> None:
    extra = case_variants(VOCAB, ["Buy an iPhone", "RUNNING shoes", "RuNNing?"])
    assert extra["Running"] == extra["RUNNING"] == extra["RuNNing"] == 3
    assert extra["Shoes"] == extra["SHOES"] == 4
    assert extra["iPhone"] == 5 and extra["Men's"] == extra["MEN'S"] == 6
    assert not set(extra) & set(VOCAB) and not {v for t, v in VOCAB.items() if t in SPECIAL_TOKENS} & set(
        extra.values()
    )  # special tokens get no variants
    assert "rUnNiNg" not in extra  # a mixed-case form never seen cannot be packed


def test_raw_words_keep_case_and_split_like_the_device() -> None:
    assert raw_words("Men's RUNNING-shoes, size 10!") == ["Men's", "RUNNING", "shoes", "size", "10"]
    assert raw_words("café ÉCLAIR") == ["caf", "CLAIR"]  # RE2's \w is ASCII: non-ASCII letters split


def test_packed_vocab_lists_words_then_variants(tmp_path: Path) -> None:
    extra = case_variants(VOCAB)
    lines = write_packed_vocab(tmp_path / "vocab.txt", VOCAB, extra)
    text = (tmp_path / "vocab.txt").read_text().splitlines()
    assert lines == len(text) == len(VOCAB) + len(extra)
    assert text[: len(VOCAB)] == [f"{t} {i}" for t, i in VOCAB.items()]
    assert "SHOES 4" in text and "Shoes 4" in text
