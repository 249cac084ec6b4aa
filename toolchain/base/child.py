"""The host side of the one child-process protocol (the child side: toolchain/base/wire/edgecomp_wire.py).

Everything that runs in another environment (device runtimes, QEMU guests, MediaPipe, onnx2tf) is a
`ChildSession`. The reader never blocks past a deadline: it selects on the reply fd and os.read()s into its
own line buffer, so a half-written line (or a child that stops mid-reply) ends in ChildTimeout, not a hang.
The child runs in its own process group; timeout, close, SIGINT and SIGTERM kill the whole group, so a
runtime's helper processes never outlive edgecomp. A crash (negative return code) names the signal.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from toolchain.base import STARTUP_ENV
from toolchain.base.errors import EdgecompError
from toolchain.base.spawn import no_core_for_children

log = logging.getLogger(__name__)

WIRE_DIR = Path(__file__).resolve().parent / "wire"
PROTOCOL = 1
_POLL_S = 0.05  # how often the RSS watch looks while a call runs (only with a memory limit)


class ChildError(EdgecompError):
    """A child process failed; `what` says during which request, `stderr` holds its stderr's tail."""

    exit_code = 3

    def __init__(self, message: str, hint: str | None = None, what: str = "", stderr: str = "") -> None:
        super().__init__(message, hint)
        self.what, self.stderr = what, stderr


class ChildCrashed(ChildError):
    """The child died: `signal` names the signal (SIGSEGV, ...) or is None for an exit code."""

    def __init__(self, message: str, signal_name: str | None, returncode: int | None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.signal, self.returncode = signal_name, returncode


class ChildTimeout(ChildError):
    """No reply within the call's timeout; the child's process group was killed."""


class ChildMemoryLimit(ChildError):
    """The child's RSS went over the session's memory limit; its process group was killed."""


class ChildFailed(ChildError):
    """The child answered `ok: false`: `kind` and `detail` are its error's kind and message."""

    def __init__(self, message: str, kind: str, detail: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.kind, self.detail = kind, detail


class ChildProtocolError(ChildError):
    """The child wrote something that is not the protocol (wrong hello, bad JSON, wrong id)."""


_LIVE: set[int] = set()  # process-group ids of running children, killed on SIGTERM/SIGINT/exit
_PREVIOUS: dict[int, Any] = {}


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _kill_all() -> None:
    for pgid in list(_LIVE):
        _kill_group(pgid)
    _LIVE.clear()


def _on_signal(signum: int, frame: Any) -> None:
    _kill_all()
    previous = _PREVIOUS.get(signum)
    if previous is None:  # a handler not set from Python: act as the default
        previous = signal.SIG_DFL
    if callable(previous):
        previous(signum, frame)  # default_int_handler raises KeyboardInterrupt as before
    elif previous == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _install_handlers() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        current = signal.getsignal(signum)
        if signum in _PREVIOUS or current is _on_signal or current == signal.SIG_IGN:
            continue
        try:
            signal.signal(signum, _on_signal)
        except ValueError:  # not the main thread: close() and atexit still clean up
            return
        _PREVIOUS[signum] = current


atexit.register(_kill_all)


def _rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# Variables that decide which native libraries a process loads: a child gets the values edgecomp was started
# with, not what an in-process library set since (toolchain/base/__init__.py STARTUP_ENV).
LOADER_VARS = (
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
    "DYLD_LIBRARY_PATH",
    "QT_QPA_PLATFORM_PLUGIN_PATH",
    "QT_QPA_FONTDIR",
)


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with the native-loader variables as they were at startup (absent if they were absent)."""

    out = {k: v for k, v in env.items() if k not in LOADER_VARS}
    out.update({k: STARTUP_ENV[k] for k in LOADER_VARS if k in STARTUP_ENV})
    return out


class ChildSession:
    """One child speaking the wire protocol; a context manager. `hello` holds the child's hello facts.

    argv: the full command (`[python, script]`, or a QEMU prefix + guest python + script).
    env: the child's environment (default: os.environ); the wire folder is prepended to its PYTHONPATH.
    name: how messages call the child ("MediaPipe", "x86-host: runtime").
    memory_limit_mb: kill the child when its RSS goes over this while a call runs.
    """

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        hello_timeout: float = 60.0,
        name: str = "child",
        memory_limit_mb: float | None = None,
    ) -> None:
        self.argv, self.name, self.hello_timeout = [str(a) for a in argv], name, hello_timeout
        base = child_env(os.environ if env is None else env)
        base["PYTHONPATH"] = os.pathsep.join(p for p in (str(WIRE_DIR), base.get("PYTHONPATH")) if p)
        self.env = base
        self.cwd = Path(cwd) if cwd is not None else None  # default: the session's work dir
        self.work: Path | None = (
            None  # set by start(): a temp dir for stderr and .npz files; close() removes it
        )
        self.memory_limit_kb = int(memory_limit_mb * 1024) if memory_limit_mb else None
        self.proc: subprocess.Popen[bytes] | None = None
        self.hello: dict[str, Any] = {}
        self._buf = b""
        self._next_id = 0

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> ChildSession:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> dict[str, Any]:
        """Start the child and wait for its hello; raises a ChildError (and cleans up) if it never comes."""
        _install_handlers()
        self.work = work = Path(tempfile.mkdtemp(prefix="edgecomp-child-"))
        try:  # any exit from here on (SIGTERM during Popen included) removes the work dir, kills the group
            # The child's own temp files (TensorFlow's autograph modules and converter dirs in the onnx2tf
            # child) go under the work dir: a child killed mid-run (timeout, SIGTERM) has no atexit of its
            # own, and close() removes the work dir, so nothing it made is left in the user's TMPDIR.
            (work / "tmp").mkdir()
            with open(work / "stderr.txt", "wb") as stderr:
                try:
                    with no_core_for_children():
                        self.proc = subprocess.Popen(
                            self.argv,
                            stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE,
                            stderr=stderr,
                            env={**self.env, "TMPDIR": str(work / "tmp")},
                            cwd=self.cwd or work,
                            start_new_session=True,
                        )
                except OSError as err:
                    raise ChildError(
                        f"{self.name} could not start: {err}", hint=f"command: {self.argv[0]}"
                    ) from None
            _LIVE.add(self.proc.pid)
            log.debug("started %s (pid %d): %s", self.name, self.proc.pid, " ".join(map(str, self.argv)))
            assert self.proc.stdin is not None
            os.set_blocking(self.proc.stdin.fileno(), False)
            reply = self._reply(0, self.hello_timeout, "starting")
        except BaseException:
            self.close()
            self.work = None
            raise
        hello = reply.get("result") if reply.get("ok") else None
        if not isinstance(hello, dict) or hello.get("protocol") != PROTOCOL:
            self.close()
            raise ChildProtocolError(f"{self.name} sent no valid hello: {str(reply)[:200]}", **self._kw(""))
        self.hello = hello
        return hello

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the child's whole process group and reap the child."""
        if self.proc is None:
            return
        if self.proc.pid in _LIVE:
            _kill_group(self.proc.pid)
            _LIVE.discard(self.proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    def close(self, grace_s: float = 5.0) -> None:
        """Ask for shutdown, give it `grace_s`, then kill the group (helpers it left behind included)."""
        if self.alive:
            with contextlib.suppress(ChildError, OSError):
                self._send({"id": -1, "op": "shutdown", "args": {}}, min(grace_s, 1.0), "shutting down")
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=grace_s)  # type: ignore[union-attr]
        self.kill()
        if self.proc is not None:
            for stream in (self.proc.stdin, self.proc.stdout):
                with contextlib.suppress(OSError):
                    stream.close()  # type: ignore[union-attr]
        if self.work is not None:
            shutil.rmtree(self.work, ignore_errors=True)

    # ------------------------------------------------------------ calls
    def call(
        self, op: str, args: dict[str, Any] | None = None, timeout: float = 120.0, what: str = ""
    ) -> Any:
        """Send one request and return its result; raises ChildFailed/ChildTimeout/ChildCrashed/..."""
        what = what or op
        if not self.alive:
            raise (
                self._died(what) if self.proc is not None else ChildProtocolError(f"{self.name} not started")
            )
        self._next_id += 1
        deadline = time.monotonic() + timeout
        self._send({"id": self._next_id, "op": op, "args": args or {}}, timeout, what)
        reply = self._reply(self._next_id, deadline - time.monotonic(), what, timeout)
        if reply.get("ok") is True:
            return reply.get("result")
        error = reply.get("error") or {}
        kind, detail = str(error.get("kind", "unknown")), str(error.get("message", error))
        raise ChildFailed(f"{self.name} failed while {what}: {detail[:400]}", kind, detail, **self._kw(what))

    def _send(self, message: dict[str, Any], timeout: float, what: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        data = (json.dumps(message) + "\n").encode()
        fd, deadline = self.proc.stdin.fileno(), time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_WRITE)
            while data:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._timeout(timeout, what)
                if not sel.select(left):
                    continue
                try:
                    data = data[os.write(fd, data) :]
                except BlockingIOError:
                    continue
                except (BrokenPipeError, OSError):
                    raise self._died(what) from None

    def _reply(self, rid: int, timeout: float, what: str, shown: float | None = None) -> dict[str, Any]:
        """The next line as JSON, within `timeout` (a partial line never blocks: bytes are buffered)."""
        assert self.proc is not None and self.proc.stdout is not None
        fd, deadline = self.proc.stdout.fileno(), time.monotonic() + max(timeout, 0.0)
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._timeout(shown if shown is not None else timeout, what)
                self._check_memory(what)
                wait = min(left, _POLL_S) if self.memory_limit_kb else left
                if sel.select(wait):
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        raise self._died(what)
                    self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            reply = json.loads(line)
        except ValueError:
            self.kill()
            raise ChildProtocolError(
                f"{self.name} broke the protocol: {line[:200]!r}", **self._kw(what)
            ) from None
        if not isinstance(reply, dict) or reply.get("id") != rid:
            self.kill()
            raise ChildProtocolError(f"{self.name} answered out of turn: {line[:200]!r}", **self._kw(what))
        return reply

    # ------------------------------------------------------------ failures
    def _check_memory(self, what: str) -> None:
        if self.memory_limit_kb is None or self.proc is None:
            return
        rss = _rss_kb(self.proc.pid)
        if rss is not None and rss > self.memory_limit_kb:
            self.kill()
            raise ChildMemoryLimit(
                f"{self.name} killed while {what}: RSS {rss // 1024} MB over the memory limit "
                f"{self.memory_limit_kb // 1024} MB",
                **self._kw(what),
            )

    def _timeout(self, timeout: float, what: str) -> ChildTimeout:
        self.kill()
        return ChildTimeout(
            f"{self.name} timed out after {timeout:.0f} s while {what} (killed)", **self._kw(what)
        )

    def _died(self, what: str) -> ChildCrashed:
        assert self.proc is not None
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # closed its fd but lives on: not a protocol child any more
            self.kill()
            rc = self.proc.returncode
        _LIVE.discard(self.proc.pid)
        _kill_group(self.proc.pid)  # helpers it started
        sig = None
        if rc is not None and rc < 0:
            try:
                sig = signal.Signals(-rc).name
            except ValueError:
                sig = f"signal {-rc}"
            message = f"{self.name} crashed with {sig} while {what}"
        else:
            message = f"{self.name} exited with code {rc} while {what}: {self.stderr_tail()}"
        return ChildCrashed(message, sig, rc, **self._kw(what))

    def _kw(self, what: str) -> dict[str, Any]:
        tail = self.stderr_tail()
        return {
            "hint": f"{self.name} stderr: {tail}" if tail else None,
            "what": what,
            "stderr": self.stderr(),
        }

    def stderr(self, limit: int = 20000) -> str:
        """The end of the child's stderr (native logs, tracebacks)."""
        try:
            with open(self.work / "stderr.txt", "rb") as fh:  # type: ignore[operator]
                fh.seek(max(0, fh.seek(0, os.SEEK_END) - limit))
                return fh.read().decode(errors="replace")
        except (OSError, TypeError):  # not started
            return ""

    def stderr_tail(self, lines: int = 2) -> str:
        keep = [ln.strip() for ln in self.stderr().splitlines() if ln.strip() and "INFO:" not in ln]
        return " | ".join(keep[-lines:])[:400]
