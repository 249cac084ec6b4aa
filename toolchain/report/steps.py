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


class RareIntentsReport(Record):
    """The distill step's rare-intent handling (toolchain/steps/rare_intents.py), when it is on."""

    class_balance: str  # none | sqrt | inverse
    sure_label_weight: float
    teacher_sure_rows: int  # training rows where the teacher's top-1 probability >= the threshold
    row_weight_range: list[float]  # [lowest, highest] class weight of a row (mean 1)


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
    rare_intents: RareIntentsReport | None = None  # class balance / sure hard labels (foreign teachers)


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
    PruneReport | DistillReport | LowRankReport | QATReport | VocabPruneReport | ItemPruneReport,
    Field(discriminator="kind"),
]
