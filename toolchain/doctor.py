"""`edgecomp doctor`: can this machine run edgecomp, which devices can it emulate, and what to install.

Each check is a row: what was looked at, what was found, and the command that fixes it. A `fail` row means
the core (convert, validate on the host, profile, package) cannot work here; `warn` means a part of edgecomp
cannot (emulated ARM devices without QEMU, `search` without Optuna) or soon will not (disk space). Nothing
is installed, downloaded or imported heavily: packages are looked up by their metadata, tools on PATH, the
caches by `toolchain.caches.list_caches`.
"""

from __future__ import annotations

import importlib.metadata
import platform
import shutil
import sys
from pathlib import Path

from devices.profiles.schema import DeviceProfile, load_profiles
from devices.runtimes import is_provisioned
from devices.sysroot import ARCHES
from toolchain.base.errors import EdgecompError
from toolchain.base.record import Record
from toolchain.base.types import StrEnum
from toolchain.base.venvs import LOCKS_DIR, cache_dir, python_tag
from toolchain.caches import list_caches

# the core dependencies pinned in pyproject.toml, looked up without importing them
CORE = ("tensorflow", "tf-keras", "onnx2tf", "onnx", "onnxruntime", "ai-edge-litert", "numpy", "typer")
EXTRAS = {"search": ("optuna", "ray"), "onnx-fixtures": ("torch", "transformers")}
APT_TOOLS = {"qemu-aarch64-static": "qemu-user-static", "qemu-arm-static": "qemu-user-static"}
APT_TOOLS |= {"mmdebstrap": "mmdebstrap", "zstd": "zstd"}
PYTHONS = ((3, 10), (3, 11), (3, 12))
MIN_FREE_GB = 5.0  # the first demo adds ~1.4 GB of caches; a build with its envs and sysroots ~3 GB


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


class Check(Record):
    area: str
    name: str
    status: Status
    found: str
    fix: str | None = None


class DoctorReport(Record):
    checks: list[Check]
    core_ok: bool  # False: some `fail` row; `edgecomp doctor` exits 1


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def python_checks() -> list[Check]:
    v = sys.version_info[:2]
    ok = v in PYTHONS
    return [
        Check(
            area="system",
            name="python",
            status=Status.OK if ok else Status.FAIL,
            found=f"{platform.python_version()} ({sys.executable})",
            fix=None if ok else "use Python 3.10, 3.11 or 3.12 (TensorFlow 2.19 has no wheel for others)",
        ),
        Check(
            area="system",
            name="platform",
            status=Status.OK if sys.platform == "linux" and platform.machine() == "x86_64" else Status.WARN,
            found=f"{sys.platform} {platform.machine()}",
            fix=None
            if sys.platform == "linux" and platform.machine() == "x86_64"
            else "emulated devices and the pinned wheels need Linux x86_64",
        ),
    ]


def lock_check() -> Check:
    """Whether the isolated environments install from hash locks on this Python (toolchain/base/locks/)."""
    tag = python_tag()
    names = sorted(p.name[: -len(f"-{tag}.txt")] for p in LOCKS_DIR.glob(f"*-{tag}.txt"))
    return Check(
        area="system",
        name="environment locks",
        status=Status.OK if names else Status.WARN,
        found=f"{tag}: {', '.join(names)}" if names else f"none for {tag}: the top-level pins are installed",
        fix=None if names else "use CPython 3.10, 3.11 or 3.12 on x86_64 (or write locks with `make locks`)",
    )


def package_checks() -> list[Check]:
    rows = []
    for dist in CORE:
        version = _version(dist)
        rows.append(
            Check(
                area="python packages",
                name=dist,
                status=Status.OK if version else Status.FAIL,
                found=version or "not installed",
                fix=None if version else "pip install edgecomp (or make install-core)",
            )
        )
    for extra, dists in EXTRAS.items():
        versions = {d: _version(d) for d in dists}
        missing = [d for d, v in versions.items() if v is None]
        rows.append(
            Check(
                area="python packages",
                name=f"extra [{extra}]",
                status=Status.WARN if missing else Status.OK,
                found=", ".join(f"{d} {v or 'not installed'}" for d, v in versions.items()),
                fix=f"pip install 'edgecomp[{extra}]'" if missing else None,
            )
        )
    return rows


def tool_checks() -> list[Check]:
    rows = []
    for tool, package in APT_TOOLS.items():
        path = shutil.which(tool)
        rows.append(
            Check(
                area="apt tools (emulated ARM devices)",
                name=tool,
                status=Status.OK if path else Status.WARN,
                found=path or "not found",
                fix=None if path else f"sudo apt-get install --no-install-recommends {package}",
            )
        )
    return rows


def disk_checks(cache: Path) -> list[Check]:
    listing = list_caches(cache)
    where = cache if cache.exists() else next(p for p in cache.parents if p.exists())
    free = shutil.disk_usage(where).free / 1e9
    envs = [e for e in listing.entries if e.kind == "envs" and e.version]
    return [
        Check(
            area="disk",
            name="free space",
            status=Status.OK if free >= MIN_FREE_GB else Status.WARN,
            found=f"{free:.1f} GB free at {where}",
            fix=None
            if free >= MIN_FREE_GB
            else f"free {MIN_FREE_GB:.0f} GB (edgecomp cache clean, or point "
            "EDGECOMP_CACHE at a larger disk)",
        ),
        Check(
            area="disk",
            name="cache",
            status=Status.OK,
            found=f"{cache}: {listing.total_bytes / 1e9:.2f} GB in {len(listing.entries)} entries",
            fix="edgecomp cache list / edgecomp cache clean" if listing.entries else None,
        ),
        Check(
            area="disk",
            name="isolated environments",
            status=Status.OK,
            found="; ".join((e.version or "").split(", ")[0] for e in envs) or "none yet (made on first use)",
        ),
    ]


def device_check(profile: DeviceProfile) -> Check:
    host = platform.machine()
    if not profile.emulated:
        runs = host == profile.arch
        why = "runs natively" if runs else f"needs an {profile.arch} host"
    else:
        qemu = ARCHES[profile.arch].qemu if profile.arch in ARCHES else None
        missing = [t for t in (qemu, "mmdebstrap", "zstd") if t is None or not shutil.which(t)]
        runs = not missing
        why = f"emulated with {qemu}" if runs else f"missing {', '.join(str(t) for t in missing)}"
    ready = is_provisioned(profile)
    status = Status.OK if runs else Status.WARN
    fix = None
    if not runs:
        fix = "sudo apt-get install --no-install-recommends qemu-user-static mmdebstrap zstd"
    elif not ready:
        fix = f"edgecomp devices setup {profile.name} (or on first use)"
    return Check(
        area="device profiles",
        name=profile.name,
        status=status,
        found=f"{profile.arch} {profile.runtime_label}: {why}; runtime {'ready' if ready else 'not set up'}",
        fix=fix,
    )


def diagnose() -> DoctorReport:
    """Every check, in the order a table shows them."""
    checks = [*python_checks(), lock_check(), *package_checks(), *tool_checks()]
    try:
        checks += disk_checks(cache_dir())
    except EdgecompError as err:  # EDGECOMP_CACHE names a file: no runtime could be provisioned
        checks.append(Check(area="disk", name="cache", status=Status.FAIL, found=err.message, fix=err.hint))
    try:
        checks += [device_check(p) for p in load_profiles().values()]
    except EdgecompError as err:  # a broken profile of the user's: the shipped ones still work
        checks.append(
            Check(
                area="device profiles", name="profiles", status=Status.WARN, found=err.message, fix=err.hint
            )
        )
    return DoctorReport(checks=checks, core_ok=not any(c.status == Status.FAIL for c in checks))
