"""distill-auto's parts that need no training: the gate seam on per-query predictions, `student: auto` in
the recipe (the default for an ONNX or Hugging Face folder teacher), the candidates' student fields, the
teacher-embedding projection and a refusal (tests/e2e/test_distill_auto.py runs it end to end)."""

from __future__ import annotations

import numpy as np
import pytest

from toolchain.base.errors import RecipeError
from toolchain.evaluation.student_gates import QueryPredictions, quality, student_gates
from toolchain.recipe.compose import apply_preset, recipe_from_dict
from toolchain.recipe.schema import EvaluationSpec
from toolchain.recipe.students import StudentCandidate, StudentSpec, parse_student_layer
from toolchain.steps.student import teacher_table
from toolchain.tasks import TEACHER_DEFAULT_GATES

LABELS = ["a", "b", "c"]


def _predictions(student: list[int], teacher: list[int], labels: list[int], sure: float = 0.96):
    probs = np.full((len(teacher), 3), (1.0 - sure) / 2)
    probs[np.arange(len(teacher)), teacher] = sure
    return QueryPredictions(np.array(labels), probs, np.array(student), LABELS)


def test_the_gates_are_the_final_builds_foreign_teacher_defaults_with_every_check():
    labels = [0] * 10 + [1] * 10 + [2] * 10
    good = student_gates(EvaluationSpec())(_predictions(labels, labels, labels))
    assert good.passed
    # the same gates as a foreign teacher's build (teacher_gates.effective_gates / TEACHER_DEFAULT_GATES)
    assert [c.gate for c in good.checks] == list(TEACHER_DEFAULT_GATES)
    assert all(c.passed for c in good.checks)
    bad_student = [0] * 10 + [1] * 10 + [0] * 10  # intent c never predicted
    verdict = student_gates(EvaluationSpec())(_predictions(bad_student, labels, labels))
    assert not verdict.passed
    assert [m.gate for m in verdict.misses] == list(TEACHER_DEFAULT_GATES)
    assert verdict.reasons[1] == (
        "min_agreement_where_sure: agreement with the teacher where it is sure (30 queries) 66.67% is below "
        "95.00%"
    )
    assert verdict.reasons[3].startswith("min_recall_ratio: 1 of 3 intents (1 dead) have recall below 50%")
    q = verdict.quality
    assert (q.worst_intent, q.worst_intent_recall, q.teacher_recall_of_worst) == ("c", 0.0, 1.0)
    assert (q.recall_ratio, q.dead_intents) == (0.0, 1)
    assert q.accuracy_drop_points == pytest.approx(33.33) and q.teacher_sure_queries == 30
    # the recipe's gates replace the defaults: only agreement >= 60% here
    mine = student_gates(EvaluationSpec(min_agreement=0.6))(_predictions(bad_student, labels, labels))
    assert mine.passed and [c.gate for c in mine.checks] == ["min_agreement"]


def test_a_rare_intent_at_a_quarter_of_the_teachers_recall_misses_the_recall_gate():
    labels = [0] * 48 + [1] * 48 + [2] * 4
    student = [0] * 48 + [1] * 48 + [2, 0, 0, 0]
    verdict = student_gates(EvaluationSpec(min_recall_ratio=0.5))(_predictions(student, labels, labels))
    assert [m.gate for m in verdict.misses] == ["min_recall_ratio"]
    assert verdict.quality.worst_intent == "c" and verdict.quality.recall_ratio == 0.25
    assert student_gates(EvaluationSpec(min_recall_ratio=0.25))(_predictions(student, labels, labels)).passed


def test_agreement_where_the_teacher_is_sure():
    labels = [0, 1, 2, 0]
    p = _predictions([0, 1, 2, 1], labels, labels)
    p.teacher_probs[3] = [0.45, 0.4, 0.15]  # the teacher hesitates on the one the student misses
    q = quality(p)
    assert (q.agreement, q.agreement_where_teacher_sure, q.teacher_sure_queries) == (0.75, 1.0, 3)
    assert q.teacher_accuracy_where_sure == 1.0
    # "sure" is a top-1 probability >= 0.95 (tasks.py TEACHER_SURE_MIN_PROB), not a lead over the top-2: a
    # 0.9 / 0.05 / 0.05 teacher leads by 0.85 and still is not sure; where it is sure it is right on 2 of 3
    p = _predictions([0, 1, 2, 1], [0, 1, 1, 0], labels)
    p.teacher_probs[3] = [0.9, 0.05, 0.05]
    q = quality(p)
    assert (q.teacher_sure_queries, q.teacher_accuracy_where_sure) == (3, 0.6667)


def test_student_auto_is_the_default_for_an_onnx_or_folder_teacher(tmp_path):
    steps = [{"kind": "distill"}]
    assert recipe_from_dict({"source": {"path": "t.onnx"}, "steps": steps}).steps[0].student == "auto"
    (tmp_path / "hf").mkdir()
    assert (
        recipe_from_dict({"source": {"path": str(tmp_path / "hf")}, "steps": steps}).steps[0].student
        == "auto"
    )
    keras = recipe_from_dict({"source": {"path": "m.keras"}, "steps": steps}).steps[0]
    assert keras.student == StudentSpec()  # the chain's own Keras model: the default student, as before
    scores = [{"kind": "distill", "teacher_scores": "s.jsonl"}]
    assert recipe_from_dict({"source": {"path": "t.onnx"}, "steps": scores}).steps[0].student == StudentSpec()
    named = [{"kind": "distill", "student": {"embed_dim": 4, "layers": ["max_pool"]}}]
    assert recipe_from_dict({"source": {"path": "t.onnx"}, "steps": named}).steps[0].student.embed_dim == 4
    plan = apply_preset(recipe_from_dict({"source": {"path": "t.onnx"}}), "distill-auto")
    assert plan.steps[0].student == "auto" and plan.quantization.mode == "int8"


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"student": {"embed_dim": 4, "layers": ["max_pool"]}, "auto": {}}, "set student: auto or drop auto"),
        ({"student": "auto", "student_tokenizer": "teacher"}, "chooses the tokenizer per candidate"),
        ({"student": "auto", "auto": {"candidates": [{"family": "cnn", "width": 8, "hidden": 8}]}}, "family"),
    ],
)
def test_auto_refusals(step, message):
    with pytest.raises(RecipeError, match=message):
        recipe_from_dict({"source": {"path": "t.onnx"}, "steps": [{"kind": "distill", **step}]})


def test_each_family_is_a_distill_student():
    word = StudentCandidate(family="word-cnn", width=8, hidden=32, vocab=4000).step_fields()
    assert word == {
        "student": {"embed_dim": 8, "layers": ["conv1d:32:3", "max_pool"]},
        "student_tokenizer": "word",
        "student_vocab": {
            "max_size": 4000,
            "min_count": 1,
            "coverage": None,
            "seq_len": None,
            "words": "ascii",
        },
    }
    gru = StudentCandidate(family="word-bigru", width=8, hidden=16).step_fields()
    assert gru["student"]["layers"] == ["bigru:16", "max_pool"] and "student_vocab" not in gru
    teacher = StudentCandidate(family="teacher-cnn", width=32, hidden=64).step_fields()
    assert teacher["student_tokenizer"] == "teacher" and teacher["student"]["embedding_init"] == "teacher"
    assert parse_student_layer("bigru:16") == ("bigru", [16.0])
    with pytest.raises(ValueError, match="must come before the pooling layer"):
        StudentSpec(layers=["max_pool", "bigru:8"])
    bert = StudentCandidate(family="tiny-bert", width=32, hidden=64, heads=4, layers=2)
    assert bert.step_fields() == {
        "student": {
            "embed_dim": 32,
            "layers": ["encoder:4:64"] * 2 + ["mean_pool"],
            "embedding_init": "teacher",
        },
        "student_tokenizer": "teacher",
    }
    assert "MEAN" in bert.float_fallback_ops() and not StudentCandidate(**WORD).float_fallback_ops()
    assert StudentSpec(embed_dim=32, layers=["encoder:4:64", "mean_pool"]).encoder_blocks == [(4, 64)]
    with pytest.raises(ValueError, match="not a multiple of the heads"):
        StudentSpec(embed_dim=30, layers=["encoder:4:64", "mean_pool"])
    with pytest.raises(ValueError, match="only tiny-bert takes the teacher's sizes"):
        StudentCandidate(family="word-cnn", width="teacher", hidden=32)


WORD = {"family": "word-cnn", "width": 8, "hidden": 32}


def test_the_teacher_table_keeps_its_shape_where_it_can_and_is_projected_where_not():
    table = np.random.default_rng(0).normal(size=(50, 16)).astype(np.float32)
    assert np.array_equal(teacher_table(table, 16, 0), table)
    wide = teacher_table(table, 24, 0)
    assert wide.shape == (50, 24) and np.array_equal(wide[:, :16], table)
    narrow = teacher_table(table, 4, 0)
    assert narrow.shape == (50, 4) and narrow.std() == pytest.approx(table.std(), rel=1e-3)
    # the projection keeps the directions that tell tokens apart most: its columns are uncorrelated
    cov = np.cov(narrow.T)
    assert np.allclose(cov - np.diag(np.diag(cov)), 0, atol=1e-3)


def test_a_candidate_left_running_by_an_interrupted_run_runs_again_and_another_recipe_is_refused(tmp_path):
    """The journal of an interrupted run: its running trial is failed and forgotten (its candidate is not
    done), a finished one stays done; a journal of another recipe is refused, not mixed, and the refusal
    names what differs (here the augment default an edgecomp upgrade would change)."""
    import optuna

    from toolchain.search.auto import done_candidates, open_study

    mark_a = {"recipe": {"steps": [{"kind": "distill", "augment": "off"}]}, "seed": 0}
    mark_b = {"recipe": {"steps": [{"kind": "distill", "augment": "auto"}], "conversion": {}}, "seed": 0}
    study = open_study(tmp_path, mark_a, 0)
    dist = {"candidate": optuna.distributions.CategoricalDistribution((0, 1, 2))}
    for i in (0, 1):
        study.enqueue_trial({"candidate": i})
    finished, running = study.ask(dist), study.ask(dist)
    study.tell(finished, 14336.0)
    assert int(running.params["candidate"]) == 1
    resumed = open_study(tmp_path, mark_a, 0)  # the next run of the same command
    assert sorted(done_candidates(resumed)) == [0]
    with pytest.raises(RecipeError) as err:
        open_study(tmp_path, mark_b, 0)
    assert "holds a distill-auto run that this command cannot resume: it differs in " in err.value.message
    assert 'recipe.conversion: absent -> {}; recipe.steps[0].augment: "off" -> "auto"' in err.value.message


def test_the_teacher_embedding_table_is_read_from_the_onnx_initializers(tmp_path):
    """The [vocab, hidden] initializer named like word_embeddings (cut where padded past the tokenizer's
    vocab); none of that shape is a one-line error, as is a teacher that is not ONNX."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from toolchain.base.errors import DataError
    from toolchain.base.types import SourceFormat
    from toolchain.steps.teachers import Teacher, teacher_embedding

    table = np.arange(16 * 4, dtype=np.float32).reshape(16, 4)  # 13 tokens, padded to 16 rows
    inits = [
        numpy_helper.from_array(np.ones((13, 2), np.float32), "a.other"),
        numpy_helper.from_array(table, "bert.embeddings.word_embeddings.weight"),
    ]
    node = helper.make_node("Gather", ["bert.embeddings.word_embeddings.weight", "ids"], ["out"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 4])], inits,
    )  # fmt: skip
    onnx.save(helper.make_model(graph), str(tmp_path / "t.onnx"))
    teacher = Teacher(SourceFormat.ONNX, tmp_path / "t.onnx", None, lambda t, a: None, 2)
    teacher.onnx_file = tmp_path / "t.onnx"
    assert np.array_equal(teacher_embedding(teacher, 13), table[:13])
    with pytest.raises(DataError, match=r"has no \[400, hidden\] embedding table"):
        teacher_embedding(teacher, 400)
    teacher.onnx_file = None
    with pytest.raises(DataError, match="needs an ONNX teacher's embedding table"):
        teacher_embedding(teacher, 13)


def test_a_rung_whose_vocab_the_queries_cannot_fill_is_skipped_as_the_same_student(tmp_path):
    """The ladder's 2,000-word rungs on queries with fewer words: the student a smaller rung builds
    already, so it is not trained twice (shown as skipped, naming that rung)."""
    import json

    from toolchain.search.auto import ladder
    from toolchain.steps.teachers import load_teacher

    texts = [f"query {w} please" for w in ("red", "blue", "green", "shoes", "order", "refund")]
    train = tmp_path / "train.jsonl"
    train.write_text(
        "".join(json.dumps({"text": t, "label": LABELS[i % 3]}) + "\n" for i, t in enumerate(texts))
    )
    scores = tmp_path / "scores.jsonl"
    scores.write_text("".join(json.dumps({"text": t, "logits": [1.0, 0.0, 0.0]}) + "\n" for t in texts))
    cands = [{**WORD, "vocab": 2000}, WORD, {**WORD, "width": 16}]
    step = {"kind": "distill", "student": "auto", "auto": {"candidates": cands}}
    recipe = recipe_from_dict(
        {"source": {"path": str(scores)}, "data": {"train": str(train)}, "steps": [step]}
    )
    got = ladder(recipe, load_teacher(scores, 3), LABELS)
    assert [(c.spec.label, c.skipped) for c in got] == [
        ("word-cnn 8/32, 2000 words", None),
        (
            "word-cnn 8/32",
            "the same student as word-cnn 8/32, 2000 words: its vocab is as large on these queries",
        ),
        ("word-cnn 16/32", None),
    ]
    assert got[0].parameters == got[1].parameters < got[2].parameters
    # a rung sized by coverage: "please" and "query" (6 each) and one more word make up 70% of 18 words
    cands = [{**WORD, "vocab_coverage": 0.7}, WORD]
    step = {"kind": "distill", "student": "auto", "auto": {"candidates": cands}}
    recipe = recipe_from_dict(
        {"source": {"path": str(scores)}, "data": {"train": str(train)}, "steps": [step]}
    )
    small, full = ladder(recipe, load_teacher(scores, 3), LABELS)
    assert small.spec.label == "word-cnn 8/32, words covering 70.0%" and small.skipped is None
    assert full.parameters - small.parameters == 5 * 8  # 3 + 3 tokens of 8 wide vs 3 + 8
