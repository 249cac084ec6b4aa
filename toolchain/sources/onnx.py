"""The ONNX source backend: onnxsim + onnx2tf to a float SavedModel, TFLite, checked against onnxruntime.

It answers the orchestration's questions (toolchain/pipeline.py) for an ONNX source; the source was
loaded (and the model opened, as an ONNX teacher is) by toolchain/sources/loaded.py, and the report, gates
and build directory are assembled in the pipeline, as for Keras. No compression steps: they need a Keras
model. The source is a .onnx file or a Hugging Face-style folder (model.onnx + tokenizer.json/vocab.txt +
config.json). The tokenizer is whatever the user has (toolchain/tokenizers/sources.py), and its outputs
are bound to the model's inputs by name (toolchain/tokenizers/binding.py) for calibration, onnxruntime and
the .tflite alike.

Without any tokenizer a float conversion (float32, float16, dynamic: no calibration) still runs: the
reference check then feeds seeded random ids inside the embedding table the graph gathers from, and the
report says so. Modes that calibrate need real queries tokenized the way the model was trained.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from converters import onnx_tflite as ox
from converters.fuse import fuse_gelu
from converters.keras_tflite import calibrate_saved_model, saved_model_to_tflite
from converters.onnx_prepare import prepare_for_int8
from converters.onnx_smooth import smooth
from converters.tflite_model import parse_tflite
from devices.hostrun import HostRunner
from toolchain.base.errors import ConversionError, DataError
from toolchain.base.progress import Progress
from toolchain.base.types import CALIBRATED_MODES, QuantMode, Task
from toolchain.evaluation.metrics import compare, reference_check, stage_metrics, unlabelled_agreement
from toolchain.quantization.int4 import build_int4
from toolchain.quantization.plan import build_mixed, calibrate_with_convergence
from toolchain.recipe.schema import MixedSpec
from toolchain.report.evaluation import EvaluationSection, ReferenceCheck
from toolchain.report.quantization import GraphPreparation, QuantizationSection, Smoothing
from toolchain.sources.backend import (
    SEARCHED_MODES,
    Conversion,
    Evaluation,
    Reference,
    StepHook,
    StepsResult,
    calibration_feeds,
    int8_diagnosis,
    search_data,
)
from toolchain.sources.loaded import LoadedSource
from toolchain.sources.onnx_model import OnnxModel
from toolchain.sources.onnx_trim import trim_onnx_source
from toolchain.tokenizers.binding import bind_inputs, canonical_name, tflite_inputs
from toolchain.tokenizers.interface import ATTENTION_MASK, INPUT_IDS, TOKEN_TYPE_IDS

EMBEDDING_QUERIES = 200
RANDOM_ROWS = 64
EVAL_SPLITS = ("test", "calibration", "train")  # the onnxruntime check's queries: the first given


# fuse_gelu is a pure function of the bytes, and a process often fuses the same model again: the float32
# twin of every build of one source, each trial of a search, a rebuild (0.2-0.4 s per call on a tiny BERT)
FUSED_KEEP, FUSED_MAX_BYTES = 8, 16 << 20
_FUSED: OrderedDict[str, tuple[bytes, tuple[str, ...]]] = OrderedDict()
_FLOAT32: OrderedDict[str, bytes] = OrderedDict()  # the same for the SavedModel -> float32 conversion
T = TypeVar("T")


def _remembered(
    cache: OrderedDict[str, T], key: str, compute: Callable[[], T], nbytes: Callable[[T], int]
) -> T:
    """compute(), kept in `cache` under `key` for the last FUSED_KEEP results whose model is at most
    FUSED_MAX_BYTES (`nbytes` of the result)."""
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = compute()
    if nbytes(value) <= FUSED_MAX_BYTES:
        cache[key] = value
        while len(cache) > FUSED_KEEP:
            cache.popitem(last=False)
    return value


def _fused(tflite: bytes) -> tuple[bytes, list[str]]:
    """fuse_gelu(tflite), remembered by the model's bytes."""

    def fused() -> tuple[bytes, tuple[str, ...]]:
        model, names = fuse_gelu(tflite)
        return model, tuple(names)

    model, names = _remembered(_FUSED, hashlib.sha256(tflite).hexdigest(), fused, lambda _: len(tflite))
    return model, list(names)


def float32_tflite(saved: Path) -> bytes:
    """saved_model_to_tflite(saved, float32), remembered by the SavedModel's files (every quantized build
    converts its float twin too)."""
    digest = hashlib.sha256()
    for f in sorted(p for p in saved.rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(saved)).encode() + b"\0" + f.read_bytes())
    convert = lambda: saved_model_to_tflite(saved, QuantMode.FLOAT32)  # noqa: E731
    return _remembered(_FLOAT32, digest.hexdigest(), convert, len)


def random_ids(vocab_size: int, seq_len: int, rows: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded random queries in tokenizer form: ids in [1, vocab_size), a random length, 0-padded."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, max(2, vocab_size), (rows, seq_len)).astype(np.int32)
    lengths = rng.integers(2, seq_len + 1, rows)
    mask = (np.arange(seq_len)[None, :] < lengths[:, None]).astype(np.int32)
    return {INPUT_IDS: ids * mask, ATTENTION_MASK: mask, TOKEN_TYPE_IDS: np.zeros_like(ids)}


class OnnxBackend:
    """An ONNX source (classifier or embedding model, by `source.task` or inferred)."""

    strict_int8 = False  # transformers keep float ops on purpose (quantization.float_fallback_ops)

    def __init__(self, source: LoadedSource) -> None:
        self.source = source
        self.model: OnnxModel = source.model

    def run_steps(self, progress: Progress, on_step: StepHook | None = None) -> StepsResult:
        """No steps: the model is converted as loaded; the warnings say what the check will run on."""
        source, warnings = self.source, []
        if source.tokenizer is None:
            warnings.append(
                "no tokenizer: the onnxruntime check ran on seeded random token ids, not on real queries; "
                "the build cannot tokenize text (pass --tokenizer or --vocab)"
            )
        elif source.first_split(*EVAL_SPLITS) is None:
            warnings.append("no query split (data.test): the onnxruntime check ran on seeded random ids")
        if not source.recipe.steps:
            return StepsResult(self.model, source.tokenizer, source.labels, warnings=warnings)
        model, tokenizer, reports = trim_onnx_source(source, progress, on_step)
        return StepsResult(model, tokenizer, source.labels, reports, warnings, post_step_float=model)

    def _calibration(self, steps: StepsResult) -> list[dict[str, np.ndarray]]:
        """The source's calibration sample, one row of named input arrays per query."""
        assert steps.tokenizer is not None and self.source.calibration is not None
        texts = self.source.calibration.texts
        bound = bind_inputs(steps.tokenizer.encode_batch(texts), steps.model.inputs)
        return [{k: v[i] for k, v in bound.items()} for i in range(len(texts))]

    def reference(self, steps: StepsResult) -> Reference:
        """The ONNX model's outputs on texts in onnxruntime (after a vocab_trim step: the trimmed model's,
        on its tokenizer's ids): what quantization must preserve."""
        tokenizer, model = steps.tokenizer, steps.model
        assert tokenizer is not None
        return lambda texts: model.reference().run(bind_inputs(tokenizer.encode_batch(texts), model.inputs))

    def convert(self, steps: StepsResult, progress: Progress) -> Conversion:
        source, model = self.source, steps.model
        q = source.recipe.quantization
        calibration, quant = None, {"mode": q.mode, "onnx_opset": model.info.opset}
        if not q.per_channel:
            quant["per_channel"] = False
        plan = None
        if source.calibration is not None:
            calibration = self._calibration(steps)
            quant.update(source.calibration.report())
        calibrated, fuse = None, self._fuse
        work = Path(tempfile.mkdtemp(prefix="edgecomp-onnx-"))
        try:
            with progress.task("onnxsim + onnx2tf (float SavedModel)", None):
                graph = ox.simplify(model.path, model.shapes, work / "simplified.onnx")
                if calibration and q.mode in CALIBRATED_MODES:  # int4 (gptq), dynamic: the float graph
                    graph, prepared = prepare_for_int8(graph, work / "prepared.onnx", calibration)
                    quant["graph_preparation"] = GraphPreparation.model_validate(prepared)
                if q.smooth is not None:
                    graph, smoothed = smooth(
                        graph, work / "smoothed.onnx", self._smoothing_rows(calibration), q.smooth
                    )
                    quant["smoothing"] = Smoothing.model_validate(smoothed)
                inputs = [i.name for i in model.info.inputs]
                saved = ox.onnx_to_saved_model(graph, work / "saved_model", inputs)
            calibrates = q.mode in CALIBRATED_MODES and q.mode not in SEARCHED_MODES
            counted = calibration if calibration and calibrates else None
            with progress.task(f"convert ({q.mode})", len(counted) if counted else None) as advance:
                try:
                    if q.mode == QuantMode.MIXED:
                        tflite, plan = self._mixed(steps, saved, calibration or [], progress, quant)
                    elif q.mode == QuantMode.INT4:
                        fp, quant["fused_gelu"] = fuse(float32_tflite(saved))
                        source, reference = self.source, self.reference(steps)
                        data = lambda: search_data(source, steps, reference, fp)  # noqa: E731
                        feeds = lambda: calibration_feeds(source, steps, fp)  # noqa: E731
                        built = build_int4(fp, source.recipe, source.task, data, progress, feeds)
                        quant.update(int4=built.section, full_integer=False)
                        tflite = built.tflite
                    else:
                        tflite, quant["fused_gelu"] = fuse(
                            float32_tflite(saved)
                            if q.mode == QuantMode.FLOAT32
                            else saved_model_to_tflite(
                                saved,
                                q.mode,
                                calibration,
                                progress=lambda i, n: advance(1),
                                float_ops=q.float_fallback_ops,
                                per_channel=q.per_channel,
                            )
                        )
                        calibrated = self._calibrated(saved, calibration)
                    float32 = QuantMode.FLOAT32
                    fp32 = tflite if q.mode == float32 else fuse(float32_tflite(saved))[0]
                    if model is not self.model:  # trimmed: the size baseline is the untrimmed source
                        steps_fp32, fp32 = fp32, self._source_fp32(work)
                except ConversionError as err:
                    raise ox.explain_conversion_error(err) from None
        finally:
            shutil.rmtree(work, ignore_errors=True)
        ox.refuse_flex(parse_tflite(tflite).custom_ops())
        if quant.get("fused_gelu") is None:  # conversion.fuse_gelu: false
            quant.pop("fused_gelu", None)
        if model is not self.model:
            return Conversion(tflite, fp32, QuantizationSection(**quant), calibrated, plan, steps_fp32)
        return Conversion(tflite, fp32, QuantizationSection(**quant), calibrated, plan)

    def _smoothing_rows(self, calibration: list | None) -> list[dict[str, np.ndarray]]:
        """The calibration rows smoothing measures the channel peaks on (it needs real queries)."""
        if not calibration:
            raise DataError(
                "quantization.smooth measures each activation channel's peak on calibration queries, and "
                "this build has none",
                hint="pass --train (calibration is drawn from it) or --calibration, with the tokenizer",
            )
        return calibration

    def _source_fp32(self, work: Path) -> bytes:
        """The untrimmed source as float32 TFLite (the size baseline of a trimmed build)."""
        model = self.model
        graph = ox.simplify(model.path, model.shapes, work / "source.onnx")
        names = [i.name for i in model.info.inputs]
        saved = ox.onnx_to_saved_model(graph, work / "source_saved_model", names)
        return self._fuse(float32_tflite(saved))[0]

    def _fuse(self, tflite: bytes) -> tuple[bytes, int | None]:
        """The model with its composed GELUs fused (converters/fuse.py) and how many; as it is when the
        recipe says conversion.fuse_gelu: false (None: not tried)."""
        if not self.source.recipe.conversion.fuse_gelu:
            return tflite, None
        fused, names = _fused(tflite)
        return fused, len(names)

    def _mixed(
        self, steps: StepsResult, saved: Path, calibration: list, progress: Progress, quant: dict
    ) -> tuple[bytes, MixedSpec]:
        """The mixed-precision model and its plan; `quant` gets the convergence and the search."""
        calibrated, convergence = calibrate_with_convergence(
            lambda items: calibrate_saved_model(saved, items), calibration, progress
        )
        quant["calibration_convergence"] = convergence
        source, reference = self.source, self.reference(steps)
        mixed = build_mixed(
            calibrated,
            source.recipe,
            source.task,
            lambda: search_data(source, steps, reference, calibrated),
            progress,
        )
        quant.update(mixed=mixed.section, full_integer=False, int8_mac_share=mixed.int8_mac_share)
        if source.recipe.conversion.fuse_gelu or mixed.plan.fused_gelu:
            quant["fused_gelu"] = len(mixed.plan.fused_gelu)
        return mixed.tflite, mixed.plan

    def _calibrated(self, saved: Path, calibration: list | None) -> bytes | None:
        """int8 with gates: a calibrated model to name the worst ops if a gate fails (the SavedModel is
        gone after convert)."""
        g = self.source.recipe.evaluation
        gated = any(
            v is not None for v in (g.min_agreement, g.max_accuracy_drop, g.min_cosine, g.max_abs_error)
        )
        if self.source.recipe.quantization.mode == QuantMode.INT8 and calibration and gated:
            return calibrate_saved_model(saved, calibration)
        return None

    def int8_diagnosis(self, steps: StepsResult, conversion: Conversion) -> list[tuple[str, str, float]]:
        """The ops that damage the output most when quantized alone (for a failed int8 gate)."""
        if conversion.calibrated is None:
            return []
        return int8_diagnosis(self.source, steps, self.reference(steps), conversion.calibrated)

    def float_model(self, steps: StepsResult, conversion: Conversion) -> tuple[bytes | None, Any]:
        """No steps: the float conversion is the post-step float model; trimmed: the trimmed one's."""
        return conversion.post_step_fp32 or conversion.fp32, None

    def source_section(self, conversion: Conversion) -> dict[str, Any]:
        return {
            "model_file": str(self.model.path),
            "opset": self.model.info.opset,
            "onnx_ops": self.model.info.ops,
            "input_shapes": self.model.shapes,
            "parameters": parse_tflite(conversion.fp32).parameter_count,
        }

    def _reference_inputs(self, steps: StepsResult) -> tuple[dict[str, np.ndarray], str, list[str]]:
        """The check's queries (the first of EVAL_SPLITS; an embedding model: the first 200) as tokenizer
        outputs, where they come from, and the texts; seeded random ids without a tokenizer or queries."""
        source, model, tokenizer = self.source, steps.model, steps.tokenizer
        name = source.first_split(*EVAL_SPLITS)
        if name is not None and tokenizer is not None:
            split = source.splits[name]
            texts = split.texts if source.task == Task.CLASSIFICATION else split.texts[:EMBEDDING_QUERIES]
            return tokenizer.encode_batch(texts), str(split.source), list(texts)
        rows = tokenizer.vocab_size if tokenizer is not None else None
        ids_name = next((i.name for i in model.inputs if canonical_name(i.name) == INPUT_IDS), None)
        rows = rows or (ox.embedding_rows(model.path, ids_name) if ids_name else None)
        if rows is None:
            raise DataError(
                f"cannot tell the vocabulary size of {model.path.name} (no embedding table found)",
                hint="pass --tokenizer tokenizer.json or --vocab vocab.txt",
            )
        seed = source.recipe.seed
        how = f"random token ids (seed {seed}, {RANDOM_ROWS} rows, ids < {rows})"
        return random_ids(rows, model.seq_len, RANDOM_ROWS, seed), how, []

    def evaluate(self, steps: StepsResult, conversion: Conversion, progress: Progress) -> Evaluation:
        source, model, tflite = self.source, steps.model, conversion.tflite
        encoded, split, texts = self._reference_inputs(steps)
        ref = model.reference().run(bind_inputs(encoded, model.inputs))
        tfl_feeds = bind_inputs(encoded, tflite_inputs(parse_tflite(tflite)))
        with HostRunner(tflite, name=f"model.tflite of build {source.recipe.name}") as runner:
            got = runner.scores(tfl_feeds, progress, "evaluate .tflite")
        if ref.shape != got.shape:
            raise ConversionError(
                f"output shape {got.shape[1:]} differs from onnxruntime's {ref.shape[1:]}",
                hint="check --input-shape",
            )
        classify, labels = source.task == Task.CLASSIFICATION, source.labels
        if classify and ref.shape[1] != len(labels):
            raise DataError(
                f"labels file has {len(labels)} labels but the model outputs {ref.shape[1]} values",
                hint="for an embedding model set source.task: embedding (--task embedding)",
            )
        evaluation = EvaluationSection(
            split=split,
            runtime="onnxruntime vs ai_edge_litert, 1 thread",
            onnx_reference=reference_check(ref, got),
        )
        float_tflite = conversion.post_step_fp32 or conversion.fp32
        if float_tflite is not tflite:  # quantized: the float conversion alone is checked too
            with HostRunner(float_tflite, name=f"float TFLite of build {source.recipe.name}") as runner:
                evaluation.float_reference = reference_check(ref, runner.scores(tfl_feeds, progress, "float"))
        refuse_wrong_float(evaluation.float_reference or evaluation.onnx_reference, classify, model.seq_len)
        name = source.first_split(*EVAL_SPLITS)
        queries = source.splits[name] if name is not None and texts else None
        if classify and queries is not None and (queries.labels is not None or name == "test"):
            untrimmed = ref if model is self.model else self._source_scores(texts)
            if queries.labels is None:  # a query log as the test split: agreement needs no label
                evaluation.unlabelled = unlabelled_agreement(untrimmed, ref, got, labels, texts)
                return Evaluation(evaluation, texts)
            y = queries.label_ids(labels)
            evaluation.vs_source_float = compare(untrimmed, got, y, labels, texts)
            evaluation.vs_final_float = compare(ref, got, y, labels, texts)
            trimmed = None if model is self.model else ref
            evaluation.by_stage = stage_metrics(untrimmed, trimmed, got, y, labels)
        return Evaluation(evaluation, texts)

    def _source_scores(self, texts: list[str]) -> np.ndarray:
        """The untrimmed source in onnxruntime on its own tokenizer's ids (a trimmed build's reference)."""
        tokenizer, model = self.source.tokenizer, self.model
        assert tokenizer is not None
        return model.reference().run(bind_inputs(tokenizer.encode_batch(texts), model.inputs))


# The float32 TFLite must compute what onnxruntime computes (float rounding only: max abs ~1e-5 on the
# fixtures, top-1 agreement 100%). Far below this is a wrong conversion, not a precision effect: an untrained
# hidden-32 BERT exported at 32 tokens came out of onnx2tf agreeing with onnxruntime on 3.7% of queries
# (max abs 0.048; at 24 tokens exact), and without a user gate the wrong model was written.
FLOAT_MIN_AGREEMENT = 0.99
FLOAT_MIN_COSINE = 0.999
FLOAT_TIE_ERROR = 1e-3


def refuse_wrong_float(check: ReferenceCheck, classify: bool, seq_len: int | None) -> None:
    """ConversionError when the float conversion does not reproduce onnxruntime (see above)."""
    if check.mean_cosine >= FLOAT_MIN_COSINE and (
        not classify or check.top1_agreement >= FLOAT_MIN_AGREEMENT
    ):
        return
    what = f"top-1 agreement {check.top1_agreement:.1%}, " if classify else ""
    raise ConversionError(
        f"the float32 TFLite does not compute what onnxruntime computes ({what}mean cosine "
        f"{check.mean_cosine:.4f}, max abs error {check.max_abs_error:.3g} on {check.queries} queries): "
        "a conversion fault, not quantization",
        hint=f"convert at another --seq-len than {seq_len} (onnx2tf can mistake the sequence axis for the "
        "hidden one when both have the same size), or report the model",
    )
