"""The distill step's rare-intent knobs (toolchain/steps/rare_intents.py) on crafted labels: no training."""

from __future__ import annotations

import numpy as np
import pytest

from toolchain.recipe.steps import DistillStep
from toolchain.steps.rare_intents import class_weights, rare_intents


def test_class_weights_follow_the_intent_frequency_with_mean_one():
    y = np.array([0] * 90 + [1] * 9 + [2] * 1)
    assert np.all(class_weights(y, 4, "none") == 1.0)
    for balance, power in (("sqrt", 0.5), ("inverse", 1.0)):
        w = class_weights(y, 4, balance)
        assert w.dtype == np.float32 and w.mean() == pytest.approx(1.0, abs=1e-6)
        # a row of a 90x rarer intent weighs 90**power times as much
        assert w[-1] / w[0] == pytest.approx(90**power, rel=1e-5)
        assert w[90] / w[0] == pytest.approx(10**power, rel=1e-5)


def test_auto_is_on_for_a_foreign_teacher_and_off_for_the_chains_model():
    y = np.array([0, 0, 0, 1])
    probs = np.array([[0.95, 0.05], [0.6, 0.4], [0.99, 0.01], [0.2, 0.8]], np.float32)
    step = DistillStep()
    assert (step.class_balance, step.sure_label_weight) == ("auto", None)
    assert rare_intents("auto", None, 0.9, y, probs, foreign_teacher=False) is None  # byte-identical path
    rare = rare_intents("auto", None, 0.9, y, probs, foreign_teacher=True)
    assert rare is not None and (rare.balance, rare.sure_weight) == ("sqrt", 0.0)
    assert rare.describe()["row_weight_range"][1] == pytest.approx(3**0.5 * rare.row_weight[0], rel=1e-4)
    # exactly balanced rows: every class weight would be 1, so nothing changes (the example trains as before)
    assert rare_intents("auto", None, 0.9, np.array([0, 1, 0, 1]), probs, foreign_teacher=True) is None
    assert rare_intents("none", 0.0, 0.9, y, probs, foreign_teacher=True) is None  # both off: as before
    on = rare_intents("none", 0.5, 0.9, np.array([0, 1, 0, 1]), probs, foreign_teacher=False)
    assert on is not None and (on.balance, on.sure_weight) == ("none", 0.5)
    assert on.sure.tolist() == [1.0, 0.0, 1.0, 0.0] and on.teacher_sure_rows == 2
    assert on.sure_label.tolist() == [0, 0, 0, 1] and on.row_weight.tolist() == [1.0] * 4
