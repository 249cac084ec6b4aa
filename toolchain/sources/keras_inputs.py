"""What a Keras source model takes, and its rows of data in the form Keras predicts, trains and calibrates on.

A word-level model has one int input: its data is a bare (rows, seq_len) id array, as always. A BERT-style
model has several (input_ids, attention_mask, token_type_ids, or the TF Hub / Keras-NLP names): its data
is a dict keyed by the Keras input names, filled from the tokenizer's outputs by name
(toolchain/tokenizers/binding.py). `model.predict`/`fit` take either; the steps only need `rows` and
`take`. The TFLite calibration yields the same dict per row, keyed by the signature's input names, which
the converter maps to its own input order (alphabetical for a Keras model, not the Keras order).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import numpy as np

from toolchain.base.errors import DataError, InputFileError
from toolchain.tokenizers.binding import ModelInput, bind_inputs, canonical_name, check_vocab_fits
from toolchain.tokenizers.interface import INPUT_IDS

Rows = Union[np.ndarray, dict[str, np.ndarray]]  # noqa: UP007 - a runtime alias


def check_model(model: Any, path: Path) -> None:
    """One-line errors for what the Keras path cannot convert: no static inputs, several outputs."""
    inputs = getattr(model, "inputs", None)
    if not inputs or not hasattr(model, "predict"):
        raise InputFileError(
            f"{path} is not a functional Keras model with static inputs "
            f"(a {model.__class__.__name__}: a subclassed model or a plain SavedModel)",
            hint="save a functional or Sequential Keras model (model.save('model.keras')), or export to ONNX",
        )
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1:
        raise DataError(
            f"{path} has {len(outputs)} outputs; edgecomp converts a classifier with exactly one output "
            f"(scores per label), got {', '.join(o.name for o in outputs) or 'none'}",
            hint="build a model with the classifier head as its only output",
        )


def model_inputs(model: Any) -> tuple[ModelInput, ...]:
    """The Keras model's inputs by name (in Keras order) with their numpy dtypes."""
    return tuple(ModelInput(n, t.dtype.name) for n, t in zip(model.input_names, model.inputs, strict=True))


def ids_input(model: Any) -> Any:
    """The input tensor that takes token ids (the one bound to input_ids, else the first)."""
    for name, tensor in zip(model.input_names, model.inputs, strict=True):
        if canonical_name(name) == INPUT_IDS:
            return tensor
    return model.inputs[0]


def fixed_length(model: Any) -> int | None:
    """Tokens per query of the ids input, or None when that axis is dynamic."""
    shape = tuple(ids_input(model).shape)
    return int(shape[1]) if len(shape) == 2 and shape[1] is not None else None


def check_ids_input(model: Any, vocab_size: int, path: Path) -> None:
    """The Embedding that reads the ids input must hold every id the tokenizer makes: a short table is a
    DataError naming both sizes, not a TF graph error at the first predict. (A float ids input is refused
    by the binding, toolchain/tokenizers/binding.py.)"""
    tensor = ids_input(model)
    rows = next((int(layer.input_dim) for layer in model.layers if _reads(layer, tensor, "Embedding")), None)
    check_vocab_fits(vocab_size, rows, path.name)


def _reads(layer: Any, tensor: Any, kind: str) -> bool:
    """True when `layer` is a `kind` layer fed directly by `tensor` (its only inbound input)."""
    if layer.__class__.__name__ != kind:
        return False
    try:
        return layer.input is tensor
    except (AttributeError, RuntimeError, ValueError):  # no or several inbound nodes
        return False


def encode_for(model_in: tuple[ModelInput, ...], encoded: Mapping[str, np.ndarray]) -> Rows:
    """Tokenizer outputs -> the model's rows: a bare id array for one input, else a dict by input name."""
    bound = bind_inputs(encoded, model_in)
    if len(model_in) == 1:
        return bound[model_in[0].name]
    return bound


def rows(x: Rows) -> int:
    """Number of rows of a bare array or a dict of arrays."""
    if isinstance(x, dict):
        return len(next(iter(x.values())))
    return len(x)


def take(x: Rows, index: np.ndarray | slice) -> Rows:
    """The same rows of every array."""
    if isinstance(x, dict):
        return {k: v[index] for k, v in x.items()}
    return x[index]


def calibration_items(x: Rows) -> list[Any]:
    """One representative-dataset item per row: [ids] for one input, else {input name: row}."""
    if isinstance(x, dict):
        return [{k: v[i] for k, v in x.items()} for i in range(rows(x))]
    return [[row] for row in x]
