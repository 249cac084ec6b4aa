"""What format a model path is: one rule for the recipe source and for every distillation teacher.

keras (.keras/.h5/.hdf5), savedmodel (a folder with saved_model.pb), onnx (.onnx, or a Hugging Face-style
folder: model.onnx inside and no saved_model.pb, or a transformers / sentence-transformers folder or the
Hub's onnx/ layout, toolchain/sources/hub_folder.py), tflite (.tflite) and scores (a teacher's scores .jsonl).
The recipe's `source.format` overrides the detection for the source; a teacher is always detected (a
SavedModel teacher is loaded as Keras). Anything else is one InputFileError naming the path.
"""

from __future__ import annotations

from pathlib import Path

from converters.keras_tflite import detect_format
from toolchain.base.types import AUTO, SourceFormat
from toolchain.recipe.schema import Recipe
from toolchain.sources.hub_folder import is_model_folder, read_folder
from toolchain.tokenizers.sources import FOLDER_MODEL

FOREIGN_SUFFIXES = {".tflite": SourceFormat.TFLITE, ".jsonl": SourceFormat.SCORES}


def path_format(path: Path) -> SourceFormat:
    """keras, savedmodel, onnx, tflite or scores, from what is on disk."""
    if path.is_dir() and (path / FOLDER_MODEL).is_file() and not (path / "saved_model.pb").is_file():
        return SourceFormat.ONNX
    if is_model_folder(path):  # a Hugging Face folder: exported to ONNX first (sources/hub_export.py)
        return SourceFormat.ONNX
    if path.is_dir() and (path / "config.json").is_file() and not (path / "saved_model.pb").is_file():
        read_folder(path)  # a Hugging Face folder without weights: its error names what is missing
    return FOREIGN_SUFFIXES.get(path.suffix.lower()) or SourceFormat(detect_format(path))


def source_format(recipe: Recipe) -> SourceFormat:
    """The recipe's source.format, or what is on disk (`path_format`)."""
    fmt = recipe.source.format
    return path_format(recipe.source.path) if fmt == AUTO else SourceFormat(fmt)
