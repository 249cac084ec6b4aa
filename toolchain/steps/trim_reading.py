"""How a trimmed model reads a piece its trim dropped, for `vocab_trim` (toolchain/steps/vocab_trim.py).

- `split`: the tokenizer is rewritten to the kept pieces (WordPiece: tokenizer.json + vocab.txt; a
  SentencePiece Unigram model: tokenizer.json and the .model), so a word whose pieces were dropped splits
  into kept ones;
- `unk`: the tokenizer stays whole and an in-graph remap sends a dropped id to the unknown piece's row
  (ONNX only; always for a SentencePiece BPE model, whose merges need every piece);
- `unk-renumber`: a WordPiece tokenizer renumbered with every piece, kept ones first, and ids past them
  clamped to the [UNK] row (ONNX only);
- `auto`: split against the unknown-piece reading, measured on val against the untrimmed model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from toolchain.base.errors import StepError
from toolchain.base.types import Task
from toolchain.data import QuerySet
from toolchain.quantization.scoring import cosine_rows
from toolchain.recipe.steps import VocabTrimStep
from toolchain.report.steps import TrimChoice
from toolchain.tokenizers.sentencepiece import SentencePieceTokenizer
from toolchain.tokenizers.trim import TrimPlan, renumbered_wordpiece, trimmed_sentencepiece, trimmed_wordpiece

EFFECT_QUERIES = 2000  # held-out queries the before/after effect is measured on (the first ones)
Scorer = Callable[[Any, list[str]], np.ndarray]  # (tokenizer, texts) -> the model's outputs
Cut = Callable[[TrimPlan, Any, str], tuple[str, int, str]]  # (plan, tokenizer, reading) -> table, width, how
SPLIT, UNK, UNK_RENUMBER = "split", "unk", "unk-renumber"  # how the trimmed model reads a dropped piece


def agreement(a: np.ndarray, b: np.ndarray, task: Task) -> float:
    """Mean cosine (embedders) or top-1 agreement (classifiers) of two models' outputs."""
    if task == Task.EMBEDDING:
        return round(float(cosine_rows(a, b).mean()), 6)
    return round(float(np.mean(a.argmax(1) == b.argmax(1))), 6)


def reader(
    cfg: VocabTrimStep,
    tok: Any,
    plan: TrimPlan,
    splits: dict[str, QuerySet],
    cut: Cut,
    scores: tuple[str, Scorer, Scorer] | None,
    remap_ok: bool,
    task: Task,
) -> tuple[Any, str, TrimChoice | None]:
    """The tokenizer the trimmed model reads and how it reads a dropped piece: `tok` itself (`unk`: the
    piece remapped to the unknown row in the graph), the renumbered WordPiece tokenizer (`unk-renumber`:
    its id clamped to the unknown row) or the rewritten one (`split`: the word splits into kept pieces).

    A model fine-tuned without pretraining has never trained the rows its queries do not use: read as the
    unknown piece they change little, split into other pieces they can flip a query (measured on the 30k
    fixture: 99.9% vs 98.8% top-1 agreement). A pretrained encoder's rows carry meaning either way. `auto`
    measures both on the val split and keeps the better; a tie keeps the rewrite (the smaller bundle)."""
    if isinstance(tok, SentencePieceTokenizer):
        if cfg.dropped == UNK_RENUMBER:
            raise StepError(
                "vocab_trim dropped: unk-renumber renumbers a WordPiece tokenizer; a SentencePiece .model "
                "keeps its ids",
                hint="use dropped: split (the .model cut to the kept pieces), unk (an id remap) or auto",
            )
        if remap_ok and (cfg.dropped == UNK or tok.model_type != "Unigram"):  # BPE: merges need every piece
            return tok, UNK, None
        cut_spm = trimmed_sentencepiece(tok, plan)  # a Keras model (no remap): Unigram only, else refused
        if cfg.dropped == SPLIT or not remap_ok:
            return cut_spm, SPLIT, None
        return measured(tok, plan, splits, cut, scores, task, (cut_spm, SPLIT), (tok, UNK))
    rewritten = trimmed_wordpiece(tok, plan)
    if cfg.dropped == SPLIT or not remap_ok:
        return rewritten, SPLIT, None
    if cfg.dropped == UNK:
        return tok, UNK, None
    renumbered = renumbered_wordpiece(tok, plan)
    if cfg.dropped == UNK_RENUMBER:
        return renumbered, UNK_RENUMBER, None
    return measured(tok, plan, splits, cut, scores, task, (rewritten, SPLIT), (renumbered, UNK_RENUMBER))


def measured(
    tok: Any,
    plan: TrimPlan,
    splits: dict[str, QuerySet],
    cut: Cut,
    scores: tuple[str, Scorer, Scorer] | None,
    task: Task,
    split: tuple[Any, str],
    unk: tuple[Any, str],
) -> tuple[Any, str, TrimChoice | None]:
    """`dropped: auto`: the split and the unknown-piece readings measured on val against the untrimmed
    model, the better kept (the split on a tie: the smaller bundle; without val: the split)."""
    val = splits.get("val")
    if val is None or scores is None:
        return (*split, None)
    _, before, after = scores
    texts = list(val.texts[:EFFECT_QUERIES])
    reference = before(tok, texts)
    measured = {}
    for name, (reader, reading) in (("split", split), ("unk", unk)):
        cut(plan, reader, reading)
        measured[name] = agreement(reference, after(reader, texts), task)
    measure = "mean cosine" if task == Task.EMBEDDING else "top-1 agreement"
    choice = TrimChoice(split=f"val ({val.source})", queries=len(texts), measure=measure, scores=measured)
    return (*unk, choice) if measured["unk"] > measured["split"] else (*split, choice)
