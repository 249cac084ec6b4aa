"""Train the float teacher for the shopping-intent example: Embedding -> Conv1D -> max-pool -> Dense.

Writes model.keras and vocab.txt next to this file (labels.txt comes from generate_data.py). Deterministic:
the same data and seed give the same weights. About a minute on 2 CPU cores. The model and its training loop
are the library's (toolchain/project/intent_model.py), the same that `edgecomp train` uses for a user's
own data.

    python examples/shopping_intent/train_teacher.py [--epochs 8] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # run from a checkout without installing

SEQ_LEN = 32
MODEL_NAME = "shopping_intent_teacher"  # the prefix of every tensor name in the converted model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "model.keras")
    args = parser.parse_args(argv)

    import numpy as np

    from toolchain import data as d
    from toolchain.base.atomic import write_bytes
    from toolchain.base.tfenv import seed_everything
    from toolchain.project.intent_model import IntentModelSpec, build_intent_model, fit_intent_model

    seed_everything(args.seed)
    labels = d.load_labels(HERE / "labels.txt")
    train = d.load_queries(HERE / "data" / "train.jsonl")
    val = d.load_queries(HERE / "data" / "val.jsonl")
    test = d.load_queries(HERE / "data" / "test.jsonl")
    vocab = d.build_vocab(train.texts, max_size=8000, min_count=2)
    tok = d.Tokenizer(vocab, SEQ_LEN)
    tok.save_vocab(args.out.parent / "vocab.txt")

    model = build_intent_model(tok.vocab_size, len(labels), MODEL_NAME, IntentModelSpec(seq_len=SEQ_LEN))
    fit = fit_intent_model(
        model,
        (tok.encode_batch(train.texts), train.label_ids(labels)),
        (tok.encode_batch(val.texts), val.label_ids(labels)),
        epochs=args.epochs,
        batch_size=64,
        learning_rate=2e-3,
    )
    print(f"val accuracy by epoch: {fit.val_accuracy}")
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
