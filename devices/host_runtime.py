"""The toolchain's own LiteRT in a child process: a runtime crash is an error, never the end of edgecomp.

LiteRT aborts on some models: a plain min/max int8 model with a float32-min attention mask dies with
SIGABRT inside invoke in ai_edge_litert 2.1.0, with XNNPACK and with builtin kernels alike
(tests/test_runtime_crash.py builds one in seconds), and tflite-runtime 2.14 aborts on plain int8 BERTs.
In edgecomp's own process that ended the command with no message. So every host run of a .tflite
(devices/hostrun.HostRunner: evaluation at convert, package parity, the mixed search and its speed table, a
.tflite teacher) happens in a `HostRuntime`: one persistent child Python, sys.executable itself (the same
ai_edge_litert 2.1.0 and numpy; devices/runtimes.toolchain_env), running devices/runner_child.py over the
one child protocol (devices/runner.py RuntimeWorker). A crash, a hang (HOST_TIMEOUT_S per call) or a
memory blow-up (HOST_MEMORY_LIMIT_MB) is a HostRuntimeFailed (exit 3, as docs/reference/errors.md says)
naming the runtime, the model and what it was doing, with a hint; the dead child is reaped, and the next
call on the same HostRuntime starts a new one. A model the runtime refuses (load, allocate, a kernel
error in invoke) is a HostRuntimeFailed too, and the child lives on.

Several HostRunners can share one HostRuntime (`host=`): the mixed search's candidates are each a load,
their rows and a free in one child, and the feeds go to it once (one .npz per distinct content, found by
digest; the child keeps the arrays it read), so hundreds of candidates never re-send the queries. A
closed runner's interpreter is freed by the next load (no extra round trip); a bytes model is written to
the child's work dir for its load and deleted once loaded. The child starts on first use and ends with
close() or the `with` block (a forgotten HostRuntime closes when collected; atexit kills any child).

Costs, measured on this shared 2-core machine (load average 4-5 from other jobs): child start 0.13 s
unloaded, 0.17-0.27 s loaded (Python + numpy + ai_edge_litert import); shutdown 10-20 ms (the child skips
interpreter teardown, which took 40-170 ms); an empty round trip 0.2 ms, a load 0.7 ms. Per mixed-search
candidate on 500 queries (load, 2 calls of rows, outputs read back): the example's model 5.4 -> 8.4 ms
median, the BERT fixture's 84 -> 87-89 ms, outputs equal. So a convert pays the child start once (the
example's evaluate stage 0.4-0.55 s -> 0.7-1.25 s under that load); whole builds were within the noise
(CPU seconds: example convert 14.3-15.8 before, 14.7-16.2 after; --quantize mixed 15.0-18.5 vs
16.1-19.4; the BERT fixture with --quantize mixed 27.8-36.8 vs 25.1-37.4, its candidate count varying
29-122 with the timed speed table).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from devices.runner import RuntimeWorker, WorkerFailure
from devices.runtimes import toolchain_env
from toolchain.base.child import ChildCrashed, ChildFailed, ChildMemoryLimit, ChildTimeout
from toolchain.base.errors import EdgecompError

HOST_TIMEOUT_S = 300.0  # per call: a chunk of rows, a load or one timing request; a hang, not a slow model
HOST_MEMORY_LIMIT_MB = 8192.0  # the child is killed above this RSS
CRASH_HINT = (
    "a bug in LiteRT that this model triggers, not in edgecomp: try another quantization (quantization.mode "
    "mixed or dynamic); min/max int8 ranges on an attention mask are a known cause"
)


class HostRuntimeFailed(EdgecompError):
    """The toolchain's ai_edge_litert crashed, hung, ran out of memory or refused the model (in its child)."""

    exit_code = 3


def _digest(named: Mapping[str, np.ndarray]) -> str:
    h = hashlib.blake2b(digest_size=20)
    for name in sorted(named):
        a = np.ascontiguousarray(named[name])
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.data)
    return h.hexdigest()


class HostRuntime:
    """One child Python running the toolchain's ai_edge_litert, shared by the HostRunners given it as
    `host`; started on first use, ended by close() (or the `with` block)."""

    def __init__(
        self, timeout_s: float = HOST_TIMEOUT_S, memory_limit_mb: float = HOST_MEMORY_LIMIT_MB
    ) -> None:
        from importlib.metadata import version

        self.timeout_s, self.memory_limit_mb = timeout_s, memory_limit_mb
        self.version = version("ai-edge-litert")
        self.generation = 0  # child starts so far: a handle from an earlier child is stale
        self._worker: RuntimeWorker | None = None
        self._feeds: dict[str, str] = {}  # content digest -> .npz in the child's work dir
        self._n = 0
        self.released: list[int] = []  # handles closed runners left: freed by the next load (no round trip)

    def __enter__(self) -> HostRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    @property
    def worker(self) -> RuntimeWorker:
        """The running child (started now if there is none)."""
        if self._worker is None:
            worker = RuntimeWorker(toolchain_env(), self.timeout_s, self.memory_limit_mb)
            try:
                worker.start()
            except WorkerFailure as err:
                raise HostRuntimeFailed(
                    f"ai_edge_litert {self.version} (toolchain child) could not start: {err.message}",
                    hint=err.hint,
                ) from None
            self._worker, self.generation = worker, self.generation + 1
        return self._worker

    @property
    def proc(self) -> Any:
        """The child process, None when none runs (tests check that it is reaped)."""
        return self._worker.proc if self._worker is not None else None

    def peak_mb(self) -> int | None:
        """The running child's peak resident memory so far (Linux VmHWM), None when none runs or unknown."""
        proc = self.proc
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text() if proc is not None else ""
        except OSError:
            return None
        kb = [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")]
        return round(kb[0] / 1024) if kb else None

    def path(self, stem: str, suffix: str) -> Path:
        """A new file name in the child's work dir (removed with it at close)."""
        self._n += 1
        return self.worker.tmp / f"{stem}{self._n}{suffix}"

    def feeds_file(self, named: Mapping[str, np.ndarray]) -> str:
        """The .npz holding these arrays, written on first sight of their content."""
        key = _digest(named)
        if key not in self._feeds:
            path = self.path("feeds", ".npz")
            np.savez(path, **named)
            self._feeds[key] = str(path)
        return self._feeds[key]

    def call(self, op: str, args: dict[str, Any], what: str) -> Any:
        """One op of the child; a WorkerFailure that killed it also ends this child (the next call starts
        a new one)."""
        worker = self.worker
        try:
            return worker.call(op, args, what)
        except WorkerFailure:
            if not worker.session.alive:
                self.close()
            raise

    def failure(self, err: WorkerFailure, runtime: str, name: str, what: str) -> HostRuntimeFailed:
        """One line naming the runtime, what happened and the model, from the worker's failure."""
        cause = err.cause
        lines = [ln.strip() for ln in getattr(cause, "stderr", "").splitlines() if ln.strip()]
        tail = " | ".join([ln for ln in lines if "INFO:" not in ln][-2:])[:300]
        hint: str | None = CRASH_HINT + (f"; its stderr: {tail}" if tail else "")
        if isinstance(cause, ChildCrashed):
            event = f"crashed with {cause.signal}" if cause.signal else f"exited with code {cause.returncode}"
        elif isinstance(cause, ChildTimeout):
            event, hint = f"hung (no answer within {self.timeout_s:.0f} s, killed)", None
        elif isinstance(cause, ChildMemoryLimit):
            event, hint = f"ran out of memory (over {self.memory_limit_mb:.0f} MB, killed)", None
        elif isinstance(cause, ChildFailed) and cause.kind in ("load", "allocate"):
            detail = " ".join(cause.detail.split())[:300]
            hint = "the model needs what this runtime lacks (an op, an op version or a custom op)"
            return HostRuntimeFailed(f"{runtime} could not {cause.kind} {name}: {detail}", hint)
        elif isinstance(cause, ChildFailed) and cause.kind == "invoke":
            detail = " ".join(cause.detail.split())[:300]
            hint = "a kernel refused these inputs (e.g. ids beyond the embedding table): check the tokenizer"
            return HostRuntimeFailed(f"{runtime} failed while {what}: {detail}", hint)
        else:
            event, hint = f"failed ({' '.join(err.message.split())[:300]})", None
        return HostRuntimeFailed(f"{runtime} {event} while {what}", hint)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
        self._worker = None
        self._feeds.clear()
        self.released.clear()
