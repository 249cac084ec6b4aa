"""The typed records of `edgecomp validate` (report.json `validation`): per device its checks and metrics,
the host reference they are compared with, and the gates. devices/validate.py fills them."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from toolchain.base.record import Record
from toolchain.base.types import CheckStatus, ParityGate

FAIL = CheckStatus.FAIL


class Gates(Record):
    """What a device must reproduce of the host run (the CLI's --max-accuracy-diff / --min-agreement /
    --min-cosine; `parity` from the build's task)."""

    model_config = ConfigDict(frozen=True)

    max_accuracy_diff: float = Field(0.5, description="points, |device - host|")
    min_agreement: float = Field(0.98, description="top-1 agreement with the host run")
    min_cosine: float = Field(0.999, description="mean cosine with the host run (embedding models)")
    parity: ParityGate = Field(ParityGate.TOP1, description="what parity means for the task (top1 or cosine)")


class Check(Record):
    name: str = Field(description="what was checked")
    status: CheckStatus = Field(description="pass, fail, skip or info (info never fails the device)")
    detail: str = Field(description="what was found")


class DeviceMetrics(Record):
    """What one device run measured (the keys that apply to it are set; the rest stay out of the JSON)."""

    size_kb: float | None = Field(None, description="model size, KB")
    bit_exact_fraction: float | None = Field(
        None, description="fraction of output values identical to the host run"
    )
    max_abs_diff: float | None = Field(None, description="largest output difference vs the host run")
    max_abs_diff_unit: str | None = Field(None, description="its unit (LSB for quantized outputs)")
    top1_agreement: float | None = Field(None, description="fraction of queries with the host's top-1")
    mean_cosine: float | None = Field(None, description="embedding models: device vectors vs the host's")
    min_cosine: float | None = Field(None, description="smallest cosine vs the host's vectors")
    accuracy: float | None = Field(None, description="accuracy on the device")
    host_accuracy: float | None = Field(None, description="accuracy of the host run")
    accuracy_diff_points: float | None = Field(None, description="device minus host accuracy, in points")
    bit_exact_vs_x86_same_runtime: float | None = Field(
        None, description="emulated: fraction identical to the same runtime on x86"
    )
    max_abs_diff_vs_x86_same_runtime: float | None = Field(
        None, description="emulated: largest difference from it"
    )
    peak_memory_mb_x86_same_runtime: float | None = Field(
        None, description="emulated: peak memory of the same runtime on x86, MB"
    )
    peak_memory_mb: float | None = Field(None, description="peak memory of the device run, MB")
    latency_ms: float | None = Field(
        None, description="host-measured median per query, ms (native runs only, never emulated)"
    )


class DeviceReport(Record):
    device: str = Field(description="the device profile's name")
    description: str = Field(description="the profile's description")
    arch: str = Field(description="the device's architecture")
    cpu: str = Field(description="the CPU model (emulated: QEMU's -cpu)")
    runtime: str = Field(description="the device runtime and version")
    emulated: bool = Field(description="True: run under QEMU")
    runtime_lock_sha256: str | None = Field(
        None, description="sha256 of the hash lock its runtime venv was installed from"
    )
    debian_lock_sha256: str | None = Field(
        None, description="an emulated device: sha256 of its sysroot's Debian package lock"
    )
    checks: list[Check] = Field(default_factory=list, description="each check with its status")
    metrics: DeviceMetrics = Field(default_factory=DeviceMetrics, description="what the run measured")
    seconds: float = Field(0.0, description="wall time of the device run")
    passed: bool = Field(True, description='kept equal to "no check failed" by `add`')

    @property
    def failures(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if c.status == FAIL]

    def add(self, name: str, status: CheckStatus, detail: str) -> None:
        self.checks.append(Check(name=name, status=status, detail=detail))
        self.passed = all(c.status != FAIL for c in self.checks)


class HostSummary(Record):
    """The host reference every device row is compared with."""

    runtime: str | None = Field(description="the runtime of the host reference")
    queries: int = Field(description="queries run")
    eval_split: str = Field(description="the split they came from")
    host_accuracy: float | None = Field(description="accuracy of the host run")
    float_accuracy: float | None = Field(
        None, description="the build's float model on the same split (set by the pipeline)"
    )
    min_runtime_version: str | None = Field(
        description="the oldest runtime that supports the model's op versions"
    )
    op_versions: dict[str, int] = Field(description="builtin op -> version used")
    error: str | None = Field(None, description="why there is no host reference")


class ValidationReport(Record):
    """report.json `validation` as `edgecomp validate` records it: devices by profile name."""

    target: str = Field(description="the build folder validated")
    passed: bool = Field(description="True: every device passed")
    gates: Gates = Field(description="what each device had to reproduce")
    reference: HostSummary = Field(description="the host run devices are compared with")
    devices: dict[str, DeviceReport] = Field(description="device profile name -> its report")

    @property
    def rows(self) -> list[DeviceReport]:
        """The device reports in the order they were validated."""
        return list(self.devices.values())

    @classmethod
    def of(
        cls, target: str, reference: HostSummary, gates: Gates, devices: list[DeviceReport]
    ) -> ValidationReport:
        by_name = {d.device: d for d in devices}
        return cls(
            target=target,
            passed=all(d.passed for d in devices),
            gates=gates,
            reference=reference,
            devices=by_name,
        )
