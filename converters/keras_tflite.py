"""Keras / SavedModel -> TFLite in five modes: float32, float16, dynamic, int8 (full integer), int16x8."""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from converters.calibrated import calibrate
from converters.tflite_edit import weight_only
from toolchain.base.errors import ConversionError, InputFileError, UntrustedModelError
from toolchain.base.quiet import native_output_silenced
from toolchain.base.tfenv import keras, tf

# One calibration example: arrays in the model's input order, or a dict keyed by signature input name.
CalibrationItem = Sequence[np.ndarray] | dict[str, np.ndarray]
Progress = Callable[[int, int], None]
NEEDS_CALIBRATION = ("int8", "int16x8", "mixed")


def detect_format(path: Path) -> str:
    """keras, savedmodel or onnx, from what is on disk."""
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
        raise InputFileError(f"{path} is a directory without saved_model.pb", hint="pass a SavedModel dir")
    suffix = path.suffix.lower()
    if suffix in (".keras", ".h5", ".hdf5"):
        return "keras"
    if suffix == ".onnx":
        return "onnx"
    raise InputFileError(
        f"cannot tell the format of {path}", hint="use .keras/.h5, a SavedModel directory or .onnx"
    )


TRUST_FLAG = "--trust-model-code"
_UNSAFE_MARKERS = ("unsafe", "arbitrary code", "safe_mode", "lambda")


def _refuse_untrusted(path: Path, kind: str) -> UntrustedModelError:
    return UntrustedModelError(
        f"{path} is a {kind}: loading it can run Python code stored in the file (a Lambda layer's function "
        "runs on load), so edgecomp does not load it by default",
        hint=f"pass {TRUST_FLAG} (recipe: source.trust_model_code: true) only if you trust its author, "
        "or re-save it as .keras, which loads without running code",
    )


def load_keras_model(path: Path, trust_model_code: bool = False) -> Any:
    """Load a Keras 2 model (.keras, .h5 or SavedModel dir) without its optimizer, running none of its code.

    A `.keras` file loads with `safe_mode=True`: Keras refuses to deserialize a Lambda's Python bytecode.
    `.h5` and SavedModel have no safe mode (an h5 Lambda's marshalled function is rebuilt and called while
    the model is reconstructed; a SavedModel restores traced functions and Keras-deserialised layers), so
    they are refused unless the user opts in (`trust_model_code`, the --trust-model-code flag). Pickled
    models are never loaded (no loader here accepts them).
    """
    if not path.exists():
        raise InputFileError(f"model not found: {path}", hint="check the path, or train it first")
    is_keras_zip = path.suffix.lower() == ".keras"
    if is_keras_zip and not zipfile.is_zipfile(path):
        raise InputFileError(
            f"{path} is not a valid .keras file (not a zip archive)", hint="re-save it with model.save()"
        )
    if not is_keras_zip and not trust_model_code:
        raise _refuse_untrusted(path, "SavedModel" if path.is_dir() else f"{path.suffix or 'legacy'} model")
    kwargs: dict[str, Any] = {"safe_mode": not trust_model_code} if is_keras_zip else {}
    try:
        return keras().models.load_model(path, compile=False, **kwargs)
    except Exception as err:  # Keras raises many types for a corrupt file
        first = (str(err).splitlines() or [""])[0]
        if is_keras_zip and not trust_model_code and any(m in first.lower() for m in _UNSAFE_MARKERS):
            raise UntrustedModelError(
                f"{path} contains Python code (a Lambda layer) that Keras' safe mode refuses to load",
                hint=f"pass {TRUST_FLAG} (recipe: source.trust_model_code: true) only if you trust its "
                "author, or replace the Lambda with a built-in or registered layer",
            ) from None
        raise InputFileError(
            f"could not load Keras model {path}: {err.__class__.__name__}: {first[:160]}",
            hint="the file is damaged, is not a Keras model, or was saved by an incompatible Keras; "
            "re-export it",
        ) from None


def _representative(items: Sequence[CalibrationItem], progress: Progress | None):
    def gen():
        for i, item in enumerate(items):
            if isinstance(item, dict):
                yield {k: np.expand_dims(v, 0) for k, v in item.items()}
            else:
                yield [np.expand_dims(np.asarray(v), 0) for v in item]
            if progress:
                progress(i + 1, len(items))

    return gen


def _configure(
    converter: Any,
    mode: str,
    calibration: Sequence[CalibrationItem] | None,
    progress: Progress | None,
    float_inputs: bool,
    per_channel: bool = True,
) -> None:
    tflite = tf().lite
    if mode == "float32":
        return
    converter.optimizations = [tflite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf().float16]
        return
    if mode in ("dynamic", "weight_only"):  # weight_only: hybrid ops rewritten after
        return
    if not calibration:
        raise ConversionError(f"{mode} needs calibration data", hint="set data.calibration in the recipe")
    converter.representative_dataset = _representative(calibration, progress)
    if mode == "int8":
        converter.target_spec.supported_ops = [tflite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_output_type = tf().int8
        if float_inputs:
            converter.inference_input_type = tf().int8
        if not per_channel:  # one scale per weight tensor: saves a float scale + int64 zero point per channel
            converter._experimental_disable_per_channel = True  # noqa: SLF001 - TF 2.19's converter flag
    elif mode == "int16x8":
        converter.target_spec.supported_ops = [
            tflite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
    else:
        raise ConversionError(
            f"unknown quantization mode {mode!r}",
            hint="one of float32, float16, dynamic, weight_only, int8, int16x8",
        )


# Ops that break int8 transformers (layer norm, attention softmax/matmul, GELU arithmetic): measured on a
# PyTorch-exported encoder, full int8 fell from 93.2% to 50%; with these in float it matched onnxruntime.
TRANSFORMER_FLOAT_OPS = (
    "SOFTMAX",
    "MUL",
    "ADD",
    "SUB",
    "DIV",
    "EXP",
    "ABS",
    "NEG",
    "MEAN",
    "SQUARED_DIFFERENCE",
    "RSQRT",
    "SUM",
    "SELECT_V2",
    "BATCH_MATMUL",
)


def _weight_only(mode: str, data: bytes) -> bytes:
    """Mode weight_only: the dynamic-range model with its hybrid ops on dequantized weights (tflite_edit)."""
    if mode != "weight_only":
        return data

    return weight_only(data)[0]


def _run(converter: Any, mode: str, float_ops: Sequence[str] = ()) -> bytes:
    try:
        with native_output_silenced(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if float_ops:
                return _selective(converter, float_ops)
            return bytes(converter.convert())
    except Exception as err:
        text = str(err)
        first = next(
            (ln.strip() for ln in text.splitlines() if "error" in ln.lower()),
            text.splitlines()[0] if text else "",
        )
        others = "mixed or dynamic" if mode == "int16x8" else "mixed, dynamic or int16x8"
        raise ConversionError(
            f"TFLite conversion ({mode}) failed: {first[:240]}",
            hint=f"an op may lack a {mode} kernel: try --quantize {others}, or EDGECOMP_DEBUG=1",
        ) from None


def _selective(converter: Any, float_ops: Sequence[str]) -> bytes:
    """int8 with the named op types left in float (TFLite's QuantizationDebugger denylist)."""
    tflite = tf().lite
    converter.target_spec.supported_ops = [tflite.OpsSet.TFLITE_BUILTINS_INT8, tflite.OpsSet.TFLITE_BUILTINS]
    options = tflite.experimental.QuantizationDebugOptions(denylisted_ops=list(float_ops))
    debugger = tflite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=converter.representative_dataset, debug_options=options
    )
    return bytes(debugger.get_nondebug_quantized_model())


def keras_to_tflite(
    model: Any,
    mode: str,
    calibration: Sequence[CalibrationItem] | None = None,
    progress: Progress | None = None,
    float_ops: Sequence[str] = (),
    per_channel: bool = True,
) -> bytes:
    """Convert an in-memory Keras model. Token-id (integer) inputs stay int32 in every mode. `per_channel`
    False (int8): one weight scale per tensor (quantization.per_channel)."""
    converter = tf().lite.TFLiteConverter.from_keras_model(model)
    float_inputs = all(inp.dtype.is_floating for inp in model.inputs)
    _configure(converter, mode, calibration, progress, float_inputs, per_channel)
    return _weight_only(mode, _run(converter, mode, _check_float_ops(mode, float_ops)))


def saved_model_to_tflite(
    path: Path,
    mode: str,
    calibration: Sequence[CalibrationItem] | None = None,
    progress: Progress | None = None,
    signature: str = "serving_default",
    float_ops: Sequence[str] = (),
    per_channel: bool = True,
) -> bytes:
    """Convert a SavedModel directory (e.g. what onnx2tf writes)."""
    loaded = tf().saved_model.load(str(path))
    if signature not in loaded.signatures:
        raise ConversionError(
            f"{path} has no signature {signature!r}", hint=f"signatures: {', '.join(loaded.signatures)}"
        )
    spec = loaded.signatures[signature].structured_input_signature[1]
    float_inputs = all(s.dtype.is_floating for s in spec.values())
    converter = tf().lite.TFLiteConverter.from_saved_model(str(path), signature_keys=[signature])
    _configure(converter, mode, calibration, progress, float_inputs, per_channel)
    return _weight_only(mode, _run(converter, mode, _check_float_ops(mode, float_ops)))


def _check_float_ops(mode: str, float_ops: Sequence[str]) -> tuple[str, ...]:
    if float_ops and mode != "int8":
        raise ConversionError(
            f"float_fallback_ops applies to int8 only, not {mode}",
            hint="remove quantization.float_fallback_ops or use mode int8",
        )
    return tuple(op.upper() for op in float_ops)


def calibrate_keras(
    model: Any, calibration: Sequence[CalibrationItem], progress: Progress | None = None
) -> bytes:
    """An in-memory Keras model, calibrated for converters/calibrated.py (mixed precision)."""

    converter = tf().lite.TFLiteConverter.from_keras_model(model)
    return calibrate(converter, _representative(calibration, progress))


def calibrate_saved_model(
    path: Path,
    calibration: Sequence[CalibrationItem],
    progress: Progress | None = None,
    signature: str = "serving_default",
) -> bytes:
    """A SavedModel directory, calibrated for converters/calibrated.py (mixed precision)."""

    converter = tf().lite.TFLiteConverter.from_saved_model(str(path), signature_keys=[signature])
    return calibrate(converter, _representative(calibration, progress))
