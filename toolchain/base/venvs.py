"""Isolated Python environments (device runtimes, MediaPipe) provisioned once into a cache directory.

Each environment is keyed by its name and the exact requirement list: a changed pin makes a new one. It is
built in a temp directory and renamed into place, under a file lock, so concurrent or interrupted setups
never leave a half-installed environment that looks ready.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from toolchain.base.atomic import locked, staged_dir
from toolchain.base.errors import EdgecompError, InputFileError
from toolchain.base.notices import announce, first_use_notice

log = logging.getLogger(__name__)

MARKER = "edgecomp-env.json"


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
        text = json.dumps({"requirements": sorted(self.requirements), "python": self._base_python()})
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def _base_python(self) -> str:
        return self.python or getattr(sys, "_base_executable", None) or sys.executable


@dataclass(frozen=True)
class Venv:
    path: Path
    spec: VenvSpec

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


def _ready(path: Path, spec: VenvSpec) -> bool:
    marker = path / MARKER
    if not marker.is_file() or not (path / "bin" / "python").exists():
        return False
    try:
        return json.loads(marker.read_text()).get("key") == spec.key
    except (OSError, json.JSONDecodeError):
        return False


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise EnvSetupError(
            f"{what} failed: {tail[0][:300]}", hint="check the network to the package registry"
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
            _run(
                [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *spec.requirements],
                f"pip install {' '.join(spec.requirements)}",
            )
            (stage / MARKER).write_text(
                json.dumps({"key": spec.key, "requirements": list(spec.requirements)})
            )
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
