"""The closed sets of names edgecomp uses, as str-Enums in one leaf module (imports nothing of ours).

Each member IS its string (`QuantMode.INT8 == "int8"`, `f"{QuantMode.INT8}"` is `int8`, json.dumps writes
`"int8"`), so report.json, recipe.yaml and the CLI keep their spelling while the code compares members,
not literals. Recipe fields, report sections, CLI choices and the device layer take their values from here;
a typo is an AttributeError at import, not a branch that silently never matches.
"""

from __future__ import annotations

from enum import Enum


class StrEnum(str, Enum):
    """A str-Enum whose str() and format() are the value (Python 3.10's Enum shows `Cls.NAME`)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return str(self.value).__format__(spec)

    @classmethod
    def values(cls) -> tuple[str, ...]:
        return tuple(str(m.value) for m in cls)


class Task(StrEnum):
    """What a model's output means (toolchain/tasks.py holds each task's behaviour as data)."""

    CLASSIFICATION = "classification"  # one score per label
    EMBEDDING = "embedding"  # a vector per query
    RETRIEVAL = "retrieval"  # one score per catalog item (labels = item ids)


AUTO = "auto"  # a recipe's source.task / source.format before resolution: never in a report


class SourceFormat(StrEnum):
    KERAS = "keras"
    SAVEDMODEL = "savedmodel"
    ONNX = "onnx"
    TFLITE = "tflite"  # only as a distillation teacher
    SCORES = "scores"  # a teacher scores .jsonl: only as a distillation teacher


class FolderKind(StrEnum):
    """What a model folder holds (toolchain/sources/hub_folder.py)."""

    ONNX = "onnx"  # model.onnx at the top (+ tokenizer files, config.json)
    TRANSFORMERS = "transformers"  # config.json + model.safetensors (or pytorch_model.bin)
    SENTENCE_TRANSFORMERS = "sentence-transformers"  # the above + modules.json (pooling, normalize)
    HUB_ONNX = "hub-onnx"  # the Hub's layout: onnx/model.onnx (+ variants), tokenizer files at the top


class QuantMode(StrEnum):
    FLOAT32 = "float32"
    FLOAT16 = "float16"
    DYNAMIC = "dynamic"  # int8 weights, float activations
    WEIGHT_ONLY = "weight_only"  # int8 weights dequantized at load: float math in every runtime
    INT8 = "int8"  # full integer, calibrated
    INT16X8 = "int16x8"
    MIXED = "mixed"  # int8 with the ops a search chose kept in float
    INT4 = "int4"  # weight-only: each weight in 4 or 8 bits as a search chose, float math


class WeightWidth(StrEnum):
    """How mode int4 stores one weight (weight-only: dequantized once, float math)."""

    INT8 = "int8"  # per output channel (dense) or per row (table)
    INT4 = "int4"  # the same granularity in 4 bits
    INT4_COLUMNS = "int4_columns"  # an embedding table in 4 bits with one scale per column (fewer scales)
    INT4_BLOCK32 = "int4_block32"  # a dense weight in 4 bits, one scale per 32 input values of each output
    INT8_HYBRID = "int8_hybrid"  # a FULLY_CONNECTED / CONV_2D weight in 8 bits in the op's hybrid kernel
    INT4_BLOCK64 = "int4_block64"  # as int4_block32, one scale per 64 inputs (fewer scales, a faster kernel)
    INT4_BLOCK128 = "int4_block128"  # one scale per 128 inputs: XNNPACK runs it at dynamic int8's speed


class Int4Rounding(StrEnum):
    """How mode int4 rounds a 4-bit FULLY_CONNECTED weight (converters/int4_rounding.py)."""

    NEAREST = "nearest"  # each value alone to the nearest step (the LiteRT Quantizer's)
    GPTQ = "gptq"  # column by column, each column's error moved onto the rest by the calibration inputs


CALIBRATED_MODES = frozenset({QuantMode.INT8, QuantMode.INT16X8, QuantMode.MIXED})  # need real queries


class TokenizerKind(StrEnum):
    REGEX = "regex"  # word-level: MediaPipe's regex tokenizer
    WORDPIECE = "wordpiece"  # BERT: MediaPipe's BertTokenizer
    SENTENCEPIECE = "sentencepiece"  # Unigram/BPE tokenizer.json (XLM-R): MediaPipe's SentencePiece tokenizer
    NONE = "none"  # an ONNX float build made without a tokenizer


class StepKind(StrEnum):
    PRUNE = "prune"
    DISTILL = "distill"
    LOWRANK = "lowrank"
    QAT = "qat"
    VOCAB_PRUNE = "vocab_prune"
    VOCAB_TRIM = "vocab_trim"
    ITEM_PRUNE = "item_prune"


class AugmentOrigin(StrEnum):
    """Why a distill step's augmentation was on (report.json steps[i].augment_origin)."""

    RECIPE = "recipe"  # the recipe's distill.augment
    TEACHER_DEFAULT = "foreign-teacher default"  # distill.augment unset, the teacher a foreign model


class PruneSchedule(StrEnum):
    """The tfmot schedule of a prune step."""

    POLYNOMIAL = "polynomial"
    CONSTANT = "constant"


class Stage(StrEnum):
    """The stages a build's quality is measured at."""

    SOURCE = "source"
    AFTER_STEPS = "after steps"
    AFTER_QUANTIZATION = "after quantization"


class CostMost(StrEnum):
    """The stage a missed gate blames."""

    STEPS = "steps"
    QUANTIZATION = "quantization"


class CheckStatus(StrEnum):
    """One validate check of one device."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    INFO = "info"


class ValidationStatus(StrEnum):
    """A build's validation as the package manifest records it."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_RUN = "not run"


class ProfileMethod(StrEnum):
    AUTO = "auto"
    LITERT = "litert"  # LiteRT's C-API profiler
    SLICE = "slice"  # single-op slices fed real tensors
    BOTH = "both"


class ProfileMode(StrEnum):
    DEPLOYED = "deployed"  # XNNPACK, as shipped
    PER_NODE = "per-node"  # builtin kernels, 1:1 TFLite nodes


class OverlayMetric(StrEnum):
    """What `profile --model-explorer` colours each node by (devices/profiling/export.py)."""

    TIME = "time"  # per-op latency, µs
    SNR = "snr"  # per-op quantization error: SNR of the int8 output vs the float model's, dB


class ParityGate(StrEnum):
    """What a device's outputs are gated on against the host run (per task: toolchain/tasks.py)."""

    TOP1 = "top1"  # top-1 agreement (classifiers, retrieval: the app shows the best score first)
    COSINE = "cosine"  # mean cosine of the output vectors (embedding models: argmax means nothing)


class PackageFormat(StrEnum):
    MEDIAPIPE = "mediapipe"
    ANDROID_ASSETS = "android-assets"
    EDGE = "edge"


class MixedReason(StrEnum):
    """Why the mixed search kept an op in float."""

    SPEED = "speed"  # its float kernel is faster here and it carries no MACs
    ERROR = "error"  # int8 would miss the gate


class Precision(StrEnum):
    FLOAT = "float"
    INT8 = "int8"


class MacFreeOps(StrEnum):
    """How the mixed search sets the precision of op types without multiply-accumulates."""

    FLOAT = "float"  # float, by rule: deterministic (the same bytes under any load)
    TIMED = "timed"  # each type's int8 and float kernels timed on this host: int8 when clearly faster


class ManifestKind(StrEnum):
    """The package manifest's `task`: which MediaPipe task (and README snippet) the app team gets."""

    CLASSIFIER = "classifier"  # TextClassifier, top-1 label
    EMBEDDER = "embedder"  # TextEmbedder, a vector
    RETRIEVAL = "retrieval"  # TextClassifier over product ids, read as a top-10 list
