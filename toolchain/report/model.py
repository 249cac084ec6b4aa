"""report.json as a typed model: named top-level sections, permissive inside.

Each stage owns one section: convert writes everything up to `timings_s`; validate, profile and package
add theirs through `Build.record` (toolchain/build.py). The top level is closed (an unknown section is a
bug, not data) while the sections keep `extra="allow"`: their nested dicts grow with the stages that fill
them, and a reader that only wants `passed` should not break when a metric is added.

`model_sha256` (added at convert) is the sha256 of model.tflite and `files` the sha256 of the build's
labels.txt, vocab.txt and tokenizer.json: every later stage checks them, so a report can never describe a
model, a label order or a vocabulary that was replaced after the build.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from toolchain.base.errors import InputFileError

LATE_SECTIONS = ("validation", "profile", "package")
OPTIONAL_SECTIONS = ("model_sha256", "files", "float_model", "rejected")  # left out of report.json when None


class Section(BaseModel):
    model_config = ConfigDict(extra="allow")


class SourceSection(Section):
    path: str
    format: str
    sha256: str
    parameters: int | None  # None: a distill teacher given as a scores file
    fp32_tflite_bytes: int
    fp32_tflite_gzip_bytes: int


class TokenizerSection(Section):
    kind: str = "regex"
    seq_len: int


class QuantizationSection(Section):
    mode: str


class ModelSection(Section):
    size_bytes: int
    gzip_bytes: int
    ops: dict[str, int]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]


class EvaluationSection(Section):
    """Classifiers with a labelled split: `vs_source_float` (the .tflite vs the source: accuracy drop,
    agreement vs source), `vs_final_float` (vs the post-step float: agreement vs post-step float) and
    `by_stage` (source -> after steps -> after quantization); ONNX: `onnx_reference`."""


class RejectedSection(Section):
    """Only in `<build>.rejected/report.json`: the convert gate this candidate missed and why."""

    gate: str  # evaluation.<gate> / --<gate>
    metric: str
    measured: float
    limit: float
    cost_most: str  # steps | quantization


class ValidationSection(Section):
    passed: bool
    devices: dict[str, dict[str, Any]]


class ProfileSection(Section):
    target: dict[str, Any]  # runtime, version, threads, device, arch
    methods: list[dict[str, Any]]


class PackageSection(Section):
    format: str
    bundle: str
    zip: str
    model_sha256: str


class Report(BaseModel):
    """The whole report.json, in the order it is written (a late section goes last)."""

    model_config = ConfigDict(extra="forbid")

    edgecomp_version: str
    name: str
    task: str = "classification"
    model_sha256: str | None = None  # None only in reports written before edgecomp recorded it
    files: dict[str, str] | None = None  # labels.txt / vocab.txt / tokenizer.json -> sha256 (None: older)
    source: SourceSection
    tokenizer: TokenizerSection
    labels: list[str]
    steps: list[dict[str, Any]]
    quantization: QuantizationSection
    model: ModelSection
    ratios_vs_fp32: dict[str, float]
    evaluation: EvaluationSection
    warnings: list[str]
    timings_s: dict[str, float]
    float_model: dict[str, Any] | None = None  # float.tflite / float.keras: the post-step float (step builds)
    rejected: RejectedSection | None = None  # a candidate that missed a convert gate (`<build>.rejected/`)
    validation: ValidationSection | None = None
    profile: ProfileSection | None = None
    package: PackageSection | None = None

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        return {
            k: v for k, v in data.items() if v is not None or k not in (*LATE_SECTIONS, *OPTIONAL_SECTIONS)
        }

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str) + "\n"

    def with_section(self, name: str, data: Any) -> Report:
        """A copy with one late section replaced (checked against its model)."""
        if name not in LATE_SECTIONS:
            raise ValueError(f"unknown report section {name!r}; late sections: {', '.join(LATE_SECTIONS)}")
        return Report.model_validate({**self.to_dict(), name: data})


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
