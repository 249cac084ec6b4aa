"""Distillation on the tiny project: real Keras training, cached teacher logits, unlabelled queries."""

import json

import numpy as np
import pytest

from toolchain.base.errors import StepError
from toolchain.recipe.compose import recipe_from_dict
from toolchain.recipe.steps import DistillStep

pytestmark = pytest.mark.slow
STUDENT = {"embed_dim": 8, "layers": ["conv1d:16:3", "max_pool", "dense:32"]}


def _ctx(tiny_project, y=None):
    from toolchain import data as d
    from toolchain.base.progress import SilentProgress
    from toolchain.steps.base import StepContext

    tok = d.Tokenizer(d.load_vocab(tiny_project.vocab), tiny_project.seq_len)
    labels = d.load_labels(tiny_project.labels)
    train, val = d.load_queries(tiny_project.train), d.load_queries(tiny_project.val)
    return StepContext(
        tok.encode_batch(train.texts),
        train.label_ids(labels) if y is None else y,
        tok.encode_batch(val.texts),
        val.label_ids(labels),
        labels,
        0,
        SilentProgress(),
        tokenizer=tok,
        train_texts=train.texts,
    )


def _teacher(tiny_project):
    from converters.keras_tflite import load_keras_model

    return load_keras_model(tiny_project.model)


def test_distill_build_with_unlabelled_queries_and_hidden_matching(tiny_project, tmp_path):
    from tests.fixtures.tiny import make_queries, write_jsonl
    from toolchain.pipeline import build

    logs = write_jsonl(tmp_path / "logs.jsonl", [{"text": r["text"]} for r in make_queries(50, 7)])
    step = {
        "kind": "distill",
        "student": STUDENT,
        "epochs": 6,
        "unlabelled": str(logs),
        "pseudo_label_min_confidence": 0.5,
        "match_layers": {"hidden": "dense"},
    }
    res = build(recipe_from_dict(tiny_project.recipe_dict(name="distill", steps=[step])))
    rep = res.report.to_json()["steps"][0]
    assert (
        rep["student_parameters"] * 2
        < rep["teacher_parameters"]
        == res.report.to_json()["source"]["parameters"]
    )
    # the same count for the Keras student (step), its int8 .tflite (report) and the fp32 teacher .tflite
    from converters.keras_tflite import keras_to_tflite
    from converters.tflite_model import parse_tflite

    assert rep["student_parameters"] == rep["parameters"] == res.report.to_json()["model"]["parameters"]
    teacher_fp32 = parse_tflite(keras_to_tflite(_teacher(tiny_project), "float32"))
    assert teacher_fp32.parameter_count == rep["teacher_parameters"]
    assert rep["rows"] == {
        "labelled": 400,
        "unlabelled": 200,
        "augmented": 0,
        "pseudo_labelled": rep["rows"]["pseudo_labelled"],
    }
    ids = _ctx(tiny_project).tokenizer.encode_batch([r["text"] for r in make_queries(50, 7)])
    confident = int(np.sum(_teacher(tiny_project).predict(ids, verbose=0).max(1) >= 0.5))
    assert rep["rows"]["pseudo_labelled"] == confident > 0
    assert rep["matched_layers"] == {"hidden": "dense"}
    assert rep["float_test_accuracy"] >= 0.85
    assert (
        res.report.to_json()["evaluation"]["vs_source_float"]["converted"]["accuracy"] >= 0.85
    )  # int8 student
    saved = json.loads((res.dir / "report.json").read_text())
    assert saved["steps"][0]["kind"] == "distill"


def test_soft_targets_alone_teach_the_student(tiny_project):
    """alpha=1 ignores the (here deliberately wrong) hard labels: the student must learn from the teacher."""
    from toolchain.steps import distill

    ctx = _ctx(tiny_project)
    wrong = np.zeros_like(ctx.train_y)
    cfg = DistillStep(student=STUDENT, alpha=1.0, temperature=2.0, epochs=8)
    student = distill.run(cfg, _teacher(tiny_project), _ctx(tiny_project, y=wrong)).model
    val_acc = float(np.mean(student.predict(ctx.val_x, verbose=0).argmax(1) == ctx.val_y))
    assert val_acc >= 0.85
    hard_only = DistillStep(student=STUDENT, alpha=0.0, epochs=3)
    student = distill.run(hard_only, _teacher(tiny_project), _ctx(tiny_project, y=wrong)).model
    assert float(np.mean(student.predict(ctx.val_x, verbose=0).argmax(1) == ctx.val_y)) <= 0.35


def test_augmented_copies_are_scored_by_the_teacher_and_agreement_picks_the_epoch(tiny_project):
    """augment adds teacher-scored perturbed queries (counted in the report); select_by agreement keeps
    the epoch whose val predictions match the teacher's best."""
    from toolchain.steps import distill
    from toolchain.steps.augment import augment_queries

    ctx = _ctx(tiny_project)
    aug = {"copies": 2, "ops": ["drop", "typo"]}
    cfg = DistillStep(student=STUDENT, epochs=3, augment=aug, select_by="agreement")
    teacher = _teacher(tiny_project)
    result = distill.run(cfg, teacher, ctx)
    rep = result.report
    extra = augment_queries(ctx.train_texts, 2, 0, ["drop", "typo"])
    assert rep["rows"]["augmented"] == len(extra) > len(ctx.train_texts)
    assert rep["selected_by"] == "agreement" and len(rep["val_agreement_per_epoch"]) == 3
    t_val = teacher.predict(ctx.val_x, verbose=0).argmax(1)
    s_val = result.model.predict(ctx.val_x, verbose=0).argmax(1)
    assert rep["student_val_agreement"] == round(float(np.mean(s_val == t_val)), 4)
    assert rep["student_val_agreement"] == max(rep["val_agreement_per_epoch"])
    # the copies' rows, their order and their hard labels where the teacher is sure: test_rare_intents.py


def test_teacher_logits_reproduce_its_probabilities(tiny_project):
    from toolchain.steps.student import predict_logits

    teacher = _teacher(tiny_project)
    x = _ctx(tiny_project).val_x[:20]
    logits = predict_logits(teacher, x)[0]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    np.testing.assert_allclose(probs, teacher.predict(x, verbose=0), atol=1e-5)


def test_bad_students_are_clear_errors(tiny_project, tmp_path):
    from tests.fixtures.tiny import tiny_model
    from toolchain.steps import distill

    teacher, ctx = _teacher(tiny_project), _ctx(tiny_project)
    with pytest.raises(StepError, match=r"cannot match teacher hidden \(32,\) with student dense \(8,\)"):
        distill.run(
            DistillStep(student={"layers": ["max_pool", "dense:8"]}, match_layers={"hidden": "dense"}),
            teacher,
            ctx,
        )
    with pytest.raises(StepError, match="student has no layer 'nope'") as err:
        distill.run(DistillStep(student=STUDENT, match_layers={"hidden": "nope"}), teacher, ctx)
    assert "dense" in err.value.hint
    wrong_head = tiny_model(50, 7, seq_len=tiny_project.seq_len)
    wrong_head.save(tmp_path / "student.keras")
    with pytest.raises(StepError, match="has 7 outputs, expected 4 labels"):
        distill.run(DistillStep(student_path=tmp_path / "student.keras"), teacher, ctx)
