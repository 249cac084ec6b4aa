"""What edgecomp keeps in its cache folder, and removing it again (`edgecomp cache list|clean`).

The cache root is toolchain.base.venvs.cache_dir() ($EDGECOMP_CACHE, else $XDG_CACHE_HOME/edgecomp, else
~/.cache/edgecomp). Only what edgecomp makes there is listed, each entry by what it is, its size and its
version (an environment's pins, a sysroot's runtime and Debian suite), and `clean` removes exactly the
entries `list` shows: a file or folder edgecomp does not know (the user pointed EDGECOMP_CACHE at a folder
of theirs) is never listed and never removed. The empty lock files beside the entries stay: another
process may hold one. An entry is moved aside atomically before it is deleted, so a concurrent run sees
it whole or not at all (and provisions it again).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from converters.onnx2tf_cache import MARKER as ONNX2TF_MARKER
from devices.sysroot import MARKER as SYSROOT_MARKER
from toolchain.base.errors import InputFileError
from toolchain.base.record import Record
from toolchain.base.venvs import MARKER as ENV_MARKER
from toolchain.base.venvs import cache_dir

log = logging.getLogger(__name__)

# top-level folder -> what a user is told it holds; each child of the folder is one entry
KINDS: dict[str, str] = {
    "envs": "isolated Python environment (a device runtime, MediaPipe, an exporter)",
    "sysroots": "emulated ARM device root filesystem (Debian + runtime wheels, run with QEMU)",
    "opsupport": "op versions a device runtime accepts (probed once)",
    "teacher-scores": "a distill step's teacher scores (per model and data)",
    "hub-exports": "a Hugging Face model exported to ONNX",
    "onnx2tf": "an ONNX graph converted to a float SavedModel by onnx2tf (reused by later builds)",
    "fixtures": "the test suite's generated fixture models",
}
# toolchain/base/atomic.py staged_dir: `.<name>.<random>.staging` until renamed; `remove` below: .deleting
LEFTOVERS = (".staging", ".deleting")
WHOLE = {"opsupport": "*.json", "teacher-scores": "*.npy"}  # many small files: one entry, these files
# a finished entry has its marker file
MARKERS = {"envs": ENV_MARKER, "sysroots": SYSROOT_MARKER, "onnx2tf": ONNX2TF_MARKER}
RUNTIME_WHEELS = ("ai_edge_litert", "tflite_runtime", "ai-edge-litert", "tflite-runtime")


class CacheEntry(Record):
    name: str  # path under the cache root, e.g. envs/litert-2.3.0-a0bcfb7d01a9: what `clean NAME` takes
    kind: str
    what: str
    version: str | None = None
    bytes: int  # a file hard-linked from an earlier entry counts there only (as du counts)
    path: str
    in_use: bool = False  # a setup that runs now: `clean` leaves it


class CacheListing(Record):
    root: str
    entries: list[CacheEntry]
    total_bytes: int


def _size(path: Path, seen: set[tuple[int, int]]) -> int:
    """Bytes under `path`, a file hard-linked from an entry counted before (a sysroot's CPU variant shares
    its base's files) counted once, as du does."""
    total = 0
    for file in _files(path):
        with contextlib.suppress(OSError):  # removed while we walk: a concurrent clean or setup
            st = os.lstat(file)
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _files(path: Path) -> Iterable[Path]:
    """The files an entry owns: a file, a folder's files, or a whole-folder kind's matching files."""
    if not path.is_dir() or path.is_symlink():
        yield path
    elif path.name in WHOLE and path.parent.name != path.name:  # opsupport/, teacher-scores/
        yield from sorted(path.glob(WHOLE[path.name]))
    else:
        for dirpath, _dirs, files in os.walk(path):
            yield from (Path(dirpath) / f for f in files)


def _in_progress(staging: Path) -> bool:
    """A staging folder whose setup still runs: the setup holds the lock `.<entry name>.lock` beside it."""
    for lock in staging.parent.glob(".*.lock"):
        if staging.name.startswith(lock.name[: -len(".lock")]) and _held(lock):
            return True
    return False


def _held(lock: Path) -> bool:
    try:
        with open(lock, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
    except OSError:
        return False
    return False


def _marker(path: Path, name: str) -> dict:
    try:
        data = json.loads((path / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _version(kind: str, path: Path) -> str | None:
    """What an entry holds; `(locked)` when it was installed from committed locks (toolchain/base/locks/)."""
    if kind == "envs":
        m = _marker(path, ENV_MARKER)
        reqs = m.get("requirements")
        if not isinstance(reqs, list):
            return None
        pins = ", ".join(r for r in reqs if not r.startswith("numpy"))
        return pins + (" (locked)" if m.get("lock") else "")
    if kind == "sysroots":
        m = _marker(path, SYSROOT_MARKER)
        if m.get("base"):  # a CPU variant: its base's version, on that CPU
            return f"{_version(kind, path.parent / str(m['base']))} on {m.get('cpu')}"
        wheels = m.get("wheels") if isinstance(m.get("wheels"), dict) else {}
        runtime = [f"{k}=={v}" for k, v in wheels.items() if k in RUNTIME_WHEELS]
        parts = [m.get("arch"), f"Debian {m['suite']}" if m.get("suite") else None, *runtime]
        locked = " (locked)" if m.get("lock") or m.get("debian_lock") else ""
        return (", ".join(str(p) for p in parts if p) + locked) or None
    if kind == "onnx2tf":
        m = _marker(path, ONNX2TF_MARKER)
        versions = m.get("versions") if isinstance(m.get("versions"), dict) else {}
        return ", ".join(f"{k}=={v}" for k, v in versions.items() if v) or None
    return None


def _entry(root: Path, child: Path, kind: str, seen: set[tuple[int, int]]) -> CacheEntry:
    leftover = child.name.startswith(".") and child.name.endswith(LEFTOVERS)
    what = KINDS[kind]
    if leftover:
        what = "a setup running now" if _in_progress(child) else "an interrupted setup's leftovers"
    return CacheEntry(
        name=str(child.relative_to(root)),
        kind=kind,
        what=what,
        version=None if leftover else _version(kind, child),
        bytes=_size(child, seen),
        path=str(child),
        in_use=leftover and what == "a setup running now",
    )


def _entries_of(root: Path, kind: str, seen: set[tuple[int, int]]) -> Iterable[CacheEntry]:
    folder = root / kind
    if not folder.is_dir() or folder.is_symlink():
        return
    if kind in WHOLE:
        if any(folder.glob(WHOLE[kind])):
            yield _entry(root, folder, kind, seen)
        return
    for child in sorted(folder.iterdir()):
        if child.name.endswith(".lock"):
            continue
        leftover = child.name.endswith(LEFTOVERS)
        if child.name.startswith(".") and not leftover:
            continue
        if kind in MARKERS and not leftover and not (child / MARKERS[kind]).is_file():
            continue  # not made by edgecomp (or not by this version): never listed, never removed
        yield _entry(root, child, kind, seen)


def list_caches(root: Path | None = None) -> CacheListing:
    """Every entry edgecomp made under the cache root (none: an empty list, nothing is created)."""
    root = Path(root) if root is not None else cache_dir()
    seen: set[tuple[int, int]] = set()
    entries = [e for kind in KINDS for e in _entries_of(root, kind, seen)] if root.is_dir() else []
    return CacheListing(root=str(root), entries=entries, total_bytes=sum(e.bytes for e in entries))


def select(listing: CacheListing, names: Iterable[str], everything: bool = False) -> list[CacheEntry]:
    """The entries `clean` removes: all, or each NAME as an entry's name or a kind (`envs`: all of them)."""
    if everything:
        return [e for e in listing.entries if not e.in_use]
    chosen: list[CacheEntry] = []
    for name in names:
        name = name.strip("/")
        hits = [e for e in listing.entries if e.name == name or e.kind == name]
        if not hits:
            raise InputFileError(
                f"no cache entry {name!r} in {listing.root}",
                hint=f"a name from `edgecomp cache list`, a kind ({', '.join(KINDS)}), or --all",
            )
        chosen += [e for e in hits if e not in chosen and not e.in_use]
    return chosen


def remove(entries: Iterable[CacheEntry]) -> int:
    """Delete the entries (moved aside first, then removed); returns the bytes freed."""
    freed = 0
    for entry in entries:
        path = Path(entry.path)
        if not path.exists() and not path.is_symlink():
            continue  # already gone (a concurrent clean)
        if entry.kind in WHOLE and entry.name == entry.kind:  # its files only: the folder may hold others
            for file in _files(path):
                file.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                path.rmdir()  # only if now empty
            log.debug("removed the %s files of %s (%d bytes)", WHOLE[entry.kind], path, entry.bytes)
            freed += entry.bytes
            continue
        doomed = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.deleting")
        path.rename(doomed)
        if doomed.is_dir() and not doomed.is_symlink():
            shutil.rmtree(doomed)
        else:
            doomed.unlink()
        log.debug("removed %s (%d bytes)", path, entry.bytes)
        freed += entry.bytes
    return freed
