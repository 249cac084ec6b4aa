"""Typed configs of the compression steps a recipe chains (toolchain/recipe/schema.py uses them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from toolchain.base.types import PruneSchedule, StepKind
from toolchain.recipe.strict import Strict
from toolchain.recipe.students import AutoStudents, StudentSpec, StudentVocab


class FinetuneOptions(Strict):
    """Fields shared by every step that trains."""

    epochs: int = Field(2, ge=1)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0)


class PruneStep(FinetuneOptions):
    """Magnitude pruning with a tfmot schedule, fine-tuned on the train split."""

    kind: Literal[StepKind.PRUNE] = StepKind.PRUNE
    schedule: PruneSchedule = PruneSchedule.POLYNOMIAL
    target_sparsity: float = Field(0.8, gt=0.0, lt=1.0)
    initial_sparsity: float = Field(0.0, ge=0.0, lt=1.0)
    epochs: int = Field(4, ge=1)
    begin_step: int | None = Field(None, ge=0)
    end_step: int | None = Field(None, ge=1)
    frequency: int | None = Field(None, ge=1, description="prune every N steps (default: derived)")
    exclude: list[str] = Field(default_factory=list, description="layer names left dense")
    m_by_n: Literal["2:4", "1:4", "1:2"] | None = Field(
        None, description="structured sparsity: M zeros in every N weights (rank-2 weights only)"
    )
    block: tuple[int, int] | None = Field(None, description="prune whole blocks, e.g. [1, 4] (rank-2 only)")

    @model_validator(mode="before")
    @classmethod
    def _m_by_n_fixes_sparsity(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("m_by_n"):
            m, n = (int(v) for v in str(data["m_by_n"]).split(":"))
            given = data.get("target_sparsity")
            if given is not None and abs(float(given) - m / n) > 1e-6:
                raise ValueError(
                    f"m_by_n {data['m_by_n']} fixes the sparsity at {m / n:.0%}; drop target_sparsity"
                )
            data = {**data, "target_sparsity": m / n}
        return data

    @model_validator(mode="after")
    def _check(self) -> PruneStep:
        if self.schedule == "polynomial" and self.initial_sparsity >= self.target_sparsity:
            raise ValueError("initial_sparsity must be below target_sparsity for the polynomial schedule")
        if self.begin_step is not None and self.end_step is not None and self.end_step <= self.begin_step:
            raise ValueError("end_step must be greater than begin_step")
        if self.m_by_n and self.block:
            raise ValueError("choose m_by_n or block, not both")
        if self.block and (min(self.block) < 1 or self.block == (1, 1)):
            raise ValueError("block must be two positive sizes other than [1, 1]")
        return self


# Student layers, written compactly in the recipe: "conv1d:64:3", "dense:64", "dropout:0.2", "max_pool".
class AugmentSpec(Strict):
    """Perturbed copies of the training queries, scored by the teacher (toolchain/steps/augment.py)."""

    copies: int = Field(4, ge=1, le=64, description="perturbed copies per training query")
    ops: list[Literal["drop", "swap", "typo", "replace", "span"]] = Field(
        default_factory=lambda: ["drop", "swap", "typo", "replace", "span"],
        description="word drop, neighbour swap, one-letter typo, random corpus word, sub-span",
    )
    max_ops: int = Field(2, ge=1, le=4, description="operations per copy (1..max_ops, at random)")


class LogScoringSpec(Strict):
    """How a model teacher scores `unlabelled` (toolchain/steps/log_scoring.py): shards, workers, Ray."""

    shard_rows: int = Field(8192, ge=16, description="queries per shard: what one worker holds at once")
    workers: int = Field(1, ge=1, le=256, description="scoring worker processes (or Ray tasks)")
    ray_address: str | None = Field(
        None, description="score the shards as Ray tasks on this cluster (auto, host:6379); null: locally"
    )


class DistillStep(FinetuneOptions):
    """Train a smaller student on the teacher's soft targets.

    The teacher is the current model of the chain (Keras), or a foreign one: `teacher` (ONNX, TFLite or
    Keras file with its own tokenizer), `teacher_scores` (a JSONL of precomputed scores), or an ONNX /
    TFLite / scores recipe source when distill is the first step. A foreign teacher's student is a
    word-level model on a regex vocab built from the training and unlabelled queries (`student_vocab`).
    """

    kind: Literal[StepKind.DISTILL] = StepKind.DISTILL
    teacher: Path | None = Field(
        None, description="a teacher of any format (.onnx / HF folder, .tflite, .keras) with its tokenizer"
    )
    teacher_scores: Path | None = Field(
        None, description='precomputed teacher scores: jsonl of {"text", "logits"} or {"text", "probs"}'
    )
    student_vocab: StudentVocab | None = Field(
        None, description="foreign teachers: the student's word-level vocab (default: StudentVocab())"
    )
    student_tokenizer: Literal["word", "teacher"] = Field(
        "word",
        description="foreign teachers: the student's tokenizer: word (a regex vocab of its own, no WordPiece "
        "on the phone) or teacher (the teacher's own WordPiece or SentencePiece: the student sees the same "
        "pieces; packaged with MediaPipe's BERT or SentencePiece tokenizer; for multilingual teachers)",
    )
    student: StudentSpec | Literal["auto"] | None = Field(
        None,
        description="architecture of a new student, or auto: students tried from small to large, the "
        "smallest that meets the gates kept (`edgecomp convert`; default for an ONNX or Hugging Face "
        "folder teacher as the recipe source)",
    )
    auto: AutoStudents | None = Field(None, description="student auto: the candidates and early stop")
    student_path: Path | None = Field(None, description="or a Keras student model file to train")
    alpha: float = Field(0.7, ge=0.0, le=1.0, description="weight of the soft (teacher) loss")
    temperature: float = Field(4.0, description="softmax temperature T (> 0)")
    epochs: int = Field(12, ge=1)
    learning_rate: float = Field(3e-3, gt=0.0)
    unlabelled: Path | None = Field(
        None, description="extra unlabelled queries (jsonl, or one query per line) to distill on"
    )
    unlabelled_scoring: LogScoringSpec = Field(
        default_factory=LogScoringSpec,
        description="a model teacher scores the unlabelled log streamed, in resumable shards (workers, Ray)",
    )
    pseudo_label_min_confidence: float = Field(
        0.9, ge=0.0, le=1.0, description="unlabelled rows get the teacher's top label as a hard label above"
    )
    match_layers: dict[str, str] = Field(
        default_factory=dict, description="hidden-state matching: {teacher_layer: student_layer}"
    )
    match_weight: float = Field(0.1, ge=0.0, description="weight of the hidden-state MSE")
    augment: AugmentSpec | Literal["auto", "off"] = Field(
        "auto",
        description="add teacher-scored perturbed copies of the training queries (typos, word drops); auto "
        "(unset): the AugmentSpec defaults (4 copies) when the teacher is a foreign model (ONNX, Hugging "
        "Face folder, .tflite, .keras file; not a scores file, which cannot score new queries), off for the "
        "chain's model; off (or null): none",
    )
    select_by: Literal["auto", "accuracy", "agreement"] = Field(
        "auto",
        description="early stopping keeps the epoch with the best val accuracy or val agreement with the "
        "teacher; auto: agreement for a foreign teacher, accuracy for the chain's model",
    )
    class_balance: Literal["auto", "none", "sqrt", "inverse"] = Field(
        "auto",
        description="rare intents: weight each training row's loss by its intent's frequency to the power "
        "-1/2 (sqrt) or -1 (inverse), normalised to a mean of 1; auto: sqrt for a foreign teacher, none for "
        "the chain's model",
    )
    sure_label_weight: float | None = Field(
        None,
        ge=0.0,
        description="weight of an extra hard-label cross-entropy on the teacher's top label, on the rows "
        "where it is sure (top-1 probability >= pseudo_label_min_confidence), added to the KD loss; "
        "None (auto): 0 (off); 0.5 with class_balance helps a good teacher's rare intents",
    )

    @field_validator("augment", mode="before")
    @classmethod
    def _augment_off(cls, value: Any) -> Any:
        """null / false say off (kept as "off", so a saved recipe, written without nulls, keeps it off)."""
        if value is None or value is False:
            return "off"
        return {} if value is True else value

    @field_validator("temperature")
    @classmethod
    def _positive_t(cls, t: float) -> float:
        if t <= 0:
            raise ValueError("temperature must be > 0; typical values are 2-8")
        return t

    @model_validator(mode="after")
    def _one_student(self) -> DistillStep:
        if self.student is not None and self.student_path is not None:
            raise ValueError("give student or student_path, not both")
        if self.teacher is not None and self.teacher_scores is not None:
            raise ValueError("give teacher or teacher_scores, not both")
        if self.student_tokenizer == "teacher" and self.student_vocab is not None:
            raise ValueError("student_vocab is for word-level students; not with student_tokenizer teacher")
        if self.student_tokenizer == "teacher" and self.teacher_scores is not None:
            raise ValueError("a scores file has no tokenizer to share; use student_tokenizer: word")
        if self.auto is not None and self.student != "auto":
            raise ValueError("auto configures `student: auto`; set student: auto or drop auto")
        if self.student == "auto" and self.student_tokenizer == "teacher":
            raise ValueError("student auto chooses the tokenizer per candidate; drop student_tokenizer")
        return self

    @property
    def student_spec(self) -> StudentSpec:
        """The student to build (the default one when none is given; never `auto`, chosen before)."""
        if self.student == "auto":
            raise ValueError("student auto is resolved to a concrete student before the step runs")
        return self.student or StudentSpec()


class LowRankStep(FinetuneOptions):
    """Replace Dense kernels / the embedding table W (m x n) by U_r V_r from the SVD."""

    kind: Literal[StepKind.LOWRANK] = StepKind.LOWRANK
    layers: list[str] = Field(
        default_factory=list, description="layers to factorize (default: Dense but the classifier, Embedding)"
    )
    exclude: list[str] = Field(default_factory=list, description="layers left as they are")
    rank: int | None = Field(None, ge=1, description="one rank for every layer")
    ranks: dict[str, int] = Field(default_factory=dict, description="rank per layer name")
    energy: float | None = Field(None, gt=0.0, le=1.0, description="keep this share of sum(s^2)")
    param_reduction: float | None = Field(
        None, gt=0.0, lt=1.0, description="cut each layer's parameters by this share"
    )
    learning_rate: float = Field(5e-4, gt=0.0)

    @model_validator(mode="after")
    def _one_rule(self) -> LowRankStep:
        rules = [self.rank is not None, self.energy is not None, self.param_reduction is not None]
        if sum(rules) > 1:
            raise ValueError("choose one of rank, energy, param_reduction")
        if sum(rules) == 0 and not self.ranks:
            self.__dict__["param_reduction"] = 0.5
        return self


class QATStep(FinetuneOptions):
    """Quantization-aware fine-tuning (tfmot); pruning-preserving when the model is sparse."""

    kind: Literal[StepKind.QAT] = StepKind.QAT
    preserve_sparsity: bool | None = Field(
        None, description="PQAT scheme; default: on when the model's weights are >= 30% zeros"
    )
    learning_rate: float = Field(2e-4, gt=0.0)


class VocabPruneStep(Strict):
    """Drop rare words from the vocabulary and the embedding table (the tokenizer is rewritten)."""

    kind: Literal[StepKind.VOCAB_PRUNE] = StepKind.VOCAB_PRUNE
    max_size: int | None = Field(None, ge=4, description="keep at most this many tokens (incl. 3 specials)")
    min_count: int = Field(1, ge=1, description="keep words seen at least this often in the corpus")
    coverage: float | None = Field(
        None, gt=0.0, le=1.0, description="keep the fewest words covering this share of word occurrences"
    )
    corpus: Path | None = Field(None, description="queries (jsonl) to count words in (default: train)")


class VocabTrimStep(Strict):
    """WordPiece / SentencePiece models: keep the pieces the queries use, every special token and the
    single characters; the embedding rows and the tokenizer follow (toolchain/steps/vocab_trim.py)."""

    kind: Literal[StepKind.VOCAB_TRIM] = StepKind.VOCAB_TRIM
    splits: list[Literal["train", "val", "calibration"]] = Field(
        default_factory=lambda: ["train", "calibration"],
        description="the recipe's query splits whose pieces are kept (those the recipe gives)",
    )
    corpus: list[Path] = Field(
        default_factory=list, description="more queries to keep the pieces of, e.g. an unlabelled log (jsonl)"
    )
    coverage: float = Field(
        1.0, gt=0.0, le=1.0, description="keep the fewest pieces covering this share of the piece occurrences"
    )
    min_count: int = Field(1, ge=1, description="keep pieces used at least this often")
    single_chars: bool | Literal["scripts"] = Field(
        "scripts",
        description="the single-character pieces (a, ##a, ▁a) kept so that unseen words still split. "
        "scripts: every non-letter and ASCII one, and the letters of the scripts the queries write in "
        "(a letter of another script reads [UNK]); true: all of them; false: none",
    )
    dropped: Literal["split", "unk", "unk-renumber", "auto"] = Field(
        "split",
        description="What a dropped piece becomes. WordPiece: split: the tokenizer is rewritten and the "
        "word splits into kept pieces; unk-renumber: the piece reads the [UNK] row; the tokenizer keeps "
        "every piece, renumbered with the kept ones first (every text splits as before), and the ONNX graph "
        "clamps ids past the kept ones to the [UNK] row (no remap bytes; the bundle keeps the full "
        "vocab.txt); unk: the same reading with the tokenizer untouched (the original ids, for an app that "
        "tokenizes with the original vocabulary) and an int32 id remap in the graph, 4 bytes per piece; "
        "auto: split or unk-renumber, whichever agrees better with the untrimmed model on the val split "
        "(ONNX; split on a tie or without val). SentencePiece: split cuts tokenizer.json and the .model "
        "file to the kept pieces (Unigram; an ONNX BPE model is always unk); unk remaps in the ONNX graph; "
        "auto measures the two; unk-renumber is refused",
    )

    @field_validator("corpus", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str | Path) else value

    @field_validator("single_chars", mode="before")
    @classmethod
    def _single_chars(cls, value: Any) -> Any:
        if isinstance(value, bool) or value == "scripts":
            return value
        raise ValueError("single_chars is scripts, true or false")


class ItemPruneStep(Strict):
    """Retrieval models: drop the catalog items clicked fewer than `min_clicks` times in the train split from
    the item table (the model's last Dense layer) and from labels.txt (steps/item_prune.py)."""

    kind: Literal[StepKind.ITEM_PRUNE] = StepKind.ITEM_PRUNE
    min_clicks: int = Field(1, ge=1, description="keep items with at least this many train queries")


Step = Annotated[
    PruneStep | DistillStep | LowRankStep | QATStep | VocabPruneStep | VocabTrimStep | ItemPruneStep,
    Field(discriminator="kind"),
]
STEP_CLASSES: dict[StepKind, type[BaseModel]] = {
    StepKind.PRUNE: PruneStep,
    StepKind.DISTILL: DistillStep,
    StepKind.LOWRANK: LowRankStep,
    StepKind.QAT: QATStep,
    StepKind.VOCAB_PRUNE: VocabPruneStep,
    StepKind.VOCAB_TRIM: VocabTrimStep,
    StepKind.ITEM_PRUNE: ItemPruneStep,
}
STEP_KINDS: tuple[str, ...] = StepKind.values()
STEP_PATH_FIELDS: tuple[str, ...] = ("student_path", "unlabelled", "corpus", "teacher", "teacher_scores")


def check_step_order(steps: list[Any], quant_mode: str) -> None:
    """QAT must be the last step (later training would undo its fake-quant ranges) and export int8;
    item_prune must be last too (later steps would train on queries whose product it dropped)."""
    kinds = [s.kind for s in steps]
    if "vocab_trim" in kinds and (kinds.count("vocab_trim") > 1 or kinds[0] != "vocab_trim"):
        raise ValueError("vocab_trim must be the first step (the steps after it learn the kept pieces)")
    if "item_prune" in kinds and (kinds.count("item_prune") > 1 or kinds[-1] != "item_prune"):
        raise ValueError("item_prune must be the last step (the steps before it train on every item)")
    if "item_prune" in kinds and quant_mode == "mixed":
        raise ValueError("item_prune with quantization.mode mixed is not supported; use weight_only or int8")
    if "qat" in kinds:
        if kinds.count("qat") > 1 or kinds[-1] != "qat":
            raise ValueError("qat must be the last step (steps after it would retrain the fake-quant model)")
        if quant_mode != "int8":
            raise ValueError(f"a qat step trains for int8; set quantization.mode to int8 (got {quant_mode})")
