"""Activation ranges for full int8 on the BERT fixture classifier: min/max, mask-safe, percentile.

The fixture classifier (tests/fixtures/make_bert_models.py, a PyTorch BERT exported the way transformers
exports it) goes through onnxsim + onnx2tf to a SavedModel, is calibrated once on a stratified draw of the
shopping-intent train split (toolchain/data.py representative_sample) and quantized to full int8 with each
set of ranges (toolchain/quantization/calibration.py refined_ranges, converters/ranges.py). Every int8
model is
evaluated on the test split against onnxruntime in a child Python, since min/max ranges on a masked
attention can abort the interpreter. Also runs the range-convergence report on the same draw, and the
Keras BERT-style fixture (tests/fixtures/make_keras_bert.py: MultiHeadAttention, a -1e9 mask) with
min/max and mask-safe ranges. Writes benchmarks/results/ranges.{json,md}. About 4 minutes on 2 cores
(the first run builds the fixtures).

    python benchmarks/bench_ranges.py [--samples 300]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from devices.cpuinfo import bench_header, host_cpu  # noqa: E402  (after the path line)

DATA = ROOT / "examples" / "shopping_intent" / "data"
OUT = ROOT / "benchmarks" / "results"


def _scores(model: bytes, feeds: dict[str, np.ndarray], work: Path) -> np.ndarray | None:
    from tests.support.child_scores import scores_in_child

    got = scores_in_child(model, feeds, work)
    return None if isinstance(got, int) else got


def _metrics(got: np.ndarray | None, ref: np.ndarray, y: np.ndarray) -> dict:
    if got is None:
        return {"crashed": True}
    cos = np.sum(got * ref, 1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)
    return {
        "accuracy": round(float((got.argmax(1) == y).mean()) * 100, 2),
        "agreement": round(float((got.argmax(1) == ref.argmax(1)).mean()) * 100, 2),
        "cosine": round(float(cos.mean()), 6),
    }


def _table(results: dict[str, dict]) -> list[str]:
    lines = ["| ranges | accuracy % | agreement % | cosine | bytes |", "|---|---|---|---|---|"]
    for name, m in results.items():
        keys = ("accuracy", "agreement", "cosine", "bytes")
        cells = [str(m.get(k, "crashed" if m.get("crashed") else "-")) for k in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def onnx_bert(samples: int, work: Path) -> dict:
    """The PyTorch-exported BERT classifier through onnx2tf: every range variant, and convergence."""
    from converters import onnx_tflite as ox
    from converters.calibrated import activation_ranges, choosable_nodes, quantize
    from converters.keras_tflite import TRANSFORMER_FLOAT_OPS, calibrate_saved_model
    from converters.ranges import is_huge, with_activation_ranges
    from devices.activations import percentile_ranges
    from tests.fixtures.make_bert_models import ensure_models
    from toolchain import data as d
    from toolchain.quantization.calibration import range_convergence, refined_ranges
    from toolchain.recipe.compose import recipe_from_dict
    from toolchain.sources.loaded import load_source
    from toolchain.tokenizers.binding import bind_inputs

    src = ensure_models() / "classifier"
    recipe = recipe_from_dict(
        {
            "source": {"path": str(src / "model.onnx"), "task": "classification"},
            "data": {
                "tokenizer": str(src / "tokenizer.json"),
                "labels": str(src / "labels.txt"),
                "test": str(DATA / "test.jsonl"),
                "calibration": str(DATA / "train.jsonl"),
                "seq_len": 32,
            },
            "quantization": {"mode": "int8", "calibration_samples": samples},
        }
    )
    source = load_source(recipe)
    onnx_model, tokenizer, queries = source.model, source.tokenizer, source.splits["test"]
    assert tokenizer is not None
    simplified = ox.simplify(onnx_model.path, onnx_model.shapes, work / "simplified.onnx")
    inputs = [i.name for i in onnx_model.info.inputs]
    saved = ox.onnx_to_saved_model(simplified, work / "saved_model", inputs)
    sample = d.representative_sample(d.load_queries(DATA / "train.jsonl"), samples, 100, recipe.seed)
    cal = bind_inputs(tokenizer.encode_batch(sample.texts), onnx_model.inputs)
    rows = [{k: v[i] for k, v in cal.items()} for i in range(len(sample.texts))]
    t0 = time.perf_counter()
    calibrated = calibrate_saved_model(saved, rows)
    calibrate_s = time.perf_counter() - t0
    test = bind_inputs(tokenizer.encode_batch(queries.texts), onnx_model.inputs)
    ref = onnx_model.reference().run(test)
    y = queries.label_ids(source.labels)

    minmax = activation_ranges(calibrated)
    mask_safe, _ = refined_ranges(calibrated, cal)
    floats = [n.name for n in choosable_nodes(calibrated) if n.op in TRANSFORMER_FLOAT_OPS]
    variants: dict[str, bytes] = {
        "min/max (today's full int8)": quantize(calibrated),
        "float fallback ops (today's int8-transformer)": quantize(calibrated, floats),
        "mask-safe": quantize(with_activation_ranges(calibrated, mask_safe)),
    }
    others = [n for n, r in minmax.items() if not is_huge(r)]
    for lower, upper in [(0.1, 99.9), (0.01, 99.99), (0.001, 99.999)]:
        pct = percentile_ranges(calibrated, cal, others, lower, upper)
        variants[f"percentile {lower}/{upper}, no mask handling"] = quantize(
            with_activation_ranges(calibrated, pct)
        )
        variants[f"mask-safe + percentile {lower}/{upper}"] = quantize(
            with_activation_ranges(calibrated, {**pct, **mask_safe})
        )
    results = {"float (onnxruntime)": _metrics(ref, ref, y)}
    for name, model in variants.items():
        results[name] = {**_metrics(_scores(model, test, work), ref, y), "bytes": len(model)}
        print("onnx bert:", name, results[name], flush=True)
    convergence = range_convergence(lambda items: calibrate_saved_model(saved, items), rows)
    return {
        "calibration_draw": sample.drawn.to_json(),  # a Record: json.dumps cannot write it as it is
        "calibrate_s": round(calibrate_s, 1),
        "mask_tensors": sorted(n for n, r in minmax.items() if is_huge(r)),
        "variants": results,
        "range_convergence": convergence.to_json(),
    }


def keras_bert(samples: int, work: Path) -> dict:
    """The Keras BERT-style fixture (MultiHeadAttention's -1e9 mask): min/max against mask-safe ranges."""
    from converters.calibrated import activation_ranges, quantize
    from converters.keras_tflite import calibrate_keras, load_keras_model
    from converters.ranges import is_huge, with_activation_ranges
    from tests.fixtures.make_bert_models import ensure_models
    from tests.fixtures.make_keras_bert import ensure_model
    from toolchain import data as d
    from toolchain.quantization.calibration import refined_ranges
    from toolchain.tokenizers.sources import find_tokenizer

    folder = ensure_model(ensure_models())
    model = load_keras_model(folder / "model.keras")
    tok = find_tokenizer(folder / "tokenizer.json", None, folder, 32)
    assert tok is not None
    sample = d.representative_sample(d.load_queries(folder / "train.jsonl"), samples, 50, 0)
    cal = tok.encode_batch(sample.texts)
    calibrated = calibrate_keras(model, [{k: v[i] for k, v in cal.items()} for i in range(len(sample.texts))])
    queries = d.load_queries(folder / "test.jsonl")
    test = tok.encode_batch(queries.texts)
    ref = model.predict([test[k] for k in model.input_names], verbose=0)
    y = queries.label_ids(d.load_labels(folder / "labels.txt"))
    mask_safe, _ = refined_ranges(calibrated, cal)
    results = {"float (Keras)": _metrics(ref, ref, y)}
    for name, ranges in [("min/max", {}), ("mask-safe", mask_safe)]:
        int8 = quantize(with_activation_ranges(calibrated, ranges))
        results[name] = {**_metrics(_scores(int8, test, work), ref, y), "bytes": len(int8)}
        print("keras bert:", name, results[name], flush=True)
    minmax = activation_ranges(calibrated)
    return {"mask_tensors": sorted(n for n, r in minmax.items() if is_huge(r)), "variants": results}


def main() -> None:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ranges-"))
    out = {"onnx_bert": onnx_bert(args.samples, work), "keras_bert": keras_bert(args.samples, work)}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "ranges.json").write_text(json.dumps({"host_cpu": host_cpu().to_json(), **out}, indent=1) + "\n")
    text = "\n".join(
        ["## BERT classifier (ONNX, onnx2tf)", "", *_table(out["onnx_bert"]["variants"]), ""]
        + [out["onnx_bert"]["range_convergence"]["summary"], ""]
        + ["## Keras BERT-style classifier", "", *_table(out["keras_bert"]["variants"])]
    )
    (OUT / "ranges.md").write_text(bench_header() + text + "\n")
    print(bench_header() + text)


if __name__ == "__main__":
    main()
