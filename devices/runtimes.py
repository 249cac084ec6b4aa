"""Provision a device's runtime once and say how to run Python inside it.

    from devices.profiles.schema import get_profile
    from devices.runtimes import provision

    env = provision(get_profile("android-arm64-litert"), progress)   # cached after the first call
    subprocess.run(env.command("my_script.py", "arg"), env=env.environ(), ...)

x86_64 profiles get a venv holding only the runtime and numpy (toolchain.base.venvs). ARM profiles get a
Debian sysroot with the ARM Python and the runtime's ARM wheels (devices.sysroot), run under
`qemu-{aarch64,arm}-static -cpu <profile cpu> -L <sysroot>`. Neither environment has TensorFlow or edgecomp:
scripts run there may import only the stdlib, numpy and the runtime (`ai_edge_litert` or `tflite_runtime`).
`toolchain_env()` is the odd one out: the toolchain's own Python and ai_edge_litert, nothing to provision,
for the host runs that must survive a runtime crash (devices/host_runtime.py).
"""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path

from devices.profiles.schema import DeviceProfile
from devices.sysroot import (
    GUEST_PYTHON,
    WHEEL_DIR,
    SysrootSpec,
    base_marker,
    ensure_cpu_view,
    ensure_sysroot,
    require_tool,
    sysroots_dir,
)
from toolchain.base.progress import Progress, SilentProgress
from toolchain.base.venvs import MARKER, EnvSetupError, cache_dir, ensure_venv, runtime_venv_spec

log = logging.getLogger(__name__)

RUNTIME_MODULES = {"litert": "ai_edge_litert", "tflite-runtime": "tflite_runtime"}
_SELF_TEST = "import numpy, {module}.interpreter as i; print(numpy.__version__)"


@dataclass(frozen=True)
class RuntimeEnv:
    """A provisioned runtime for one profile.

    argv: the prefix that starts the runtime's Python: `[*argv, script, *args]`, e.g.
        [".../envs/litert-2.3.0-<key>/bin/python"] or
        ["/usr/bin/qemu-aarch64-static", "-cpu", "cortex-a76", "-L", SYSROOT, SYSROOT/usr/bin/python3.11].
    env: variables to add to the child's environment (PYTHONPATH to the ARM wheels, thread caps, ...);
        use `environ()` for os.environ merged with them.
    root: the venv or sysroot directory (its size is the runtime's disk cost).
    module: the runtime's import name (`ai_edge_litert` or `tflite_runtime`).
    emulated: True under QEMU (wall time is then never a latency).
    """

    profile: str
    arch: str
    cpu: str
    runtime: str
    version: str
    module: str
    root: Path
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    emulated: bool = False
    lock_sha256: str | None = None  # the hash lock the venv or the sysroot's wheels were installed from
    debian_lock_sha256: str | None = None  # a sysroot's Debian package lock (devices/sysroot.py)

    def command(self, script: str | Path, *args: str) -> list[str]:
        return [*self.argv, str(script), *args]

    def environ(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "QEMU_", "VIRTUAL_ENV"))}
        return {**base, **self.env}

    def describe(self) -> dict:
        return {
            "profile": self.profile,
            "arch": self.arch,
            "cpu": self.cpu,
            "runtime": f"{self.runtime} {self.version}",
            "emulated": self.emulated,
            "root": str(self.root),
        }


_COMMON_ENV = {"PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1", "OPENBLAS_NUM_THREADS": "1"}


def _runtime_env(
    profile: DeviceProfile, root: Path, argv: tuple[str, ...], env: dict[str, str], emulated: bool = False
) -> RuntimeEnv:
    return RuntimeEnv(
        profile.name,
        profile.arch,
        profile.cpu,
        profile.runtime,
        profile.runtime_version,
        RUNTIME_MODULES[profile.runtime],
        root,
        argv,
        env,
        emulated,
    )


def _venv_env(profile: DeviceProfile, progress: Progress) -> RuntimeEnv:
    with progress.task(f"{profile.name}: venv {profile.runtime_label}", 1) as advance:
        venv = ensure_venv(runtime_venv_spec(profile.runtime, profile.runtime_version))
        advance(1)
    env = _runtime_env(profile, venv.path, (str(venv.python),), dict(_COMMON_ENV))
    return replace(env, lock_sha256=venv.lock_sha256)


def _qemu_env(profile: DeviceProfile, progress: Progress) -> RuntimeEnv:

    spec = SysrootSpec(profile.arch, profile.runtime, profile.runtime_version)
    qemu = require_tool(spec.info.qemu, "qemu-user-static")
    _check_cpu(qemu, profile)
    with progress.task(
        f"{profile.name}: {spec.info.debian} sysroot + {profile.runtime_label} wheels", 3
    ) as adv:
        base = ensure_sysroot(spec, adv)
        view = ensure_cpu_view(base, profile.arch, profile.cpu)
        adv(1)
    env = {**_COMMON_ENV, "PYTHONPATH": str(view / WHEEL_DIR)}
    argv = (qemu, "-cpu", profile.cpu, "-L", str(view), str(view / GUEST_PYTHON))
    marker = base_marker(base)
    locks = {"lock_sha256": marker.get("lock_sha256"), "debian_lock_sha256": marker.get("debian_lock_sha256")}
    return replace(_runtime_env(profile, view, argv, env, emulated=True), **locks)


_CPU_CACHE: dict[str, set[str]] = {}


def _check_cpu(qemu: str, profile: DeviceProfile) -> None:
    """Refuse a CPU model this QEMU does not emulate (e.g. cortex-a55 on QEMU 7.2), listing the valid ones."""
    if qemu not in _CPU_CACHE:
        out = subprocess.run([qemu, "-cpu", "help"], capture_output=True, text=True).stdout
        _CPU_CACHE[qemu] = {ln.split()[0] for ln in out.splitlines()[1:] if ln.strip()}
    cpus, name = _CPU_CACHE[qemu], profile.cpu.split(",")[0]
    if cpus and name not in cpus:
        raise EnvSetupError(
            f"{profile.name}: {Path(qemu).name} does not emulate CPU {name!r}",
            hint=f"set cpu to one of: {', '.join(sorted(cpus - {'max', 'any'}))}",
        )


def self_test(env: RuntimeEnv, timeout: float = 120.0) -> str:
    """Import numpy and the runtime inside `env`; returns numpy's version or raises EnvSetupError."""
    code = _SELF_TEST.format(module=env.module)
    try:
        proc = subprocess.run(
            [*env.argv, "-c", code], env=env.environ(), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise EnvSetupError(f"{env.profile}: runtime import hung for {timeout:.0f} s") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()] or [f"exit {proc.returncode}"]
        raise EnvSetupError(
            f"{env.profile}: the runtime does not start: {lines[-1][:300]}",
            hint="delete the runtime with `edgecomp devices setup NAME --force` and retry",
        )
    return proc.stdout.strip()


def provision(profile: DeviceProfile, progress: Progress | None = None, check: bool = False) -> RuntimeEnv:
    """Provision (once, cached under toolchain.base.venvs.cache_dir()) and return the runtime for `profile`.

    Safe to call concurrently and repeatedly; a second call costs a few stat()s. `check=True` also runs the
    self-test (imports the runtime inside the environment; 2-3 s under QEMU). Raises EnvSetupError (exit 4)
    with the apt/pip command to run when something is missing.
    """
    progress = progress or SilentProgress()
    env = _qemu_env(profile, progress) if profile.emulated else _venv_env(profile, progress)
    log.debug("%s: %s %s in %s (%s)", profile.name, env.runtime, env.version, env.root, " ".join(env.argv))
    if check:
        with progress.task(f"{profile.name}: self-test (import {env.module})", 1) as advance:
            self_test(env)
            advance(1)
    return env


def host_timing_env(profile: DeviceProfile, progress: Progress | None = None) -> RuntimeEnv:
    """The profile's runtime and version in a venv on this host, for timing: an ARM profile's emulated run
    proves its ops and numbers but its wall time is never latency, so latency is measured here, with the
    same runtime version, threads and XNNPACK setting (as `edgecomp profile --device` does)."""
    import platform

    host = _venv_env(profile, progress or SilentProgress())
    if not profile.emulated:
        return host
    return RuntimeEnv(profile.name, platform.machine(), "host", host.runtime, host.version, host.module,
                      host.root, host.argv, host.env)  # fmt: skip


def toolchain_env() -> RuntimeEnv:
    """The toolchain's own Python (sys.executable: the same ai_edge_litert and numpy edgecomp imports) as a
    runtime environment, for the host runs that must not share edgecomp's process (devices/host_runtime.py).
    Nothing to provision; the child keeps the parent's PYTHONPATH and user site, so it imports exactly
    the packages edgecomp would."""
    import platform
    import sys
    from importlib.metadata import version

    env = {"PYTHONDONTWRITEBYTECODE": "1"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    if sys.flags.no_user_site:
        env["PYTHONNOUSERSITE"] = "1"
    return RuntimeEnv("toolchain", platform.machine(), "host", "litert", version("ai-edge-litert"),
                      RUNTIME_MODULES["litert"], Path(sys.prefix), (sys.executable,), env)  # fmt: skip


def is_provisioned(profile: DeviceProfile) -> bool:
    """True when `provision(profile)` would not download or build anything."""
    if not profile.emulated:
        spec = runtime_venv_spec(profile.runtime, profile.runtime_version)
        path = cache_dir().resolve() / "envs" / f"{spec.name}-{spec.key}"
        return (path / MARKER).is_file() and (path / "bin" / "python").exists()

    spec = SysrootSpec(profile.arch, profile.runtime, profile.runtime_version)
    return (sysroots_dir() / f"{spec.name}@{profile.cpu}" / GUEST_PYTHON).exists()


def remove(profile: DeviceProfile) -> list[Path]:
    """Delete the cached runtime of `profile` (its sysroot view and base, or its venv); returns what went."""
    import shutil

    gone = []
    if profile.emulated:
        spec = SysrootSpec(profile.arch, profile.runtime, profile.runtime_version)
        targets = [p for p in sysroots_dir().glob(f"{spec.name}*") if p.is_dir()]
    else:
        spec = runtime_venv_spec(profile.runtime, profile.runtime_version)
        targets = [cache_dir().resolve() / "envs" / f"{spec.name}-{spec.key}"]
    for path in targets:
        if path.exists():
            shutil.rmtree(path)
            gone.append(path)
    return gone


def disk_usage(path: Path) -> int:
    """Bytes under `path`, counting hard-linked files once (sysroot views share their base)."""
    seen, total = set(), 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total
