"""The one step an ONNX source runs itself: `vocab_trim`, on the graph (toolchain/steps/vocab_trim.py).

Every other step needs a Keras model. The trimmed model is written into a temporary folder that lives as
long as the process (the build saves its conversion, float.tflite, not the .onnx), and is opened as the
source was (same inputs and fixed shapes), so convert, the mixed search and the evaluation read it like
any ONNX model; the untrimmed source stays the reference of `vs_source_float` and the size baseline.
"""

from __future__ import annotations

import atexit
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from converters.onnx_tflite import inspect_onnx
from toolchain.base.progress import Progress
from toolchain.report.steps import VocabTrimReport
from toolchain.sources.backend import StepHook
from toolchain.sources.loaded import LoadedSource
from toolchain.sources.onnx_model import OnnxModel
from toolchain.steps.vocab_trim import trim_onnx


def _workdir() -> Path:
    work = Path(tempfile.mkdtemp(prefix="edgecomp-vocab-trim-"))
    atexit.register(shutil.rmtree, work, True)
    return work


def trim_onnx_source(
    source: LoadedSource, progress: Progress, on_step: StepHook | None = None
) -> tuple[OnnxModel, Any, list[VocabTrimReport]]:
    """The recipe's vocab_trim step on the ONNX source: the trimmed model, its tokenizer, the report."""
    model: OnnxModel = source.model
    step = source.recipe.steps[0]
    t0 = time.perf_counter()
    dst = _workdir() / "model.onnx"
    with progress.task("vocab_trim (the kept pieces' embedding rows)", None):
        done = trim_onnx(
            step,
            model.path,
            dst,
            model.ids_input,
            model.inputs,
            source.tokenizer,
            source.splits,
            source.labels,
            source.task,
        )
    trimmed = dataclasses.replace(model, path=dst, info=inspect_onnx(dst))
    effect = done.report["effect"]
    report = VocabTrimReport.model_validate(
        {
            "index": 0,
            "kind": step.kind,
            **done.report,
            "float_test_accuracy": effect.accuracy_after if effect is not None else None,
            "seconds": round(time.perf_counter() - t0, 2),
        }
    )
    if on_step is not None:
        on_step(report, effect.accuracy_before if effect is not None else None)
    return trimmed, done.tokenizer, [report]
