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


def test_a_log_and_augmented_copies_reach_the_student_counted_and_class_balanced_by_the_teachers_label(
    tmp_path,
):
    """A foreign teacher (a scores file) with an unlabelled log and augmentation: the training rows are
    train, then the log, then the augmented copies of both, each scored by the teacher; the step's row
    counts say how many each added; a log or copy row's intent is the teacher's top label (its CE label
    where the teacher is confident), and class balance counts it so (no training: the arrays only)."""
    import json

    from toolchain import data as d
    from toolchain.base.progress import SilentProgress
    from toolchain.steps.augment import augment_queries
    from toolchain.steps.base import StepContext
    from toolchain.steps.distill import prepare_data
    from toolchain.steps.teachers import load_teacher

    labels = ["shoes", "order", "pets"]
    train = ["red shoes size nine", "blue running shoes", "where is my order", "track order now"] * 3
    train = [f"{t} {i}" for i, t in enumerate(train)]
    log = ["cheap shoes for kids", "leash for my dog", "dog food for pets", "order late again", "hello there"]
    (tmp_path / "log.txt").write_text("\n".join(log) + "\n")
    copies = augment_queries(train + log, 2, 7)

    def logits(text: str) -> list[float]:  # the teacher: sure where a keyword names the intent
        hit = [5.0 * (k in text) + 2.0 * (k == "pets" and "dog" in text) for k in labels]
        return hit if max(hit) else [0.0, 0.0, 0.0]

    scores = tmp_path / "scores.jsonl"
    scores.write_text(
        "".join(json.dumps({"text": t, "logits": logits(t)}) + "\n" for t in train + log + copies)
    )
    tok = d.Tokenizer(d.build_vocab(train + log), 8)
    y = np.array([0 if "shoes" in t else 1 for t in train])
    ctx = StepContext(tok.encode_batch(train), y, None, None, labels, 7, SilentProgress(), tokenizer=tok,
                      train_texts=train, teacher=load_teacher(scores, 3))  # fmt: skip
    cfg = DistillStep(unlabelled=tmp_path / "log.txt", augment={"copies": 2})
    data = prepare_data(cfg, None, ctx)
    assert (data.labelled, data.unlabelled, data.augmented) == (len(train), len(log), len(copies))
    assert len(copies) > len(train)
    texts = train + log + copies
    np.testing.assert_array_equal(data.x, tok.encode_batch(texts))
    np.testing.assert_array_equal(data.teacher_logits, np.array([logits(t) for t in texts], np.float32))
    top = np.array([int(np.argmax(logits(t))) for t in texts[len(train) :]])
    z = np.exp(np.array([logits(t) for t in texts[len(train) :]]))
    sure = (z / z.sum(1, keepdims=True)).max(1) >= cfg.pseudo_label_min_confidence  # 0.9
    np.testing.assert_array_equal(data.y, np.concatenate([y, top]))
    np.testing.assert_array_equal(data.ce_weight, np.concatenate([np.ones(len(train)), sure]))
    assert data.pseudo_labelled == int(sure.sum()) and 0 < data.pseudo_labelled < len(texts) - len(train)
    # the log's dog queries are the only "pets" rows: the teacher's label makes them the rarest intent
    rare = rare_intents("sqrt", 0.0, 0.9, data.y, np.eye(3)[data.y], foreign_teacher=True)
    assert rare is not None
    pets = data.y == 2
    assert 0 < pets.sum() < (data.y == 0).sum()
    assert rare.row_weight[pets].min() > rare.row_weight[~pets].max()
