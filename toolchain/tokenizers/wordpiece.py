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

from pathlib import Path
from typing import Any

from toolchain.base.errors import DataError, InputFileError
from toolchain.base.text import read_utf8
from toolchain.tokenizers.hf_json import TOKENIZER_FILE, VOCAB_FILE, TokenizerJsonIds, parse_tokenizer_json

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


class WordPieceTokenizer(TokenizerJsonIds):
    """A `TextTokenizer` over a Hugging Face WordPiece tokenizer.json, fixed to `seq_len` tokens."""

    kind = "wordpiece"

    def __init__(self, tokenizer_json: str, seq_len: int, origin: str = "tokenizer.json") -> None:
        if seq_len < 3:
            raise DataError(f"seq_len must be at least 3 for [CLS] ... [SEP], got {seq_len}")
        spec, tok = parse_tokenizer_json(tokenizer_json, origin)
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

    def save(self, build_dir: Path) -> list[str]:
        return self.save_json_and_vocab(build_dir)
