"""The `sentencepiece` kind: a SentencePiece model as Hugging Face represents it (XLM-R, multilingual-e5).

The reference is the model's own tokenizer.json run by Hugging Face `tokenizers` (a Unigram model, or a
BPE one), exactly as transformers tokenizes: its normalizer (Precompiled, i.e. SentencePiece's NFKC
charsmap, + whitespace rules), Metaspace `▁` pre-tokenizer and post-processor (`<s> $A </s>`). Those ids
are NOT the raw SentencePiece ids: XLM-R's tokenizer puts <s>=0, <pad>=1, </s>=2, <unk>=3 first and
shifts every other piece by +1 over its id in the .model file (fairseq's offset), with <mask> last. So
the training-side ids come from tokenizer.json, never from the .model; the .model file beside it
(sentencepiece.bpe.model, spiece.model, sentencepiece.model) is kept for the device, whose MediaPipe
SentencePiece tokenizer yields raw ids (package/spm.py maps them inside the graph).

Truncation and padding are fixed to the build's length: <s> first, </s> last (as the post-processor
puts them), the pad token's id after, mask 1/0, segment ids 0. tokenizer.json must carry a
post-processor that adds a first and a last special token, and a pad token (<pad>, or tokenizer_config.json
`pad_token`). Saved in a build as tokenizer.json (byte for byte), vocab.txt (the piece of each id, in id
order, for the app) and sentencepiece.model (the .model file, when there was one).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from toolchain.base.atomic import write_bytes
from toolchain.base.errors import DataError
from toolchain.tokenizers.hf_json import TOKENIZER_FILE, VOCAB_FILE, TokenizerJsonIds, parse_tokenizer_json

SPM_FILE = "sentencepiece.model"
SPM_NAMES = ("sentencepiece.bpe.model", "spiece.model", "sentencepiece.model", "tokenizer.model")
MODEL_TYPES = ("Unigram", "BPE")
PAD_NAMES = ("<pad>", "[PAD]", "<PAD>")


def spm_beside(tokenizer_json: Path) -> Path | None:
    """The SentencePiece .model file next to a tokenizer.json, if any."""
    return next((tokenizer_json.parent / n for n in SPM_NAMES if (tokenizer_json.parent / n).is_file()), None)


def _lowercases(normalizer: dict[str, Any] | None) -> bool:
    if not normalizer:
        return False
    if normalizer.get("type") == "Sequence":
        return any(_lowercases(n) for n in normalizer.get("normalizers", []))
    return normalizer.get("type") == "Lowercase" or bool(normalizer.get("lowercase", False))


def _pad_token(folder: Path, vocab: dict[str, int]) -> str | None:
    config = folder / "tokenizer_config.json"
    if config.is_file():
        try:
            pad = json.loads(config.read_text(encoding="utf-8")).get("pad_token")
        except json.JSONDecodeError:
            pad = None
        pad = pad.get("content") if isinstance(pad, dict) else pad
        if isinstance(pad, str) and pad in vocab:
            return pad
    return next((p for p in PAD_NAMES if p in vocab), None)


class SentencePieceTokenizer(TokenizerJsonIds):
    """A `TextTokenizer` over a Hugging Face Unigram/BPE tokenizer.json, fixed to `seq_len` tokens."""

    kind = "sentencepiece"
    unused_piece = "<unused_{}>"
    segment_ids_from_tokenizer = False

    def __init__(
        self,
        tokenizer_json: str,
        seq_len: int,
        origin: str = "tokenizer.json",
        spm_model: Path | bytes | None = None,
        folder: Path | None = None,
    ) -> None:
        if seq_len < 3:
            raise DataError(f"seq_len must be at least 3 for <s> ... </s>, got {seq_len}")
        spec, tok = parse_tokenizer_json(tokenizer_json, origin)
        self.model_type = str((spec.get("model") or {}).get("type"))
        if self.model_type not in MODEL_TYPES:
            raise DataError(f"{origin} is a {self.model_type} tokenizer, not SentencePiece (Unigram or BPE)")
        self.json, self.origin, self.seq_len, self.spm_model = tokenizer_json, origin, seq_len, spm_model
        self.vocab: dict[str, int] = tok.get_vocab(with_added_tokens=True)
        self.pre_tokenizer = str((spec.get("pre_tokenizer") or {}).get("type"))
        self.folder = folder or Path(origin).parent
        pad = _pad_token(self.folder, self.vocab)
        if pad is None:
            raise DataError(
                f"{origin} has no pad token (<pad>)",
                hint="use the model's own tokenizer folder (tokenizer_config.json names pad_token)",
            )
        self.pad_token, self.pad_id = pad, self.vocab[pad]
        self.lowercase = _lowercases(spec.get("normalizer"))
        tok.enable_truncation(seq_len)
        tok.enable_padding(length=seq_len, pad_id=self.pad_id, pad_token=pad)
        self.tok = tok
        first = tok.encode("a")
        n = sum(first.attention_mask)
        if n < 3 or not first.special_tokens_mask[0] or not first.special_tokens_mask[n - 1]:
            raise DataError(
                f"{origin} adds no first and last special token (no post-processor like <s> $A </s>)",
                hint="save the tokenizer with its post_processor (tokenizer.save_pretrained in transformers)",
            )
        self.bos_id, self.eos_id = first.ids[0], first.ids[n - 1]
        self.unk_id = (spec.get("model") or {}).get("unk_id")
        if self.unk_id is None and (spec.get("model") or {}).get("unk_token") in self.vocab:
            self.unk_id = self.vocab[spec["model"]["unk_token"]]

    def encode_unpadded(self, text: str) -> list[int]:
        """The ids of one text with its specials, truncated to seq_len, without padding."""
        e = self.tok.encode(text)
        return list(e.ids[: sum(e.attention_mask)])

    def describe(self) -> dict[str, object]:
        by_id = self.id_to_piece()
        special = {by_id[i]: i for i in (self.bos_id, self.pad_id, self.eos_id, self.unk_id) if i in by_id}
        files = [TOKENIZER_FILE, VOCAB_FILE] + ([SPM_FILE] if self.spm_model is not None else [])
        note = (
            {}
            if self.spm_model is not None
            else {"note": "no SentencePiece .model file beside tokenizer.json"}
        )
        return {
            "kind": self.kind,
            "implementation": f"huggingface tokenizers ({self.model_type}, {self.pre_tokenizer})",
            "seq_len": self.seq_len,
            "lowercase": self.lowercase,
            "strip_accents": False,
            "vocab_size": self.vocab_size,
            "special_tokens": special,
            "source": self.origin,
            "files": files,
            **note,
        }

    def spm_bytes(self) -> bytes:
        """The .model file's bytes (a trimmed tokenizer holds its cut .model in memory)."""
        if self.spm_model is None:
            raise DataError(f"{self.origin} has no SentencePiece .model file beside it")
        return self.spm_model if isinstance(self.spm_model, bytes) else Path(self.spm_model).read_bytes()

    def save(self, build_dir: Path) -> list[str]:
        files = self.save_json_and_vocab(build_dir)
        if self.spm_model is None:
            return files
        if isinstance(self.spm_model, bytes):
            write_bytes(Path(build_dir) / SPM_FILE, self.spm_model)
        else:
            shutil.copyfile(self.spm_model, Path(build_dir) / SPM_FILE)
        return [*files, SPM_FILE]
