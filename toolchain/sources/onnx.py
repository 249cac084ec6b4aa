"""The ONNX source backend: onnxsim + onnx2tf to a float SavedModel, TFLite, checked against onnxruntime.

It answers the orchestration's questions (toolchain/pipeline.py) for an ONNX source; the report, gates
and build directory are assembled there, as for Keras. No compression steps: they need a Keras model.
The source is a .onnx file or a Hugging Face-style folder (model.onnx + tokenizer.json/vocab.txt +
config.json). The tokenizer is whatever the user has (toolchain/tokenizers/sources.py), and its outputs
are bound to the model's inputs by name (toolchain/tokenizers/binding.py) for calibration, onnxruntime and
the .tflite alike.

Without any tokenizer a float conversion (float32, float16, dynamic: no calibration) still runs: the
reference check then feeds seeded random ids inside the embedding table the graph gathers from, and the
report says so. Modes that calibrate need real queries tokenized the way the model was trained.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from toolchain.base.errors import ConversionError, DataError, StepError
from toolchain.base.progress import Progress
from toolchain.data import QuerySet, sibling_file
from toolchain.recipe.schema import Recipe
from toolchain.tokenizers.binding import (
    ModelInput,
    bind_inputs,
    canonical_name,
    check_vocab_fits,
    tflite_inputs,
)
from toolchain.tokenizers.interface import ATTENTION_MASK, INPUT_IDS, TOKEN_TYPE_IDS, TextTokenizer

EMBEDDING_QUERIES = 200
RANDOM_ROWS = 64
LOGITS_HINT = "logits"


def random_ids(vocab_size: int, seq_len: int, rows: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded random queries in tokenizer form: ids in [1, vocab_size), a random length, 0-padded."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, max(2, vocab_size), (rows, seq_len)).astype(np.int32)
    lengths = rng.integers(2, seq_len + 1, rows)
    mask = (np.arange(seq_len)[None, :] < lengths[:, None]).astype(np.int32)
    return {INPUT_IDS: ids * mask, ATTENTION_MASK: mask, TOKEN_TYPE_IDS: np.zeros_like(ids)}


class OnnxBackend:
    """An ONNX source (classifier or embedding model, by `source.task` or inferred)."""

    source_format = "onnx"
    strict_int8 = False  # transformers keep float ops on purpose (quantization.float_fallback_ops)

    def __init__(self, recipe: Recipe) -> None:
        from converters import onnx_tflite as ox
        from converters.keras_tflite import NEEDS_CALIBRATION
        from toolchain.tokenizers import sources

        if recipe.steps:
            raise StepError(
                "compression steps need a Keras model; an ONNX source is converted as it is",
                hint="drop `steps` (quantization still applies), start them with `- kind: distill` to "
                "train a Keras student from this model, or export the model to Keras",
            )
        self.recipe, src, spec = recipe, recipe.source.path, recipe.data
        self.model_path = sources.folder_model(src)
        self.info = ox.inspect_onnx(self.model_path)
        self.onnx_inputs = tuple(ModelInput(i.name, i.dtype) for i in self.info.inputs)
        self.shapes = ox.fixed_shapes(self.info, recipe.source.input_shapes, spec.seq_len)
        ids_input = next(
            (i for i in self.info.inputs if canonical_name(i.name) == INPUT_IDS), self.info.inputs[0]
        )
        self.seq_len = int(self.shapes[ids_input.name][-1])
        self.tokenizer: TextTokenizer | None = sources.find_tokenizer(
            spec.tokenizer, spec.vocab, src, self.seq_len
        )
        if self.tokenizer is not None:
            rows = ox.embedding_rows(self.model_path, ids_input.name)
            check_vocab_fits(self.tokenizer.vocab_size, rows, self.model_path.name)
        self.warnings: list[str] = []
        needs_queries = recipe.quantization.mode in NEEDS_CALIBRATION
        if self.tokenizer is None:
            if needs_queries:
                raise DataError(
                    f"{recipe.quantization.mode} calibrates on real queries, and {src} has no tokenizer "
                    "(no tokenizer.json or vocab.txt given or beside the model)",
                    hint="pass --tokenizer tokenizer.json or --vocab vocab.txt (and --calibration queries); "
                    "float32/float16/dynamic convert without one",
                )
            self.warnings.append(
                "no tokenizer: the onnxruntime check ran on seeded random token ids, not on real queries; "
                "the build cannot tokenize text (pass --tokenizer or --vocab)"
            )
        self.labels, self.task = self._labels_and_task(src)
        self.classify = self.task == "classification"
        self.eval_path = spec.test or spec.calibration or spec.train
        self.eval_q: QuerySet | None = None
        self.texts: list[str] = []
        if self.eval_path is not None and self.tokenizer is not None:
            from toolchain import data as d

            self.eval_q = d.load_queries(
                self.eval_path, spec.text_field, spec.label_field if self.classify else None
            )
            self.texts = self.eval_q.texts if self.classify else self.eval_q.texts[:EMBEDDING_QUERIES]
        elif self.tokenizer is not None and needs_queries:
            raise DataError("no queries to calibrate on", hint="set data.calibration (or data.train)")
        elif self.tokenizer is not None:
            self.warnings.append("no query split (data.test): the onnxruntime check ran on seeded random ids")

    def _labels_and_task(self, src: Path) -> tuple[list[str], str]:
        from toolchain import data as d
        from toolchain.tokenizers import sources

        task, spec = self.recipe.source.task, self.recipe.data
        if task == "embedding":
            return [], task
        beside = sibling_file(None, src, "labels.txt")
        if spec.labels is not None or beside.is_file():
            return d.load_labels(sibling_file(spec.labels, src, "labels.txt")), "classification"
        found = sources.config_labels(src)
        if found:
            return found, "classification"
        if task == "classification":
            d.load_labels(beside)  # raises: labels file not found, with the hint
        if any(LOGITS_HINT in o for o in self.info.outputs):
            raise DataError(
                f"{self.model_path.name} outputs {', '.join(self.info.outputs)} but no labels were found "
                "(labels.txt, --labels, config.json id2label)",
                hint="pass --labels labels.txt for a classifier, or --task embedding for an embedding model",
            )
        return [], "embedding"

    def run_steps(self, progress: Progress, on_step: Any = None) -> tuple[list[dict], list[str]]:
        return [], list(self.warnings)

    def _calibration(self) -> tuple[list[dict[str, np.ndarray]], dict[str, Any], list[str]]:
        from toolchain import data as d

        spec, q = self.recipe.data, self.recipe.quantization
        assert self.tokenizer is not None
        path = spec.calibration or spec.train or self.eval_path
        assert path is not None
        usable = d.split_words if self.tokenizer.kind == "regex" else str.strip
        sample = d.representative_sample(  # labels, when the file has them, only stratify the draw
            d.load_queries(path, spec.text_field, spec.label_field),
            q.calibration_samples,
            q.min_calibration_samples,
            self.recipe.seed,
            usable,
        )
        texts = sample.texts
        bound = bind_inputs(self.tokenizer.encode_batch(texts), self.onnx_inputs)
        rows = [{k: v[i] for k, v in bound.items()} for i in range(len(texts))]
        info = {
            "calibration_queries": len(texts),
            "calibration_source": str(path),
            "calibration_draw": sample.drawn,
        }
        return rows, info, sample.warnings

    def convert(self, progress: Progress) -> tuple[bytes, dict, list[str]]:
        from converters import onnx_tflite as ox
        from converters.keras_tflite import NEEDS_CALIBRATION, saved_model_to_tflite
        from converters.tflite_model import parse_tflite

        recipe, info = self.recipe, self.info
        q = recipe.quantization
        calibration, quant, warnings = None, {"mode": q.mode, "onnx_opset": info.opset}, []
        if q.mode in NEEDS_CALIBRATION:
            calibration, cal_info, warnings = self._calibration()
            quant.update(cal_info)
        work = Path(tempfile.mkdtemp(prefix="edgecomp-onnx-"))
        try:
            with progress.task("onnxsim + onnx2tf (float SavedModel)", None):
                graph = ox.simplify(self.model_path, self.shapes, work / "simplified.onnx")
                if calibration:
                    from converters.onnx_prepare import prepare_for_int8

                    graph, quant["graph_preparation"] = prepare_for_int8(
                        graph, work / "prepared.onnx", calibration
                    )
                saved = ox.onnx_to_saved_model(graph, work / "saved_model", [i.name for i in info.inputs])
            counted = calibration if calibration and q.mode != "mixed" else None  # mixed: its own tasks
            with progress.task(f"convert ({q.mode})", len(counted) if counted else None) as advance:
                try:
                    if q.mode == "mixed":
                        tflite = self._mixed(saved, calibration or [], progress, quant)
                    else:
                        tflite = saved_model_to_tflite(
                            saved,
                            q.mode,
                            calibration,
                            progress=lambda i, n: advance(1),
                            float_ops=q.float_fallback_ops,
                        )
                        self._keep_calibration(saved, calibration)
                    self._fp32 = tflite if q.mode == "float32" else saved_model_to_tflite(saved, "float32")
                except ConversionError as err:
                    raise ox.explain_conversion_error(err) from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        ox.refuse_flex(parse_tflite(tflite).custom_ops())
        return tflite, quant, warnings

    def _mixed(self, saved: Path, calibration: list, progress: Progress, quant: dict) -> bytes:
        from converters.keras_tflite import calibrate_saved_model
        from toolchain.quantization.plan import build_mixed, calibrate_with_convergence

        calibrated, convergence = calibrate_with_convergence(
            lambda items: calibrate_saved_model(saved, items), calibration, progress
        )
        quant["calibration_convergence"] = convergence
        tflite, info = build_mixed(
            calibrated, self.recipe, self.task, lambda: self._search_data(calibrated), progress
        )
        quant.update(info)
        return tflite

    def _keep_calibration(self, saved: Path, calibration: list | None) -> None:
        """int8 with gates: keep a calibrated model to name the worst ops if a gate fails."""
        g = self.recipe.evaluation
        gated = any(
            v is not None for v in (g.min_agreement, g.max_accuracy_drop, g.min_cosine, g.max_abs_error)
        )
        if self.recipe.quantization.mode == "int8" and calibration and gated:
            from converters.keras_tflite import calibrate_saved_model

            self._calibrated = calibrate_saved_model(saved, calibration)

    def _search_data(self, calibrated: bytes):
        """Queries the mixed search scores candidates on: the val split, else the calibration queries."""
        from converters import onnx_tflite as ox
        from converters.tflite_model import parse_tflite
        from toolchain import data as d
        from toolchain.quantization.mixed import SEARCH_QUERIES, SearchData

        spec = self.recipe.data
        assert self.tokenizer is not None
        path = spec.val or spec.calibration or spec.train or self.eval_path
        assert path is not None
        label_field = spec.label_field if self.classify and path == spec.val else None
        try:
            queries = d.load_queries(path, spec.text_field, label_field)
        except DataError:
            queries = d.load_queries(path, spec.text_field, None)
        texts = queries.texts[:SEARCH_QUERIES]
        encoded = self.tokenizer.encode_batch(texts)
        ref = ox.OnnxReference(self.model_path, self.info.inputs).run(bind_inputs(encoded, self.onnx_inputs))
        y = None
        if self.classify and queries.labels is not None:
            y = queries.label_ids(self.labels)[: len(texts)]
        feeds = bind_inputs(encoded, tflite_inputs(parse_tflite(calibrated)))
        return SearchData(feeds, ref, y, f"{path} ({len(texts)} queries)")

    def int8_diagnosis(self) -> list[tuple[str, str, float]]:
        """The ops that damage the output most when quantized alone (for a failed int8 gate)."""
        from toolchain.quantization.mixed import worst_ops

        calibrated = getattr(self, "_calibrated", None)
        if calibrated is None:
            return []
        return worst_ops(calibrated, self._search_data(calibrated), self.task)

    def fp32(self) -> bytes:
        return self._fp32

    def float_model(self, fp32: bytes) -> bytes | None:
        return fp32  # no steps: the float conversion is the post-step float model

    def float_keras(self) -> Any:
        return None  # no steps on ONNX: there is no post-step Keras model

    def source_section(self, fp32: bytes) -> dict[str, Any]:
        from converters.tflite_model import parse_tflite

        return {
            "model_file": str(self.model_path),
            "opset": self.info.opset,
            "onnx_ops": self.info.ops,
            "input_shapes": self.shapes,
            "parameters": parse_tflite(fp32).parameter_count,
        }

    def tokenizer_section(self) -> dict[str, Any]:
        if self.tokenizer is not None:
            return self.tokenizer.describe()
        return {"kind": "none", "seq_len": self.seq_len, "note": "no tokenizer given: parity on random ids"}

    def _reference_inputs(self) -> tuple[dict[str, np.ndarray], str]:
        from converters import onnx_tflite as ox

        if self.texts and self.tokenizer is not None:
            return self.tokenizer.encode_batch(self.texts), str(self.eval_path)
        ids_name = next((i.name for i in self.onnx_inputs if canonical_name(i.name) == INPUT_IDS), None)
        rows = self.tokenizer.vocab_size if self.tokenizer is not None else None
        rows = rows or (ox.embedding_rows(self.model_path, ids_name) if ids_name else None)
        if rows is None:
            raise DataError(
                f"cannot tell the vocabulary size of {self.model_path.name} (no embedding table found)",
                hint="pass --tokenizer tokenizer.json or --vocab vocab.txt",
            )
        how = f"random token ids (seed {self.recipe.seed}, {RANDOM_ROWS} rows, ids < {rows})"
        return random_ids(rows, self.seq_len, RANDOM_ROWS, self.recipe.seed), how

    def evaluate(self, tflite: bytes, progress: Progress) -> tuple[dict, list[str]]:
        from converters import onnx_tflite as ox
        from converters.tflite_model import parse_tflite
        from devices.hostrun import HostRunner
        from toolchain.evaluation.metrics import compare, reference_check, stage_metrics

        encoded, split = self._reference_inputs()
        ref = ox.OnnxReference(self.model_path, self.info.inputs).run(bind_inputs(encoded, self.onnx_inputs))
        tfl_feeds = bind_inputs(encoded, tflite_inputs(parse_tflite(tflite)))
        with HostRunner(tflite, name=f"model.tflite of build {self.recipe.name}") as runner:
            got = runner.scores(tfl_feeds, progress, "evaluate .tflite")
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
            "split": split,
            "runtime": "onnxruntime vs ai_edge_litert, 1 thread",
            "onnx_reference": reference_check(ref, got),
        }
        if self.classify and self.eval_q is not None and self.eval_q.labels is not None:
            y = self.eval_q.label_ids(self.labels)
            evaluation["vs_source_float"] = compare(ref, got, y, self.labels)
            evaluation["vs_final_float"] = evaluation["vs_source_float"]
            evaluation["by_stage"] = stage_metrics(ref, None, got, y, self.labels)  # no steps on ONNX
        return evaluation, list(self.texts)
