"""Host side of the runtime worker: a long-lived child in a device runtime, with a timeout and memory cap.

The child (devices/runner_child.py) imports the runtime once (2-3 s under QEMU) and then serves requests.
Whatever happens to it (segfault, abort, hang, memory blow-up) becomes a WorkerFailure naming the
signal or limit; it never takes edgecomp down.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from devices.runtimes import RuntimeEnv
from toolchain.base.errors import EdgecompError

CHILD_SCRIPT = Path(__file__).with_name("runner_child.py")
START_TIMEOUT_S = 120.0


class WorkerFailure(EdgecompError):
    """The runtime crashed, hung, ran out of memory or broke the protocol."""

    exit_code = 1


@dataclass
class RunResult:
    """One model run over a batch of queries inside the runtime."""

    error: str | None
    stage: str
    raw: np.ndarray | None = None
    input: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    peak_memory_kb: int | None = None  # peak RSS increase over the runtime after import
    latency_ms: float | None = None


def _rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _no_core() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # QEMU would otherwise write a core file


class RuntimeWorker:
    """A child Python in `env` running `script` (default: runner_child.py); use as a context manager."""

    def __init__(
        self,
        env: RuntimeEnv,
        timeout_s: float = 300.0,
        memory_limit_mb: float = 4096.0,
        script: Path | None = None,
    ) -> None:
        self.env, self.timeout_s, self.memory_limit_kb = env, timeout_s, int(memory_limit_mb * 1024)
        self.script = Path(script or CHILD_SCRIPT)
        self.tmp = Path(tempfile.mkdtemp(prefix="edgecomp-worker-"))
        self.proc: subprocess.Popen | None = None
        self.hello: dict[str, Any] = {}
        self._buf = b""
        self._n = 0

    def __enter__(self) -> RuntimeWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> dict[str, Any]:
        self._stderr = open(self.tmp / "stderr.txt", "w+b")  # noqa: SIM115 - lives as long as the child
        self.proc = subprocess.Popen(
            self.env.command(self.script),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=self.env.environ(),
            cwd=self.tmp,
            start_new_session=True,
            preexec_fn=_no_core,
        )
        self.hello = self._read(max(START_TIMEOUT_S, self.timeout_s), "starting the runtime")
        if self.hello.get("event") != "ready":
            raise self._fail(f"protocol error at start: {str(self.hello)[:200]}")
        return self.hello

    def request(self, msg: dict[str, Any], what: str) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            raise self._fail(f"runtime not running ({what})")
        try:
            self.proc.stdin.write((json.dumps(msg) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died(what) from None
        reply = self._read(self.timeout_s, what)
        if reply.get("ok") is not True:
            raise self._fail(f"protocol error while {what}: {str(reply.get('error', reply))[:200]}")
        return reply

    def probe(self, models: list[Path]) -> list[str | None]:
        """Try to create an interpreter for each model; None = loads, else the runtime's message."""
        reply = self.request({"cmd": "probe", "models": [str(m) for m in models]}, "probing op versions")
        return reply["errors"]

    def run(
        self,
        model: Path,
        feeds: Mapping[str, np.ndarray],
        threads: int = 1,
        xnnpack: bool = True,
        latency_runs: int = 0,
    ) -> RunResult:
        """Load `model`, invoke it once per row (batch 1, as on the phone), return raw outputs.

        `feeds` holds one array per model input, keyed by the input's tensor name."""
        self._n += 1
        inputs, outputs = self.tmp / f"in{self._n}.npz", self.tmp / f"out{self._n}.npz"
        np.savez(inputs, **{name: np.asarray(v) for name, v in feeds.items()})
        msg = {
            "cmd": "run",
            "model": str(Path(model).resolve()),
            "inputs": str(inputs),
            "outputs": str(outputs),
            "threads": threads,
            "xnnpack": xnnpack,
            "latency_runs": latency_runs,
        }
        reply = self.request(msg, f"running {Path(model).name}")
        if reply.get("error"):
            return RunResult(reply["error"], reply.get("stage", "load"))
        with np.load(outputs) as data:
            raw = data["raw"]
        before, peak = reply.get("rss_before_kb"), reply.get("peak_rss_kb")
        return RunResult(
            None,
            "done",
            raw,
            reply.get("input", {}),
            reply.get("output", {}),
            (peak - before) if before is not None and peak is not None else None,
            reply.get("latency_ms"),
        )

    def _read(self, timeout: float, what: str) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._kill()
                    raise self._fail(f"timed out after {timeout:.0f} s while {what} (killed)")
                rss = _rss_kb(self.proc.pid)
                if rss is not None and rss > self.memory_limit_kb:
                    self._kill()
                    raise self._fail(
                        f"killed while {what}: RSS {rss // 1024} MB over the memory limit "
                        f"{self.memory_limit_kb // 1024} MB"
                    )
                if sel.select(min(left, 0.05)):
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        raise self._died(what)
                    self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            raise self._fail(f"protocol error while {what}: {line[:200]!r}") from None

    def _died(self, what: str) -> WorkerFailure:
        assert self.proc is not None
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._kill()
            rc = self.proc.returncode
        if rc is not None and rc < 0:
            try:
                name = signal.Signals(-rc).name
            except ValueError:
                name = f"signal {-rc}"
            return self._fail(f"runtime crashed with {name} while {what}")
        return self._fail(f"runtime exited with code {rc} while {what}: {self.stderr_tail()}")

    def _fail(self, message: str) -> WorkerFailure:
        return WorkerFailure(f"{self.env.profile}: {message}", hint=f"runtime stderr: {self.stderr_tail()}")

    def stderr_tail(self, lines: int = 2) -> str:
        try:
            self._stderr.flush()
            text = (self.tmp / "stderr.txt").read_text(errors="replace")
        except (OSError, AttributeError):
            return ""
        keep = [ln.strip() for ln in text.splitlines() if ln.strip() and "INFO:" not in ln]
        return " | ".join(keep[-lines:])[:400]

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"cmd": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self._kill()
        if self.proc is not None:
            for stream in (self.proc.stdin, self.proc.stdout):
                with contextlib.suppress(OSError):
                    stream.close()
        with contextlib.suppress(OSError, AttributeError):
            self._stderr.close()
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)
