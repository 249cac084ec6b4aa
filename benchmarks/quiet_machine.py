"""Benchmark checks that time something: required only when the machine is declared quiet.

A check of a measured duration (a per-op sum against a whole invoke, a search finishing within its budget)
says something about this code only when nothing else competes for the CPU; on a loaded machine it fails
for the load. Such a check is always measured and printed, but it decides the bench's exit code only with
`EDGECOMP_BENCH_QUIET=1` (`make bench-quiet`); otherwise its row reads "needs a quiet machine" next to the
value. Checks of bytes, accuracy, agreement and identical trials are never labelled so: they do not move
with load, and they always decide.
"""

from __future__ import annotations

import os

QUIET = os.environ.get("EDGECOMP_BENCH_QUIET") == "1"
LABEL = "needs a quiet machine (EDGECOMP_BENCH_QUIET=1)"


def timed_result(ok: bool) -> str:
    """PASS / FAIL on a declared-quiet machine; else the label (with what it would have been)."""
    if QUIET:
        return "PASS" if ok else "FAIL"
    return f"{'pass' if ok else 'fail'}: {LABEL}"


def decides(result: str) -> bool:
    """Whether a row's result counts against the exit code (a labelled row does not)."""
    return result in ("PASS", "FAIL")
