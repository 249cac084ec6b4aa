"""The build name of a flags-only convert (no recipe, no --out): named after the user's model, not `model`.

`intent.keras` -> intent. Exporters give files and folders generic names (`model.keras`, `model.onnx`,
`saved_model/`, Hugging Face's `onnx/model.onnx`), and a build called `build/model` says nothing and collides
with the next one, so a generic name falls back to the nearest folder with a real name:
`shopping/model.keras` -> shopping, `my-bert/onnx/model.onnx` -> my-bert. Characters a build name may not
hold (the recipe's `name` pattern) become `_`.
"""

from __future__ import annotations

import re
from pathlib import Path

GENERIC_NAMES = frozenset(
    {"model", "models", "saved_model", "savedmodel", "export", "exported", "onnx", "keras", "tflite", "1"}
)
FALLBACK = "model"


def _clean(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip("._-")


def default_build_name(source: Path) -> str:
    """The model file's stem (a folder: its name), or the nearest parent folder's if that is generic."""
    path = source.expanduser().absolute()
    first = path.stem if path.suffix and not path.is_dir() else path.name
    for name in (first, *(p.name for p in path.parents)):
        cleaned = _clean(name)
        if cleaned and cleaned.lower() not in GENERIC_NAMES:
            return cleaned
    return FALLBACK
