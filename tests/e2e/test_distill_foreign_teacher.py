"""Issue 14: the ONNX BERT fixture as teacher, a word-level student out (real onnxruntime, TF, LiteRT).

The teacher is `bert_models.classifier` (model.onnx + its own WordPiece tokenizer.json + labels.txt), the
data the shopping example's splits. The student is a word-level CNN on a regex vocab built from the
training (+ unlabelled) queries, so the packaged model needs no WordPiece.
"""

import json
import random
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.tiny import write_jsonl
from toolchain.recipe.compose import recipe_from_dict
from toolchain.recipe.presets import preset_plan
from toolchain.report.model import Report

pytestmark = pytest.mark.slow
DATA = Path(__file__).resolve().parents[2] / "examples" / "shopping_intent" / "data"
# word-level CNN, 1,000 words x 8, conv 32; without the augmentation a foreign teacher's student gets by
# default (its cost: ~2x the training rows; the default's own test: tests/e2e/test_distill_tiny_bert.py)
DISTILL = {**preset_plan("distill-student-int8")["steps"][0], "augment": "off"}
SPLITS = {"train": DATA / "train.jsonl", "val": DATA / "val.jsonl", "test": DATA / "test.jsonl"}


def _recipe(source: Path, out: Path, name: str, steps: list, **data) -> dict:
    return {
        "name": name,
        "seed": 0,
        "source": {"path": str(source)},
        "data": {**{k: str(v) for k, v in SPLITS.items()}, "seq_len": 32, **data},
        "steps": steps,
        "quantization": {"mode": "int8"},
        # a gate of the user's: the weak fixture teacher (90.6%, unsure on 10% of the test queries) is
        # judged by it instead of the foreign-teacher defaults (tests/e2e/test_distill_long_tail.py)
        "evaluation": {"min_agreement": 0.8},
        "output": {"dir": str(out)},
    }


def _build(recipe: dict):
    from toolchain.pipeline import build

    return build(recipe_from_dict(recipe))


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("distill-bert")


def _cli_build(bert_models, out: Path, **flags) -> Path:
    """`edgecomp convert <BERT folder> --preset distill-student-int8 --seq-len 32 ...`; the build dir."""
    from typer.testing import CliRunner

    from toolchain.cli.main import app

    args = ["convert", str(bert_models.classifier), "--preset", "distill-student-int8", "--seq-len", "32"]
    args += ["--min-agreement", "0.85"]  # the user's gate, instead of the foreign-teacher defaults
    args += ["--no-augment"]  # DISTILL's student (test_scores_file_teacher_gives_the_same_student)
    args += [f"--{k}={v}" for k, v in {**SPLITS, **flags}.items()] + ["--out", str(out), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def student_build(bert_models, work) -> Path:
    """ONNX teacher -> int8 word-level student, all of train labelled (the preset, from the CLI)."""
    return _cli_build(bert_models, work / "build" / "student")


@pytest.fixture(scope="module")
def student(student_build) -> dict:
    return json.loads((student_build / "report.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def teacher_dynamic(bert_dynamic_classifier):
    """The teacher itself converted with dynamic-range int8: the size to beat (and a TFLite teacher). The
    session's shared build (conftest; test_wordpiece_models validates and packages it): the same bytes
    this file's own dynamic build of the teacher folder gave (318,256 B, measured), read-only here."""
    from toolchain.build import load_build

    return load_build(bert_dynamic_classifier)


def test_onnx_teacher_word_level_student_int8(student_build, student, teacher_dynamic, bert_models):
    from toolchain.report.markdown import markdown

    ev = student["evaluation"]["teacher"]
    ratio = teacher_dynamic.report.to_json()["model"]["size_bytes"] / student["model"]["size_bytes"]
    facts = (ratio, ev["agreement_with_teacher"], ev["teacher_accuracy"], ev["student_accuracy"])
    print("size ratio {:.1f}x, agreement {:.4f}, teacher acc {:.4f}, student acc {:.4f}".format(*facts))
    assert ratio >= 20
    assert ev["teacher_accuracy"] == pytest.approx(bert_models.facts["test_accuracy_onnxruntime"], abs=1e-4)
    assert ev["student_accuracy"] >= ev["teacher_accuracy"] - 0.015
    assert ev["agreement_with_teacher"] >= 0.88  # measured 0.9024: issue 14's 97% overall agreement was
    # replaced by issue 25's gates (agreement where the teacher is sure, below; distill-auto's tests)
    # where the teacher is sure (top-1 probability >= 0.95: this weak teacher is sure of 84 of 748, right on
    # all of them), the student follows it closely
    assert ev["teacher_sure_queries"] + ev["teacher_unsure_queries"] == 748
    assert ev["teacher_sure_min_prob"] == 0.95 and ev["teacher_accuracy_where_sure"] >= 0.98  # measured 1.0
    assert ev["agreement_where_teacher_sure"] >= 0.95  # measured 0.9881 (unsure: 0.9021 on 664)
    assert student["steps"][0]["selected_by"] == "agreement"
    assert student["source"]["format"] == "onnx" and student["tokenizer"]["kind"] == "regex"
    assert student["quantization"]["non_int8_weight_ops"] == []
    step = student["steps"][0]
    assert step["teacher"]["kind"] == "onnx" and step["teacher"]["tokenizer"] == "wordpiece"
    assert step["teacher_parameters"] > 20 * step["student_parameters"]
    assert student["evaluation"]["vs_source_float"]["reference"]["recall"]  # teacher per intent
    # the packaged student needs no WordPiece: a regex vocab.txt, no tokenizer.json
    assert (student_build / "vocab.txt").is_file()
    assert not (student_build / "tokenizer.json").exists()
    typed = Report.model_validate(student)
    assert f"agreement with the teacher (onnx classifier): {ev['agreement_with_teacher']:.2%}" in markdown(
        typed
    )


@pytest.fixture(scope="module")
def part(bert_models, work) -> dict:
    """Labels withheld from 70% of train: those queries become unlabelled query logs (teacher soft targets,
    and its top label as a hard label where it is >= 90% confident)."""
    rows = [json.loads(line) for line in SPLITS["train"].read_text("utf-8").splitlines() if line]
    random.Random(0).shuffle(rows)
    cut = int(len(rows) * 0.3)
    train = write_jsonl(work / "part" / "train.jsonl", rows[:cut])
    logs = write_jsonl(work / "part" / "logs.jsonl", [{"text": r["text"]} for r in rows[cut:]])
    out = _cli_build(bert_models, work / "build" / "part", train=train, unlabelled=logs)
    report = json.loads((out / "report.json").read_text("utf-8"))
    assert report["steps"][0]["rows"]["labelled"] == cut
    assert report["steps"][0]["rows"]["unlabelled"] == len(rows) - cut
    scoring = report["steps"][0]["unlabelled_scoring"]  # the log scored in shards by worker processes
    assert scoring["queries"] == len(rows) - cut and scoring["max_rows_held"] <= scoring["shard_rows"]
    return report


def test_labels_withheld_from_70_percent_of_train(part, student):
    full, got = student["evaluation"]["teacher"], part["evaluation"]["teacher"]
    print("unlabelled 70%:", got, "full:", full)
    assert got["student_accuracy"] >= got["teacher_accuracy"] - 0.015


def test_acceptance_unlabelled_within_1_point(part, student):
    """Issue 14: labels withheld from 70% of train keep the student within 1 point of the fully labelled
    run, or of the teacher where the fully labelled student beat its teacher (luck on 748 test queries: a
    point is 7 queries). Measured on the first machine: accuracy 91.18% vs 92.11% (-0.93 pt), agreement with
    the teacher 89.44% vs 90.24%. On AMD EPYC (its own BERT fixture, teacher 89.57%): the full student
    90.64% (+1.07 pt over the teacher), with logs 89.04% (-0.53 pt from the teacher), agreement 90.78% vs
    91.18%."""
    full, got = student["evaluation"]["teacher"], part["evaluation"]["teacher"]
    assert got["student_accuracy"] >= min(full["student_accuracy"], got["teacher_accuracy"]) - 0.01
    assert got["agreement_with_teacher"] >= full["agreement_with_teacher"] - 0.01


def test_scores_file_teacher_gives_the_same_student(bert_models, work, student):
    """The teacher as a scores file only (as a server would give it): the same student, byte for byte."""
    import onnxruntime as ort

    from toolchain.tokenizers.sources import find_tokenizer

    folder = bert_models.classifier
    tokenizer = find_tokenizer(None, None, folder, 32)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    texts = sorted(
        {json.loads(x)["text"] for p in SPLITS.values() for x in p.read_text("utf-8").splitlines()}
    )
    enc = tokenizer.encode_batch(texts)
    feeds = {i.name: enc[i.name].astype(np.int64) for i in session.get_inputs()}
    logits = session.run(None, feeds)[0]
    lines = [{"text": t, "logits": [float(v) for v in row]} for t, row in zip(texts, logits, strict=True)]
    scores = write_jsonl(work / "scores" / "teacher.jsonl", lines)
    labels = str(folder / "labels.txt")
    # the scores file as the recipe source, and as distill.teacher_scores with the ONNX model as source
    as_source = _build(_recipe(scores, work / "build", "scores", [DISTILL], labels=labels)).report.to_json()
    step = {**DISTILL, "teacher_scores": str(scores)}
    as_step = _build(_recipe(folder, work / "build", "scores-step", [step], labels=labels)).report.to_json()
    for got in (as_source, as_step):
        assert got["steps"][0]["teacher"]["kind"] == "scores"
        assert got["model_sha256"] == student["model_sha256"]  # same logits, seed and data: same bytes
        assert got["evaluation"]["teacher"] == {
            **student["evaluation"]["teacher"],
            "teacher": got["evaluation"]["teacher"]["teacher"],
        }
    assert as_source["source"]["parameters"] is None


def test_tflite_teacher_then_prune_and_qat(bert_models, work, teacher_dynamic):
    """The teacher as a .tflite (its dynamic-int8 conversion) with its WordPiece tokenizer: the student
    is pruned and quantization-aware trained after distillation, then exported int8."""
    tflite = teacher_dynamic.model_path
    steps = [
        {**DISTILL, "epochs": 8},
        {"kind": "prune", "target_sparsity": 0.5, "epochs": 2},
        {"kind": "qat", "epochs": 1},
    ]
    folder = bert_models.classifier
    report = _build(
        _recipe(
            tflite,
            work / "build",
            "from-tflite",
            steps,
            tokenizer=str(folder / "tokenizer.json"),
            labels=str(folder / "labels.txt"),
        )
    ).report.to_json()
    assert report["source"]["format"] == "tflite"
    assert [s["kind"] for s in report["steps"]] == ["distill", "prune", "qat"]
    assert report["steps"][1]["achieved_sparsity"] >= 0.45
    assert report["quantization"]["non_int8_weight_ops"] == []
    print("tflite teacher, prune + qat:", report["model"]["size_bytes"], report["evaluation"]["teacher"])
    assert report["evaluation"]["teacher"]["agreement_with_teacher"] >= 0.8  # measured 0.840 (8 epochs)


def test_student_on_the_teachers_wordpiece_packages_for_mediapipe_bert(bert_models, work, tmp_path):
    """student_tokenizer: teacher: a CNN student on the teacher's own WordPiece ids (input_ids,
    attention_mask, token_type_ids), trimmed first to the pieces the queries use (vocab_trim before
    distill: the teacher scores with its whole vocabulary, the student's table has the kept rows only),
    int8, packaged with MediaPipe's BERT tokenizer on the trimmed vocab.txt, parity 748/748."""
    from typer.testing import CliRunner

    from toolchain.cli.main import app

    step = {
        **DISTILL,
        "student_tokenizer": "teacher",
        "student": {"embed_dim": 4, "layers": DISTILL["student"]["layers"]},
    }
    res = _build(
        _recipe(bert_models.classifier, work / "build", "wp-student", [{"kind": "vocab_trim"}, step])
    )
    r = res.report.to_json()
    assert r["tokenizer"]["kind"] == "wordpiece" and (res.dir / "tokenizer.json").is_file()
    trim = r["steps"][0]
    assert trim["kind"] == "vocab_trim" and trim["vocab_after"] == r["tokenizer"]["vocab_size"]
    assert trim["vocab_after"] < trim["vocab_before"] == bert_models.facts["vocab_size"]
    assert len((res.dir / "vocab.txt").read_text("utf-8").splitlines()) == trim["vocab_after"]
    names = sorted(i["name"].removeprefix("serving_default_").rsplit(":", 1)[0] for i in r["model"]["inputs"])
    assert names == ["attention_mask", "input_ids", "token_type_ids"]  # serving_default_<name>:0
    ev = r["evaluation"]["teacher"]
    print("wordpiece student:", r["model"]["size_bytes"], ev)
    assert ev["agreement_with_teacher"] >= 0.85  # measured 0.8864 (0.9198 with a 30k-query log)
    assert r["quantization"]["non_int8_weight_ops"] == []
    out = CliRunner().invoke(app, ["package", str(res.dir), "--out", str(tmp_path), "--json"])
    assert out.exit_code == 0, out.output[-2000:]
    parity = json.loads(out.stdout)["parity"]
    assert parity["lowercased"]["queries"] == 748 and parity["lowercased"]["agreement"] == 1.0
