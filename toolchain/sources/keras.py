"""The Keras/SavedModel source backend: the steps on a copy of the source, convert, evaluate.

It answers the orchestration's questions (toolchain/pipeline.py) for a Keras source and nothing else: the
source was loaded by toolchain/sources/loaded.py; the report, the gates and the build directory are
assembled in the pipeline for every format. Keras is the one format the compression steps run on
(toolchain/sources/keras_steps.py). The conversion, the post-step float model and the evaluation here are
also the student backend's (toolchain/sources/student.py): a student is a Keras model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from converters.keras_tflite import calibrate_keras, keras_to_tflite
from converters.parameters import count_parameters
from converters.tflite_model import parse_tflite
from devices.hostrun import HostRunner
from toolchain.base.progress import Progress
from toolchain.base.types import QuantMode, Task
from toolchain.build import text_feeds
from toolchain.evaluation.metrics import compare, stage_metrics
from toolchain.evaluation.retrieval import retrieval_stages, table_bytes
from toolchain.quantization.int4 import build_int4
from toolchain.quantization.plan import build_mixed, calibrate_with_convergence
from toolchain.recipe.schema import MixedSpec
from toolchain.report.evaluation import EvaluationSection
from toolchain.report.quantization import QuantizationSection
from toolchain.sources.backend import (
    SEARCHED_MODES,
    Conversion,
    Evaluation,
    Reference,
    StepHook,
    StepsResult,
    calibration_feeds,
    int8_diagnosis,
    search_data,
)
from toolchain.sources.keras_inputs import calibration_items, model_inputs
from toolchain.sources.keras_steps import (
    KerasData,
    clone,
    predict_keras,
    run_keras_steps,
    source_space,
)
from toolchain.sources.loaded import LoadedSource
from toolchain.steps.teachers import step_teacher
from toolchain.tokenizers.regex import RegexTokenizer


class KerasBackend:
    """A Keras source: the steps run on a copy of it; evaluation compares float Keras and the .tflite."""

    strict_int8 = True  # an int8 build must have no float kernels left

    def __init__(self, source: LoadedSource) -> None:
        self.source = source

    def run_steps(self, progress: Progress, on_step: StepHook | None = None) -> StepsResult:
        """The source's test scores (before any step can change the tokenizer), then the steps on a copy."""
        source, tok = self.source, self.source.tokenizer
        words = tok.words if isinstance(tok, RegexTokenizer) else tok  # vocab_prune rewrites the words
        data = KerasData.make(words, model_inputs(source.model), source.splits, source.labels)
        scores = predict_keras(source.model, data.ids["test"]) if "test" in data.y else None

        def teacher_for(index: int, step: Any, labels: list[str]) -> Any:
            return step_teacher(source.recipe, step, labels)  # a foreign teacher a distill step names

        return run_keras_steps(source, data, clone(source.model), teacher_for, progress, on_step, scores)

    def convert(self, steps: StepsResult, progress: Progress) -> Conversion:
        tflite, quantization, plan = convert_keras(self.source, steps, progress)
        recipe = self.source.recipe
        if recipe.quantization.mode == QuantMode.FLOAT32 and not recipe.steps:
            fp32 = tflite  # the source converted to float32 is its own size baseline
        else:
            fp32 = keras_to_tflite(self.source.model, QuantMode.FLOAT32)
        return Conversion(tflite, fp32, quantization, mixed_plan=plan)

    def float_model(self, steps: StepsResult, conversion: Conversion) -> tuple[bytes | None, Any]:
        """The fp32 source when there are no steps, else the model after the steps (before a QAT step,
        whose fake-quant model has no float export)."""
        if not self.source.recipe.steps:
            return conversion.fp32, None
        return post_step_float(self.source, steps, conversion)

    def source_section(self, conversion: Conversion) -> dict[str, Any]:
        return {"parameters": count_parameters(self.source.model)}

    def evaluate(self, steps: StepsResult, conversion: Conversion, progress: Progress) -> Evaluation:
        return evaluate_keras(self.source, steps, conversion.tflite, progress)[0]

    def int8_diagnosis(self, steps: StepsResult, conversion: Conversion) -> list[tuple[str, str, float]]:
        return keras_int8_diagnosis(self.source, steps)


def keras_reference(steps: StepsResult) -> Reference:
    """The final float Keras model's outputs on texts: what quantization must preserve."""
    return lambda texts: predict_keras(steps.model, steps.data.encode(texts))


def convert_keras(
    source: LoadedSource, steps: StepsResult, progress: Progress
) -> tuple[bytes, QuantizationSection, MixedSpec | None]:
    """The final model to .tflite in the recipe's mode (calibrated on the source's one sample), the
    report's `quantization` section, and the mixed plan (for the saved recipe)."""
    q, recipe = source.recipe.quantization, source.recipe
    calibration, info = None, {"mode": q.mode}
    if source.calibration is not None:
        calibration = calibration_items(steps.data.encode(source.calibration.texts))
        info.update(source.calibration.report())
    with progress.task(
        f"convert ({q.mode})" + (" + calibrate" if calibration else ""),
        len(calibration) if calibration and q.mode not in SEARCHED_MODES else None,
    ) as advance:
        if q.mode == QuantMode.INT4:
            fp = keras_to_tflite(steps.model, QuantMode.FLOAT32)
            reference = keras_reference(steps)
            built = build_int4(
                fp,
                recipe,
                source.task,
                lambda: search_data(source, steps, reference, fp),
                progress,
                lambda: calibration_feeds(source, steps, fp),
            )
            info.update(int4=built.section, full_integer=False)
            return built.tflite, QuantizationSection(**info), None
        if q.mode == QuantMode.MIXED:
            calibrated, info["calibration_convergence"] = calibrate_with_convergence(
                lambda items: calibrate_keras(steps.model, items), calibration or [], progress
            )
            reference = keras_reference(steps)
            mixed = build_mixed(
                calibrated,
                recipe,
                source.task,
                lambda: search_data(source, steps, reference, calibrated),
                progress,
            )
            info.update(mixed=mixed.section, full_integer=False, int8_mac_share=mixed.int8_mac_share)
            return mixed.tflite, QuantizationSection(**info), mixed.plan
        tflite = keras_to_tflite(
            steps.model,
            q.mode,
            calibration,
            progress=lambda i, n: advance(1),
            float_ops=q.float_fallback_ops,
            per_channel=q.per_channel,
        )
    if not q.per_channel:
        info["per_channel"] = False
    return tflite, QuantizationSection(**info), None


def post_step_float(
    source: LoadedSource, steps: StepsResult, conversion: Conversion
) -> tuple[bytes | None, Any]:
    """The post-step float model as float32 .tflite and as an uncompiled Keras copy (float.keras holds
    no optimizer state: the example's 0.5 MB instead of 1.6 MB); (None, None) when a QAT step was first."""
    model = steps.post_step_float
    if model is None:
        return None, None
    if model is steps.model and source.recipe.quantization.mode == QuantMode.FLOAT32:
        return conversion.tflite, clone(model)
    return keras_to_tflite(model, QuantMode.FLOAT32), clone(model)


def keras_int8_diagnosis(source: LoadedSource, steps: StepsResult) -> list[tuple[str, str, float]]:
    """The final model calibrated on the source's calibration sample (as its int8 conversion was), then
    the shared diagnosis against the float Keras model."""
    if source.calibration is None:
        return []
    items = calibration_items(steps.data.encode(source.calibration.texts))
    return int8_diagnosis(source, steps, keras_reference(steps), calibrate_keras(steps.model, items))


def evaluate_keras(
    source: LoadedSource, steps: StepsResult, tflite: bytes, progress: Progress
) -> tuple[Evaluation, np.ndarray | None]:
    """The .tflite vs the post-step float model and vs the source on the labelled test split; also the
    .tflite's test scores (in the source's item space), for the student's comparison with its teacher."""
    data, items = steps.data, len(source.labels)
    if "test" not in data.y:
        return Evaluation(EvaluationSection(skipped="no labelled test split (set data.test)"), []), None
    ids, y, test = data.ids["test"], data.y["test"], source.splits["test"]
    final_scores = source_space(predict_keras(steps.model, ids), steps.item_map, items)
    feeds = text_feeds(parse_tflite(tflite), steps.tokenizer.encode_batch(test.texts))
    with HostRunner(tflite, threads=1, name=f"model.tflite of build {source.recipe.name}") as runner:
        raw_scores = runner.scores(feeds, progress, "evaluate .tflite (ai_edge_litert)")
    tfl_scores = source_space(raw_scores, steps.item_map, items)
    texts = list(test.texts)
    where = {"split": str(test.source), "runtime": "ai_edge_litert, 1 thread"}
    post_step = final_scores if source.recipe.steps else None
    if source.task == Task.RETRIEVAL:
        section = retrieval_stages(steps.source_scores, post_step, tfl_scores, y)  # recall@1/@10, MRR
        section.size = table_bytes(parse_tflite(tflite).tensors, len(steps.labels))  # the item table
        return Evaluation(EvaluationSection(**where, retrieval=section), texts), tfl_scores
    evaluation = EvaluationSection(
        **where,
        vs_final_float=compare(final_scores, tfl_scores, y, steps.labels, texts),
        vs_source_float=compare(steps.source_scores, tfl_scores, y, steps.labels, texts),
        by_stage=stage_metrics(steps.source_scores, post_step, tfl_scores, y, steps.labels),
    )
    return Evaluation(evaluation, texts), tfl_scores
