"""The `wordpiece` kind: a BERT/MiniLM tokenizer as the model was TRAINED with, by Hugging Face `tokenizers`.

The training side is the reference for every number edgecomp reports (onnxruntime vs .tflite, accuracy),
so it is Hugging Face's own implementation, read from the model's tokenizer.json (`Tokenizer.from_file`)
or built from a BERT vocab.txt with `BertWordPieceTokenizer` semantics (BertNormalizer: clean text, CJK
spacing, lower-case + strip accents unless tokenizer_config.json says `do_lower_case: false`; BertProcessing
adds [CLS] ... [SEP]). Truncation and padding are set to the build's fixed length whatever the file says:
[CLS] first, [SEP] last, [PAD] (which must be id 0, as MediaPipe pads with 0) after, mask 1/0, segment
ids 0. What the device does differently (MediaPipe lower-cases ASCII only, no accent stripping) is
reported by toolchain/tokenizers/parity.py, not hidden here.

Saved in a build as tokenizer.json (the exact tokenizer, byte-for-byte when the user gave one) and
vocab.txt (one token per line in id order: what MediaPipe's BertTokenizer metadata packs).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toolchain.base.atomic import write_text
from toolchain.base.errors import DataError, InputFileError
from toolchain.base.text import read_utf8
from toolchain.tokenizers.interface import ATTENTION_MASK, INPUT_IDS, TOKEN_TYPE_IDS

TOKENIZER_FILE, VOCAB_FILE = "tokenizer.json", "vocab.txt"
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def bert_json_from_vocab(vocab: Path, lowercase: bool = True, strip_accents: bool | None = None) -> str:
    """A BERT vocab.txt -> tokenizer.json text with BertWordPieceTokenizer's normalizer and [CLS]/[SEP]."""
    from tokenizers.implementations import BertWordPieceTokenizer

    if not vocab.is_file():
        raise InputFileError(f"vocab file not found: {vocab}", hint="pass --vocab or --tokenizer")
    read_utf8(vocab, "vocab")  # the Rust reader's error for a non-UTF-8 byte names neither line nor byte
    tok = BertWordPieceTokenizer(str(vocab), lowercase=lowercase, strip_accents=strip_accents)
    return tok._tokenizer.to_str()  # the public object wraps the one Tokenizer it builds


def _lowercase(normalizer: dict[str, Any] | None) -> tuple[bool, bool]:
    """(lowercase, strip_accents) of a tokenizer.json normalizer (BertNormalizer or a Sequence)."""
    if not normalizer:
        return False, False
    kind = normalizer.get("type")
    if kind == "BertNormalizer":
        lower = bool(normalizer.get("lowercase", True))
        strip = normalizer.get("strip_accents")
        return lower, lower if strip is None else bool(strip)
    if kind == "Sequence":
        parts = [_lowercase(n) for n in normalizer.get("normalizers", [])]
        kinds = {n.get("type") for n in normalizer.get("normalizers", [])}
        return any(p[0] for p in parts) or "Lowercase" in kinds, any(p[1] for p in parts) or (
            "StripAccents" in kinds
        )
    return kind == "Lowercase", kind == "StripAccents"


class WordPieceTokenizer:
    """A `TextTokenizer` over a Hugging Face WordPiece tokenizer.json, fixed to `seq_len` tokens."""

    kind = "wordpiece"

    def __init__(self, tokenizer_json: str, seq_len: int, origin: str = "tokenizer.json") -> None:
        from tokenizers import Tokenizer

        if seq_len < 3:
            raise DataError(f"seq_len must be at least 3 for [CLS] ... [SEP], got {seq_len}")
        try:
            spec = json.loads(tokenizer_json)
            tok = Tokenizer.from_str(tokenizer_json)
        except Exception as err:  # tokenizers raises a bare Exception on a malformed file
            raise InputFileError(f"{origin} is not a Hugging Face tokenizer.json: {err}") from None
        model_type = (spec.get("model") or {}).get("type")
        if model_type != "WordPiece":
            raise DataError(
                f"{origin} is a {model_type} tokenizer, not WordPiece",
                hint="SentencePiece (Unigram/BPE) tokenizer.json files are read by toolchain/tokenizers/"
                "sentencepiece.py (tokenizers.sources.tokenizer_from_json picks the kind)",
            )
        self.json, self.origin, self.seq_len = tokenizer_json, origin, seq_len
        self.vocab: dict[str, int] = tok.get_vocab(with_added_tokens=True)
        missing = [t for t in ("[CLS]", "[SEP]", "[PAD]") if t not in self.vocab]
        if missing:
            raise DataError(
                f"{origin} has no {', '.join(missing)} token", hint="a BERT WordPiece vocab has them"
            )
        if self.vocab["[PAD]"] != 0:
            raise DataError(
                f"{origin} maps [PAD] to {self.vocab['[PAD]']}; on-device BERT pads with 0",
                hint="use the model's own tokenizer (BERT vocabularies put [PAD] first)",
            )
        self.lowercase, self.strip_accents = _lowercase(spec.get("normalizer"))
        tok.enable_truncation(seq_len)
        tok.enable_padding(length=seq_len, pad_id=0, pad_token="[PAD]")
        self.tok = tok
        first = tok.encode("a")
        if (
            first.ids[0] != self.vocab["[CLS]"]
            or first.ids[sum(first.attention_mask) - 1] != self.vocab["[SEP]"]
        ):
            raise DataError(
                f"{origin} does not add [CLS] ... [SEP] (no BERT post-processor)",
                hint="export the tokenizer with its post_processor (tokenizer.save in transformers)",
            )

    @property
    def vocab_size(self) -> int:
        return max(self.vocab.values()) + 1

    def encode_batch(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        if not texts:
            empty = np.zeros((0, self.seq_len), np.int32)
            return {INPUT_IDS: empty, ATTENTION_MASK: empty.copy(), TOKEN_TYPE_IDS: empty.copy()}
        enc = self.tok.encode_batch(list(texts))
        return {
            INPUT_IDS: np.array([e.ids for e in enc], np.int32),
            ATTENTION_MASK: np.array([e.attention_mask for e in enc], np.int32),
            TOKEN_TYPE_IDS: np.array([e.type_ids for e in enc], np.int32),
        }

    def describe(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "implementation": "huggingface tokenizers (WordPiece)",
            "seq_len": self.seq_len,
            "lowercase": self.lowercase,
            "strip_accents": self.strip_accents,
            "vocab_size": self.vocab_size,
            "special_tokens": {t: self.vocab[t] for t in SPECIALS if t in self.vocab},
            "source": self.origin,
            "files": [TOKENIZER_FILE, VOCAB_FILE],
        }

    def vocab_lines(self) -> list[str]:
        """vocab.txt as BERT writes it: token of id i on line i (MediaPipe's BertTokenizer reads this)."""
        by_id = {i: t for t, i in self.vocab.items()}
        return [by_id.get(i, f"[unused_{i}]") for i in range(self.vocab_size)]

    def save(self, build_dir: Path) -> list[str]:
        write_text(Path(build_dir) / TOKENIZER_FILE, self.json)
        write_text(Path(build_dir) / VOCAB_FILE, "\n".join(self.vocab_lines()) + "\n")
        return [TOKENIZER_FILE, VOCAB_FILE]
