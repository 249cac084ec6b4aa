"""What the orchestration asks a source backend, the typed values the stages hand on, and the shared half.

toolchain/pipeline.py loads the source once (sources/loaded.py), picks the backend for its format and
passes values from stage to stage: `run_steps` -> `StepsResult`, `convert(steps)` -> `Conversion`,
`evaluate(steps, conversion)` -> `Evaluation`; their report pieces are the typed sections of
toolchain/report/ (step reports, `quantization`, `evaluation`). A backend keeps no state between the
calls: each takes what an earlier stage returned. What every backend shares is written once here: the
mixed-precision search's queries (`search_data`) and the int8 diagnosis of a failed gate
(`int8_diagnosis`), both parameterised by the one thing that differs per format, the float reference's
outputs on texts (the post-step Keras model, or the ONNX model in onnxruntime); and the report's
`tokenizer` section.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from converters.tflite_model import parse_tflite
from toolchain.base.progress import Progress
from toolchain.base.types import QuantMode, Task, TokenizerKind
from toolchain.quantization.mixed import SearchData, worst_ops
from toolchain.recipe.schema import MixedSpec
from toolchain.report.evaluation import EvaluationSection
from toolchain.report.model import TokenizerSection
from toolchain.report.quantization import QuantizationSection
from toolchain.report.steps import AnyStepReport, StepReport
from toolchain.sources.loaded import LoadedSource
from toolchain.tokenizers.binding import bind_inputs, tflite_inputs
from toolchain.tokenizers.interface import ATTENTION_MASK, TextTokenizer

# Quantization modes whose searches show their own progress tasks (the convert bar counts no queries)
SEARCHED_MODES = (QuantMode.MIXED, QuantMode.INT4)

# Called after each step with the step's report (its `float_test_accuracy` is the post-step float model on
# the evaluation split) and the source model's accuracy on that split; it may raise to stop the build (the
# search stops a hopeless trial this way, before quantization and evaluation).
StepHook = Callable[[StepReport, float | None], None]
Reference = Callable[[list[str]], np.ndarray]  # texts -> the float reference's outputs, one row each


@dataclass(frozen=True)
class StepsResult:
    """What the steps made (an ONNX source runs none: its model is the opened graph)."""

    model: Any  # what convert converts: the final Keras model, or the ONNX model as loaded
    tokenizer: TextTokenizer | None  # as the build saves it (vocab_prune rewrites a regex vocab)
    labels: list[str]  # as the build saves them (item_prune drops catalog items)
    reports: list[AnyStepReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    post_step_float: Any = None  # the float Keras model after the steps, before a qat step (None: no steps)
    first_step_model: Any = None  # the model after the first step (a student: right after distillation)
    item_map: np.ndarray | None = None  # item_prune: kept items -> their index in the source's labels
    source_scores: np.ndarray | None = None  # the source (or teacher) on the test split: the reference
    data: Any = None  # Keras: sources/keras_steps.KerasData, the splits as the final model takes them


@dataclass(frozen=True)
class Conversion:
    """The converted model, the float32 size baseline and the report's `quantization` section."""

    tflite: bytes
    fp32: bytes  # the source as float32 TFLite (a student: the float32 student after distillation)
    quantization: QuantizationSection
    calibrated: bytes | None = None  # a calibrated float model kept for the int8 diagnosis (ONNX)
    mixed_plan: MixedSpec | None = None  # mode mixed: the plan, for the saved recipe
    post_step_fp32: bytes | None = None  # ONNX after vocab_trim: the trimmed float32 (fp32 is the source's)


@dataclass(frozen=True)
class Evaluation:
    """The report's `evaluation` section and the test texts the gates name examples from."""

    section: EvaluationSection
    texts: list[str]


class SourceBackend(Protocol):
    """What the orchestration asks a source format for; `source` is what load_source loaded."""

    source: LoadedSource
    strict_int8: bool  # refuse an int8 build that kept float kernels

    def run_steps(self, progress: Progress, on_step: StepHook | None = None) -> StepsResult: ...

    def convert(self, steps: StepsResult, progress: Progress) -> Conversion: ...

    def evaluate(self, steps: StepsResult, conversion: Conversion, progress: Progress) -> Evaluation: ...

    def float_model(self, steps: StepsResult, conversion: Conversion) -> tuple[bytes | None, Any]:
        """The post-step float model as float32 .tflite and as Keras (saved as float.tflite, float.keras;
        None when there is none)."""
        ...

    def source_section(self, conversion: Conversion) -> dict[str, Any]: ...

    def int8_diagnosis(self, steps: StepsResult, conversion: Conversion) -> list[tuple[str, str, float]]: ...


def search_data(
    source: LoadedSource, steps: StepsResult, reference: Reference, calibrated: bytes
) -> SearchData:
    """The mixed and int4 searches' queries: the val split, else calibration, train or test (the first
    `quantization.search_queries`, default 500); the float reference's outputs are what quantization must
    preserve; labels when the split has them and the task has labels (not after item_prune: the outputs
    are no longer in the labels' order). The search scores candidates by the source's task
    (toolchain/quantization/mixed.py)."""
    assert steps.tokenizer is not None  # a mode that calibrates has one (load_source)
    name = source.first_split("val", "calibration", "train", "test")
    assert name is not None  # the calibration split at least
    split = source.splits[name]
    texts = list(split.texts[: source.recipe.quantization.search_queries])
    y = None
    if source.task != Task.EMBEDDING and steps.item_map is None and split.labels is not None:
        y = split.label_ids(source.labels)[: len(texts)]
    feeds = bind_inputs(steps.tokenizer.encode_batch(texts), tflite_inputs(parse_tflite(calibrated)))
    return SearchData(feeds, reference(texts), y, f"{split.source} ({len(texts)} queries)")


def calibration_feeds(
    source: LoadedSource, steps: StepsResult, tflite: bytes
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The source's calibration sample as `tflite`'s input feeds, and its token mask (None without one):
    what GPTQ rounding captures each layer's inputs on (toolchain/quantization/int4.py)."""
    assert steps.tokenizer is not None and source.calibration is not None  # drawn for rounding gptq
    encoded = steps.tokenizer.encode_batch(list(source.calibration.texts))
    return bind_inputs(encoded, tflite_inputs(parse_tflite(tflite))), encoded.get(ATTENTION_MASK)


def int8_diagnosis(
    source: LoadedSource, steps: StepsResult, reference: Reference, calibrated: bytes | None
) -> list[tuple[str, str, float]]:
    """The ops that damage the output most when quantized alone (for a failed int8 gate); [] without a
    calibrated model."""
    if calibrated is None:
        return []
    return worst_ops(calibrated, search_data(source, steps, reference, calibrated), source.task)


def tokenizer_section(tokenizer: TextTokenizer | None, seq_len: int) -> TokenizerSection:
    """The report's `tokenizer` section: what a phone needs to reproduce the ids."""
    if tokenizer is not None:
        return TokenizerSection.model_validate(tokenizer.describe())
    note = "no tokenizer given: parity on random ids"
    return TokenizerSection(kind=TokenizerKind.NONE, seq_len=seq_len, note=note)
