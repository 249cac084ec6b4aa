"""The `regex` kind: MediaPipe's word-level regex tokenizer (toolchain.data.Tokenizer), unchanged.

The ids are exactly today's; the wrapper only names them. It also derives attention_mask (ids != <PAD>,
which is 0) and token_type_ids (zeros), as the ONNX path always did for word-level transformers exported
with a mask input; a single-input model is fed input_ids alone (toolchain.tokenizers.binding).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from toolchain.data import Tokenizer
from toolchain.tokenizers.interface import ATTENTION_MASK, INPUT_IDS, TOKEN_TYPE_IDS

VOCAB_FILE = "vocab.txt"


class RegexTokenizer:
    """A `TextTokenizer` over `toolchain.data.Tokenizer` ('token id' vocab, <PAD>=0, <START>, <UNKNOWN>)."""

    kind = "regex"

    def __init__(self, words: Tokenizer) -> None:
        self.words = words
        self.seq_len = words.seq_len

    @property
    def vocab_size(self) -> int:
        return self.words.vocab_size

    def ids(self, texts: Sequence[str]) -> np.ndarray:
        """Token ids only (rows, seq_len): what the Keras steps train on."""
        return self.words.encode_batch(texts)

    def encode_batch(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        ids = self.ids(texts)
        return {
            INPUT_IDS: ids,
            ATTENTION_MASK: (ids != 0).astype(np.int32),
            TOKEN_TYPE_IDS: np.zeros_like(ids),
        }

    def describe(self) -> dict[str, object]:
        return {
            **self.words.describe(),
            "special_tokens": {tok: self.words.vocab[tok] for tok in ("<PAD>", "<START>", "<UNKNOWN>")},
            "files": [VOCAB_FILE],
        }

    def save(self, build_dir: Path) -> list[str]:
        self.words.save_vocab(Path(build_dir) / VOCAB_FILE)
        return [VOCAB_FILE]
