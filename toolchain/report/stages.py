"""report.json's late sections: `profile` and `package` (validate's section is devices/device_report.py's own
typed `ValidationReport`, recorded as it is).

Each is written by its stage through `Build.record` (toolchain/build.py); a stage run again replaces its
section (validate merges devices).
"""

from __future__ import annotations

from pydantic import Field

from devices.cpuinfo import HostCpu
from toolchain.base.record import Record
from toolchain.base.types import MixedReason, PackageFormat, ProfileMode, ValidationStatus


class ProfileTarget(Record):
    """Where the profile's numbers come from: this host's CPU with a device profile's runtime."""

    runtime: str = Field(description="the runtime the profile ran (ai_edge_litert, tflite_runtime)")
    version: str = Field(description="its version")
    threads: int = Field(description="interpreter threads")
    xnnpack: bool = Field(description="True: the XNNPACK delegate was on")
    device: str = Field(description="the device profile whose runtime was used")
    arch: str = Field(description="the architecture the runtime ran on")
    emulated: bool = Field(description="True: under QEMU (the times are then not latencies)")
    host_cpu: HostCpu | None = Field(
        None, description="the CPU the times were measured on (emulated: QEMU ran on it)"
    )


class OpTiming(Record):
    """One op's time per invoke (devices/profiling/stats.py `OpRow`)."""

    index: int = Field(description="the op's index in execution order")
    name: str = Field(description="op type and node")
    kind: str = Field(description="node | xnnpack")
    median_us: float = Field(description="median time per invoke, microseconds")
    p90_us: float = Field(description="90th percentile")
    mean_us: float = Field(description="mean")
    time_us: float = Field(description="the time per invoke the method attributes to the op, microseconds")
    below_resolution: bool = Field(description="True: faster than the method can resolve (treat as ~0)")
    process_medians_us: list[float] = Field(
        description="the median of each measuring process (their spread is the noise)"
    )
    share: float = Field(description="this op's share of the summed op time")


class MethodSummary(Record):
    """One profiling method's totals and its ten slowest ops."""

    method: str = Field(description="litert-profiler | slicing")
    mode: ProfileMode = Field(
        description="deployed (XNNPACK, as shipped) or per-node (builtin kernels, one per TFLite node)"
    )
    sum_us: float = Field(description="sum of the op times, microseconds")
    invoke_us: float | None = Field(description="None: below resolution")
    ratio: float | None = Field(description="sum / invoke, only when resolved")
    resolved: bool = Field(description="True: the invoke time is above the method's resolution")
    resolution_us: float = Field(description="smallest time the method resolves")
    top_ops: list[OpTiming] = Field(description="the ten slowest ops")


class QuantErrorRow(Record):
    """One op's output error, int8 vs its float reference (devices/profiling/quant_error.py)."""

    index: int = Field(description="the op's index in execution order")
    op: str = Field(description="op type")
    tensor: str = Field(description="its output tensor")
    snr_db: float | None = Field(
        description="signal-to-noise ratio of the int8 output vs float, dB (None: all zero)"
    )
    cosine: float | None = Field(description="cosine of the int8 output vs float")
    max_abs_error: float = Field(description="largest absolute difference")
    added_snr_db: float | None = Field(
        description="SNR this op loses over its inputs, dB (where the error comes from)"
    )


class SweepRow(Record):
    length: int = Field(description="query length in tokens")
    median_us: float | None = Field(None, description="median invoke time at that length, microseconds")
    p90_us: float | None = Field(None, description="90th percentile")
    error: str | None = Field(None, description="why this length could not run")


class MixedFloatOp(Record):
    """An op a mixed build kept in float, with its profiled time per method."""

    node: str = Field(description="node name")
    op: str = Field(description="op type")
    index: int = Field(description="index in execution order")
    time_us: dict[str, float | None] = Field(description="method -> time (None in deployed mode)")
    reason: MixedReason | None = Field(description="why the plan kept it float")


class ProfileSection(Record):
    target: ProfileTarget = Field(description="where the numbers come from")
    methods: list[MethodSummary] = Field(description="per method (profiler, slicing): totals and slowest ops")
    quant_error: list[QuantErrorRow] = Field(description="per-op int8 error vs float (quantized builds)")
    sweep: list[SweepRow] = Field(description="invoke time by query length")
    mixed_float_ops: list[MixedFloatOp] | None = Field(
        None, description="mixed builds: the float ops and their time"
    )


class TokenizerEffect(Record):
    """What the device tokenizer's different ids do to the model's output."""

    train_ids_accuracy: float | None = Field(None, description="accuracy with the training tokenizer's ids")
    device_ids_accuracy: float | None = Field(None, description="accuracy with the device tokenizer's ids")
    accuracy_delta: float | None = Field(None, description="device minus training, in points")
    flipped_predictions: int | None = Field(None, description="queries whose top-1 changes")
    min_cosine_train_vs_device_ids: float | None = Field(None, description="embedders")
    mean_cosine_train_vs_device_ids: float | None = Field(
        None, description="embedders: mean cosine of the two outputs"
    )


class TokenizerParitySummary(Record):
    differing: int = Field(description="queries whose device ids differ from the training ids")
    differing_share: float = Field(description="the same as a fraction of the queries")
    by_cause: dict[str, int] = Field(description="cause (case, accents, unknown word, ...) -> queries")
    effect: TokenizerEffect = Field(description="what the differences do to the model's output")


class FallbackSection(Record):
    """The server-fallback threshold (toolchain/package/parity.py `ServerFallback`), or why there is none."""

    threshold: float | None = Field(
        description="top-1 probability below which the app should ask the server (None: no threshold)"
    )
    coverage: float | None = Field(
        None, description="fraction of queries answered on the device at that threshold"
    )
    accuracy_above: float | None = Field(None, description="accuracy of the queries answered on the device")
    target_accuracy: float | None = Field(None, description="the on-device accuracy the threshold aims at")
    split: str | None = Field(None, description="the split it was chosen on")
    queries: int | None = Field(None, description="queries in that split")
    overall_accuracy: float | None = Field(None, description="the model's accuracy on all of them")
    tied_to_server: int | None = Field(None, description="queries whose probability equals the threshold")
    best_threshold: float | None = Field(
        None, description="when the target cannot be met: the threshold with the best accuracy"
    )
    best_coverage: float | None = Field(None, description="its coverage")
    best_accuracy: float | None = Field(None, description="its accuracy")
    note: str = Field("", description="last, as ServerFallback writes it (the manifest's key order)")


class PackageSection(Record):
    format: PackageFormat = Field(description="the package format")
    bundle: str = Field(description="the bundle folder")
    zip: str = Field(description="the zipped bundle")
    model_sha256: str = Field(description="sha256 of the packaged model (model.tflite with metadata)")
    validation: ValidationStatus = Field(description="the build's validation status when it was packaged")
    parity: dict[str, float] | None = Field(
        description="feed (lowercased, raw, ...) -> agreement in the app runtime"
    )
    tokenizer_parity: TokenizerParitySummary | None = Field(
        description="where the app's tokenizer gives other ids than training"
    )
    server_fallback: FallbackSection = Field(
        description="the confidence threshold below which the app should ask a server"
    )
    timings: dict[str, float] = Field(description="seconds and milliseconds per query of the package checks")
