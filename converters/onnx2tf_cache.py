"""onnx2tf's float SavedModels, kept per graph: the same ONNX graph is converted once.

A build converts its (simplified, prepared) graph with onnx2tf, 10 s for a toy BERT and minutes for a
MiniLM; a search, distill-auto's trials, a rebuild from a saved recipe or a second quantization mode of the
same model convert the very same graph again. The SavedModel is kept under `<cache>/onnx2tf/<key>/`, the
key being the graph file's bytes, onnx2tf's arguments and the versions of onnx2tf, TensorFlow, tf_keras
and onnx: another graph, another argument or another version is another entry. Only a conversion that
succeeded is kept (written whole to a staging folder, then renamed), under a lock per entry, so two
processes converting one graph run onnx2tf once.

`EDGECOMP_ONNX2TF_CACHE=0` always runs onnx2tf (and keeps nothing). Entries beyond
`EDGECOMP_ONNX2TF_CACHE_MB` (default 2048) are removed, least recently used first; `edgecomp cache list`
shows them and `edgecomp cache clean onnx2tf` removes them all.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

from toolchain.base.atomic import locked, staged_dir
from toolchain.base.errors import InputFileError, OutputDirError
from toolchain.base.venvs import cache_dir

log = logging.getLogger(__name__)

FOLDER = "onnx2tf"
MARKER = ".edgecomp-onnx2tf.json"  # a finished entry has it (toolchain/caches.py lists only those)
FORMAT = 1
VERSIONED = ("onnx2tf", "tensorflow", "tf_keras", "onnx")
DEFAULT_BUDGET_MB = 2048


def enabled() -> bool:
    return os.environ.get("EDGECOMP_ONNX2TF_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def key(graph: Path, args: dict) -> str:
    """The entry's name: the graph's bytes, onnx2tf's arguments (paths aside) and the versions."""
    digest = hashlib.sha256()
    with open(graph, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    stated = {"format": FORMAT, "args": args, "versions": _versions()}
    digest.update(json.dumps(stated, sort_keys=True).encode())
    return digest.hexdigest()[:24]


def _budget_bytes() -> int:
    try:
        return int(float(os.environ.get("EDGECOMP_ONNX2TF_CACHE_MB", DEFAULT_BUDGET_MB)) * 2**20)
    except ValueError:
        return DEFAULT_BUDGET_MB * 2**20


def saved_model(graph: Path, out_dir: Path, args: dict, convert: Callable[[], Path]) -> tuple[Path, bool]:
    """`out_dir` holding the graph's SavedModel: copied from the cache, else made by `convert()` (which
    writes `out_dir`) and then kept. Returns (out_dir, whether it came from the cache)."""
    if not enabled():
        return convert(), False
    with contextlib.ExitStack() as held:
        try:
            entry = cache_dir() / FOLDER / key(graph, args)
            held.enter_context(locked(entry.parent / f".{entry.name}.lock"))  # one onnx2tf per graph
        except (InputFileError, OSError) as err:  # an unusable cache folder costs the reuse, not the build
            log.warning("onnx2tf cache unusable (%s): converting without it", getattr(err, "message", err))
            return convert(), False
        return _under_lock(graph, out_dir, args, convert, entry)


def _under_lock(
    graph: Path, out_dir: Path, args: dict, convert: Callable[[], Path], entry: Path
) -> tuple[Path, bool]:
    if (entry / MARKER).is_file():
        shutil.copytree(entry, out_dir, ignore=shutil.ignore_patterns(MARKER))
        os.utime(entry / MARKER)  # recently used: evicted last
        log.debug("onnx2tf: %s from the cache (%s)", graph.name, entry.name)
        return out_dir, True
    made = convert()
    try:
        with staged_dir(entry, guard=False) as stage:
            shutil.copytree(made, stage, dirs_exist_ok=True)
            info = {"format": FORMAT, "graph": graph.name, "args": args, "versions": _versions()}
            (stage / MARKER).write_text(json.dumps(info, sort_keys=True) + "\n", encoding="utf-8")
        _evict(entry.parent, keep=entry)
    except (OutputDirError, OSError) as err:  # a full disk: the build goes on, the next one converts again
        log.warning("onnx2tf cache: could not keep %s (%s)", graph.name, getattr(err, "message", err))
    return made, False


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def _evict(folder: Path, keep: Path) -> None:
    """Remove the least recently used entries while the folder holds more than the budget; an entry that
    another process is reading (its lock held) stays."""
    entries = sorted(
        (p for p in folder.iterdir() if (p / MARKER).is_file()), key=lambda p: (p / MARKER).stat().st_mtime
    )
    total = sum(_size(p) for p in entries)
    for path in entries:
        if total <= _budget_bytes():
            break
        if path == keep:
            continue
        with _unless_busy(folder / f".{path.name}.lock") as free:
            if free:
                size = _size(path)
                doomed = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.deleting")
                path.rename(doomed)
                shutil.rmtree(doomed, ignore_errors=True)
                total -= size
                log.debug("onnx2tf cache: removed %s (%d bytes, least recently used)", path.name, size)


@contextlib.contextmanager
def _unless_busy(lock: Path) -> Iterator[bool]:
    with open(lock, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
