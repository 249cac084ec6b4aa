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

from pydantic import Field, ValidationError

from toolchain.base.errors import InputFileError
from toolchain.base.record import Record
from toolchain.base.types import ManifestKind, PackageFormat, QuantMode, TokenizerKind, ValidationStatus
from toolchain.package.parity import FeedParity
from toolchain.report.model import TokenizerSection
from toolchain.report.stages import FallbackSection, TokenizerEffect

MAX_MANIFEST_BYTES = 16 << 20
PARITY_FEEDS = ("lowercased", "raw", "raw_without_case_variants", "vs_training_ids")


class DeviceStatus(Record):
    passed: bool = Field(description="True: every check passed on this device")
    runtime: str = Field(description="its runtime and version")
    arch: str = Field(description="its architecture")
    failures: list[str] = Field(description="the failed checks, one line each")


class ManifestValidation(Record):
    """The manifest's `validation`: the build's validate section as the app team needs it."""

    status: ValidationStatus = Field(description="passed, failed or not run")
    devices: dict[str, DeviceStatus] = Field(description="device profile name -> its result")
    override: bool | None = Field(None, description="packaged with --allow-failed-validation")


class PackageMetadata(Record):
    """What the model's MediaPipe metadata says (an unset author or licence stays null)."""

    name: str = Field(description="the model's name in the metadata")
    version: str = Field(description="the package version")
    description: str = Field(description="what the model does, for the app team")
    author: str | None = Field(description="who made it (None: left out of the metadata)")
    license: str | None = Field(description="its license (None: left out of the metadata)")


class QuantParams(Record):
    scale: float = Field(description="real value = scale * (q - zero_point)")
    zero_point: int = Field(description="the quantized value of 0.0")


class TensorSpec(Record):
    """One model input or output (converters/tflite_model.py `summary()`)."""

    name: str = Field(description="tensor name")
    dtype: str = Field(description="element type")
    shape: list[int] = Field(description="dimensions; -1 is dynamic")
    quantization: QuantParams | None = Field(None, description="set for a quantized tensor")


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
    file: str = Field(description="relative to the bundle")
    asset: str | None = Field(description="where the app's assets hold it (None: edge)")
    sha256: str = Field(description="sha256 of the packaged model file")
    size_bytes: int = Field(description="its size")
    gzip_bytes: int = Field(description="its size gzip-compressed")
    inputs: list[TensorSpec] = Field(description="its input tensors")
    outputs: list[TensorSpec] = Field(description="its output tensors")
    validated_model_sha256: str = Field(
        description="the build's model (before the metadata and the float outputs)"
    )
    has_tasks_metadata: bool = Field(
        description="True: it carries MediaPipe Tasks metadata (tokenizer, labels)"
    )


class ManifestTokenizer(TokenizerSection):
    """The build's tokenizer, and what the app must do about case."""

    vocab_file: str = Field(description="the vocabulary file in the bundle")
    app_must_lowercase: bool = Field(
        description="True: the app must lower-case queries before it passes them"
    )
    packed_vocab_lines: int | None = Field(None, description="regex: the vocab with its case variants")


class TokenizerExample(Record):
    text: str = Field(description="the query")
    causes: list[str] = Field(description="why the ids differ")
    train_tokens: list[str] = Field(description="the training tokenizer's tokens")
    device_tokens: list[str] = Field(description="the device tokenizer's tokens")


class TokenizerParitySection(Record):
    """Train-side vs device WordPiece ids (toolchain/package/tokenizer.py)."""

    split: str = Field(description="the queries compared")
    train_side: str = Field(description="the tokenizer used in training")
    device_side: str = Field(description="the tokenizer the app runtime uses")
    queries: int = Field(description="queries compared")
    differing: int = Field(description="queries whose ids differ")
    differing_share: float = Field(description="differing / queries")
    by_cause: dict[str, int] = Field(description="cause -> queries")
    examples: dict[str, list[TokenizerExample]] = Field(
        description="cause -> a few queries with their tokens"
    )
    effect: TokenizerEffect = Field(description="what the different ids do to the output")
    summary: str = Field(description="the finding in one line")


class LabelsEntry(Record):
    file: str = Field(description="the labels file in the bundle")
    count: int = Field(description="labels, in output order")


class RuntimeEntry(Record):
    required: str = Field(description="the runtime the app needs")
    min_runtime_version: str | None = Field(
        description="the oldest runtime that supports the model's op versions"
    )
    op_versions: dict[str, int] = Field(description="builtin op -> version used")
    ops: dict[str, int] = Field(description="builtin op -> count")


class CaseVariants(Record):
    packed: int = Field(description="case variants added to the packed vocab")
    vocab_lines: int = Field(description="lines of the packed vocab")
    forms: str = Field(description="which cased forms are packed")


class TieBreak(Record):
    eps: float = Field(description="score difference below which two labels count as tied")
    max_score_change: float = Field(description="largest score change the tie-break makes")
    int8_step: float = Field(description="one int8 step of the output, in score units")
    rule: str = Field(description="how ties are broken")


class BertInputNames(Record):
    ids: str = Field(description="the token ids input")
    mask: str = Field(description="the attention mask input")
    segment_ids: str = Field(description="the segment ids input")


class AddedInput(Record):
    """An input the packaged model has and the build's model has not (converters/tflite_inputs.py)."""

    name: str = Field(description="input name")
    role: str = Field(description="the MediaPipe metadata name it is bound to")
    dtype: str = Field(description="element type")
    shape: list[int] = Field(description="dimensions")
    consumers: int = Field(description="ops that read it: 0, so its values cannot change an output")
    why: str = Field(description="why it was added")


class KernelReference(Record):
    """WordPiece: the host kernel set MediaPipe reproduced (the gated reference) and the other's parity."""

    model: str = Field(description="the model file compared")
    kernels: str = Field(description="the kernel set MediaPipe reproduced")
    why: str = Field(description="why that one is the reference")
    vs_xnnpack_kernels: dict[str, FeedParity] | None = Field(
        None, description="feed -> MediaPipe's parity with the toolchain on XNNPACK kernels"
    )
    vs_builtin_kernels: dict[str, FeedParity] | None = Field(
        None, description="feed -> its parity with the toolchain on the builtin (reference) kernels"
    )


class AppParity(Record):
    """The manifest's `parity`: MediaPipe's own task vs the toolchain (toolchain/package/mediapipe.py)."""

    runtime: str = Field(description="the app runtime (MediaPipe version)")
    dequantized_outputs: list[str] = Field(description="int8 outputs the packaged model dequantizes to float")
    input_names: BertInputNames | None = Field(None, description="wordpiece")
    lowercased: FeedParity = Field(description="parity on lower-cased queries (what the app should send)")
    raw: FeedParity | None = Field(None, description="parity on the queries as typed")
    raw_without_case_variants: FeedParity | None = Field(None, description="regex: the plain vocab")
    vs_training_ids: FeedParity | None = Field(
        None, description="sentencepiece: MediaPipe vs the toolchain on training ids"
    )
    case_variants: CaseVariants | None = Field(None, description="regex")
    reference: KernelReference | None = Field(None, description="wordpiece")
    int32_inputs: list[str] | None = Field(None, description="wordpiece: inputs retyped from int64")
    added_inputs: list[AddedInput] | None = Field(
        None, description="wordpiece: a two-input export's unused segment ids"
    )
    tie_break: TieBreak | None = Field(None, description="classifiers with dequantized int8 outputs")
    task: str = Field(description="the MediaPipe task compared (TextClassifier, TextEmbedder)")
    split: str | None = Field(None, description="set by bundle.py")
    split_draw: str | None = Field(
        None, description="an embedder without a test split: which of its queries were compared"
    )

    def feeds(self) -> dict[str, FeedParity]:
        """The measured feeds by name (lowercased, raw, raw_without_case_variants)."""
        found = {name: getattr(self, name) for name in PARITY_FEEDS}
        return {name: feed for name, feed in found.items() if feed is not None}


class FileEntry(Record):
    sha256: str = Field(description="sha256 of the file")
    size_bytes: int = Field(description="its size")


class Manifest(Record):
    """The whole manifest.json, in the order it is written."""

    manifest_version: int = Field(description="the manifest format's version")
    name: str = Field(description="the package name")
    version: str = Field(description="the package version")
    format: PackageFormat = Field(description="the package format")
    created_by: str = Field(description="the edgecomp version that wrote it")
    metadata: PackageMetadata = Field(description="what the model metadata says")
    model: ModelEntry = Field(description="the model file")
    quantization: QuantMode = Field(description="the build's quantization mode")
    tokenizer: ManifestTokenizer = Field(description="how the app must turn queries into ids")
    tokenizer_parity: TokenizerParitySection | None = Field(None, description="wordpiece, MediaPipe formats")
    task: ManifestKind = Field(ManifestKind.CLASSIFIER, description="what the model does for the app")
    labels: LabelsEntry | None = Field(
        description="the labels file (None: an embedder or retrieval model without labels)"
    )
    runtime: RuntimeEntry = Field(description="what the app's runtime must support")
    recipe_sha256: str = Field(description="sha256 of the build's recipe.yaml")
    report_sha256: str = Field(description="sha256 of the build's report.json")
    validation: ManifestValidation | Literal[ValidationStatus.NOT_RUN] = Field(
        description="the build's device validation when it was packaged"
    )
    allow_failed_validation: bool = Field(
        description="True: packaged although validation failed (--allow-failed-validation)"
    )
    parity: AppParity | None = Field(description="None: edge")
    server_fallback: FallbackSection = Field(
        description="the confidence threshold below which the app should ask a server"
    )
    files: dict[str, FileEntry] | None = Field(
        None, description="every file of the bundle but this one (set last)"
    )

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
