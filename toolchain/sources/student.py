"""A foreign teacher as the recipe source: distil it into a word-level Keras student, then compress that.

When the source is an ONNX model (or Hugging Face folder), a .tflite, or a teacher scores .jsonl, and the
recipe's steps start with `distill`, the build is the student's: the first step trains a student (a family
from toolchain/steps/student.py) on the teacher's scores, and from then on everything is the Keras path:
the steps (toolchain/sources/keras_steps.py), quantization, evaluation (toolchain/sources/keras.py) and
the build directory. This backend composes those; what differs is here or in the loading
(toolchain/sources/loaded.py):

- the teacher scores texts with its own tokenizer (toolchain/steps/teachers.py: a WordPiece
  tokenizer.json beside the ONNX model, say); the student gets a word-level regex vocab built from the
  training and unlabelled queries (`distill.student_vocab`), so the packaged model needs no WordPiece on
  the phone;
- labels come from data.labels, labels.txt beside the teacher, or its config.json id2label (the one rule);
- the reference of the evaluation (`vs_source_float`) is the teacher itself on the test split: agreement
  with the teacher is the headline (`evaluation.teacher`), accuracy against the labels beside it;
- the size baseline (`source.fp32_tflite_bytes`) is the float32 student after distillation: the teacher
  is not converted (convert it on its own for its TFLite size).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from converters.keras_tflite import keras_to_tflite
from toolchain.base.progress import Progress
from toolchain.base.types import QuantMode
from toolchain.evaluation.metrics import softmax
from toolchain.evaluation.student_gates import confident_agreement
from toolchain.report.evaluation import TeacherAgreement
from toolchain.report.steps import TeacherInfo
from toolchain.sources.backend import Conversion, Evaluation, StepHook, StepsResult
from toolchain.sources.keras import (
    convert_keras,
    evaluate_keras,
    keras_int8_diagnosis,
    post_step_float,
)
from toolchain.sources.keras_steps import KerasData, clone, run_keras_steps
from toolchain.sources.loaded import LoadedSource, distill_index
from toolchain.steps.teachers import step_teacher, teacher_logits
from toolchain.tokenizers.binding import ModelInput


class StudentBackend:
    """Source = a foreign teacher (`source.teacher`); the chain's model is the student the first distill
    step trains on the build's tokenizer (`source.tokenizer`)."""

    strict_int8 = True  # the student is a Keras model: an int8 build has no float kernels left

    def __init__(self, source: LoadedSource) -> None:
        assert source.teacher is not None
        self.source = source
        self.teacher = source.teacher
        self.distill = distill_index(source.recipe) or 0  # 1 after a vocab_trim of the teacher's pieces

    def _data(self) -> KerasData:
        """The splits as the student takes them: word ids, or every output of the teacher's tokenizer."""
        tok, source = self.source.tokenizer, self.source
        assert tok is not None
        if source.recipe.steps[self.distill].student_tokenizer == "teacher":
            model_in = tuple(ModelInput(n, "int32") for n in tok.encode_batch(["a"]))
            return KerasData.make(tok, model_in, source.splits, source.labels)
        words = tok.words  # type: ignore[attr-defined]  # a RegexTokenizer: the student's word vocab
        return KerasData.make(words, (ModelInput("input_ids", "int32"),), source.splits, source.labels)

    def run_steps(self, progress: Progress, on_step: StepHook | None = None) -> StepsResult:
        """The teacher on the test split first (the reference of the evaluation), then the steps."""
        source, teacher, data = self.source, self.teacher, self._data()
        scores = None
        if "test" in data.y:
            scores = softmax(teacher_logits(teacher, source.splits["test"].texts, progress, "test"))

        def teacher_for(index: int, step: Any, labels: list[str]) -> Any:
            return teacher if index == self.distill else step_teacher(source.recipe, step, labels)

        return run_keras_steps(source, data, None, teacher_for, progress, on_step, scores, self.distill)

    def convert(self, steps: StepsResult, progress: Progress) -> Conversion:
        """The student converted; the size baseline is the float32 student right after distillation."""
        tflite, quantization, plan = convert_keras(self.source, steps, progress)
        recipe = self.source.recipe
        if recipe.quantization.mode == QuantMode.FLOAT32 and len(recipe.steps) == self.distill + 1:
            fp32 = tflite
        else:
            fp32 = keras_to_tflite(steps.first_step_model, QuantMode.FLOAT32)
        return Conversion(tflite, fp32, quantization, mixed_plan=plan)

    def float_model(self, steps: StepsResult, conversion: Conversion) -> tuple[bytes | None, Any]:
        """The float student after every step: fp32 itself when distillation was the only step."""
        if len(self.source.recipe.steps) == self.distill + 1:
            return conversion.fp32, clone(steps.post_step_float)
        return post_step_float(self.source, steps, conversion)

    def source_section(self, conversion: Conversion) -> dict[str, Any]:
        return {
            "parameters": self.teacher.parameters,
            "teacher": TeacherInfo.model_validate(self.teacher.describe()),
            "fp32_tflite_is": "the float32 student after distillation (the teacher is not converted)",
        }

    def evaluate(self, steps: StepsResult, conversion: Conversion, progress: Progress) -> Evaluation:
        evaluation, student_scores = evaluate_keras(self.source, steps, conversion.tflite, progress)
        cmp = evaluation.section.vs_source_float
        if cmp is not None and student_scores is not None and steps.source_scores is not None:
            evaluation.section.teacher = TeacherAgreement(
                agreement_with_teacher=cmp.top1_agreement,
                teacher_accuracy=cmp.reference.accuracy,
                student_accuracy=cmp.converted.accuracy,
                accuracy_drop_points=cmp.accuracy_drop_points,
                teacher=f"{self.teacher.kind} {Path(self.teacher.path).name}",
                **confident_agreement(steps.source_scores, student_scores, steps.data.y.get("test")),
            )
        return evaluation

    def int8_diagnosis(self, steps: StepsResult, conversion: Conversion) -> list[tuple[str, str, float]]:
        return keras_int8_diagnosis(self.source, steps)
