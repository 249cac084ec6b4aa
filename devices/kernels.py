"""Whether a device profile's runtime has a kernel for one (op, version), asked of the runtime itself.

The same probe as validate's op-version check (devices/opsupport.py: a model holding only that operator
code, loaded in the profile's own runtime, under QEMU for ARM profiles), answered from the cached table when
the runtime was asked before. The int4 search asks it for DEQUANTIZE v6 (an int4 input) before it chooses
any 4-bit weight, so it never picks int4 for a device that cannot run it.
"""

from __future__ import annotations

from devices.opsupport import OpSupportTable
from devices.profiles.schema import DeviceProfile
from devices.runner import RuntimeWorker, WorkerFailure
from devices.runtimes import provision
from toolchain.base.venvs import EnvSetupError


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
