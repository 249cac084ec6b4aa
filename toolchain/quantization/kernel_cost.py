"""`quantization.int4.max_kernel_cost`: an int4 plan whose FULLY_CONNECTED kernels run no slower than
dynamic int8's, judged from a fixed per-runtime table (devices/kernels.py FC_KERNEL_COST), never timed.

A plan's cost is the FULLY_CONNECTED weights' kernel costs weighted by their sizes (a dense layer's
multiply-accumulates per token are its weight count), over the same weights all in dynamic int8's hybrid
kernel: 1.0 runs as fast as `-Q dynamic`'s layers, below is faster. On XNNPACK per-channel int4 (QC4W) is
0.95, blockwise int4 with 128 inputs per scale 1.0, 64 1.13, 32 1.36, weight-only int8 (float math) 3.9:
so a plan may keep a few blockwise weights where they cut the damage most, paid for by per-channel ones.
With several target devices each form costs its highest entry; a device whose runtime has no entry is not
judged (the table holds measured runtimes only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from devices.kernels import kernel_cost
from devices.profiles.schema import get_profile
from toolchain.base.errors import GateFailed
from toolchain.base.types import WeightWidth

FC = "FULLY_CONNECTED"


def fc_costs(devices: Sequence[str]) -> dict[WeightWidth, float]:
    """Each weight form's FULLY_CONNECTED cost: the highest over the target devices that have a table."""
    profiles = [get_profile(d) for d in devices]
    out: dict[WeightWidth, float] = {}
    for width in WeightWidth:
        known = [c for p in profiles if (c := kernel_cost(p, width)) is not None]
        if known:
            out[width] = max(known)
    if WeightWidth.INT8_HYBRID not in out:
        names = ", ".join(f"{p.name} ({p.runtime_label})" for p in profiles)
        raise GateFailed(
            f"quantization.int4.max_kernel_cost: no kernel cost table for the runtimes of {names}",
            hint="drop max_kernel_cost, or target a profile whose runtime is measured (e.g. x86-host)",
        )
    return out


def plan_cost(
    plan: Mapping[str, WeightWidth], ops: Mapping[str, str], params: Mapping[str, int], costs: Mapping
) -> float:
    """The plan's FULLY_CONNECTED time over all of them in the hybrid int8 kernel (1.0: dynamic's)."""
    fc = [w for w in plan if ops[w] == FC]
    base = sum(params[w] for w in fc) * costs[WeightWidth.INT8_HYBRID]
    return sum(params[w] * costs[plan[w]] for w in fc) / base if base else 0.0


def cap_plan(
    plan: Mapping[str, WeightWidth],
    by_width: Mapping[str, Mapping[WeightWidth, float]],
    ops: Mapping[str, str],
    params: Mapping[str, int],
    costs: Mapping[WeightWidth, float],
    cap: float,
) -> dict[str, WeightWidth]:
    """`plan` with 4-bit FULLY_CONNECTED weights moved to cheaper 4-bit forms (per channel instead of
    blockwise) until it costs at most `cap`: each move the one that adds the least damage alone
    (`by_width`: each weight's damage per form) per unit of time saved. Deterministic (ties by name)."""
    plan = dict(plan)
    while plan_cost(plan, ops, params, costs) > cap:
        moves = [
            ((d - forms[plan[w]]) / ((costs[plan[w]] - costs[c]) * params[w]), w, c)
            for w, forms in sorted(by_width.items())
            if ops[w] == FC and plan[w] in forms
            for c, d in forms.items()
            if c in costs and costs[c] < costs[plan[w]]
        ]
        if not moves:
            break  # every 4-bit weight in its cheapest form: the 8-bit ones decide
        _, w, c = min(moves)
        plan[w] = c
    return plan
