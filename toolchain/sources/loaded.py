"""LoadedSource: what a build starts from, loaded once by one policy for every source format.

`load_source(recipe)` is the only place that reads the source and the data files; the per-format backends
(keras.py, onnx.py, student.py) only do what differs per format. The policy:
- format: toolchain/sources/detect.py (the same rule tells a distillation teacher's kind). A retrieval
  model must be Keras; a .tflite or a scores .jsonl only teaches a student; an ONNX source runs no steps
  unless the first one distils it into a student (or they are one vocab_trim, on the graph).
- model: the Keras model (keras, savedmodel), the opened ONNX graph (sources/onnx_model.py, opened as an
  ONNX teacher is), or None for a foreign teacher's student (`teacher` holds the teacher, loaded by
  toolchain/steps/teachers.py; the first distill step builds the student).
- labels, one rule: data.labels > labels.txt beside the model > config.json id2label (transformers'
  LABEL_n placeholders ignored). None found is an error, except for an ONNX model under task auto whose
  outputs are not named like logits: that one is an embedding model (no labels).
- task: retrieval when the recipe says so (Keras only); embedding when it says so (ONNX), for an encoder
  folder (sentence-transformers, a bare encoder: its export is a sentence embedding) or by the rule above;
  else classification. The saved recipe records the resolved task. A Hugging Face folder is exported to
  ONNX first (sources/hub_export.py).
- tokenizer and seq_len: the model's query length (tokenizers/sources.query_length: its own fixed length,
  which data.seq_len must match, or data.seq_len for a dynamic one), then find_tokenizer once (data.tokenizer
  > data.vocab > tokenizer.json > vocab.txt beside the model). Keras needs one; an ONNX float conversion
  may run without. A foreign teacher scores with its own; the build's tokenizer is the student's: a
  word-level vocab from the training (+ unlabelled) queries (`distill.student_vocab`), or the teacher's.
- splits: every split the recipe names (train, val, test, calibration) loaded once, with labels when the
  file has them; an empty one is an error.
- calibration: for int8, int16x8 and mixed, one representative sample (data.representative_sample:
  stratified by label and length, seeded) of data.calibration, else data.train, drawn once; queries the
  build's tokenizer makes no tokens of are left out (regex: no word; others: blank).
Keras and student sources seed Python, NumPy and TF first (same seed, same weights: the model load draws
initializers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converters.keras_tflite import load_keras_model
from toolchain import data as d
from toolchain.base.errors import DataError, RecipeError, StepError
from toolchain.base.tfenv import seed_everything
from toolchain.base.types import (
    CALIBRATED_MODES,
    Int4Rounding,
    QuantMode,
    SourceFormat,
    StepKind,
    Task,
    TokenizerKind,
)
from toolchain.recipe.schema import Recipe
from toolchain.recipe.students import StudentVocab
from toolchain.report.hub import HubExportSection
from toolchain.report.quantization import CalibrationDraw
from toolchain.sources.detect import source_format
from toolchain.sources.hub_adapt import AdaptTexts
from toolchain.sources.hub_export import ParityTexts, prepare_folder
from toolchain.sources.keras_inputs import check_ids_input, check_model, fixed_length
from toolchain.sources.onnx_model import open_onnx
from toolchain.steps.teachers import Teacher, step_teacher
from toolchain.tokenizers.interface import TextTokenizer
from toolchain.tokenizers.regex import RegexTokenizer
from toolchain.tokenizers.sources import config_labels, find_tokenizer, query_length

SPLITS = ("train", "val", "test", "calibration")
# a source of these formats whose first step distils it is a teacher: the build is its student's
STUDENT_FORMATS = (SourceFormat.ONNX, SourceFormat.TFLITE, SourceFormat.SCORES)
LOGITS_HINT = "logits"  # an ONNX output named like this is a classifier's: it needs labels
DEFAULT_STUDENT_SEQ_LEN = 32


@dataclass(frozen=True)
class Calibration:
    """The calibration queries, drawn once, and the report's entries about them."""

    texts: list[str]
    source: Path  # the split file they were drawn from
    drawn: CalibrationDraw
    warnings: list[str]

    def report(self) -> dict[str, Any]:
        """The report's `quantization.calibration_*` fields."""
        return {
            "calibration_queries": len(self.texts),
            "calibration_source": str(self.source),
            "calibration_draw": self.drawn,
        }


@dataclass(frozen=True)
class LoadedSource:
    """The source model with its tokenizer, labels, splits and calibration sample (see the module doc)."""

    recipe: Recipe
    format: SourceFormat
    task: Task  # resolved
    model: Any  # Keras model | onnx_model.OnnxModel | None (a foreign teacher's student)
    tokenizer: TextTokenizer | None  # the build's; None: an ONNX float conversion without one
    labels: list[str]  # empty for an embedding model
    splits: dict[str, d.QuerySet]
    calibration: Calibration | None  # None: the quantization mode does not calibrate
    seq_len: int
    teacher: Teacher | None = None  # the foreign teacher a student is distilled from
    hub: HubExportSection | None = None  # a Hugging Face folder source or teacher: how it became ONNX

    def first_split(self, *names: str) -> str | None:
        """The first of `names` the recipe gives."""
        return next((n for n in names if n in self.splits), None)


def load_source(recipe: Recipe) -> LoadedSource:
    """Load the recipe's source once (the module docstring is the policy)."""
    fmt = source_format(recipe)
    _refuse(recipe, fmt)
    if fmt in STUDENT_FORMATS and _distills_first(recipe):
        return _student(recipe)
    if fmt == SourceFormat.ONNX:
        return _onnx(recipe)
    return _keras(recipe, fmt)


def distill_index(recipe: Recipe) -> int | None:
    """The index of the distill step a foreign teacher's student starts with: the first step, or the
    second after a vocab_trim (the student learns the teacher's trimmed pieces); None otherwise."""
    kinds = [s.kind for s in recipe.steps[:2]]
    if kinds[:1] == [StepKind.DISTILL]:
        return 0
    return 1 if kinds == [StepKind.VOCAB_TRIM, StepKind.DISTILL] else None


def _distills_first(recipe: Recipe) -> bool:
    return distill_index(recipe) is not None


def _refuse(recipe: Recipe, fmt: SourceFormat) -> None:
    src, steps = recipe.source.path, recipe.steps
    if recipe.source.task == Task.RETRIEVAL and fmt not in (SourceFormat.KERAS, SourceFormat.SAVEDMODEL):
        raise RecipeError(
            f"source.task retrieval takes a Keras model (one score per catalog item); {src.name} is {fmt}",
            hint="convert the retrieval model from Keras (.keras / SavedModel), or drop --task retrieval",
        )
    if recipe.source.adapt_lowercase and (fmt != SourceFormat.ONNX or not src.is_dir()):
        raise RecipeError(
            f"source.adapt_lowercase fine-tunes a Hugging Face folder's classifier; {src.name} is {fmt}",
            hint="pass the transformers folder (config.json + model.safetensors), or drop --adapt-lowercase",
        )
    if fmt in STUDENT_FORMATS and _distills_first(recipe):
        return
    if fmt in (SourceFormat.TFLITE, SourceFormat.SCORES):
        raise RecipeError(
            f"a {'.tflite' if fmt == SourceFormat.TFLITE else 'teacher scores'} source can only teach a "
            f"student: {src.name} is not converted itself",
            hint="start the steps with `- kind: distill` (a student is trained from it), "
            "or convert the original Keras/ONNX model",
        )
    if fmt == SourceFormat.ONNX and steps and any(s.kind != StepKind.VOCAB_TRIM for s in steps):
        raise StepError(
            "compression steps need a Keras model; an ONNX source is converted as it is (vocab_trim aside)",
            hint="drop `steps` (quantization still applies), start them with `- kind: distill` to "
            "train a Keras student from this model, or export the model to Keras",
        )


def _keras(recipe: Recipe, fmt: SourceFormat) -> LoadedSource:
    seed_everything(recipe.seed)
    src, spec = recipe.source.path, recipe.data
    model = load_keras_model(src, recipe.source.trust_model_code)
    check_model(model, src)
    labels = find_labels(recipe) or _missing_labels(recipe)
    seq_len = query_length(fixed_length(model), spec.seq_len)
    n_out = int(model.outputs[0].shape[-1])
    if n_out != len(labels):
        raise DataError(
            f"labels file has {len(labels)} labels but the model outputs {n_out} scores",
            hint="pass the labels.txt the model was trained with",
        )
    tokenizer = find_tokenizer(spec.tokenizer, spec.vocab, src, seq_len)
    if tokenizer is None:
        d.load_vocab(d.sibling_file(spec.vocab, src, "vocab.txt"))  # raises: vocab not found, with the hint
    assert tokenizer is not None
    check_ids_input(model, tokenizer.vocab_size, src)
    task = Task.RETRIEVAL if recipe.source.task == Task.RETRIEVAL else Task.CLASSIFICATION
    return _with_data(recipe, fmt, task, model, tokenizer, labels, seq_len)


def parity_texts(splits: dict[str, d.QuerySet]) -> ParityTexts:
    """The queries a Hugging Face folder's export is checked on: the first of test, calibration, train."""
    name = next((n for n in ("test", "calibration", "train") if n in splits), None)
    return (list(splits[name].texts), str(splits[name].source)) if name is not None else None


def adapt_texts(splits: dict[str, d.QuerySet]) -> AdaptTexts:
    """`source.adapt_lowercase`: fine-tune on train (else calibration), measure on test (else val)."""
    train = next((n for n in ("train", "calibration") if n in splits), None)
    if train is None:
        raise RecipeError(
            "source.adapt_lowercase fine-tunes on training queries and none were given",
            hint="pass --train (or --calibration) queries",
        )
    ev = next((n for n in ("test", "val") if n in splits), None)
    return AdaptTexts(
        train=list(splits[train].texts),
        train_split=str(splits[train].source),
        eval=None if ev is None else list(splits[ev].texts),
        eval_labels=None if ev is None else splits[ev].labels,
        eval_split=None if ev is None else str(splits[ev].source),
    )


def _onnx(recipe: Recipe) -> LoadedSource:
    src, spec = recipe.source.path, recipe.data
    splits = load_splits(recipe)
    files = (spec.tokenizer, spec.vocab)
    onnx_file = Path(recipe.source.onnx_file) if recipe.source.onnx_file else None
    adapt = adapt_texts(splits) if recipe.source.adapt_lowercase else None
    hub = prepare_folder(src, onnx_file, spec.seq_len, recipe.source.trust_model_code,
                         files, parity_texts(splits), adapt) if src.is_dir() else None  # fmt: skip
    if hub is None and recipe.source.onnx_file is not None:
        raise RecipeError(
            f"--onnx-file picks an ONNX file inside a model folder; {src} is not a folder",
            hint="pass the folder as the source, or drop --onnx-file",
        )
    seq_len = hub.seq_len if hub is not None else spec.seq_len
    model, tokenizer = open_onnx(
        src, recipe.source.input_shapes, seq_len, files, model_file=hub.onnx if hub is not None else None
    )
    labels, task = [], Task.EMBEDDING
    encoder = hub is not None and hub.section.folder.head == "encoder"  # its export is a sentence embedding
    if recipe.source.task != Task.EMBEDDING and not (encoder and recipe.source.task != Task.CLASSIFICATION):
        labels = find_labels(recipe) or []
        if not labels and recipe.source.task == Task.CLASSIFICATION:
            _missing_labels(recipe)
        if not labels and any(LOGITS_HINT in o for o in model.info.outputs):
            raise DataError(
                f"{model.path.name} outputs {', '.join(model.info.outputs)} but no labels were found "
                "(labels.txt, --labels, config.json id2label)",
                hint="pass --labels labels.txt for a classifier, or --task embedding for an embedding model",
            )
        task = Task.CLASSIFICATION if labels else Task.EMBEDDING
    calibration = draw_calibration(recipe, splits, tokenizer)
    section = hub.section if hub is not None else None
    return LoadedSource(
        recipe,
        SourceFormat.ONNX,
        task,
        model,
        tokenizer,
        labels,
        splits,
        calibration,
        model.seq_len,
        hub=section,
    )


def _student(recipe: Recipe) -> LoadedSource:
    seed_everything(recipe.seed)
    labels = find_labels(recipe) or _missing_labels(recipe)
    splits = load_splits(recipe)
    step = recipe.steps[distill_index(recipe) or 0]
    teacher = step_teacher(recipe, step, labels, recipe.source.path, parity_texts(splits))
    assert teacher is not None
    if "train" not in splits:
        raise DataError("distilling a student needs training queries", hint="set data.train (--train)")
    tokenizer = student_tokenizer(recipe, teacher, splits["train"].texts)
    return LoadedSource(
        recipe=recipe,
        format=teacher.kind,
        task=Task.CLASSIFICATION,
        model=None,  # the first distill step builds the student
        tokenizer=tokenizer,
        labels=labels,
        splits=splits,
        calibration=draw_calibration(recipe, splits, tokenizer),
        seq_len=tokenizer.seq_len,
        teacher=teacher,
        hub=teacher.hub,
    )


def student_tokenizer(recipe: Recipe, teacher: Teacher, train: list[str]) -> TextTokenizer:
    """The student's tokenizer: a word-level vocab built from the training (+ unlabelled) queries, or the
    teacher's own (`distill.student_tokenizer: teacher`)."""
    step, spec = recipe.steps[distill_index(recipe) or 0], recipe.data
    if step.student_tokenizer != "teacher" and recipe.steps[0].kind == StepKind.VOCAB_TRIM:
        raise RecipeError(
            "vocab_trim before distill trims the teacher's pieces for a student on them; this student gets "
            "a word-level vocab of its own (student_tokenizer: word)",
            hint="set the distill step's student_tokenizer: teacher, or drop the vocab_trim step "
            "(student_vocab sizes a word-level vocab)",
        )
    if step.student_tokenizer == "teacher":
        if teacher.tokenizer is None:
            raise DataError(
                f"distill: student_tokenizer teacher, but the {teacher.kind} teacher has none",
                hint="give the teacher's tokenizer.json (data.tokenizer) or use student_tokenizer: word",
            )
        return teacher.tokenizer
    corpus = list(train)
    if step.unlabelled is not None:
        corpus += d.load_queries(step.unlabelled, spec.text_field, None).texts
    vocab = step.student_vocab or StudentVocab()
    teacher_len = teacher.tokenizer.seq_len if teacher.tokenizer else None
    seq_len = vocab.seq_len or teacher_len or spec.seq_len or DEFAULT_STUDENT_SEQ_LEN
    delim = d.UNICODE_DELIM_REGEX if vocab.words == "unicode" else d.DELIM_REGEX
    words = d.build_vocab(corpus, vocab.max_size, vocab.min_count, delim, vocab.coverage)
    return RegexTokenizer(d.Tokenizer(words, seq_len, delim))


def _with_data(
    recipe: Recipe,
    fmt: SourceFormat,
    task: Task,
    model: Any,
    tokenizer: TextTokenizer | None,
    labels: list[str],
    seq_len: int,
) -> LoadedSource:
    splits = load_splits(recipe)
    calibration = draw_calibration(recipe, splits, tokenizer)
    return LoadedSource(recipe, fmt, task, model, tokenizer, labels, splits, calibration, seq_len)


def find_labels(recipe: Recipe) -> list[str] | None:
    """data.labels > labels.txt beside the model > config.json id2label; None when there are none."""
    spec, src = recipe.data, recipe.source.path
    beside = d.sibling_file(None, src, "labels.txt")
    if spec.labels is not None or beside.is_file():
        return d.load_labels(d.sibling_file(spec.labels, src, "labels.txt"))
    return config_labels(src)


def _missing_labels(recipe: Recipe) -> list[str]:
    """Raises the labels-file-not-found error (with its hint) for a model that needs labels."""
    return d.load_labels(d.sibling_file(None, recipe.source.path, "labels.txt"))


def load_splits(recipe: Recipe) -> dict[str, d.QuerySet]:
    """Every split the recipe names, loaded once (labels when the file has them); empty is an error."""
    spec, splits = recipe.data, {}
    for name in SPLITS:
        path = getattr(spec, name)
        if path is None:
            continue
        splits[name] = d.load_queries(path, spec.text_field, spec.label_field)
        if len(splits[name]) == 0:
            raise DataError(f"{name} file {path} is empty", hint="give it at least one query per line")
    return splits


def draw_calibration(
    recipe: Recipe, splits: dict[str, d.QuerySet], tokenizer: TextTokenizer | None
) -> Calibration | None:
    """The calibration sample of a mode that calibrates (None otherwise), drawn once."""
    q = recipe.quantization
    gptq = q.mode == QuantMode.INT4 and q.int4 is not None and q.int4.rounding == Int4Rounding.GPTQ
    if q.mode not in CALIBRATED_MODES and not gptq and q.smooth is None:  # smoothing measures on it too
        return None
    if tokenizer is None:
        raise DataError(
            f"{q.mode} calibrates on real queries, and {recipe.source.path} has no tokenizer "
            "(no tokenizer.json or vocab.txt given or beside the model)",
            hint="pass --tokenizer tokenizer.json or --vocab vocab.txt (and --calibration queries); "
            "float32/float16/dynamic convert without one",
        )
    name = next((n for n in ("calibration", "train") if n in splits), None)
    if name is None:
        raise DataError(f"{q.mode} needs calibration queries", hint="set data.calibration or --calibration")
    usable = d.split_words if tokenizer.kind == TokenizerKind.REGEX else str.strip
    sample = d.representative_sample(
        splits[name], q.calibration_samples, q.min_calibration_samples, recipe.seed, usable
    )
    drawn = sample.drawn
    return Calibration(sample.texts, splits[name].source, drawn, sample.warnings)
