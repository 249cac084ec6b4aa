"""The compression steps on a Keras model, shared by the Keras and the student backends.

`run_keras_steps` applies the recipe's steps in order (toolchain/steps/registry.py) and returns a
`StepsResult`: the final and the post-step float model (a QAT model holds fake-quant nodes, so its float
model is QAT's input), the typed step reports (toolchain/report/steps.py) with the float model's test
accuracy after each, the tokenizer and labels as the build saves them, and `item_map` when item_prune
dropped catalog items (metrics stay in the source's item space: a dropped item scores -inf). `KerasData`
holds the splits as the chain's model takes them (a bare id array for a one-input regex model, else a dict
by input name: toolchain/sources/keras_inputs.py); a step that rewrites the vocab makes a new one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from converters.parameters import count_parameters
from toolchain.base.errors import RecipeError
from toolchain.base.progress import Progress
from toolchain.base.tfenv import keras
from toolchain.base.types import StepKind
from toolchain.data import QuerySet, Tokenizer
from toolchain.recipe.schema import Recipe
from toolchain.report.steps import AnyStepReport
from toolchain.sources.backend import StepHook, StepsResult
from toolchain.sources.keras_inputs import Rows, encode_for
from toolchain.sources.loaded import LoadedSource
from toolchain.steps.base import StepContext
from toolchain.steps.registry import step_runner
from toolchain.tokenizers.binding import ModelInput
from toolchain.tokenizers.interface import TextTokenizer
from toolchain.tokenizers.regex import RegexTokenizer

TeacherFor = Callable[[int, Any, list[str]], Any]  # (step index, step, labels) -> a foreign Teacher or None
STEP_REPORT: TypeAdapter[AnyStepReport] = TypeAdapter(AnyStepReport)  # a step's report by its kind


@dataclass(frozen=True)
class KerasData:
    """The splits tokenized for the chain's model, and their label ids (in the source's label order).

    `tokenizer` is the word-level `toolchain.data.Tokenizer` (regex kind, which vocab_prune rewrites) or
    a `TextTokenizer` (WordPiece, or a student on its teacher's tokenizer)."""

    tokenizer: Any  # toolchain.data.Tokenizer | TextTokenizer
    model_in: tuple[ModelInput, ...]
    splits: dict[str, QuerySet]
    ids: dict[str, Rows]
    y: dict[str, np.ndarray]

    @classmethod
    def make(
        cls, tokenizer: Any, model_in: tuple[ModelInput, ...], splits: dict[str, QuerySet], labels: list[str]
    ) -> KerasData:
        data = cls(tokenizer, model_in, splits, {}, {})
        for name, qs in splits.items():
            data.ids[name] = data.encode(qs.texts)
            if qs.labels is not None:
                data.y[name] = qs.label_ids(labels)
        return data

    def with_tokenizer(self, tokenizer: Any) -> KerasData:
        """Every split tokenized again by a rewritten vocab (the label ids stay)."""
        data = KerasData(tokenizer, self.model_in, self.splits, {}, self.y)
        for name, qs in self.splits.items():
            data.ids[name] = data.encode(qs.texts)
        return data

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


def clone(model: Any) -> Any:
    """A copy with the same weights, uncompiled (no optimizer state)."""
    copy = keras().models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def top1(scores: np.ndarray, y: np.ndarray) -> float:
    return round(float(np.mean(scores.argmax(1) == y)), 4)


def source_space(scores: np.ndarray, item_map: np.ndarray | None, items: int) -> np.ndarray:
    """Scores over the source's `items`: after item_prune a dropped item scores -inf (never retrieved),
    so metrics and labels stay those of the source."""
    if item_map is None:
        return scores
    full = np.full((len(scores), items), -np.inf, dtype=np.float32)
    full[:, item_map] = scores
    return full


def run_keras_steps(
    source: LoadedSource,
    data: KerasData,
    model: Any,
    teacher_for: TeacherFor,
    progress: Progress,
    on_step: StepHook | None = None,
    source_scores: np.ndarray | None = None,
    student_vocab_step: int | None = None,
) -> StepsResult:
    """Apply the recipe's steps in order to `model` (None: the first, a distill step, builds a student)."""
    recipe = source.recipe
    refuse_steps(recipe, data, student_vocab_step)
    reports, warnings, labels = [], [], list(source.labels)
    post_step_float = first = item_map = None
    train, val = source.splits.get("train"), source.splits.get("val")
    for i, step in enumerate(recipe.steps):
        t0 = time.perf_counter()
        context = StepContext(
            data.ids.get("train"),
            data.y.get("train"),
            data.ids.get("val"),
            data.y.get("val"),
            labels,
            recipe.seed,
            progress,
            tokenizer=data.tokenizer,
            train_texts=train.texts if train else None,
            trust_model_code=recipe.source.trust_model_code,
            teacher=teacher_for(i, step, labels),
            val_texts=val.texts if val else None,
            splits=source.splits,
        )
        result = step_runner(step.kind)(step, model, context)
        model = result.model
        if step.kind != StepKind.QAT:  # a QAT model holds fake-quant nodes: its float is QAT's input
            post_step_float = model
        first = model if first is None else first  # a trim ahead of a student's distill makes none
        warnings += result.warnings
        if result.labels is not None:  # item_prune (the last step): scores of the kept items only
            index = {name: j for j, name in enumerate(source.labels)}
            item_map = np.array([index[name] for name in result.labels], dtype=np.int64)
            labels = result.labels
        if result.tokenizer is not None:  # the step rewrote the vocab: re-tokenize every split
            data = data.with_tokenizer(result.tokenizer)
        accuracy = None
        if "test" in data.y and model is not None:
            scores = source_space(predict_keras(model, data.ids["test"]), item_map, len(source.labels))
            accuracy = top1(scores, data.y["test"])
        report = {"index": i, "kind": step.kind, **result.report, "float_test_accuracy": accuracy}
        params = count_parameters(model) if model is not None else None
        report.update(parameters=params, seconds=round(time.perf_counter() - t0, 2))
        reports.append(STEP_REPORT.validate_python(report))
        if on_step is not None:
            on_step(reports[-1], None if source_scores is None else top1(source_scores, data.y["test"]))
    return StepsResult(
        model, data.text_tokenizer, labels, reports, warnings, post_step_float, first, item_map,
        source_scores, data,
    )  # fmt: skip


def refuse_steps(recipe: Recipe, data: KerasData, student_vocab_step: int | None = None) -> None:
    """Steps that cannot run on this tokenizer or these inputs: a recipe error (exit 2) before training.

    `student_vocab_step`: the index of the distill step whose `student_vocab` the source built (a foreign
    teacher as the recipe source); any other distill step's student uses the build's tokenizer."""
    for i, step in enumerate(recipe.steps):
        if step.kind == StepKind.DISTILL and step.student_vocab is not None and i != student_vocab_step:
            raise RecipeError(
                f"steps.{i}.student_vocab: only the first distill step of a recipe whose source is a "
                "foreign teacher (.onnx, .tflite, scores .jsonl) builds a student vocab; this student "
                "uses the build's tokenizer",
                hint="drop student_vocab, or make the teacher the recipe source",
            )
        if step.kind == StepKind.VOCAB_PRUNE and not data.regex:
            raise RecipeError(
                f"vocab_prune rewrites a word-level (regex) vocab; this build's tokenizer is "
                f"{data.text_tokenizer.kind}, whose subword vocab must stay as the model was trained",
                hint="use the vocab_trim step (it cuts a WordPiece vocab to the queries' pieces), or prune / "
                "lowrank to shrink the embedding table",
            )
        if step.kind == StepKind.VOCAB_TRIM and data.regex:
            raise RecipeError(
                "vocab_trim cuts a WordPiece or SentencePiece vocabulary; this build's tokenizer is a "
                "word-level (regex) vocab",
                hint="use the vocab_prune step (it drops rare words from a word-level vocab)",
            )
        foreign_student = i == student_vocab_step  # its student is built for the inputs given here
        if step.kind == StepKind.DISTILL and len(data.model_in) > 1 and not foreign_student:
            raise RecipeError(
                f"distill: the teacher takes {len(data.model_in)} inputs "
                f"({', '.join(m.name for m in data.model_in)}) and the student families are word-level "
                "models on input_ids alone",
                hint="drop distill for this model (prune, lowrank and qat work on it), or distill in the "
                "framework it was trained in",
            )
