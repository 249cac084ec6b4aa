"""quantization.per_channel: false, one int8 weight scale per tensor (issue 25: the smallest students, where
the per-channel scales and zero points are an eighth of the bytes), and the ladder rung that asks for it."""

from __future__ import annotations

import numpy as np
import pytest

from toolchain.base.errors import RecipeError
from toolchain.recipe.compose import recipe_from_dict
from toolchain.recipe.students import StudentCandidate
from toolchain.search.auto import candidate_recipe

SRC = {"source": {"path": "t.onnx"}}


def test_per_tensor_is_for_int8_only():
    assert recipe_from_dict({**SRC, "quantization": {"per_channel": False}}).quantization.per_channel is False
    with pytest.raises(RecipeError, match="per_channel: false is for mode int8, not dynamic"):
        recipe_from_dict({**SRC, "quantization": {"mode": "dynamic", "per_channel": False}})


def test_a_per_tensor_rung_asks_its_build_for_one_scale_per_tensor():
    step = {"kind": "distill", "student": "auto"}
    recipe = recipe_from_dict({**SRC, "steps": [step]})
    rung = {"family": "word-cnn", "width": 4, "hidden": 48, "vocab_coverage": 0.99}
    per_tensor = StudentCandidate(**rung, per_channel=False)
    assert per_tensor.label == "word-cnn 4/48, words covering 99.0%, per-tensor"
    assert candidate_recipe(recipe, per_tensor).quantization.per_channel is False
    assert candidate_recipe(recipe, StudentCandidate(**rung)).quantization.per_channel is True


@pytest.mark.slow
def test_per_tensor_int8_has_one_scale_per_weight_and_is_smaller():
    from converters.keras_tflite import keras_to_tflite
    from converters.tflite_model import parse_tflite
    from tests.fixtures.tiny import SEQ_LEN, tiny_model

    model = tiny_model(300, 6)
    rng = np.random.default_rng(0)  # channels of different ranges: per-channel scales differ
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) * (1 + rng.random(w.shape[-1:]) * 4)
                       for w in model.get_weights()])  # fmt: skip
    calibration = [[rng.integers(0, 300, size=SEQ_LEN).astype(np.int32)] for _ in range(20)]
    built = {pc: keras_to_tflite(model, "int8", calibration, per_channel=pc) for pc in (True, False)}
    weights = {
        pc: [
            t for t in parse_tflite(data).tensors if t.is_constant and t.dtype == "INT8" and len(t.shape) > 1
        ]
        for pc, data in built.items()
    }
    assert weights[True] and max(len(t.scales) for t in weights[True]) > 1  # the converter's default
    assert weights[False] and all(len(t.scales) == 1 for t in weights[False])
    assert len(built[False]) < len(built[True])
