"""Tokenizer outputs -> model inputs, by name: the one place that decides what feeds which tensor.

Before, every stage guessed from substrings of the input name ("mask" in the name: ids != 0) and fed the
same ids to anything called *ids*. Now the tokenizer says what it produced (canonical names) and a model
input is matched to one of them by name: exactly, after stripping the converter's `serving_default_`
prefix and `:0` suffix, or through the aliases other exporters use (TF Hub BERT `input_word_ids` /
`input_mask` / `input_type_ids`, MediaPipe's metadata names `ids` / `mask` / `segment_ids`). A model with a
single input takes input_ids whatever it is called (a regex-tokenizer Keras model's `input_1`). An input
nothing can fill is an error that lists both sides. Values are cast to the dtype the model wants (int64
for a PyTorch export, int32 for TFLite).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from toolchain.base.errors import DataError
from toolchain.tokenizers.interface import ATTENTION_MASK, INPUT_IDS, TOKEN_TYPE_IDS

ALIASES = {
    "input_word_ids": INPUT_IDS,
    "ids": INPUT_IDS,
    "input_mask": ATTENTION_MASK,
    "mask": ATTENTION_MASK,
    "input_type_ids": TOKEN_TYPE_IDS,
    "segment_ids": TOKEN_TYPE_IDS,
}
_TFLITE_DTYPES = {
    "INT32": "int32",
    "INT64": "int64",
    "FLOAT32": "float32",
    "FLOAT16": "float16",
    "INT8": "int8",
    "BOOL": "bool",
}


@dataclass(frozen=True)
class ModelInput:
    """One input tensor of a model: the name to key its feed by, and the numpy dtype it takes."""

    name: str
    dtype: str


def canonical_name(name: str) -> str:
    """`serving_default_input_word_ids:0` -> `input_ids`; an unknown name comes back stripped."""
    key = name.split(":")[0].removeprefix("serving_default_")
    return ALIASES.get(key, key)


def tflite_inputs(model: object) -> tuple[ModelInput, ...]:
    """A parsed TFLite model's inputs (converters.tflite_model.TFLiteModel), keyed by the stripped name."""
    out = []
    for i in model.inputs:  # type: ignore[attr-defined]
        t = model.tensors[i]  # type: ignore[attr-defined]
        out.append(
            ModelInput(
                t.name.split(":")[0].removeprefix("serving_default_"), _TFLITE_DTYPES.get(t.dtype, "int32")
            )
        )
    return tuple(out)


def bind_inputs(encoded: Mapping[str, np.ndarray], inputs: Sequence[ModelInput]) -> dict[str, np.ndarray]:
    """Tokenizer outputs (canonical names) -> one array per model input, keyed by `ModelInput.name`."""
    out: dict[str, np.ndarray] = {}
    unfilled = []
    for inp in inputs:
        key = canonical_name(inp.name)
        if key not in encoded and len(inputs) == 1 and INPUT_IDS in encoded:
            key = INPUT_IDS  # a single-input text model takes the ids whatever its tensor is called
        if key == INPUT_IDS and inp.dtype.startswith("float"):
            raise DataError(
                f"model input {inp.name} takes {inp.dtype}, but edgecomp feeds it token ids: a text model's "
                "ids input must be an integer tensor (int32 or int64)",
                hint="export the model with integer token-id inputs (an Embedding first), not float features",
            )
        if key in encoded:
            out[inp.name] = np.asarray(encoded[key]).astype(inp.dtype)
        else:
            unfilled.append(inp.name)
    if unfilled:
        raise DataError(
            f"no tokenizer output can fill model input(s) {', '.join(unfilled)}: the tokenizer gives "
            f"{', '.join(encoded) or 'nothing'}; the model takes {', '.join(i.name for i in inputs)}",
            hint="name the inputs input_ids / attention_mask / token_type_ids (or a known alias: "
            + ", ".join(ALIASES)
            + ")",
        )
    return out


def check_vocab_fits(vocab_size: int, table_rows: int | None, model: str) -> None:
    """DataError naming both sizes when the tokenizer can produce ids past the model's embedding table."""
    if table_rows is not None and vocab_size > table_rows:
        raise DataError(
            f"the vocabulary has {vocab_size} tokens but {model}'s embedding table has {table_rows} rows: "
            f"ids {table_rows}..{vocab_size - 1} would index past it",
            hint="pass the vocab.txt / tokenizer.json the model was trained with",
        )
