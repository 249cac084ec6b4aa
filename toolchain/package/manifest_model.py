"""manifest.json as a typed model: what `edgecomp package` writes and `edgecomp inspect` reads back.

Every section is a `Record` (toolchain/base/record.py): declared keys, written with `exclude_unset` in the
declared order, which is the order the manifest had when it was a dict (bundle.py), so the file reads as
before. The same model reads a received manifest.json: that is untrusted input, so anything malformed (not
JSON, not an object, an undeclared key, a value of the wrong type, over 16 MiB) is one InputFileError that
names the file and the first bad key. Keys that older edgecomp versions did not write are optional
(`task`, `tokenizer_parity`, a feed's `one_step_flips`, the parity's `tie_break`, `case_variants`, ...).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from toolchain.base.errors import InputFileError
from toolchain.base.record import Record
from toolchain.base.types import ManifestKind, PackageFormat, QuantMode, TokenizerKind, ValidationStatus
from toolchain.package.parity import FeedParity
from toolchain.report.model import TokenizerSection
from toolchain.report.stages import FallbackSection, TokenizerEffect

MAX_MANIFEST_BYTES = 16 << 20
PARITY_FEEDS = ("lowercased", "raw", "raw_without_case_variants", "vs_training_ids")


class DeviceStatus(Record):
    passed: bool
    runtime: str
    arch: str
    failures: list[str]


class ManifestValidation(Record):
    """The manifest's `validation`: the build's validate section as the app team needs it."""

    status: ValidationStatus
    devices: dict[str, DeviceStatus]
    override: bool | None = None  # packaged with --allow-failed-validation


class PackageMetadata(Record):
    """What the model's MediaPipe metadata says (an unset author or licence stays null)."""

    name: str
    version: str
    description: str
    author: str | None
    license: str | None


class QuantParams(Record):
    scale: float
    zero_point: int


class TensorSpec(Record):
    """One model input or output (converters/tflite_model.py `summary()`)."""

    name: str
    dtype: str
    shape: list[int]
    quantization: QuantParams | None = None


class ModelSummary(Record):
    """What is inside a .tflite (converters/tflite_model.py `summary()`; inspect adds `custom_ops`)."""

    size_bytes: int
    gzip_bytes: int
    parameters: int
    weight_bytes: int
    ops: dict[str, int]
    op_versions: dict[str, int]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    custom_ops: list[str] | None = None


class ModelEntry(Record):
    file: str  # relative to the bundle
    asset: str | None  # where the app's assets hold it (None: edge)
    sha256: str
    size_bytes: int
    gzip_bytes: int
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    validated_model_sha256: str  # the build's model (before the metadata and the float outputs)
    has_tasks_metadata: bool


class ManifestTokenizer(TokenizerSection):
    """The build's tokenizer, and what the app must do about case."""

    vocab_file: str
    app_must_lowercase: bool
    packed_vocab_lines: int | None = None  # regex: the vocab with its case variants


class TokenizerExample(Record):
    text: str
    causes: list[str]
    train_tokens: list[str]
    device_tokens: list[str]


class TokenizerParitySection(Record):
    """Train-side vs device WordPiece ids (toolchain/package/tokenizer.py)."""

    split: str
    train_side: str
    device_side: str
    queries: int
    differing: int
    differing_share: float
    by_cause: dict[str, int]
    examples: dict[str, list[TokenizerExample]]
    effect: TokenizerEffect
    summary: str


class LabelsEntry(Record):
    file: str
    count: int


class RuntimeEntry(Record):
    required: str
    min_runtime_version: str | None
    op_versions: dict[str, int]
    ops: dict[str, int]


class CaseVariants(Record):
    packed: int
    vocab_lines: int
    forms: str


class TieBreak(Record):
    eps: float
    max_score_change: float
    int8_step: float
    rule: str


class BertInputNames(Record):
    ids: str
    mask: str
    segment_ids: str


class AddedInput(Record):
    """An input the packaged model has and the build's model has not (converters/tflite_inputs.py)."""

    name: str
    role: str  # the MediaPipe metadata name it is bound to
    dtype: str
    shape: list[int]
    consumers: int  # ops that read it: 0, so its values cannot change an output
    why: str


class KernelReference(Record):
    """WordPiece: the host kernel set MediaPipe reproduced (the gated reference) and the other's parity."""

    model: str
    kernels: str
    why: str
    vs_xnnpack_kernels: dict[str, FeedParity] | None = None
    vs_builtin_kernels: dict[str, FeedParity] | None = None


class AppParity(Record):
    """The manifest's `parity`: MediaPipe's own task vs the toolchain (toolchain/package/mediapipe.py)."""

    runtime: str
    dequantized_outputs: list[str]
    input_names: BertInputNames | None = None  # wordpiece
    lowercased: FeedParity
    raw: FeedParity | None = None
    raw_without_case_variants: FeedParity | None = None  # regex: the plain vocab
    vs_training_ids: FeedParity | None = None  # sentencepiece: MediaPipe vs the toolchain on training ids
    case_variants: CaseVariants | None = None  # regex
    reference: KernelReference | None = None  # wordpiece
    int32_inputs: list[str] | None = None  # wordpiece: inputs retyped from int64
    added_inputs: list[AddedInput] | None = None  # wordpiece: a two-input export's unused segment ids
    tie_break: TieBreak | None = None  # classifiers with dequantized int8 outputs
    task: str
    split: str | None = None  # set by bundle.py
    split_draw: str | None = None  # an embedder without a test split: which of its queries were compared

    def feeds(self) -> dict[str, FeedParity]:
        """The measured feeds by name (lowercased, raw, raw_without_case_variants)."""
        found = {name: getattr(self, name) for name in PARITY_FEEDS}
        return {name: feed for name, feed in found.items() if feed is not None}


class FileEntry(Record):
    sha256: str
    size_bytes: int


class Manifest(Record):
    """The whole manifest.json, in the order it is written."""

    manifest_version: int
    name: str
    version: str
    format: PackageFormat
    created_by: str
    metadata: PackageMetadata
    model: ModelEntry
    quantization: QuantMode
    tokenizer: ManifestTokenizer
    tokenizer_parity: TokenizerParitySection | None = None  # wordpiece, MediaPipe formats
    task: ManifestKind = ManifestKind.CLASSIFIER
    labels: LabelsEntry | None
    runtime: RuntimeEntry
    recipe_sha256: str
    report_sha256: str
    validation: ManifestValidation | Literal[ValidationStatus.NOT_RUN]
    allow_failed_validation: bool
    parity: AppParity | None  # None: edge
    server_fallback: FallbackSection
    files: dict[str, FileEntry] | None = None  # every file of the bundle but this one (set last)

    @property
    def is_wordpiece(self) -> bool:
        """A BERT-path tokenizer (WordPiece or SentencePiece): MediaPipe lower-cases ASCII itself."""
        return self.tokenizer.kind in (TokenizerKind.WORDPIECE, TokenizerKind.SENTENCEPIECE)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, default=str) + "\n"


def parse_manifest(data: Any, origin: str) -> Manifest:
    """Parsed JSON -> Manifest; anything else is an InputFileError naming `origin` and the first bad key."""
    hint = "pass the manifest.json that came with the bundle (edgecomp package writes it)"
    if not isinstance(data, dict):
        raise InputFileError(
            f"{origin} is not a manifest: a JSON {type(data).__name__}, no object", hint=hint
        )
    try:
        return Manifest.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InputFileError(f"{origin} is not a manifest: {where}: {first['msg']}", hint=hint) from None


def read_manifest(path: Path) -> Manifest:
    """A received manifest.json; corrupt, not UTF-8, not an object, malformed or huge: InputFileError."""
    path = Path(path)
    hint = "pass the manifest.json that came with the bundle (edgecomp package writes it)"
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise InputFileError(
                f"{path} is not a manifest: larger than {MAX_MANIFEST_BYTES >> 20} MiB", hint
            )
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, RecursionError, ValueError) as err:
        raise InputFileError(f"{path} is not valid JSON ({err.__class__.__name__})", hint=hint) from None
    return parse_manifest(data, str(path))
