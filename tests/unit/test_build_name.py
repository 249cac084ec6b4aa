"""A flags-only convert names the build after the user's model, never the generic `model`."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolchain.recipe.compose import compose_recipe
from toolchain.recipe.naming import default_build_name


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("path/to/intent.keras", "intent"),
        ("examples/shopping_intent/model.keras", "shopping_intent"),
        ("shop/model.h5", "shop"),
        ("my-bert/onnx/model.onnx", "my-bert"),
        ("exports/ranker/saved_model", "ranker"),
        ("search models/v1.2/model.keras", "v1.2"),
        ("query encoder/model.onnx", "query_encoder"),
    ],
)
def test_default_build_name(source, name):
    assert default_build_name(Path(source)) == name


def test_a_bare_model_file_takes_its_folder_name(tmp_path, monkeypatch):
    folder = tmp_path / "intent-v2"
    folder.mkdir()
    monkeypatch.chdir(folder)
    assert default_build_name(Path("model.keras")) == "intent-v2"


def test_flags_only_recipe_uses_it_and_out_still_wins(tmp_path):
    model = tmp_path / "catalog_intents" / "model.keras"
    model.parent.mkdir()
    model.write_bytes(b"")  # compose_recipe checks no file; the build would
    recipe = compose_recipe(None, model, {"quantization.mode": "int8"})
    assert recipe.name == "catalog_intents" and recipe.build_dir == Path("build/catalog_intents")
    named = compose_recipe(None, model, {"name": "mine", "output.dir": str(tmp_path / "b")})
    assert named.build_dir == tmp_path / "b" / "mine"
