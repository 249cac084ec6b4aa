"""Isolated Python environments (device runtimes, MediaPipe) provisioned once into a cache directory.

Each environment is keyed by its name, the exact requirement list and its lock: a changed pin or lock makes
a new one. It is built in a temp directory and renamed into place, under a file lock, so concurrent or
interrupted setups never leave a half-installed environment that looks ready.

Locks: `toolchain/base/locks/<name>-cp<XY>-<machine>.txt` pins every package of the environment, each with
the sha256 of the file the registry serves (written by `python -m toolchain.envlocks`, from
`pip install --dry-run --report`). With a lock for this Python and machine the environment is installed
with `pip install --require-hashes --no-deps -r LOCK`, so it is the same set of files on every machine and
a changed file on the registry is an error, not a silent difference; its sha256 goes into the environment's
marker (and from there into validate's report). Locks exist for CPython 3.10-3.12 (tflite-runtime 2.14.0
has no 3.12 wheel); without one (another Python, a runtime version edgecomp ships no lock for) the
top-level pins are installed as before, and the marker says `lock: null`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from toolchain.base.atomic import locked, staged_dir
from toolchain.base.errors import EdgecompError, InputFileError
from toolchain.base.notices import announce, first_use_notice

log = logging.getLogger(__name__)

MARKER = "edgecomp-env.json"
LOCKS_DIR = Path(__file__).resolve().parent / "locks"


class EnvSetupError(EdgecompError):
    """An isolated environment could not be provisioned."""

    exit_code = 4


def cache_dir() -> Path:
    """Root of edgecomp's caches: $EDGECOMP_CACHE, else $XDG_CACHE_HOME/edgecomp, else ~/.cache/edgecomp."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    if not xdg or not os.path.isabs(xdg):  # the XDG spec: a relative value is invalid and ignored
        xdg = os.path.join(os.path.expanduser("~"), ".cache")
    root = Path(os.environ.get("EDGECOMP_CACHE") or os.path.join(xdg, "edgecomp"))
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == root else f"is under a file ({existing})"
        raise InputFileError(
            f"the cache path {root} {where}, not a folder",
            hint="point EDGECOMP_CACHE (or XDG_CACHE_HOME) at a folder, or unset it",
        )
    return root


@dataclass(frozen=True)
class VenvSpec:
    """A named environment with pinned requirements (pip syntax)."""

    name: str
    requirements: tuple[str, ...]
    python: str | None = None  # base interpreter; default: the one running edgecomp

    @property
    def key(self) -> str:
        lock = self.lock
        data: dict[str, object] = {"requirements": sorted(self.requirements), "python": self._base_python()}
        if lock is not None:  # without a lock the key stays what it was (environments made before locks)
            data["lock"] = _sha256(lock)
        return hashlib.sha256(json.dumps(data).encode()).hexdigest()[:12]

    @property
    def lock(self) -> Path | None:
        """The committed lock for this environment, this Python and this machine, if there is one."""
        path = LOCKS_DIR / f"{self.name}-{python_tag(self._base_python())}.txt"
        return path if path.is_file() else None

    def _base_python(self) -> str:
        return self.python or getattr(sys, "_base_executable", None) or sys.executable


@functools.lru_cache(maxsize=8)
def python_tag(python: str | None = None) -> str:
    """`cp311-x86_64`: the interpreter (the base of the environments) and the machine a lock is for."""
    ours = {sys.executable, getattr(sys, "_base_executable", sys.executable)}
    if python is None or python in ours or Path(python).resolve() == Path(sys.executable).resolve():
        version = f"{sys.version_info[0]}{sys.version_info[1]}"
    else:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2], sep='')"], text=True, capture_output=True
        )
        version = out.stdout.strip() or "unknown"
    return f"cp{version}-{platform.machine()}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Venv:
    path: Path
    spec: VenvSpec

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def lock_sha256(self) -> str | None:
        """The sha256 of the lock this environment was installed from (None: top-level pins only)."""
        try:
            value = json.loads((self.path / MARKER).read_text()).get("lock_sha256")
        except (OSError, ValueError):
            return None
        return value if isinstance(value, str) else None


def _ready(path: Path, spec: VenvSpec) -> bool:
    marker = path / MARKER
    if not marker.is_file() or not (path / "bin" / "python").exists():
        return False
    try:
        return json.loads(marker.read_text()).get("key") == spec.key
    except (OSError, json.JSONDecodeError):
        return False


def pip_error(what: str, out: str) -> EnvSetupError | None:
    """The error for pip's output when a file does not match its lock's sha256 (None: another failure)."""
    if "DO NOT MATCH THE HASHES" not in out:  # pip's words for a file that is not the one the lock names
        return None
    names = re.findall(r"^\s+(\S+==\S+) from ", out, flags=re.MULTILINE) or ["a package"]
    return EnvSetupError(
        f"{what} failed: {', '.join(names)}: the registry's file does not match the lock's sha256",
        hint="the registry serves another file than when the lock was written: check it, "
        "or rewrite the locks with `make locks` if the change is expected",
    )


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        out = proc.stderr or proc.stdout
        hashes = pip_error(what, out)
        if hashes is not None:
            raise hashes
        tail = out.strip().splitlines()[-1:] or ["(no output)"]
        raise EnvSetupError(
            f"{what} failed: {tail[0].strip()[:300]}", hint="check the network to the package registry"
        )


def ensure_venv(spec: VenvSpec, root: Path | None = None) -> Venv:
    """Return the environment for `spec`, creating it if missing or stale. Safe to call concurrently."""
    root = (root or cache_dir() / "envs").resolve()
    final = root / f"{spec.name}-{spec.key}"
    if _ready(final, spec):
        log.debug("isolated environment %s: reusing %s", spec.name, final)
        return Venv(final, spec)
    announce(first_use_notice(spec.name, spec.requirements, final, spec.name))
    with locked(root / f".{spec.name}.lock"):
        if _ready(final, spec):
            return Venv(final, spec)
        with staged_dir(final, guard=False) as stage:
            log.debug("isolated environment %s: installing %s", spec.name, " ".join(spec.requirements))
            _run([spec._base_python(), "-m", "venv", str(stage)], f"creating venv {spec.name}")
            py = str(stage / "bin" / "python")
            pip = [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            lock = spec.lock
            if lock is not None:
                log.debug("isolated environment %s: from %s (hashes required)", spec.name, lock.name)
                _run([*pip, "--require-hashes", "--no-deps", "-r", str(lock)], f"pip install -r {lock.name}")
            else:
                _run([*pip, *spec.requirements], f"pip install {' '.join(spec.requirements)}")
            marker = {
                "key": spec.key,
                "requirements": list(spec.requirements),
                "lock": lock.name if lock is not None else None,
                "lock_sha256": _sha256(lock) if lock is not None else None,
            }
            (stage / MARKER).write_text(json.dumps(marker))
    return Venv(final, spec)


# The host-side environments for each device runtime; one definition so every module shares the cache.
RUNTIME_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "litert": ("ai-edge-litert=={version}", "numpy<2"),
    "tflite-runtime": ("tflite-runtime=={version}", "numpy<2"),
}


def runtime_venv_spec(runtime: str, version: str) -> VenvSpec:
    """The x86 venv holding just one device runtime (no TensorFlow), e.g. ('litert', '2.3.0')."""
    if runtime not in RUNTIME_REQUIREMENTS:
        raise EnvSetupError(f"unknown runtime {runtime!r}", hint=f"one of: {', '.join(RUNTIME_REQUIREMENTS)}")
    reqs = tuple(r.format(version=version) for r in RUNTIME_REQUIREMENTS[runtime])
    return VenvSpec(f"{runtime}-{version}", reqs)
