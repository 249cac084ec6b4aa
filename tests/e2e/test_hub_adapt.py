"""`source.adapt_lowercase` (--adapt-lowercase): the multilingual XLM-R folder fine-tuned for MediaPipe's
lower-cased queries before its export, in the real isolated PyTorch environment.

The cased model flips 3 of 261 test queries when they are ASCII-lower-cased (98.85% agreement: what
MediaPipe's SentencePiece path costs it). The test fine-tunes on 400 train queries (the full 2,084 with
`convert --adapt-lowercase`: benchmarks/acceptance_multilingual.py and docs/guides/hub.md), checks the
report's before/after numbers against what the exported ONNX itself does, and that a second load starts
no PyTorch. Refusals (an .onnx file, an embedder folder) need no fixture: tests/hostile/test_hostile_hub.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from converters.onnx_tflite import OnnxReference, inspect_onnx
from toolchain.base.errors import RecipeError
from toolchain.recipe.compose import recipe_from_dict
from toolchain.sources.loaded import load_source
from toolchain.tokenizers.binding import ModelInput, bind_inputs
from toolchain.tokenizers.mediapipe_bert import ascii_lower

pytestmark = pytest.mark.slow
TRAIN_QUERIES = 400
EXAMPLE_DATA = Path(__file__).resolve().parents[2] / "examples" / "shopping_intent" / "data"


def _spec(folder: Path, data: Path, train: Path) -> dict:
    return {
        "source": {"path": str(folder), "adapt_lowercase": True},
        "data": {"train": str(train), "test": str(data / "test.jsonl"), "seq_len": 32},
        "quantization": {"mode": "float32"},
    }


def test_adapt_lowercase_changes_the_model_and_says_by_how_much(xlmr_model, tmp_path):
    data = xlmr_model / "data"
    train = tmp_path / "train.jsonl"
    train.write_text("".join((data / "train.jsonl").read_text("utf-8").splitlines(True)[:TRAIN_QUERIES]))
    loaded = load_source(recipe_from_dict(_spec(xlmr_model / "transformers", data, train)))
    hub = loaded.hub
    assert hub is not None and hub.exported and hub.parity is not None and hub.parity.passed
    a = hub.adaptation
    assert a is not None and a.train_queries == TRAIN_QUERIES and a.epochs == 3
    assert a.before is not None and a.after is not None and a.before.queries == 261
    facts = json.loads((xlmr_model / "fixture.json").read_text())
    assert a.before.accuracy_cased == pytest.approx(facts["test_accuracy_torch"], abs=1e-6)
    assert a.before.agreement == pytest.approx(258 / 261, abs=1e-6)  # the cased model's 3 flips
    print(f"adapted on {TRAIN_QUERIES}: {a.before} -> {a.after}")
    assert a.after.agreement > a.before.agreement, (a.before, a.after)

    # what the report says is what the exported model does (onnxruntime on cased vs lower-cased ids)
    texts = [json.loads(x)["text"] for x in (data / "test.jsonl").read_text("utf-8").splitlines()]
    inputs = inspect_onnx(loaded.model.path).inputs
    ort = OnnxReference(loaded.model.path, inputs)
    preds = []
    for variant in (texts, [ascii_lower(t) for t in texts]):
        enc = bind_inputs(
            loaded.tokenizer.encode_batch(variant), tuple(ModelInput(i.name, "int64") for i in inputs)
        )
        preds.append(ort.run_batched({k: np.asarray(v, np.int64) for k, v in enc.items()}, 256).argmax(1))
    assert float((preds[0] == preds[1]).mean()) == pytest.approx(a.after.agreement, abs=1e-6)

    again = load_source(recipe_from_dict(_spec(xlmr_model / "transformers", data, train))).hub
    assert again is not None and again.export_from_cache and again.parity.torch_from_cache
    assert again.adaptation == a


def test_adapt_lowercase_refuses_an_embedder_folder(hub_folders):
    spec = _spec(hub_folders.sentence, EXAMPLE_DATA, EXAMPLE_DATA / "train.jsonl")
    with pytest.raises(RecipeError, match=r"fine-tunes a classifier's weights.*\(head: encoder\)"):
        load_source(recipe_from_dict(spec))
