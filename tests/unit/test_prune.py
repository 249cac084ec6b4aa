"""Pruning schedules: the plan is checked, and real tfmot fine-tuning reaches the requested sparsity."""

import pytest

from toolchain.base.errors import StepError
from toolchain.recipe.compose import recipe_from_dict
from toolchain.recipe.steps import PruneStep


def test_plan_derives_steps_from_epochs_and_data():
    from toolchain.steps.prune import plan_schedule

    plan = plan_schedule(PruneStep(target_sparsity=0.8, epochs=4, batch_size=64), n_train=6400)
    assert plan.total_steps == 400
    assert plan.begin_step == 0 and 0 < plan.end_step < plan.total_steps
    assert (plan.end_step - plan.begin_step) % plan.frequency == 0
    assert plan.final_sparsity == pytest.approx(0.8)


def test_default_tfmot_frequency_on_small_data_is_an_error_not_a_silent_noop():
    from toolchain.steps.prune import plan_schedule

    cfg = PruneStep(target_sparsity=0.8, epochs=2, batch_size=32, frequency=100)
    with pytest.raises(StepError, match="frequency 100 means the only pruning step"):
        plan_schedule(cfg, n_train=400)  # 26 steps: tfmot would prune once, to 0%


def test_plan_warns_when_the_target_is_not_reached_and_fails_when_nothing_runs():
    from toolchain.steps.prune import plan_schedule

    plan = plan_schedule(PruneStep(epochs=2, batch_size=10, end_step=30, frequency=20), n_train=200)
    assert plan.warnings and "not 80%" in plan.warnings[0]
    with pytest.raises(StepError, match="no pruning step would run"):
        plan_schedule(PruneStep(epochs=1, batch_size=10, begin_step=500, end_step=600), n_train=100)


@pytest.mark.slow
@pytest.mark.parametrize("schedule, target", [("polynomial", 0.8), ("constant", 0.5)])
def test_schedules_reach_requested_sparsity(tiny_project, schedule, target):
    from toolchain.pipeline import build

    recipe = recipe_from_dict(
        tiny_project.recipe_dict(
            name=f"prune-{schedule}",
            quantization={"mode": "float32"},
            steps=[{"kind": "prune", "schedule": schedule, "target_sparsity": target, "epochs": 3}],
        )
    )
    report = build(recipe).report.to_json()
    step = report["steps"][0]
    assert abs(step["achieved_sparsity"] - target) <= 0.02
    for layer, info in step["layers"].items():
        assert abs(info["sparsity"] - target) <= 0.02 or info["weights"] < 200, layer
    # measured after the step on the test split; the evaluation measures the same final float model again
    assert step["float_test_accuracy"] == report["evaluation"]["vs_final_float"]["reference"]["accuracy"]


@pytest.mark.slow
def test_excluded_layer_stays_dense_and_unknown_layer_is_an_error(tiny_project):
    from toolchain.pipeline import build

    ok = recipe_from_dict(
        tiny_project.recipe_dict(
            name="prune-exclude",
            quantization={"mode": "float32"},
            steps=[{"kind": "prune", "target_sparsity": 0.6, "epochs": 2, "exclude": ["embedding"]}],
        )
    )
    layers = build(ok).report.to_json()["steps"][0]["layers"]
    assert "embedding" not in layers and abs(layers["conv"]["sparsity"] - 0.6) <= 0.02
    bad = recipe_from_dict(
        tiny_project.recipe_dict(name="prune-bad", steps=[{"kind": "prune", "exclude": ["nope"]}])
    )
    with pytest.raises(StepError, match=r"unknown layers \['nope'\]"):
        build(bad)
