"""Low-rank factorization: exact on a low-rank matrix, saves parameters, fine-tunes, clear rank errors."""

import numpy as np
import pytest

from toolchain.base.errors import StepError
from toolchain.recipe.compose import recipe_from_dict
from toolchain.recipe.steps import LowRankStep

pytestmark = pytest.mark.slow


def _model_with_rank4_hidden():
    from tests.fixtures.tiny import tiny_model

    model = tiny_model(60, 4, seq_len=8, width=16)
    hidden = model.get_layer("hidden")
    kernel, bias = hidden.get_weights()
    rng = np.random.default_rng(0)
    low = (rng.normal(size=(kernel.shape[0], 4)) @ rng.normal(size=(4, kernel.shape[1]))).astype(np.float32)
    hidden.set_weights([low * 0.1, bias])
    return model


def test_factorization_at_the_true_rank_is_exact():
    from toolchain.steps.graph import rewrite
    from toolchain.steps.lowrank import plan_layer

    model = _model_with_rank4_hidden()
    choice, plan = plan_layer(LowRankStep(rank=4), model.get_layer("hidden"))
    assert choice.rank == 4 and choice.energy_kept == pytest.approx(1.0)
    assert choice.params_after == 4 * (32 + 32) + 32 < choice.params_before == 32 * 32 + 32
    new = rewrite(model, {"hidden": plan})
    assert [lay.__class__.__name__ for lay in new.layers if lay.name.startswith("hidden")] == [
        "Dense",
        "Dense",
    ]
    x = np.random.default_rng(1).integers(0, 60, size=(32, 8)).astype(np.int32)
    np.testing.assert_allclose(new.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_rank_larger_than_the_matrix_and_unknown_layers_are_errors():
    from toolchain.steps.lowrank import plan_layer, targets

    model = _model_with_rank4_hidden()
    with pytest.raises(StepError, match=r"rank 40 is larger than the matrix of hidden \(32 x 32\)") as err:
        plan_layer(LowRankStep(rank=40), model.get_layer("hidden"))
    assert "below 32" in err.value.hint
    choice, plan = plan_layer(LowRankStep(rank=20), model.get_layer("hidden"))
    assert plan is None and "would not save parameters" in choice.note
    with pytest.raises(StepError, match=r"unknown layers \['nope'\]"):
        targets(LowRankStep(layers=["nope"]), model)
    with pytest.raises(StepError, match="conv is a Conv1D; only Dense and Embedding"):
        targets(LowRankStep(layers=["conv"]), model)


def test_lowrank_build_halves_the_factorized_parameters(tiny_project):
    from toolchain.pipeline import build

    step = {"kind": "lowrank", "param_reduction": 0.5, "epochs": 3}
    res = build(recipe_from_dict(tiny_project.recipe_dict(name="lowrank", steps=[step])))
    rep = res.report.to_json()["steps"][0]
    assert set(rep["layers"]) == {"embedding", "hidden"}  # the classifier is left alone by default
    assert rep["factorized_reduction"] >= 0.5
    for info in rep["layers"].values():
        assert info["rank"] >= 1 and info["params_after"] <= info["params_before"] / 2
    assert rep["parameters"] < res.report.to_json()["source"]["parameters"]
    assert rep["float_test_accuracy"] >= 0.9
    assert (
        res.report.to_json()["evaluation"]["vs_source_float"]["converted"]["accuracy"] >= 0.9
    )  # int8 export works
