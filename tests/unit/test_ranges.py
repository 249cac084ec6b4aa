"""Percentile activation ranges (devices/activations.py), range edits (converters/ranges.py) and mask-safe
ranges (toolchain/quantization/calibration.py refined_ranges) on tiny Keras models, real TF and LiteRT.

An int8 model whose ranges are wrong can abort the interpreter (SIGABRT inside invoke), so those models
run in a child Python here: a regression fails the test instead of ending pytest.
"""

from __future__ import annotations

import numpy as np
import pytest

from converters.calibrated import activation_ranges, quantize
from converters.ranges import HUGE, with_activation_ranges
from devices.activations import percentile_ranges
from tests.support.child_scores import scores_in_child
from toolchain.base.errors import ConversionError, DataError

pytestmark = pytest.mark.slow  # every test calibrates (a TFLite conversion)
SEQ = 8


def _rows(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    mask = (np.arange(SEQ)[None, :] < rng.integers(2, SEQ + 1, n)[:, None]).astype(np.int32)
    return {"input_ids": (rng.integers(1, 50, (n, SEQ)) * mask).astype(np.int32), "attention_mask": mask}


@pytest.fixture(scope="module", params=["float32-min", "-1e9"])
def masked(request):
    """A tiny attention pooler with a BERT-style additive mask: where(mask, 0, constant) + scores, the
    constant as onnx2tf writes a PyTorch BERT's (float32 min) or as Keras' MultiHeadAttention has it."""
    from converters.keras_tflite import calibrate_keras
    from toolchain.base.tfenv import keras, seed_everything, tf

    seed_everything(0)
    k, t = keras(), tf()
    ids = k.Input((SEQ,), dtype="int32", name="input_ids")
    mask = k.Input((SEQ,), dtype="int32", name="attention_mask")
    x = k.layers.Embedding(50, 8, embeddings_initializer=k.initializers.RandomUniform(-1, 1))(ids)
    scores = t.squeeze(k.layers.Dense(1, kernel_initializer=k.initializers.RandomNormal(stddev=3.0))(x), -1)
    constant = t.float32.min if request.param == "float32-min" else -1e9
    weights = t.nn.softmax(scores + t.where(t.cast(mask, t.bool), 0.0, constant), axis=-1)
    out = k.layers.Dense(3)(t.reduce_sum(x * weights[..., None], axis=1))
    model = k.Model([ids, mask], out)
    cal = _rows(64, 0)
    calibrated = calibrate_keras(model, [{n: v[i] for n, v in cal.items()} for i in range(64)])
    return model, calibrated, cal


@pytest.fixture(scope="module")
def tiny_calibrated(tiny_project):
    from converters.keras_tflite import calibrate_keras, load_keras_model
    from toolchain import data as d

    tok = d.Tokenizer(d.load_vocab(tiny_project.vocab), tiny_project.seq_len)
    ids = tok.encode_batch(d.load_queries(tiny_project.val).texts[:40])
    return calibrate_keras(load_keras_model(tiny_project.model), [[row] for row in ids]), {"input_ids": ids}


def _all_values(model: bytes, feeds: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    """Every value of each named tensor over all rows, read directly from a preserve-all interpreter."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(
        model_content=model,
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    it.allocate_tensors()
    index = {d["name"]: d["index"] for d in it.get_tensor_details()}
    (inp,) = it.get_input_details()
    values: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for row in feeds["input_ids"]:
        it.set_tensor(inp["index"], row[None].astype(inp["dtype"]))
        it.invoke()
        for n in names:
            values[n].append(it.get_tensor(index[n]).ravel().copy())
    return {n: np.concatenate(v) for n, v in values.items()}


def test_percentile_ranges_equal_numpy_over_every_value(tiny_calibrated):
    calibrated, feeds = tiny_calibrated
    names = list(activation_ranges(calibrated))
    everything = _all_values(calibrated, feeds, names)
    for lower, upper in [(0.01, 99.99), (1.0, 99.0), (0.0, 100.0)]:
        got = percentile_ranges(calibrated, feeds, names, lower, upper)
        assert set(got) == set(names)
        for n in names:
            want = np.percentile(everything[n].astype(np.float64), [lower, upper])
            assert got[n] == pytest.approx(tuple(want), rel=1e-6, abs=1e-7), (n, lower, upper)
    # min/max calibration saw the same rows: the 0/100 percentiles are its ranges
    minmax = activation_ranges(calibrated)
    full = percentile_ranges(calibrated, feeds, names, 0.0, 100.0)
    assert all(full[n] == pytest.approx(minmax[n], rel=1e-5, abs=1e-6) for n in names)
    with pytest.raises(DataError, match="1 tensor\\(s\\) not in the model: nope"):
        percentile_ranges(calibrated, feeds, ["nope"])


def test_written_ranges_are_the_ones_quantize_uses(tiny_calibrated):
    calibrated, _ = tiny_calibrated
    from converters.tflite_model import parse_tflite

    minmax = activation_ranges(calibrated)
    assert quantize(with_activation_ranges(calibrated, minmax)) == quantize(calibrated)
    name = next(n for n in minmax if "hidden" in n)
    edited = with_activation_ranges(calibrated, {name: (0.0, 0.25)})
    assert activation_ranges(edited) == {**minmax, name: (0.0, 0.25)}
    scale = {t.name: t.scales for t in parse_tflite(quantize(edited)).tensors}[name]
    before = {t.name: t.scales for t in parse_tflite(quantize(calibrated)).tensors}[name]
    assert scale[0] == pytest.approx(0.25 / 255, rel=1e-5)
    assert before[0] == pytest.approx(minmax[name][1] / 255, rel=1e-5)
    with pytest.raises(ConversionError, match="not calibrated activations of this model: nope"):
        with_activation_ranges(calibrated, {"nope": (0.0, 1.0)})
    with pytest.raises(ConversionError, match="not a finite min <= max"):
        with_activation_ranges(calibrated, {name: (1.0, float("nan"))})
    assert with_activation_ranges(calibrated, {}) is calibrated


def test_mask_safe_ranges_make_a_masked_model_quantizable(masked, tmp_path):
    from toolchain.quantization.calibration import refined_ranges

    model, calibrated, cal = masked
    minmax = activation_ranges(calibrated)
    mask_valued = sorted(n for n, (lo, hi) in minmax.items() if max(abs(lo), abs(hi)) > HUGE)
    assert len(mask_valued) >= 2  # the mask itself and the masked scores

    ranges, report = refined_ranges(calibrated, cal)
    assert sorted(ranges) == mask_valued
    assert report == {
        "mask_tensors": len(mask_valued),
        "percentiles": None,
        "ranges_replaced": len(ranges),
        "activations": len(minmax),
    }
    mask = next(n for n in mask_valued if "where" in n.lower() or "select" in n.lower())
    assert ranges[mask][1] == 0.0 and -1e4 < ranges[mask][0] < -10  # (-R, 0), R from the scores' width
    scores = [r for n, r in ranges.items() if n != mask]
    assert all(-100 < lo < hi < 100 for lo, hi in scores)  # the real scores, not -3.4e38

    test = _rows(200, 1)
    ref = model.predict([test["input_ids"], test["attention_mask"]], verbose=0)
    safe = scores_in_child(quantize(with_activation_ranges(calibrated, ranges)), test, tmp_path)
    assert isinstance(safe, np.ndarray), f"mask-safe int8 model died with exit code {safe}"
    cosine = np.sum(safe * ref, 1) / np.linalg.norm(safe, axis=1) / np.linalg.norm(ref, axis=1)
    assert cosine.mean() > 0.999 and (safe.argmax(1) == ref.argmax(1)).mean() >= 0.97
    # the same model with min/max ranges: measured to abort in invoke (ai_edge_litert 2.3.0); if a runtime
    # runs it, the attention it computes is not the float model's
    plain = scores_in_child(quantize(calibrated), test, tmp_path)
    if isinstance(plain, np.ndarray):
        cos_plain = np.sum(plain * ref, 1) / np.linalg.norm(plain, axis=1) / np.linalg.norm(ref, axis=1)
        assert cos_plain.mean() < cosine.mean() - 0.01

    with_pct, report = refined_ranges(calibrated, cal, percentiles=(0.01, 99.99))
    assert report["ranges_replaced"] == len(minmax) == len(with_pct)
    assert {n: with_pct[n] for n in mask_valued} == ranges
