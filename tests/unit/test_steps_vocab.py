"""Vocabulary pruning: smaller table, tokenizer rewritten consistently, shipped vocab.txt fits the model."""

import numpy as np
import pytest

from toolchain.base.errors import StepError
from toolchain.recipe.compose import recipe_from_dict
from toolchain.recipe.steps import VocabPruneStep

pytestmark = pytest.mark.slow


def test_vocab_prune_build_ships_a_consistent_vocab(tiny_project):
    from devices.hostrun import HostRunner
    from toolchain import data as d
    from toolchain.pipeline import build

    step = {"kind": "vocab_prune", "min_count": 3}
    res = build(recipe_from_dict(tiny_project.recipe_dict(name="vocab", steps=[step])))
    rep = res.report.to_json()["steps"][0]
    old = d.load_vocab(tiny_project.vocab)
    new = d.load_vocab(res.dir / "vocab.txt")
    assert rep["vocab_before"] == len(old) and rep["vocab_after"] == len(new) < len(old)
    assert res.report.to_json()["tokenizer"]["vocab_size"] == len(new)
    assert rep["embedding_params_after"] == len(new) * 16
    assert rep["val_accuracy"]["after"] >= rep["val_accuracy"]["before"] - 0.05
    # the shipped pair (model.tflite + vocab.txt) reproduces the report's accuracy from raw text
    test = d.load_queries(tiny_project.test)
    ids = d.Tokenizer(new, tiny_project.seq_len).encode_batch(test.texts)
    scores = HostRunner(res.model_path).scores({"input_ids": ids})
    labels = d.load_labels(tiny_project.labels)
    acc = float(np.mean(scores.argmax(1) == test.label_ids(labels)))
    assert acc == pytest.approx(
        res.report.to_json()["evaluation"]["vs_source_float"]["converted"]["accuracy"], abs=1e-4
    )


def test_no_token_table_is_a_clear_error(tiny_project):
    from converters.keras_tflite import load_keras_model
    from toolchain import data as d
    from toolchain.base.progress import SilentProgress
    from toolchain.steps import vocab
    from toolchain.steps.base import StepContext

    words = {tok: i for i, tok in enumerate(d.SPECIAL_TOKENS)} | {"a": 3, "b": 4}
    ctx = StepContext(None, None, None, None, ["x"], 0, SilentProgress(), d.Tokenizer(words, 16), ["a b"])
    with pytest.raises(StepError, match="no embedding table with 5 rows") as err:
        vocab.run(VocabPruneStep(), load_keras_model(tiny_project.model), ctx)
    assert "embedding" in err.value.hint
