"""ARM sysroots for QEMU user mode: Debian's arm64/armhf Python plus the runtime's ARM wheels.

Built without emulation: `mmdebstrap --variant=extract` unpacks Debian packages (python3.11, libstdc++6,
and for armv7 Debian's numpy, since PyPI has no armv7 numpy wheel), then the host's pip downloads the
runtime's ARM wheels into <sysroot>/opt/rt. A base sysroot is shared by every profile with the same
(arch, runtime, version); each CPU model gets a hard-linked view with its own /proc/cpuinfo, because
QEMU's -L redirects the guest's /proc/cpuinfo there (ai-edge-litert 2.3 segfaults on the host's x86 one
under QEMU 7.2, and XNNPACK picks kernels from it). Everything is built in a staging directory under a
lock and renamed into place (toolchain.base.atomic.staged_dir), like toolchain/base/venvs.py.

Locks (toolchain/base/locks/, written by `python -m toolchain.envlocks`), like the x86 environments':
- `sysroot-<arch>-<runtime>-<version>-cp311.txt`: every ARM wheel with its sha256, installed with
  `pip install --require-hashes --no-deps`;
- `debian-bookworm-<debian arch>.txt`: every Debian package the extraction unpacks, at its exact version
  with the sha256 of its .deb. mmdebstrap is given each as `name=version` and the downloaded .debs are
  checked against the lock, so a sysroot is the same files on every machine or an error. The suite is a
  codename (bookworm), never `stable`. What cannot be pinned: the default mirror keeps only the current
  point release, so after the next one a pinned version is gone from deb.debian.org; the lock names the
  archive date to replay from snapshot.debian.org (EDGECOMP_DEBIAN_MIRROR), or `make locks` rewrites it.
Both digests go into the sysroot's marker and from there into validate's report. Without a lock (a runtime
version edgecomp ships no lock for) the top-level pins and the suite's current packages are installed, and
the marker says `lock: null`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from toolchain.base.atomic import locked, staged_dir
from toolchain.base.notices import announce, first_use_notice
from toolchain.base.venvs import LOCKS_DIR, EnvSetupError, cache_dir, pip_error

log = logging.getLogger(__name__)

MARKER = "edgecomp-sysroot.json"
SUITE = "bookworm"
MIRROR = os.environ.get("EDGECOMP_DEBIAN_MIRROR", "http://deb.debian.org/debian")
GUEST_PYTHON = "usr/bin/python3.11"
WHEEL_DIR = "opt/rt"
GUEST_TAG = "cp311"  # bookworm's python3.11: the wheels' Python, whatever Python runs edgecomp
DEBS = "var/cache/apt/archives"


@dataclass(frozen=True)
class ArchInfo:
    debian: str
    qemu: str
    platforms: tuple[str, ...]
    packages: tuple[str, ...]


_AARCH64_TAGS = ("manylinux2014_aarch64",) + tuple(
    f"manylinux_2_{v}_aarch64" for v in (17, 27, 28, 31, 34, 35)
)
_ARMV7_TAGS = ("linux_armv7l", "manylinux2014_armv7l") + tuple(
    f"manylinux_2_{v}_armv7l" for v in (17, 27, 28, 31, 34, 35)
)
ARCHES: dict[str, ArchInfo] = {
    "aarch64": ArchInfo("arm64", "qemu-aarch64-static", _AARCH64_TAGS, ("python3.11", "libstdc++6")),
    "armv7": ArchInfo("armhf", "qemu-arm-static", _ARMV7_TAGS, ("python3.11", "libstdc++6", "python3-numpy")),
}
# CPU part numbers and features for /proc/cpuinfo (what cpuinfo/XNNPACK read on a real board).
_CPU_PARTS = {
    "cortex-a53": "0xd03",
    "cortex-a55": "0xd05",
    "cortex-a57": "0xd07",
    "cortex-a72": "0xd08",
    "cortex-a76": "0xd0b",
    "neoverse-n1": "0xd0c",
    "cortex-a7": "0xc07",
    "cortex-a9": "0xc09",
    "cortex-a15": "0xc0f",
}
_V8_BASE = "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"
_V82 = _V8_BASE + " atomics fphp asimdhp asimdrdm lrcpc dcpop asimddp"
_V7 = "half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm"


def _requirements(arch: str, runtime: str, version: str) -> tuple[str, ...]:
    pkg = {"litert": "ai-edge-litert", "tflite-runtime": "tflite-runtime"}[runtime]
    return (f"{pkg}=={version}",) if arch == "armv7" else (f"{pkg}=={version}", "numpy<2")


def cpuinfo_text(arch: str, cpu: str, cores: int = 4) -> str:
    part = _CPU_PARTS.get(cpu, "0xd03")
    if arch == "armv7":
        head = "model name\t: ARMv7 Processor rev 5 (v7l)\nBogoMIPS\t: 48.00\n"
        feats, archno = _V7, "7"
    else:
        head = "BogoMIPS\t: 50.00\n"
        feats, archno = (_V8_BASE if cpu in ("cortex-a53", "cortex-a57", "cortex-a72") else _V82), "8"
    block = (
        f"{head}Features\t: {feats}\nCPU implementer\t: 0x41\nCPU architecture: {archno}\n"
        f"CPU variant\t: 0x0\nCPU part\t: {part}\nCPU revision\t: 1\n\n"
    )
    return "".join(f"processor\t: {i}\n{block}" for i in range(cores))


@dataclass(frozen=True)
class SysrootSpec:
    arch: str
    runtime: str
    version: str

    @property
    def info(self) -> ArchInfo:
        if self.arch not in ARCHES:
            raise EnvSetupError(f"no sysroot for arch {self.arch!r}", hint=f"one of: {', '.join(ARCHES)}")
        return ARCHES[self.arch]

    @property
    def requirements(self) -> tuple[str, ...]:
        return _requirements(self.arch, self.runtime, self.version)

    @property
    def lock_name(self) -> str:
        return f"sysroot-{self.arch}-{self.runtime}-{self.version}"

    @property
    def wheel_lock(self) -> Path | None:
        """The committed hash lock of the ARM wheels, if edgecomp ships one for this runtime version."""
        path = LOCKS_DIR / f"{self.lock_name}-{GUEST_TAG}.txt"
        return path if path.is_file() else None

    @property
    def debian_lock(self) -> Path | None:
        """The committed lock of the Debian packages (versions and .deb sha256) for this architecture."""
        path = LOCKS_DIR / f"debian-{SUITE}-{self.info.debian}.txt"
        return path if path.is_file() else None

    @property
    def key(self) -> str:
        data: list[object] = [SUITE, self.info.packages, self.info.platforms, self.requirements, "v1"]
        locks = [self.wheel_lock, self.debian_lock]
        if any(locks):  # without locks the key stays what it was (sysroots made before locks)
            data.append([_sha256(p) if p else None for p in locks])
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:12]

    @property
    def name(self) -> str:
        return f"{self.arch}-{self.runtime}-{self.version}-{self.key}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_debian_lock(path: Path) -> dict[str, tuple[str, str]]:
    """`name=version sha256=<hex>` lines: {name: (version, sha256)}."""
    pins = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            pin, _, digest = line.partition(" sha256=")
            name, _, version = pin.partition("=")
            pins[name] = (version, digest.strip())
    return pins


def downloaded_debs(root: Path) -> dict[str, tuple[str, str]]:
    """The .debs mmdebstrap left in <root>/var/cache/apt/archives, {name: (version, sha256)}; removes them
    (and apt's caches beside them: the sysroot is what it was without `--skip=cleanup/apt/cache`)."""
    debs = {}
    for deb in sorted((root / DEBS).glob("*.deb")):
        name, version, _arch = unquote(deb.name[: -len(".deb")]).split("_")  # apt writes `:` as %3a
        debs[name] = (version, _sha256(deb))
        deb.unlink()
    for cache in (root / DEBS).parent.glob("*.bin"):  # apt's package caches, kept with the .debs
        cache.unlink()
    return debs


def sysroots_dir() -> Path:
    return (cache_dir() / "sysroots").resolve()


def _ready(path: Path, key: str) -> bool:
    try:
        return json.loads((path / MARKER).read_text()).get("key") == key and (path / GUEST_PYTHON).exists()
    except (OSError, json.JSONDecodeError):
        return False


def require_tool(tool: str, package: str) -> str:
    found = shutil.which(tool)
    if not found:
        raise EnvSetupError(
            f"{tool} not found: emulated ARM devices need the Debian package {package}",
            hint=f"sudo apt-get install --no-install-recommends {package}  (or: make system-deps)",
        )
    return found


def _run(cmd: list[str], what: str, hint: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        hashes = pip_error(what, proc.stderr or proc.stdout)
        if hashes is not None:
            raise hashes
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
        tail = " | ".join(lines[-2:]) or "(no output)"
        raise EnvSetupError(f"{what} failed: {tail[:400]}", hint=hint)
    return proc.stdout


def _debootstrap(spec: SysrootSpec, stage: Path) -> dict[str, str]:
    """Unpack the Debian packages into `stage`, at the lock's versions if there is a lock; their versions."""
    tool = require_tool("mmdebstrap", "mmdebstrap")
    lock = spec.debian_lock
    pins = read_debian_lock(lock) if lock else {}
    include = [f"{name}={version}" for name, (version, _) in pins.items()] or list(spec.info.packages)
    cmd = [tool, "--quiet", "--variant=extract", f"--arch={spec.info.debian}", "--skip=cleanup/apt/cache"]
    cmd += [f"--include={','.join(include)}", SUITE, str(stage), MIRROR]
    hint = "check the network to the Debian mirror"
    if lock:
        hint += (
            f"; a version pinned in {lock.name} leaves deb.debian.org at the next Debian point release:"
            " set EDGECOMP_DEBIAN_MIRROR to the snapshot the lock names, or rewrite it with `make locks`"
        )
    _run(cmd, f"mmdebstrap {spec.info.debian} sysroot", hint)
    debs = downloaded_debs(stage)
    if pins and debs != pins:
        diff = sorted(set(debs.items()) ^ set(pins.items()))[0][0]
        got = debs.get(diff, ("not downloaded", ""))
        raise EnvSetupError(
            f"Debian package {diff} {got[0]} (sha256 {got[1][:12]}) is not the one {lock.name} pins"
            f" ({pins.get(diff, ('not in the lock', ''))[0]})",
            hint=f"the mirror {MIRROR} serves other files than when the lock was written: check it, or"
            " rewrite the locks with `make locks` if the change is expected",
        )
    if spec.arch == "armv7":  # --variant=extract runs no maintainer scripts: add the alternatives links
        libdir = stage / "usr/lib/arm-linux-gnueabihf"
        for lib, sub in (("libblas.so.3", "blas"), ("liblapack.so.3", "lapack")):
            target = libdir / sub / lib
            if target.exists() and not (libdir / lib).exists():
                (libdir / lib).symlink_to(target.relative_to(libdir))
    return {name: version for name, (version, _) in debs.items()}


def _install_wheels(spec: SysrootSpec, stage: Path) -> dict[str, str]:
    target = stage / WHEEL_DIR
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    cmd += ["--no-warn-conflicts", "--target", str(target), "--only-binary=:all:"]
    for tag in spec.info.platforms:
        cmd += ["--platform", tag]
    cmd += ["--python-version", "3.11", "--implementation", "cp", "--abi", GUEST_TAG]
    lock = spec.wheel_lock
    if lock is not None:
        cmd += ["--require-hashes", "--no-deps", "-r", str(lock)]
    else:
        if spec.arch == "armv7":
            cmd.append("--no-deps")  # numpy comes from Debian's python3-numpy:armhf
        cmd += list(spec.requirements)
    _run(
        cmd,
        f"pip download of {' '.join(spec.requirements)} for {spec.arch}",
        f"check that {spec.requirements[0]} has {spec.arch} wheels for cp311 on PyPI",
    )
    versions = {}
    for dist in sorted(target.glob("*.dist-info")):
        name, _, ver = dist.name[: -len(".dist-info")].partition("-")
        versions[name] = ver
    return versions


def ensure_sysroot(spec: SysrootSpec, advance=lambda n=1: None) -> Path:
    """The base sysroot for `spec`, built once (~10 s, ~200 MB); calls advance() after each of 2 stages."""
    root = sysroots_dir()
    final = root / spec.name
    if _ready(final, spec.key):
        log.debug("sysroot %s: reusing %s", spec.name, final)
        advance(2)
        return final
    debian = f"Debian {SUITE} {spec.info.debian} {' '.join(spec.info.packages)}"
    size_key = f"sysroot-{spec.arch}-{spec.runtime}-{spec.version}"
    what = f"{spec.arch} {spec.runtime} {spec.version}"
    announce(first_use_notice(what, (debian, *spec.requirements), final, size_key))
    with locked(root / f".{spec.name}.lock"):
        if _ready(final, spec.key):
            advance(2)
            return final
        with staged_dir(final, guard=False) as stage:
            debian = _debootstrap(spec, stage)
            advance(1)
            versions = _install_wheels(spec, stage)
            advance(1)
            meta = {"key": spec.key, "arch": spec.arch, "suite": SUITE, "mirror": MIRROR}
            meta |= {"packages": spec.info.packages, "debian": debian, "wheels": versions}
            for kind, lock in (("lock", spec.wheel_lock), ("debian_lock", spec.debian_lock)):
                meta |= {kind: lock.name if lock else None, f"{kind}_sha256": _sha256(lock) if lock else None}
            (stage / MARKER).write_text(json.dumps(meta, indent=1))
    return final


def ensure_cpu_view(base: Path, arch: str, cpu: str) -> Path:
    """A hard-linked copy of `base` whose /proc/cpuinfo describes `cpu` (cheap: links, one new file)."""
    final = base.with_name(f"{base.name}@{cpu}")
    text = cpuinfo_text(arch, cpu)
    key = hashlib.sha256((base.name + text).encode()).hexdigest()[:12]
    if _ready(final, key):
        return final
    with locked(base.parent / f".{final.name}.lock"):
        if _ready(final, key):
            return final
        with staged_dir(final, guard=False) as stage:
            _run(["cp", "-al", f"{base}/.", str(stage)], "linking the sysroot", "check disk space")
            (stage / MARKER).unlink()
            (stage / "proc").mkdir(exist_ok=True)
            (stage / "proc" / "cpuinfo").write_text(text)
            (stage / MARKER).write_text(json.dumps({"key": key, "base": base.name, "cpu": cpu}))
    return final


def base_marker(sysroot: Path) -> dict:
    """The marker of a base sysroot (or of the base of a CPU view): its versions and locks."""
    base = sysroot.with_name(sysroot.name.split("@")[0])
    try:
        data = json.loads((base / MARKER).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def wheel_versions(sysroot: Path) -> dict[str, str]:
    """Versions of the wheels installed in a base sysroot (from its marker)."""
    return base_marker(sysroot).get("wheels", {})
