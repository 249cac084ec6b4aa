"""4-bit weights on the shopping-intent teacher, side by side with fp32, dynamic, int8 and mixed, in one run.

Builds each mode from the same teacher (no steps) with the real pipeline; int4 is `quantization.mode: int4`
(toolchain/quantization/int4.py: LiteRT Quantizer 0.10.0 for the dense weights, per-row/per-column tables,
a sensitivity search under the recipe's gates). Measures size (and the ratio to the int8 build), test
accuracy, top-1 agreement with the float model and median latency (ai_edge_litert, 1 thread, interleaved).
Then the int4 build on every device profile (validate, real runtimes, ARM under QEMU, --limit queries),
and in MediaPipe: 0.10.21 (the metadata writer and the packaging parity runtime) and 1.2.3 (LiteRT 2.3
inside; a bench-only environment without a lock), each classifying the test queries with the model whose
metadata 0.10.21 wrote. Writes benchmarks/results/int4.{json,md}. About 10 minutes on 2 cores.

    python benchmarks/bench_int4.py [--runs 300] [--limit 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from devices.cpuinfo import bench_header, host_cpu  # noqa: E402  (after the path line)

EXAMPLE = ROOT / "examples" / "shopping_intent"
OUT = ROOT / "benchmarks" / "results"
MODES = ("float32", "dynamic", "int8", "mixed", "int4")
GATES = {"max_accuracy_drop": 1.0, "min_agreement": 0.98}  # int4 and mixed aim halfway: 99% agreement
MEDIAPIPE_NEXT = "1.2.3"


def build_modes(root: Path) -> dict[str, object]:
    from toolchain.cli.render import RichProgress
    from toolchain.pipeline import build
    from toolchain.recipe.compose import apply_overrides, load_recipe

    base = load_recipe(EXAMPLE / "recipe.yaml")
    built = {}
    for mode in MODES:
        over = {"quantization.mode": mode, "name": f"int4-bench-{mode}", "output.dir": str(root)}
        over.update({f"evaluation.{k}": v for k, v in GATES.items()})
        recipe = apply_overrides(base, over).model_copy(update={"steps": []})
        t0 = time.perf_counter()
        built[mode] = (build(recipe, progress=RichProgress()), time.perf_counter() - t0)
    return built


def latency(models: dict[str, Path], ids, runs: int) -> dict[str, float]:
    import numpy as np

    from devices.host_runtime import HostRuntime
    from devices.hostrun import HostRunner, time_rounds

    with HostRuntime() as host:
        runners = [HostRunner(p, threads=1, name=k, host=host) for k, p in models.items()]
        for r in runners:
            r.run({"input_ids": ids})
        us = time_rounds(runners, runs, 1, vary_rows=True)
    return {k: float(np.median(us[:, i])) for i, k in enumerate(models)}


def devices(build_dir: Path, limit: int) -> dict[str, str]:
    from devices.profiles.schema import select_profiles
    from toolchain.device_stages import validate_target

    report = validate_target(build_dir, select_profiles(["all"]), limit=limit, write_report=False)
    out = {}
    for name, dev in sorted(report.devices.items()):
        agree = dev.metrics.top1_agreement
        out[name] = "pass" + (f", agreement {agree:.2%} with host" if agree is not None else "")
        if not dev.passed:
            out[name] = "FAIL: " + "; ".join(dev.failures)[:200]
    return out


def mediapipe(int4, fp32, texts: list[str], litert_top1) -> dict[str, str]:
    """Each MediaPipe classifies the lower-cased test queries (its regex tokenizer does not lower-case; the
    packager gates on lower-cased queries too) with the int4 and the float32 model, metadata written by
    MEDIAPIPE_VERSION (0.10.21) into both: the int4 model's top-1 agreement with the float one there, and
    with ai_edge_litert running the same int4 model on the same ids."""
    import numpy as np

    from converters.metadata import MEDIAPIPE_VERSION, MediaPipeSession, ModelInfo, ensure_mediapipe
    from toolchain.data import DELIM_REGEX

    out: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        info = ModelInfo("shopping intent", "1", "bench", None, None)
        envs = {
            MEDIAPIPE_VERSION: ensure_mediapipe(),
            MEDIAPIPE_NEXT: ensure_mediapipe(version=MEDIAPIPE_NEXT),
        }
        models = {}
        with MediaPipeSession(envs[MEDIAPIPE_VERSION]) as s:
            for name, b in (("int4", int4), ("float32", fp32)):
                models[name] = Path(tmp) / f"{name}.tflite"
                s.write_metadata(
                    b.model_path, models[name], "regex", b.vocab_path, b.labels, info, DELIM_REGEX
                )
        for version, env in envs.items():
            top = {}
            for name, model in models.items():
                try:
                    with MediaPipeSession(env) as s:
                        top[name] = np.array([r[0][0] for r in s.classify(model, texts)])
                except Exception as err:  # the bench reports what the runtime said
                    top[name] = f"FAIL: {str(err)[:160]}"
            if isinstance(top["int4"], str):
                out[version] = top["int4"]
            else:
                same = float(np.mean(top["int4"] == litert_top1))
                agree = float(np.mean(top["int4"] == top["float32"]))
                out[version] = f"runs: {same:.2%} same top-1 as litert; agrees with float32 {agree:.2%}"
    return out


def packaged(build_dir: Path) -> str:
    """`edgecomp package --mediapipe 1.2.3` on the int4 build, through the product (its parity gate: MediaPipe
    1.2.3's top-1 = the toolchain's on every lower-cased test query), into a throwaway folder."""
    from toolchain.base.errors import EdgecompError
    from toolchain.package.packager import package
    from toolchain.package.types import PackageOptions

    with tempfile.TemporaryDirectory() as tmp:
        try:
            m = package(build_dir, PackageOptions(out_dir=Path(tmp), mediapipe=MEDIAPIPE_NEXT)).manifest
        except EdgecompError as err:
            return f"refused: {err.message[:160]}"
    low = m.parity.lowercased if m.parity is not None else None
    if low is None:
        return "packaged, no parity recorded"
    return f"packaged: {m.parity.runtime} top-1 = toolchain's on {low.agreement:.2%} of {low.queries} queries"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--limit", type=int, default=200, help="validate: first N test queries per device")
    args = parser.parse_args(argv)
    from devices.hostrun import HostRunner
    from toolchain import data as d

    print(bench_header(), flush=True)
    t0 = time.perf_counter()
    built = build_modes(ROOT / "build" / "bench-int4")
    test = d.load_queries(EXAMPLE / "data" / "test.jsonl")
    fp = built["float32"][0].report
    tok = d.Tokenizer(d.load_vocab(EXAMPLE / "vocab.txt"), fp.tokenizer.seq_len)
    ids = tok.encode_batch(test.texts)
    lat = latency({m: b.model_path for m, (b, _) in built.items()}, ids, args.runs)
    int8_bytes = built["int8"][0].report.model.size_bytes
    rows = []
    for mode, (b, seconds) in built.items():
        r = b.report
        rows.append({
            "mode": mode, "bytes": r.model.size_bytes, "gzip_bytes": r.model.gzip_bytes,
            "vs_int8": round(r.model.size_bytes / int8_bytes, 3),
            "accuracy": r.evaluation.vs_source_float.converted.accuracy,
            "agreement": r.evaluation.vs_final_float.top1_agreement,
            "latency_us": round(lat[mode], 2), "speed_vs_fp32": round(lat["float32"] / lat[mode], 2),
            "build_s": round(seconds, 1),
        })  # fmt: skip
    int4 = built["int4"][0]
    section = int4.report.quantization.int4
    lowered = [t.lower() for t in test.texts]
    with HostRunner(int4.model_path, threads=1, name="int4") as runner:
        litert_top1 = runner.scores({"input_ids": tok.encode_batch(lowered)}).argmax(1)
    mp = mediapipe(int4, built["float32"][0], lowered, litert_top1)
    shipped = packaged(int4.dir)
    dev = devices(int4.dir, args.limit)
    by = {r["mode"]: r for r in rows}
    checks = [
        ("int4 <= 0.6x the int8 build's size", f"{by['int4']['vs_int8']:.2f}x", by["int4"]["vs_int8"] <= 0.6),
        ("int4 agreement with the float model >= 99% (ai_edge_litert)", f"{by['int4']['agreement']:.2%}",
         by["int4"]["agreement"] >= 0.99),
        (f"int4 agreement with the float model >= 99% in MediaPipe {MEDIAPIPE_NEXT}", mp[MEDIAPIPE_NEXT],
         mp[MEDIAPIPE_NEXT].startswith("runs") and float(mp[MEDIAPIPE_NEXT].split()[-1][:-1]) >= 99.0),
        (f"MediaPipe {MEDIAPIPE_NEXT} gives the int4 model's litert top-1", mp[MEDIAPIPE_NEXT],
         mp[MEDIAPIPE_NEXT].startswith("runs: 100.00%")),
        (f"`edgecomp package --mediapipe {MEDIAPIPE_NEXT}` ships the int4 build (app-runtime parity)",
         shipped, shipped.startswith("packaged")),
        ("a profile whose runtime cannot run int4 is named by validate",
         "; ".join(k for k, v in dev.items() if "DEQUANTIZE v6" in v) or "none",
         any("DEQUANTIZE v6 is not supported" in v for v in dev.values())),
    ]  # fmt: skip
    lines = [
        f"Shopping-intent teacher (no steps), test split ({len(test.texts)} queries); gates {GATES}. "
        "Latency: median µs per invoke, ai_edge_litert, 1 thread, interleaved.",
        "",
        "| mode | size | gzip | vs int8 build | accuracy | agreement vs float | latency | speed vs fp32 "
        "| build s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['bytes'] / 1024:.1f} KB | {r['gzip_bytes'] / 1024:.1f} KB "
            f"| {r['vs_int8']:.2f}x | {r['accuracy']:.2%} | {r['agreement']:.2%} | {r['latency_us']:.1f} us "
            f"| {r['speed_vs_fp32']:.2f}x | {r['build_s']:.0f} |"
        )
    lines += ["", "int4 plan: " + ", ".join(f"{w.op} {w.params:,} -> {w.width}" for w in section.weights)]
    lines += [f"(searched in {section.search_seconds} s, {section.candidates_evaluated} candidates)", ""]
    lines += ["| int4 build on | result |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in dev.items()]
    lines += [f"| MediaPipe {k} | {v} |" for k, v in mp.items()]
    lines += ["", "| acceptance check | measured | result |", "|---|---|---|"]
    lines += [f"| {c} | {m} | {'PASS' if ok else 'FAIL'} |" for c, m, ok in checks]
    md = "\n".join(lines) + f"\n\nTotal {time.perf_counter() - t0:.0f} s.\n"
    OUT.mkdir(parents=True, exist_ok=True)
    payload = {"host_cpu": host_cpu().to_json(), "rows": rows, "devices": dev, "mediapipe": mp,
               "plan": [w.to_json() for w in section.weights],
               "checks": [{"check": c, "measured": m, "pass": ok} for c, m, ok in checks]}  # fmt: skip
    (OUT / "int4.json").write_text(json.dumps(payload, indent=2))
    (OUT / "int4.md").write_text(bench_header() + md)
    print(bench_header() + md)
    return 0 if all(ok for _, _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
