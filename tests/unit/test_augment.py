"""Query augmentation for distillation (toolchain/steps/augment.py) and the teacher-sure agreement split."""

from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from toolchain.base.errors import RecipeError
from toolchain.base.types import AugmentOrigin, SourceFormat
from toolchain.recipe.compose import compose_recipe, recipe_from_dict
from toolchain.recipe.steps import AugmentSpec, DistillStep
from toolchain.steps.augment import augment_queries, perturb, resolve_augment

TEXTS = ["red running shoes under 50", "where is my parcel", "cancel order 12345", "nike", "size help please"]


def test_copies_are_deterministic_new_and_distinct():
    a = augment_queries(TEXTS, 8, seed=3)
    assert a == augment_queries(TEXTS, 8, seed=3)
    assert a != augment_queries(TEXTS, 8, seed=4)
    assert len(a) == len(set(a)) and not set(a) & set(TEXTS)
    assert 0 < len(a) <= 8 * len(TEXTS)


def test_each_operation():
    import random

    words = ["red", "running", "shoes", "under", "fifty"]
    rng = random.Random(0)
    assert len(perturb(words, "drop", rng, [])) == 4
    swapped = perturb(words, "swap", rng, [])
    assert sorted(swapped) == sorted(words) and swapped != words
    typo = perturb(words, "typo", rng, [])
    assert len(typo) == 5 and sum(x != y for x, y in zip(typo, words, strict=True)) == 1
    assert perturb(words, "replace", rng, ["zzz"]).count("zzz") == 1
    span = perturb(words, "span", rng, [])
    assert 1 <= len(span) < 5 and " ".join(span) in " ".join(words)
    assert perturb(["nike"], "drop", rng, []) == ["nike"]  # a one-word query keeps its word


def test_unknown_operation_is_an_error():
    with pytest.raises(ValueError, match="unknown augmentation op"):
        augment_queries(TEXTS, 2, 0, ["shuffle"])


def test_agreement_where_the_teacher_is_sure():
    from toolchain.evaluation.student_gates import confident_agreement

    teacher = np.array([[0.97, 0.03], [0.55, 0.45], [0.04, 0.96], [0.48, 0.52]])
    student = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    got = confident_agreement(teacher, student, labels=np.array([0, 0, 0, 1]))
    assert got["teacher_sure_queries"] == 2 and got["teacher_unsure_queries"] == 2
    assert got["teacher_sure_min_prob"] == 0.95 and got["teacher_accuracy_where_sure"] == 0.5
    assert got["agreement_where_teacher_sure"] == 0.5  # row 0 agrees, row 2 does not
    assert got["agreement_where_teacher_unsure"] == 0.5  # row 1 differs, row 3 agrees


def test_on_by_default_for_a_foreign_model_teacher_and_an_explicit_off_survives_the_saved_recipe(tmp_path):
    """distill.augment unset is "auto": the AugmentSpec defaults for an ONNX/TFLite/Keras teacher, off for a
    scores file (it cannot score new queries) and the chain's model; null / off / false stay off through
    the recipe.yaml a build saves (written without nulls), and --no-augment sets it from the CLI."""
    onnx, scores = SimpleNamespace(kind=SourceFormat.ONNX), SimpleNamespace(kind=SourceFormat.SCORES)
    assert DistillStep().augment == "auto"
    assert resolve_augment("auto", onnx) == (AugmentSpec(), AugmentOrigin.TEACHER_DEFAULT)
    assert AugmentSpec().copies == 4
    assert resolve_augment("auto", SimpleNamespace(kind=SourceFormat.TFLITE))[1] == "foreign-teacher default"
    assert resolve_augment("auto", scores) == (None, None)
    assert resolve_augment("auto", None) == (None, None)  # the chain's own model teaches
    mine = AugmentSpec(copies=8)
    assert resolve_augment(mine, None) == (mine, AugmentOrigin.RECIPE)
    for off in (None, False, "off"):
        step = DistillStep(augment=off)
        assert step.augment == "off" and resolve_augment(step.augment, onnx) == (None, None)
    assert DistillStep(augment=True).augment == AugmentSpec()
    with pytest.raises(ValueError):
        DistillStep(augment="sometimes")

    model = tmp_path / "teacher.onnx"
    model.write_bytes(b"")
    recipe = {"name": "r", "source": {"path": str(model)}, "steps": [{"kind": "distill", "augment": None}]}
    saved = recipe_from_dict(recipe).to_yaml()
    assert "augment: 'off'" in saved or "augment: off" in saved
    reloaded = recipe_from_dict(yaml.safe_load(saved))
    assert reloaded.steps[0].augment == "off"
    del recipe["steps"][0]["augment"]
    assert recipe_from_dict(recipe).steps[0].augment == "auto"
    flags = compose_recipe(None, model, {}, preset="distill-student-int8", distill={"augment": "off"})
    assert flags.steps[0].augment == "off"
    with pytest.raises(RecipeError, match="--no-augment is for a distill step"):
        compose_recipe(None, model, {}, preset="dynamic", distill={"augment": "off"})
