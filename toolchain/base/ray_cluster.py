"""Joining a Ray cluster and running edgecomp child processes as Ray tasks: one way for every caller.

Search trials (toolchain/search/execute.py) and teacher-log scoring (toolchain/steps/log_scoring.py) both
run a `python -m toolchain...` child per task. What they share lives here:
- `connect`: host:port and ray://host:port are probed first (Ray itself retries an unreachable GCS for
  minutes), then `ray.init`; any failure is one EdgecompError naming the address and how to start a head;
- `command_task`: the Ray task that runs one child command in its own process group and waits for it in
  slices, so `ray.cancel`'s KeyboardInterrupt lands between two slices and kills the child's whole group:
  a cancelled or interrupted run leaves no child working on the cluster;
- `cancel_and_wait`: cancel the tasks still running (never a finished one), wait (bounded) until each
  has killed its child, leave the cluster.
The task function is built inside `command_task` so that Ray pickles it by value: a cluster worker needs
only Python and this checkout on a shared path, not edgecomp installed. Ray is imported only here.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

from toolchain.base.errors import EdgecompError

PROBE_TIMEOUT_S = 5.0
WAIT_SLICE_S = 0.5  # ray.wait and the task's child wait return to Python this often: signals get handled
CANCEL_WAIT_S = 30.0  # a cancelled task kills its child at once; this only bounds a dead cluster
START_HINT = (
    "start one with `ray start --head` and pass the address it prints (auto, host:6379 or ray://host:10001)"
)


def check_reachable(address: str) -> None:
    """Fail fast on an address nothing listens at (Ray would retry for minutes); `auto` is not probed."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise EdgecompError(
            f"--ray-address {address!r} is not auto, host:port or ray://host:port",
            hint="e.g. --ray-address auto (the cluster started on this machine) or ray://head:10001",
        )
    try:
        socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as err:
        raise EdgecompError(
            f"cannot reach a Ray cluster at {address!r}: {err.strerror or err}", hint=START_HINT
        ) from None


def connect(address: str, needed_for: str) -> Any:
    """The `ray` module, joined to the cluster at `address`; `needed_for` names the feature in errors."""
    try:
        import ray  # reason: Ray is an optional extra (edgecomp[search]); imported only when asked for
    except ImportError:
        raise EdgecompError(
            f"{needed_for} needs Ray, which is not installed", hint="pip install 'edgecomp[search]'"
        ) from None
    check_reachable(address)
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    except Exception as err:  # ConnectionError, RuntimeError, ValueError: all mean "no cluster there"
        raise EdgecompError(
            f"cannot reach a Ray cluster at {address!r}: {str(err).splitlines()[0][:160]}", hint=START_HINT
        ) from None
    return ray


def command_task(ray: Any) -> Any:
    """A Ray remote function `(cmd, env, cwd, log) -> (exit code, last 400 bytes of the log)`; one CPU."""
    slice_s = WAIT_SLICE_S

    def run_command(cmd: list[str], env: dict[str, str], cwd: str, log: str) -> tuple[int, str]:
        import os as o
        import signal as sg
        import subprocess as sp
        from pathlib import Path as P

        with open(log, "wb") as err:
            proc = sp.Popen(cmd, env=env, cwd=cwd, stdout=sp.DEVNULL, stderr=err, start_new_session=True)
            try:
                while True:  # in slices: ray.cancel's KeyboardInterrupt lands between two, not after
                    try:  # the child (a bare wait blocked it until the cancel timeout)
                        code = proc.wait(timeout=slice_s)
                        break
                    except sp.TimeoutExpired:
                        continue
            except BaseException:  # ray.cancel (KeyboardInterrupt in the task): the child's group goes too
                o.killpg(proc.pid, sg.SIGKILL)
                proc.wait()
                raise
        return code, P(log).read_bytes()[-400:].decode("utf-8", "replace")

    return ray.remote(num_cpus=1, max_retries=0)(run_command)


def wait_all(ray: Any, refs: list[Any], on_slice: Any = None) -> None:
    """Wait for every task in slices (ray.get blocks in native code, where Ctrl-C is not handled)."""
    waiting = list(refs)
    while waiting:
        _, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=WAIT_SLICE_S)
        if on_slice is not None:
            on_slice()


def cancel_unfinished(ray: Any, refs: list[Any]) -> None:
    """Cancel the tasks still running (each kills its child's group) and wait (bounded) until they end.

    A task whose result is already in is never cancelled: in Ray 2.x a cancel that meets a finished task's
    reply aborts the driver (`Check failed: it != submissible_tasks_.end() Tried to complete task that was
    not pending`, ray-project/ray#54846). A clean-clone suite run hit it after every scoring task had ended;
    cancelling 4 finished tasks in a loop hits it within 50-160 rounds here."""
    if refs:
        with contextlib.suppress(Exception):
            _, refs = ray.wait(refs, num_returns=len(refs), timeout=0)
    for ref in refs:
        with contextlib.suppress(Exception):
            ray.cancel(ref)
    if refs:
        with contextlib.suppress(Exception):
            ray.wait(refs, num_returns=len(refs), timeout=CANCEL_WAIT_S)


def cancel_and_wait(ray: Any, refs: list[Any]) -> None:
    """`cancel_unfinished`, then leave the cluster."""
    cancel_unfinished(ray, refs)
    ray.shutdown()
