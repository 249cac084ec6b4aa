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
