"""report.json `quantization`: the mode, the calibration draw and its convergence, and the mixed plan.

Calibrated modes record what they calibrated on (`calibration_*`: toolchain/quantization/stratify.py draws
the sample, toolchain/quantization/calibration.py measures whether the ranges settled); an ONNX int8 graph
records the attention-mask preparation (converters/onnx_prepare.py); `mode: mixed` records the search or
the replayed plan (toolchain/quantization/mixed.py); every int8 build its share of MACs in int8.
"""

from __future__ import annotations

from pydantic import Field

from toolchain.base.record import Record
from toolchain.base.types import Int4Rounding, MacFreeOps, MixedReason, Precision, QuantMode, WeightWidth


class LabelSpread(Record):
    count: int = Field(description="labels drawn from")
    per_label_min: int = Field(description="fewest queries of one label")
    per_label_max: int = Field(description="most queries of one label")


class LengthBucket(Record):
    words: tuple[int, int] = Field(description="shortest and longest query of the bucket, in words")
    available: int = Field(description="queries of this length in the source split")
    drawn: int = Field(description="queries drawn from it")


class CalibrationDraw(Record):
    """How the calibration sample was drawn: stratified by label (when labelled) and query length."""

    method: str = Field(description="how the sample was drawn (stratified, first)")
    by: list[str] = Field(description="what it was stratified by (label, length)")
    drawn: int = Field(description="queries in the calibration sample")
    available: int = Field(description="queries it was drawn from")
    labels: LabelSpread | None = Field(None, description="how the sample spreads over the labels")
    length_buckets: list[LengthBucket] = Field(description="how it spreads over query lengths")


class ConvergenceStep(Record):
    queries: int = Field(description="calibration queries used at this step")
    tensors: int = Field(description="activation tensors calibrated")
    compared: int | None = Field(None, description="from the second step on")
    median_change: float | None = Field(
        None, description="median relative change of a tensor's range since the previous step"
    )
    max_change: float | None = Field(None, description="largest relative change")
    max_tensor: str | None = Field(None, description="the tensor that changed most")
    over_limit: int | None = Field(None, description="tensors whose range moved more than the threshold")


class IgnoredTensors(Record):
    huge: int = Field(description="tensors left out because their range is huge (masks, -inf constants)")
    degenerate: int = Field(description="tensors left out because their range is (almost) zero")
    note: str = Field(description="why they do not count")


class Convergence(Record):
    """Calibration on 1/4, 1/2 and all of the sample: how far the activation ranges still moved."""

    steps: list[ConvergenceStep] = Field(description="one row per sample size (1/4, 1/2, all)")
    threshold: float = Field(description="relative range change below which a tensor counts as settled")
    converged: bool = Field(description="True: no tensor moved more than the threshold at the last step")
    ignored: IgnoredTensors = Field(description="tensors left out of the comparison")
    summary: str = Field(description="the verdict in one line")


class MaskConstant(Record):
    tensor: str = Field(description="the constant's tensor")
    from_: float | str = Field(alias="from", description='"-inf" when the graph had an infinite constant')
    to: float = Field(description="the value it was clipped to")


class FloatEffect(Record):
    queries: int = Field(description="queries the prepared float graph was compared on")
    min_cosine: float = Field(description="smallest cosine of its outputs vs the original graph")
    max_abs_error: float = Field(description="largest absolute output difference")


class GraphPreparation(Record):
    """ONNX int8: the attention-mask constant clipped to a calibrated bound, NaN guards dropped."""

    changed: bool = Field(description="True: the graph was changed before int8 conversion")
    note: str | None = Field(None, description="why not, or what to know")
    mask_constants: list[MaskConstant] | None = Field(
        None, description="attention-mask constants and the value each was clipped to"
    )
    attention_score_range: tuple[float, float] | None = Field(
        None, description="calibrated (min, max) of the attention scores"
    )
    nan_guards_removed: int | None = Field(None, description="NaN guards (Where/IsNaN) dropped")
    float_effect: FloatEffect | None = Field(
        None, description="what the preparation does to the float outputs (should be nothing)"
    )


class Smoothing(Record):
    """quantization.smooth: activation outliers moved into the weights before quantization (SmoothQuant)."""

    changed: bool = Field(description="True: the graph was smoothed")
    alpha: float = Field(description="the migration strength (quantization.smooth)")
    note: str | None = Field(None, description="why not")
    inputs_smoothed: int | None = Field(
        None, description="dense-layer inputs divided by their channel scales"
    )
    dense_layers: int | None = Field(None, description="MatMuls whose weight rows took the scales")
    worst_peak_ratio: float | None = Field(
        None, description="largest (max channel peak / median channel peak) of a smoothed input, before"
    )
    float_max_abs_diff: float | None = Field(
        None, description="largest output change in float (onnxruntime) on the calibration queries"
    )
    queries: int | None = Field(None, description="calibration queries measured on")


class MixedMetrics(Record):
    """A candidate scored on the search queries against the float model (toolchain/tasks.py: per task)."""

    mean_cosine: float = Field(description="mean cosine of the candidate's outputs vs the float model")
    agreement: float | None = Field(None, description="classification")
    agreement_where_sure: float | None = Field(
        None,
        description="classification: agreement on the queries the float model is sure of (top-1 >= 0.95)",
    )
    accuracy_drop_points: float | None = Field(None, description="classification with labels")
    top10_overlap: float | None = Field(None, description="retrieval")
    recall_drop_points: float | None = Field(None, description="retrieval with labels (recall@10)")


class MixedTargets(Record):
    """What the search aims at: halfway between each gate and a perfect score."""

    min_agreement: float | None = Field(None, description="classification: top-1 agreement to reach")
    min_agreement_where_sure: float | None = Field(
        None, description="classification: top-1 agreement to reach where the float model is sure"
    )
    max_accuracy_drop: float | None = Field(
        None, description="classification with labels: accuracy drop allowed, in points"
    )
    min_cosine: float | None = Field(None, description="mean cosine to reach")
    min_top10_overlap: float | None = Field(None, description="retrieval: top-10 overlap to reach")
    max_recall_drop: float | None = Field(
        None, description="retrieval with labels: recall@10 drop allowed, in points"
    )
    source: str = Field(description="recipe | default")


class AimMiss(Record):
    """A metric the search's aim asked for and no candidate reached, while the gate itself held."""

    metric: str = Field(description="a MixedTargets field, e.g. min_cosine")
    gate: float = Field(description="the gate's limit")
    aim: float = Field(description="the aim's limit")
    reached: float = Field(description="what the chosen plan reached")
    missed_by: float = Field(description="how far the chosen plan is from the aim (always > 0)")


class KeptOp(Record):
    """An op the mixed search kept out of int8, and why."""

    node: str = Field(description="the op's node name")
    op: str = Field(description="its builtin op type")
    macs: int = Field(description="its multiply-accumulates per query")
    reason: MixedReason = Field(
        description="error: int8 would miss the gate; speed: its float kernel is faster, no MACs"
    )
    damage_alone: float | None = Field(None, description="reason error: 1 - cosine when quantized alone")
    type_damage_alone: float | None = Field(
        None,
        description="reason error: 1 - cosine with every searched op of its type quantized alone (the search "
        "ranks op types by this per MAC, then tries each op with MACs back in int8)",
    )
    if_int8: MixedMetrics | None = Field(
        None, description="reason error: the search metrics with it back in int8"
    )


class SpeedRow(Record):
    op: str = Field(description="op type")
    count: int = Field(description="ops of this type in the graph")
    int8_us: float = Field(description="measured time per invoke in int8, microseconds")
    float_us: float = Field(description="the same in float")
    precision: Precision = Field(description="the precision the plan picked for this type")


class MixedSection(Record):
    float_nodes: int = Field(description="ops kept in float")
    search_split: str | None = Field(None, description="the queries the search scored candidates on")
    targets: MixedTargets | None = Field(None, description="what the search aimed at")
    gates: MixedTargets | None = Field(
        None, description="what the plan must meet; targets (the aim) lie halfway past them"
    )
    aim_missed: list[AimMiss] | None = Field(
        None, description="the aim was out of reach: the best plan meeting the gates"
    )
    equalized: dict[str, float] | None = Field(
        None,
        description="FC outputs equalized (converters/equalize.py): {output tensor: largest channel scale}",
    )
    fused_gelu: list[str] | None = Field(
        None,
        description="composed GELU subgraphs fused into one GELU op before the search (converters/fuse.py): "
        "their output tensors",
    )
    full_int8_unequalized: MixedMetrics | None = Field(
        None, description="full int8 before equalization (kept: it was worse)"
    )
    full_int8: MixedMetrics | None = Field(None, description="the all-int8 candidate's metrics")
    chosen: MixedMetrics | None = Field(None, description="the chosen plan's metrics")
    kept_out_of_int8: list[KeptOp] | None = Field(None, description="ops kept in float, and why")
    mac_free_ops: MacFreeOps | None = Field(
        None,
        description="how the op types without MACs got their precision: float (by rule, not timed) or timed "
        "(speed_by_op_type)",
    )
    speed_by_op_type: list[SpeedRow] | None = Field(
        None, description="mac_free_ops timed: int8 vs float speed per op type on this host"
    )
    damage_by_op_type: dict[str, float] | None = Field(
        None,
        description="op type -> 1 - mean cosine with the searched ops of that type quantized alone "
        "(everything else float), on the sensitivity queries",
    )
    int8_mac_floor: float | None = Field(
        None,
        description="share of MACs the search keeps in int8 before it chases the aim further: a plan that "
        "meets the aim under it loses to one that meets the gates over it",
    )
    candidates_evaluated: int | None = Field(None, description="plans scored")
    search_seconds: float | None = Field(None, description="search time")
    peak_memory_mb: int | None = Field(
        None, description="this process's peak resident memory when the search ended"
    )
    runtime_peak_memory_mb: int | None = Field(
        None, description="peak resident memory of the runtime child that ran the candidates (Linux)"
    )
    plan: str = Field(description="'searched' | 'replayed from the recipe (no search)'")

    @property
    def searched(self) -> bool:
        return self.kept_out_of_int8 is not None


class Int4Weight(Record):
    """One weight of an int4 build: its bits and, when measured, the damage it does alone in 4 bits."""

    weight: str = Field(description="the weight tensor")
    op: str = Field(description="the op that reads it")
    params: int = Field(description="its values")
    width: WeightWidth = Field(description="bits stored (4 or 8)")
    table: bool = Field(
        description="an embedding table (per row) rather than a dense weight (per output channel)"
    )
    damage_alone: float | None = Field(
        None, description="1 - mean cosine with only this weight in 4 bits (None: not measured)"
    )
    damage_by_width: dict[WeightWidth, float] = Field(
        default_factory=dict,
        description="the damage alone of each 4-bit width measured (per channel, blockwise): the least won",
    )


class Int4Section(Record):
    """`quantization.mode: int4` (toolchain/quantization/int4.py): which weights went to 4 bits and why."""

    quantizer: str = Field(description="ai-edge-quantizer version that quantized the dense weights")
    plan: str = Field(description="searched | given (the saved recipe's plan, replayed)")
    devices: dict[str, str | None] = Field(
        description="profile -> why it cannot run int4 kernels (None: it can)"
    )
    int4_allowed: bool = Field(
        description="False: a target device cannot run int4 kernels, so every weight stays 8-bit"
    )
    targets: MixedTargets | None = Field(None, description="what the search aimed at")
    all_int8: MixedMetrics | None = Field(None, description="the build with every weight in 8 bits")
    chosen: MixedMetrics | None = Field(None, description="the chosen plan")
    weights: list[Int4Weight] = Field(description="every weight of the plan")
    int4_params_share: float = Field(description="share of the planned weights' values stored in 4 bits")
    candidates_evaluated: int = Field(0, description="plans measured by the search")
    search_seconds: float = Field(0.0, description="search wall time")
    search_split: str = Field("", description="the split the search measured on")
    rounding: Int4Rounding | None = Field(None, description="how 4-bit FULLY_CONNECTED weights were rounded")
    gptq_queries: int | None = Field(
        None, description="rounding gptq: calibration queries whose layer inputs made the Hessians"
    )
    max_bytes: int | None = Field(None, description="the recipe's size budget (quantization.int4.max_bytes)")
    budget_limited: bool | None = Field(
        None, description="True: the budget kept weights in 4 bits that the targets wanted in 8"
    )
    before_trades: MixedMetrics | None = Field(
        None,
        description="a budget-limited repair: its plan's scores before the trades within the budget "
        "(toolchain/quantization/int4_repair.py); `chosen` is after them",
    )
    trades: list[str] | None = Field(
        None, description="the trades kept: a weight back to 8 bits <- the weights that went to 4 to pay"
    )
    max_kernel_cost: float | None = Field(
        None, description="the recipe's kernel cost cap (quantization.int4.max_kernel_cost)"
    )
    kernel_cost: float | None = Field(
        None,
        description="the plan's FULLY_CONNECTED kernel time by the runtime's table, over dynamic int8's "
        "(1.0: as fast; devices/kernels.py FC_KERNEL_COST); None without max_kernel_cost",
    )


class QuantizationSection(Record):
    mode: QuantMode = Field(description="the quantization mode")
    onnx_opset: int | None = Field(None, description="ONNX sources: the opset converted")
    calibration_queries: int | None = Field(
        None, description="queries the activation ranges were calibrated on"
    )
    calibration_source: str | None = Field(None, description="the file they came from")
    calibration_draw: CalibrationDraw | None = Field(None, description="how they were drawn")
    graph_preparation: GraphPreparation | None = Field(
        None, description="ONNX int8: what was changed in the graph before conversion"
    )
    smoothing: Smoothing | None = Field(
        None, description="quantization.smooth: activation outliers moved into the weights (ONNX sources)"
    )
    calibration_convergence: Convergence | None = Field(
        None, description="whether the activation ranges settled on the sample"
    )
    mixed: MixedSection | None = Field(None, description="mode mixed: the searched or replayed plan")
    int4: Int4Section | None = Field(None, description="mode int4: the weights' widths chosen")
    full_integer: bool | None = Field(
        None, description="False: some ops stay float (mixed, float_fallback_ops)"
    )
    int8_mac_share: float | None = Field(
        None, description="share of multiply-accumulates that run in int8 (1.0: all)"
    )
    per_channel: bool | None = Field(
        None, description="False: int8 weights with one scale per tensor (quantization.per_channel)"
    )
    fused_gelu: int | None = Field(
        None, description="ONNX sources: composed GELUs replaced by one GELU op each (conversion.fuse_gelu)"
    )
    non_int8_weight_ops: list[str] | None = Field(None, description="ops whose weights are not int8")
    float_fallback_ops: list[str] | None = Field(None, description="ops the converter left in float")
