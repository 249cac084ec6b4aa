"""Recipe: typed, versioned, strict; flags and YAML fill the same model."""

from pathlib import Path

import pytest
import yaml

from toolchain.base.errors import InputFileError, RecipeError
from toolchain.recipe.compose import apply_overrides, compose_recipe, load_recipe, recipe_from_dict

SRC = {"source": {"path": "m.keras"}}


def test_defaults_and_roundtrip(tmp_path):
    r = recipe_from_dict(dict(SRC))
    assert r.version == 1 and r.quantization.mode == "int8" and r.steps == []
    path = tmp_path / "r.yaml"
    path.write_text(r.to_yaml())
    assert load_recipe(path).quantization == r.quantization


@pytest.mark.parametrize(
    "data, message, hint",
    [
        ({**SRC, "quantisation": {}}, "unknown key 'quantisation'", "quantization"),
        ({**SRC, "quantization": {"mode": "int2"}}, "quantization.mode", "'int4'"),
        (
            {**SRC, "quantization": {"modee": "int8"}},
            "unknown key 'quantization.modee'",
            "calibration_samples",
        ),
        ({**SRC, "steps": [{"kind": "prune", "sparsity": 0.5}]}, "unknown key", "target_sparsity"),
        ({**SRC, "quantization": {"search_queries": 5}}, "quantization.search_queries", "10"),
        ({**SRC, "steps": [{"kind": "shrink"}]}, "unknown step kind", "prune"),
        ({**SRC, "steps": [{"kind": "prune", "target_sparsity": 1.5}]}, "target_sparsity", "less than 1"),
        (
            {**SRC, "steps": [{"kind": "prune", "initial_sparsity": 0.9, "target_sparsity": 0.5}]},
            "initial_sparsity",
            "",
        ),
        ({"data": {}}, "source", ""),
        ({**SRC, "version": 2}, "version", ""),
    ],
)
def test_bad_recipes_name_the_key_and_choices(data, message, hint):
    with pytest.raises(RecipeError) as err:
        recipe_from_dict(data)
    text = str(err.value)
    assert message in text
    assert hint in text


def test_yaml_paths_resolve_against_the_recipe_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "r.yaml"
    path.write_text(yaml.safe_dump({"source": {"path": "m.keras"}, "data": {"train": "d/train.jsonl"}}))
    r = load_recipe(path)
    assert r.source.path == tmp_path / "sub" / "m.keras"
    assert r.data.train == tmp_path / "sub" / "d" / "train.jsonl"


def test_missing_and_invalid_yaml(tmp_path):
    with pytest.raises(InputFileError, match="recipe not found"):
        load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: [unclosed")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(RecipeError, match="mapping"):
        load_recipe(listy)


def test_overrides_are_validated_like_yaml():
    r = recipe_from_dict(dict(SRC))
    assert apply_overrides(r, {"quantization.mode": "dynamic", "seed": 7}).quantization.mode == "dynamic"
    with pytest.raises(RecipeError, match="quantization.mode"):
        apply_overrides(r, {"quantization.mode": "int3"})


def test_compose_from_flags_adds_a_prune_step_and_discovers_data(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text("")
    r = compose_recipe(
        None,
        tmp_path / "intent.keras",
        {"quantization.mode": "int8"},
        {"schedule": "constant", "target_sparsity": 0.5, "epochs": None, "exclude": None},
    )
    assert r.name == "intent"
    assert r.steps[0].schedule == "constant" and r.steps[0].target_sparsity == 0.5
    assert r.data.train == tmp_path / "data" / "train.jsonl"
    with pytest.raises(RecipeError, match="no model given"):
        compose_recipe(None, None, {})


def test_shipped_example_recipe_is_valid():
    r = load_recipe(Path(__file__).parents[2] / "examples" / "shopping_intent" / "recipe.yaml")
    assert r.steps[0].kind == "prune" and r.quantization.mode == "int8"
