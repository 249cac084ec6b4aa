"""Compression steps side by side on the shopping-intent example: PTQ, QAT, PQAT, distillation, low-rank,
vocabulary pruning, 2:4 sparsity, the full chain distill -> prune 80% -> QAT -> int8, and the chain with
4-bit weights (distill -> prune 80% -> int4, toolchain/quantization/int4.py).

One run builds every variant from the same teacher with the real pipeline (tfmot, TFLite converter,
ai_edge_litert evaluation on the test split), measures size raw/gzip, parameters, accuracy and the share of
zero weights in the .tflite, and prints ratios against the fp32 teacher with a PASS/FAIL per acceptance check.
Writes benchmarks/results/compress.{json,md}. About 3-5 minutes on 2 cores.

    python benchmarks/bench_compress.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EXAMPLE = ROOT / "examples" / "shopping_intent"
OUT = ROOT / "benchmarks" / "results"
from devices.cpuinfo import bench_header, host_cpu  # noqa: E402  (after the path line)
from toolchain.recipe import presets  # noqa: E402
from toolchain.report.model import Report  # noqa: E402  (the bench measures exactly what the presets give users)

DISTILL = presets.distill_int8()["steps"][0]
PRUNE80 = presets.PRUNE80
CHAIN = presets.distill_prune_int8()["steps"]
CHAIN4 = CHAIN[:2]  # distill -> prune 80%, then mode int4 instead of QAT + int8

# name -> (steps, quantization mode)
VARIANTS: dict[str, tuple[list[dict], str]] = {
    "teacher fp32": ([], "float32"),
    "PTQ int8": ([], "int8"),
    "QAT int8": ([{"kind": "qat", "epochs": 2}], "int8"),
    "PQAT int8 (prune 80%)": ([PRUNE80, {"kind": "qat", "epochs": 2}], "int8"),
    "2:4 prune int8": ([{"kind": "prune", "m_by_n": "2:4", "schedule": "constant", "epochs": 3}], "int8"),
    "distilled student fp32": ([DISTILL], "float32"),
    "low-rank 50% fp32": ([{"kind": "lowrank", "param_reduction": 0.5, "epochs": 2}], "float32"),
    "vocab prune (min 3) fp32": ([{"kind": "vocab_prune", "min_count": 3}], "float32"),
    "chain distill-prune80-QAT int8": (CHAIN, "int8"),
    "chain distill-prune80 int4": (CHAIN4, "int4"),
}


def build_all(build_root: Path) -> dict[str, dict]:
    from toolchain.cli.render import RichProgress
    from toolchain.pipeline import build
    from toolchain.recipe.compose import load_recipe, recipe_from_dict
    from toolchain.steps.prune import tflite_weight_sparsity

    base = load_recipe(EXAMPLE / "recipe.yaml").model_dump(mode="python")
    built = {}
    for i, (name, (steps, mode)) in enumerate(VARIANTS.items()):
        data = {**base, "name": f"compress-{i}", "steps": steps, "evaluation": {}}
        data["quantization"] = {**base["quantization"], "mode": mode}
        data["output"] = {"dir": str(build_root)}
        t0 = time.perf_counter()
        result = build(recipe_from_dict(data, origin=name), progress=RichProgress())
        tflite = result.model_path.read_bytes()
        built[name] = {
            "report": result.report,
            "seconds": time.perf_counter() - t0,
            "weight_sparsity": tflite_weight_sparsity(tflite),
        }
    return built


def params(report: Report) -> int:
    """The shipped .tflite's parameters: converters/parameters.py, the count every command reports."""
    return report.model.parameters


def rows_from(built: dict[str, dict]) -> list[dict]:
    fp = built["teacher fp32"]["report"]
    out = []
    for name, b in built.items():
        r = b["report"]
        ev = r.evaluation.vs_source_float
        out.append(
            {
                "variant": name,
                "bytes": r.model.size_bytes,
                "gzip_bytes": r.model.gzip_bytes,
                "size_ratio": round(fp.model.size_bytes / r.model.size_bytes, 2),
                "gzip_ratio": round(fp.model.gzip_bytes / r.model.gzip_bytes, 2),
                "params": params(r),
                "param_ratio": round(params(fp) / params(r), 2),
                "accuracy": ev.converted.accuracy,
                "float_accuracy": r.steps[-1].float_test_accuracy if r.steps else None,
                "weight_sparsity": b["weight_sparsity"],
                "seconds": round(b["seconds"], 1),
            }
        )
    return out


def checks_from(built: dict[str, dict], by: dict[str, dict]) -> list[tuple[str, str, bool]]:
    teacher = by["teacher fp32"]["accuracy"]
    lowrank = built["low-rank 50% fp32"]["report"].steps[0]
    student, chain = by["distilled student fp32"], by["chain distill-prune80-QAT int8"]
    qat, ptq, pqat = by["QAT int8"], by["PTQ int8"], by["PQAT int8 (prune 80%)"]
    keep = student["accuracy"] / teacher
    lr_drop = (teacher - by["low-rank 50% fp32"]["accuracy"]) * 100
    chain_drop = (teacher - chain["accuracy"]) * 100
    chain4 = by["chain distill-prune80 int4"]
    chain4_drop = (teacher - chain4["accuracy"]) * 100
    return [
        (
            "distilled student: >= 5x fewer params, keeps >= 97% of teacher accuracy",
            f"{student['param_ratio']}x fewer, keeps {keep:.2%}",
            student["param_ratio"] >= 5 and keep >= 0.97,
        ),
        (
            "low-rank: factorized Dense+embedding params halved, accuracy within 1 pt",
            f"-{lowrank.factorized_reduction:.1%} params, {-lr_drop:+.2f} pt",
            lowrank.factorized_reduction >= 0.5 and lr_drop <= 1.0,
        ),
        (
            "QAT int8 accuracy >= PTQ int8 - 0.2 pt",
            f"QAT {qat['accuracy']:.2%} vs PTQ {ptq['accuracy']:.2%}",
            qat["accuracy"] >= ptq["accuracy"] - 0.002,
        ),
        (
            "PQAT keeps the requested 80% sparsity within 1 pt (in the .tflite weights)",
            f"{pqat['weight_sparsity']:.2%} zeros",
            abs(pqat["weight_sparsity"] - 0.8) <= 0.01,
        ),
        (
            "chain distill->prune80->QAT->int8: gzip >= 25x smaller than fp32 teacher, accuracy within 2 pt",
            f"{chain['gzip_ratio']}x, {-chain_drop:+.2f} pt",
            chain["gzip_ratio"] >= 25 and chain_drop <= 2.0,
        ),
        (
            "chain distill->prune80->int4: gzip >= 40x smaller than fp32 teacher, accuracy within 2 pt",
            f"{chain4['gzip_ratio']}x, {-chain4_drop:+.2f} pt",
            chain4["gzip_ratio"] >= 40 and chain4_drop <= 2.0,
        ),
    ]


def render(rows: list[dict], checks: list[tuple[str, str, bool]], honesty: str) -> str:
    lines = [
        "Shopping-intent example, test split; accuracy of the .tflite in ai_edge_litert; ratios vs the fp32 "
        "teacher (.tflite). Params: weight values of the .tflite, the count every command reports "
        "(converters/parameters.py).",
        "",
        "| variant | size | gzip | size x | gzip x | params | params x | accuracy | zero weights | build s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['bytes'] / 1024:.1f} KB | {r['gzip_bytes'] / 1024:.1f} KB "
            f"| {r['size_ratio']:.2f}x | {r['gzip_ratio']:.2f}x | {r['params']:,} | {r['param_ratio']:.2f}x "
            f"| {r['accuracy']:.2%} | {r['weight_sparsity']:.1%} | {r['seconds']:.0f} |"
        )
    lines += ["", f"Sparsity honesty (prune step): {honesty}", ""]
    lines += ["| acceptance check | measured | result |", "|---|---|---|"]
    lines += [f"| {name} | {got} | {'PASS' if ok else 'FAIL'} |" for name, got, ok in checks]
    return "\n".join(lines) + "\n"


def main() -> int:
    t0 = time.perf_counter()
    built = build_all(ROOT / "build" / "bench-compress")
    rows = rows_from(built)
    by = {r["variant"]: r for r in rows}
    checks = checks_from(built, by)
    honesty = built["PQAT int8 (prune 80%)"]["report"].steps[0].sparsity_honesty
    qat_note = built["QAT int8"]["report"].steps[0].float_note
    md = (
        render(rows, checks, honesty)
        + f"\nQAT note: {qat_note}.\n\nTotal {time.perf_counter() - t0:.0f} s.\n"
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "compress.json").write_text(
        json.dumps(
            {
                "host_cpu": host_cpu().to_json(),
                "rows": rows,
                "checks": [{"check": c, "measured": m, "pass": ok} for c, m, ok in checks],
            },
            indent=2,
        )
    )
    (OUT / "compress.md").write_text(bench_header() + md)
    print(bench_header() + md)
    return 0 if all(ok for _, _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
