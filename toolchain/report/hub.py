"""The report's `hub` section: what a Hugging Face folder held and how it became ONNX.

`HubFolderInfo` is what `edgecomp inspect DIR` shows before anything is converted (and the first half of
the section); `TorchParity` is the exported ONNX checked against PyTorch on the build's queries.
"""

from __future__ import annotations

from pydantic import Field

from toolchain.base.record import Record
from toolchain.base.types import FolderKind


class HubFolderInfo(Record):
    """A model folder as read from its files (toolchain/sources/hub_folder.py); nothing is loaded."""

    path: str
    kind: FolderKind
    architecture: str | None = None  # config.json architectures[0]
    model_type: str | None = None
    head: str | None = None  # classifier | encoder (None: an ONNX file, converted as it is)
    inputs: list[str]
    output: str | None = None
    tokenizer: str  # wordpiece | sentencepiece (unigram) | bpe | none
    tokenizer_file: str | None = None
    pooling: str | None = None  # mean | cls | max (an encoder's sentence embedding)
    normalize: bool = False
    labels: list[str] = Field(default_factory=list)
    weights: list[str] = Field(default_factory=list)  # the weights files the export reads
    weights_format: str | None = None  # safetensors | pickle
    onnx_files: list[str] = Field(default_factory=list)  # relative to the folder
    onnx_file: str | None = None  # the one converted (HUB_ONNX / ONNX)
    seq_len: int | None = None  # the folder's own query length (sentence_bert_config / tokenizer_config)
    seq_len_from: str | None = None
    notes: list[str] = Field(default_factory=list)


class TorchParity(Record):
    """The exported ONNX (onnxruntime) against the PyTorch model on the same ids."""

    queries: int
    split: str  # where the queries came from (a file, or seeded random ids)
    metric: str  # max_abs_error (classifier) | min_cosine (embedder)
    value: float
    limit: float
    max_abs_error: float
    mean_cosine: float
    min_cosine: float
    passed: bool
    torch_from_cache: bool = False


class CaseAgreement(Record):
    """A classifier on one split's queries as they are and ASCII-lower-cased (MediaPipe's SentencePiece
    path lower-cases every query)."""

    queries: int
    accuracy_cased: float | None = None  # None: the split has no labels
    accuracy_lowercased: float | None = None
    agreement: float  # top-1, cased vs lower-cased


class LowercaseAdaptation(Record):
    """`source.adapt_lowercase`: the model was CHANGED before export, fine-tuned so that a lower-cased
    query gets the original model's prediction on the query as it is (distilled from its own outputs, no
    labels); the build, its evaluation and its package are the adapted model's."""

    method: str
    train_split: str
    train_queries: int
    epochs: int
    lr: float
    temperature: float
    seconds: float
    eval_split: str | None = None
    before: CaseAgreement | None = None  # the folder's model
    after: CaseAgreement | None = None  # the adapted model that is exported


class HubExportSection(Record):
    """The folder, the export (environment, versions, the ONNX file) and its parity with PyTorch."""

    folder: HubFolderInfo
    exported: bool  # False: an ONNX file of the folder was converted as it is
    onnx_file: str
    seq_len: int
    environment: str | None = None  # the isolated PyTorch env's name
    versions: dict[str, str] | None = None
    export_from_cache: bool = False
    parity: TorchParity | None = None
    adaptation: LowercaseAdaptation | None = None  # the model was changed before export (opt-in)
