"""ONNX path, side by side: PyTorch-exported intent classifier and embedding model vs onnxruntime.

Builds the cached PyTorch fixtures (tests/fixtures/make_onnx_models.py), converts each to several modes and
prints accuracy / cosine / max-abs-error against onnxruntime, size ratios, and the issue's acceptance checks.
Writes benchmarks/results/onnx.{json,md}.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from devices.cpuinfo import bench_header, host_cpu  # noqa: E402  (after the path line)

DATA = ROOT / "examples" / "shopping_intent" / "data"
OUT = ROOT / "benchmarks" / "results"


def run(models: Path, tmp: Path) -> list[dict]:
    from converters.keras_tflite import TRANSFORMER_FLOAT_OPS
    from toolchain.cli.render import RichProgress
    from toolchain.pipeline import build
    from toolchain.recipe.compose import recipe_from_dict

    variants = [
        ("intent", "intent_encoder.onnx", "classification", "float32", []),
        ("intent", "intent_encoder.onnx", "classification", "dynamic", []),
        ("intent", "intent_encoder.onnx", "classification", "int8", []),
        ("intent", "intent_encoder.onnx", "classification", "int8", list(TRANSFORMER_FLOAT_OPS)),
        ("embedding", "embedder.onnx", "embedding", "float16", []),
        ("embedding", "embedder.onnx", "embedding", "int8", []),
    ]
    rows = []
    for i, (model, path, task, mode, float_ops) in enumerate(variants):
        recipe = recipe_from_dict(
            {
                "name": f"onnx-{i}",
                "source": {"path": str(models / path), "task": task},
                "data": {
                    "test": str(DATA / "test.jsonl"),
                    "calibration": str(DATA / "train.jsonl"),
                    "seq_len": 32,
                },
                "quantization": {"mode": mode, "calibration_samples": 300, "float_fallback_ops": float_ops},
                "output": {"dir": str(tmp)},
            }
        )
        r = build(recipe, progress=RichProgress()).report
        ref, ev = r.evaluation.onnx_reference, r.evaluation.vs_source_float
        rows.append(
            {
                "model": model,
                "mode": mode + (" (float fallback)" if float_ops else ""),
                "bytes": r.model.size_bytes,
                "size_ratio": r.ratios_vs_fp32.size,
                "onnx_accuracy": ev.reference.accuracy if ev else None,
                "tflite_accuracy": ev.converted.accuracy if ev else None,
                "max_abs_error": ref.max_abs_error,
                "mean_cosine": ref.mean_cosine,
                "queries": ref.queries,
                "agreement": ref.top1_agreement if ev else None,
            }
        )
    return rows


def main() -> int:
    from tests.fixtures.make_onnx_models import ensure_models

    with tempfile.TemporaryDirectory() as tmp:
        rows = run(ensure_models(), Path(tmp))
    find = {(r["model"], r["mode"]): r for r in rows}
    fp32, sel = find[("intent", "float32")], find[("intent", "int8 (float fallback)")]
    checks = [
        ("intent fp32: max abs error vs onnxruntime < 1e-4", fp32["max_abs_error"] < 1e-4),
        (
            "intent int8 (float fallback): accuracy within 1.5 pt of onnxruntime",
            (sel["onnx_accuracy"] - sel["tflite_accuracy"]) * 100 <= 1.5,
        ),
        (
            "embedding int8: mean cosine >= 0.98 on 200 queries",
            find[("embedding", "int8")]["mean_cosine"] >= 0.98,
        ),
        ("embedding float16: mean cosine >= 0.999", find[("embedding", "float16")]["mean_cosine"] >= 0.999),
    ]
    lines = [
        "| model | mode | size | vs fp32 | onnxruntime acc | TFLite acc | agreement vs onnxruntime "
        "| mean cosine | max abs err |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        acc = (
            f"{r['onnx_accuracy']:.2%} | {r['tflite_accuracy']:.2%} | {r['agreement']:.2%}"
            if r["onnx_accuracy"] is not None
            else "- | - | -"
        )
        lines.append(
            f"| {r['model']} | {r['mode']} | {r['bytes'] / 1024:.0f} KB | {r['size_ratio']:.2f}x | {acc} "
            f"| {r['mean_cosine']:.4f} | {r['max_abs_error']:.2e} |"
        )
    lines += ["", "| acceptance check | result |", "|---|---|"]
    lines += [f"| {name} | {'PASS' if ok else 'FAIL'} |" for name, ok in checks]
    md = "\n".join(lines) + "\n"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "onnx.md").write_text(bench_header() + md)
    (OUT / "onnx.json").write_text(
        json.dumps({"host_cpu": host_cpu().to_json(), "rows": rows, "checks": dict(checks)}, indent=2)
    )
    print(bench_header() + md)
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
