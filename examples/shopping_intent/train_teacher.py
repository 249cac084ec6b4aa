"""Train the float teacher for the shopping-intent example: Embedding -> Conv1D -> max-pool -> Dense.

Writes model.keras and vocab.txt next to this file (labels.txt comes from generate_data.py). Deterministic:
the same data and seed give the same weights. About a minute on 2 CPU cores.

    python examples/shopping_intent/train_teacher.py [--epochs 8] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # run from a checkout without installing

SEQ_LEN = 32
EMBED_DIM = 64


def build_model(
    vocab_size: int,
    n_labels: int,
    seq_len: int = SEQ_LEN,
    embed_dim: int = EMBED_DIM,
    filters: int = 128,
    hidden: int = 128,
):
    """The teacher architecture; also used by tests at tiny sizes."""
    from toolchain.base.tfenv import keras

    k = keras()
    inp = k.Input((seq_len,), dtype="int32", name="input_ids")
    x = k.layers.Embedding(vocab_size, embed_dim, name="embedding")(inp)
    x = k.layers.Conv1D(filters, 3, padding="same", activation="relu", name="conv")(x)
    x = k.layers.GlobalMaxPooling1D(name="pool")(x)
    x = k.layers.Dropout(0.3, name="dropout")(x)
    x = k.layers.Dense(hidden, activation="relu", name="hidden")(x)
    out = k.layers.Dense(n_labels, activation="softmax", name="intent")(x)
    return k.Model(inp, out, name="shopping_intent_teacher")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "model.keras")
    args = parser.parse_args(argv)

    import numpy as np

    from toolchain import data as d
    from toolchain.base.atomic import write_bytes
    from toolchain.base.tfenv import keras, seed_everything

    seed_everything(args.seed)
    labels = d.load_labels(HERE / "labels.txt")
    train = d.load_queries(HERE / "data" / "train.jsonl")
    val = d.load_queries(HERE / "data" / "val.jsonl")
    test = d.load_queries(HERE / "data" / "test.jsonl")
    vocab = d.build_vocab(train.texts, max_size=8000, min_count=2)
    tok = d.Tokenizer(vocab, SEQ_LEN)
    tok.save_vocab(args.out.parent / "vocab.txt")

    model = build_model(tok.vocab_size, len(labels))
    model.compile(
        optimizer=keras().optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(
        tok.encode_batch(train.texts),
        train.label_ids(labels),
        epochs=args.epochs,
        batch_size=64,
        validation_data=(tok.encode_batch(val.texts), val.label_ids(labels)),
        verbose=2,
    )
    probs = model.predict(tok.encode_batch(test.texts), verbose=0)
    acc = float(np.mean(probs.argmax(1) == test.label_ids(labels)))
    tmp = args.out.with_name(f".{args.out.stem}.tmp.keras")
    model.save(tmp)
    write_bytes(args.out, tmp.read_bytes())
    tmp.unlink()
    params = model.count_params()
    print(f"teacher: {params:,} params, vocab {tok.vocab_size}, test accuracy {acc:.4f} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
