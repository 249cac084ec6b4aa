"""Tiny models and data built in code: every test runs real TF, tfmot and LiteRT in seconds."""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

INTENTS = {
    "order_status": [
        "where is my order",
        "track my package",
        "order status {n}",
        "has my parcel shipped",
        "when will my order {n} arrive",
        "tracking number for order {n}",
    ],
    "returns": [
        "return my {item}",
        "how do i return a {item}",
        "refund for {item}",
        "send back the {item}",
        "i want a refund",
        "return policy for {item}",
    ],
    "product_search": [
        "{color} {item}",
        "cheap {item}",
        "{item} size {n}",
        "buy {color} {item} online",
        "best {item} for men",
        "{item} under {n} dollars",
    ],
    "out_of_scope": [
        "what's the weather today",
        "tell me a joke",
        "who won the game",
        "how tall is everest",
        "play some music",
        "what time is it in paris",
    ],
}
ITEMS = ["shoes", "jacket", "phone", "laptop", "shirt", "dress", "backpack", "watch", "headphones", "lamp"]
COLORS = ["red", "blue", "black", "white", "green"]


def make_queries(n_per_intent: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for intent, templates in INTENTS.items():
        for _ in range(n_per_intent):
            text = rng.choice(templates).format(
                item=rng.choice(ITEMS), color=rng.choice(COLORS), n=rng.randint(1, 999)
            )
            rows.append({"text": text, "intent": intent})
    rng.shuffle(rows)
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def tiny_model(vocab_size: int, n_labels: int, seq_len: int = 16, width: int = 16):
    """Embedding -> Conv1D -> max-pool -> Dense -> softmax: the teacher's shape at toy size."""
    from toolchain.base.tfenv import keras

    k = keras()
    inp = k.Input((seq_len,), dtype="int32", name="input_ids")
    x = k.layers.Embedding(vocab_size, width, name="embedding")(inp)
    x = k.layers.Conv1D(width * 2, 3, padding="same", activation="relu", name="conv")(x)
    x = k.layers.GlobalMaxPooling1D(name="pool")(x)
    x = k.layers.Dense(width * 2, activation="relu", name="hidden")(x)
    out = k.layers.Dense(n_labels, activation="softmax", name="intent")(x)
    return k.Model(inp, out)


@dataclass(frozen=True)
class TinyProject:
    """A trained tiny model with its vocab, labels and splits on disk, laid out like the example."""

    root: Path
    model: Path
    train: Path
    val: Path
    test: Path
    vocab: Path
    labels: Path
    seq_len: int = 16

    def recipe_dict(self, **extra) -> dict:
        base = {
            "name": "tiny",
            "seed": 0,
            "source": {"path": str(self.model)},
            "data": {
                "train": str(self.train),
                "val": str(self.val),
                "test": str(self.test),
                "vocab": str(self.vocab),
                "labels": str(self.labels),
            },
            "quantization": {"mode": "int8", "calibration_samples": 100, "min_calibration_samples": 50},
            "output": {"dir": str(self.root / "build")},
        }
        base.update(extra)
        return base


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory) -> TinyProject:
    from toolchain import data as d
    from toolchain.base.tfenv import seed_everything

    root = tmp_path_factory.mktemp("tiny")
    labels = list(INTENTS)
    (root / "labels.txt").write_text("\n".join(labels) + "\n")
    train = write_jsonl(root / "data" / "train.jsonl", make_queries(100, 1))
    val = write_jsonl(root / "data" / "val.jsonl", make_queries(20, 2))
    test = write_jsonl(root / "data" / "test.jsonl", make_queries(30, 3))
    train_q = d.load_queries(train)
    tok = d.Tokenizer(d.build_vocab(train_q.texts), 16)
    tok.save_vocab(root / "vocab.txt")
    seed_everything(0)
    model = tiny_model(tok.vocab_size, len(labels))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(tok.encode_batch(train_q.texts), train_q.label_ids(labels), epochs=6, batch_size=32, verbose=0)
    model.save(root / "model.keras")
    return TinyProject(root, root / "model.keras", train, val, test, root / "vocab.txt", root / "labels.txt")


@pytest.fixture(scope="session")
def onnx_models() -> Path:
    """Real PyTorch-exported ONNX models (tests/fixtures/make_onnx_models.py), built once and cached."""
    from tests.fixtures.make_onnx_models import ensure_models

    return ensure_models()


@dataclass(frozen=True)
class OnnxFloatBuilds:
    """float32 builds of the `onnx_models`, made once per session and shared by test_onnx and
    test_onnx_stages (each is a minute of onnx2tf). The classifier is converted from a copy of
    intent_encoder.onnx saved with external data (`ext`: model, weights.bin, vocab, labels)."""

    ext: Path
    clf: Path
    clf_report: Any  # the typed Report as built, before validate/profile/package add their sections
    emb: Path


@pytest.fixture(scope="session")
def onnx_float_builds(onnx_models, tmp_path_factory) -> OnnxFloatBuilds:
    import shutil

    import onnx

    from toolchain.pipeline import build
    from toolchain.recipe.compose import recipe_from_dict

    data = Path(__file__).resolve().parents[1] / "examples" / "shopping_intent" / "data"
    root = tmp_path_factory.mktemp("onnx-float-builds")
    ext = root / "ext"
    ext.mkdir()
    onnx.save(
        onnx.load(str(onnx_models / "intent_encoder.onnx")),
        str(ext / "intent_encoder.onnx"),
        save_as_external_data=True,
        location="weights.bin",
        size_threshold=0,
    )
    for name in ("vocab.txt", "labels.txt"):
        shutil.copy(onnx_models / name, ext / name)
    made = {}
    for name, model, task, gates in (
        ("clf", ext / "intent_encoder.onnx", "classification", {"max_abs_error": 1e-4}),
        ("emb", onnx_models / "embedder.onnx", "embedding", {}),
    ):
        recipe = {
            "name": name,
            "source": {"path": str(model), "task": task},
            "data": {
                "test": str(data / "test.jsonl"),
                "val": str(data / "val.jsonl"),
                "calibration": str(data / "train.jsonl"),
                "seq_len": 32,
            },
            "quantization": {"mode": "float32"},
            "evaluation": gates,
            "output": {"dir": str(root / "builds")},
        }
        made[name] = build(recipe_from_dict(recipe))
    return OnnxFloatBuilds(ext, made["clf"].dir, made["clf"].report, made["emb"].dir)


@dataclass(frozen=True)
class BertModels:
    """Hugging Face-style folders (model.onnx, tokenizer.json, vocab.txt, config.json), as users export."""

    root: Path
    classifier: Path  # + labels.txt; output `logits`
    embedder: Path  # output `sentence_embedding`
    facts: dict  # fixture.json: measured test accuracy, max abs error vs torch, build seconds, versions


@pytest.fixture(scope="session")
def bert_models() -> BertModels:
    """Built once per cache key by tests/fixtures/make_bert_models.py (about a minute): mark users slow."""
    from tests.fixtures.make_bert_models import ensure_models

    root = ensure_models()
    facts = json.loads((root / "fixture.json").read_text(encoding="utf-8"))
    return BertModels(root, root / "classifier", root / "embedder", facts)


BERT_INT8_FALLBACK = (
    "SOFTMAX,MUL,ADD,SUB,DIV,EXP,ABS,NEG,MEAN,SQUARED_DIFFERENCE,RSQRT,SUM,SELECT_V2,BATCH_MATMUL"
)


@pytest.fixture(scope="session")
def bert_int8_classifier(bert_models, tmp_path_factory) -> Path:
    """The BERT classifier (alone, as intent-bert.onnx) converted to int8 with BERT_INT8_FALLBACK ops in
    float, through the CLI with --tokenizer/--labels and the example's test/val/calibration splits.
    Shared by test_package_bert_onnx and test_wordpiece_models (a conversion is about half a minute)."""
    import shutil

    from typer.testing import CliRunner

    from toolchain.cli.main import app

    data = Path(__file__).resolve().parents[1] / "examples" / "shopping_intent" / "data"
    root = tmp_path_factory.mktemp("bert-int8")
    clf = bert_models.classifier
    model = root / "intent-bert.onnx"
    shutil.copy(clf / "model.onnx", model)  # alone: the tokenizer and labels come from flags
    recipe = root / "int8.yaml"
    recipe.write_text(
        f"quantization: {{mode: int8, float_fallback_ops: [{BERT_INT8_FALLBACK}]}}\nsource: {{path: x}}\n"
    )
    out = root / "int8"
    result = CliRunner().invoke(
        app,
        [
            "convert", str(model), "--seq-len", "32", "--out", str(out), "--json", "--recipe", str(recipe),
            "--tokenizer", str(clf / "tokenizer.json"), "--labels", str(clf / "labels.txt"),
            "--test", str(data / "test.jsonl"), "--val", str(data / "val.jsonl"),
            "--calibration", str(data / "train.jsonl"),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["tokenizer"]["kind"] == "wordpiece"
    return out


@pytest.fixture(scope="session")
def keras_bert(bert_models) -> Path:
    """A Keras BERT-style classifier (three int inputs) on the WordPiece tokenizer of `bert_models`.

    tests/fixtures/make_keras_bert.py: model.keras + tokenizer.json/vocab.txt + labels.txt + splits, built
    once per cache key (about 25 s): mark users slow.
    """
    from tests.fixtures.make_keras_bert import ensure_model

    return ensure_model(bert_models.root)
