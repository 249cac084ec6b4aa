"""Query datasets, the phone-reproducible tokenizer, and representative datasets for calibration.

The tokenizer follows MediaPipe's RegexTokenizer (the one `TextClassifier` runs on Android): split on the
delimiter regex `[^\\w']+` with RE2 semantics (ASCII `\\w`), `<START>` first when the vocab has it, unknown
words as `<UNKNOWN>`, padded with `<PAD>` to a fixed length. MediaPipe does not lower-case: the app does
(`query.lowercase()`), and so do we, before splitting.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolchain.base.atomic import write_text
from toolchain.base.errors import DataError, InputFileError
from toolchain.base.text import read_utf8
from toolchain.quantization.stratify import stratified_draw
from toolchain.report.quantization import CalibrationDraw

DELIM_REGEX = r"[^\w']+"
# Words in any script (RE2 in UTF-8 mode, as MediaPipe compiles it): letters, digits and combining marks.
# RE2's `\w` is ASCII only, so DELIM_REGEX turns Cyrillic, Greek or accented words into delimiters.
UNICODE_DELIM_REGEX = r"[^\pL\pN\pM_']+"
PAD, START, UNKNOWN = "<PAD>", "<START>", "<UNKNOWN>"
SPECIAL_TOKENS = (PAD, START, UNKNOWN)
_DELIM = re.compile(DELIM_REGEX, re.ASCII)


def raw_split(text: str, delimiter: str = DELIM_REGEX) -> list[str]:
    """Split (case kept) like the on-device regex tokenizer with `delimiter`; empty pieces dropped."""
    if delimiter == UNICODE_DELIM_REGEX:  # Python's re has no \p classes: the Unicode categories directly
        kept = "".join(c if c in "_'" or unicodedata.category(c)[0] in "LNM" else " " for c in text)
        return kept.split()
    if delimiter != DELIM_REGEX:
        raise DataError(
            f"unknown word delimiter {delimiter!r}", hint=f"use {DELIM_REGEX} or {UNICODE_DELIM_REGEX}"
        )
    return [t for t in _DELIM.split(text) if t]


def split_words(text: str, delimiter: str = DELIM_REGEX) -> list[str]:
    """Lower-case and split exactly like the on-device regex tokenizer (empty pieces dropped)."""
    return raw_split(text.lower(), delimiter)


MAX_SEQ_LEN = 1 << 16  # tokens per query: far above any on-device text model, far below a bad alloc


@dataclass(frozen=True)
class Tokenizer:
    """Word-level tokenizer with a fixed output length; ids as MediaPipe's regex preprocessor makes them."""

    vocab: dict[str, int]
    seq_len: int
    delimiter: str = DELIM_REGEX  # or UNICODE_DELIM_REGEX (words in any script)

    def __post_init__(self) -> None:
        for i, tok in enumerate(SPECIAL_TOKENS):
            if self.vocab.get(tok) != i:
                raise DataError(
                    f"vocab must map {tok} to {i} (MediaPipe regex-tokenizer convention)",
                    hint="rebuild the vocab with toolchain.data.build_vocab",
                )
        if self.seq_len < 2:
            raise DataError(f"seq_len must be at least 2, got {self.seq_len}")
        if self.seq_len > MAX_SEQ_LEN:  # a model declaring 2**40 tokens must not become a 2 TiB np.zeros
            raise DataError(
                f"the model takes {self.seq_len} tokens per query, more than {MAX_SEQ_LEN}",
                hint="export the model with a realistic input length (or set data.seq_len)",
            )

    @property
    def vocab_size(self) -> int:
        return max(self.vocab.values()) + 1

    def describe(self) -> dict[str, object]:
        """The report's `tokenizer` section: what a phone needs to reproduce the ids."""
        return {
            "kind": "regex",
            "delimiter": self.delimiter,
            "lowercase": True,
            "seq_len": self.seq_len,
            "vocab_size": self.vocab_size,
        }

    def encode(self, text: str) -> np.ndarray:
        ids = np.zeros(self.seq_len, dtype=np.int32)  # <PAD> is 0
        ids[0] = self.vocab[START]
        unk = self.vocab[UNKNOWN]
        for i, word in enumerate(split_words(text, self.delimiter)[: self.seq_len - 1], start=1):
            ids[i] = self.vocab.get(word, unk)
        return ids

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.seq_len), dtype=np.int32)
        return np.stack([self.encode(t) for t in texts])

    def save_vocab(self, path: Path) -> None:

        lines = [f"{tok} {idx}" for tok, idx in sorted(self.vocab.items(), key=lambda kv: kv[1])]
        write_text(path, "\n".join(lines) + "\n")


def build_vocab(
    texts: Iterable[str],
    max_size: int = 8000,
    min_count: int = 1,
    delimiter: str = DELIM_REGEX,
    coverage: float | None = None,
) -> dict[str, int]:
    """Special tokens first, then words by descending frequency (ties alphabetical): deterministic.
    `coverage`: only the most frequent words that together make up this share of the word occurrences
    (still at most max_size tokens)."""
    counts = Counter(w for t in texts for w in split_words(t, delimiter))
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    if coverage is not None:
        need, seen = coverage * sum(counts.values()), 0
        for n, w in enumerate(words, 1):
            seen += counts[w]
            if seen >= need:
                words = words[:n]
                break
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for w in words[: max(0, max_size - len(SPECIAL_TOKENS))]:
        vocab[w] = len(vocab)
    return vocab


def read_text(path: Path, what: str) -> str:
    """A UTF-8 text file, or one DataError naming the line and byte where it is not UTF-8."""
    return read_utf8(path, what)


def load_vocab(path: Path) -> dict[str, int]:
    """Read 'token id' lines (MediaPipe's vocab format); a bare 'token' line takes its line number."""
    _require_file(path, "vocab", "pass --vocab or put vocab.txt next to the model")
    vocab: dict[str, int] = {}
    for n, line in enumerate(read_text(path, "vocab").splitlines()):
        if not line.strip():
            continue
        parts = line.split(" ")
        try:
            vocab[parts[0]] = int(parts[1]) if len(parts) > 1 else n
        except ValueError:
            raise DataError(f"{path}:{n + 1}: expected 'token id', got {line[:80]!r}") from None
        if not 0 <= vocab[parts[0]] < 1 << 31:
            raise DataError(f"{path}:{n + 1}: token id out of range in {line[:80]!r}", hint="ids: 0..2**31-1")
    return vocab


def sibling_file(path: Path | None, source: Path, name: str) -> Path:
    """`path` if the recipe gives one, else `name` next to the source model (or inside its directory)."""
    if path is not None:
        return path
    base = source if source.is_dir() else source.parent
    return base / name


def load_labels(path: Path) -> list[str]:
    _require_file(path, "labels", "pass --labels or put labels.txt next to the model")
    labels = [ln.strip() for ln in read_text(path, "labels").splitlines() if ln.strip()]
    if len(labels) < 2:
        raise DataError(f"{path}: needs at least 2 labels, found {len(labels)}")
    if len(set(labels)) != len(labels):
        raise DataError(f"{path}: duplicate labels", hint="each label once, in output order")
    return labels


@dataclass(frozen=True)
class QuerySet:
    """Texts and (optional) labels of one split."""

    texts: list[str]
    labels: list[str] | None
    source: Path

    def __len__(self) -> int:
        return len(self.texts)

    def label_ids(self, labels: Sequence[str], missing: int | None = None) -> np.ndarray:
        """Label indices; a label not in `labels` is an error, or `missing` when given (a retrieval build
        whose item_prune step dropped the product: -1, never predicted)."""
        if self.labels is None:
            raise DataError(f"{self.source}: has no labels", hint="a labelled split is needed here")
        index = {name: i for i, name in enumerate(labels)}
        if missing is not None:
            return np.array([index.get(lab, missing) for lab in self.labels], dtype=np.int32)
        unknown = sorted({lab for lab in self.labels if lab not in index})
        if unknown:
            raise DataError(
                f"{self.source}: labels not in the model's label list: {', '.join(unknown[:5])}",
                hint="check labels.txt matches the data",
            )
        return np.array([index[lab] for lab in self.labels], dtype=np.int32)


def _require_file(path: Path | None, what: str, hint: str) -> Path:
    if path is None:
        raise DataError(f"no {what} file given", hint=hint)
    if not Path(path).is_file():
        raise InputFileError(f"{what} file not found: {path}", hint=hint)
    return Path(path)


def jsonl_rows(path: Path, what: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) of each non-blank line of a JSONL file; bad JSON is a one-line error."""
    for n, line in enumerate(read_text(path, what).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except (ValueError, RecursionError):
            raise DataError(f"{path}:{n}: not valid JSON", hint="one JSON object per line") from None


def query_rows(path: Path, what: str = "query") -> list[tuple[int, Any]]:
    """(line, row) of a .jsonl query file, or (data row, header-keyed dict) of a .csv one (a spreadsheet's
    BOM before the header dropped); bad JSON or CSV is a one-line error."""
    if path.suffix.lower() == ".csv":
        text = read_text(path, what).lstrip("\ufeff")
        try:
            return list(enumerate(csv.DictReader(io.StringIO(text, newline="")), start=1))
        except csv.Error as err:
            raise DataError(
                f"{path}: not a valid CSV file ({err})", hint="a header row, then one query per row"
            ) from None
    return list(jsonl_rows(path, what))


def load_queries(path: Path, text_field: str = "text", label_field: str | None = "intent") -> QuerySet:
    """Load a .jsonl (one object per line) or .csv split; labels are optional (unlabelled query logs, which
    may also be .txt: one query per non-blank line)."""
    path = _require_file(path, "query", "check the data paths in the recipe")
    if path.suffix.lower() == ".txt" and label_field is None:
        lines = read_text(path, "query").splitlines()
        return QuerySet(texts=[t for t in lines if t.strip()], labels=None, source=path)
    rows: list[dict[str, str]] = []
    for n, row in query_rows(path):
        if not isinstance(row, dict):
            raise DataError(f"{path}:{n}: expected a JSON object with a '{text_field}' field")
        rows.append(row)
    texts, labels = [], []
    for n, row in enumerate(rows, start=1):
        text = row.get(text_field)
        if not isinstance(text, str):
            raise DataError(f"{path}: row {n} has no string field '{text_field}'", hint="set data.text_field")
        texts.append(text)
        labels.append(row.get(label_field) if label_field else None)
    has_labels = bool(labels) and all(isinstance(lab, str) for lab in labels)
    return QuerySet(texts=texts, labels=labels if has_labels else None, source=path)


def word_count(text: str) -> int:
    """Query length for stratifying calibration queries: words as the regex tokenizer splits them."""
    return len(split_words(text))


@dataclass(frozen=True)
class CalibrationSample:
    """Calibration queries (every prefix stratified), warnings, and the report's `calibration_draw`."""

    texts: list[str]
    warnings: list[str]
    drawn: CalibrationDraw


def representative_sample(
    queries: QuerySet,
    samples: int,
    minimum: int,
    seed: int,
    usable: Callable[[str], object] = split_words,
    length: Callable[[str], int] = word_count,
) -> CalibrationSample:
    """Draw calibration queries stratified by label (when the file has them) and length bucket.

    `usable(text)` is truthy for a query the tokenizer makes tokens of (default: the regex split); too few
    usable ones is an error, fewer than `samples` takes them all (with a warning). Deterministic for a seed
    (toolchain/quantization/stratify.py).
    """

    kept = [i for i, t in enumerate(queries.texts) if usable(t)]
    warnings: list[str] = []
    if len(kept) < minimum:
        raise DataError(
            f"too little calibration data: {len(kept)} usable queries in {queries.source}, need >= {minimum}",
            hint="add real queries to the calibration file or lower quantization.min_calibration_samples",
        )
    if len(kept) < samples:
        warnings.append(f"calibration: asked for {samples} queries, {queries.source} has {len(kept)}")
    texts = [queries.texts[i] for i in kept]
    labels = None if queries.labels is None else [queries.labels[i] for i in kept]
    draw = stratified_draw(labels, [length(t) for t in texts], samples, seed)
    return CalibrationSample([texts[i] for i in draw.indices], warnings, draw.report)


def representative_texts(
    queries: QuerySet,
    samples: int,
    minimum: int,
    seed: int,
    usable: Callable[[str], object] = split_words,
) -> tuple[list[str], list[str]]:
    """`representative_sample`'s texts and warnings."""
    sample = representative_sample(queries, samples, minimum, seed, usable)
    return sample.texts, sample.warnings


def representative_ids(
    queries: QuerySet, tokenizer: Tokenizer, samples: int, minimum: int, seed: int
) -> tuple[np.ndarray, list[str]]:
    """Calibration queries (`representative_texts`) as regex-tokenizer ids (n, seq_len), and warnings."""
    texts, warnings = representative_texts(queries, samples, minimum, seed)
    return tokenizer.encode_batch(texts), warnings
