"""The one tokenizer interface of a build: texts in, every named model input out.

A build used to hold MediaPipe's word-level regex tokenizer and nothing else, and each stage guessed the
other inputs from the ids (attention_mask = ids != 0, token_type_ids = 0). A transformer brings its own
tokenizer (WordPiece for BERT/MiniLM) whose ids, mask and segment ids are the model's contract, so the
tokenizer now produces all of them under canonical names and `binding.bind_inputs` maps those names onto
the model's input tensors. Every kind answers the same questions: what it is (`describe`, the report's
`tokenizer` section), how to encode (`encode_batch`), and how it is saved into and read back from a build
(`save` / `tokenizers.sources.load_saved`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS = "input_ids", "attention_mask", "token_type_ids"
CANONICAL_INPUTS = (INPUT_IDS, ATTENTION_MASK, TOKEN_TYPE_IDS)


@runtime_checkable
class TextTokenizer(Protocol):
    """What every tokenizer kind (regex, wordpiece, sentencepiece) offers a build."""

    kind: str
    seq_len: int

    @property
    def vocab_size(self) -> int: ...

    def encode_batch(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """int32 arrays (rows, seq_len) keyed by canonical names (`CANONICAL_INPUTS`, those it makes)."""
        ...

    def describe(self) -> dict[str, object]:
        """The report's `tokenizer` section: kind, seq_len, lowercase, vocab_size, special tokens."""
        ...

    def save(self, build_dir: Path) -> list[str]:
        """Write the tokenizer's files into a build directory; returns their names."""
        ...
