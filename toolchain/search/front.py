"""The Pareto front of a finished search and the one model it recommends."""

from __future__ import annotations

from collections.abc import Sequence

from toolchain.search.study import TrialRecord
from toolchain.search.trial import OBJECTIVES


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """a is no worse than b on every objective (all minimized) and better on one."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def objectives(r: TrialRecord, keys: Sequence[str] = OBJECTIVES) -> list[float]:
    assert r.metrics is not None
    return [r.metrics.objective(k) for k in keys]


def pareto_front(records: Sequence[TrialRecord], keys: Sequence[str] = OBJECTIVES) -> list[TrialRecord]:
    """Feasible complete trials that no other feasible trial dominates on `keys` (by trial number)."""
    ok = [r for r in records if r.feasible]
    return [r for r in ok if not any(dominates(objectives(o, keys), objectives(r, keys)) for o in ok)]


def choose(front: Sequence[TrialRecord]) -> TrialRecord | None:
    """The smallest download on the front that passed device validation (when validated); ties go to the
    smaller accuracy drop, then the lower op cost (all deterministic)."""
    ok = [r for r in front if r.validation is None or r.validation.passed]
    if not ok:
        return None
    return min(ok, key=lambda r: (objectives(r), r.number))
