"""Distillation teachers of any format, each scoring texts with its OWN tokenizer, and a score cache.

A teacher turns query texts into logits (one row per query, one column per label):
- `onnx`: an .onnx file or a model folder (model.onnx inside; or a transformers / sentence-transformers
  folder or the Hub's onnx/ layout, exported to ONNX first as a folder source is), run in onnxruntime
  (one thread) in batches of 256 where the batch axis is dynamic (the BERT fixture's 5,984 train queries:
  1.1 s, vs 2.0 s one query per call, identical logits; all 7,480 queries of the example: 1.8 s);
- `tflite`: a .tflite run by devices/hostrun.HostRunner (one query per invoke, dequantized), in a runtime
  child started per scored query set (0.13 s), so a teacher that aborts LiteRT is a clean error;
- `keras`: a Keras model file with the tokenizer it was trained with;
- `scores`: a JSONL of precomputed scores, `{"text": ..., "logits": [...]}` or `{"text": ..., "probs": [...]}`
  per line, for teachers that live on a server. Probabilities become log-probabilities (the softmax of a
  log-probability vector is the vector itself, so soft targets are unchanged).

The kind comes from the path by the recipe source's rule (toolchain/sources/detect.py), and an ONNX teacher
is opened exactly as an ONNX source is (toolchain/sources/onnx_model.py: fixed shapes, ids input, query
length, tokenizer). Model teachers tokenize with their own tokenizer (tokenizer.json / vocab.txt given in
the recipe or beside the model, toolchain/tokenizers/sources.py; outputs bound to the model's inputs by
name) at their own query length (data.seq_len only fixes a dynamic one), so the student may use another.
Scores are computed once per query set and cached under the edgecomp cache dir
(`<cache>/teacher-scores/<sha256>.npy`), keyed by the teacher's file bytes, its tokenizer (files and
settings, and the ids it makes of these texts) and the texts: a changed model, tokenizer file or query set
is a new entry, never a stale hit.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from converters.keras_tflite import load_keras_model
from converters.parameters import count_parameters, onnx_parameters
from converters.tflite_model import parse_tflite
from devices.hostrun import HostRunner
from toolchain.base.atomic import write_bytes
from toolchain.base.errors import DataError, InputFileError
from toolchain.base.progress import Progress
from toolchain.base.types import SourceFormat
from toolchain.base.venvs import cache_dir
from toolchain.data import jsonl_rows
from toolchain.report.hub import HubFolderInfo
from toolchain.sources.detect import path_format
from toolchain.sources.hub_export import ParityTexts, prepare_folder
from toolchain.sources.hub_folder import read_folder
from toolchain.sources.keras_inputs import encode_for, fixed_length, model_inputs
from toolchain.sources.onnx_model import TokenizerFiles, open_onnx
from toolchain.steps.student import predict_logits
from toolchain.steps.teacher_layers import TeacherEncoder, read_encoder
from toolchain.tokenizers.binding import bind_inputs, tflite_inputs
from toolchain.tokenizers.interface import TextTokenizer
from toolchain.tokenizers.sources import find_tokenizer, query_length

Advance = Callable[[int], None]
TEACHER_KINDS = ("onnx", "tflite", "keras", "scores")
CACHE_FOLDER = "teacher-scores"


def _sha256_path(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        h.update(p.read_bytes())
    return h.hexdigest()


def teacher_kind(path: Path) -> SourceFormat:
    """onnx | tflite | keras | scores: the format rule of the recipe source (toolchain/sources/detect.py; a
    SavedModel teacher loads as Keras); anything else is a one-line error."""
    try:
        fmt = path_format(path)
    except InputFileError:
        raise InputFileError(
            f"cannot tell what kind of teacher {path} is",
            hint="a teacher is .onnx (or a model folder: model.onnx, transformers / sentence-transformers "
            "weights, onnx/), .tflite, .keras/.h5, or a scores .jsonl",
        ) from None
    return SourceFormat.KERAS if fmt == SourceFormat.SAVEDMODEL else fmt


@dataclass
class Teacher:
    """A model file with its tokenizer and a scoring function, or a scores file (`tokenizer` None)."""

    kind: SourceFormat  # onnx | tflite | keras | scores
    path: Path
    tokenizer: TextTokenizer | None
    score: Callable[[Sequence[str], Advance], np.ndarray]
    n_labels: int
    parameters: int | None = None
    sha256: str = ""
    stats: dict[str, int] = field(default_factory=lambda: {"scored": 0, "cached": 0})
    hub: Any = None  # report.hub.HubExportSection: a Hugging Face folder teacher's export
    onnx_file: Path | None = None  # an ONNX teacher's graph (a folder's model.onnx or its export)
    load_args: dict[str, Any] | None = None  # load_teacher arguments: how a scoring worker reloads it

    def fingerprint(self) -> str:
        """Teacher bytes + tokenizer settings (the cache key adds the texts and their ids)."""
        tok = "none"
        if self.tokenizer is not None:
            tok = json.dumps(self.tokenizer.describe(), sort_keys=True, default=str)
        return f"{self.kind}:{self.sha256}:{tok}"

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": str(self.path),
            "sha256": self.sha256,
            "file_bytes": _bytes(self.path),
            "parameters": self.parameters,
            "tokenizer": self.tokenizer.kind if self.tokenizer is not None else None,
            "queries_scored": self.stats["scored"],
            "queries_from_cache": self.stats["cached"],
        }


def _bytes(path: Path) -> int:
    return (
        sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if path.is_dir()
        else path.stat().st_size
    )


def teacher_logits(teacher: Teacher, texts: Sequence[str], progress: Progress, what: str) -> np.ndarray:
    """Logits of `texts`: from the cache when this teacher has scored exactly these texts before."""
    if teacher.kind == SourceFormat.SCORES:  # already scores: a lookup, nothing to cache
        return teacher.score(texts, lambda n: None)
    logits = _cached_logits(teacher, texts, progress, what)
    if logits.ndim != 2 or logits.shape[1] != teacher.n_labels:
        raise DataError(
            f"the teacher {teacher.path.name} gives {logits.shape[1:]} scores per query, "
            f"the labels file has {teacher.n_labels} labels",
            hint="pass the labels.txt the teacher was trained with (data.labels)",
        )
    return logits


def _cached_logits(teacher: Teacher, texts: Sequence[str], progress: Progress, what: str) -> np.ndarray:
    h = hashlib.sha256(teacher.fingerprint().encode())
    for t in texts:
        h.update(t.encode("utf-8") + b"\0")
    if teacher.tokenizer is not None:  # the ids themselves: an edited tokenizer file is a new entry
        for name, ids in sorted(teacher.tokenizer.encode_batch(list(texts)).items()):
            h.update(name.encode() + np.ascontiguousarray(ids, dtype=np.int64).tobytes())
    path = cache_dir() / CACHE_FOLDER / f"{h.hexdigest()}.npy"
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape[0] == len(texts):
                teacher.stats["cached"] += len(texts)
                return cached.astype(np.float32)
        except (OSError, ValueError):
            pass  # a damaged entry is recomputed and replaced
    with progress.task(f"teacher scores: {what} ({teacher.kind}, {len(texts)} queries)", len(texts)) as adv:
        logits = np.asarray(teacher.score(texts, adv), dtype=np.float32)
    buf = io.BytesIO()
    np.save(buf, logits, allow_pickle=False)
    write_bytes(path, buf.getvalue())
    teacher.stats["scored"] += len(texts)
    return logits


def _onnx_teacher(path: Path, files: TokenizerFiles, shapes: dict, seq_len: int | None, hub: Any):
    onnx_file = hub.onnx if hub is not None else None  # a Hugging Face folder: its export
    seq_len = hub.seq_len if hub is not None and hub.seq_len else seq_len
    model, found = open_onnx(path, shapes, seq_len, files, strict=False, model_file=onnx_file)
    tokenizer, reference = _need_tokenizer(found, path), model.reference()

    def score(texts: Sequence[str], advance: Advance) -> np.ndarray:
        encoded = bind_inputs(tokenizer.encode_batch(list(texts)), model.inputs)
        return reference.run_batched(encoded, 256, advance)

    return tokenizer, score, _onnx_parameters(model.path), model.path


def _onnx_parameters(model: Path) -> int:
    """Weights in the graph's initializers (converters/parameters.py), without loading external data."""
    import onnx

    return onnx_parameters(onnx.load(str(model), load_external_data=False).graph.initializer)


def _tflite_teacher(path: Path, files: TokenizerFiles, seq_len: int | None):
    content = path.read_bytes()
    info = parse_tflite(content)
    length = query_length(int(info.tensors[info.inputs[0]].shape[-1]), seq_len, strict=False)
    tokenizer = _need_tokenizer(find_tokenizer(*files, path, length), path)
    inputs = tflite_inputs(info)

    def score(texts: Sequence[str], advance: Advance) -> np.ndarray:
        feeds = bind_inputs(tokenizer.encode_batch(list(texts)), inputs)
        with HostRunner(path, name=f"the distillation teacher {path.name}") as runner:  # a child per call
            out = runner.scores(feeds, _AdvanceSink(advance))
        probs = bool(np.all(out >= 0) and np.allclose(out.sum(-1), 1.0, atol=2e-2))
        return np.log(np.clip(out, 1e-6, 1.0)) if probs else out

    return tokenizer, score, info.parameter_count


def _keras_teacher(path: Path, files: TokenizerFiles, seq_len: int | None, trust: bool):
    model = load_keras_model(path, trust)
    length = query_length(fixed_length(model), seq_len, strict=False)
    tokenizer = _need_tokenizer(find_tokenizer(*files, path, length), path)
    inputs = model_inputs(model)

    def score(texts: Sequence[str], advance: Advance) -> np.ndarray:
        encoded = tokenizer.encode_batch(list(texts))
        rows = encoded["input_ids"] if len(inputs) == 1 else encode_for(inputs, encoded)
        logits = predict_logits(model, rows)[0]
        advance(len(texts))
        return logits

    return tokenizer, score, count_parameters(model)


class _AdvanceSink:
    """A Progress that forwards one task's advances to an outer bar (HostRunner opens its own task)."""

    def __init__(self, advance: Advance) -> None:
        self.advance = advance

    def task(self, description: str, total: int | None):
        import contextlib

        return contextlib.nullcontext(self.advance)


def _refuse_encoder(info: HubFolderInfo, path: Path) -> None:
    """An encoder folder's export is a sentence embedding: it has no logits to teach a classifier."""
    if info.head == "encoder":
        raise DataError(
            f"the teacher {path.name} is a {info.kind} encoder (a sentence embedding): "
            "distillation trains a classifier student on a teacher's logits",
            hint="give a *ForSequenceClassification folder (or its ONNX) as the teacher, or convert the "
            "embedder itself",
        )


def _need_tokenizer(tokenizer: TextTokenizer | None, path: Path) -> TextTokenizer:
    if tokenizer is None:
        raise DataError(
            f"the teacher {path} has no tokenizer (no tokenizer.json or vocab.txt given or beside it)",
            hint="put the teacher's tokenizer.json beside it or set data.tokenizer / data.vocab",
        )
    return tokenizer


def load_scores(path: Path, n_labels: int) -> Callable[[Sequence[str], Advance], np.ndarray]:
    """A scores JSONL as a lookup text -> logits; missing texts and wrong widths are one-line errors."""
    if not path.is_file():
        raise InputFileError(f"teacher scores file not found: {path}", hint="check distill.teacher_scores")
    table: dict[str, np.ndarray] = {}
    for n, row in jsonl_rows(path, "teacher scores"):
        key = "logits" if isinstance(row, dict) and "logits" in row else "probs"
        vec = row.get(key) if isinstance(row, dict) else None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not isinstance(vec, list):
            raise DataError(
                f'{path}:{n}: expected {{"text": ..., "logits": [...]}} or {{"text": ..., "probs": [...]}}',
                hint="one scored query per line",
            )
        if len(vec) != n_labels or not all(isinstance(v, int | float) and math.isfinite(v) for v in vec):
            raise DataError(
                f"{path}:{n}: {key} must be {n_labels} finite numbers (one per label), got {len(vec)} values",
                hint="score every label in labels.txt order",
            )
        arr = np.asarray(vec, dtype=np.float32)
        table[row["text"]] = np.log(np.clip(arr, 1e-12, 1.0)) if key == "probs" else arr

    def score(texts: Sequence[str], advance: Advance) -> np.ndarray:
        missing = [t for t in texts if t not in table]
        if missing:
            raise DataError(
                f"{path}: no teacher scores for {len(missing)} of {len(texts)} queries (e.g. {missing[0]!r})",
                hint="score every train, val, test and unlabelled query with the teacher",
            )
        advance(len(texts))
        return np.stack([table[t] for t in texts]) if texts else np.zeros((0, n_labels), np.float32)

    return score


def load_teacher(
    path: Path,
    n_labels: int,
    tokenizer_files: TokenizerFiles = (None, None),
    input_shapes: dict[str, list[int]] | None = None,
    seq_len: int | None = None,
    trust_model_code: bool = False,
    parity: ParityTexts = None,
) -> Teacher:
    """The teacher at `path` (kind from the path) with its own tokenizer, ready to score texts; a Hugging
    Face folder is exported to ONNX first (toolchain/sources/hub_export.py, checked on `parity`)."""
    if not path.exists():
        raise InputFileError(f"teacher not found: {path}", hint="check the distill teacher path")
    kind = teacher_kind(path)
    tokenizer, params, hub, onnx_file = None, None, None, None
    if kind == SourceFormat.SCORES:
        score = load_scores(path, n_labels)
    elif kind == SourceFormat.ONNX:
        if path.is_dir():
            _refuse_encoder(read_folder(path, None, trust_model_code), path)
            hub = prepare_folder(path, None, seq_len, trust_model_code, tokenizer_files, parity)
        tokenizer, score, params, onnx_file = _onnx_teacher(
            path, tokenizer_files, input_shapes or {}, seq_len, hub
        )
    elif kind == SourceFormat.TFLITE:
        tokenizer, score, params = _tflite_teacher(path, tokenizer_files, seq_len)
    else:
        tokenizer, score, params = _keras_teacher(path, tokenizer_files, seq_len, trust_model_code)
    teacher = Teacher(kind, path, tokenizer, score, n_labels, params, _sha256_path(path))
    teacher.hub = hub.section if hub is not None else None
    teacher.onnx_file = onnx_file
    teacher.load_args = {
        "path": str(path.resolve()),
        "n_labels": n_labels,
        "tokenizer": None if tokenizer_files[0] is None else str(Path(tokenizer_files[0]).resolve()),
        "vocab": None if tokenizer_files[1] is None else str(Path(tokenizer_files[1]).resolve()),
        "input_shapes": input_shapes or {},
        "seq_len": seq_len,
        "trust_model_code": trust_model_code,
    }
    return teacher


def step_teacher(
    recipe: Any, step: Any, labels: list[str], default: Path | None = None, parity: ParityTexts = None
) -> Teacher | None:
    """The teacher of a distill step: its `teacher_scores` or `teacher`, else `default` (a foreign recipe
    source), else None (the chain's Keras model teaches). Tokenizer files: data.tokenizer / data.vocab
    when the teacher is the recipe source, else the ones beside the teacher."""
    if getattr(step, "kind", None) != "distill":
        return None
    path = step.teacher_scores or step.teacher or default
    if path is None:
        return None
    spec = recipe.data
    own = path == default
    return load_teacher(
        path,
        len(labels),
        (spec.tokenizer, spec.vocab) if own else (None, None),
        recipe.source.input_shapes if own else {},
        spec.seq_len,
        recipe.source.trust_model_code,
        parity,
    )


def teacher_embedding(teacher: Teacher, vocab_size: int) -> np.ndarray:
    """An ONNX teacher's input-token embedding table [vocab_size, hidden] (read from its initializers:
    the 2-D one with a row per token of its tokenizer, preferring a name with `word_embeddings` and an
    exact row count)."""
    return teacher_encoder(teacher, vocab_size).word[0]


def teacher_encoder(teacher: Teacher, vocab_size: int) -> TeacherEncoder:
    """An ONNX teacher's embeddings and encoder layers (toolchain/steps/teacher_layers.py)."""
    if teacher.onnx_file is None:
        raise DataError(
            f"embedding_init teacher needs an ONNX teacher's embedding table; {teacher.path.name} is "
            f"{teacher.kind}",
            hint="drop student.embedding_init, or distil from the ONNX model (or Hugging Face folder)",
        )
    encoder = read_encoder(teacher.onnx_file, vocab_size)
    if encoder is None:
        raise DataError(
            f"the teacher {teacher.path.name} has no [{vocab_size}, hidden] embedding table (one row per "
            "token of its tokenizer)",
            hint="drop student.embedding_init: the student's embedding starts at random",
        )
    return encoder
