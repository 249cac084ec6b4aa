"""Side-by-side benchmark of the shopping-intent example: fp32, dynamic, int8, pruned-80% + int8.

One run builds all four from the same teacher, evaluates them on the test split, and measures the median
latency per query (ai_edge_litert, 1 thread, interleaved so drift hits all models alike). Prints a markdown
table with ratios against fp32 and the issue's acceptance checks; writes benchmarks/results/convert.{json,md}.

    python benchmarks/bench_convert.py [--runs 300]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from devices.cpuinfo import bench_header, host_cpu  # noqa: E402  (after the path line)

EXAMPLE = ROOT / "examples" / "shopping_intent"
OUT = ROOT / "benchmarks" / "results"

VARIANTS = {
    "fp32": {"quantization.mode": "float32"},
    "dynamic": {"quantization.mode": "dynamic"},
    "int8": {"quantization.mode": "int8"},
    "pruned80-int8": {"quantization.mode": "int8"},
}


def build_variants(build_root: Path) -> dict[str, dict]:
    from toolchain.cli.render import RichProgress
    from toolchain.pipeline import build
    from toolchain.recipe.compose import apply_overrides, load_recipe

    base = load_recipe(EXAMPLE / "recipe.yaml")
    reports = {}
    for name, overrides in VARIANTS.items():
        recipe = apply_overrides(base, {**overrides, "name": f"bench-{name}", "output.dir": str(build_root)})
        if name != "pruned80-int8":
            recipe = recipe.model_copy(update={"steps": []})
        result = build(recipe, progress=RichProgress())
        reports[name] = {"report": result.report, "model": result.model_path}
    return reports


def measure_latency(models: dict[str, Path], ids, runs: int) -> dict[str, float]:
    """Median ms per query for each model, interleaving models run by run."""
    import numpy as np

    from devices.host_runtime import HostRuntime
    from devices.hostrun import HostRunner, time_rounds

    with HostRuntime() as host:  # timed inside the runtime child: one invoke per run, row i % len(ids)
        runners = [HostRunner(p, threads=1, name=k, host=host) for k, p in models.items()]
        for r in runners:
            r.run({"input_ids": ids})  # warm-up; the runs cycle through these rows
        us = time_rounds(runners, runs, 1, vary_rows=True)
    return {k: float(np.median(us[:, i]) / 1e3) for i, k in enumerate(models)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args(argv)

    from toolchain import data as d

    built = build_variants(ROOT / "build" / "bench")
    test = d.load_queries(EXAMPLE / "data" / "test.jsonl")
    seq = built["fp32"]["report"].tokenizer.seq_len
    tok = d.Tokenizer(d.load_vocab(EXAMPLE / "vocab.txt"), seq)
    latency = measure_latency(
        {k: v["model"] for k, v in built.items()}, tok.encode_batch(test.texts), args.runs
    )

    fp = built["fp32"]["report"]
    float_acc = fp.evaluation.vs_source_float.reference.accuracy
    rows = []
    for name, b in built.items():
        r = b["report"]
        m, ev = r.model, r.evaluation.vs_source_float
        rows.append(
            {
                "variant": name,
                "bytes": m.size_bytes,
                "gzip_bytes": m.gzip_bytes,
                "size_ratio": fp.model.size_bytes / m.size_bytes,
                "gzip_ratio": fp.model.gzip_bytes / m.gzip_bytes,
                "accuracy": ev.converted.accuracy,
                "macro_f1": ev.converted.macro_f1,
                "agreement": r.evaluation.vs_final_float.top1_agreement,
                "latency_ms": latency[name],
                "speedup": latency["fp32"] / latency[name],
                "sparsity": r.steps[0].achieved_sparsity if r.steps else 0.0,
            }
        )
    by = {row["variant"]: row for row in rows}
    checks = [
        ("int8 accuracy within 1.0 pt of float", (float_acc - by["int8"]["accuracy"]) * 100 <= 1.0),
        ("int8 top-1 agreement >= 98%", by["int8"]["agreement"] >= 0.98),
        ("int8 >= 3.5x smaller than fp32", by["int8"]["size_ratio"] >= 3.5),
        ("pruned80+int8 gzip >= 10x smaller than fp32 gzip", by["pruned80-int8"]["gzip_ratio"] >= 10),
        (
            "pruned80+int8 accuracy within 1.5 pt of float",
            (float_acc - by["pruned80-int8"]["accuracy"]) * 100 <= 1.5,
        ),
    ]
    md = render(rows, float_acc, checks, test_n=len(test))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "convert.json").write_text(
        json.dumps(
            {
                "host_cpu": host_cpu().to_json(),
                "float_accuracy": float_acc,
                "rows": rows,
                "checks": dict(checks),
            },
            indent=2,
        )
    )
    (OUT / "convert.md").write_text(bench_header() + md)
    print(bench_header() + md)
    return 0 if all(ok for _, ok in checks) else 1


def render(rows: list[dict], float_acc: float, checks, test_n: int) -> str:
    lines = [
        f"Shopping-intent example, test split ({test_n} queries); float teacher accuracy {float_acc:.2%}.",
        "Latency: median per query, ai_edge_litert, 1 thread, host CPU, interleaved runs.",
        "",
        "| variant | size | gzip | size vs fp32 | gzip vs fp32 | accuracy | macro-F1 "
        "| agreement vs post-step float | latency | speed vs fp32 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['bytes'] / 1024:.0f} KB | {r['gzip_bytes'] / 1024:.0f} KB "
            f"| {r['size_ratio']:.2f}x | {r['gzip_ratio']:.2f}x | {r['accuracy']:.2%} | {r['macro_f1']:.4f} "
            f"| {r['agreement']:.2%} | {r['latency_ms'] * 1000:.0f} us | {r['speedup']:.2f}x |"
        )
    lines += ["", "| acceptance check | result |", "|---|---|"]
    lines += [f"| {name} | {'PASS' if ok else 'FAIL'} |" for name, ok in checks]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
