"""Run a recipe: load the source, apply its steps in order, convert, evaluate, write build/<name>/."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toolchain import __version__
from toolchain.base.errors import ConversionError, DataError, GateFailed
from toolchain.base.progress import Progress, SilentProgress
from toolchain.recipe import Recipe


@dataclass
class Inputs:
    """Everything loaded for a build: model, tokenizer, labels and tokenized splits."""

    model: Any
    source_format: str
    tokenizer: Any
    labels: list[str]
    splits: dict[str, Any] = field(default_factory=dict)  # name -> QuerySet
    ids: dict[str, np.ndarray] = field(default_factory=dict)
    y: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class BuildResult:
    build_dir: Path
    model_path: Path
    report: dict[str, Any]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(p.read_bytes())
    else:
        h.update(path.read_bytes())
    return h.hexdigest()


def _sibling(path: Path | None, source: Path, name: str) -> Path:
    if path is not None:
        return path
    base = source if source.is_dir() else source.parent
    return base / name


def load_inputs(recipe: Recipe) -> Inputs:
    """Load model, vocab, labels and the splits the recipe names; check they fit together."""
    from converters.keras_tflite import detect_format, load_keras_model
    from toolchain import data as d

    src = recipe.source.path
    fmt = recipe.source.format if recipe.source.format != "auto" else detect_format(src)
    model = load_keras_model(src)
    spec = recipe.data
    labels = d.load_labels(_sibling(spec.labels, src, "labels.txt"))
    vocab = d.load_vocab(_sibling(spec.vocab, src, "vocab.txt"))
    shape = tuple(model.inputs[0].shape)
    model_len = int(shape[1]) if len(shape) == 2 and shape[1] is not None else None
    if spec.seq_len is not None and model_len is not None and spec.seq_len != model_len:
        raise DataError(
            f"wrong input length: the model takes {model_len} tokens, the recipe says {spec.seq_len}",
            hint=f"set data.seq_len to {model_len} or leave it unset",
        )
    seq_len = spec.seq_len or model_len
    if seq_len is None:
        raise DataError("the model's input length is dynamic", hint="set data.seq_len (e.g. --seq-len 32)")
    n_out = int(model.outputs[0].shape[-1])
    if n_out != len(labels):
        raise DataError(
            f"labels file has {len(labels)} labels but the model outputs {n_out} scores",
            hint="pass the labels.txt the model was trained with",
        )
    inputs = Inputs(model, fmt, d.Tokenizer(vocab, seq_len), labels)
    for name in ("train", "val", "test", "calibration"):
        path = getattr(spec, name)
        if path is None:
            continue
        qs = d.load_queries(path, spec.text_field, spec.label_field)
        if len(qs) == 0:
            raise DataError(f"{name} file {path} is empty", hint="give it at least one query per line")
        inputs.splits[name] = qs
        inputs.ids[name] = inputs.tokenizer.encode_batch(qs.texts)
        if qs.labels is not None:
            inputs.y[name] = qs.label_ids(labels)
    return inputs


def retokenize(inputs: Inputs, tokenizer: Any) -> None:
    inputs.tokenizer = tokenizer
    for name, qs in inputs.splits.items():
        inputs.ids[name] = tokenizer.encode_batch(qs.texts)


def _clone(model: Any) -> Any:
    from toolchain.base.tfenv import keras

    copy = keras().models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _accuracy(model: Any, inputs: Inputs, split: str = "test") -> float | None:
    from toolchain.evaluate import predict_keras

    if split not in inputs.y:
        return None
    return round(float(np.mean(predict_keras(model, inputs.ids[split]).argmax(1) == inputs.y[split])), 4)


def run_steps(recipe: Recipe, inputs: Inputs, progress: Progress) -> tuple[Any, list[dict], list[str]]:
    """Apply the recipe's steps in order to a copy of the source model."""
    from toolchain.steps.base import StepContext
    from toolchain.steps.registry import step_runner

    def context() -> StepContext:
        train = inputs.splits.get("train")
        return StepContext(
            inputs.ids.get("train"),
            inputs.y.get("train"),
            inputs.ids.get("val"),
            inputs.y.get("val"),
            inputs.labels,
            recipe.seed,
            progress,
            tokenizer=inputs.tokenizer,
            train_texts=train.texts if train else None,
        )

    model, reports, warnings = _clone(inputs.model), [], []
    for i, step in enumerate(recipe.steps):
        t0 = time.perf_counter()
        result = step_runner(step.kind)(step, model, context())
        model = result.model
        warnings += result.warnings
        if result.tokenizer is not None:  # the step rewrote the vocab: re-tokenize every split
            retokenize(inputs, result.tokenizer)
        reports.append(
            {
                "index": i,
                "kind": step.kind,
                **result.report,
                "float_test_accuracy": _accuracy(model, inputs),
                "parameters": int(model.count_params()),
                "seconds": round(time.perf_counter() - t0, 2),
            }
        )
    return model, reports, warnings


def convert_model(
    recipe: Recipe, model: Any, inputs: Inputs, progress: Progress
) -> tuple[bytes, dict, list[str]]:
    from converters.keras_tflite import NEEDS_CALIBRATION, keras_to_tflite
    from toolchain.data import representative_ids

    q = recipe.quantization
    calibration, info, warnings = None, {"mode": q.mode}, []
    if q.mode in NEEDS_CALIBRATION:
        split = "calibration" if "calibration" in inputs.splits else "train"
        if split not in inputs.splits:
            raise DataError(
                f"{q.mode} needs calibration queries", hint="set data.calibration or --calibration"
            )
        ids, warnings = representative_ids(
            inputs.splits[split],
            inputs.tokenizer,
            q.calibration_samples,
            q.min_calibration_samples,
            recipe.seed,
        )
        calibration = [[row] for row in ids]
        info.update(calibration_queries=len(ids), calibration_source=str(inputs.splits[split].source))
    with progress.task(
        f"convert ({q.mode})" + (" + calibrate" if calibration else ""),
        len(calibration) if calibration else None,
    ) as advance:
        tflite = keras_to_tflite(
            model, q.mode, calibration, progress=lambda i, n: advance(1), float_ops=q.float_fallback_ops
        )
    return tflite, info, warnings


def source_test_scores(inputs: Inputs) -> Any:
    """The source model's test scores, taken before any step can change the tokenizer."""
    from toolchain.evaluate import predict_keras

    return predict_keras(inputs.model, inputs.ids["test"]) if "test" in inputs.y else None


def evaluate(
    recipe: Recipe, inputs: Inputs, final_model: Any, tflite: bytes, progress: Progress, source_scores: Any
) -> dict:
    from toolchain.evaluate import TFLiteRunner, compare, predict_keras

    if "test" not in inputs.y:
        return {"skipped": "no labelled test split (set data.test)"}
    ids, y = inputs.ids["test"], inputs.y["test"]
    final_scores = predict_keras(final_model, ids)
    runner = TFLiteRunner(tflite, num_threads=1)
    tfl_scores = runner.predict(ids, progress, description="evaluate .tflite (ai_edge_litert)")
    return {
        "split": str(inputs.splits["test"].source),
        "runtime": "ai_edge_litert, 1 thread",
        "vs_final_float": compare(final_scores, tfl_scores, y, inputs.labels),
        "vs_source_float": compare(source_scores, tfl_scores, y, inputs.labels),
    }


def _check_gates(recipe: Recipe, evaluation: dict) -> None:
    gates = recipe.evaluation
    cmp = evaluation.get("vs_source_float")
    if cmp is None:
        return
    if gates.max_accuracy_drop is not None and cmp["accuracy_drop_points"] > gates.max_accuracy_drop:
        raise GateFailed(
            f"accuracy dropped {cmp['accuracy_drop_points']} points (limit {gates.max_accuracy_drop})",
            hint="try a milder step or quantization mode; the report shows per-intent recall",
        )
    if gates.min_agreement is not None and cmp["top1_agreement"] < gates.min_agreement:
        raise GateFailed(
            f"top-1 agreement {cmp['top1_agreement']:.2%} below {gates.min_agreement:.2%}",
            hint="inspect per-op error or use int16x8/dynamic",
        )


def build(recipe: Recipe, progress: Progress | None = None) -> BuildResult:
    """The whole `edgecomp convert`: nothing is written unless every stage succeeds."""
    from converters.keras_tflite import detect_format, keras_to_tflite
    from converters.tflite_model import gzip_size, non_int8_weight_ops, parse_tflite
    from toolchain.base.tfenv import seed_everything
    from toolchain.report import write_build

    progress = progress or SilentProgress()
    fmt = recipe.source.format if recipe.source.format != "auto" else detect_format(recipe.source.path)
    if fmt == "onnx":
        from toolchain.onnx_build import build_onnx

        return build_onnx(recipe, progress)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    seed_everything(recipe.seed)
    inputs = load_inputs(recipe)
    timings["load"] = time.perf_counter() - t0
    source_scores = source_test_scores(inputs)
    final_model, step_reports, warnings = run_steps(recipe, inputs, progress)
    timings["steps"] = time.perf_counter() - t0 - sum(timings.values())
    tflite, quant_info, cal_warnings = convert_model(recipe, final_model, inputs, progress)
    warnings += cal_warnings
    info = parse_tflite(tflite)
    if recipe.quantization.float_fallback_ops:
        quant_info.update(float_fallback_ops=list(recipe.quantization.float_fallback_ops), full_integer=False)
    elif recipe.quantization.mode == "int8":
        quant_info["non_int8_weight_ops"] = non_int8_weight_ops(info)
        if quant_info["non_int8_weight_ops"]:
            raise ConversionError(
                f"int8 model still has float kernels: {quant_info['non_int8_weight_ops'][:3]}",
                hint="this op has no int8 kernel; use int16x8 or dynamic",
            )
    fp32 = (
        tflite
        if recipe.quantization.mode == "float32" and not recipe.steps
        else keras_to_tflite(inputs.model, "float32")
    )
    timings["convert"] = time.perf_counter() - t0 - sum(timings.values())
    evaluation = evaluate(recipe, inputs, final_model, tflite, progress, source_scores)
    timings["evaluate"] = time.perf_counter() - t0 - sum(timings.values())
    _check_gates(recipe, evaluation)
    report = {
        "edgecomp_version": __version__,
        "name": recipe.name,
        "source": {
            "path": str(recipe.source.path),
            "format": inputs.source_format,
            "sha256": sha256_file(recipe.source.path),
            "parameters": int(inputs.model.count_params()),
            "fp32_tflite_bytes": len(fp32),
            "fp32_tflite_gzip_bytes": gzip_size(fp32),
        },
        "tokenizer": inputs.tokenizer.describe(),
        "labels": inputs.labels,
        "steps": step_reports,
        "quantization": quant_info,
        "model": info.summary(),
        "ratios_vs_fp32": {
            "size": round(len(fp32) / info.size_bytes, 2),
            "gzip": round(gzip_size(fp32) / info.gzip_bytes, 2),
        },
        "evaluation": evaluation,
        "warnings": warnings,
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
    }
    build_dir, model_path = write_build(recipe, tflite, report, inputs)
    return BuildResult(build_dir, model_path, report)
