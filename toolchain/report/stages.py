"""report.json's late sections: `profile` and `package` (validate's section is devices/validate.py's own
typed `ValidationReport`, recorded as it is).

Each is written by its stage through `Build.record` (toolchain/build.py); a stage run again replaces its
section (validate merges devices).
"""

from __future__ import annotations

from devices.cpuinfo import HostCpu
from toolchain.base.record import Record
from toolchain.base.types import MixedReason, PackageFormat, ProfileMode, ValidationStatus


class ProfileTarget(Record):
    """Where the profile's numbers come from: this host's CPU with a device profile's runtime."""

    runtime: str
    version: str
    threads: int
    xnnpack: bool
    device: str
    arch: str
    emulated: bool
    host_cpu: HostCpu | None = None  # the CPU the times were measured on (emulated: QEMU ran on it)


class OpTiming(Record):
    """One op's time per invoke (devices/profiling/stats.py `OpRow`)."""

    index: int
    name: str
    kind: str  # node | xnnpack
    median_us: float
    p90_us: float
    mean_us: float
    time_us: float
    below_resolution: bool
    process_medians_us: list[float]
    share: float


class MethodSummary(Record):
    """One profiling method's totals and its ten slowest ops."""

    method: str  # litert-profiler | slicing
    mode: ProfileMode
    sum_us: float
    invoke_us: float | None  # None: below resolution
    ratio: float | None  # sum / invoke, only when resolved
    resolved: bool
    resolution_us: float
    top_ops: list[OpTiming]


class QuantErrorRow(Record):
    """One op's output error, int8 vs its float reference (devices/profiling/quant_error.py)."""

    index: int
    op: str
    tensor: str
    snr_db: float | None
    cosine: float | None
    max_abs_error: float
    added_snr_db: float | None


class SweepRow(Record):
    length: int
    median_us: float | None = None
    p90_us: float | None = None
    error: str | None = None


class MixedFloatOp(Record):
    """An op a mixed build kept in float, with its profiled time per method."""

    node: str
    op: str
    index: int
    time_us: dict[str, float | None]  # method -> time (None in deployed mode)
    reason: MixedReason | None


class ProfileSection(Record):
    target: ProfileTarget
    methods: list[MethodSummary]
    quant_error: list[QuantErrorRow]
    sweep: list[SweepRow]
    mixed_float_ops: list[MixedFloatOp] | None = None


class TokenizerEffect(Record):
    """What the device tokenizer's different ids do to the model's output."""

    train_ids_accuracy: float | None = None
    device_ids_accuracy: float | None = None
    accuracy_delta: float | None = None
    flipped_predictions: int | None = None
    min_cosine_train_vs_device_ids: float | None = None  # embedders
    mean_cosine_train_vs_device_ids: float | None = None


class TokenizerParitySummary(Record):
    differing: int
    differing_share: float
    by_cause: dict[str, int]
    effect: TokenizerEffect


class FallbackSection(Record):
    """The server-fallback threshold (toolchain/package/parity.py `ServerFallback`), or why there is none."""

    threshold: float | None
    coverage: float | None = None
    accuracy_above: float | None = None
    target_accuracy: float | None = None
    split: str | None = None
    queries: int | None = None
    overall_accuracy: float | None = None
    tied_to_server: int | None = None
    best_threshold: float | None = None
    best_coverage: float | None = None
    best_accuracy: float | None = None
    note: str = ""  # last, as ServerFallback writes it (the manifest's key order)


class PackageSection(Record):
    format: PackageFormat
    bundle: str
    zip: str
    model_sha256: str
    validation: ValidationStatus
    parity: dict[str, float] | None  # feed (lowercased, raw, ...) -> agreement in the app runtime
    tokenizer_parity: TokenizerParitySummary | None
    server_fallback: FallbackSection
    timings: dict[str, float]
