"""`edgecomp data`: a labelled query file -> a project folder that `edgecomp train` turns into a model.

    PROJECT/data/{train,val,test}.jsonl   {"text", "intent"} rows (the recipe's default field names)
    PROJECT/labels.txt                     the labels, sorted: the model's output order
    PROJECT/vocab.txt                      the regex tokenizer's 'token id' vocab, built from train only
    PROJECT/project.json                   name, seq_len, seed and the split summary (what `train` reads)

The split is toolchain/project/split.py (grouped, stratified, seeded); the checks are
toolchain/project/labelled.py.
The vocab is built as the example's (toolchain.data.build_vocab on the train split, words seen at least
`min_count` times, so the model meets <UNKNOWN> in training too). The token length is the 99th percentile of
the train queries' words plus <START>, rounded up to a multiple of 8, between 16 and 64 (`seq_len` fixes it).
The folder is written staged and swapped in whole (toolchain.base.atomic.staged_dir): a rerun replaces a
project made by edgecomp, and a foreign non-empty folder is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from toolchain.base.atomic import staged_dir
from toolchain.base.errors import DataError, InputFileError
from toolchain.base.record import Record
from toolchain.data import Tokenizer, build_vocab, split_words
from toolchain.project.labelled import read_labelled
from toolchain.project.split import SPLITS, split_queries

PROJECT_FILE = "project.json"
PROJECT_FORMAT = 1
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SplitCounts(Record):
    train: int
    val: int
    test: int


class LabelSplitCounts(SplitCounts):
    """One label's queries per split, its phrasing groups, and how they were grouped."""

    groups: int
    grouping: Literal["near", "exact"]  # one-word variants grouped together, or exact phrasings only


class Shares(Record):
    val: float
    test: float


class Leaks(Record):
    """test/val phrasings also in train: the same skeleton, or one word apart."""

    exact: int
    near: int


class ProjectSummary(Record):
    """project.json (what `edgecomp train` reads) and what `edgecomp data` prints."""

    format: Literal[1]
    name: str
    source: str
    seed: int
    queries: int
    dropped_duplicates: int
    labels: list[str]
    shares: Shares
    splits: SplitCounts
    per_label: dict[str, LabelSplitCounts]
    groups: int
    leaks: Leaks
    vocab_size: int
    seq_len: int
    truncated_queries: int
    dir: str | None = None  # where it was written (printed, not in project.json)


@dataclass(frozen=True)
class DataOptions:
    text_field: str = "text"
    label_field: str = "intent"
    val_share: float = 0.1
    test_share: float = 0.1
    seed: int = 0
    min_per_label: int = 10
    dedupe: bool = False
    min_count: int = 2
    max_vocab: int = 8000
    seq_len: int | None = None


def project_name(out: Path, name: str | None) -> str:
    """`name`, or the folder's name made recipe-safe (letters, digits, '.', '_', '-')."""
    if name is not None:
        if not NAME_PATTERN.match(name):
            raise DataError(
                f"--name {name!r}: use letters, digits, '.', '_' and '-'", hint="e.g. travel_intent"
            )
        return name
    derived = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(out).resolve().name).lstrip("._-")
    if not derived:
        raise DataError(f"cannot make a model name from {out}", hint="pass --name, e.g. --name travel_intent")
    return derived


def choose_seq_len(texts: list[str]) -> int:
    counts = sorted(len(split_words(t)) for t in texts)
    p99 = counts[min(len(counts) - 1, math.ceil(0.99 * len(counts)) - 1)]
    return min(64, max(16, 8 * math.ceil((p99 + 1) / 8)))


def _ordered(indices: list[int], texts: list[str], seed: int) -> list[int]:
    """A seeded order that does not depend on the input's order (sha256 of seed and text)."""
    return sorted(indices, key=lambda i: hashlib.sha256(f"{seed}\0{texts[i]}".encode()).hexdigest())


def _jsonl(rows: list[dict[str, str]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def prepare_data(
    source: Path, out: Path, name: str | None = None, options: DataOptions | None = None
) -> ProjectSummary:
    """Check, split and write a project folder (module docstring); returns the summary (project.json)."""

    opts = options or DataOptions()
    name = project_name(out, name)
    if Path(source).resolve().is_relative_to(Path(out).resolve()):
        raise DataError(
            f"the query file {source} is inside --out {out}, which is replaced as a whole",
            hint="keep the query file outside the project folder",
        )
    queries = read_labelled(source, opts.text_field, opts.label_field, opts.min_per_label, opts.dedupe)
    texts = [q.text for q in queries.queries]
    labels = [q.label for q in queries.queries]
    split = split_queries(texts, labels, opts.val_share, opts.test_share, opts.seed)
    order = {s: _ordered(split.indices[s], texts, opts.seed) for s in SPLITS}
    rows = {s: [{"text": texts[i], "intent": labels[i]} for i in order[s]] for s in SPLITS}
    train_texts = [texts[i] for i in order["train"]]
    seq_len = opts.seq_len or choose_seq_len(train_texts)
    tokenizer = Tokenizer(build_vocab(train_texts, opts.max_vocab, opts.min_count), seq_len)
    truncated = sum(len(split_words(t)) > seq_len - 1 for t in texts)
    summary = ProjectSummary(
        format=PROJECT_FORMAT,
        name=name,
        source=str(Path(source).resolve()),
        seed=opts.seed,
        queries=len(texts),
        dropped_duplicates=queries.dropped_duplicates,
        labels=queries.labels,
        shares=Shares(val=opts.val_share, test=opts.test_share),
        splits=SplitCounts(**{s: len(rows[s]) for s in SPLITS}),
        per_label={
            lab: LabelSplitCounts(**info.counts, groups=info.groups, grouping=info.grouping)
            for lab, info in split.labels.items()
        },
        groups=sum(info.groups for info in split.labels.values()),
        leaks=Leaks(**split.leaks),
        vocab_size=tokenizer.vocab_size,
        seq_len=seq_len,
        truncated_queries=truncated,
    )
    with staged_dir(out) as stage:
        (stage / "data").mkdir()
        for s in SPLITS:
            (stage / "data" / f"{s}.jsonl").write_text(_jsonl(rows[s]), encoding="utf-8")
        (stage / "labels.txt").write_text("\n".join(queries.labels) + "\n", encoding="utf-8")
        tokenizer.save_vocab(stage / "vocab.txt")
        (stage / PROJECT_FILE).write_text(json.dumps(summary.to_json(), indent=2) + "\n", encoding="utf-8")
    summary.dir = str(Path(out).resolve())
    return summary


def load_project(path: Path) -> ProjectSummary:
    """project.json of a folder `edgecomp data` wrote: one-line errors (naming the first bad key) when it is
    not one."""
    file = Path(path) / PROJECT_FILE
    if not file.is_file():
        raise InputFileError(
            f"{path} is not an edgecomp project (no {PROJECT_FILE})",
            hint="make one first: edgecomp data QUERIES.jsonl --out " + str(path),
        )
    try:
        info = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise DataError(f"{file}: not valid JSON", hint="rerun edgecomp data to rewrite it") from None
    if not isinstance(info, dict):
        raise DataError(f"{file}: not a project file of format {PROJECT_FORMAT}", hint="rerun edgecomp data")
    try:
        return ProjectSummary.model_validate(info)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DataError(f"{file}: '{where}' {first['msg'].lower()}", hint="rerun edgecomp data") from None
