"""report.json as a typed model, all the way down.

Each stage owns one section: convert writes everything up to `timings_s`; validate, profile and package
add theirs through `Build.record` (toolchain/build.py). Every section and everything nested in one is a
`Record` with declared fields (toolchain/base/record.py): a reader uses attributes, and the only place
that reads report data by key is pydantic's own (de)serialisation here. The section types live beside
this module (evaluation.py, quantization.py, steps.py, stages.py; validation is devices/device_report.py's
`ValidationReport`).

`model_sha256` (added at convert) is the sha256 of model.tflite and `files` the sha256 of the build's
labels.txt, vocab.txt and tokenizer.json: every later stage checks them, so a report can never describe a
model, a label order or a vocabulary that was replaced after the build.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, ValidationError

from devices.validate import ValidationReport
from toolchain.base.errors import InputFileError
from toolchain.base.record import Record
from toolchain.base.types import CostMost, SourceFormat, Task, TokenizerKind
from toolchain.report.distill_auto import DistillAutoSection
from toolchain.report.evaluation import EvaluationSection
from toolchain.report.hub import HubExportSection
from toolchain.report.quantization import QuantizationSection
from toolchain.report.stages import PackageSection, ProfileSection
from toolchain.report.steps import AnyStepReport, TeacherInfo

LATE_SECTIONS = ("validation", "profile", "package")
OPTIONAL_SECTIONS = (
    "model_sha256",
    "files",
    "hub",
    "float_model",
    "rejected",
    "distill_auto",
)  # left out of report.json when None


class SourceSection(Record):
    path: str = Field(description="the source model file or folder as given to convert")
    format: SourceFormat = Field(description="what the source was read as")
    sha256: str = Field(description="sha256 of the source file (a folder: of the file converted)")
    parameters: int | None = Field(description="None: a distill teacher given as a scores file")
    model_file: str | None = Field(None, description="ONNX: the .onnx inside a folder source")
    opset: int | None = Field(None, description="ONNX sources: the graph's opset")
    onnx_ops: dict[str, int] | None = Field(
        None, description="ONNX sources: op type -> count in the source graph"
    )
    input_shapes: dict[str, list[int]] | None = Field(
        None, description="ONNX sources: input name -> shape as converted (-1: dynamic)"
    )
    teacher: TeacherInfo | None = Field(
        None, description="a foreign teacher distilled into the build's student"
    )
    fp32_tflite_is: str | None = Field(
        None, description="what the fp32 baseline is when it is not the source itself"
    )
    fp32_tflite_bytes: int = Field(
        description="bytes of the fp32 .tflite of the source: the baseline of `ratios_vs_fp32`"
    )
    fp32_tflite_gzip_bytes: int = Field(description="the same, gzip-compressed")


class TokenizerSection(Record):
    """The build's tokenizer (toolchain/tokenizers/*: `describe()`)."""

    kind: TokenizerKind = Field(TokenizerKind.REGEX, description="the tokenizer family")
    seq_len: int = Field(description="token ids per query the model takes (padded or cut to this)")
    implementation: str | None = Field(
        None, description="the library or code that tokenizes (subword tokenizers)"
    )
    delimiter: str | None = Field(None, description="regex tokenizer: the pattern queries are split on")
    lowercase: bool | None = Field(None, description="queries are lower-cased before tokenizing")
    strip_accents: bool | None = Field(None, description="accents are removed before tokenizing (WordPiece)")
    vocab_size: int | None = Field(None, description="tokens in the vocabulary")
    special_tokens: dict[str, int] | None = Field(
        None, description="special token -> id (padding, start, unknown, ...)"
    )
    source: str | None = Field(
        None, description="where the tokenizer came from (a folder's tokenizer file, the recipe)"
    )
    files: list[str] | None = Field(None, description="the tokenizer files written into the build")
    note: str | None = Field(
        None,
        description="a caveat for the app developer (e.g. what the device tokenizer does differently)",
    )


class IOQuantization(Record):
    scale: float = Field(description="real value = scale * (q - zero_point)")
    zero_point: int = Field(description="the quantized value of 0.0")


class IOSpec(Record):
    name: str = Field(description="tensor name in the .tflite")
    dtype: str = Field(description="element type (INT32, INT8, FLOAT32, ...)")
    shape: list[int] = Field(description="dimensions; -1 is dynamic (the batch)")
    quantization: IOQuantization | None = Field(None, description="set for a quantized tensor")


class ModelSection(Record):
    size_bytes: int = Field(description="bytes of model.tflite")
    gzip_bytes: int = Field(description="bytes of model.tflite gzip-compressed (what an app download costs)")
    parameters: int = Field(
        description="weights in the model (counted from the source, unchanged by quantization)"
    )
    weight_bytes: int = Field(description="bytes of the constant tensors in model.tflite")
    ops: dict[str, int] = Field(description="builtin op -> how many times the graph uses it")
    op_versions: dict[str, int] = Field(
        description="builtin op -> highest version used (what a device runtime must support)"
    )
    inputs: list[IOSpec] = Field(description="the model's input tensors")
    outputs: list[IOSpec] = Field(description="the model's output tensors")


class Ratios(Record):
    size: float = Field(description="fp32 .tflite bytes / model.tflite bytes")
    gzip: float = Field(description="the same, both gzip-compressed")


class FloatModelSection(Record):
    """float.tflite / float.keras: the post-step float model a build with steps saved."""

    tflite: str = Field(description="path of float.tflite")
    keras: str = Field(description="path of float.keras")
    after_steps: list[str] = Field(description="the steps the float model went through, in order")
    note: str | None = Field(None, description="how to use it")


class RejectedSection(Record):
    """Only in `<build>.rejected/report.json`: the convert gate this candidate missed and why."""

    gate: str = Field(description="evaluation.<gate> / --<gate>")
    metric: str = Field(description="what the gate measures")
    measured: float = Field(description="the candidate's value")
    limit: float = Field(description="the gate's limit")
    cost_most: CostMost = Field(description="which part of the build cost most (steps or quantization)")
    message: str = Field(description="the error line convert printed")
    hint: str = Field(description="what to change")
    int8_worst_ops: list[tuple[str, str, float]] | None = Field(
        None, description="(op, node, 1 - cosine) quantized alone"
    )


class Report(Record):
    """The whole report.json, in the order it is written (a late section goes last)."""

    edgecomp_version: str = Field(description="the edgecomp version that wrote the report")
    name: str = Field(description="the build's name (its folder name)")
    task: Task = Field(
        Task.CLASSIFICATION, description="what the model does (classification, embedding, retrieval)"
    )
    model_sha256: str | None = Field(
        None, description="None only in reports written before edgecomp recorded it"
    )
    files: dict[str, str] | None = Field(
        None, description="labels.txt / vocab.txt / tokenizer.json -> sha256 (None: older)"
    )
    source: SourceSection = Field(description="the model convert was given")
    hub: HubExportSection | None = Field(
        None, description="a Hugging Face folder source or teacher: its ONNX export"
    )
    tokenizer: TokenizerSection = Field(description="how queries become token ids")
    labels: list[str] = Field(description="class names in output order (empty for embedding models)")
    steps: list[AnyStepReport] = Field(
        description="the compression steps, in the order they ran, each with its own report (`kind`)"
    )
    quantization: QuantizationSection = Field(description="the quantization mode and its calibration")
    model: ModelSection = Field(description="model.tflite: size, ops, inputs and outputs")
    ratios_vs_fp32: Ratios = Field(
        description="how much smaller model.tflite is than the fp32 .tflite of the source"
    )
    evaluation: EvaluationSection = Field(description="the converted model against its float models")
    warnings: list[str] = Field(description="what convert warned about, one line each")
    timings_s: dict[str, float] = Field(description="stage -> seconds (load, steps, convert, evaluate, ...)")
    float_model: FloatModelSection | None = Field(None, description="post-step float (builds with steps)")
    rejected: RejectedSection | None = Field(
        None, description="a candidate that missed a convert gate (`<build>.rejected/`)"
    )
    distill_auto: DistillAutoSection | None = Field(
        None, description="student auto: every student tried, and the one kept"
    )
    validation: ValidationReport | None = Field(
        None, description="added by `edgecomp validate`: the device runs"
    )
    profile: ProfileSection | None = Field(
        None, description="added by `edgecomp profile`: per-op latency and quantization error"
    )
    package: PackageSection | None = Field(
        None, description="added by `edgecomp package`: the app bundle and its parity"
    )

    def to_json(self) -> dict[str, Any]:
        """report.json: every section as its stage wrote it; an optional or late section that is None is
        left out (a build without steps has no `float_model`, a passing one no `rejected`)."""
        omitted = (*LATE_SECTIONS, *OPTIONAL_SECTIONS)
        return {k: v for k, v in super().to_json().items() if v is not None or k not in omitted}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, default=str) + "\n"

    def with_section(self, name: str, section: Record) -> Report:
        """A copy with one late section replaced (checked against its model)."""
        if name not in LATE_SECTIONS:
            raise ValueError(f"unknown report section {name!r}; late sections: {', '.join(LATE_SECTIONS)}")
        return Report.model_validate({**self.to_json(), name: section.to_json()})


def parse_report(text: str, origin: str) -> Report:
    """report.json text -> Report; a malformed file is an InputFileError naming the first bad key."""
    try:
        return Report.model_validate_json(text)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InputFileError(
            f"{origin} is not an edgecomp report: {where}: {first['msg']}",
            hint="re-run `edgecomp convert` to write it again",
        ) from None
