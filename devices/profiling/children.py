"""The profiler's children (profiler_child.py, slice_child.py) seen from the host: one call per process.

Each measurement repeats in a fresh process on purpose (a process's speed drifts as it settles), so a
session here lives for one call. The children run in the runtime's own environment over the one child
protocol (toolchain/base/child.py); a native crash, a hang or an `ok: false` reply becomes a ProfilerError
that says what to do, and edgecomp itself is never touched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from toolchain.base.child import ChildCrashed, ChildError, ChildFailed, ChildSession, ChildTimeout
from toolchain.base.errors import EdgecompError

HERE = Path(__file__).resolve().parent
CHILD_TIMEOUT_S = 600.0
CRASH_ATTEMPTS = 2  # a measurement child killed by a signal is started once more


class ProfilerError(EdgecompError):
    """Profiling could not run (the runtime crashed, lacks an op, or its interface changed)."""

    exit_code = 3


def run_child(python: Path, script: str, op: str, request: dict[str, Any], what: str) -> dict[str, Any]:
    """One `op` call to a fresh child `script` in the runtime's `python`; failures become ProfilerErrors.

    A child killed by a signal is started once more (a measurement is a fresh process anyway); a second
    crash is reported. The crashes that led to this retry were edgecomp's own: the C-API child wrote a
    dynamic-length model's rows past its [1, 1] input buffer (fixed: profiler_child.fit_inputs); none is
    known since, and a retried crash still fails on the second attempt rather than hiding."""
    for attempt in range(CRASH_ATTEMPTS):
        try:
            return _call(python, script, op, request, what)
        except ChildCrashed as err:
            if not err.signal or attempt + 1 == CRASH_ATTEMPTS:
                raise _crash_error(err, what) from None
    raise AssertionError("unreachable")


def _call(python: Path, script: str, op: str, request: dict[str, Any], what: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    argv = [str(python), str(HERE / script)]
    try:
        with ChildSession(argv, env, hello_timeout=CHILD_TIMEOUT_S, name=f"the {what} child") as child:
            return child.call(op, request, CHILD_TIMEOUT_S, what)
    except ChildCrashed:
        raise
    except ChildTimeout:
        raise ProfilerError(f"{what} timed out after {CHILD_TIMEOUT_S:.0f} s", hint="lower --runs") from None
    except ChildFailed as err:
        raise _child_error(err, what) from None
    except ChildError as err:
        raise ProfilerError(f"the {what} child failed: {err.message}", hint="EDGECOMP_DEBUG=1") from None


def _crash_error(err: ChildCrashed, what: str) -> ProfilerError:
    if err.signal:
        return ProfilerError(
            f"the {what} child process crashed ({err.signal}) inside the runtime's native library "
            f"({CRASH_ATTEMPTS} attempts)",
            hint="edgecomp is unaffected; try --method slice, or report the runtime version",
        )
    tail = (err.stderr.strip().splitlines() or ["no output"])[-1][:240]
    return ProfilerError(f"the {what} child failed: {tail}", hint="EDGECOMP_DEBUG=1 for details")


def _child_error(err: ChildFailed, what: str) -> ProfilerError:
    missing = [
        ln.strip()
        for ln in err.stderr.splitlines()
        if "Didn't find op" in ln or "unresolved custom op" in ln or "unsupported" in ln.lower()
    ]
    if missing or err.kind in ("compile", "load") and "op" in err.detail.lower():
        detail = (missing or [err.detail])[0][:200]
        return ProfilerError(
            f"the runtime cannot run this model: {detail}",
            hint="re-convert with ops/versions this runtime supports, or pick another --device",
        )
    if err.kind == "interface":
        return ProfilerError(
            f"LiteRT C-API self-test failed: {err.detail}",
            hint="this profiler needs ai-edge-litert 2.3.x; use --method slice meanwhile",
        )
    return ProfilerError(f"{what} failed: {err.detail[:240]}", hint="EDGECOMP_DEBUG=1 for details")
