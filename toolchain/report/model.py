"""report.json as a typed model, all the way down.

Each stage owns one section: convert writes everything up to `timings_s`; validate, profile and package
add theirs through `Build.record` (toolchain/build.py). Every section and everything nested in one is a
`Record` with declared fields (toolchain/base/record.py): a reader uses attributes, and the only place
that reads report data by key is pydantic's own (de)serialisation here. The section types live beside
this module (evaluation.py, quantization.py, steps.py, stages.py; validation is devices/validate.py's
`ValidationReport`).

`model_sha256` (added at convert) is the sha256 of model.tflite and `files` the sha256 of the build's
labels.txt, vocab.txt and tokenizer.json: every later stage checks them, so a report can never describe a
model, a label order or a vocabulary that was replaced after the build.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

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
    path: str
    format: SourceFormat
    sha256: str
    parameters: int | None  # None: a distill teacher given as a scores file
    model_file: str | None = None  # ONNX: the .onnx inside a folder source
    opset: int | None = None
    onnx_ops: dict[str, int] | None = None
    input_shapes: dict[str, list[int]] | None = None
    teacher: TeacherInfo | None = None  # a foreign teacher distilled into the build's student
    fp32_tflite_is: str | None = None  # what the fp32 baseline is when it is not the source itself
    fp32_tflite_bytes: int
    fp32_tflite_gzip_bytes: int


class TokenizerSection(Record):
    """The build's tokenizer (toolchain/tokenizers/*: `describe()`)."""

    kind: TokenizerKind = TokenizerKind.REGEX
    seq_len: int
    implementation: str | None = None
    delimiter: str | None = None
    lowercase: bool | None = None
    strip_accents: bool | None = None
    vocab_size: int | None = None
    special_tokens: dict[str, int] | None = None
    source: str | None = None
    files: list[str] | None = None
    note: str | None = None


class IOQuantization(Record):
    scale: float
    zero_point: int


class IOSpec(Record):
    name: str
    dtype: str
    shape: list[int]
    quantization: IOQuantization | None = None


class ModelSection(Record):
    size_bytes: int
    gzip_bytes: int
    parameters: int
    weight_bytes: int
    ops: dict[str, int]
    op_versions: dict[str, int]
    inputs: list[IOSpec]
    outputs: list[IOSpec]


class Ratios(Record):
    size: float
    gzip: float


class FloatModelSection(Record):
    """float.tflite / float.keras: the post-step float model a build with steps saved."""

    tflite: str
    keras: str
    after_steps: list[str]
    note: str | None = None


class RejectedSection(Record):
    """Only in `<build>.rejected/report.json`: the convert gate this candidate missed and why."""

    gate: str  # evaluation.<gate> / --<gate>
    metric: str
    measured: float
    limit: float
    cost_most: CostMost
    message: str
    hint: str
    int8_worst_ops: list[tuple[str, str, float]] | None = None  # (op, node, 1 - cosine) quantized alone


class Report(Record):
    """The whole report.json, in the order it is written (a late section goes last)."""

    edgecomp_version: str
    name: str
    task: Task = Task.CLASSIFICATION
    model_sha256: str | None = None  # None only in reports written before edgecomp recorded it
    files: dict[str, str] | None = None  # labels.txt / vocab.txt / tokenizer.json -> sha256 (None: older)
    source: SourceSection
    hub: HubExportSection | None = None  # a Hugging Face folder source or teacher: its ONNX export
    tokenizer: TokenizerSection
    labels: list[str]
    steps: list[AnyStepReport]
    quantization: QuantizationSection
    model: ModelSection
    ratios_vs_fp32: Ratios
    evaluation: EvaluationSection
    warnings: list[str]
    timings_s: dict[str, float]
    float_model: FloatModelSection | None = None  # post-step float (builds with steps)
    rejected: RejectedSection | None = None  # a candidate that missed a convert gate (`<build>.rejected/`)
    distill_auto: DistillAutoSection | None = None  # student auto: every student tried, and the one kept
    validation: ValidationReport | None = None
    profile: ProfileSection | None = None
    package: PackageSection | None = None

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
