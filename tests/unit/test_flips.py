"""The comparison's flips: split by how sure the reference was, the surest listed, a Wilson interval."""

from __future__ import annotations

import numpy as np
import pytest

from toolchain.evaluation.metrics import compare, flip_lines, probabilities, quality_summary, wilson
from toolchain.report.evaluation import EvaluationSection

LABELS = ["product_search", "order_status", "returns"]


def logits(top: int, margin: float, k: int = 3) -> list[float]:
    """A logit row whose class `top` leads the next by `margin`."""
    row = [0.0] * k
    row[top] = margin
    return row


def test_flips_split_by_how_sure_the_source_was():
    # queries 0-1: the source is sure (margin 8: p ~ 0.9993); 2-3: a near-tie (margin 0.1: p ~ 0.35)
    ref = np.array([logits(0, 8.0), logits(1, 8.0), logits(2, 0.1), logits(0, 0.1)])
    got = np.array([logits(0, 8.0), logits(2, 1.0), logits(1, 0.1), logits(0, 0.1)])  # flips: 1 and 2
    texts = ["red shoes", "where is my parcel", "send it back", "shoes"]
    cmp = compare(ref, got, np.array([0, 1, 2, 0]), LABELS, texts)
    f = cmp.flips
    assert f is not None
    assert (f.total, f.where_sure, f.where_unsure, f.sure_queries) == (2, 1, 1, 2)
    assert f.agreement_where_sure == 0.5
    assert [x.query for x in f.most_confident] == [1, 2]  # the surest first
    first = f.most_confident[0]
    assert (first.text, first.source, first.converted) == ("where is my parcel", "order_status", "returns")
    assert first.source_prob > 0.99
    lines = flip_lines(EvaluationSection(vs_source_float=cmp))
    assert lines[0].startswith("'where is my parcel': order_status (0.999; runner-up")
    rows = dict(quality_summary(EvaluationSection(vs_source_float=cmp)))
    assert rows["disagreements where the source is sure"].startswith("1 of 2 ")
    assert rows["agreement vs source, 95% interval"].endswith("(n=4)")


def test_probabilities_taken_as_they_are_and_logits_softmaxed():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert np.allclose(probabilities(p), p)
    z = probabilities(np.array([[2.0, 0.0, 0.0]]))
    assert z[0, 0] == pytest.approx(np.exp(2) / (np.exp(2) + 2))


def test_wilson_interval():
    low, high = wilson(741, 748)  # 99.06%: the interval straddles 99%
    assert low < 0.99 < high
    assert (round(low, 3), round(high, 3)) == (0.981, 0.996)
    assert wilson(10, 10)[1] == 1.0 and wilson(10, 10)[0] > 0.69
    assert wilson(0, 0) == (0.0, 1.0)


def test_no_texts_names_the_query_index():
    ref = np.array([logits(0, 8.0), logits(1, 8.0)])
    got = np.array([logits(1, 8.0), logits(1, 8.0)])
    cmp = compare(ref, got, np.array([0, 1]), LABELS)
    assert flip_lines(EvaluationSection(vs_source_float=cmp))[0].startswith("query 0: product_search")


def test_min_agreement_where_sure_gates_any_classifier_on_the_sure_queries_only():
    from toolchain.evaluation.gates import failed_gates
    from toolchain.recipe.schema import EvaluationSpec

    # 4 sure queries (one flipped) and 2 near-ties (both flipped): 50% overall, 75% where sure
    ref = np.array([logits(0, 8.0)] * 4 + [logits(1, 0.1)] * 2)
    got = np.array([logits(0, 8.0)] * 3 + [logits(2, 8.0)] + [logits(0, 0.1)] * 2)
    cmp = compare(ref, got, np.zeros(6, int), LABELS)
    ev = EvaluationSection(vs_source_float=cmp)
    assert failed_gates(EvaluationSpec(min_agreement_where_sure=0.75), ev) == []
    (miss,) = failed_gates(EvaluationSpec(min_agreement_where_sure=0.8), ev)
    assert (miss.gate, miss.measured, miss.metric) == (
        "min_agreement_where_sure",
        0.75,
        "agreement vs source where it is sure",
    )
    assert miss.text == (
        "agreement vs source where it is sure (4 queries, its top-1 probability >= 0.95) 75.00% is below "
        "80.00% (1 flips there)"
    )
    (miss,) = failed_gates(EvaluationSpec(min_agreement=0.6), ev)  # the near-ties count against min_agreement
    assert miss.gate == "min_agreement" and "(3 flips, 2 of them where source was unsure" in miss.text


def test_the_searches_score_and_aim_at_agreement_where_sure():
    from toolchain.base.types import Task
    from toolchain.quantization.scoring import TASK_METRICS, misses, targets_from_gates
    from toolchain.recipe.schema import EvaluationSpec
    from toolchain.report.quantization import MixedMetrics

    ref = np.array([logits(0, 8.0)] * 4 + [logits(1, 0.1)] * 2)
    got = np.array([logits(0, 8.0)] * 4 + [logits(0, 0.1)] * 2)  # only the near-ties flip
    m = TASK_METRICS[Task.CLASSIFICATION](got, ref, None)
    assert (m["agreement"], m["agreement_where_sure"]) == (pytest.approx(4 / 6, abs=1e-6), 1.0)
    t = targets_from_gates(EvaluationSpec(min_agreement_where_sure=0.98), Task.CLASSIFICATION, False)
    assert t.min_agreement_where_sure == pytest.approx(0.99) and t.min_agreement is None
    assert misses(t, MixedMetrics(mean_cosine=0.9, **m)) == {}
    worse = MixedMetrics(mean_cosine=0.9, agreement=0.99, agreement_where_sure=0.985)
    assert misses(t, worse) == {"min_agreement_where_sure": (pytest.approx(0.99), 0.985)}


def test_an_unlabelled_split_is_judged_on_agreement_and_the_label_gates_are_named():
    """A query log as --test (no labels): agreement and flips vs source, the agreement gates judged on
    them, the label gates named as not applied (not passed silently), the stage that cost it."""
    from toolchain.base.types import CostMost
    from toolchain.evaluation.gates import costliest_stage, failed_gates, unjudged
    from toolchain.evaluation.metrics import unlabelled_agreement
    from toolchain.recipe.schema import EvaluationSpec

    ref = np.array([logits(0, 8.0)] * 4 + [logits(1, 0.1)] * 2)
    got = np.array([logits(0, 8.0)] * 3 + [logits(2, 8.0)] + [logits(0, 0.1)] * 2)
    texts = [f"query {i}" for i in range(6)]
    u = unlabelled_agreement(ref, ref, got, LABELS, texts)  # no steps: post-step float = source
    assert (u.queries, u.top1_agreement, u.top1_agreement_vs_post_step_float) == (6, 0.5, 0.5)
    assert (u.flips.total, u.flips.where_sure, u.flips.agreement_where_sure) == (3, 1, 0.75)
    ev = EvaluationSection(unlabelled=u)
    assert failed_gates(EvaluationSpec(min_agreement=0.5, max_accuracy_drop=0.0), ev) == []
    (miss,) = failed_gates(EvaluationSpec(min_agreement=0.6), ev)
    assert miss.text.startswith("agreement vs source 50.00% on 6 unlabelled queries is below 60.00% (3 flips")
    assert costliest_stage(miss, ev) == CostMost.QUANTIZATION
    (where,) = failed_gates(EvaluationSpec(min_agreement_where_sure=0.8), ev)
    assert (where.gate, where.measured) == ("min_agreement_where_sure", 0.75)
    lines = unjudged(EvaluationSpec(min_agreement=0.5, max_accuracy_drop=1.0, min_recall_ratio=0.5), ev)
    assert [line.split(" not applied")[0] for line in lines] == [
        "gate max_accuracy_drop",
        "gate min_recall_ratio",
    ]
    assert "have no labels" in lines[0]
    rows = dict(quality_summary(ev))
    assert rows["agreement vs source"] == "50.00% (6 unlabelled queries)"
    assert rows["disagreements where the source is sure"].startswith("1 of 3 ")
    assert flip_lines(ev)[0].startswith("'query 3': product_search")
    # the steps cost most when the post-step float already disagreed with the source more
    steps = unlabelled_agreement(ref, got, got, LABELS, texts)
    assert costliest_stage(miss, EvaluationSection(unlabelled=steps)) == CostMost.STEPS
