"""The typed, versioned recipe that describes one build. Loaded from YAML or filled from CLI flags."""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from converters.tflite_model import builtin_op_names
from toolchain.base.types import (
    MacFreeOps,
    PackageFormat,
    QuantMode,
    SourceFormat,
    StepKind,
    Task,
)
from toolchain.recipe.quant_specs import Int4Spec, MixedSpec
from toolchain.recipe.space import SearchSpec
from toolchain.recipe.steps import Step, check_step_order
from toolchain.recipe.strict import Strict
from toolchain.recipe.students import StudentSpec
from toolchain.tasks import check_task_gates

RECIPE_VERSION = 1
MAX_DIM = 1 << 16  # longest sequence / widest dimension a recipe may ask for
MAX_ELEMENTS = 1 << 24  # elements in one fixed input: 64 MiB of float32, far above any query model


def foreign_model_path(path: Path) -> bool:
    """An ONNX file or a model folder that is not a SavedModel (model.onnx, a Hugging Face folder): a
    teacher whose distill step gets `student: auto` by default (toolchain/sources/detect.py is the full
    rule; this is its cheap part, enough to tell a foreign teacher from a Keras model)."""
    if path.suffix.lower() == ".onnx":
        return True
    return path.is_dir() and not (path / "saved_model.pb").is_file()


class SourceSpec(Strict):
    path: Path = Field(
        description="Keras .keras/.h5 file, SavedModel directory, or .onnx file; a .tflite or a teacher "
        "scores .jsonl only as the teacher of a first distill step"
    )
    format: SourceFormat | Literal["auto"] = "auto"
    input_shapes: dict[str, list[int]] = Field(
        default_factory=dict, description="fixed shapes for dynamic inputs, e.g. {input_ids: [1, 32]}"
    )
    task: Task | Literal["auto"] = Field(
        "auto",
        description="ONNX models: logits over labels, or a query embedding vector; auto: classification "
        "when labels are found (labels.txt, config.json id2label), embedding otherwise; retrieval (Keras): "
        "one score per catalog item (labels = item ids), judged by recall@k and top-10 overlap. The saved "
        "recipe records the resolved task",
    )
    trust_model_code: bool = Field(
        False,
        description=".h5/SavedModel sources and distill students, and a Hugging Face folder's pickled "
        "pytorch_model.bin: load even though they can run Python code stored in them (--trust-model-code); "
        ".keras loads in Keras' safe mode and safetensors are plain data either way",
    )
    onnx_file: str | None = Field(  # a str, not a Path: it stays relative to the folder in recipe.yaml
        None,
        description="a Hugging Face folder source: the ONNX file in it to convert as it is, relative to the "
        "folder (e.g. onnx/model_O1.onnx; an onnxruntime-quantized model_quantized.onnx is refused); "
        "default: exported from the weights, else onnx/model.onnx",
    )
    adapt_lowercase: bool = Field(
        False,
        description="a Hugging Face folder classifier: before export, fine-tune it (a few epochs on the "
        "train split, else calibration; no labels) so that each query ASCII-lower-cased gets the original "
        "model's output on the query as it is: MediaPipe's SentencePiece path lower-cases all text. The "
        "model changes; report hub.adaptation gives accuracy and cased-vs-lower-cased agreement before and "
        "after on the test split (--adapt-lowercase)",
    )

    @field_validator("input_shapes")
    @classmethod
    def _bounded(cls, shapes: dict[str, list[int]]) -> dict[str, list[int]]:
        """A typo like 1x3200000 must be an error here, not a 2 TiB allocation attempt later."""
        for name, dims in shapes.items():
            if not dims or any(d < 1 or d > MAX_DIM for d in dims):
                raise ValueError(f"{name}: every dimension must be 1..{MAX_DIM}, got {dims}")
            if math.prod(dims) > MAX_ELEMENTS:
                raise ValueError(f"{name}: {dims} has more than {MAX_ELEMENTS} elements")
        return shapes


class DataSpec(Strict):
    train: Path | None = Field(None, description="labelled jsonl/csv used by training steps")
    val: Path | None = None
    test: Path | None = Field(None, description="labelled split used for the evaluation report")
    calibration: Path | None = Field(None, description="queries for int8 calibration (default: train)")
    vocab: Path | None = Field(
        None, description="tokenizer vocab: 'token id' lines (regex) or a BERT vocab.txt (wordpiece)"
    )
    tokenizer: Path | None = Field(None, description="Hugging Face tokenizer.json (WordPiece)")
    labels: Path | None = Field(None, description="one label per line, in output order")
    text_field: str = "text"
    label_field: str = "intent"
    seq_len: int | None = Field(
        None, gt=1, le=MAX_DIM, description="tokens per query (default: the model's input length)"
    )


class QuantizationSpec(Strict):
    mode: QuantMode = QuantMode.INT8
    int4: Int4Spec | None = Field(None, description="mode int4 only: target devices and the plan")
    mixed: MixedSpec | None = Field(
        None, description="mode mixed only: a fixed precision plan (the saved recipe of a mixed build has it)"
    )
    mac_free_ops: MacFreeOps = Field(
        MacFreeOps.FLOAT,
        description="mode mixed: the precision of op types without multiply-accumulates (elementwise, "
        "normalisation, softmax). float (default): float by rule, so a recipe gives the same bytes on any "
        "machine under any load (int8 adds error, saves no MACs; their float kernels tied or won here). "
        "timed: int8 where this host's int8 kernel times clearly faster (bytes may then depend on load)",
    )
    smooth: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="ONNX sources, modes dynamic/int8/mixed/int4: SmoothQuant (converters/onnx_smooth.py, "
        "exact in float): divide each dense input channel j by max|X_j|^a / max|W_j|^(1-a) on the "
        "calibration queries, multiply its weight row by it; a is this value (0.3 best on all-MiniLM-L6-v2 "
        "with 8-bit weights, costly with 4-bit ones); null: off (--smooth)",
    )
    per_channel: bool = Field(
        True,
        description="mode int8: false gives one weight scale per tensor, not per channel: 12 bytes fewer per "
        "output channel of each weight and bias (1.9 of 14.6 KB in a small word CNN)",
    )
    calibration_samples: int = Field(500, ge=1, description="queries drawn for the representative dataset")
    search_queries: int = Field(
        500,
        ge=10,
        description="modes mixed and int4: how many queries of the search split (val, else calibration, "
        "train, test) the search scores each candidate on: more is slower and estimates the targets closer "
        "(at 99% agreement, one standard error is 0.45 pt on 500 queries)",
    )
    min_calibration_samples: int = Field(100, ge=1, description="fewer usable queries than this is an error")
    float_fallback_ops: list[str] = Field(
        default_factory=list,
        description="int8 only: TFLite op types kept in float (selective quantization for transformers)",
    )

    @field_validator("float_fallback_ops")
    @classmethod
    def _known_ops(cls, ops: list[str]) -> list[str]:
        """A misspelled op used to be ignored while the report said full_integer: false."""
        if not ops:
            return ops

        valid = builtin_op_names()
        unknown = [op for op in ops if op.upper() not in valid]
        if unknown:
            near = sorted({m for op in unknown for m in difflib.get_close_matches(op.upper(), valid, 3)})
            guess = f" (did you mean {', '.join(near)}?)" if near else ""
            raise ValueError(
                f"unknown TFLite op {', '.join(unknown)}{guess}; valid op names: {', '.join(valid)}"
            )
        return [op.upper() for op in ops]

    @model_validator(mode="after")
    def _mixed_only(self) -> QuantizationSpec:
        if self.mixed is not None and self.mode != "mixed":
            raise ValueError(f"quantization.mixed is a plan for mode mixed, not {self.mode}")
        if self.int4 is not None and self.mode != "int4":
            raise ValueError(f"quantization.int4 is for mode int4, not {self.mode}")
        if self.smooth is not None and self.mode not in ("dynamic", "int8", "mixed", "int4"):
            raise ValueError(
                f"quantization.smooth moves activation outliers into the weights before 8-bit activations; "
                f"mode {self.mode} keeps activations in float (use dynamic, int8, mixed or int4)"
            )
        for field, mode, off in (("mac_free_ops", "mixed", self.mac_free_ops != MacFreeOps.FLOAT),
                                 ("per_channel: false", "int8", not self.per_channel)):  # fmt: skip
            if off and self.mode != mode:
                raise ValueError(f"quantization.{field} is for mode {mode}, not {self.mode}")
        if self.float_fallback_ops and self.mode != "int8":
            raise ValueError(
                f"float_fallback_ops is a hand-made list for mode int8; mode {self.mode} does not take it"
                + (" (mixed chooses the float ops itself)" if self.mode == "mixed" else "")
            )
        return self


class EvaluationSpec(Strict):
    max_accuracy_drop: float | None = Field(
        None, ge=0.0, description="fail the build if converted accuracy drops more (points)"
    )
    min_agreement: float | None = Field(None, ge=0.0, le=1.0, description="fail below this top-1 agreement")
    min_cosine: float | None = Field(
        None, ge=-1.0, le=1.0, description="ONNX sources: fail if mean output cosine vs onnxruntime is lower"
    )
    max_abs_error: float | None = Field(
        None, gt=0.0, description="ONNX sources: fail if any output differs from onnxruntime by more"
    )
    min_recall_at_10: float | None = Field(
        None, ge=0.0, le=1.0, description="retrieval: fail if the .tflite's test recall@10 is lower"
    )
    max_recall_drop: float | None = Field(
        None, ge=0.0, description="retrieval: fail if recall@10 drops more vs source (points)"
    )
    min_top10_overlap: float | None = Field(
        None, ge=0.0, le=1.0, description="retrieval: fail below this mean top-10 overlap with the source"
    )
    min_agreement_where_sure: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="classifiers: fail below this top-1 agreement vs source on the test queries where the "
        "source is sure (its top-1 probability >= 0.95; a foreign teacher's student: the teacher, and "
        "report.json evaluation.teacher gives its own accuracy there); the mixed and int4 searches aim at it "
        "too. Flips at the source's own near-ties do not count against it",
    )
    max_macro_f1_drop: float | None = Field(
        None, ge=0.0, description="classifiers: fail if macro-F1 drops more vs source (points, F1 x 100)"
    )
    min_recall_ratio: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="classifiers: fail if any intent's recall is below this fraction of the source's "
        "(a foreign teacher's) recall for that intent; the weak intents are named",
    )


class ConversionSpec(Strict):
    """How the converted graph is rewritten after conversion (ONNX sources)."""

    fuse_gelu: bool = Field(
        True,
        description="ONNX sources: replace each composed GELU (the exported Erf as onnx2tf writes it, about "
        "24 elementwise ops per layer) by one GELU op in every mode, after proving the two equal "
        "(converters/fuse.py); false: keep the converter's graph op for op (--no-fuse-gelu)",
    )


class OutputSpec(Strict):
    dir: Path = Path("build")


class PackageSpec(Strict):
    """What `edgecomp package` writes into the model's metadata and manifest (flags override)."""

    name: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="default: recipe name"
    )
    version: str = Field("1.0.0", pattern=r"^[0-9A-Za-z][0-9A-Za-z.+-]*$")
    description: str | None = Field(None, description="default: derived from the model (name, task, labels)")
    author: str | None = Field(None, description="unset: left out of the model metadata (no default author)")
    license: str | None = Field(None, description="unset: left out of the model metadata, e.g. Apache-2.0")
    format: PackageFormat = PackageFormat.MEDIAPIPE
    min_confidence_accuracy: float = Field(
        0.98, gt=0.0, le=1.0, description="server fallback: on-device accuracy wanted above the threshold"
    )
    max_tokenizer_mismatch: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="wordpiece and sentencepiece builds: the largest share of test queries whose device ids "
        "may differ from training (None: recorded, not gated)",
    )
    max_tokenizer_accuracy_drop: float | None = Field(
        None,
        ge=0.0,
        le=100.0,
        description="sentencepiece builds: the accuracy points MediaPipe's ids (ASCII lower-casing) may cost "
        "on the test split (None: 1.0)",
    )
    min_tokenizer_cosine: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="sentencepiece embedders: the least mean cosine between the vectors of training-side and "
        "MediaPipe's ids (None: 0.99)",
    )


class Recipe(Strict):
    """Everything that determines a build. Saved beside the artifact it produced."""

    version: Literal[1] = RECIPE_VERSION
    name: str = Field("model", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="numpy/TF seeds take 0..2**32-1")
    source: SourceSpec
    data: DataSpec = Field(default_factory=DataSpec)
    steps: list[Step] = Field(default_factory=list)
    quantization: QuantizationSpec = Field(default_factory=QuantizationSpec)
    conversion: ConversionSpec = Field(default_factory=ConversionSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
    package: PackageSpec = Field(default_factory=PackageSpec)
    search: SearchSpec | None = Field(None, description="ranges for `edgecomp search` (convert ignores it)")

    @model_validator(mode="after")
    def _steps_fit_together(self) -> Recipe:
        check_step_order(self.steps, self.quantization.mode)
        for i, step in enumerate(self.steps):
            if step.kind == StepKind.DISTILL and step.student is None and step.student_path is None:
                auto = i == 0 and foreign_model_path(self.source.path) and step.teacher_scores is None
                step.__dict__["student"] = "auto" if auto else StudentSpec()
        check_task_gates(self.source.task, self.evaluation.model_dump(exclude_none=True))
        if self.source.task != Task.RETRIEVAL and any(s.kind == StepKind.ITEM_PRUNE for s in self.steps):
            raise ValueError(
                "item_prune drops catalog items of a retrieval model; set source.task: retrieval"
            )
        return self

    @property
    def build_dir(self) -> Path:
        return self.output.dir / self.name

    def to_yaml(self) -> str:
        """YAML with every path absolute, so the saved recipe works from any directory."""
        data = _absolute_paths(self.model_dump(mode="python", exclude_none=True))
        data = Recipe.model_validate(data).model_dump(mode="json", exclude_none=True)
        return yaml.safe_dump(data, sort_keys=False)


def _absolute_paths(node: Any) -> Any:
    if isinstance(node, Path):
        return node.resolve()
    if isinstance(node, dict):
        return {k: _absolute_paths(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_absolute_paths(v) for v in node]
    return node
