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
