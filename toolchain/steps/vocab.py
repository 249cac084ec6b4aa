"""Vocabulary pruning: keep the words the corpus actually uses, shrink the embedding table to match.

The token table dominates a word-level text model's size. Words below `min_count`, beyond `max_size` or
outside the `coverage` share of word occurrences are dropped: they now tokenize to <UNKNOWN> (whose row is
kept), the kept rows are gathered into a smaller table, and the step returns the rewritten tokenizer so the
pipeline re-tokenizes every split and ships the new vocab.txt with the model.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from toolchain.base.errors import DataError, StepError
from toolchain.data import SPECIAL_TOKENS, UNKNOWN, Tokenizer, load_queries, split_words
from toolchain.recipe.steps import VocabPruneStep
from toolchain.steps.base import StepContext, StepResult
from toolchain.steps.graph import LayerPlan, layer_spec, rewrite


def corpus_counts(cfg: VocabPruneStep, ctx: StepContext, vocab: dict[str, int], delim: str) -> Counter:
    """In-vocabulary word counts over the corpus (the train split unless `corpus` is given)."""
    if cfg.corpus is not None:
        texts = load_queries(cfg.corpus, label_field=None).texts
    elif ctx.train_texts:
        texts = ctx.train_texts
    else:
        raise DataError(
            "vocab_prune: no corpus to count words in", hint="set data.train or the step's corpus"
        )
    return Counter(w for t in texts for w in split_words(t, delim) if w in vocab and w not in SPECIAL_TOKENS)


def choose_words(cfg: VocabPruneStep, counts: Counter) -> list[str]:
    """Kept words, most frequent first (ties alphabetical): deterministic."""
    words = sorted((w for w, c in counts.items() if c >= cfg.min_count), key=lambda w: (-counts[w], w))
    if cfg.coverage is not None:
        total = sum(counts.values())
        running, keep = 0, 0
        for keep, w in enumerate(words, start=1):  # noqa: B007 - `keep` is used after the loop
            running += counts[w]
            if running >= cfg.coverage * total:
                break
        words = words[:keep]
    if cfg.max_size is not None:
        words = words[: cfg.max_size - len(SPECIAL_TOKENS)]
    return words


def embedding_layers(model: Any, vocab_size: int) -> list[Any]:
    found = [
        layer
        for layer in model.layers
        if layer.__class__.__name__ == "Embedding" and int(layer.input_dim) == vocab_size
    ]
    if not found:
        tables = [
            (lay.name, int(lay.input_dim)) for lay in model.layers if lay.__class__.__name__ == "Embedding"
        ]
        raise StepError(
            f"vocab_prune: no embedding table with {vocab_size} rows (the tokenizer's vocab size)",
            hint=f"embedding tables in the model: {tables or 'none'}; vocab_prune needs the token table",
        )
    return found


def _unknown_rate(counts_all: Counter, kept: set[str]) -> float:
    total = sum(counts_all.values())
    return round(sum(c for w, c in counts_all.items() if w not in kept) / max(total, 1), 4)


def run(cfg: VocabPruneStep, model: Any, ctx: StepContext) -> StepResult:
    """Shrink the vocab and every embedding table indexed by it; returns the new tokenizer."""
    tok = ctx.tokenizer
    if tok is None:
        raise DataError("vocab_prune: no tokenizer vocab", hint="set data.vocab")
    if not isinstance(tok, Tokenizer):
        raise StepError(
            f"vocab_prune rewrites a word-level (regex) vocab, not a {getattr(tok, 'kind', '?')} tokenizer",
            hint="drop the vocab_prune step for a WordPiece model",
        )
    counts = corpus_counts(cfg, ctx, tok.vocab, tok.delimiter)
    words = choose_words(cfg, counts)
    new_vocab = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    for w in words:
        new_vocab[w] = len(new_vocab)
    old_ids = np.array([tok.vocab[t] for t in new_vocab], dtype=np.int64)
    tables = embedding_layers(model, tok.vocab_size)
    plans = {}
    for layer in tables:
        table = layer.get_weights()[0]
        spec = layer_spec(layer, input_dim=len(new_vocab))
        plans[layer.name] = LayerPlan(None, spec, None, [table[old_ids]])
    new_model = rewrite(model, plans)
    remap = np.full(tok.vocab_size, tok.vocab[UNKNOWN], dtype=np.int32)
    remap[old_ids] = np.arange(len(old_ids), dtype=np.int32)
    val = ctx.val_arrays()
    val_acc = {}
    if val is not None:
        for name, m, ids in (("before", model, val[0]), ("after", new_model, remap[val[0]])):
            pred = m.predict(ids, batch_size=512, verbose=0).argmax(1)
            val_acc[name] = round(float(np.mean(pred == val[1])), 4)
    rows_before = sum(int(layer.input_dim) * int(layer.output_dim) for layer in tables)
    rows_after = sum(len(new_vocab) * int(layer.output_dim) for layer in tables)
    report = {
        "vocab_before": tok.vocab_size,
        "vocab_after": len(new_vocab),
        "rule": {"min_count": cfg.min_count, "max_size": cfg.max_size, "coverage": cfg.coverage},
        "corpus": str(cfg.corpus) if cfg.corpus else "train split",
        "embedding_params_before": rows_before,
        "embedding_params_after": rows_after,
        "corpus_share_now_unknown": _unknown_rate(counts, set(words)),
        "tables": [layer.name for layer in tables],
        "val_accuracy": val_acc,
    }
    warnings = []
    if len(new_vocab) == tok.vocab_size:
        warnings.append("vocab_prune: every word passed the rule; the vocabulary is unchanged")
    return StepResult(new_model, report, warnings, tokenizer=Tokenizer(new_vocab, tok.seq_len, tok.delimiter))
