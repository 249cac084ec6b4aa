"""Train the product-retrieval model: the intent model's query tower -> query embedding -> item table.

Reads labels.txt (product ids) and data/{train,val}.jsonl from --data (default: beside this file, written by
generate_data.py), builds the regex vocab from the train queries and writes model.keras and vocab.txt into
--data. The model and its training loop are the library's (toolchain/project/retrieval_model.py, and
toolchain/project/intent_model.py's fit with raw scores: softmax cross-entropy over every product).
Deterministic:
the same data and seed give the same weights. About a minute for 3,000 products on 2 CPU cores.

    python examples/product_retrieval/train.py [--data DIR] [--epochs 12] [--dim 64]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # run from a checkout without installing

SEQ_LEN = 16  # product queries are short: 99.9% of the generated ones have <= 12 words
MODEL_NAME = "product_retrieval"  # the prefix of every tensor name in the converted model
LABEL_FIELD = "product_id"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--embed-dim", type=int, default=64)
    parser.add_argument("--filters", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import numpy as np

    from toolchain import data as d
    from toolchain.base.atomic import write_bytes
    from toolchain.base.tfenv import seed_everything
    from toolchain.evaluation.retrieval import retrieval_metrics
    from toolchain.project.intent_model import IntentModelSpec, fit_intent_model
    from toolchain.project.retrieval_model import RetrievalModelSpec, build_retrieval_model, size_shares

    seed_everything(args.seed)
    labels = d.load_labels(args.data / "labels.txt")
    split = {
        s: d.load_queries(args.data / "data" / f"{s}.jsonl", "text", LABEL_FIELD) for s in ("train", "val")
    }
    vocab = d.build_vocab(split["train"].texts, max_size=8000, min_count=2)
    tok = d.Tokenizer(vocab, SEQ_LEN)
    tok.save_vocab(args.data / "vocab.txt")

    tower = IntentModelSpec(seq_len=SEQ_LEN, embed_dim=args.embed_dim, filters=args.filters, hidden=128)
    spec = RetrievalModelSpec(tower=tower, dim=args.dim)
    model = build_retrieval_model(tok.vocab_size, len(labels), MODEL_NAME, spec)
    x = {s: tok.encode_batch(q.texts) for s, q in split.items()}
    y = {s: q.label_ids(labels) for s, q in split.items()}
    fit = fit_intent_model(
        model,
        (x["train"], y["train"]),
        (x["val"], y["val"]),
        epochs=args.epochs,
        batch_size=128,
        learning_rate=2e-3,
        patience=3,
        from_logits=True,
    )
    scores = np.asarray(model.predict(x["val"], batch_size=512, verbose=0))
    out = args.data / "model.keras"
    tmp = out.with_name(f".{out.stem}.tmp.keras")
    model.save(tmp)
    write_bytes(out, tmp.read_bytes())
    tmp.unlink()
    print(f"best epoch {fit.best_epoch} of {fit.epochs_run}; val loss by epoch {fit.val_loss}")
    print(f"{size_shares(model)}, vocab {tok.vocab_size}; val {retrieval_metrics(scores, y['val'])} -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
