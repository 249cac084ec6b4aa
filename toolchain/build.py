"""The Build: one typed object for a build directory, read by `load_build` and written by `Build.record`.

validate, profile and package used to read the build directory each in their own way (a YAML peek for
the split, labels.txt assumed present, report.json re-parsed, the model fed on input 0 only). Now there is
one reader with one policy:
- model.tflite, recipe.yaml and report.json must exist (InputFileError naming the missing file); the
  tokenizer's files for the kind the report records (regex: vocab.txt; wordpiece: tokenizer.json, with
  vocab.txt beside it for packaging; sentencepiece: tokenizer.json, vocab.txt and sentencepiece.model;
  none: an ONNX float build made without a tokenizer);
  labels.txt for a classifier (an embedding build, `source.task: embedding`, has none);
- model.tflite must still hash to the report's `model_sha256`, and labels.txt, vocab.txt,
  tokenizer.json and the post-step float model (float.tflite, float.keras) to the report's `files`
  (`check_files`; `check_model` is the same check), else the report
  describes another model, label order or vocabulary and every stage refuses it, naming the file. The
  recorded files are checked inside `load_build` before they are parsed: labels.txt reordered after the
  build would make the app map scores to the wrong intents, a changed vocab.txt feeds ids the embedding
  table does not have (a GATHER error deep in package);
- `eval_set(split)` turns a split into named arrays for EVERY model input: the tokenizer's outputs bound
  to the model's inputs by name (toolchain/tokenizers/binding.py), label ids when the split has labels,
  and the texts; a split that is missing is a DataError naming it; synthetic inputs only when asked
  (`synthetic=True`) or when the build has no tokenizer (named as such in `EvalSet.source`).
- a rejected candidate (`<name>.rejected/`, written by convert when a gate failed; its report has
  `rejected`) is read only when asked (`allow_rejected`: validate, profile); package never ships it.
`record(section, data)` (a typed section) is the one writer after convert: read-modify-write of
report.json under an fcntl lock on `.report.lock` in the build dir (two stages at once both land), written
atomically, with report.md and report.html re-rendered from the same data.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from converters.tflite_model import TFLiteModel, parse_tflite
from devices.hostrun import synthetic_feeds
from toolchain.base.atomic import locked, staged_dir, write_text
from toolchain.base.errors import DataError, GateFailed, InputFileError
from toolchain.base.record import Record
from toolchain.data import load_labels, load_queries
from toolchain.recipe.compose import load_recipe
from toolchain.recipe.schema import Recipe
from toolchain.report.html import html
from toolchain.report.markdown import markdown
from toolchain.report.model import Report, parse_report
from toolchain.tokenizers.binding import bind_inputs, tflite_inputs
from toolchain.tokenizers.interface import TextTokenizer
from toolchain.tokenizers.sources import load_saved

log = logging.getLogger(__name__)

MODEL_FILE, RECIPE_FILE, REPORT_FILE, VOCAB_FILE, LABELS_FILE = (
    "model.tflite",
    "recipe.yaml",
    "report.json",
    "vocab.txt",
    "labels.txt",
)
TOKENIZER_JSON = "tokenizer.json"
SPM_MODEL = "sentencepiece.model"  # a sentencepiece build's .model file (the device tokenizer's)
FLOAT_FILE = "float.tflite"  # the post-step float model as float32 TFLite, when the build saved it
FLOAT_KERAS = "float.keras"  # the post-step float Keras model (builds with steps)
HASHED_FILES = (
    LABELS_FILE,
    VOCAB_FILE,
    TOKENIZER_JSON,
    SPM_MODEL,
    FLOAT_FILE,
    FLOAT_KERAS,
)  # the report's `files`
REJECTED_SUFFIX = ".rejected"  # build/<name>.rejected/: a candidate that missed a convert gate
LOCK_FILE = ".report.lock"
SYNTHETIC_ROWS = 256


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class EvalSet:
    """Named arrays for every model input (one row per query), label ids when known, and the texts."""

    feeds: dict[str, np.ndarray]
    label_ids: np.ndarray | None
    texts: list[str]
    source: str  # the split's path, or "synthetic ..."

    def __len__(self) -> int:
        return len(next(iter(self.feeds.values()))) if self.feeds else 0


def text_feeds(model: TFLiteModel, encoded: Mapping[str, np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
    """Tokenizer outputs (canonical names) -> every input of the model, bound by name.

    A bare id array is the regex tokenizer's convention: attention_mask = ids != <PAD> (0), segments 0.
    """

    if isinstance(encoded, np.ndarray):
        ids = encoded
        encoded = {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int32), "token_type_ids": ids * 0}
    return bind_inputs(encoded, tflite_inputs(model))


@dataclass(frozen=True)
class Build:
    """A build directory as `edgecomp convert` wrote it (+ the sections later stages recorded)."""

    dir: Path
    recipe: Recipe
    report: Report
    tokenizer: TextTokenizer | None  # None: an ONNX float build made without a tokenizer
    labels: list[str] | None  # None: an embedding model
    model_bytes: bytes
    tflite: TFLiteModel

    @property
    def model_path(self) -> Path:
        return self.dir / MODEL_FILE

    @property
    def vocab_path(self) -> Path:
        """vocab.txt as the device tokenizer reads it (regex 'token id' lines, or a BERT WordPiece vocab)."""
        return self.dir / VOCAB_FILE

    @property
    def tokenizer_kind(self) -> str:
        """regex, wordpiece, sentencepiece, or none (`build.tokenizer.kind` when there is a tokenizer)."""
        return self.tokenizer.kind if self.tokenizer is not None else "none"

    @property
    def task(self) -> str:
        return self.recipe.source.task

    @property
    def model_sha256(self) -> str:
        return sha256_bytes(self.model_bytes)

    @property
    def recipe_bytes(self) -> bytes:
        return (self.dir / RECIPE_FILE).read_bytes()

    def check_files(self) -> None:
        """Refuse a build whose model, labels.txt, vocab.txt or tokenizer.json changed since convert."""
        check_recorded_files(self.dir, self.report)
        self._check_model_hash()

    def check_model(self) -> None:
        """The same as `check_files` (kept for callers that only meant the model)."""
        self.check_files()

    def _check_model_hash(self) -> None:
        want, got = self.report.model_sha256, self.model_sha256
        if want is None:
            raise InputFileError(
                f"{self.dir / REPORT_FILE} records no model_sha256 (written by an older edgecomp)",
                hint="re-run edgecomp convert",
            )
        if want != got:
            raise InputFileError(
                f"model.tflite changed since the build (sha256 {got[:16]}…, the report says {want[:16]}…): "
                "re-run edgecomp convert",
                hint="a stage only runs on the model its report describes",
            )

    def split_path(self, split: str) -> Path:
        """The recorded path of a data split; DataError naming the split if unset or missing."""
        path = getattr(self.recipe.data, split, None)
        if path is None:
            raise DataError(
                f"the build's recipe has no {split} split (data.{split})",
                hint=f"add data.{split} to the recipe and re-run convert",
            )
        if not Path(path).is_file():
            raise DataError(
                f"the build's {split} split is not found: {path}",
                hint="restore the data file (paths are recorded absolute in recipe.yaml)",
            )
        return Path(path)

    def eval_set(self, split: str = "test", *, synthetic: bool = False, limit: int | None = None) -> EvalSet:
        """The split as named input arrays for every model input (+ label ids, texts)."""
        if synthetic or self.tokenizer is None:
            ev = synthetic_eval_set(self.tflite, limit or SYNTHETIC_ROWS)
            if self.tokenizer is None:
                ev = EvalSet(ev.feeds, None, [], ev.source + ": the build has no tokenizer")
            return ev

        path = self.split_path(split)
        data = self.recipe.data
        qs = load_queries(path, data.text_field, data.label_field if self.labels is not None else None)
        texts = qs.texts[:limit] if limit is not None else qs.texts
        feeds = text_feeds(self.tflite, self.tokenizer.encode_batch(texts))
        y = None
        if self.labels is not None and qs.labels is not None:
            dropped_items = -1 if self.task == "retrieval" else None  # item_prune: those queries miss
            y = qs.label_ids(self.labels, missing=dropped_items)[: len(texts)]
        return EvalSet(feeds, y, list(texts), str(path))

    def float_reference(self) -> Path | None:
        """The post-step float model (float.tflite) if the build saved it, else the source model if it is
        still there: the float model the per-op quantization error is measured against."""
        saved = self.dir / FLOAT_FILE
        if saved.is_file():
            return saved
        src = Path(self.report.source.path)
        return src if src.is_file() else None

    def float_reference_note(self) -> str | None:
        """Why the default float reference is not the post-step float model, when it is not."""
        if (self.dir / FLOAT_FILE).is_file() or not self.report.steps:
            return None
        return (
            "this build has steps but no float.tflite (made by an older edgecomp, or its only step is qat): "
            "the quantization error is measured against the source model and includes what the steps "
            "changed; re-run convert to save the post-step float model"
        )

    def record(self, section: str, data: Record, merge: Callable[[Any, Any], Record] | None = None) -> Report:
        """Add or replace one late section (validation, profile, package); returns the report as written.

        Locked read-modify-write: `merge(previous section or None, data)` runs under the lock, so two
        stages recording at once both land.
        """
        with locked(self.dir / LOCK_FILE):
            current = read_report(self.dir)
            if merge is not None:
                data = merge(getattr(current, section), data)
            report = current.with_section(section, data)
            text, page = markdown(report), html(report, self.model_bytes)  # rendered before any write
            write_text(self.dir / REPORT_FILE, report.dumps())
            write_text(self.dir / "report.md", text)
            write_text(self.dir / "report.html", page)
        log.debug("recorded the %s section in %s", section, self.dir / REPORT_FILE)
        return report


def file_hashes(build_dir: Path) -> dict[str, str]:
    """sha256 of the build's labels.txt, vocab.txt and tokenizer.json that exist (the report's `files`)."""
    return {
        name: sha256_bytes((build_dir / name).read_bytes())
        for name in HASHED_FILES
        if (build_dir / name).is_file()
    }


def check_recorded_files(build_dir: Path, report: Report) -> None:
    """InputFileError naming the first recorded file that changed or disappeared since the build."""
    for name, want in (report.files or {}).items():
        path = build_dir / name
        if not path.is_file():
            raise InputFileError(
                f"{build_dir} is not a complete build: {name} is missing (the build recorded it)",
                hint=f"restore {name}, or re-run edgecomp convert",
            )
        got = sha256_bytes(path.read_bytes())
        if got != want:
            raise InputFileError(
                f"{name} changed since the build (sha256 {got[:16]}…, the report says {want[:16]}…)",
                hint=f"restore the build's {name} or re-run edgecomp convert: the model was trained and "
                "checked with the recorded one",
            )


def read_report(build_dir: Path) -> Report:
    path = Path(build_dir) / REPORT_FILE
    if not path.is_file():
        raise InputFileError(
            f"no {REPORT_FILE} in {build_dir}", hint="run `edgecomp convert` to make a build"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise InputFileError(
            f"{path} is not an edgecomp report: not UTF-8 text", hint="re-run `edgecomp convert` to write it"
        ) from None
    return parse_report(text, str(path))


def synthetic_eval_set(model: TFLiteModel, rows: int = SYNTHETIC_ROWS) -> EvalSet:
    """Seeded random inputs for every model input: parity only, no accuracy."""

    return EvalSet(synthetic_feeds(model, rows), None, [], f"synthetic inputs (seed 0, {rows} rows)")


def rejected_dir(build_dir: Path) -> Path:
    """Where a candidate that missed a convert gate goes: build/<name>.rejected/, beside the build."""
    return build_dir.with_name(build_dir.name + REJECTED_SUFFIX)


def load_build(path: Path, *, allow_rejected: bool = False) -> Build:
    """The one reader of a build directory (see the module docstring for the policy).

    A rejected candidate (`<name>.rejected/`, its report has `rejected`) is refused unless `allow_rejected`
    (validate and profile may look at it; package never ships it): GateFailed naming the missed gate."""

    build_dir = Path(path)
    if build_dir.suffix == ".tflite":
        raise InputFileError(
            f"{build_dir} is a bare model", hint="pass build/<name> (edgecomp convert writes one)"
        )
    for name in (MODEL_FILE, RECIPE_FILE, REPORT_FILE):
        if not (build_dir / name).is_file():
            raise InputFileError(
                f"{build_dir} is not a complete build: {name} is missing",
                hint="run `edgecomp convert --recipe ...` to make the build",
            )
    recipe = load_recipe(build_dir / RECIPE_FILE)
    report = read_report(build_dir)
    if report.rejected is not None and not allow_rejected:
        r = report.rejected
        raise GateFailed(
            f"{build_dir} is a rejected candidate: it missed the convert gate {r.gate} ({r.metric} "
            f"{r.measured:g}, limit {r.limit:g})",
            hint="fix the cause its report.md names and re-run edgecomp convert; only a build that passed "
            "its gates is packaged",
        )
    check_recorded_files(build_dir, report)  # before labels/vocab are parsed
    labels = None
    if recipe.source.task != "embedding":
        if not (build_dir / LABELS_FILE).is_file():
            raise InputFileError(
                f"{build_dir} is not a complete build: {LABELS_FILE} is missing (a classifier needs it)",
                hint="restore labels.txt, or set source.task: embedding for an embedding model",
            )
        labels = load_labels(build_dir / LABELS_FILE)
    model_bytes = (build_dir / MODEL_FILE).read_bytes()
    tflite = parse_tflite(model_bytes, origin=str(build_dir / MODEL_FILE))
    tok = report.tokenizer
    tokenizer = load_saved(build_dir, tok.kind, tok.seq_len, tok.delimiter)
    return Build(build_dir.resolve(), recipe, report, tokenizer, labels, model_bytes, tflite)


def write_build(
    recipe: Recipe,
    tflite: bytes,
    report: Report,
    tokenizer: TextTokenizer | None,
    labels: list[str] | None,
    float_model: bytes | None = None,
    float_keras: Any = None,
    final: Path | None = None,
) -> tuple[Path, Report]:
    """Write every artifact of a convert into build/<name>/ (or `final`) at once (staged, then renamed).

    Returns the build dir and the report as written (with `files`: the sha256 of labels/vocab/tokenizer
    and the post-step float model). A rejected candidate goes to `final` = `rejected_dir(...)`.
    """
    final = final or recipe.build_dir
    with staged_dir(final) as stage:
        (stage / MODEL_FILE).write_bytes(tflite)
        (stage / RECIPE_FILE).write_text(recipe.to_yaml(), encoding="utf-8")
        if labels:  # embedding models have none
            (stage / LABELS_FILE).write_text("\n".join(labels) + "\n", encoding="utf-8")
        if float_model is not None:
            (stage / FLOAT_FILE).write_bytes(float_model)
        if float_keras is not None:
            float_keras.save(stage / FLOAT_KERAS)
        if tokenizer is not None:
            tokenizer.save(stage)
        report = report.model_copy(update={"files": file_hashes(stage)})
        (stage / REPORT_FILE).write_text(report.dumps(), encoding="utf-8")
        (stage / "report.md").write_text(markdown(report), encoding="utf-8")
        (stage / "report.html").write_text(html(report, tflite), encoding="utf-8")
    return final.resolve(), report
