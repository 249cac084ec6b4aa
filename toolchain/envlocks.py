"""Write the hash locks of edgecomp's isolated environments: `python -m toolchain.envlocks` (`make locks`).

Three kinds, all in toolchain/base/locks/:
- the x86 environments (the device runtimes of toolchain/base/venvs.py, the MediaPipes of
  converters/metadata.py, the LiteRT Quantizer of converters/int4.py),
  one lock per Python version: `<name>-cp<XY>-x86_64.txt`. For the Python running this, pip resolves the
  top-level pins in a throwaway venv of it (`pip install --dry-run --ignore-installed --report`); for the
  other supported Pythons (3.10, 3.12, when they are not installed here) pip resolves for that version
  (`--python-version --platform manylinux... --only-binary=:all:`) and every dependency whose marker holds
  for that Python is checked to be in the lock. A version the registry has no wheel for gets no lock.
- the ARM sysroots' wheels (devices/sysroot.py), resolved the second way for the guest's Python 3.11;
- the sysroots' Debian packages: mmdebstrap resolves and downloads them once, and the lock lists each
  package's version and the sha256 of its .deb, with the archive's date (to replay it from a snapshot).
Each lock line is `name==version --hash=sha256:...` (pip) or `name=version sha256=...` (Debian); the
environments install from them with `--require-hashes --no-deps` or pinned versions.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from converters.int4 import quantizer_spec
from converters.metadata import MEDIAPIPE_RUNTIMES, mediapipe_spec
from devices.profiles.schema import load_profiles
from devices.sysroot import ARCHES, GUEST_TAG, MIRROR, SUITE, SysrootSpec, downloaded_debs, require_tool
from toolchain.base.errors import EdgecompError
from toolchain.base.venvs import LOCKS_DIR, RUNTIME_REQUIREMENTS, VenvSpec, python_tag, runtime_venv_spec

RUNTIME_VERSIONS = {"litert": ("2.3.0",), "tflite-runtime": ("2.14.0",)}  # the shipped profiles' runtimes
PYTHONS = ("3.10", "3.11", "3.12")  # requires-python of edgecomp
X86_TAGS = ("manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64") + tuple(
    f"manylinux_2_{v}_x86_64" for v in range(5, 37)
)
WRITER = "# written by `python -m toolchain.envlocks`"


@dataclass(frozen=True)
class Target:
    """A Python version and platform to resolve for without running that Python."""

    python: str  # "3.10"
    machine: str  # platform_machine as the target reports it
    platforms: tuple[str, ...]  # pip --platform tags (pip does not expand manylinux tags: list them)

    @property
    def abi(self) -> str:
        return "cp" + self.python.replace(".", "")

    def pip_args(self) -> list[str]:
        args = ["--only-binary=:all:", "--python-version", self.python, "--implementation", "cp"]
        args += ["--abi", self.abi]
        for tag in self.platforms:
            args += ["--platform", tag]
        return args

    def marker_env(self) -> dict[str, str]:
        full = f"{self.python}.0"
        return {
            "python_version": self.python,
            "python_full_version": full,
            "implementation_version": full,
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "platform_machine": self.machine,
            "platform_system": "Linux",
            "sys_platform": "linux",
            "os_name": "posix",
            "platform_release": "",
            "platform_version": "",
        }


def specs() -> list[VenvSpec]:
    runtimes = [runtime_venv_spec(r, v) for r in RUNTIME_REQUIREMENTS for v in RUNTIME_VERSIONS.get(r, ())]
    return [*runtimes, *(mediapipe_spec(v) for v in MEDIAPIPE_RUNTIMES), quantizer_spec()]


def sysroot_specs() -> list[SysrootSpec]:
    """One per (arch, runtime, version) among the shipped emulated profiles."""
    found = {(p.arch, p.runtime, p.runtime_version) for p in load_profiles().values() if p.emulated}
    return [SysrootSpec(*key) for key in sorted(found)]


def _lines(install: list[dict]) -> list[str]:
    lines = []
    for item in sorted(install, key=lambda i: i["metadata"]["name"].lower()):
        digest = item["download_info"].get("archive_info", {}).get("hashes", {}).get("sha256")
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        if not digest:
            raise EdgecompError(f"{name} {version}: the registry gave no sha256", hint="use an index")
        lines.append(f"{name}=={version} --hash=sha256:{digest}")
    return lines


def _pip_report(pip: list[str], args: list[str], what: str) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="edgecomp-lock-") as tmp:
        report = Path(tmp) / "report.json"
        cmd = [*pip, "install", "--quiet", "--disable-pip-version-check", "--dry-run", "--ignore-installed"]
        done = subprocess.run([*cmd, "--report", str(report), *args], capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise EdgecompError(f"resolving {what} failed: {tail}", hint="check the package registry")
        return json.loads(report.read_text())["install"]


def resolve(spec: VenvSpec, python: str) -> str:
    """The lock text of `spec` for the Python `python` (run here): pip's resolution in a venv of it."""
    with tempfile.TemporaryDirectory(prefix="edgecomp-lock-") as tmp:
        subprocess.run([python, "-m", "venv", f"{tmp}/v"], check=True)
        install = _pip_report([f"{tmp}/v/bin/python", "-m", "pip"], list(spec.requirements), spec.name)
    lines = [f"# {spec.name}: {' '.join(spec.requirements)} resolved for {python_tag(python)}"]
    lines.append(f"{WRITER}; installed with pip --require-hashes --no-deps")
    return "\n".join(lines + _lines(install)) + "\n"


def unmet(install: list[dict], target: Target) -> list[str]:
    """Dependencies whose marker holds on `target` but that the resolution left out (pip evaluates markers
    for the Python it runs on, not for --python-version): each as `package needs requirement`."""
    names = {canonicalize_name(i["metadata"]["name"]) for i in install}
    env = target.marker_env()
    missing = []
    for item in install:
        extras = item.get("requested_extras") or []
        for text in item["metadata"].get("requires_dist") or []:
            req = Requirement(text)
            needed = req.marker is None or any(
                req.marker.evaluate({**env, "extra": extra}) for extra in ["", *extras]
            )
            if needed and canonicalize_name(req.name) not in names:
                missing.append(f"{item['metadata']['name']} needs {text}")
    return missing


def resolve_for(name: str, requirements: tuple[str, ...], target: Target, no_deps: bool = False) -> str:
    """The lock text for `target` resolved from this machine (that Python need not be installed)."""
    with tempfile.TemporaryDirectory(prefix="edgecomp-lock-") as tmp:
        args = [*target.pip_args(), "--target", tmp, *(["--no-deps"] if no_deps else []), *requirements]
        install = _pip_report([sys.executable, "-m", "pip"], args, f"{name} for {target.abi}")
    missing = [] if no_deps else unmet(install, target)
    if missing:
        raise EdgecompError(f"{name} for {target.abi}: {'; '.join(missing)}", hint="add it to the pins")
    lines = [f"# {name}: {' '.join(requirements)} resolved for {target.abi}-{target.machine}"]
    how = "pip --python-version --platform --only-binary=:all:"
    lines.append(f"{WRITER} ({how}); installed with pip --require-hashes --no-deps")
    return "\n".join(lines + _lines(install)) + "\n"


def sysroot_wheels(spec: SysrootSpec) -> str:
    machine = "armv7l" if spec.arch == "armv7" else spec.arch
    target = Target(GUEST_TAG[2] + "." + GUEST_TAG[3:], machine, spec.info.platforms)
    # armv7: numpy comes from Debian's python3-numpy:armhf (PyPI has no armv7 numpy wheel)
    return resolve_for(spec.lock_name, spec.requirements, target, no_deps=spec.arch == "armv7")


def debian_lock(spec: SysrootSpec) -> str:
    """Let mmdebstrap resolve and download the sysroot's Debian packages; their versions and .deb sha256."""
    tool = require_tool("mmdebstrap", "mmdebstrap")
    info = spec.info
    with tempfile.TemporaryDirectory(prefix="edgecomp-debian-lock-") as tmp:
        root = Path(tmp) / "root"
        cmd = [tool, "--quiet", "--variant=extract", f"--arch={info.debian}", "--skip=cleanup/apt/cache"]
        cmd += ["--skip=cleanup/apt/lists", f"--include={','.join(info.packages)}", SUITE, str(root), MIRROR]
        subprocess.run(cmd, check=True, capture_output=True)
        debs = downloaded_debs(root)
        release = next((root / "var/lib/apt/lists").glob("*_dists_*Release"), None)
        text = release.read_text(errors="replace") if release else ""
        shutil.rmtree(root, ignore_errors=True)
    date = re.search(r"^Date: (.+)$", text, flags=re.MULTILINE)
    when = parsedate_to_datetime(date.group(1)) if date else datetime.now().astimezone()
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    lines = [f"# debian-{SUITE}-{info.debian}: {' '.join(info.packages)} from {MIRROR}"]
    lines.append(f"# the archive of {when:%Y-%m-%d %H:%M} UTC; after the next point release replay it with")
    lines.append(f"# EDGECOMP_DEBIAN_MIRROR=http://snapshot.debian.org/archive/debian/{stamp}")
    lines.append(f"{WRITER}; unpacked at these versions, each .deb checked against its sha256")
    lines += [f"{name}={version} sha256={digest}" for name, (version, digest) in sorted(debs.items())]
    return "\n".join(lines) + "\n"


def main() -> None:
    python = getattr(sys, "_base_executable", sys.executable)
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    LOCKS_DIR.mkdir(exist_ok=True)
    out: dict[str, str] = {}
    for spec in specs():
        out[f"{spec.name}-{python_tag(python)}.txt"] = resolve(spec, python)
        for version in (v for v in PYTHONS if v != here):
            target = Target(version, "x86_64", X86_TAGS)
            try:
                text = resolve_for(spec.name, spec.requirements, target)
                out[f"{spec.name}-{target.abi}-x86_64.txt"] = text
            except EdgecompError as err:  # e.g. tflite-runtime 2.14.0 has no cp312 wheel
                print(f"no lock for {spec.name} on Python {version}: {err.message}")
    for sysroot in sysroot_specs():
        out[f"{sysroot.lock_name}-{GUEST_TAG}.txt"] = sysroot_wheels(sysroot)
    for arch in ARCHES:
        spec = next((s for s in sysroot_specs() if s.arch == arch), None)
        if spec is not None:
            out[f"debian-{SUITE}-{spec.info.debian}.txt"] = debian_lock(spec)
    for name, text in out.items():
        (LOCKS_DIR / name).write_text(text)
        print(f"wrote {LOCKS_DIR / name}")


if __name__ == "__main__":
    main()
