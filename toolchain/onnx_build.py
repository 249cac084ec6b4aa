"""`edgecomp convert model.onnx`: onnx2tf float SavedModel -> TFLite, checked against onnxruntime.

Writes the same build directory and report as a Keras build, so validate/profile/package work on it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolchain import __version__
from toolchain.base.errors import ConversionError, DataError, GateFailed, StepError
from toolchain.base.progress import Progress
from toolchain.recipe import Recipe

EMBEDDING_QUERIES = 200


@dataclass
class _Written:
    """What report.write_build needs: labels (empty for embedding models) and the tokenizer."""

    labels: list[str]
    tokenizer: Any


class MultiInputRunner:
    """A .tflite with several inputs (input_ids, attention_mask, ...) in ai_edge_litert, batch 1."""

    def __init__(self, model_bytes: bytes, onnx_inputs: tuple) -> None:
        from ai_edge_litert.interpreter import Interpreter

        from toolchain.base.quiet import native_output_silenced

        with native_output_silenced():
            self.interpreter = Interpreter(model_content=model_bytes, num_threads=1)
            self.interpreter.allocate_tensors()
        self.onnx_inputs = onnx_inputs
        self.details = self.interpreter.get_input_details()
        self.output = self.interpreter.get_output_details()[0]

    def _index(self, name: str) -> dict:
        for d in self.details:
            if d["name"] == name or d["name"].split(":")[0].removeprefix("serving_default_") == name:
                return d
        raise ConversionError(
            f"converted model has no input for ONNX input '{name}'",
            hint=f"its inputs: {[d['name'] for d in self.details]}",
        )

    def run(self, ids: np.ndarray) -> np.ndarray:
        from converters.onnx_tflite import feeds_for

        rows = []
        for row in ids:
            for name, value in feeds_for(self.onnx_inputs, row[None, :]).items():
                d = self._index(name)
                self.interpreter.set_tensor(d["index"], value.astype(d["dtype"]))
            self.interpreter.invoke()
            out = self.interpreter.get_tensor(self.output["index"]).reshape(-1).astype(np.float32)
            scale, zero = self.output["quantization"]
            rows.append((out - zero) * scale if scale else out)
        return np.stack(rows)


def reference_check(ref: np.ndarray, got: np.ndarray) -> dict:
    """Max abs error, cosine per query (mean, worst with its index), top-1 agreement."""
    cos = np.sum(ref * got, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1) + 1e-12)
    err = np.abs(ref - got).max(1)
    return {
        "queries": int(len(ref)),
        "max_abs_error": float(err.max()),
        "worst_abs_query": int(err.argmax()),
        "mean_cosine": float(cos.mean()),
        "min_cosine": float(cos.min()),
        "worst_cosine_query": int(cos.argmin()),
        "top1_agreement": float(np.mean(ref.argmax(1) == got.argmax(1))),
    }


def _gates(recipe: Recipe, check: dict, texts: list[str]) -> None:
    g = recipe.evaluation
    if g.max_abs_error is not None and check["max_abs_error"] > g.max_abs_error:
        raise GateFailed(
            f"output differs from onnxruntime by {check['max_abs_error']:.3g} (limit {g.max_abs_error})"
            f" on query {texts[check['worst_abs_query']]!r}",
            hint="inspect per-op error",
        )
    if g.min_cosine is not None and check["mean_cosine"] < g.min_cosine:
        raise GateFailed(
            f"mean cosine vs onnxruntime {check['mean_cosine']:.4f} below {g.min_cosine}; worst "
            f"{check['min_cosine']:.4f} on {texts[check['worst_cosine_query']]!r}",
            hint="try dynamic, float16 or int16x8",
        )


def build_onnx(recipe: Recipe, progress: Progress) -> Any:
    """The ONNX branch of pipeline.build."""
    from converters import onnx_tflite as ox
    from converters.keras_tflite import NEEDS_CALIBRATION, saved_model_to_tflite
    from converters.tflite_model import gzip_size, parse_tflite
    from toolchain import data as d
    from toolchain.evaluate import compare
    from toolchain.pipeline import BuildResult, _sibling, sha256_file
    from toolchain.report import write_build

    if recipe.steps:
        raise StepError(
            "compression steps need a Keras model; an ONNX source is converted as it is",
            hint="drop `steps` (quantization still applies) or export the model to Keras",
        )
    t0, src, spec = time.perf_counter(), recipe.source.path, recipe.data
    info = ox.inspect_onnx(src)
    shapes = ox.fixed_shapes(info, recipe.source.input_shapes, spec.seq_len)
    ids_input = next((i for i in info.inputs if "ids" in i.name), info.inputs[0])
    tokenizer = d.Tokenizer(d.load_vocab(_sibling(spec.vocab, src, "vocab.txt")), shapes[ids_input.name][-1])
    classify = recipe.source.task == "classification"
    labels = d.load_labels(_sibling(spec.labels, src, "labels.txt")) if classify else []
    eval_path = spec.test or spec.calibration or spec.train
    if eval_path is None:
        raise DataError("no queries to check the conversion on", hint="set data.test (or data.calibration)")
    eval_q = d.load_queries(eval_path, spec.text_field, spec.label_field if classify else None)
    texts = eval_q.texts if classify else eval_q.texts[:EMBEDDING_QUERIES]
    ids = tokenizer.encode_batch(texts)
    work = Path(tempfile.mkdtemp(prefix="edgecomp-onnx-"))
    try:
        with progress.task("onnxsim + onnx2tf (float SavedModel)", None):
            simplified = ox.simplify(src, shapes, work / "simplified.onnx")
            saved = ox.onnx_to_saved_model(simplified, work / "saved_model", [i.name for i in info.inputs])
        q = recipe.quantization
        calibration, quant = None, {"mode": q.mode, "onnx_opset": info.opset}
        if q.mode in NEEDS_CALIBRATION:
            cal_q = d.load_queries(spec.calibration or spec.train or eval_path, spec.text_field, None)
            cal_ids, _ = d.representative_ids(
                cal_q, tokenizer, q.calibration_samples, q.min_calibration_samples, recipe.seed
            )
            calibration = [ox.feeds_for(info.inputs, row[None, :]) for row in cal_ids]
            calibration = [{k: v[0] for k, v in item.items()} for item in calibration]
            quant.update(calibration_queries=len(cal_ids))
        with progress.task(f"convert ({q.mode})", len(calibration) if calibration else None) as advance:
            try:
                tflite = saved_model_to_tflite(
                    saved,
                    q.mode,
                    calibration,
                    progress=lambda i, n: advance(1),
                    float_ops=q.float_fallback_ops,
                )
                fp32 = tflite if q.mode == "float32" else saved_model_to_tflite(saved, "float32")
            except ConversionError as err:
                raise ox.explain_conversion_error(err) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    model = parse_tflite(tflite)
    ox.refuse_flex(model.custom_ops())
    if q.float_fallback_ops:
        quant["float_fallback_ops"] = list(q.float_fallback_ops)
        quant["full_integer"] = False
    ref = ox.OnnxReference(src, info.inputs).run(ids)
    got = MultiInputRunner(tflite, info.inputs).run(ids)
    if ref.shape != got.shape:
        raise ConversionError(
            f"output shape {got.shape[1:]} differs from onnxruntime's {ref.shape[1:]}",
            hint="check --input-shape",
        )
    if classify and ref.shape[1] != len(labels):
        raise DataError(
            f"labels file has {len(labels)} labels but the model outputs {ref.shape[1]} values",
            hint="for an embedding model set source.task: embedding (--task embedding)",
        )
    check = reference_check(ref, got)
    evaluation: dict[str, Any] = {
        "split": str(eval_path),
        "runtime": "onnxruntime vs ai_edge_litert, 1 thread",
        "onnx_reference": check,
    }
    if classify and eval_q.labels is not None:
        evaluation["vs_source_float"] = compare(ref, got, eval_q.label_ids(labels), labels)
        evaluation["vs_final_float"] = evaluation["vs_source_float"]
    _gates(recipe, check, texts)
    from toolchain.pipeline import _check_gates

    _check_gates(recipe, evaluation)
    report = {
        "edgecomp_version": __version__,
        "name": recipe.name,
        "task": recipe.source.task,
        "source": {
            "path": str(src),
            "format": "onnx",
            "sha256": sha256_file(src),
            "opset": info.opset,
            "onnx_ops": info.ops,
            "input_shapes": shapes,
            "parameters": parse_tflite(fp32).parameter_count,
            "fp32_tflite_bytes": len(fp32),
            "fp32_tflite_gzip_bytes": gzip_size(fp32),
        },
        "tokenizer": tokenizer.describe(),
        "labels": labels,
        "steps": [],
        "quantization": quant,
        "model": model.summary(),
        "ratios_vs_fp32": {
            "size": round(len(fp32) / model.size_bytes, 2),
            "gzip": round(gzip_size(fp32) / model.gzip_bytes, 2),
        },
        "evaluation": evaluation,
        "warnings": [],
        "timings_s": {"total": round(time.perf_counter() - t0, 2)},
    }
    build_dir, model_path = write_build(recipe, tflite, report, _Written(labels, tokenizer))
    return BuildResult(build_dir, model_path, report)
