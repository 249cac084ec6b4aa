"""The reproduced device tokenizer against MediaPipe 0.10.21's own C++ tokenizer, through its Python API.

MediaPipe's Python wheel has no tokenizer binding, so the test feeds its TextEmbedder an echo model: three
int32 inputs [1, 24] carrying BERT metadata (MetadataWriter.add_bert_text_input, the vocab packed as the
tokenizer's file), output their concatenation as floats. The embedding is then exactly the
input_ids / mask / segment_ids that BertPreprocessorCalculator produced. Runs only when the MediaPipe env
is already in the edgecomp cache (it is not installed here).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from toolchain.tokenizers.mediapipe_bert import MediaPipeBertTokenizer

HERE = Path(__file__).resolve().parents[1]  # tests/
CHILD = HERE / "fixtures" / "mediapipe_echo_child.py"
TRAIN = HERE.parent / "examples" / "shopping_intent" / "data" / "train.jsonl"
SEQ_LEN = 24
NAMES = ["input_word_ids", "input_mask", "input_type_ids"]
TRICKY = [
    "Running, SHOES!",
    "a\u00a0x y",  # NBSP stays in the word
    "red\u200bdress a\u00adb",  # format chars stay in the word
    "x\fy x\vy x\ty x\ny x\ry",  # \f splits, \v does not
    "a\x00x y",  # 0.10.21: the text ends at the first NUL
    "x\x07y",
    "ÉCLAIR İstanbul Café e\u0301",
    "日本語 カメラ x\U00011f43y",  # CJK splits; U+11F43 (Kawi, Unicode 15) is RE2 \p{P}
    "«shoes» ¿qué?—no €5 $5 shoes\U0001f45f",
    "a" * 100,
    "a" * 101,
    "é" * 50,
    "é" * 50 + "a",
    "shoe " * 30,  # truncation: [SEP] last
]


def _echo_model(path: Path) -> None:
    from toolchain.base.tfenv import tf as tf_module

    tf = tf_module()
    spec = [tf.TensorSpec([1, SEQ_LEN], tf.int32, name=n) for n in NAMES]

    @tf.function(input_signature=spec)
    def echo(ids, mask, segment):  # noqa: ANN001, ANN202 - a TF graph function
        return tf.concat([tf.cast(t, tf.float32) for t in (ids, mask, segment)], axis=1)

    fn = echo.get_concrete_function()
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([fn], echo).convert())


def _vocab(queries: list[str]) -> list[str]:
    words = Counter(w for q in queries for w in MediaPipeBertTokenizer([], None).words(q))
    pieces = [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789é"]
    extra = ["a", "x", "y", "é", "«", "»", "¿", "—", "€5", "日", "\U00011f43", "shoe", "##s", "qu"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    for token in [w for w, _ in words.most_common(300)] + pieces + extra:
        if token not in vocab:
            vocab.append(token)
    return vocab


@pytest.mark.slow
def test_reproduction_equals_mediapipe_runtime(tmp_path: Path) -> None:
    from converters.metadata import ensure_mediapipe  # provisions the env (cached) like `package` does

    with TRAIN.open(encoding="utf-8") as f:
        queries = [json.loads(line)["text"] for line, _ in zip(f, range(300), strict=False)]
    vocab = _vocab(queries)
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    _echo_model(tmp_path / "echo.tflite")
    texts = TRICKY + queries
    request = {
        "model_in": str(tmp_path / "echo.tflite"),
        "model_out": str(tmp_path / "echo_bert.tflite"),
        "vocab": str(tmp_path / "vocab.txt"),
        "names": NAMES,
        "texts": texts,
        "out": str(tmp_path / "out.json"),
    }
    (tmp_path / "request.json").write_text(json.dumps(request), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")} | {"GLOG_minloglevel": "2"}
    python = str(ensure_mediapipe().python)
    run = subprocess.run(
        [python, str(CHILD), str(tmp_path / "request.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    got = np.asarray(json.loads((tmp_path / "out.json").read_text(encoding="utf-8")), dtype=np.int64)
    tok = MediaPipeBertTokenizer.from_vocab_file(tmp_path / "vocab.txt", SEQ_LEN)
    mismatches = []
    for text, row in zip(texts, got, strict=True):
        mine = tok.encode(text)
        want = np.concatenate([mine["input_ids"], mine["attention_mask"], mine["token_type_ids"]])
        if not np.array_equal(row, want):
            mismatches.append((text, row[:SEQ_LEN].tolist(), want[:SEQ_LEN].tolist()))
    assert not mismatches, mismatches[:5]
    # the tricky strings really exercised the rules: [UNK]s, truncation and kept non-ASCII splits occurred
    assert got[TRICKY.index("a" * 101), 1] == vocab.index("[UNK]")
    assert got[TRICKY.index("shoe " * 30), SEQ_LEN - 1] == vocab.index("[SEP]")
    assert vocab.index("\U00011f43") in got[TRICKY.index("日本語 カメラ x\U00011f43y")]
