"""Host side of the runtime worker: a long-lived child in a device runtime, with a timeout and memory cap.

The child (devices/runner_child.py) imports the runtime once (2-3 s under QEMU) and then serves requests
over the one child protocol (toolchain/base/child.py). Whatever happens to it (segfault, abort, hang,
memory blow-up) becomes a WorkerFailure naming the signal or limit; it never takes edgecomp down. A model
the runtime refuses is not a failure of the worker: it is a RunResult with the stage and the message.
The same worker in the toolchain's own Python (devices/runtimes.toolchain_env) is devices/host_runtime.py's
HostRuntime: it drives the child's handle ops (load, invoke, time, free) through `call`, whose
WorkerFailure carries the ChildError as `cause` (which signal, a timeout, the memory limit, a refusal).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from devices.runtimes import RuntimeEnv
from toolchain.base.child import ChildError, ChildFailed, ChildSession
from toolchain.base.errors import EdgecompError

if TYPE_CHECKING:
    import subprocess

CHILD_SCRIPT = Path(__file__).with_name("runner_child.py")
START_TIMEOUT_S = 120.0
CHUNK_ROWS = 64  # rows per run call: the worker timeout applies to each call (see RuntimeWorker.run)
RUN_STAGES = ("load", "allocate", "invoke")  # failure kinds that mean "the runtime refused the model"


class WorkerFailure(EdgecompError):
    """The runtime crashed, hung, ran out of memory or broke the protocol; `cause` is the ChildError
    (ChildCrashed names the signal, ChildTimeout, ChildMemoryLimit, ChildFailed the refusal's kind)."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, cause: ChildError | None = None) -> None:
        super().__init__(message, hint)
        self.cause = cause


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


class RuntimeWorker:
    """A child Python in `env` running `script` (default: runner_child.py); use as a context manager."""

    def __init__(
        self,
        env: RuntimeEnv,
        timeout_s: float = 300.0,
        memory_limit_mb: float = 4096.0,
        script: Path | None = None,
    ) -> None:
        self.env, self.timeout_s = env, timeout_s
        self.session = ChildSession(
            env.command(Path(script or CHILD_SCRIPT)),
            env.environ(),
            hello_timeout=max(START_TIMEOUT_S, timeout_s),
            name=f"{env.profile}: runtime",
            memory_limit_mb=memory_limit_mb,
        )
        self.hello: dict[str, Any] = {}
        self._n = 0

    @property
    def tmp(self) -> Path:
        """The child's work dir (inputs/outputs .npz, stderr); exists while the worker runs."""
        assert self.session.work is not None, "the worker is not running"
        return self.session.work

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        """The child process (tests check that it is reaped)."""
        return self.session.proc

    def __enter__(self) -> RuntimeWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> dict[str, Any]:
        try:
            self.hello = self.session.start()
        except ChildError as err:
            raise WorkerFailure(err.message, err.hint, err) from None
        return self.hello

    def close(self) -> None:
        self.session.close()

    def _call(self, op: str, args: dict[str, Any], what: str) -> Any:
        try:
            return self.session.call(op, args, self.timeout_s, what)
        except ChildFailed as err:
            if op == "run" and err.kind in RUN_STAGES:
                raise
            raise WorkerFailure(err.message, err.hint, err) from None
        except ChildError as err:
            raise WorkerFailure(err.message, err.hint, err) from None

    def call(self, op: str, args: dict[str, Any], what: str) -> Any:
        """Any op of the child (runner_child.py's docstring lists them) under the worker's timeout and
        memory limit; every failure, a refusal included, is a WorkerFailure whose `cause` says which."""
        try:
            return self.session.call(op, args, self.timeout_s, what)
        except ChildError as err:
            raise WorkerFailure(err.message, err.hint, err) from None

    def probe(self, models: list[Path]) -> list[str | None]:
        """Try to create an interpreter for each model; None = loads, else the runtime's message."""
        return self._call("probe", {"models": [str(m) for m in models]}, "probing op versions")["errors"]

    def run(
        self,
        model: Path,
        feeds: Mapping[str, np.ndarray],
        threads: int = 1,
        xnnpack: bool = True,
        latency_runs: int = 0,
        chunk_rows: int = CHUNK_ROWS,
    ) -> RunResult:
        """Load `model` once, invoke it once per row (batch 1, as on the phone), return raw outputs.

        `feeds` holds one array per model input, keyed by the input's tensor name. The rows go to the
        child in chunks of `chunk_rows`, each call under the worker's timeout: the timeout guards against a
        hang, not against a slow emulated CPU (a 2-layer BERT ran 748 queries in 53 s on emulated armv7
        but needed over 300 s on emulated Cortex-A72 with tflite-runtime 2.14, so one call for the whole
        split was killed as if it had hung). The first chunk loads the model; the later ones ask the child
        to reuse that interpreter, so every row of the run meets the same one. Peak memory is the largest
        of the chunks' (the first one's, which includes the load)."""
        rows = len(next(iter(feeds.values()))) if feeds else 0
        starts = list(range(0, max(rows, 1), max(1, chunk_rows)))
        parts, result = [], None
        for i, start in enumerate(starts):
            chunk = {name: np.asarray(v)[start : start + chunk_rows] for name, v in feeds.items()}
            runs = latency_runs if i == len(starts) - 1 else 0
            result = self._run_once(model, chunk, threads, xnnpack, runs, reuse=i > 0)
            if result.error:
                return result
            parts.append(result)
        assert result is not None
        peaks = [p.peak_memory_kb for p in parts if p.peak_memory_kb is not None]
        return RunResult(
            None,
            "done",
            np.concatenate([p.raw for p in parts]) if parts else result.raw,
            result.input,
            result.output,
            max(peaks) if peaks else None,
            result.latency_ms,
        )

    def _run_once(
        self,
        model: Path,
        feeds: Mapping[str, np.ndarray],
        threads: int,
        xnnpack: bool,
        latency_runs: int,
        reuse: bool,
    ) -> RunResult:
        self._n += 1
        inputs, outputs = self.tmp / f"in{self._n}.npz", self.tmp / f"out{self._n}.npz"
        np.savez(inputs, **{name: np.asarray(v) for name, v in feeds.items()})
        args = {
            "model": str(Path(model).resolve()),
            "inputs": str(inputs),
            "outputs": str(outputs),
            "threads": threads,
            "xnnpack": xnnpack,
            "latency_runs": latency_runs,
            "reuse": reuse,
        }
        try:
            reply = self._call("run", args, f"running {Path(model).name}")
        except ChildFailed as err:  # the runtime refused the model at this stage
            return RunResult(err.detail, err.kind)
        with np.load(outputs) as data:
            raw = data["raw"]
        inputs.unlink(missing_ok=True)
        outputs.unlink(missing_ok=True)
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
