"""A user's labelled query file (JSONL or CSV) read and checked before anything is split or trained.

Every problem is one DataError naming the file, the line and the fix: an empty file, a row without the text
or label field (the fields the row does have are listed, so `--text-field query` is one look away), a query
the on-device tokenizer makes no words of, a label with too few queries to appear in every split, and
duplicates. A duplicate is a query whose tokens (lower-cased, split like the phone splits them:
toolchain.data.split_words) equal an earlier one's: with the same label it is refused unless `dedupe` keeps
the first; with another label it is always refused, since one input cannot teach two intents. Integer
labels (ids from a labelling tool) become their decimal names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolchain.base.errors import DataError, InputFileError
from toolchain.data import query_rows, split_words

FORMAT_HINT = 'one JSON object per line, e.g. {"text": "where is my order", "intent": "order_status"}'


@dataclass(frozen=True)
class LabelledQuery:
    line: int  # 1-based line (JSONL) or data row (CSV, header excluded) in the user's file
    text: str
    label: str


@dataclass(frozen=True)
class LabelledFile:
    path: Path
    queries: list[LabelledQuery]
    labels: list[str]  # sorted: the model's output order
    dropped_duplicates: int


def _field(path: Path, n: int, row: Any, name: str, option: str) -> str:
    if not isinstance(row, dict):
        raise DataError(f"{path}:{n}: expected a JSON object, got {type(row).__name__}", hint=FORMAT_HINT)
    value = row.get(name)
    if option == "--label-field" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # label ids (0, 1, 2): names of their own
    if isinstance(value, str) and value.strip():
        if option == "--label-field" and ("\n" in value or "\r" in value):
            raise DataError(
                f"{path}:{n}: the label {value!r} spans lines", hint="labels.txt has one per line"
            )
        return value.strip()
    if value is None:
        fields = ", ".join(str(k) for k in row) or "none"
        raise DataError(
            f"{path}:{n}: no '{name}' field (this row has: {fields})",
            hint=f"name the field that holds it with {option}",
        )
    raise DataError(f"{path}:{n}: the '{name}' field is {value!r}, not a non-empty string", hint=FORMAT_HINT)


def read_labelled(
    path: Path,
    text_field: str = "text",
    label_field: str = "intent",
    min_per_label: int = 10,
    dedupe: bool = False,
) -> LabelledFile:
    """Read and check a labelled query file; see the module docstring for what is refused."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(
            f"query file not found: {path}", hint="pass a .jsonl or .csv of labelled queries"
        )
    rows = query_rows(path)
    if not rows:
        raise DataError(f"{path}: no queries (the file is empty)", hint=FORMAT_HINT)
    queries: list[LabelledQuery] = []
    seen: dict[tuple[str, ...], LabelledQuery] = {}
    dropped = 0
    for n, row in rows:
        text = _field(path, n, row, text_field, "--text-field")
        label = _field(path, n, row, label_field, "--label-field")
        tokens = tuple(split_words(text))
        if not tokens:
            raise DataError(
                f"{path}:{n}: the query {text[:60]!r} has no words the tokenizer keeps",
                hint="remove it (the on-device tokenizer keeps only ASCII letters, digits, _ and ')",
            )
        query = LabelledQuery(n, text, label)
        first = seen.get(tokens)
        if first is not None:
            if first.label != label:
                raise DataError(
                    f"{path}:{n}: {text[:60]!r} is labelled '{label}' here and '{first.label}' on line "
                    f"{first.line}",
                    hint="fix one of the labels: one query cannot teach two intents",
                )
            if not dedupe:
                raise DataError(
                    f"{path}:{n}: {text[:60]!r} repeats line {first.line} (same words, case and punctuation "
                    "aside)",
                    hint="remove the duplicates, or pass --dedupe to keep the first of each",
                )
            dropped += 1
            continue
        seen[tokens] = query
        queries.append(query)
    counts: dict[str, int] = {}
    for q in queries:
        counts[q.label] = counts.get(q.label, 0) + 1
    if len(counts) < 2:
        raise DataError(
            f"{path}: every query has the label '{queries[0].label}'; a classifier needs at least 2 labels",
            hint=f"check --label-field (now '{label_field}')",
        )
    few = sorted((c, lab) for lab, c in counts.items() if c < min_per_label)
    if few:
        listed = ", ".join(f"'{lab}' ({c})" for c, lab in few[:5]) + (" ..." if len(few) > 5 else "")
        raise DataError(
            f"{path}: {len(few)} label(s) with fewer than {min_per_label} queries: {listed}",
            hint="add queries for them, merge them into another label, or lower --min-per-label",
        )
    return LabelledFile(path, queries, sorted(counts), dropped)
