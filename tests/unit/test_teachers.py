"""Distillation teachers of any format (toolchain/steps/teachers.py): scores files, the score cache, refusals.

Fast: no training. The teachers scored here are real (a tiny Keras model with its regex vocab).
"""

import json

import numpy as np
import pytest

from toolchain.base.errors import DataError, InputFileError, RecipeError
from toolchain.base.progress import SilentProgress
from toolchain.recipe.compose import recipe_from_dict
from toolchain.steps.teachers import load_teacher, teacher_kind, teacher_logits


def _scores(tmp_path, rows):
    path = tmp_path / "scores.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_scores_file_logits_and_probs(tmp_path):
    path = _scores(
        tmp_path,
        [
            {"text": "where is my order", "logits": [3.0, 0.5, -1.0]},
            {"text": "red shoes", "probs": [0.1, 0.2, 0.7]},
        ],
    )
    teacher = load_teacher(path, 3)
    got = teacher_logits(teacher, ["red shoes", "where is my order"], SilentProgress(), "test")
    assert got[1].tolist() == [3.0, 0.5, -1.0]
    np.testing.assert_allclose(np.exp(got[0]), [0.1, 0.2, 0.7], rtol=1e-6)  # probs -> log-probs
    assert teacher.kind == "scores" and teacher.parameters is None


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"text": "a", "logits": [1.0, 2.0]}], "must be 3 finite numbers"),
        ([{"text": "a", "logits": [1.0, "x", 2.0]}], "must be 3 finite numbers"),
        ([{"text": "a"}], 'expected {"text": ..., "logits": [...]}'),
        (["a"], 'expected {"text": ..., "logits": [...]}'),
    ],
)
def test_scores_file_bad_rows_are_one_line_errors(tmp_path, rows, message):
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("{", r"\{")) as err:
        load_teacher(_scores(tmp_path, rows), 3)
    assert ":1:" in err.value.message and err.value.hint


def test_scores_file_missing_query_names_it(tmp_path):
    teacher = load_teacher(_scores(tmp_path, [{"text": "a", "logits": [1.0, 2.0, 3.0]}]), 3)
    with pytest.raises(DataError, match="no teacher scores for 1 of 2 queries \\(e.g. 'b'\\)") as err:
        teacher_logits(teacher, ["a", "b"], SilentProgress(), "train")
    assert "score every" in err.value.hint


def test_teacher_kind_refuses_unknown_files(tmp_path):
    assert teacher_kind(tmp_path / "m.onnx") == "onnx"
    assert teacher_kind(tmp_path / "m.tflite") == "tflite"
    with pytest.raises(InputFileError, match="cannot tell what kind of teacher") as err:
        teacher_kind(tmp_path / "m.bin")
    assert ".onnx" in err.value.hint
    with pytest.raises(InputFileError, match="teacher not found"):
        load_teacher(tmp_path / "missing.onnx", 3)


@pytest.mark.slow
def test_model_teacher_scores_are_cached_by_content(tiny_project, tmp_path, monkeypatch):
    """A Keras teacher file with its own vocab: scored once per query set, then read from the cache; other
    texts are a new entry; a changed teacher file is never a stale hit."""
    import shutil

    from toolchain import data as d

    monkeypatch.setenv("EDGECOMP_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "teacher"
    folder.mkdir()
    shutil.copy(tiny_project.model, folder / "model.keras")
    shutil.copy(tiny_project.vocab, folder / "vocab.txt")
    texts = d.load_queries(tiny_project.test).texts
    teacher = load_teacher(folder / "model.keras", 4)
    first = teacher_logits(teacher, texts, SilentProgress(), "test")
    again = teacher_logits(teacher, texts, SilentProgress(), "test")
    np.testing.assert_array_equal(first, again)
    assert teacher.stats == {"scored": len(texts), "cached": len(texts)}
    teacher_logits(teacher, texts[:10], SilentProgress(), "part")
    assert teacher.stats["scored"] == len(texts) + 10
    assert len(list((tmp_path / "cache" / "teacher-scores").glob("*.npy"))) == 2
    # the labels check: a teacher that scores 4 labels against a 3-label list
    wrong = load_teacher(folder / "model.keras", 3)
    with pytest.raises(DataError, match="gives \\(4,\\) scores per query, the labels file has 3"):
        teacher_logits(wrong, texts, SilentProgress(), "test")
    # same texts, a changed teacher file (other weights): scored again, never a stale hit
    from converters.keras_tflite import load_keras_model

    model = load_keras_model(folder / "model.keras")
    model.set_weights([w * 0.5 for w in model.get_weights()])
    model.save(folder / "model.keras")
    changed = load_teacher(folder / "model.keras", 4)
    other = teacher_logits(changed, texts, SilentProgress(), "test")
    assert changed.stats == {"scored": len(texts), "cached": 0}
    assert not np.allclose(other, first)
    # same model and texts, an edited vocab.txt beside it (two words swap ids): scored again
    lines = (folder / "vocab.txt").read_text("utf-8").splitlines()
    (w3, _), (w4, _) = lines[3].split(" "), lines[4].split(" ")
    lines[3], lines[4] = f"{w3} 4", f"{w4} 3"
    (folder / "vocab.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    edited = load_teacher(folder / "model.keras", 4)
    teacher_logits(edited, texts, SilentProgress(), "test")
    assert edited.stats == {"scored": len(texts), "cached": 0}


def test_recipe_refusals(tiny_untrained, tmp_path):
    from toolchain.sources.loaded import load_source

    with pytest.raises(RecipeError, match="give teacher or teacher_scores, not both"):
        recipe_from_dict(
            tiny_untrained.recipe_dict(
                steps=[{"kind": "distill", "teacher": "a.onnx", "teacher_scores": "s.jsonl"}]
            )
        )
    scores = _scores(tmp_path, [{"text": "a", "logits": [1.0, 2.0, 3.0, 4.0]}])
    plain = recipe_from_dict(tiny_untrained.recipe_dict(source={"path": str(scores)}))
    with pytest.raises(RecipeError, match="scores source can only teach a student") as err:
        load_source(plain)
    assert "kind: distill" in err.value.hint


def test_unlabelled_flag_needs_a_distill_step(tiny_untrained):
    from toolchain.recipe.compose import compose_recipe

    flags = {"unlabelled": str(tiny_untrained.train)}
    with pytest.raises(RecipeError, match="--unlabelled is for a distill step") as err:
        compose_recipe(None, tiny_untrained.model, {}, distill=flags)
    assert "distill-student-int8" in err.value.hint
    recipe = compose_recipe(None, tiny_untrained.model, {}, preset="distill-student-int8", distill=flags)
    assert recipe.steps[0].unlabelled == tiny_untrained.train


def test_student_tokenizer_flag_sets_the_distill_step(tiny_untrained):
    from toolchain.recipe.compose import compose_recipe

    flags = {"student_tokenizer": "teacher"}
    with pytest.raises(RecipeError, match="--student-tokenizer is for a distill step"):
        compose_recipe(None, tiny_untrained.model, {}, distill=flags)
    recipe = compose_recipe(None, tiny_untrained.model, {}, preset="distill-int8", distill=flags)
    assert recipe.steps[0].student_tokenizer == "teacher"


def test_student_words_flag_merges_into_the_student_vocab(tiny_untrained):
    from toolchain.recipe.compose import compose_recipe

    flags = {"student_vocab": {"words": "unicode"}}
    with pytest.raises(RecipeError, match="--student-words is for a distill step"):
        compose_recipe(None, tiny_untrained.model, {}, distill=flags)
    recipe = compose_recipe(None, tiny_untrained.model, {}, preset="distill-int8", distill=flags)
    assert recipe.steps[0].student_vocab is not None and recipe.steps[0].student_vocab.words == "unicode"
