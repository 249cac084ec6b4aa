"""Product retrieval (issue 17): fp32, dynamic, weight_only, full int8, rare items pruned, low-rank table.

Every variant is built by the real pipeline from the example's model (examples/product_retrieval, `make
retrieval-example`: 3,000 products, ~24k generated queries), evaluated on the test split in ai_edge_litert
(recall@1/@10, MRR, top-10 overlap with the fp32 source), with the item table's share of the weight bytes
and the median latency per query (1 thread, interleaved runs; bench_convert.py's measurement). The shipped
recipe's build (weight_only) is then validated on the host and packaged: MediaPipe's TextClassifier with
max_results 10 must list the toolchain's top-10 ids on every test query. Writes
benchmarks/results/retrieval.{json,md}; exits 1 if an acceptance check fails. About 3 minutes on 2 cores.

    python benchmarks/bench_retrieval.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from devices.cpuinfo import bench_header, host_cpu  # noqa: E402  (after the path line)

EXAMPLE = ROOT / "examples" / "product_retrieval"
OUT = ROOT / "benchmarks" / "results"
LOWRANK = {"kind": "lowrank", "layers": ["items"], "rank": 32, "epochs": 2}

# name -> (steps, quantization mode)
VARIANTS: dict[str, tuple[list[dict], str]] = {
    "fp32": ([], "float32"),
    "dynamic (hybrid kernels)": ([], "dynamic"),
    "weight_only (shipped)": ([], "weight_only"),
    "full int8": ([], "int8"),
    "weight_only + item_prune (never clicked)": ([{"kind": "item_prune", "min_clicks": 1}], "weight_only"),
    "weight_only + low-rank table r32": ([LOWRANK], "weight_only"),
    "full int8 + low-rank table r32": ([LOWRANK], "int8"),
}
SHIPPED = "weight_only (shipped)"


def build_all(build_root: Path) -> dict[str, dict]:
    from toolchain.cli.render import RichProgress
    from toolchain.pipeline import build
    from toolchain.recipe.compose import load_recipe, recipe_from_dict

    if not (EXAMPLE / "model.keras").is_file():
        raise SystemExit("examples/product_retrieval/model.keras is missing: run `make retrieval-example`")
    base = load_recipe(EXAMPLE / "recipe.yaml").model_dump(mode="python")
    built = {}
    for i, (name, (steps, mode)) in enumerate(VARIANTS.items()):
        data = {**base, "name": f"retrieval-{i}", "steps": steps, "evaluation": {}}
        data["quantization"] = {**base["quantization"], "mode": mode}
        data["output"] = {"dir": str(build_root)}
        t0 = time.perf_counter()
        result = build(recipe_from_dict(data, origin=name), progress=RichProgress())
        report, seconds = result.report, time.perf_counter() - t0
        built[name] = {"report": report, "dir": result.dir, "seconds": seconds}
    return built


def package_shipped(build_dir: Path, out: Path) -> dict:
    """validate (x86-host) + package the shipped variant; the MediaPipe top-10 parity of its test queries."""
    from devices.profiles.schema import select_profiles
    from toolchain.cli.render import RichProgress
    from toolchain.device_stages import validate_target
    from toolchain.package.packager import package
    from toolchain.package.types import PackageOptions

    validate_target(build_dir, select_profiles(["x86-host"], []), progress=RichProgress())
    result = package(build_dir, PackageOptions(out_dir=out), RichProgress())
    return result.manifest.parity.lowercased.to_json()


def rows_from(built: dict[str, dict], latency: dict[str, float]) -> list[dict]:
    fp = built["fp32"]["report"]
    rows = []
    for name, b in built.items():
        r = b["report"]
        section = r.evaluation.retrieval
        final = section.final
        rows.append(
            {
                "variant": name,
                "bytes": r.model.size_bytes,
                "size_ratio": round(fp.model.size_bytes / r.model.size_bytes, 2),
                "table_bytes": section.size.item_table_bytes,
                "table_share": section.size.item_table_share,
                "recall_at_1": final.recall_at_1,
                "recall_at_10": final.recall_at_10,
                "mrr": final.mrr,
                "recall_drop_points": final.recall_at_10_drop_points,
                "overlap_vs_fp32": final.top10_overlap_vs_source,
                "latency_ms": latency[name],
                "seconds": round(b["seconds"], 1),
            }
        )
    return rows


def checks_from(by: dict[str, dict], parity: dict) -> list[tuple[str, str, bool]]:
    s = by[SHIPPED]
    return [
        (
            "int8 retrieval model >= 3.5x smaller than fp32",
            f"{s['size_ratio']}x ({SHIPPED})",
            s["size_ratio"] >= 3.5,
        ),
        (
            "recall@10 within 1 point of fp32 on the test split",
            f"{-s['recall_drop_points']:+.2f} pt ({s['recall_at_10']:.2%})",
            s["recall_drop_points"] <= 1.0,
        ),
        ("top-10 overlap with fp32 >= 95%", f"{s['overlap_vs_fp32']:.2%}", s["overlap_vs_fp32"] >= 0.95),
        (
            "packaged model (MediaPipe TextClassifier, max_results 10) reproduces the top-10 ids on every "
            "test query",
            f"{parity['identical_top_k']}/{parity['queries']} identical lists",
            parity["identical_top_k"] == parity["queries"],
        ),
    ]


def render(rows: list[dict], checks: list[tuple[str, str, bool]], items: int, queries: int) -> str:
    lines = [
        f"Product-retrieval example: {items} products, {queries} test queries; the .tflite in ai_edge_litert."
        " Overlap: mean share of the fp32 model's top 10 kept. Item table: weight bytes of the tensors with "
        "an item axis (kernel or its item-side factor, and the per-item prior). Latency: median per "
        "query, 1 thread, host CPU, interleaved runs.",
        "",
        "| variant | size | size x | item table | table share | recall@1 | recall@10 | MRR "
        "| recall@10 drop (pt) | top-10 overlap vs fp32 | latency | build s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['bytes'] / 1024:.1f} KB | {r['size_ratio']:.2f}x "
            f"| {r['table_bytes'] / 1024:.1f} KB | {r['table_share']:.1%} | {r['recall_at_1']:.4f} "
            f"| {r['recall_at_10']:.4f} | {r['mrr']:.4f} | {r['recall_drop_points']:.2f} "
            f"| {r['overlap_vs_fp32']:.2%} | {r['latency_ms'] * 1000:.0f} us | {r['seconds']:.0f} |"
        )
    lines += ["", "| acceptance check | measured | result |", "|---|---|---|"]
    lines += [f"| {name} | {got} | {'PASS' if ok else 'FAIL'} |" for name, got, ok in checks]
    return "\n".join(lines) + "\n"


def main() -> int:
    from bench_convert import measure_latency

    from toolchain.build import load_build
    from toolchain.data import load_queries

    t0 = time.perf_counter()
    root = ROOT / "build" / "bench-retrieval"
    built = build_all(root)
    shipped = load_build(built[SHIPPED]["dir"])
    texts = load_queries(shipped.split_path("test"), "text", "product_id").texts
    ids = shipped.tokenizer.encode_batch(texts)["input_ids"]
    models = {name: b["dir"] / "model.tflite" for name, b in built.items()}
    latency = measure_latency(models, ids, runs=500)
    parity = package_shipped(built[SHIPPED]["dir"], root / "dist")
    rows = rows_from(built, latency)
    checks = checks_from({r["variant"]: r for r in rows}, parity)
    section = built["fp32"]["report"].evaluation.retrieval
    md = render(rows, checks, section.items, section.queries)
    md += f"\nTotal {time.perf_counter() - t0:.0f} s.\n"
    OUT.mkdir(parents=True, exist_ok=True)
    payload = {
        "rows": rows,
        "parity": parity,
        "checks": [{"check": c, "measured": m, "pass": ok} for c, m, ok in checks],
    }
    (OUT / "retrieval.json").write_text(
        json.dumps({"host_cpu": host_cpu().to_json(), **payload}, indent=2, default=str)
    )
    (OUT / "retrieval.md").write_text(bench_header() + md)
    print(bench_header() + md)
    return 0 if all(ok for _, _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
