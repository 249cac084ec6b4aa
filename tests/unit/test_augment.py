"""Query augmentation for distillation (toolchain/steps/augment.py) and the teacher-sure agreement split."""

import numpy as np
import pytest

from toolchain.steps.augment import augment_queries, perturb

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
