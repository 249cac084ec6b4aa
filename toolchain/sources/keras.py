"""The Keras/SavedModel source backend: load with tokenizer and labels, run the steps, convert, evaluate.

It answers the orchestration's questions (toolchain/pipeline.py) for a Keras source and nothing else: the
report, the gates and the build directory are assembled in one place for every format. Keras is the one
format the compression steps run on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from converters.parameters import count_parameters
from toolchain.base.errors import DataError
from toolchain.base.progress import Progress
from toolchain.base.types import Task
from toolchain.data import Tokenizer, sibling_file
from toolchain.recipe.schema import Recipe
from toolchain.sources.keras_inputs import (
    Rows,
    calibration_items,
    check_ids_input,
    check_model,
    encode_for,
    ids_input,
    model_inputs,
)
from toolchain.tokenizers.binding import ModelInput
from toolchain.tokenizers.interface import TextTokenizer
from toolchain.tokenizers.regex import RegexTokenizer


@dataclass
class Inputs:
    """Everything loaded for a build: model, tokenizer, labels and tokenized splits.

    `tokenizer` is the word-level `toolchain.data.Tokenizer` (regex kind, which vocab_prune rewrites) or a
    WordPiece `TextTokenizer`; `ids` holds each split as the model takes it
    (toolchain/sources/keras_inputs.py).
    """

    model: Any
    source_format: str
    tokenizer: Any  # toolchain.data.Tokenizer (regex) | TextTokenizer (wordpiece)
    labels: list[str]
    model_in: tuple[ModelInput, ...] = ()
    splits: dict[str, Any] = field(default_factory=dict)  # name -> QuerySet
    ids: dict[str, Rows] = field(default_factory=dict)
    y: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def regex(self) -> bool:
        return isinstance(self.tokenizer, Tokenizer)

    @property
    def text_tokenizer(self) -> TextTokenizer:
        return RegexTokenizer(self.tokenizer) if self.regex else self.tokenizer

    def encode(self, texts: list[str]) -> Rows:
        """Texts -> what the model takes: word ids for a one-input regex model, else bound by name."""
        if self.regex and len(self.model_in) == 1:
            return self.tokenizer.encode_batch(texts)
        return encode_for(self.model_in, self.text_tokenizer.encode_batch(texts))


def predict_keras(model: Any, ids: Rows, batch_size: int = 256) -> np.ndarray:
    return np.asarray(model.predict(ids, batch_size=batch_size, verbose=0), dtype=np.float32)


def _tokenizer(recipe: Recipe, seq_len: int) -> Any:
    """--tokenizer / a BERT --vocab / files beside the model (tokenizers/sources.py), as for ONNX."""
    from toolchain import data as d
    from toolchain.tokenizers import sources

    spec, src = recipe.data, recipe.source.path
    found = sources.find_tokenizer(spec.tokenizer, spec.vocab, src, seq_len)
    if found is None:
        d.load_vocab(sibling_file(spec.vocab, src, "vocab.txt"))  # raises: vocab not found, with the hint
    assert found is not None
    return found.words if isinstance(found, RegexTokenizer) else found


def load_inputs(recipe: Recipe) -> Inputs:
    """Load model, tokenizer, labels and the splits the recipe names; check they fit together."""
    from converters.keras_tflite import detect_format, load_keras_model
    from toolchain import data as d

    src = recipe.source.path
    fmt = recipe.source.format if recipe.source.format != "auto" else detect_format(src)
    model = load_keras_model(src, recipe.source.trust_model_code)
    check_model(model, src)
    spec = recipe.data
    labels = d.load_labels(sibling_file(spec.labels, src, "labels.txt"))
    shape = tuple(ids_input(model).shape)
    model_len = int(shape[1]) if len(shape) == 2 and shape[1] is not None else None
    if spec.seq_len is not None and model_len is not None and spec.seq_len != model_len:
        raise DataError(
            f"wrong input length: the model takes {model_len} tokens, the recipe says {spec.seq_len}",
            hint=f"set data.seq_len to {model_len} or leave it unset",
        )
    seq_len = spec.seq_len or model_len
    if seq_len is None:
        raise DataError("the model's input length is dynamic", hint="set data.seq_len (e.g. --seq-len 32)")
    n_out = int(model.outputs[0].shape[-1])
    if n_out != len(labels):
        raise DataError(
            f"labels file has {len(labels)} labels but the model outputs {n_out} scores",
            hint="pass the labels.txt the model was trained with",
        )
    inputs = Inputs(model, fmt, _tokenizer(recipe, seq_len), labels, model_inputs(model))
    check_ids_input(model, inputs.text_tokenizer.vocab_size, src)
    for name in ("train", "val", "test", "calibration"):
        path = getattr(spec, name)
        if path is None:
            continue
        qs = d.load_queries(path, spec.text_field, spec.label_field)
        if len(qs) == 0:
            raise DataError(f"{name} file {path} is empty", hint="give it at least one query per line")
        inputs.splits[name] = qs
        inputs.ids[name] = inputs.encode(qs.texts)
        if qs.labels is not None:
            inputs.y[name] = qs.label_ids(labels)
    return inputs


def _clone(model: Any) -> Any:
    from toolchain.base.tfenv import keras

    copy = keras().models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


class KerasBackend:
    """A Keras source: the steps run on a copy of it; evaluation compares float Keras and the .tflite."""

    strict_int8 = True  # an int8 build must have no float kernels left
    task = Task.CLASSIFICATION  # intent classifiers (regex or WordPiece); retrieval when the recipe says so
    student_vocab_step: int | None = None  # the distill step whose student vocab this backend built
    # item_prune (retrieval): kept items -> their index in source_labels; class-level so that a subclass
    # with its own __init__ (StudentBackend) has it too
    item_map: np.ndarray | None = None

    def __init__(self, recipe: Recipe) -> None:
        from toolchain.base.tfenv import seed_everything

        seed_everything(recipe.seed)
        self.recipe = recipe
        if recipe.source.task == Task.RETRIEVAL:  # one score per item of labels.txt (evaluation/retrieval.py)
            self.task = Task.RETRIEVAL
        self.inputs = load_inputs(recipe)
        self.source_labels = list(self.inputs.labels)
        self.source_format = self.inputs.source_format
        self.final_model = self.inputs.model
        self.post_step_float: Any = None  # the float model after the steps (a QAT step's input: see below)
        # the source model's test scores, taken before any step can change the tokenizer
        test = self.inputs.ids.get("test")
        self.source_scores = predict_keras(self.inputs.model, test) if "test" in self.inputs.y else None

    @property
    def tokenizer(self) -> TextTokenizer:
        """The tokenizer as the build saves it (a vocab-pruning step may have replaced the words)."""
        return self.inputs.text_tokenizer

    def tokenizer_section(self) -> dict[str, Any]:
        return self.tokenizer.describe()

    @property
    def labels(self) -> list[str]:
        return self.inputs.labels

    def _accuracy(self, model: Any) -> float | None:
        if "test" not in self.inputs.y:
            return None
        return _top1(self.source_space(predict_keras(model, self.inputs.ids["test"])), self.inputs.y["test"])

    def run_steps(self, progress: Progress, on_step: Any = None) -> tuple[list[dict], list[str]]:
        """Apply the recipe's steps in order to a copy of the source model; `on_step`: pipeline.StepHook."""
        from toolchain.steps.base import StepContext
        from toolchain.steps.registry import step_runner

        inputs, recipe = self.inputs, self.recipe
        refuse_steps(recipe, inputs, self.student_vocab_step)
        model, reports, warnings = self._start_model(), [], []
        for i, step in enumerate(recipe.steps):
            t0 = time.perf_counter()
            train, val = inputs.splits.get("train"), inputs.splits.get("val")
            context = StepContext(
                inputs.ids.get("train"),
                inputs.y.get("train"),
                inputs.ids.get("val"),
                inputs.y.get("val"),
                inputs.labels,
                recipe.seed,
                progress,
                tokenizer=inputs.tokenizer,
                train_texts=train.texts if train else None,
                trust_model_code=recipe.source.trust_model_code,
                teacher=self._teacher(i, step),
                val_texts=val.texts if val else None,
            )
            result = step_runner(step.kind)(step, model, context)
            model = result.model
            if step.kind != "qat":  # a QAT model holds fake-quant nodes: its float is QAT's input
                self.post_step_float = model
            self._after_step(i, model)
            warnings += result.warnings
            if result.labels is not None:  # item_prune (the last step): scores of the kept items only
                index = {name: i for i, name in enumerate(self.source_labels)}
                self.item_map = np.array([index[name] for name in result.labels], dtype=np.int64)
                inputs.labels = result.labels
            if result.tokenizer is not None:  # the step rewrote the vocab: re-tokenize every split
                inputs.tokenizer = result.tokenizer
                for name, qs in inputs.splits.items():
                    inputs.ids[name] = inputs.encode(qs.texts)
            reports.append(
                {
                    "index": i,
                    "kind": step.kind,
                    **result.report,
                    "float_test_accuracy": self._accuracy(model),
                    "parameters": count_parameters(model),
                    "seconds": round(time.perf_counter() - t0, 2),
                }
            )
            if on_step is not None:
                source = self.source_scores
                on_step(reports[-1], None if source is None else _top1(source, inputs.y["test"]))
        self.final_model = model
        return reports, warnings

    def _start_model(self) -> Any:
        """The model the first step receives: a copy of the source."""
        return _clone(self.inputs.model)

    def _teacher(self, index: int, step: Any) -> Any:
        """A foreign teacher a distill step names (`teacher` / `teacher_scores`), else None."""
        from toolchain.steps.teachers import step_teacher

        return step_teacher(self.recipe, step, self.inputs.labels)

    def _after_step(self, index: int, model: Any) -> None:
        """Hook for backends that keep an intermediate model."""

    def convert(self, progress: Progress) -> tuple[bytes, dict, list[str]]:
        from converters.keras_tflite import NEEDS_CALIBRATION, keras_to_tflite
        from toolchain.data import representative_sample, split_words

        q, inputs, recipe = self.recipe.quantization, self.inputs, self.recipe
        calibration, info, warnings = None, {"mode": q.mode}, []
        if q.mode in NEEDS_CALIBRATION:
            split = "calibration" if "calibration" in inputs.splits else "train"
            if split not in inputs.splits:
                raise DataError(
                    f"{q.mode} needs calibration queries", hint="set data.calibration or --calibration"
                )
            sample = representative_sample(
                inputs.splits[split],
                q.calibration_samples,
                q.min_calibration_samples,
                recipe.seed,
                split_words if inputs.regex else str.strip,
            )
            warnings = sample.warnings
            calibration = calibration_items(inputs.encode(sample.texts))
            info.update(
                calibration_queries=len(sample.texts),
                calibration_source=str(inputs.splits[split].source),
                calibration_draw=sample.drawn,
            )
        with progress.task(
            f"convert ({q.mode})" + (" + calibrate" if calibration else ""),
            len(calibration) if calibration and q.mode != "mixed" else None,
        ) as advance:
            if q.mode == "mixed":
                from converters.keras_tflite import calibrate_keras
                from toolchain.quantization.plan import build_mixed, calibrate_with_convergence

                calibrated, info["calibration_convergence"] = calibrate_with_convergence(
                    lambda items: calibrate_keras(self.final_model, items), calibration or [], progress
                )
                tflite, mixed = build_mixed(
                    calibrated, recipe, self.task, lambda: self._search_data(calibrated), progress
                )
                info.update(mixed)
                self._tflite = tflite
                return tflite, info, warnings
            tflite = keras_to_tflite(
                self.final_model,
                q.mode,
                calibration,
                progress=lambda i, n: advance(1),
                float_ops=q.float_fallback_ops,
            )
        self._tflite = tflite
        return tflite, info, warnings

    def _search_data(self, calibrated: bytes):
        """The mixed search's queries: val (labelled) if given, else the calibration queries; the post-step
        float model is the reference (what quantization must preserve)."""
        from converters.tflite_model import parse_tflite
        from toolchain.build import text_feeds
        from toolchain.quantization.mixed import SEARCH_QUERIES, SearchData

        inputs = self.inputs
        name = next(n for n in ("val", "calibration", "train", "test") if n in inputs.splits)
        texts = list(inputs.splits[name].texts[:SEARCH_QUERIES])
        reference = predict_keras(self.final_model, inputs.encode(texts))
        y = inputs.y[name][: len(texts)] if name in inputs.y and self.item_map is None else None
        feeds = text_feeds(parse_tflite(calibrated), self.tokenizer.encode_batch(texts))
        return SearchData(feeds, reference, y, f"{inputs.splits[name].source} ({len(texts)} queries)")

    def int8_diagnosis(self) -> list[tuple[str, str, float]]:
        """The ops that damage the output most when quantized alone (for a failed int8 gate)."""
        from converters.keras_tflite import calibrate_keras
        from toolchain.quantization.mixed import worst_ops
        from toolchain.sources.keras_inputs import calibration_items

        name = "calibration" if "calibration" in self.inputs.splits else "train"
        if name not in self.inputs.splits:
            return []
        texts = list(self.inputs.splits[name].texts[: self.recipe.quantization.calibration_samples])
        calibrated = calibrate_keras(self.final_model, calibration_items(self.inputs.encode(texts)))
        return worst_ops(calibrated, self._search_data(calibrated), self.task)

    def fp32(self) -> bytes:
        """The source model as float32 TFLite (the size baseline)."""
        from converters.keras_tflite import keras_to_tflite

        if self.recipe.quantization.mode == "float32" and not self.recipe.steps:
            return self._tflite
        return keras_to_tflite(self.inputs.model, "float32")

    def float_model(self, fp32: bytes) -> bytes | None:
        """The post-step float model as float32 .tflite: the fp32 source when there are no steps, else the
        model after the steps (before a QAT step, whose fake-quant model has no float export)."""
        from converters.keras_tflite import keras_to_tflite

        if not self.recipe.steps:
            return fp32
        if self.post_step_float is None:
            return None
        if self.post_step_float is self.final_model and self.recipe.quantization.mode == "float32":
            return self._tflite
        return keras_to_tflite(self.post_step_float, "float32")

    def float_keras(self) -> Any:
        """The post-step float Keras model, saved as float.keras (None: no steps, the source is it); an
        uncompiled copy, so the file holds no optimizer state (the example: 0.5 MB instead of 1.6 MB)."""
        return (
            _clone(self.post_step_float) if self.recipe.steps and self.post_step_float is not None else None
        )

    def source_section(self, fp32: bytes) -> dict[str, Any]:
        return {"parameters": count_parameters(self.inputs.model)}

    def evaluate(self, tflite: bytes, progress: Progress) -> tuple[dict, list[str]]:
        from converters.tflite_model import parse_tflite
        from devices.hostrun import HostRunner
        from toolchain.build import text_feeds
        from toolchain.evaluation.metrics import compare, stage_metrics

        inputs = self.inputs
        if "test" not in inputs.y:
            return {"skipped": "no labelled test split (set data.test)"}, []
        ids, y = inputs.ids["test"], inputs.y["test"]
        final_scores = self.source_space(predict_keras(self.final_model, ids))
        feeds = text_feeds(parse_tflite(tflite), self.tokenizer.encode_batch(inputs.splits["test"].texts))
        with HostRunner(tflite, threads=1, name=f"model.tflite of build {self.recipe.name}") as runner:
            raw_scores = runner.scores(feeds, progress, "evaluate .tflite (ai_edge_litert)")
        tfl_scores = self.source_space(raw_scores)
        self.test_scores = tfl_scores  # the converted model's test scores, for a subclass's own metrics
        texts = list(inputs.splits["test"].texts)
        evaluation = {"split": str(inputs.splits["test"].source), "runtime": "ai_edge_litert, 1 thread"}
        if self.task == Task.RETRIEVAL:
            return self._retrieval(evaluation, final_scores, tfl_scores, tflite), texts
        evaluation |= {
            "vs_final_float": compare(final_scores, tfl_scores, y, inputs.labels),
            "vs_source_float": compare(self.source_scores, tfl_scores, y, inputs.labels),
        }
        post_step = final_scores if self.recipe.steps else None
        evaluation["by_stage"] = stage_metrics(self.source_scores, post_step, tfl_scores, y, inputs.labels)
        return evaluation, texts

    def source_space(self, scores: np.ndarray) -> np.ndarray:
        """Scores over the source's items: after item_prune a dropped item scores -inf (never retrieved),
        so metrics and labels stay those of the source."""
        if self.item_map is None:
            return scores
        full = np.full((len(scores), len(self.source_labels)), -np.inf, dtype=np.float32)
        full[:, self.item_map] = scores
        return full

    def _retrieval(
        self, evaluation: dict, final: np.ndarray, tflite_scores: np.ndarray, tflite: bytes
    ) -> dict:
        """recall@1/@10, MRR and top-10 overlap by stage, and the item table's share of the weights."""
        from converters.tflite_model import parse_tflite
        from toolchain.evaluation.retrieval import retrieval_stages, table_bytes

        y, post_step = self.inputs.y["test"], final if self.recipe.steps else None
        section = retrieval_stages(self.source_scores, post_step, tflite_scores, y)
        section.size = table_bytes(parse_tflite(tflite).tensors, len(self.inputs.labels))
        return {**evaluation, "retrieval": section}


def _top1(scores: np.ndarray, y: np.ndarray) -> float:
    return round(float(np.mean(scores.argmax(1) == y)), 4)


def refuse_steps(recipe: Recipe, inputs: Inputs, student_vocab_step: int | None = None) -> None:
    """Steps that cannot run on this tokenizer or these inputs: a recipe error (exit 2) before training.

    `student_vocab_step`: the index of the distill step whose `student_vocab` the backend built (a foreign
    teacher as the recipe source); any other distill step's student uses the build's tokenizer."""
    from toolchain.base.errors import RecipeError

    for i, step in enumerate(recipe.steps):
        if step.kind == "distill" and step.student_vocab is not None and i != student_vocab_step:
            raise RecipeError(
                f"steps.{i}.student_vocab: only the first distill step of a recipe whose source is a "
                "foreign teacher (.onnx, .tflite, scores .jsonl) builds a student vocab; this student "
                "uses the build's tokenizer",
                hint="drop student_vocab, or make the teacher the recipe source",
            )
        if step.kind == "vocab_prune" and not inputs.regex:
            raise RecipeError(
                f"vocab_prune rewrites a word-level (regex) vocab; this build's tokenizer is "
                f"{inputs.text_tokenizer.kind}, whose subword vocab must stay as the model was trained",
                hint="drop the vocab_prune step (prune or lowrank shrink the embedding table instead)",
            )
        foreign_student = i == student_vocab_step  # its student is built for the inputs given here
        if step.kind == "distill" and len(inputs.model_in) > 1 and not foreign_student:
            raise RecipeError(
                f"distill: the teacher takes {len(inputs.model_in)} inputs "
                f"({', '.join(i.name for i in inputs.model_in)}) and the student families are word-level "
                "models on input_ids alone",
                hint="drop distill for this model (prune, lowrank and qat work on it), or distill in the "
                "framework it was trained in",
            )
