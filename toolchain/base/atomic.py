"""Atomic writes: a reader never sees a half-written file or build directory.

Build and bundle directories are swapped in whole (`staged_dir`), and edgecomp only ever replaces a
directory it made itself. Every directory it writes carries a marker file (`.edgecomp-build`, holding the
format version); a non-empty directory without it is the user's, so it is refused, never emptied (issue
12: `--out ~/Documents` used to delete the user's files). A symlink in the final position is refused too:
resolving it would swap out, and delete, whatever it points to. Two writers of one path are serialised by
a non-blocking `flock` on `.<name>.lock` beside it: the second gets an `OutputDirError` at once instead of
a race on `os.replace` (which used to fail with "Directory not empty" and leak its staging dir).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

from toolchain.base.errors import OutputDirError, pending_interrupt

MARKER_FILE = ".edgecomp-build"
MARKER_FORMAT = 1


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temp file in the same directory, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts are ordinary files
        _raise_if_interrupted()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _raise_if_interrupted() -> None:
    """Nothing is committed after SIGINT/SIGTERM, even when the signal's exception was swallowed on the way:
    Python drops an exception raised in an at-fork hook (logging's _releaseLock after starting a child), and
    a build then went on to write with exit 0 (tests/hostile/test_hostile_signals.py)."""
    interrupted = pending_interrupt()
    if interrupted is not None:
        raise interrupted


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def _make_parent(parent: Path) -> None:
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (parent, *parent.parents) if p.exists() and not p.is_dir()), parent)
        raise OutputDirError(
            f"cannot write under {parent}: {blocker} is a file, not a directory",
            hint="choose an --out whose parent folders are directories",
        ) from None
    except OSError as err:
        raise OutputDirError(
            f"cannot create {parent}: {err.strerror or err}", hint="choose a writable --out"
        ) from None


def check_writable(path: Path, option: str = "--out") -> None:
    """Refuse early an output path that cannot be written: its nearest existing ancestor is a file, or a
    folder this process may not write in (read-only mount, no permission). Checked before the work, so a
    profile or a build is not lost at the last step."""
    path = Path(path).absolute()
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputDirError(
            f"cannot write {option} {path}: {existing} is a file, not a folder", hint="choose another path"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputDirError(
            f"cannot write {option} {path}: {existing} is not writable (read-only or no permission)",
            hint="choose a writable path",
        )
    _check_names(path, existing, option)
    try:  # os.access says yes to root everywhere, and to pseudo-filesystems (/proc): try for real
        with tempfile.TemporaryFile(dir=existing):  # unnamed where the OS allows: nothing left behind
            pass
    except OSError as err:
        raise OutputDirError(
            f"cannot write {option} {path}: {existing}: {err.strerror or err}", hint="choose a writable path"
        ) from None


def _check_names(path: Path, existing: Path, option: str) -> None:
    """Each part still to be made must fit the filesystem's name limit (typically 255 bytes)."""
    try:
        limit = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        return
    for part in path.relative_to(existing).parts:
        if len(os.fsencode(part)) > limit - 16:  # room for the temp file's prefix and suffix
            raise OutputDirError(
                f"cannot write {option}: the name {part[:40]}... is {len(os.fsencode(part))} bytes, "
                f"over this filesystem's limit",
                hint="choose a shorter name",
            )


def check_output_file(path: Path, option: str) -> None:
    """An output file (--csv, --png): not a folder, and writable where it goes."""
    path = Path(path)
    check_writable(path, option)  # first: it refuses a name too long to even look up
    if path.is_dir():
        raise OutputDirError(f"{option} {path} is a folder; pass a file name", hint=f"e.g. {path / 'out'}")


def check_output_dir(final: Path) -> None:
    """Refuse an output path edgecomp may not replace: a symlink, a file, or a non-empty foreign folder."""
    final = Path(final)
    check_writable(final)
    if final.is_symlink():
        raise OutputDirError(
            f"{final} is a symlink (to {os.readlink(final)}); edgecomp does not write through it",
            hint="remove the link or pass the real folder with --out",
        )
    if not final.exists():
        return
    if not final.is_dir():
        raise OutputDirError(f"{final} exists and is a file", hint="remove it or choose another --out")
    if (final / MARKER_FILE).is_file() or not any(final.iterdir()):
        return
    raise OutputDirError(
        f"{final} is not empty and is not an edgecomp build (no {MARKER_FILE}); refusing to replace it",
        hint="choose another --out, or move the folder's files away yourself (a build made by an edgecomp "
        "older than the marker: delete it)",
    )


def remove_own_dir(path: Path) -> bool:
    """Remove a directory edgecomp wrote (it holds the marker); anything else is left alone (False).

    Used for a stale `<build>.rejected/` once a later convert passes its gates. Claimed like a write, so a
    concurrent writer of the same path stops instead of racing; renamed aside first, then deleted."""
    path = Path(os.path.abspath(path))
    if path.is_symlink() or not path.is_dir() or not (path / MARKER_FILE).is_file():
        return False
    try:
        with _claimed(path):
            aside = path.with_name(f".{path.name}.old-{os.getpid()}")
            with _signals_deferred():
                os.replace(path, aside)
            shutil.rmtree(aside, ignore_errors=True)
    except OutputDirError:  # another edgecomp is writing it right now: it is not stale
        return False
    return True


@contextlib.contextmanager
def _claimed(final: Path) -> Iterator[None]:
    """Hold `.<name>.lock` beside `final` for the whole write; a second writer fails at once."""
    lock = final.with_name(f".{final.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    busy = OutputDirError(
        f"another edgecomp process is writing {final}", hint="wait for it to finish, or choose another --out"
    )
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        try:  # the holder before us may have unlinked the file we opened: then we lock nothing
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            raise busy
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM for the two renames of a swap: an interrupt lands before or after, not between."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _swap(stage: Path, final: Path) -> None:
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    try:
        os.replace(stage, final)
    except BaseException:
        if old is not None:
            with contextlib.suppress(OSError):
                os.replace(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_dir(final: Path, *, guard: bool = True) -> Iterator[Path]:
    """Yield an empty staging directory that replaces `final` only if the block succeeds.

    On any exception (SIGTERM included, see toolchain/cli/main.py) the staging directory is removed and
    `final` is left as it was. With `guard` (build and bundle dirs) `final` must pass `check_output_dir`
    before and after the block, the write is claimed against concurrent writers, and the marker file is
    added after the block (so the caller's file listings never include it). Cache dirs with their own
    locks and markers (venvs, sysroots) pass guard=False.
    """
    final = Path(os.path.abspath(final))  # not resolve(): a symlinked final must not become its target
    _make_parent(final.parent)
    if guard:
        check_output_dir(final)
    claim = _claimed(final) if guard else contextlib.nullcontext()
    with claim:
        try:
            stage = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".staging", dir=final.parent))
        except OSError as err:
            raise OutputDirError(
                f"cannot write in {final.parent}: {err.strerror or err}", hint="choose a writable --out"
            ) from None
        try:
            os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes 0700
            yield stage
            _raise_if_interrupted()
            if guard:
                marker = {"format": MARKER_FORMAT, "tool": "edgecomp"}
                (stage / MARKER_FILE).write_text(json.dumps(marker) + "\n", encoding="utf-8")
                check_output_dir(final)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        try:
            with _signals_deferred():
                _swap(stage, final)
        except OSError as err:
            shutil.rmtree(stage, ignore_errors=True)
            raise OutputDirError(
                f"could not move the finished build into {final}: {err.strerror or err}",
                hint="another process or a mount point is in the way; run again or choose another --out",
            ) from None
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive fcntl lock on `lock_path` (created if missing) for the duration of the block:
    one writer at a time for a venv/sysroot being built or a build's report being updated."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
