"""The int4 search's repair (toolchain/quantization/int4.py, steps 3 and 7): weights back to 8 bits in the
order of their damage alone per value, within a size budget, and, when the budget stops that short of the
targets, trades within the budget judged by the measured result.

The order is a proxy: each weight's damage is measured alone (the rest in 8 bits), and the repair takes
the worst per value first, which favours small weights. Measured on the MiniLM classifier (issue 26): a
repair scored on 500 val queries ended budget-limited at 98.6% agreement while a plan that fits the same
budget agrees on 99.4% of those queries. `trade_in_budget` tries, for each 4-bit weight with the most
damage alone, bringing it back to 8 bits and paying with the 8-bit weights of the least damage, and keeps
a trade when the measured scores improve.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from toolchain.base.errors import GateFailed
from toolchain.base.progress import Progress
from toolchain.base.types import WeightWidth

I8 = WeightWidth.INT8
Plan = dict[str, WeightWidth]
TRADES = 8  # 4-bit weights (most damage alone first) tried back in 8 bits when the budget binds


def _budget_cap(ev: Any, prefix: Callable[[int], Plan], n: int, max_bytes: int) -> int:
    """The longest prefix (of `n`) that the budget allows in 8 bits: the size grows with it, so bisect."""
    if ev.size(prefix(0)) > max_bytes:
        raise GateFailed(
            f"even with every weight that can in 4 bits the model is {ev.size(prefix(0)):,} bytes, over "
            f"the budget of {max_bytes:,} (quantization.int4.max_bytes)",
            hint="raise the budget, or trim the vocabulary first (a vocab_trim step)",
        )
    lo, hi = 0, n  # prefix(lo) fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if ev.size(prefix(mid)) <= max_bytes else (lo, mid - 1)
    return lo


def greedy(
    ev: Any,
    sites: dict[str, int],
    damage: dict[str, float],
    four: Plan,
    progress: Progress,
    max_bytes: int | None = None,
    eight: Plan | None = None,
) -> tuple[Plan, bool]:
    """All in 4 bits, then the worst damage per byte back to 8 in growing prefixes (no longer than the
    budget allows), then each 8 tried at 4. `damage` holds the sites that can go to 4 bits, `four` the
    4-bit width of each; the others stay in 8 (`eight`: each weight's 8-bit width, int8 by default). Also:
    whether the budget stopped the repair short."""
    order = sorted(damage, key=lambda w: -damage[w] / max(sites[w], 1))  # worst per value first
    base: Plan = eight or {w: I8 for w in sites}

    def prefix(k: int) -> Plan:
        return {**base, **{w: base[w] if w in order[:k] else four[w] for w in order}}

    cap = len(order) if max_bytes is None else _budget_cap(ev, prefix, len(order), max_bytes)
    plan, n = prefix(0), 0
    with progress.task("int4: repair", len(order)) as advance:
        while not ev.ok(ev.metrics(plan)) and n < cap:
            n = min(cap, max(1, 2 * n))
            plan = prefix(n)
            advance(1)
    limited = cap < len(order) and not ev.ok(ev.metrics(plan))
    for w in sorted(order[:n], key=lambda w: -sites[w]):  # the largest first: the most bytes back
        trial = {**plan, w: four[w]}
        if ev.ok(ev.metrics(trial)):
            plan = trial
    return plan, limited


def _score(ev: Any, plan: Plan) -> tuple[bool, float, float]:
    m = ev.metrics(plan)
    return ev.ok(m), m.agreement if m.agreement is not None else m.mean_cosine, m.mean_cosine


def trade_in_budget(
    ev: Any,
    plan: Plan,
    sites: dict[str, int],
    damage: Mapping[str, float],
    four: Plan,
    eight: Plan,
    max_bytes: int,
    progress: Progress,
) -> tuple[Plan, list[str]]:
    """Budget-limited: each of the TRADES 4-bit weights with the most damage alone back to its 8-bit width,
    paid for by 8-bit weights of the least damage going to 4 bits until the model fits; a trade is kept
    when it meets the targets or scores better (agreement, else cosine; then cosine). Also: the trades
    kept, as `weight <- the weights that paid for it`."""
    best, kept = _score(ev, plan), []
    wanted = sorted((w for w in damage if plan[w] == four[w]), key=lambda w: -damage[w])[:TRADES]
    with progress.task("int4: trade within the budget", len(wanted)) as advance:
        for w in wanted:
            advance(1)
            trial = {**plan, w: eight[w]}
            payers = sorted((v for v in damage if v != w and trial[v] == eight[v]), key=lambda v: damage[v])
            for v in payers:
                if ev.size(trial) <= max_bytes:
                    break
                trial[v] = four[v]
            if ev.size(trial) > max_bytes:
                continue
            got = _score(ev, trial)
            if got > best:
                paid = [v for v in damage if plan[v] != trial[v] and v != w]
                plan, best = trial, got
                kept.append(f"{w} <- {', '.join(paid)}")
            if best[0]:
                break
    return plan, kept
