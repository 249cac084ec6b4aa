"""The ONNX source backend: onnxsim + onnx2tf to a float SavedModel, TFLite, checked against onnxruntime.

It answers the orchestration's questions (toolchain/pipeline.py) for an ONNX source; the report, gates
and build directory are assembled there, as for Keras. No compression steps: they need a Keras model.
Evaluation runs the source in onnxruntime and the .tflite in the host runner, each fed every named input
(input_ids, attention_mask, token_type_ids) from the same token ids.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from toolchain.base.errors import ConversionError, DataError, StepError
from toolchain.base.progress import Progress
from toolchain.data import Tokenizer, sibling_file
from toolchain.recipe import Recipe

EMBEDDING_QUERIES = 200


class OnnxBackend:
    """An ONNX source (classifier or embedding model, by `source.task`)."""

    source_format = "onnx"
    strict_int8 = False  # transformers keep float ops on purpose (quantization.float_fallback_ops)

    def __init__(self, recipe: Recipe) -> None:
        from converters import onnx_tflite as ox
        from toolchain import data as d

        if recipe.steps:
            raise StepError(
                "compression steps need a Keras model; an ONNX source is converted as it is",
                hint="drop `steps` (quantization still applies) or export the model to Keras",
            )
        self.recipe, src, spec = recipe, recipe.source.path, recipe.data
        self.info = ox.inspect_onnx(src)
        self.shapes = ox.fixed_shapes(self.info, recipe.source.input_shapes, spec.seq_len)
        ids_input = next((i for i in self.info.inputs if "ids" in i.name), self.info.inputs[0])
        vocab = d.load_vocab(sibling_file(spec.vocab, src, "vocab.txt"))
        self.tokenizer: Tokenizer = d.Tokenizer(vocab, self.shapes[ids_input.name][-1])
        self.classify = recipe.source.task == "classification"
        self.labels: list[str] = (
            d.load_labels(sibling_file(spec.labels, src, "labels.txt")) if self.classify else []
        )
        self.eval_path = spec.test or spec.calibration or spec.train
        if self.eval_path is None:
            raise DataError(
                "no queries to check the conversion on", hint="set data.test (or data.calibration)"
            )
        label_field = spec.label_field if self.classify else None
        self.eval_q = d.load_queries(self.eval_path, spec.text_field, label_field)
        self.texts = self.eval_q.texts if self.classify else self.eval_q.texts[:EMBEDDING_QUERIES]

    def run_steps(self, progress: Progress) -> tuple[list[dict], list[str]]:
        return [], []

    def convert(self, progress: Progress) -> tuple[bytes, dict, list[str]]:
        from converters import onnx_tflite as ox
        from converters.keras_tflite import NEEDS_CALIBRATION, saved_model_to_tflite
        from converters.tflite_model import parse_tflite
        from toolchain import data as d

        recipe, spec, info = self.recipe, self.recipe.data, self.info
        work = Path(tempfile.mkdtemp(prefix="edgecomp-onnx-"))
        try:
            with progress.task("onnxsim + onnx2tf (float SavedModel)", None):
                simplified = ox.simplify(recipe.source.path, self.shapes, work / "simplified.onnx")
                saved = ox.onnx_to_saved_model(
                    simplified, work / "saved_model", [i.name for i in info.inputs]
                )
            q = recipe.quantization
            calibration, quant = None, {"mode": q.mode, "onnx_opset": info.opset}
            if q.mode in NEEDS_CALIBRATION:
                cal_q = d.load_queries(
                    spec.calibration or spec.train or self.eval_path, spec.text_field, None
                )
                cal_ids, _ = d.representative_ids(
                    cal_q, self.tokenizer, q.calibration_samples, q.min_calibration_samples, recipe.seed
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
                    self._fp32 = tflite if q.mode == "float32" else saved_model_to_tflite(saved, "float32")
                except ConversionError as err:
                    raise ox.explain_conversion_error(err) from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        ox.refuse_flex(parse_tflite(tflite).custom_ops())
        return tflite, quant, []

    def fp32(self) -> bytes:
        return self._fp32

    def float_model(self, fp32: bytes) -> bytes | None:
        return fp32  # no steps: the float conversion is the post-step float model

    def source_section(self, fp32: bytes) -> dict[str, Any]:
        from converters.tflite_model import parse_tflite

        return {
            "opset": self.info.opset,
            "onnx_ops": self.info.ops,
            "input_shapes": self.shapes,
            "parameters": parse_tflite(fp32).parameter_count,
        }

    def evaluate(self, tflite: bytes, progress: Progress) -> tuple[dict, list[str]]:
        from converters import onnx_tflite as ox
        from converters.tflite_model import parse_tflite
        from devices.hostrun import HostRunner
        from toolchain.build import text_feeds
        from toolchain.evaluate import compare, reference_check

        ids = self.tokenizer.encode_batch(self.texts)
        ref = ox.OnnxReference(self.recipe.source.path, self.info.inputs).run(ids)
        got = HostRunner(tflite).scores(text_feeds(parse_tflite(tflite), ids), progress, "evaluate .tflite")
        if ref.shape != got.shape:
            raise ConversionError(
                f"output shape {got.shape[1:]} differs from onnxruntime's {ref.shape[1:]}",
                hint="check --input-shape",
            )
        if self.classify and ref.shape[1] != len(self.labels):
            raise DataError(
                f"labels file has {len(self.labels)} labels but the model outputs {ref.shape[1]} values",
                hint="for an embedding model set source.task: embedding (--task embedding)",
            )
        evaluation: dict[str, Any] = {
            "split": str(self.eval_path),
            "runtime": "onnxruntime vs ai_edge_litert, 1 thread",
            "onnx_reference": reference_check(ref, got),
        }
        if self.classify and self.eval_q.labels is not None:
            y = self.eval_q.label_ids(self.labels)
            evaluation["vs_source_float"] = compare(ref, got, y, self.labels)
            evaluation["vs_final_float"] = evaluation["vs_source_float"]
        return evaluation, list(self.texts)
