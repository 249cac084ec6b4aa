"""report.json `evaluation`: how the converted model compares with its float models, typed.

The vocabulary is toolchain/evaluation/metrics.py's: the **source** is the float model given to convert (a
distilled student's source is its teacher), the **post-step float** the float model after the steps, the
**converted** model the .tflite. Which blocks a build has depends on its task and source:
- a classifier with a labelled test split: `vs_source_float`, `vs_final_float`, `by_stage`;
- an ONNX source: `onnx_reference` (closeness to onnxruntime on the same inputs), plus the above when
  labelled;
- a retrieval model: `retrieval` (recall@k, MRR and top-10 overlap by stage, the item table's size);
- a student of a foreign teacher: `teacher` (agreement with it, overall and where it is sure);
- no labelled split (Keras): only `skipped`, saying why.
"""

from __future__ import annotations

from pydantic import Field

from toolchain.base.record import Record
from toolchain.base.types import Stage


class ReferenceCheck(Record):
    """The .tflite against a float reference on the same inputs (ONNX sources: onnxruntime)."""

    queries: int = Field(description="inputs compared")
    max_abs_error: float = Field(description="largest absolute difference of any output value")
    worst_abs_query: int = Field(description="index into the evaluated queries")
    mean_cosine: float = Field(description="mean cosine similarity of the output vectors")
    min_cosine: float = Field(description="smallest cosine similarity of any query")
    worst_cosine_query: int = Field(description="index of the query with the smallest cosine")
    top1_agreement: float = Field(description="fraction of queries with the same top-1 class")


class Metrics(Record):
    accuracy: float = Field(description="fraction of test queries classified right")
    macro_f1: float = Field(description="F1 averaged over labels")
    recall: dict[str, float] = Field(description="per label")


class Flip(Record):
    """One test query whose top-1 class the converted model changed."""

    query: int = Field(description="index into the evaluated split")
    text: str | None = Field(None, description="the query")
    source: str = Field(description="the reference's top-1 class")
    source_prob: float = Field(description="the reference's top-1 probability (softmax of its scores)")
    source_runner_up: str = Field(description="the reference's second class")
    converted: str = Field(description="the converted model's top-1 class")


class Flips(Record):
    """The disagreements of a comparison, split by how sure the reference was: a flip where the reference
    itself was unsure (a near-tie) is a coin toss quantization tipped; one where it was sure is damage."""

    total: int = Field(description="queries whose top-1 class differs")
    sure_min_prob: float = Field(description="the reference is sure of a query at this top-1 probability")
    sure_queries: int = Field(description="queries the reference is sure of")
    where_sure: int = Field(description="disagreements on queries the reference is sure of")
    where_unsure: int = Field(description="disagreements on queries the reference is unsure of")
    agreement_where_sure: float | None = Field(description="top-1 agreement where the reference is sure")
    agreement_interval: tuple[float, float] = Field(
        description="95% (Wilson) interval of top1_agreement: what another sample of as many queries gives"
    )
    most_confident: list[Flip] = Field(description="the flips the reference was surest of, up to 5")


class Comparison(Record):
    """A float reference vs the converted model on the labelled test split."""

    queries: int = Field(description="labelled test queries")
    reference: Metrics = Field(description="the float model's metrics")
    converted: Metrics = Field(description="the .tflite's metrics")
    accuracy_drop_points: float = Field(description="reference accuracy minus converted, in points")
    top1_agreement: float = Field(description="fraction of queries where both predict the same class")
    max_abs_score_diff: float = Field(description="largest absolute difference of any output score")
    recall_change: dict[str, float] = Field(description="converted minus reference recall, per label")
    worst_recall_change: tuple[str, float] | None = Field(description="(label, change); None without labels")
    support: dict[str, int] = Field(description="test queries per label")
    flips: Flips | None = Field(
        None, description="the disagreements, split by how sure the reference was (reports from 2026-12-07)"
    )


class UnlabelledAgreement(Record):
    """A classifier evaluated on queries without labels (a query log as --test): the converted model's
    top-1 against the float models', which needs no label; accuracy, F1 and recall do."""

    queries: int = Field(description="unlabelled queries evaluated")
    top1_agreement: float = Field(description="agreement vs source: the share with the same top-1 class")
    top1_agreement_vs_post_step_float: float = Field(
        description="the same against the post-step float model (what quantization alone cost)"
    )
    flips: Flips = Field(description="the disagreements vs source, split by how sure the source was")


class StageMetrics(Record):
    """One stage of a classifier build against its source."""

    stage: Stage = Field(description="source, after steps or after quantization (the .tflite)")
    accuracy: float = Field(description="fraction of test queries right")
    macro_f1: float = Field(description="F1 averaged over labels")
    agreement_vs_source: float = Field(description="fraction of queries with the source's top-1 class")
    accuracy_drop_points: float = Field(description="source accuracy minus this stage's, in points")
    agreement_vs_post_step_float: float | None = Field(None, description="the converted stage only")


class Disagreements(Record):
    """The converted model's disagreements with the source, split by the stage that made them."""

    total: int = Field(description="queries where the .tflite's top-1 differs from the source's")
    from_steps: int = Field(description="the post-step float already disagreed")
    from_quantization: int = Field(description="the post-step float agreed; the .tflite does not")


class ByStage(Record):
    queries: int = Field(description="labelled test queries")
    stages: list[StageMetrics] = Field(
        description="source -> after steps (builds with steps) -> after quantization"
    )
    disagreements_vs_source: Disagreements = Field(description="where the disagreements come from")

    def stage(self, stage: Stage) -> StageMetrics | None:
        return next((s for s in self.stages if s.stage == stage), None)


class RetrievalStage(Record):
    stage: Stage = Field(description="source, after steps or after quantization (the .tflite)")
    recall_at_1: float = Field(description="fraction of queries whose clicked item ranks first")
    recall_at_10: float = Field(description="fraction of queries whose clicked item is in the top 10")
    mrr: float = Field(description="mean reciprocal rank of the clicked item")
    top10_overlap_vs_source: float = Field(
        description="mean share of the source's top 10 items this stage also returns"
    )
    top1_agreement_vs_source: float = Field(description="fraction of queries with the source's first item")
    recall_at_10_drop_points: float = Field(description="source recall@10 minus this stage's, in points")
    top10_overlap_vs_post_step_float: float | None = Field(None, description="the converted stage only")


class ItemKernel(Record):
    dtype: str = Field(description="element type of the item table in the .tflite")
    shape: list[int] = Field(description="items x embedding size")
    scales: int = Field(description="quantization scales (1: per tensor, items: per row)")


class TableSize(Record):
    """Bytes of a retrieval model's item table in the .tflite vs the rest of its weights."""

    item_table_bytes: int = Field(description="bytes of the item embedding table")
    other_weight_bytes: int = Field(description="bytes of every other weight")
    item_table_share: float = Field(description="item table bytes / all weight bytes")
    item_kernel: ItemKernel | None = Field(description="the table's tensor (None: not found as one tensor)")


class RetrievalEvaluation(Record):
    queries: int = Field(description="test queries with a clicked item")
    items: int = Field(description="items in the catalogue")
    k: int = Field(description="the cut-off of the overlap metrics")
    stages: list[RetrievalStage] = Field(description="source -> after steps -> converted")
    size: TableSize | None = Field(None, description="how much of the model is the item table")

    def stage(self, stage: Stage) -> RetrievalStage | None:
        return next((s for s in self.stages if s.stage == stage), None)

    @property
    def final(self) -> RetrievalStage:
        return self.stages[-1]


class TeacherAgreement(Record):
    """A student of a foreign teacher: the teacher is its source; agreement is the headline."""

    agreement_with_teacher: float = Field(
        description="fraction of test queries where the student's top-1 is the teacher's"
    )
    teacher_accuracy: float = Field(description="the teacher's accuracy on the labelled test split")
    student_accuracy: float = Field(description="the converted student's accuracy")
    accuracy_drop_points: float = Field(description="teacher accuracy minus student accuracy, in points")
    teacher: str = Field(description='"<kind> <file name>"')
    agreement_where_teacher_sure: float | None = Field(
        description="agreement on the queries where the teacher is sure (top-1 probability >= "
        "`teacher_sure_min_prob`)"
    )
    teacher_sure_queries: int = Field(description="queries where the teacher is sure")
    teacher_unsure_queries: int = Field(description="queries where it is not")
    agreement_where_teacher_unsure: float | None = Field(description="agreement on the unsure queries")
    teacher_sure_min_prob: float | None = Field(
        None,
        description="the teacher's top-1 probability at or above which it counts as sure "
        "(toolchain/tasks.py TEACHER_SURE_MIN_PROB; None in a report written under the margin rule)",
    )
    teacher_sure_margin: float | None = Field(
        None,
        description="reports written before the probability rule: the teacher counted as sure when its "
        "top-1 probability led its top-2 by this (read, never written now)",
    )
    teacher_accuracy_where_sure: float | None = Field(
        None,
        description="the teacher's own accuracy on the queries it is sure of (the ceiling of a "
        "student that copies only its right answers there)",
    )


class WeakIntent(Record):
    """An intent whose recall in the .tflite is below `min_recall_ratio` of the source's (the teacher's)."""

    label: str = Field(description="the intent")
    recall: float = Field(description="the .tflite's, on the test split")
    reference_recall: float = Field(description="the source's (a foreign teacher's) recall for the intent")
    support: int = Field(description="test queries of the intent")
    dead: bool = Field(description="recall 0: the model never predicts it right")


class GateCheck(Record):
    """One convert gate as applied: its limit, the measured value (None: not measured) and the verdict."""

    gate: str = Field(description="evaluation.<gate> / --<gate>")
    metric: str = Field(description="what is measured")
    limit: float = Field(description="the gate's limit")
    measured: float | None = Field(description="the measured value (None: not measured)")
    passed: bool | None = Field(description="None: the number is absent, the gate does not apply")


class GateResults(Record):
    """The gates a build was judged by (a foreign teacher's student): whose they are and how each went."""

    origin: str = Field(
        description="'recipe', or 'foreign-teacher defaults' when the recipe set none (tasks.py)"
    )
    checks: list[GateCheck] = Field(description="every gate applied, in order")
    weak_intents: list[WeakIntent] = Field(
        description="below min_recall_ratio of the reference's recall, worst first"
    )
    dead_intents: int = Field(description="of them, with recall 0")
    teacher_sure_queries: int | None = Field(
        None, description="the queries min_agreement_where_sure is measured on"
    )


class EvaluationSection(Record):
    split: str | None = Field(
        None, description="the evaluated split's path, or how the inputs were made (random ids)"
    )
    runtime: str | None = Field(None, description="what ran the models")
    skipped: str | None = Field(None, description="why nothing was evaluated")
    vs_final_float: Comparison | None = Field(
        None, description="the .tflite vs the post-step float model (what quantization cost)"
    )
    vs_source_float: Comparison | None = Field(
        None, description="the .tflite vs the source (what the whole build cost)"
    )
    by_stage: ByStage | None = Field(
        None, description="accuracy and agreement at each stage, and which stage made each disagreement"
    )
    retrieval: RetrievalEvaluation | None = Field(
        None, description="retrieval models: recall, MRR and overlap by stage"
    )
    unlabelled: UnlabelledAgreement | None = Field(
        None,
        description="ONNX classifiers whose evaluated split has no labels: agreement and flips vs source "
        "(min_agreement and min_agreement_where_sure judge it; the label gates are not applied)",
    )
    onnx_reference: ReferenceCheck | None = Field(
        None, description="ONNX sources: the .tflite vs onnxruntime on the same inputs"
    )
    float_reference: ReferenceCheck | None = Field(
        None, description="the float32 TFLite vs onnxruntime (quantized builds)"
    )
    teacher: TeacherAgreement | None = Field(
        None, description="a student of a foreign teacher: agreement with the teacher"
    )
    gates: GateResults | None = Field(
        None, description="a foreign teacher's student: the gates applied, met or missed"
    )
