"""Tokenizer parity: the ids a model was trained with vs the ids MediaPipe feeds it on the device.

A query differs when the device's unpadded ids (toolchain.tokenizers.mediapipe_bert) are not the train
side's ids cut the same way ([CLS] first, [SEP] last, at most seq_len). Each differing query gets ONE
cause, the first of CAUSES whose character class occurs in it; the order follows how the device breaks:
- long_word: a device word over 100 UTF-8 bytes becomes [UNK] (Hugging Face's WordPiece limit is 100
  characters, `max_input_chars_per_word`), e.g. a 60-letter word of 'é'.
- control_char: Cc other than \\t \\n \\r and space. BertNormalizer(clean_text) deletes them (so "a\\fb" is
  "ab"); on the device \\f splits, \\v and the rest stay inside the word, U+0000 ends the text (0.10.21).
- format_char: Cf (U+200B zero-width space, U+200D, U+00AD soft hyphen, U+FEFF): deleted by clean_text,
  kept inside the word on the device.
- unicode_whitespace: Zs/Zl/Zp other than ' ' (NBSP, U+3000, U+2009): a split for Hugging Face, a word
  character for RE2's ASCII-only `\\s`.
- non_ascii_uppercase: Lu/Lt outside ASCII ('É', 'Ü'): absl::AsciiStrToLower leaves them.
- accent: a character whose NFD has a combining mark ('é'), or a combining mark: strip_accents removes it,
  the device keeps it.
- other: none of these (e.g. a cased vocabulary, a different vocab, a different split rule).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolchain.base.errors import DataError
from toolchain.tokenizers.mediapipe_bert import MAX_BYTES_PER_WORD, MediaPipeBertTokenizer

CAUSES = (
    "long_word",
    "control_char",
    "format_char",
    "unicode_whitespace",
    "non_ascii_uppercase",
    "accent",
    "other",
)
_SPACES_BOTH_AGREE_ON = frozenset("\t\n\r ")


def _has_accent(char: str) -> bool:
    return any(unicodedata.category(c) == "Mn" for c in unicodedata.normalize("NFD", char))


def _char_causes(char: str) -> set[str]:
    if char.isascii() and (char.isprintable() or char in _SPACES_BOTH_AGREE_ON):
        return set()
    category = unicodedata.category(char)
    found = set()
    if category == "Cc" and char not in _SPACES_BOTH_AGREE_ON:
        found.add("control_char")
    if category == "Cf":
        found.add("format_char")
    if category in ("Zs", "Zl", "Zp") and char != " ":
        found.add("unicode_whitespace")
    if category in ("Lu", "Lt"):
        found.add("non_ascii_uppercase")
    if _has_accent(char):
        found.add("accent")
    return found


def text_causes(text: str, device: MediaPipeBertTokenizer) -> list[str]:
    """Every cause class present in `text`, in CAUSES order ("other" when none is)."""
    found: set[str] = set()
    for char in set(text):
        found |= _char_causes(char)
    if any(len(word.encode("utf-8")) > MAX_BYTES_PER_WORD for word in device.words(text)):
        found.add("long_word")
    return [c for c in CAUSES if c in found] or ["other"]


@dataclass(frozen=True)
class ParityExample:
    text: str
    causes: tuple[str, ...]  # every cause class present; the first one is the one counted
    train_tokens: tuple[str, ...]
    device_tokens: tuple[str, ...]


@dataclass(frozen=True)
class ParityReport:
    """How many queries get other ids on the device than in training, and why."""

    total: int
    differing: int
    counts: dict[str, int]  # cause -> differing queries counted under it (all CAUSES, zeros included)
    examples: dict[str, list[ParityExample]] = field(default_factory=dict)

    @property
    def differing_share(self) -> float:
        return self.differing / self.total if self.total else 0.0

    def summary(self) -> str:
        named = ", ".join(f"{c} {n}" for c, n in self.counts.items() if n)
        return (
            f"{self.differing}/{self.total} queries ({self.differing_share:.1%}) get other ids on the device"
            + (f": {named}" if named else "")
        )


def cut_like_device(ids: Sequence[int], seq_len: int | None) -> list[int]:
    """Train-side ids ([CLS] ... [SEP]) cut as the device cuts: first seq_len - 1, then the last id."""
    ids = list(ids)
    if seq_len is None or len(ids) <= seq_len:
        return ids
    return ids[: seq_len - 1] + ids[-1:]


def tokenizer_parity(
    train_encode: Callable[[str], list[int]],
    device: MediaPipeBertTokenizer,
    texts: list[str],
    max_examples: int = 5,
) -> ParityReport:
    """Compare the train-side ids ([CLS] ... [SEP], unpadded) with the device's, text by text."""
    counts = dict.fromkeys(CAUSES, 0)
    examples: dict[str, list[ParityExample]] = {c: [] for c in CAUSES}
    differing = 0
    for text in texts:
        train_ids = cut_like_device(train_encode(text), device.seq_len)
        device_ids = device.ids(text)
        if train_ids == device_ids:
            continue
        differing += 1
        causes = text_causes(text, device)
        counts[causes[0]] += 1
        if len(examples[causes[0]]) < max_examples:
            vocab = device.vocab
            train_tokens = tuple(vocab[i] if 0 <= i < len(vocab) else f"<id {i}>" for i in train_ids)
            examples[causes[0]].append(
                ParityExample(text, tuple(causes), train_tokens, tuple(device.model_tokens(text)))
            )
    return ParityReport(len(texts), differing, counts, {c: e for c, e in examples.items() if e})


@dataclass(frozen=True)
class AccuracyEffect:
    """Accuracy of one model fed train-side ids vs device ids, on the same labelled queries."""

    train_accuracy: float
    device_accuracy: float
    flipped: int  # queries whose predicted class differs between the two

    @property
    def delta(self) -> float:
        return self.device_accuracy - self.train_accuracy


def accuracy_effect(
    labels: np.ndarray, train_scores: np.ndarray, device_scores: np.ndarray
) -> AccuracyEffect:
    """Scores [n, classes] from the model on train-tokenized and on device-tokenized inputs; labels [n]."""
    labels = np.asarray(labels)
    train_scores, device_scores = np.asarray(train_scores), np.asarray(device_scores)
    if train_scores.shape != device_scores.shape or train_scores.ndim != 2:
        shapes = f"{train_scores.shape} vs {device_scores.shape}"
        raise ValueError(f"score arrays must both be [n, classes]: {shapes}")
    if labels.shape != (train_scores.shape[0],):
        raise ValueError(f"labels must be [n] with n = {train_scores.shape[0]}, got {labels.shape}")
    train_pred, device_pred = train_scores.argmax(axis=1), device_scores.argmax(axis=1)
    n = max(len(labels), 1)
    return AccuracyEffect(
        float((train_pred == labels).sum() / n),
        float((device_pred == labels).sum() / n),
        int((train_pred != device_pred).sum()),
    )


def hf_train_encoder(tokenizer_json: Path) -> Callable[[str], list[int]]:
    """The train side from a Hugging Face `tokenizer.json`: ids with its own special tokens, unpadded."""
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise DataError(
            "the Hugging Face `tokenizers` package is not installed, so tokenizer.json cannot be read",
            hint="pip install tokenizers (it comes with transformers)",
        ) from exc
    path = Path(tokenizer_json)
    if not path.is_file():
        raise DataError(f"no tokenizer file at {path}", hint="pass the tokenizer.json saved with the model")
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()

    def encode(text: str) -> list[int]:
        return list(tokenizer.encode(text).ids)

    return encode
