"""What the `wordpiece` and `sentencepiece` kinds share: a Hugging Face tokenizer.json at a fixed length.

Both read the model's own tokenizer.json with Hugging Face `tokenizers` and differ only in what they check
and report (specials, normalizer, the .model file). The file parse, the id lookup (ids, mask and segment
ids as int32 rows of `seq_len`), vocab size and vocab.txt (the token of id i on line i) are here once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toolchain.base.atomic import write_text
from toolchain.base.errors import InputFileError
from toolchain.tokenizers.interface import ATTENTION_MASK, INPUT_IDS, TOKEN_TYPE_IDS

TOKENIZER_FILE, VOCAB_FILE = "tokenizer.json", "vocab.txt"


def parse_tokenizer_json(tokenizer_json: str, origin: str) -> tuple[dict[str, Any], Any]:
    """(the JSON, the `tokenizers.Tokenizer`) of a tokenizer.json text; InputFileError if it is not one."""
    from tokenizers import Tokenizer

    try:
        return json.loads(tokenizer_json), Tokenizer.from_str(tokenizer_json)
    except Exception as err:  # tokenizers raises a bare Exception on a malformed file
        raise InputFileError(f"{origin} is not a Hugging Face tokenizer.json: {err}") from None


class TokenizerJsonIds:
    """Encoding and vocab.txt over `self.tok` (truncation and padding already fixed to `seq_len`)."""

    json: str
    seq_len: int
    vocab: dict[str, int]
    tok: Any
    unused_piece = "[unused_{}]"  # vocab.txt's line for an id no token has
    segment_ids_from_tokenizer = True  # else all 0

    @property
    def vocab_size(self) -> int:
        return max(self.vocab.values()) + 1

    def encode_batch(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        if not texts:
            empty = np.zeros((0, self.seq_len), np.int32)
            return {INPUT_IDS: empty, ATTENTION_MASK: empty.copy(), TOKEN_TYPE_IDS: empty.copy()}
        enc = self.tok.encode_batch(list(texts))
        segments = (
            np.array([e.type_ids for e in enc], np.int32)
            if self.segment_ids_from_tokenizer
            else np.zeros((len(enc), self.seq_len), np.int32)
        )
        return {
            INPUT_IDS: np.array([e.ids for e in enc], np.int32),
            ATTENTION_MASK: np.array([e.attention_mask for e in enc], np.int32),
            TOKEN_TYPE_IDS: segments,
        }

    def id_to_piece(self) -> dict[int, str]:
        return {i: t for t, i in self.vocab.items()}

    def vocab_lines(self) -> list[str]:
        """vocab.txt: the token of id i on line i (MediaPipe's BertTokenizer reads this; the app too)."""
        by_id = self.id_to_piece()
        return [by_id.get(i, self.unused_piece.format(i)) for i in range(self.vocab_size)]

    def save_json_and_vocab(self, build_dir: Path) -> list[str]:
        write_text(Path(build_dir) / TOKENIZER_FILE, self.json)
        write_text(Path(build_dir) / VOCAB_FILE, "\n".join(self.vocab_lines()) + "\n")
        return [TOKENIZER_FILE, VOCAB_FILE]
