"""int64 -> int32 input rewrite (converters/tflite_inputs.py): same outputs on real tokenized queries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converters.tflite_inputs import bert_input_names, int32_inputs
from converters.tflite_model import parse_tflite
from tests.fixtures.bert_tflite import SEQ_LEN, hf_tokenizer, make_bert_tflite, read_split
from toolchain.base.errors import InputFileError

pytestmark = pytest.mark.slow  # every test converts a model to TFLite


def _run(model: bytes, feeds: dict[str, np.ndarray]) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model)
    interp.allocate_tensors()
    details = interp.get_input_details()
    rows = []
    for row in range(len(next(iter(feeds.values())))):
        for d in details:
            key = next(k for k in feeds if k in d["name"])
            interp.set_tensor(d["index"], feeds[key][row : row + 1].astype(d["dtype"]))
        interp.invoke()
        rows.append(interp.get_tensor(interp.get_output_details()[0]["index"])[0].copy())
    return np.array(rows)


def _feeds(vocab: Path, texts: list[str]) -> dict[str, np.ndarray]:
    vocab_list = vocab.read_text(encoding="utf-8").splitlines()
    enc = hf_tokenizer(vocab_list).encode_batch(texts)
    return {
        "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
    }


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return make_bert_tflite(tmp_path_factory.mktemp("bert"))


def test_int64_inputs_get_one_cast_each_and_identical_outputs(bert) -> None:
    before = bert.model.read_bytes()
    after, changed = int32_inputs(before)
    assert changed == ["input_ids", "attention_mask", "token_type_ids"]
    model = parse_tflite(after)
    assert [model.tensors[i].dtype for i in model.inputs] == ["INT32"] * 3
    ops_before = parse_tflite(before).summary()["ops"]
    assert model.summary()["ops"]["CAST"] == ops_before.get("CAST", 0) + 3
    texts = read_split("test")[0][:150] + ["ÉCLAIR Café", "a\u00a0b", "shoe " * 30]
    feeds = _feeds(bert.vocab, texts)
    want, got = _run(before, feeds), _run(after, feeds)
    assert want.shape == (len(texts), len(bert.labels)) and np.array_equal(want, got)
    assert int32_inputs(after) == (after, [])  # already int32: same bytes


def test_an_existing_int32_cast_is_dropped(tmp_path: Path) -> None:
    from toolchain.base.tfenv import tf as tf_module

    tf = tf_module()
    table = tf.constant(np.arange(40, dtype=np.float32).reshape(10, 4))
    spec = [tf.TensorSpec([1, SEQ_LEN], tf.int64, name=n) for n in ("ids", "input_mask", "segment_ids")]

    @tf.function(input_signature=spec)
    def model(ids, input_mask, segment_ids):  # noqa: ANN001, ANN202 - a TF graph function
        x = tf.gather(table, tf.cast(ids, tf.int32)) * tf.cast(input_mask, tf.float32)[..., None]
        return tf.reduce_sum(x, 1) + tf.cast(tf.reduce_sum(tf.cast(segment_ids, tf.int32)), tf.float32)

    conv = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    before = conv.convert()
    after, changed = int32_inputs(before)
    assert len(changed) == 3
    casts_before = parse_tflite(before).summary()["ops"].get("CAST", 0)
    casts_after = parse_tflite(after).summary()["ops"].get("CAST", 0)
    assert casts_after == casts_before - 1  # ids, segment_ids lose their cast; the mask gets one
    rng = np.random.default_rng(0)
    feeds = {
        "ids": rng.integers(0, 10, (20, SEQ_LEN)),
        "input_mask": rng.integers(0, 2, (20, SEQ_LEN)),
        "segment_ids": rng.integers(0, 2, (20, SEQ_LEN)),
    }
    assert np.array_equal(_run(before, feeds), _run(after, feeds))
    assert bert_input_names(after) == ("ids", "input_mask", "segment_ids")


def test_bert_input_names_by_role_and_refusal(bert, tmp_path: Path) -> None:
    data = bert.model.read_bytes()
    assert bert_input_names(data) == ("input_ids", "attention_mask", "token_type_ids")
    from toolchain.base.tfenv import tf as tf_module

    tf = tf_module()

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.int32, name="input_ids")])
    def one(input_ids):  # noqa: ANN001, ANN202 - a TF graph function
        return tf.cast(input_ids, tf.float32)

    conv = tf.lite.TFLiteConverter.from_concrete_functions([one.get_concrete_function()], one)
    with pytest.raises(InputFileError, match="need inputs named like input_ids, attention_mask"):
        bert_input_names(conv.convert())
