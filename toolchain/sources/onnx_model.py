"""Opening an ONNX model, once for the recipe source and for an ONNX distillation teacher alike.

The sequence: the .onnx file (model.onnx inside a Hugging Face-style folder) -> its inputs, outputs and
opset (converters/onnx_tflite.inspect_onnx, no weights loaded) -> every dynamic axis fixed (batch 1, the
text axes to data.seq_len, or --input-shape) -> the token-ids input (the one bound to input_ids, else the
first) and the query length (toolchain/tokenizers/sources.query_length) -> the tokenizer the recipe names
or the one beside the model (find_tokenizer), checked against the embedding table the ids index (a longer
vocabulary is a DataError naming both sizes, not a GATHER error in onnxruntime).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converters import onnx_tflite as ox
from toolchain.tokenizers.binding import ModelInput, canonical_name, check_vocab_fits
from toolchain.tokenizers.interface import INPUT_IDS, TextTokenizer
from toolchain.tokenizers.sources import find_tokenizer, folder_model, query_length

TokenizerFiles = tuple[Path | None, Path | None]  # data.tokenizer (tokenizer.json), data.vocab (vocab.txt)


@dataclass(frozen=True)
class OnnxModel:
    """An opened ONNX model: the file, what inspect_onnx read, and its inputs with fixed shapes."""

    path: Path  # the .onnx file itself
    info: Any  # converters.onnx_tflite.OnnxInfo
    shapes: dict[str, list[int]]  # every input, dynamic axes fixed
    inputs: tuple[ModelInput, ...]  # by name, with numpy dtypes (what the tokenizer outputs bind to)
    ids_input: str  # the input that takes token ids
    seq_len: int

    def reference(self) -> Any:
        """The model in onnxruntime (converters.onnx_tflite.OnnxReference, one thread)."""
        return ox.OnnxReference(self.path, self.info.inputs)


def open_onnx(
    source: Path,
    input_shapes: dict[str, list[int]] | None,
    seq_len: int | None,
    tokenizer_files: TokenizerFiles,
    strict: bool = True,
    model_file: Path | None = None,
) -> tuple[OnnxModel, TextTokenizer | None]:
    """The opened model and its tokenizer (None: none given or beside it; the caller decides).

    `strict`: the recipe's source, whose fixed query length data.seq_len must match (a teacher: False).
    `model_file`: the .onnx a Hugging Face folder became (sources/hub_export.py); tokenizer files are still
    the folder's."""
    path = model_file or folder_model(source)
    info = ox.inspect_onnx(path)
    shapes = ox.fixed_shapes(info, input_shapes or {}, seq_len)
    ids = next((i for i in info.inputs if canonical_name(i.name) == INPUT_IDS), info.inputs[0])
    length = query_length(int(shapes[ids.name][-1]), seq_len, strict)
    inputs = tuple(ModelInput(i.name, i.dtype) for i in info.inputs)
    model = OnnxModel(path, info, shapes, inputs, ids.name, length)
    tokenizer = find_tokenizer(*tokenizer_files, source, length)
    if tokenizer is not None:
        check_vocab_fits(tokenizer.vocab_size, ox.embedding_rows(path, ids.name), path.name)
    return model, tokenizer
