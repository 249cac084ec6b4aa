"""report.json `steps`: one typed report per compression step, told apart by `kind`.

A step (toolchain/steps/<kind>.py) fills its own fields; the pipeline adds the four every step has:
`index`, `float_test_accuracy` (the post-step float model on the test split), `parameters` and `seconds`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from toolchain.base.record import Record
from toolchain.base.types import AugmentOrigin, StepKind

STEP_KIND = "the step type: which fields follow"


class StepReport(Record):
    """The fields the pipeline adds to every step's own report."""

    index: int = Field(description="position of the step in the recipe, from 0")
    kind: StepKind = Field(description="the step type; says which fields follow")
    float_test_accuracy: float | None = Field(None, description="None: no labelled test split")
    parameters: int | None = Field(None, description="weights after the step")
    seconds: float | None = Field(None, description="time the step took")


class LayerSparsity(Record):
    sparsity: float = Field(description="fraction of zero weights")
    weights: int = Field(description="weights in the layer")


class PruneReport(StepReport):
    kind: Literal[StepKind.PRUNE] = Field(StepKind.PRUNE, description=STEP_KIND)
    schedule: str = Field(description="constant or polynomial")
    target_sparsity: float = Field(description="the sparsity asked for")
    achieved_sparsity: float = Field(description="the sparsity measured after the step (prunable layers)")
    begin_step: int = Field(description="training step pruning started")
    end_step: int = Field(description="training step it reached the target")
    frequency: int = Field(description="training steps between pruning events")
    total_steps: int = Field(description="training steps run")
    pruning_events: int = Field(description="times weights were pruned")
    excluded: list[str] = Field(description="layers left dense")
    layers: dict[str, LayerSparsity] = Field(description="layer -> its sparsity")
    train_metrics: dict[str, float] = Field(description="the fine-tune's last metrics")
    sparsity_honesty: str = Field(description="what the sparsity does and does not buy in the .tflite")
    structure: str | None = Field(None, description='structured sparsity: "2:4", "block 1x4", ...')
    structured_skipped: list[str] | None = Field(None, description="layers the structure could not apply to")
    m_by_n_verified: dict[str, bool] | None = Field(
        None, description="layer -> True when its weights hold the M:N pattern"
    )


class DistillRows(Record):
    labelled: int = Field(description="rows with their own label")
    unlabelled: int = Field(description="rows scored by the teacher only")
    augmented: int = Field(description="rows made by augmentation")
    pseudo_labelled: int = Field(description="rows labelled by the teacher")


class TeacherInfo(Record):
    """A foreign teacher (toolchain/steps/teachers.py `Teacher.describe`)."""

    kind: str = Field(description="the teacher's format (keras, onnx, scores file, ...)")
    path: str = Field(description="its file")
    sha256: str = Field(description="its sha256")
    file_bytes: int = Field(description="its size")
    parameters: int | None = Field(description="its weights (None: a scores file)")
    tokenizer: str | None = Field(description="its tokenizer (None: shares the student's)")
    queries_scored: int = Field(description="queries the teacher scored")
    queries_from_cache: int = Field(description="of which from the teacher-scores cache")


class LogScoring(Record):
    """An unlabelled log scored by the teacher in shards (toolchain/steps/log_scoring.py)."""

    log: str = Field(description="the unlabelled log file")
    queries: int = Field(description="queries in the log")
    shards: int = Field(description="shards the log was cut into")
    shard_rows: int = Field(description="queries per shard")
    shards_from_cache: int = Field(
        description="complete shards found (an earlier or interrupted run): not scored again"
    )
    workers: int = Field(description="worker processes that scored (0: every shard came from the cache)")
    where: str = Field(description="local | ray")
    seconds: float = Field(description="wall time")
    queries_per_second: float | None = Field(description="scored queries / wall time (None: nothing scored)")
    peak_rss_mb: float | None = Field(
        description="the largest peak RSS of one scoring worker (and its children)"
    )
    max_rows_held: int = Field(description="the most queries one worker held at once (<= shard_rows)")
    cache: str = Field(description="the shard cache directory")


class RareIntentsReport(Record):
    """The distill step's rare-intent handling (toolchain/steps/rare_intents.py), when it is on."""

    class_balance: str = Field(description="none | sqrt | inverse")
    sure_label_weight: float = Field(
        description="weight of the extra loss on the teacher's top label where it is sure"
    )
    teacher_sure_rows: int = Field(
        description="training rows where the teacher's top-1 probability >= the threshold"
    )
    row_weight_range: list[float] = Field(description="[lowest, highest] class weight of a row (mean 1)")


class TeacherTensor(Record):
    """A student tensor started from the teacher's (student.embedding_init: teacher)."""

    student: str = Field(description="the student's layer.weight")
    teacher: str = Field(description="the teacher's ONNX initializer it came from")
    how: str = Field(description="copied (equal shapes) | projected (onto the student's width)")


class DistillReport(StepReport):
    kind: Literal[StepKind.DISTILL] = Field(StepKind.DISTILL, description=STEP_KIND)
    alpha: float = Field(description="weight of the teacher's soft targets vs the labels")
    temperature: float = Field(description="softmax temperature of the soft targets")
    student: dict[str, Any] | str = Field(description="the StudentSpec, or the student model's path")
    teacher: TeacherInfo | str = Field(description='a foreign teacher, or "the chain\'s model"')
    teacher_parameters: int | None = Field(description="the teacher's weights")
    student_parameters: int = Field(description="the student's weights")
    parameter_ratio: float | None = Field(description="teacher / student weights")
    rows: DistillRows = Field(description="the training rows by origin")
    augment: dict[str, Any] | None = Field(description="the augmentation settings (None: off)")
    augment_origin: AugmentOrigin | None = Field(
        None,
        description="why augmentation was on: recipe (distill.augment), or foreign-teacher default "
        "(distill.augment unset and the teacher a foreign model: on by default); None: off",
    )
    selected_by: str = Field(description="accuracy | agreement")
    matched_layers: dict[str, str] = Field(
        description="student layer -> teacher layer it was initialised from"
    )
    teacher_val_accuracy: float | None = Field(description="the teacher on the val split")
    student_val_accuracy: float | None = Field(description="the student on the val split")
    student_val_agreement: float | None = Field(
        description="fraction of val queries where the student agrees with the teacher"
    )
    val_accuracy_per_epoch: list[float] | None = Field(None, description="selected_by accuracy")
    val_agreement_per_epoch: list[float] | None = Field(None, description="selected_by agreement")
    train_metrics: dict[str, float] = Field(description="the training's last metrics")
    unlabelled_scoring: LogScoring | None = Field(
        None, description="a model teacher's scores of distill.unlabelled"
    )
    rare_intents: RareIntentsReport | None = Field(
        None, description="class balance / sure hard labels (foreign teachers)"
    )
    from_teacher: list[TeacherTensor] | None = Field(
        None, description="the student tensors started from the teacher's (embedding_init: teacher)"
    )


class FactorizedLayer(Record):
    shape: list[int] = Field(description="the kernel's shape")
    rank: int | None = Field(description="the rank kept (None: left as it was)")
    energy_kept: float | None = Field(description="share of singular-value energy kept")
    params_before: int = Field(description="weights before")
    params_after: int = Field(description="weights after")
    saved: int = Field(description="weights saved")
    note: str | None = Field(None, description="why it was not factorized")


class LowRankReport(StepReport):
    kind: Literal[StepKind.LOWRANK] = Field(StepKind.LOWRANK, description=STEP_KIND)
    rule: str = Field(description="how the ranks were chosen")
    layers: dict[str, FactorizedLayer] = Field(description="layer -> its factorization")
    factorized_params_before: int = Field(description="weights of the factorized layers before")
    factorized_params_after: int = Field(description="after")
    factorized_reduction: float = Field(description="before / after")
    val_accuracy_after_svd: float | None = Field(description="val accuracy right after the factorization")
    val_accuracy_after_finetune: float | None = Field(description="after the fine-tune")
    train_metrics: dict[str, float] = Field(description="the fine-tune's last metrics")


class SparsityChange(Record):
    before: float = Field(description="sparsity before QAT")
    after: float | None = Field(description="after (None: not measured)")


class QATReport(StepReport):
    kind: Literal[StepKind.QAT] = Field(StepKind.QAT, description=STEP_KIND)
    scheme: str = Field(description="the quantization scheme trained for")
    annotated_layers: list[str] = Field(description="layers trained with fake quantization")
    float_during_qat: list[str] = Field(description="layers left float during training")
    float_note: str = Field(description="why")
    sparsity_before: float = Field(description="model sparsity before QAT")
    sparsity_after: float = Field(description="after (kept by the mask callback)")
    layer_sparsity: dict[str, SparsityChange] = Field(description="layer -> sparsity before and after")
    masks_kept_by_callback: list[str] = Field(
        description="layers whose pruning masks were held during training"
    )
    train_metrics: dict[str, float] = Field(description="the training's last metrics")


class VocabRule(Record):
    min_count: int = Field(description="a token is kept when it occurs at least this often")
    max_size: int | None = Field(description="the vocabulary's size limit")
    coverage: float | None = Field(description="share of the corpus's tokens to keep")


class VocabPruneReport(StepReport):
    kind: Literal[StepKind.VOCAB_PRUNE] = Field(StepKind.VOCAB_PRUNE, description=STEP_KIND)
    vocab_before: int = Field(description="tokens before")
    vocab_after: int = Field(description="tokens after")
    rule: VocabRule = Field(description="what decided which tokens stay")
    corpus: str = Field(description="the queries the counts came from")
    embedding_params_before: int = Field(description="embedding weights before")
    embedding_params_after: int = Field(description="after")
    corpus_share_now_unknown: float = Field(
        description="share of corpus tokens that now map to the unknown token"
    )
    tables: list[str] = Field(description="the embedding tables cut")
    val_accuracy: dict[str, float] = Field(description="before / after, when there is a val split")


class TrimExample(Record):
    text: str = Field(description="the query")
    before: list[str] = Field(description="the pieces of the untrimmed tokenizer")
    after: list[str] = Field(description="its pieces after trimming")


class TrimHeldout(Record):
    """Held-out queries (the test split, else val): how many the trimmed vocabulary splits otherwise."""

    split: str = Field(description="the held-out split")
    queries: int = Field(description="queries in it")
    changed: int = Field(description="queries whose pieces changed")
    changed_share: float = Field(description="changed / queries")
    examples: list[TrimExample] = Field(description="a few changed queries")


class TrimEffect(Record):
    """The untrimmed vs the trimmed float model on the held-out queries."""

    runtime: str = Field(description="what ran the two float models")
    accuracy_before: float | None = Field(None, description="classifiers with labels")
    accuracy_after: float | None = Field(None, description="accuracy of the trimmed model")
    top1_agreement: float | None = Field(None, description="classifiers")
    mean_cosine: float | None = Field(None, description="embedders")
    min_cosine: float | None = Field(None, description="smallest cosine (embedders)")
    max_abs_diff_unchanged: float | None = Field(
        description="on the queries whose tokenization did not change (0: same rows)"
    )


class TrimChoice(Record):
    """dropped: auto: the untrimmed vs each trimmed float model on the val split."""

    split: str = Field(description="the split the choice was measured on")
    queries: int = Field(description="queries measured")
    measure: str = Field(description="top-1 agreement (classifiers) or mean cosine (embedders)")
    scores: dict[str, float] = Field(description="split / unk: the measure with each")


class VocabTrimReport(StepReport):
    kind: Literal[StepKind.VOCAB_TRIM] = Field(StepKind.VOCAB_TRIM, description=STEP_KIND)
    tokenizer: str = Field(description="wordpiece | sentencepiece")
    method: str = Field(
        description="how the ids reach the kept rows: the tokenizer rewritten, renumbered (ids clamped in "
        "the graph), or an in-graph remap"
    )
    vocab_before: int = Field(description="pieces before")
    vocab_after: int = Field(description="pieces kept")
    rows_removed_share: float = Field(description="share of embedding rows removed")
    kept_by_reason: dict[str, int] = Field(description="special, single_char, corpus")
    single_chars: str = Field("true", description="the single_chars knob: scripts, true or false")
    single_char_scripts: list[str] = Field(
        default_factory=list, description="single_chars: scripts: the scripts whose single letters were kept"
    )
    single_chars_dropped: int = Field(0, description="single letters of other scripts dropped")
    corpus: list[str] = Field(description="where the kept pieces' queries came from, with counts")
    corpus_queries: int = Field(description="queries counted")
    corpus_pieces: int = Field(description="distinct pieces the queries use")
    coverage: float = Field(description="the coverage knob: share of piece occurrences to keep")
    min_count: int = Field(description="the min_count knob: a piece is kept if used at least this often")
    covered_share: float = Field(description="of the queries' piece occurrences")
    dropped: str = Field(
        "split",
        description="a dropped piece: split into kept pieces (split), or read as [UNK] (unk-renumber: the "
        "tokenizer renumbered, ids clamped; unk: an in-graph remap)",
    )
    dropped_choice: TrimChoice | None = Field(None, description="how dropped: auto chose (val split)")
    table: str = Field(description="the embedding table (ONNX initializer or Keras layer)")
    embedding_params_before: int = Field(description="embedding weights before")
    embedding_params_after: int = Field(description="embedding weights after")
    heldout: TrimHeldout | None = Field(description="held-out queries whose tokenization changed")
    effect: TrimEffect | None = Field(description="the untrimmed vs trimmed float model")
    summary: str = Field(description="one line for people")


class ItemPruneReport(StepReport):
    kind: Literal[StepKind.ITEM_PRUNE] = Field(StepKind.ITEM_PRUNE, description=STEP_KIND)
    min_clicks: int = Field(description="an item is kept when it has at least this many clicks")
    items_before: int = Field(description="items before")
    items_after: int = Field(description="items after")
    dropped: int = Field(description="items dropped")
    train_queries_of_dropped_items: int = Field(description="training queries whose item was dropped")
    table_parameters_before: int = Field(description="item table weights before")
    table_parameters_after: int = Field(description="after")


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
