"""`edgecomp search` on the shopping example next to the shipped presets, on (gzip size, accuracy).

1. Every preset (toolchain/presets.py) is built from the example recipe with the same gate (the recipe's
   evaluation section) and evaluated on the test split, as `edgecomp convert --preset` does.
2. A fixed-trials search (default 30, seed 0, 2 local workers, device x86-host, --max-accuracy-drop from the
   recipe's gate) chooses on the val split only.
3. The search's (gzip, val accuracy) front members are rebuilt from their recipes, i.e. evaluated on the test
   split exactly like the presets (the test split is read here for the report, after the search is over).
4. Acceptance: one rebuilt front member dominates or equals every preset that passed the gate on
   (gzip bytes, test accuracy); its rebuild has the trial's model sha256; 30 trials within 15 minutes.
Writes benchmarks/results/search.{json,md}.

    python benchmarks/bench_search.py [--trials 30] [--workers 2] [--presets int8,prune80-int8,...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXAMPLE = ROOT / "examples" / "shopping_intent"
OUT = ROOT / "benchmarks" / "results"
BUDGET_S = 15 * 60


def build_presets(base, names: list[str], build_root: Path) -> dict[str, dict]:
    from toolchain.base.errors import BuildRejected
    from toolchain.pipeline import build
    from toolchain.recipe import apply_overrides, apply_preset

    rows = {}
    for name in names:
        recipe = apply_overrides(
            apply_preset(base, name), {"name": f"preset-{name}", "output.dir": str(build_root)}
        )
        try:
            report, passed = build(recipe).report, True
        except BuildRejected as err:
            report, passed = err.report, False
        rows[name] = _row(report, passed)
    return rows


def _row(report: dict, passed: bool) -> dict:
    cmp = report["evaluation"]["vs_source_float"]
    return {
        "size": report["model"]["size_bytes"],
        "gzip": report["model"]["gzip_bytes"],
        "accuracy": cmp["converted"]["accuracy"],
        "passed_gate": passed,
        "sha256": report["model_sha256"],
    }


def run_search(base, trials: int, workers: int, build_root: Path) -> tuple[list, float, object]:
    from toolchain.recipe import apply_overrides
    from toolchain.search.run import search, search_config

    recipe = apply_overrides(base, {"name": "bench-search", "output.dir": str(build_root)})
    drop = base.evaluation.max_accuracy_drop
    config = search_config(recipe, "x86-host", trials, max_accuracy_drop=drop, workers=workers, seed=0)
    t0 = time.perf_counter()
    result = search(config)
    return result.records, time.perf_counter() - t0, config


def rebuild_front(records, config, build_root: Path) -> dict[int, dict]:
    from toolchain.base.errors import BuildRejected
    from toolchain.pipeline import build
    from toolchain.recipe import apply_overrides
    from toolchain.search.front import pareto_front
    from toolchain.search.study import trial_recipe

    rows = {}
    for r in pareto_front(records, ("gzip_bytes", "accuracy_drop_points")):
        recipe = trial_recipe(config, r.params, None)
        recipe = apply_overrides(recipe, {"name": f"front-{r.number}", "output.dir": str(build_root)})
        try:
            report, passed = build(recipe).report, True
        except BuildRejected as err:
            report, passed = err.report, False
        rows[r.number] = {
            **_row(report, passed),
            "params": r.params,
            "trial_sha256": r.metrics["model_sha256"],
        }
    return rows


def dominates_all(cand: dict, presets: dict[str, dict]) -> bool:
    return all(cand["gzip"] <= p["gzip"] and cand["accuracy"] >= p["accuracy"] for p in presets.values())


def markdown(presets: dict, front: dict, seconds: float, trials: int, checks: list[tuple[str, bool]]) -> str:
    from toolchain.search.outputs import params_text

    lines = [
        f"Shopping-intent example; search: {trials} trials, seed 0, chosen on val; every row below built by"
        " convert and evaluated on the test split, same gate.",
        "",
        "| model | gzip KB | raw KB | test accuracy | passes gate |",
        "|---|---:|---:|---:|---|",
    ]
    for name, p in presets.items():
        lines.append(
            f"| preset {name} | {p['gzip'] / 1024:.1f} | {p['size'] / 1024:.1f} | {p['accuracy']:.2%}"
            f" | {p['passed_gate']} |"
        )
    for n, p in front.items():
        lines.append(
            f"| search #{n}: {params_text(p['params'])} | {p['gzip'] / 1024:.1f} | {p['size'] / 1024:.1f}"
            f" | {p['accuracy']:.2%} | {p['passed_gate']} |"
        )
    lines += [
        "",
        f"Search time: {seconds / 60:.1f} min on this machine.",
        "",
        "| acceptance check | result |",
        "|---|---|",
    ]
    lines += [f"| {name} | {'PASS' if ok else 'FAIL'} |" for name, ok in checks]
    return "\n".join(lines) + "\n"


def main() -> int:
    from toolchain.presets import PRESETS
    from toolchain.recipe import load_recipe

    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--build-root", type=Path, default=ROOT / "build" / "bench-search")
    args = ap.parse_args()
    base = load_recipe(EXAMPLE / "recipe.yaml")
    presets = build_presets(base, args.presets.split(","), args.build_root)
    records, seconds, config = run_search(base, args.trials, args.workers, args.build_root)
    front = rebuild_front(records, config, args.build_root)
    gated = {k: p for k, p in presets.items() if p["passed_gate"]}
    winners = [n for n, p in front.items() if p["passed_gate"] and dominates_all(p, gated)]
    checks = [
        (
            "a front model dominates or equals every preset that passes the gate (gzip, test accuracy)",
            bool(winners),
        ),
        (
            "front models rebuild with the trial's bytes",
            all(p["sha256"] == p["trial_sha256"] for p in front.values()),
        ),
        (f"{args.trials} trials within 15 minutes on this machine", seconds <= BUDGET_S),
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    data = {"presets": presets, "front": front, "seconds": seconds, "winners": winners, "checks": checks}
    (OUT / "search.json").write_text(json.dumps(data, indent=1, default=str))
    text = markdown(presets, front, seconds, args.trials, checks)
    (OUT / "search.md").write_text(text)
    print(text)
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
