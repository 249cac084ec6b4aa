"""Where trials run: local worker processes (default) or Ray tasks on an existing cluster.

Either way a trial is the same child process (`python -m toolchain.search.worker`), so a crash, a kill or an
out-of-memory in one trial fails that trial only, and the local and Ray runs build identical models. Ray
schedules the tasks (one CPU each); edgecomp adds no scheduler of its own. The Ray side (joining the
cluster, the task that runs a child and kills its group when cancelled) is toolchain/base/ray_cluster.py,
shared with the teacher-log scoring.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from toolchain.base import ray_cluster
from toolchain.base.child import child_env
from toolchain.base.errors import pending_interrupt
from toolchain.search.trial import TrialResult

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding toolchain/, converters/, devices/


@dataclass(frozen=True)
class TrialJob:
    number: int
    request: Path  # <trial dir>/request.json


@dataclass(frozen=True)
class TrialOutcome:
    number: int
    result: TrialResult | None  # None: the trial failed
    error: str | None = None


def worker_command(request: Path) -> tuple[list[str], dict[str, str]]:

    env = child_env(os.environ)  # the native-loader variables edgecomp started with
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return [sys.executable, "-m", "toolchain.search.worker", str(request)], env


def outcome(job: TrialJob, code: int, stderr: str) -> TrialOutcome:
    result_path = job.request.parent / "result.json"
    if code == 0 and result_path.is_file():
        return TrialOutcome(job.number, TrialResult.model_validate_json(result_path.read_text()))
    why = f"killed by signal {-code}" if code < 0 else f"exit {code}"
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    return TrialOutcome(job.number, None, f"{why}: {last}" if last else why)


class Executor(Protocol):
    slots: int

    def run_batch(self, jobs: list[TrialJob]) -> list[TrialOutcome]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """`--workers N` child processes on this machine, each in its own process group; `close` (also on
    Ctrl-C or SIGTERM, which unwind through it) kills the groups still running instead of waiting."""

    def __init__(self, workers: int) -> None:
        self.slots = workers
        self._pool = ThreadPoolExecutor(max_workers=workers)
        self._running: set[subprocess.Popen] = set()

    def _one(self, job: TrialJob) -> TrialOutcome:
        cmd, env = worker_command(job.request)
        log = job.request.parent / "worker.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen(
                cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
            )
            self._running.add(proc)
            code = proc.wait()
            self._running.discard(proc)
        return outcome(job, code, log.read_bytes()[-400:].decode("utf-8", "replace"))

    def run_batch(self, jobs: list[TrialJob]) -> list[TrialOutcome]:
        return list(self._pool.map(self._one, jobs))

    def close(self) -> None:
        for proc in list(self._running):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self._pool.shutdown(wait=True)


class RayExecutor:
    """Trials as Ray tasks on the cluster at `address` (`auto`, `ray://host:10001`, or host:port)."""

    def __init__(self, address: str, workers: int) -> None:
        self._ray = ray_cluster.connect(address, "--ray-address")
        self.slots = workers
        self._pending: list[Any] = []
        self._task = ray_cluster.command_task(self._ray)

    def run_batch(self, jobs: list[TrialJob]) -> list[TrialOutcome]:
        refs = []
        for job in jobs:
            cmd, env = worker_command(job.request)
            refs.append(self._task.remote(cmd, env, str(Path.cwd()), str(job.request.parent / "worker.log")))
        self._pending = refs
        ray_cluster.wait_all(self._ray, refs)
        out = []
        for job, ref in zip(jobs, refs, strict=True):
            try:
                code, stderr = self._ray.get(ref)
            except Exception as err:  # the Ray worker itself died: that trial failed, the search goes on
                interrupted = pending_interrupt()  # or Ctrl-C arrived inside ray.get, which wraps it
                if interrupted is not None:
                    raise interrupted from None
                code, stderr = 1, f"ray task failed: {err.__class__.__name__}"
            out.append(outcome(job, code, stderr))
        self._pending = []
        return out

    def close(self) -> None:
        """Ctrl-C or SIGTERM mid-batch: cancel the running tasks (each kills its trial's process group) and
        wait for them to end before leaving the cluster, so no trial keeps building after the search."""
        pending, self._pending = self._pending, []
        ray_cluster.cancel_and_wait(self._ray, pending)


def make_executor(workers: int, ray_address: str | None) -> Executor:
    return RayExecutor(ray_address, workers) if ray_address else LocalExecutor(workers)
