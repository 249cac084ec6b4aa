"""report.json `steps`: one typed report per compression step, told apart by `kind`.

A step (toolchain/steps/<kind>.py) fills its own fields; the pipeline adds the four every step has:
`index`, `float_test_accuracy` (the post-step float model on the test split), `parameters` and `seconds`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from toolchain.base.record import Record
from toolchain.base.types import StepKind


class StepReport(Record):
    """The fields the pipeline adds to every step's own report."""

    index: int
    kind: StepKind
    float_test_accuracy: float | None = None  # None: no labelled test split
    parameters: int | None = None
    seconds: float | None = None


class LayerSparsity(Record):
    sparsity: float
    weights: int


class PruneReport(StepReport):
    kind: Literal[StepKind.PRUNE] = StepKind.PRUNE
    schedule: str
    target_sparsity: float
    achieved_sparsity: float
    begin_step: int
    end_step: int
    frequency: int
    total_steps: int
    pruning_events: int
    excluded: list[str]
    layers: dict[str, LayerSparsity]
    train_metrics: dict[str, float]
    sparsity_honesty: str
    structure: str | None = None  # structured sparsity: "2:4", "block 1x4", ...
    structured_skipped: list[str] | None = None
    m_by_n_verified: dict[str, bool] | None = None


class DistillRows(Record):
    labelled: int
    unlabelled: int
    augmented: int
    pseudo_labelled: int


class TeacherInfo(Record):
    """A foreign teacher (toolchain/steps/teachers.py `Teacher.describe`)."""

    kind: str
    path: str
    sha256: str
    file_bytes: int
    parameters: int | None
    tokenizer: str | None
    queries_scored: int
    queries_from_cache: int


class DistillReport(StepReport):
    kind: Literal[StepKind.DISTILL] = StepKind.DISTILL
    alpha: float
    temperature: float
    student: dict[str, Any] | str  # the StudentSpec, or the student model's path
    teacher: TeacherInfo | str  # a foreign teacher, or "the chain's model"
    teacher_parameters: int | None
    student_parameters: int
    parameter_ratio: float | None
    rows: DistillRows
    augment: dict[str, Any] | None
    selected_by: str  # accuracy | agreement
    matched_layers: dict[str, str]
    teacher_val_accuracy: float | None
    student_val_accuracy: float | None
    student_val_agreement: float | None
    val_accuracy_per_epoch: list[float] | None = None  # selected_by accuracy
    val_agreement_per_epoch: list[float] | None = None  # selected_by agreement
    train_metrics: dict[str, float]


class FactorizedLayer(Record):
    shape: list[int]
    rank: int | None
    energy_kept: float | None
    params_before: int
    params_after: int
    saved: int
    note: str | None = None


class LowRankReport(StepReport):
    kind: Literal[StepKind.LOWRANK] = StepKind.LOWRANK
    rule: str
    layers: dict[str, FactorizedLayer]
    factorized_params_before: int
    factorized_params_after: int
    factorized_reduction: float
    val_accuracy_after_svd: float | None
    val_accuracy_after_finetune: float | None
    train_metrics: dict[str, float]


class SparsityChange(Record):
    before: float
    after: float | None


class QATReport(StepReport):
    kind: Literal[StepKind.QAT] = StepKind.QAT
    scheme: str
    annotated_layers: list[str]
    float_during_qat: list[str]
    float_note: str
    sparsity_before: float
    sparsity_after: float
    layer_sparsity: dict[str, SparsityChange]
    masks_kept_by_callback: list[str]
    train_metrics: dict[str, float]


class VocabRule(Record):
    min_count: int
    max_size: int | None
    coverage: float | None


class VocabPruneReport(StepReport):
    kind: Literal[StepKind.VOCAB_PRUNE] = StepKind.VOCAB_PRUNE
    vocab_before: int
    vocab_after: int
    rule: VocabRule
    corpus: str
    embedding_params_before: int
    embedding_params_after: int
    corpus_share_now_unknown: float
    tables: list[str]
    val_accuracy: dict[str, float]  # before / after, when there is a val split


class TrimExample(Record):
    text: str
    before: list[str]  # the pieces of the untrimmed tokenizer
    after: list[str]


class TrimHeldout(Record):
    """Held-out queries (the test split, else val): how many the trimmed vocabulary splits otherwise."""

    split: str
    queries: int
    changed: int
    changed_share: float
    examples: list[TrimExample]


class TrimEffect(Record):
    """The untrimmed vs the trimmed float model on the held-out queries."""

    runtime: str
    accuracy_before: float | None = None  # classifiers with labels
    accuracy_after: float | None = None
    top1_agreement: float | None = None  # classifiers
    mean_cosine: float | None = None  # embedders
    min_cosine: float | None = None
    max_abs_diff_unchanged: float | None  # on the queries whose tokenization did not change (0: same rows)


class VocabTrimReport(StepReport):
    kind: Literal[StepKind.VOCAB_TRIM] = StepKind.VOCAB_TRIM
    tokenizer: str  # wordpiece | sentencepiece
    method: str  # how the ids reach the kept rows: the tokenizer rewritten, or an in-graph remap
    vocab_before: int
    vocab_after: int
    rows_removed_share: float
    kept_by_reason: dict[str, int]  # special, single_char, corpus
    corpus: list[str]  # where the kept pieces' queries came from, with counts
    corpus_queries: int
    corpus_pieces: int  # distinct pieces the queries use
    coverage: float
    min_count: int
    covered_share: float  # of the queries' piece occurrences
    table: str  # the embedding table (ONNX initializer or Keras layer)
    embedding_params_before: int
    embedding_params_after: int
    heldout: TrimHeldout | None
    effect: TrimEffect | None
    summary: str


class ItemPruneReport(StepReport):
    kind: Literal[StepKind.ITEM_PRUNE] = StepKind.ITEM_PRUNE
    min_clicks: int
    items_before: int
    items_after: int
    dropped: int
    train_queries_of_dropped_items: int
    table_parameters_before: int
    table_parameters_after: int


AnyStepReport = Annotated[
    PruneReport
    | DistillReport
    | LowRankReport
    | QATReport
    | VocabPruneReport
    | VocabTrimReport
    | ItemPruneReport,
    Field(discriminator="kind"),
]
