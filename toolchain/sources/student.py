"""A foreign teacher as the recipe source: distil it into a word-level Keras student, then compress that.

When the source is an ONNX model (or Hugging Face folder), a .tflite, or a teacher scores .jsonl, and the
recipe's steps start with `distill`, the build is the student's: the first step trains a student (a family
from toolchain/steps/student.py) on the teacher's scores, and from then on everything is the Keras path
(toolchain/sources/keras.py): later steps (prune, qat, ...), quantization, evaluation and the build
directory. The differences, all here:

- the teacher scores texts with its own tokenizer (toolchain/steps/teachers.py: a WordPiece
tokenizer.json beside
  the ONNX model, say); the student gets a word-level regex vocab built from the training and unlabelled
  queries (`distill.student_vocab`), so the packaged model needs no WordPiece on the phone;
- labels come from data.labels, labels.txt beside the teacher, or its config.json id2label;
- the reference of the evaluation (`vs_source_float`) is the teacher itself on the test split: agreement
  with the teacher is the headline (`evaluation.teacher`), accuracy against the labels beside it;
- the size baseline (`source.fp32_tflite_bytes`) is the float32 student after distillation: the teacher
  is not converted (convert it on its own for its TFLite size).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from toolchain.base.errors import DataError
from toolchain.base.progress import Progress
from toolchain.data import Tokenizer, sibling_file
from toolchain.recipe.schema import Recipe
from toolchain.recipe.steps import StudentVocab
from toolchain.report.evaluation import TeacherAgreement
from toolchain.sources.keras import Inputs, KerasBackend
from toolchain.steps.student import softmax
from toolchain.tokenizers.binding import ModelInput

DEFAULT_SEQ_LEN = 32


def _labels(recipe: Recipe) -> list[str]:
    from toolchain import data as d
    from toolchain.tokenizers import sources

    src = recipe.source.path
    beside = sibling_file(recipe.data.labels, src, "labels.txt")
    if recipe.data.labels is None and not beside.is_file():
        found = sources.config_labels(src) if src.is_dir() or src.suffix == ".onnx" else None
        if found:
            return found
    return d.load_labels(beside)  # raises: labels file not found, with the hint


CONFIDENT_MARGIN = 0.2  # the teacher's top-1 minus top-2 probability


def confident_agreement(teacher_probs: np.ndarray, student_scores: np.ndarray) -> dict[str, Any]:
    """Agreement on the queries where the teacher is sure (top-1 leads top-2 by CONFIDENT_MARGIN), and how
    many queries it is unsure of: there the teacher's argmax is close to a coin toss that a student with
    another tokenizer cannot copy, so this separates the student's mistakes from the teacher's doubt."""
    top = np.sort(teacher_probs, axis=1)
    sure = (top[:, -1] - top[:, -2]) >= CONFIDENT_MARGIN
    same = teacher_probs.argmax(1) == student_scores.argmax(1)
    return {
        "agreement_where_teacher_sure": round(float(same[sure].mean()), 4) if sure.any() else None,
        "teacher_sure_queries": int(sure.sum()),
        "teacher_unsure_queries": int((~sure).sum()),
        "agreement_where_teacher_unsure": round(float(same[~sure].mean()), 4) if (~sure).any() else None,
        "teacher_sure_margin": CONFIDENT_MARGIN,
    }


class StudentBackend(KerasBackend):
    """Source = a foreign teacher; the chain's model is a word-level student from the first distill step."""

    student_vocab_step = 0

    def __init__(self, recipe: Recipe) -> None:
        from toolchain import data as d
        from toolchain.base.tfenv import seed_everything
        from toolchain.steps.teachers import step_teacher

        seed_everything(recipe.seed)
        self.recipe, spec, step = recipe, recipe.data, recipe.steps[0]
        labels = _labels(recipe)
        teacher = step_teacher(recipe, step, labels, default=recipe.source.path)
        assert teacher is not None
        self.teacher = teacher
        self.source_format = self.teacher.kind
        splits = {}
        for name in ("train", "val", "test", "calibration"):
            path = getattr(spec, name)
            if path is not None:
                splits[name] = d.load_queries(path, spec.text_field, spec.label_field)
                if len(splits[name]) == 0:
                    raise DataError(f"{name} file {path} is empty", hint="give it one query per line")
        if "train" not in splits:
            raise DataError("distilling a student needs training queries", hint="set data.train (--train)")
        corpus = list(splits["train"].texts)
        if step.unlabelled is not None:
            corpus += d.load_queries(step.unlabelled, spec.text_field, None).texts
        self.inputs = self._student_inputs(step, corpus, labels)
        self.source_labels = list(labels)
        for name, qs in splits.items():
            self.inputs.splits[name] = qs
            self.inputs.ids[name] = self.inputs.encode(qs.texts)
            if qs.labels is not None:
                self.inputs.y[name] = qs.label_ids(labels)
        self.final_model = self.student_float = None
        self.source_scores = None

    def _student_inputs(self, step: Any, corpus: list[str], labels: list[str]) -> Inputs:
        """The student's tokenizer: a word-level vocab built from `corpus`, or the teacher's own."""
        from toolchain import data as d

        teacher_tok = self.teacher.tokenizer
        if step.student_tokenizer == "teacher":
            if teacher_tok is None:
                raise DataError(
                    f"distill: student_tokenizer teacher, but the {self.teacher.kind} teacher has none",
                    hint="give the teacher's tokenizer.json (data.tokenizer) or use student_tokenizer: word",
                )
            names = tuple(teacher_tok.encode_batch(["a"]))
            model_in = tuple(ModelInput(n, "int32") for n in names)
            return Inputs(None, self.teacher.kind, teacher_tok, labels, model_in)
        vocab_spec = step.student_vocab or StudentVocab()
        spec = self.recipe.data
        seq_len = vocab_spec.seq_len or (
            teacher_tok.seq_len if teacher_tok else spec.seq_len or DEFAULT_SEQ_LEN
        )
        words = Tokenizer(d.build_vocab(corpus, vocab_spec.max_size, vocab_spec.min_count), seq_len)
        return Inputs(None, self.teacher.kind, words, labels, (ModelInput("input_ids", "int32"),))

    def run_steps(self, progress: Progress, on_step: Any = None) -> tuple[list[dict], list[str]]:
        """The teacher on the test split first (the reference of the evaluation), then the steps."""
        from toolchain.steps.teachers import teacher_logits

        if "test" in self.inputs.y:
            test = self.inputs.splits["test"].texts
            self.source_scores = softmax(teacher_logits(self.teacher, test, progress, "test"))
        return super().run_steps(progress, on_step)

    def _start_model(self) -> Any:
        return None  # the distill step builds the student

    def _teacher(self, index: int, step: Any) -> Any:
        return self.teacher if index == 0 else super()._teacher(index, step)

    def _after_step(self, index: int, model: Any) -> None:
        if index == 0:
            self.student_float = model

    def fp32(self) -> bytes:
        """The float32 student right after distillation (the size baseline of the report)."""
        from converters.keras_tflite import keras_to_tflite

        if self.recipe.quantization.mode == "float32" and len(self.recipe.steps) == 1:
            return self._tflite
        return keras_to_tflite(self.student_float, "float32")

    def float_model(self, fp32: bytes) -> bytes | None:
        """The float student after every step: fp32 itself when distillation was the only step."""
        return fp32 if len(self.recipe.steps) == 1 else super().float_model(fp32)

    def source_section(self, fp32: bytes) -> dict[str, Any]:
        return {
            "parameters": self.teacher.parameters,
            "teacher": self.teacher.describe(),
            "fp32_tflite_is": "the float32 student after distillation (the teacher is not converted)",
        }

    def evaluate(self, tflite: bytes, progress: Progress) -> tuple[dict, list[str]]:
        evaluation, texts = super().evaluate(tflite, progress)
        cmp = evaluation.get("vs_source_float")
        if cmp is not None:
            evaluation["teacher"] = TeacherAgreement(
                agreement_with_teacher=cmp.top1_agreement,
                teacher_accuracy=cmp.reference.accuracy,
                student_accuracy=cmp.converted.accuracy,
                accuracy_drop_points=cmp.accuracy_drop_points,
                teacher=f"{self.teacher.kind} {Path(self.teacher.path).name}",
                **confident_agreement(self.source_scores, self.test_scores),
            )
        return evaluation, texts
