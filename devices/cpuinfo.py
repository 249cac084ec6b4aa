"""The host's CPU model and the instruction-set features that decide int8/int4 speed, for every speed figure.

A latency ratio (int8 vs fp32) is a property of the ISA as much as of the model: XNNPACK's int8 kernels use
AVX-512 VNNI / AVX-VNNI (or AMX) on x86 and dotprod / i8mm on ARM when the CPU has them, and fall back to
plain AVX2 / NEON widening multiplies otherwise, so the same model can be 1.3x or 5x faster in int8 on two
hosts (google/XNNPACK #6653). Benches and `edgecomp profile` print and record this line next to their times.

Read from /proc/cpuinfo (Linux: `model name` + `flags` on x86, `Features` + `CPU implementer/part` on ARM),
else from `sysctl` (macOS), else only `platform.machine()`; nothing is guessed: a feature that cannot be read
is absent from the list and `source` says where the list came from.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path

from pydantic import Field

from toolchain.base.record import Record

# the flags that matter for int8 / int4 inference, as /proc/cpuinfo spells them -> the name we print
X86_FEATURES = {
    "avx2": "AVX2",
    "fma": "FMA",
    "avx512f": "AVX-512F",
    "avx512bw": "AVX-512BW",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "avx512_bf16": "AVX-512 BF16",
    "amx_tile": "AMX",
    "amx_int8": "AMX-INT8",
}
ARM_FEATURES = {"asimd": "NEON", "asimddp": "dotprod", "i8mm": "i8mm", "sve": "SVE", "bf16": "BF16"}
ARM_VENDORS = {"0x41": "ARM", "0x48": "HiSilicon", "0x51": "Qualcomm", "0x61": "Apple", "0xc0": "Ampere"}
MACOS_FEATURES = {"hw.optional.arm.FEAT_DotProd": "dotprod", "hw.optional.arm.FEAT_I8MM": "i8mm"}


class HostCpu(Record):
    """The CPU a speed figure was measured on."""

    model: str = Field(description="'AMD EPYC', 'Intel(R) Xeon(R) ...', 'ARM part 0xd0c'")
    arch: str = Field(description="platform.machine(): x86_64, aarch64, arm64")
    features: list[str] = Field(
        description="only the ones that matter (X86_FEATURES / ARM_FEATURES), in that order"
    )
    logical_cpus: int = Field(description="logical CPUs")
    source: str = Field(description="/proc/cpuinfo | sysctl | platform (features unknown)")

    @property
    def summary(self) -> str:
        """`AMD EPYC (x86_64; AVX2, FMA, AVX-512F, AVX-512 VNNI; 2 logical CPUs)`: one line for a table."""
        feats = ", ".join(self.features) if self.features else "features unknown"
        return f"{self.model} ({self.arch}; {feats}; {self.logical_cpus} logical CPUs)"


def parse_cpuinfo(text: str, arch: str) -> tuple[str, list[str]]:
    """(model, features) from the text of /proc/cpuinfo, the first processor's block."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor is enough: the features are the same on every core we target
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    is_arm = "flags" not in fields and ("features" in fields or arch in ("aarch64", "arm64"))
    table = ARM_FEATURES if is_arm else X86_FEATURES
    model = fields.get("model name") or fields.get("hardware") or ""
    if not model and "cpu part" in fields:
        vendor = ARM_VENDORS.get(fields.get("cpu implementer", ""), fields.get("cpu implementer", "?"))
        model = f"{vendor} part {fields['cpu part']}"
    return model or platform.processor() or arch, [name for flag, name in table.items() if flag in flags]


def _sysctl(name: str) -> str:
    try:
        done = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


@functools.lru_cache(maxsize=1)
def host_cpu() -> HostCpu:
    """This host's CPU (read once per process)."""
    arch = platform.machine()
    cpus = os.cpu_count() or 1
    proc = Path("/proc/cpuinfo")
    if proc.is_file():
        model, features = parse_cpuinfo(proc.read_text(errors="replace"), arch)
        return HostCpu(model=model, arch=arch, features=features, logical_cpus=cpus, source="/proc/cpuinfo")
    brand = _sysctl("machdep.cpu.brand_string")
    if brand:
        features = [name for key, name in MACOS_FEATURES.items() if _sysctl(key) == "1"]
        flags = set(_sysctl("machdep.cpu.leaf7_features").lower().split()) | set(
            _sysctl("machdep.cpu.features").lower().split()
        )
        features += [name for flag, name in X86_FEATURES.items() if flag.replace("_", "") in flags]
        return HostCpu(model=brand, arch=arch, features=features, logical_cpus=cpus, source="sysctl")
    return HostCpu(
        model=platform.processor() or arch, arch=arch, features=[], logical_cpus=cpus, source="platform"
    )


def bench_header() -> str:
    """The first line of every bench's results: the host its times and speed ratios were measured on."""
    return f"Host: {host_cpu().summary}; times and speed ratios below were measured on it in this run.\n\n"
