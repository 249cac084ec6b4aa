"""Step configs, presets and --preset: bad recipes fail with the key and a fix; presets compose with flags."""

import pytest
import yaml
from typer.testing import CliRunner

from toolchain.base.errors import RecipeError
from toolchain.recipe.compose import apply_preset, compose_recipe, load_recipe, recipe_from_dict
from toolchain.recipe.presets import PRESETS
from toolchain.recipe.students import StudentSpec

SRC = {"source": {"path": "m.keras"}}


def _steps(*steps, mode="int8"):
    return {**SRC, "steps": list(steps), "quantization": {"mode": mode}}


@pytest.mark.parametrize(
    "data, message",
    [
        (
            _steps({"kind": "distill", "student": {"layers": ["lstm:32", "max_pool"]}}),
            "unknown student layer 'lstm:32'; valid layers: conv1d:FILTERS",
        ),
        (
            _steps({"kind": "distill", "student": {"layers": ["dense:32"]}}),
            "exactly one max_pool or mean_pool",
        ),
        (_steps({"kind": "distill", "student": {"layers": ["dense:0", "max_pool"]}}), "positive integers"),
        (
            _steps({"kind": "distill", "temperature": 0}),
            "steps.0.distill.temperature: temperature must be > 0",
        ),
        (_steps({"kind": "distill", "temperature": -2}), "temperature must be > 0"),
        (_steps({"kind": "distill", "alpha": 1.5}), "steps.0.distill.alpha"),
        (
            _steps({"kind": "distill", "student": {}, "student_path": "s.keras"}),
            "give student or student_path, not both",
        ),
        (_steps({"kind": "distill", "teachr": "t.keras"}), "unknown key 'steps.0.distill.teachr'"),
        (
            _steps({"kind": "lowrank", "rank": 4, "energy": 0.9}),
            "choose one of rank, energy, param_reduction",
        ),
        (_steps({"kind": "lowrank", "rank": 0}), "steps.0.lowrank.rank"),
        (_steps({"kind": "prune", "m_by_n": "2:4", "target_sparsity": 0.8}), "fixes the sparsity at 50%"),
        (_steps({"kind": "prune", "m_by_n": "3:4"}), "steps.0.prune.m_by_n"),
        (_steps({"kind": "prune", "m_by_n": "2:4", "block": [1, 4]}), "choose m_by_n or block"),
        (_steps({"kind": "qat"}, {"kind": "prune"}), "qat must be the last step"),
        (_steps({"kind": "qat"}, mode="float16"), "set quantization.mode to int8"),
        (_steps({"kind": "vocab_prune", "coverage": 1.5}), "steps.0.vocab_prune.coverage"),
        (_steps({"kind": "factorize"}), "unknown step kind"),
    ],
)
def test_bad_step_configs_are_one_line_errors(data, message):
    with pytest.raises(RecipeError) as err:
        recipe_from_dict(data)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_step_kind_lists_every_kind():
    with pytest.raises(RecipeError) as err:
        recipe_from_dict(_steps({"kind": "factorize"}))
    for kind in ("prune", "distill", "lowrank", "qat", "vocab_prune"):
        assert kind in err.value.hint


def test_defaults_are_explicit_in_the_saved_recipe():
    r = recipe_from_dict(_steps({"kind": "distill"}, {"kind": "lowrank"}, {"kind": "prune", "m_by_n": "2:4"}))
    assert r.steps[0].student == StudentSpec() and r.steps[0].student_path is None  # the default student
    assert r.steps[1].param_reduction == 0.5
    assert r.steps[2].target_sparsity == 0.5
    again = recipe_from_dict(yaml.safe_load(r.to_yaml()))
    assert again.steps == r.steps


def test_step_paths_resolve_against_the_recipe_file(tmp_path):
    path = tmp_path / "r.yaml"
    steps = [{"kind": "distill", "student_path": "s.keras", "unlabelled": "logs/q.jsonl"}]
    path.write_text(yaml.safe_dump({**SRC, "steps": steps}))
    step = load_recipe(path).steps[0]
    assert step.student_path == tmp_path / "s.keras" and step.unlabelled == tmp_path / "logs" / "q.jsonl"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_a_valid_recipe(name):
    r = apply_preset(recipe_from_dict(dict(SRC)), name)
    assert r.source.path.name == "m.keras"


def test_preset_replaces_steps_and_mode_and_flags_still_win(tmp_path):
    path = tmp_path / "r.yaml"
    base = {
        **SRC,
        "steps": [{"kind": "lowrank"}],
        "quantization": {"mode": "float32", "calibration_samples": 77},
    }
    path.write_text(yaml.safe_dump(base))
    r = compose_recipe(path, None, {}, preset="distill-prune-int8")
    assert [s.kind for s in r.steps] == ["distill", "prune", "qat"]
    assert r.quantization.mode == "int8" and r.quantization.calibration_samples == 77
    r = compose_recipe(
        path, None, {"quantization.mode": "int8"}, {"target_sparsity": 0.6}, preset="prune80-int8"
    )
    assert r.steps[0].target_sparsity == 0.6
    with pytest.raises(RecipeError, match="set quantization.mode to int8"):
        compose_recipe(path, None, {"quantization.mode": "dynamic"}, preset="qat-int8")


def test_cli_unknown_preset_lists_the_presets(tmp_path):
    from toolchain.cli.main import app

    result = CliRunner().invoke(app, ["convert", str(tmp_path / "m.keras"), "--preset", "tiny-magic"])
    assert result.exit_code == 2
    assert "'tiny-magic' is not one of" in result.output and "distill-prune-int8" in result.output
    assert not (tmp_path / "build").exists()


def test_rank_rules():
    import numpy as np

    from toolchain.recipe.steps import LowRankStep
    from toolchain.steps.lowrank import choose_rank, saving_rank_limit

    s = np.array([4.0, 2.0, 1.0, 1.0])  # energies 16, 4, 1, 1 of 22
    assert choose_rank(LowRankStep(energy=0.9), "d", s, 8, 8) == 2
    assert choose_rank(LowRankStep(energy=1.0), "d", s, 8, 8) == 4
    r = choose_rank(LowRankStep(param_reduction=0.5), "d", s, 128, 128, bias=128)
    assert r * 256 + 128 <= 0.5 * (128 * 128 + 128) and (r + 1) * 256 + 128 > 0.5 * (128 * 128 + 128)
    assert saving_rank_limit(128, 22) == 18  # 18 * 150 = 2700 < 2816
    assert choose_rank(LowRankStep(ranks={"d": 5}), "d", s, 8, 8) == 5


def test_vocab_rules_are_deterministic():
    from collections import Counter

    from toolchain.recipe.steps import VocabPruneStep
    from toolchain.steps.vocab import choose_words

    counts = Counter({"shoes": 10, "red": 5, "blue": 5, "xl": 1})
    assert choose_words(VocabPruneStep(min_count=2), counts) == ["shoes", "blue", "red"]
    assert choose_words(VocabPruneStep(coverage=0.45), counts) == ["shoes"]  # 10 of 21
    assert choose_words(VocabPruneStep(coverage=0.7), counts) == ["shoes", "blue"]
    assert choose_words(VocabPruneStep(max_size=5), counts) == ["shoes", "blue"]


def test_student_tokenizer_teacher_refusals():
    from pydantic import ValidationError

    from toolchain.recipe.steps import DistillStep

    assert DistillStep(student_tokenizer="teacher").student_tokenizer == "teacher"
    with pytest.raises(ValidationError, match="student_vocab is for word-level students"):
        DistillStep(student_tokenizer="teacher", student_vocab={"max_size": 100})
    with pytest.raises(ValidationError, match="scores file has no tokenizer"):
        DistillStep(student_tokenizer="teacher", teacher_scores="scores.jsonl")
