"""Per-op profiling acceptance on the shopping-intent example (fp32 and int8), side by side.

For each model: the LiteRT C-API profiler (per-node: builtin kernels, events = TFLite nodes) and the slicing
method on the same runtime (ai-edge-litert 2.3.0, 1 thread), each repeated in 7 processes. Checks:
  - LiteRT profiler: sum of per-op times within 10% of the unprofiled whole-invoke median
  - slicing: sum of per-op times within 10% of the same runtime's whole-invoke median
  - the two methods agree within 25% on every op taking more than 5% of the time
All three compare measured times, so they decide the exit code only on a machine declared quiet
(`EDGECOMP_BENCH_QUIET=1`, benchmarks/quiet_machine.py); on a loaded one they are measured and labelled.
The deployed (XNNPACK) profile is printed for information. Writes benchmarks/results/profile.{json,md}.

    python benchmarks/bench_profile.py [--runs 1000] [--models fp32=a.tflite,int8=b.tflite]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from quiet_machine import decides, timed_result  # noqa: E402  (beside this script)

from devices.cpuinfo import bench_header, host_cpu  # noqa: E402  (after the path line)

EXAMPLE = ROOT / "examples" / "shopping_intent"
OUT = ROOT / "benchmarks" / "results"


def build_example(root: Path) -> dict[str, Path]:
    """fp32 (no steps) and int8 (the example recipe as shipped) builds of the shopping example."""
    from toolchain.cli.render import RichProgress
    from toolchain.pipeline import build
    from toolchain.recipe.compose import apply_overrides, load_recipe

    base = load_recipe(EXAMPLE / "recipe.yaml")
    out = {}
    for name, mode in (("fp32", "float32"), ("int8", "int8")):
        recipe = apply_overrides(
            base, {"quantization.mode": mode, "name": f"bench-profile-{name}", "output.dir": str(root)}
        )
        if name == "fp32":
            recipe = recipe.model_copy(update={"steps": []})
        out[name] = build(recipe, progress=RichProgress()).dir
    return out


def check(name: str, value: float, ok: bool, limit: str) -> dict:
    """A timing check: PASS/FAIL on a quiet machine, labelled otherwise (benchmarks/quiet_machine.py)."""
    return {"check": name, "value": value, "limit": limit, "result": timed_result(ok)}


def bench_model(label: str, source: Path, runs: int) -> tuple[list[dict], dict]:
    from devices.profiling.profiler import ProfileOptions
    from devices.profiling.stats import compare_methods
    from toolchain.device_stages import profile_target

    opts = dict(runs=runs, warmup=200, processes=7, quant_error=False)
    per_node = profile_target(source, ProfileOptions(method="both", mode="per-node", **opts))
    deployed = profile_target(source, ProfileOptions(method="both", mode="deployed", **opts))
    prof, sliced = per_node.methods
    agree = compare_methods(prof, sliced, 0.05)
    worst = max((r["rel_diff"] for r in agree), default=0.0)

    def ratio_check(name: str, ratio: float | None) -> dict:  # None: ops below the method's resolution
        return check(name, ratio, ratio is not None and abs(ratio - 1) <= 0.10, "0.90-1.10")

    checks = [
        ratio_check(f"{label}: LiteRT profiler sum / invoke", prof.ratio),
        ratio_check(f"{label}: slicing sum / invoke", sliced.ratio),
        check(f"{label}: methods' worst disagreement (ops > 5%)", worst, worst <= 0.25, "<= 0.25"),
    ]
    detail = {
        "per_node": per_node.to_dict(),
        "deployed": {
            m.method: {"sum_us": m.sum_us, "invoke_us": m.invoke_us, "ratio": m.ratio}
            for m in deployed.methods
        },
        "agreement": agree,
    }
    return checks, detail


def _f(v: float | None, fmt: str = ".2f") -> str:
    return "below resolution" if v is None else format(v, fmt)


def markdown(checks: list[dict], details: dict) -> str:
    lines = ["| check | value | limit | result |", "|---|---|---|---|"]
    lines += [f"| {c['check']} | {_f(c['value'], '.3f')} | {c['limit']} | {c['result']} |" for c in checks]
    for label, d in details.items():
        lines += [
            "",
            f"### {label}",
            "",
            "| method | mode | sum µs | invoke µs | ratio |",
            "|---|---|---|---|---|",
        ]
        for m in d["per_node"]["methods"]:
            lines.append(
                f"| {m['method']} | per-node | {m['sum_us']:.2f} | {_f(m['invoke_us'])} "
                f"| {_f(m['ratio'], '.3f')} |"
            )
        for name, m in d["deployed"].items():
            lines.append(
                f"| {name} | deployed | {m['sum_us']:.2f} | {_f(m['invoke_us'])} | {_f(m['ratio'], '.3f')} |"
            )
        lines += ["", "| op | LiteRT profiler µs | slicing µs | rel. diff |", "|---|---|---|---|"]
        lines += [
            f"| #{r['index']} {r['op']} | {r['litert-profiler']:.2f} | {r['slicing']:.2f} "
            f"| {r['rel_diff']:.3f} |"
            for r in d["agreement"]
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--models", help="label=path,... instead of building the example")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        if args.models:
            models = {k: Path(v) for k, v in (item.split("=", 1) for item in args.models.split(","))}
        else:
            if not (EXAMPLE / "model.keras").is_file():
                print(
                    "examples/shopping_intent/model.keras missing: run `make example` first", file=sys.stderr
                )
                return 2
            models = build_example(Path(tmp))
        checks, details = [], {}
        for label, source in models.items():
            c, d = bench_model(label, source, args.runs)
            checks += c
            details[label] = d
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "profile.json").write_text(
        json.dumps(
            {"host_cpu": host_cpu().to_json(), "checks": checks, "details": details}, indent=1, default=str
        )
    )
    text = markdown(checks, details)
    (OUT / "profile.md").write_text(bench_header() + text)
    print(bench_header() + text)
    return 0 if all(c["result"] == "PASS" for c in checks if decides(c["result"])) else 1


if __name__ == "__main__":
    raise SystemExit(main())
