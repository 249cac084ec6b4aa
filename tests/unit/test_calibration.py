"""Range convergence over growing calibration samples (toolchain/quantization/calibration.py) on the tiny
classifier."""

from __future__ import annotations

import pytest

from toolchain.base.errors import DataError
from toolchain.quantization.calibration import range_changes, range_convergence


@pytest.fixture(scope="module")
def tiny_calibration(tiny_project):
    """The tiny classifier, a memoised calibrate function and 200 stratified calibration rows."""
    from converters.keras_tflite import calibrate_keras, load_keras_model
    from toolchain import data as d
    from toolchain.sources.keras_inputs import calibration_items

    model = load_keras_model(tiny_project.model)
    tok = d.Tokenizer(d.load_vocab(tiny_project.vocab), tiny_project.seq_len)
    sample = d.representative_sample(d.load_queries(tiny_project.train), 200, 50, seed=0)
    items = calibration_items(tok.encode_batch(sample.texts))
    done: dict[int, bytes] = {}
    calls: list[int] = []

    def calibrate(part):
        calls.append(len(part))
        if len(part) not in done:
            done[len(part)] = calibrate_keras(model, part)
        return done[len(part)]

    return calibrate, items, calls


@pytest.mark.slow
def test_two_queries_are_not_converged_and_a_hundred_are(tiny_calibration):
    calibrate, items, calls = tiny_calibration
    report = range_convergence(calibrate, items, fractions=(0.01, 0.5, 1.0)).to_json()
    assert calls[-3:] == [2, 100, 200]
    first, second, last = report["steps"]
    assert first == {"queries": 2, "tensors": first["tensors"]} and first["tensors"] >= 6
    # 2 -> 100 queries: the logits and the embedding ranges grow (measured: median 31%, largest 55%)
    assert second["median_change"] > 0.1 and second["max_change"] > 0.3
    assert second["compared"] == first["tensors"] and second["max_tensor"]
    # 100 -> 200: the templates are all seen; nothing moves by more than a few percent (measured: 0)
    assert last["median_change"] < 0.01 and last["max_change"] < 0.05 and last["over_limit"] == 0
    assert report["converged"] is True
    assert report["ignored"]["huge"] == 0 and report["ignored"]["degenerate"] == 0
    assert report["summary"].startswith("Activation ranges converged: from 100 to 200 calibration queries")

    short = range_convergence(calibrate, items, fractions=(0.01, 1.0)).to_json()
    assert short["converged"] is False and short["steps"][-1]["median_change"] > 0.1
    assert short["steps"][-1]["over_limit"] >= 2  # tensors that moved more than 20%
    assert "not converged: from 2 to 200" in short["summary"]
    assert short["summary"].endswith("more calibration queries would still move the int8 scales.")


def test_range_changes_skip_mask_constants_and_zero_width():
    before = {"a": (0.0, 1.0), "mask": (-3.4e38, 0.0), "flat": (2.0, 2.0), "new": (0.0, 1.0)}
    after = {"a": (-0.5, 1.5), "mask": (-3.4e38, 1.0), "flat": (2.0, 2.0), "only_after": (0.0, 9.0)}
    changes, skipped = range_changes(before, after)
    assert changes == {"a": pytest.approx((0.5 + 0.5) / 2.0)}
    assert skipped == {"huge": 1, "degenerate": 1}


def test_fractions_must_give_two_sizes():
    with pytest.raises(DataError, match="needs two different sample sizes"):
        range_convergence(lambda items: b"", list(range(3)), fractions=(0.9, 1.0))
    with pytest.raises(DataError, match=r"fractions must lie in \(0, 1\]"):
        range_convergence(lambda items: b"", list(range(30)), fractions=(0.0, 1.0))
