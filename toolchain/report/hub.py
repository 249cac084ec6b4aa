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

    path: str = Field(description="the folder")
    kind: FolderKind = Field(
        description="what the folder holds (a transformers model, sentence-transformers, ONNX, ...)"
    )
    architecture: str | None = Field(None, description="config.json architectures[0]")
    model_type: str | None = Field(None, description="config.json model_type")
    head: str | None = Field(
        None, description="classifier | encoder (None: an ONNX file, converted as it is)"
    )
    inputs: list[str] = Field(description="the model's input names")
    output: str | None = Field(None, description="the output used")
    tokenizer: str = Field(description="wordpiece | sentencepiece (unigram) | bpe | none")
    tokenizer_file: str | None = Field(None, description="the tokenizer file used")
    pooling: str | None = Field(None, description="mean | cls | max (an encoder's sentence embedding)")
    normalize: bool = Field(False, description="True: the sentence embedding is L2-normalised")
    labels: list[str] = Field(default_factory=list, description="class names (id2label)")
    weights: list[str] = Field(default_factory=list, description="the weights files the export reads")
    weights_format: str | None = Field(None, description="safetensors | pickle")
    onnx_files: list[str] = Field(default_factory=list, description="relative to the folder")
    onnx_file: str | None = Field(None, description="the one converted (HUB_ONNX / ONNX)")
    seq_len: int | None = Field(
        None, description="the folder's own query length (sentence_bert_config / tokenizer_config)"
    )
    seq_len_from: str | None = Field(None, description="which file gave seq_len")
    notes: list[str] = Field(default_factory=list, description="what to know about the folder")


class TorchParity(Record):
    """The exported ONNX (onnxruntime) against the PyTorch model on the same ids."""

    queries: int = Field(description="queries compared")
    split: str = Field(description="where the queries came from (a file, or seeded random ids)")
    metric: str = Field(description="max_abs_error (classifier) | min_cosine (embedder)")
    value: float = Field(description="the metric's value")
    limit: float = Field(description="its limit")
    max_abs_error: float = Field(description="largest absolute output difference")
    mean_cosine: float = Field(description="mean cosine of the outputs")
    min_cosine: float = Field(description="smallest cosine")
    passed: bool = Field(description="True: value within the limit")
    torch_from_cache: bool = Field(False, description="True: the PyTorch outputs came from the cache")


class CaseAgreement(Record):
    """A classifier on one split's queries as they are and ASCII-lower-cased (MediaPipe's SentencePiece
    path lower-cases every query)."""

    queries: int = Field(description="queries measured")
    accuracy_cased: float | None = Field(None, description="None: the split has no labels")
    accuracy_lowercased: float | None = Field(None, description="accuracy on the lower-cased queries")
    agreement: float = Field(description="top-1, cased vs lower-cased")


class LowercaseAdaptation(Record):
    """`source.adapt_lowercase`: the model was CHANGED before export, fine-tuned so that a lower-cased
    query gets the original model's prediction on the query as it is (distilled from its own outputs, no
    labels); the build, its evaluation and its package are the adapted model's."""

    method: str = Field(description="how the model was adapted")
    train_split: str = Field(description="the split whose queries the adaptation trained on")
    train_queries: int = Field(description="queries trained on")
    epochs: int = Field(description="epochs of the fine-tune")
    lr: float = Field(description="learning rate")
    temperature: float = Field(description="distillation temperature")
    seconds: float = Field(description="wall time")
    eval_split: str | None = Field(None, description="the split measured before and after")
    before: CaseAgreement | None = Field(None, description="the folder's model")
    after: CaseAgreement | None = Field(None, description="the adapted model that is exported")


class HubExportSection(Record):
    """The folder, the export (environment, versions, the ONNX file) and its parity with PyTorch."""

    folder: HubFolderInfo = Field(description="what the folder held")
    exported: bool = Field(description="False: an ONNX file of the folder was converted as it is")
    onnx_file: str = Field(description="the ONNX file converted")
    seq_len: int = Field(description="query length the export used")
    environment: str | None = Field(None, description="the isolated PyTorch env's name")
    versions: dict[str, str] | None = Field(None, description="package -> version in the export environment")
    export_from_cache: bool = Field(False, description="True: the ONNX came from the hub-exports cache")
    parity: TorchParity | None = Field(None, description="the ONNX vs PyTorch")
    adaptation: LowercaseAdaptation | None = Field(
        None, description="the model was changed before export (opt-in `source.adapt_lowercase`)"
    )
