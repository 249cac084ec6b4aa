"""2:4 structured sparsity on rank-2 weights and the sparsity-honesty line."""

import pytest

from toolchain.recipe.compose import recipe_from_dict

pytestmark = pytest.mark.slow


def test_two_four_sparsity_on_rank2_weights(tiny_project):
    from toolchain.pipeline import build

    step = {"kind": "prune", "m_by_n": "2:4", "schedule": "constant", "epochs": 2}
    res = build(recipe_from_dict(tiny_project.recipe_dict(name="prune24", steps=[step])))
    rep = res.report.to_json()["steps"][0]
    assert rep["structure"] == "2:4 structured" and rep["structured_skipped"] == ["conv"]
    assert rep["m_by_n_verified"] == {"embedding": True, "hidden": True, "intent": True}
    assert all(abs(info["sparsity"] - 0.5) <= 0.01 for info in rep["layers"].values())
    assert "XNNPACK" in rep["sparsity_honesty"] and "gzipped download" in rep["sparsity_honesty"]
    assert any("conv left dense" in w for w in res.report.to_json()["warnings"])
