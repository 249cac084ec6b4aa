"""report.json `quantization`: the mode, the calibration draw and its convergence, and the mixed plan.

Calibrated modes record what they calibrated on (`calibration_*`: toolchain/quantization/stratify.py draws
the sample, toolchain/quantization/calibration.py measures whether the ranges settled); an ONNX int8 graph
records the attention-mask preparation (converters/onnx_prepare.py); `mode: mixed` records the search or
the replayed plan (toolchain/quantization/mixed.py); every int8 build its share of MACs in int8.
"""

from __future__ import annotations

from pydantic import Field

from toolchain.base.record import Record
from toolchain.base.types import MixedReason, Precision, QuantMode


class LabelSpread(Record):
    count: int
    per_label_min: int
    per_label_max: int


class LengthBucket(Record):
    words: tuple[int, int]  # shortest and longest query of the bucket, in words
    available: int
    drawn: int


class CalibrationDraw(Record):
    """How the calibration sample was drawn: stratified by label (when labelled) and query length."""

    method: str
    by: list[str]
    drawn: int
    available: int
    labels: LabelSpread | None = None
    length_buckets: list[LengthBucket]


class ConvergenceStep(Record):
    queries: int
    tensors: int
    compared: int | None = None  # from the second step on
    median_change: float | None = None
    max_change: float | None = None
    max_tensor: str | None = None
    over_limit: int | None = None


class IgnoredTensors(Record):
    huge: int
    degenerate: int
    note: str


class Convergence(Record):
    """Calibration on 1/4, 1/2 and all of the sample: how far the activation ranges still moved."""

    steps: list[ConvergenceStep]
    threshold: float
    converged: bool
    ignored: IgnoredTensors
    summary: str


class MaskConstant(Record):
    tensor: str
    from_: float | str = Field(alias="from")  # "-inf" when the graph had an infinite constant
    to: float


class FloatEffect(Record):
    queries: int
    min_cosine: float
    max_abs_error: float


class GraphPreparation(Record):
    """ONNX int8: the attention-mask constant clipped to a calibrated bound, NaN guards dropped."""

    changed: bool
    note: str | None = None
    mask_constants: list[MaskConstant] | None = None
    attention_score_range: tuple[float, float] | None = None
    nan_guards_removed: int | None = None
    float_effect: FloatEffect | None = None


class MixedMetrics(Record):
    """A candidate scored on the search queries against the float model (toolchain/tasks.py: per task)."""

    mean_cosine: float
    agreement: float | None = None  # classification
    accuracy_drop_points: float | None = None  # classification with labels
    top10_overlap: float | None = None  # retrieval
    recall_drop_points: float | None = None  # retrieval with labels (recall@10)


class MixedTargets(Record):
    """What the search aims at: halfway between each gate and a perfect score."""

    min_agreement: float | None = None
    max_accuracy_drop: float | None = None
    min_cosine: float | None = None
    min_top10_overlap: float | None = None
    max_recall_drop: float | None = None
    source: str  # recipe | default


class AimMiss(Record):
    """A metric the search's aim asked for and no candidate reached, while the gate itself held."""

    metric: str  # a MixedTargets field, e.g. min_cosine
    gate: float
    aim: float
    reached: float
    missed_by: float  # how far the chosen plan is from the aim (always > 0)


class KeptOp(Record):
    """An op the mixed search kept out of int8, and why."""

    node: str
    op: str
    macs: int
    reason: MixedReason
    damage_alone: float | None = None  # reason error: 1 - cosine when quantized alone
    if_int8: MixedMetrics | None = None  # reason error: the search metrics with it back in int8


class SpeedRow(Record):
    op: str
    count: int
    int8_us: float
    float_us: float
    precision: Precision


class MixedSection(Record):
    float_nodes: int
    search_split: str | None = None
    targets: MixedTargets | None = None
    gates: MixedTargets | None = None  # what the plan must meet; targets (the aim) lie halfway past them
    aim_missed: list[AimMiss] | None = None  # the aim was out of reach: the best plan meeting the gates
    # FC outputs equalized (converters/equalize.py): {output tensor: largest channel scale}
    equalized: dict[str, float] | None = None
    full_int8_unequalized: MixedMetrics | None = None  # full int8 before equalization (kept: it was worse)
    full_int8: MixedMetrics | None = None
    chosen: MixedMetrics | None = None
    kept_out_of_int8: list[KeptOp] | None = None
    speed_by_op_type: list[SpeedRow] | None = None
    candidates_evaluated: int | None = None
    search_seconds: float | None = None
    peak_memory_mb: int | None = None  # this process's peak resident memory when the search ended
    plan: str  # "searched" | "replayed from the recipe (no search)"

    @property
    def searched(self) -> bool:
        return self.kept_out_of_int8 is not None


class QuantizationSection(Record):
    mode: QuantMode
    onnx_opset: int | None = None
    calibration_queries: int | None = None
    calibration_source: str | None = None
    calibration_draw: CalibrationDraw | None = None
    graph_preparation: GraphPreparation | None = None
    calibration_convergence: Convergence | None = None
    mixed: MixedSection | None = None
    full_integer: bool | None = None  # False: some ops stay float (mixed, float_fallback_ops)
    int8_mac_share: float | None = None
    non_int8_weight_ops: list[str] | None = None
    float_fallback_ops: list[str] | None = None
