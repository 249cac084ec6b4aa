"""Whether a device profile's runtime has a kernel for one (op, version), asked of the runtime itself.

The same probe as validate's op-version check (devices/opsupport.py: a model holding only that operator
code, loaded in the profile's own runtime, under QEMU for ARM profiles), answered from the cached table when
the runtime was asked before. The int4 search asks it for DEQUANTIZE v6 (an int4 input) before it chooses
any 4-bit weight, so it never picks int4 for a device that cannot run it.
"""

from __future__ import annotations

from pathlib import Path

from converters.tflite_model import TFLiteModel
from devices.opsupport import OpSupportTable, Prober
from devices.profiles.schema import DeviceProfile
from devices.runner import RuntimeWorker, WorkerFailure
from devices.runtimes import provision
from toolchain.base.types import WeightWidth as W
from toolchain.base.venvs import EnvSetupError

INT4_PROBE = ("DEQUANTIZE", 6)  # TFLite's version for an int4 input (tensorflow/lite/tools/versioning)


def missing_kernel(profile: DeviceProfile, op: str, version: int) -> str | None:
    """None when the profile's runtime loads (op, version); else why not, in one line naming both."""
    key = f"{profile.runtime}-{profile.runtime_version}-{profile.arch}"
    table = OpSupportTable(key)
    if f"{op}:{version}" not in table.known:
        try:
            env = provision(profile)
            with RuntimeWorker(env, profile.timeout_s, profile.memory_limit_mb) as worker:
                table.ensure([(op, version)], worker, worker.tmp)
        except (EnvSetupError, WorkerFailure) as err:
            return f"{profile.runtime_label} could not be asked about {op} v{version}: {err}"
    err = table.error(op, version)
    if err is None:
        return None
    first = err.strip().splitlines()[0] if err.strip() else "no message"
    return f"{op} v{version} is not supported by {profile.runtime_label} ({first})"


def int4_weights_issue(
    model: TFLiteModel, prober: Prober, runtime_key: str, workdir: Path, label: str
) -> str | None:
    """Why a runtime cannot run the model's INT4 weights; None when it has none or the runtime has int4
    kernels. Asked by the same DEQUANTIZE v6 probe, because a hybrid int4 FULLY_CONNECTED / CONV_2D carries no
    op version of its own that an old runtime would refuse (AEQ writes version 1): tflite-runtime 2.14.0 runs
    such a CONV_2D to NaN (measured), so validate names it here instead of only failing parity."""
    int4 = [t.name for t in model.tensors if t.dtype == "INT4"]
    if not int4:
        return None
    table = OpSupportTable(runtime_key)
    table.ensure([INT4_PROBE], prober, workdir)
    if table.error(*INT4_PROBE) is None:
        return None
    op, version = INT4_PROBE
    return f"{len(int4)} INT4 weights (e.g. {int4[0]}), but {label} has no int4 kernels ({op} v{version})"


# FULLY_CONNECTED's time per weight form, relative to dynamic int8's hybrid kernel (int8_hybrid, XNNPACK's
# "Fully Connected (NC, QDU8, F32, QC8W)"), per runtime. Measured by benchmarks/diagnose_int4_kernels.py
# --profile (the LiteRT profiler's per-op medians, one MiniLM layer's dense ops: 32 tokens, 384 -> 384 x 4,
# 384 -> 1536 -> 384) on an AMD EPYC host (AVX2, AVX-512 VNNI), litert 2.3.0; the interleaved wall times
# of the same models agree (int4 0.93-0.94x, int4_block128 0.99-1.01x). XNNPACK runs per-channel int4 in
# its own QC4W microkernels (xnn_qd8_f32_qc4w_gemm_*: the nibbles unpacked in registers, one int32 sum over
# all inputs, scaled once; not widened to int8 at prepare, or the profiler would name QC8W): a little faster
# than QC8W, half the bytes to read. Blockwise int4 runs QB4W (xnn_qd8_f32_qb4w_gemm_*): after every block
# the int32 sums are reduced, converted to float and multiplied by the block's bf16 scale, so the smaller
# the block, the slower (32 inputs: that overhead every two 16-byte steps).
# Weight-only int8 is dequantized once and runs float's F32 GEMM. A fixed table, never timed during a
# search: the same recipe gives the same plan on every host. Runtimes without an entry are not measured.
FC_KERNEL_COST: dict[str, dict[W, float]] = {
    "litert": {
        W.INT8_HYBRID: 1.0,  # QC8W: 24 / 94 us (384 / 1536 inputs)
        W.INT4: 0.95,  # QC4W: 23 / 88 us
        W.INT4_BLOCK128: 1.0,  # QB4W: 25 / 95 us
        W.INT4_BLOCK64: 1.13,  # QB4W: 27 / 105 us
        W.INT4_BLOCK32: 1.36,  # QB4W: 33 / 128 us
        W.INT8: 3.9,  # F32 GEMM after a once-only DEQUANTIZE: 92 / 375 us
    },
}


def kernel_cost(profile: DeviceProfile, width: W) -> float | None:
    """FULLY_CONNECTED's relative time for a weight form on the profile's runtime (FC_KERNEL_COST); None
    when that runtime or form was not measured."""
    return FC_KERNEL_COST.get(profile.runtime, {}).get(width)
