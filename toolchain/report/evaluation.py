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

from toolchain.base.record import Record
from toolchain.base.types import Stage


class ReferenceCheck(Record):
    """The .tflite against a float reference on the same inputs (ONNX sources: onnxruntime)."""

    queries: int
    max_abs_error: float
    worst_abs_query: int  # index into the evaluated queries
    mean_cosine: float
    min_cosine: float
    worst_cosine_query: int
    top1_agreement: float


class Metrics(Record):
    accuracy: float
    macro_f1: float
    recall: dict[str, float]  # per label


class Comparison(Record):
    """A float reference vs the converted model on the labelled test split."""

    queries: int
    reference: Metrics
    converted: Metrics
    accuracy_drop_points: float  # reference accuracy minus converted, in points
    top1_agreement: float
    max_abs_score_diff: float
    recall_change: dict[str, float]  # converted minus reference recall, per label
    worst_recall_change: tuple[str, float] | None  # (label, change); None without labels
    support: dict[str, int]  # test queries per label


class StageMetrics(Record):
    """One stage of a classifier build against its source."""

    stage: Stage
    accuracy: float
    macro_f1: float
    agreement_vs_source: float
    accuracy_drop_points: float
    agreement_vs_post_step_float: float | None = None  # the converted stage only


class Disagreements(Record):
    """The converted model's disagreements with the source, split by the stage that made them."""

    total: int
    from_steps: int  # the post-step float already disagreed
    from_quantization: int  # the post-step float agreed; the .tflite does not


class ByStage(Record):
    queries: int
    stages: list[StageMetrics]  # source -> after steps (builds with steps) -> after quantization
    disagreements_vs_source: Disagreements

    def stage(self, stage: Stage) -> StageMetrics | None:
        return next((s for s in self.stages if s.stage == stage), None)


class RetrievalStage(Record):
    stage: Stage
    recall_at_1: float
    recall_at_10: float
    mrr: float
    top10_overlap_vs_source: float
    top1_agreement_vs_source: float
    recall_at_10_drop_points: float
    top10_overlap_vs_post_step_float: float | None = None  # the converted stage only


class ItemKernel(Record):
    dtype: str
    shape: list[int]
    scales: int


class TableSize(Record):
    """Bytes of a retrieval model's item table in the .tflite vs the rest of its weights."""

    item_table_bytes: int
    other_weight_bytes: int
    item_table_share: float
    item_kernel: ItemKernel | None


class RetrievalEvaluation(Record):
    queries: int
    items: int
    k: int
    stages: list[RetrievalStage]
    size: TableSize | None = None

    def stage(self, stage: Stage) -> RetrievalStage | None:
        return next((s for s in self.stages if s.stage == stage), None)

    @property
    def final(self) -> RetrievalStage:
        return self.stages[-1]


class TeacherAgreement(Record):
    """A student of a foreign teacher: the teacher is its source; agreement is the headline."""

    agreement_with_teacher: float
    teacher_accuracy: float
    student_accuracy: float
    accuracy_drop_points: float
    teacher: str  # "<kind> <file name>"
    agreement_where_teacher_sure: float | None
    teacher_sure_queries: int
    teacher_unsure_queries: int
    agreement_where_teacher_unsure: float | None
    teacher_sure_margin: float


class WeakIntent(Record):
    """An intent whose recall in the .tflite is below `min_recall_ratio` of the source's (the teacher's)."""

    label: str
    recall: float  # the .tflite's, on the test split
    reference_recall: float  # the source's (a foreign teacher's) recall for the intent
    support: int  # test queries of the intent
    dead: bool  # recall 0: the model never predicts it right


class GateCheck(Record):
    """One convert gate as applied: its limit, the measured value (None: not measured) and the verdict."""

    gate: str  # evaluation.<gate> / --<gate>
    metric: str
    limit: float
    measured: float | None
    passed: bool | None  # None: the number is absent, the gate does not apply


class GateResults(Record):
    """The gates a build was judged by (a foreign teacher's student): whose they are and how each went."""

    origin: str  # "recipe", or "foreign-teacher defaults" when the recipe set none (tasks.py)
    checks: list[GateCheck]
    weak_intents: list[WeakIntent]  # below min_recall_ratio of the reference's recall, worst first
    dead_intents: int  # of them, with recall 0
    teacher_sure_queries: int | None = None  # the queries min_agreement_where_sure is measured on


class EvaluationSection(Record):
    split: str | None = None  # the evaluated split's path, or how the inputs were made (random ids)
    runtime: str | None = None  # what ran the models
    skipped: str | None = None  # why nothing was evaluated
    vs_final_float: Comparison | None = None
    vs_source_float: Comparison | None = None
    by_stage: ByStage | None = None
    retrieval: RetrievalEvaluation | None = None
    onnx_reference: ReferenceCheck | None = None
    float_reference: ReferenceCheck | None = None  # the float32 TFLite vs onnxruntime (quantized builds)
    teacher: TeacherAgreement | None = None
    gates: GateResults | None = None  # a foreign teacher's student: the gates applied, met or missed
