"""The `vocab_trim` step: a WordPiece / SentencePiece model cut to the pieces its users' queries use.

Which pieces stay is toolchain/tokenizers/trim.py (specials, single characters, the queries' pieces by
coverage); here the model follows, for both source kinds:
- Keras (`run`): the Embedding layers with one row per piece get the kept rows; a WordPiece tokenizer is
  rewritten. Before a student exists (a trim step ahead of distill) only the tokenizer is trimmed, and
  the student is built on the kept pieces.
- ONNX (`trim_onnx`): the word-embedding initializer keeps the kept rows (converters/onnx_trim.py); a
  WordPiece tokenizer is rewritten (`dropped: split`, the default), or a dropped piece is read as [UNK]:
  the tokenizer renumbered with every piece, kept ones first, and ids past them clamped to the [UNK] row
  (`dropped: unk-renumber`), or the tokenizer whole with the old -> new id remap in the graph (`dropped:
  unk`, 4 bytes per piece, for an app that tokenizes with the original vocabulary); `auto` keeps split or
  unk-renumber, whichever agrees better with the untrimmed model on val. A SentencePiece Unigram one is
  cut with its .model (`split`: tokenizer.json and the .model MediaPipe runs keep the kept pieces only) or
  stays whole with the remap in the graph (`unk`; always for BPE); `auto` measures the two. Which reading
  a build gets is toolchain/steps/trim_reading.py.
The report says how many pieces were kept and why, how many held-out queries (the test split, else val)
now split into other pieces, and the float model before vs after on them: accuracy and agreement
(classifiers) or cosine (embedders), and the largest output difference on the queries whose pieces did
not change (0 when the kept rows are the same rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from converters.onnx_tflite import OnnxReference, inspect_onnx
from converters.onnx_trim import trim_embedding, word_table_rows
from toolchain.base.errors import DataError, StepError
from toolchain.base.types import Task
from toolchain.data import QuerySet, load_queries
from toolchain.quantization.scoring import cosine_rows
from toolchain.recipe.steps import VocabTrimStep
from toolchain.report.steps import TrimEffect, TrimExample, TrimHeldout
from toolchain.sources.keras_inputs import encode_for, model_inputs
from toolchain.steps.base import StepContext, StepResult
from toolchain.steps.graph import LayerPlan, layer_spec, rewrite
from toolchain.steps.trim_reading import (
    EFFECT_QUERIES,
    SPLIT,
    UNK,
    UNK_RENUMBER,
    Cut,
    Scorer,
    agreement,
    reader,
)
from toolchain.tokenizers.binding import ModelInput, bind_inputs
from toolchain.tokenizers.sentencepiece import SentencePieceTokenizer
from toolchain.tokenizers.trim import TrimPlan, pieces_of, plan_trim

HELDOUT_SPLITS = ("test", "val")
EXAMPLES = 5


def corpus_texts(cfg: VocabTrimStep, splits: dict[str, QuerySet]) -> tuple[list[str], list[str]]:
    """The queries whose pieces are kept, and where they came from (for the report)."""
    texts, where = [], []
    for name in cfg.splits:
        if name in splits:
            texts += splits[name].texts
            where.append(f"{name} split ({len(splits[name])} queries)")
    for path in cfg.corpus:
        extra = load_queries(path, label_field=None).texts
        texts += extra
        where.append(f"{path} ({len(extra)} queries)")
    if not texts:
        raise DataError(
            f"vocab_trim: no queries to keep the pieces of (splits {', '.join(cfg.splits)} not given)",
            hint="set data.train (--train) or the step's corpus (an unlabelled query log)",
        )
    return texts, where


def heldout_split(splits: dict[str, QuerySet]) -> tuple[str, QuerySet] | None:
    name = next((n for n in HELDOUT_SPLITS if n in splits), None)
    return (name, splits[name]) if name is not None else None


def _after_pieces(tok: Any, plan: TrimPlan, new_tok: Any, texts: list[str], reading: str) -> list[list[str]]:
    """The pieces the trimmed model reads: a rewritten tokenizer's, or (unk, unk-renumber) the untrimmed
    tokenizer's with a dropped piece read as the unknown piece."""
    if reading == SPLIT:
        return pieces_of(new_tok, texts)
    kept = set(plan.kept.tolist())
    unk = {i: t for t, i in tok.vocab.items()}.get(int(plan.kept[plan.unk_new]), "<unk>")
    before = pieces_of(tok, texts)
    ids = [list(map(int, r)) for r in tok.encode_batch(texts)["input_ids"]]
    return [[p if ids[r][j] in kept else unk for j, p in enumerate(row)] for r, row in enumerate(before)]


def _heldout(
    tok: Any, plan: TrimPlan, new_tok: Any, split: tuple[str, QuerySet], reading: str
) -> tuple[TrimHeldout, list]:
    name, qs = split
    texts = list(qs.texts)
    before, after = pieces_of(tok, texts), _after_pieces(tok, plan, new_tok, texts, reading)
    changed = [i for i in range(len(texts)) if before[i] != after[i]]
    examples = [TrimExample(text=texts[i], before=before[i], after=after[i]) for i in changed[:EXAMPLES]]
    section = TrimHeldout(
        split=f"{name} ({qs.source})",
        queries=len(texts),
        changed=len(changed),
        changed_share=round(len(changed) / max(len(texts), 1), 6),
        examples=examples,
    )
    return section, changed


def _effect(
    runtime: str, a: np.ndarray, b: np.ndarray, y: np.ndarray | None, task: Task, unchanged: np.ndarray
) -> TrimEffect:
    same = float(np.abs(a[unchanged] - b[unchanged]).max()) if unchanged.any() else None
    if task == Task.EMBEDDING:
        return TrimEffect(
            runtime=runtime,
            mean_cosine=agreement(a, b, task),
            min_cosine=round(float(cosine_rows(a, b).min()), 6),
            max_abs_diff_unchanged=same,
        )
    acc = (lambda s: round(float(np.mean(s.argmax(1) == y)), 6)) if y is not None else (lambda s: None)
    return TrimEffect(
        runtime=runtime,
        accuracy_before=acc(a),
        accuracy_after=acc(b),
        top1_agreement=agreement(a, b, task),
        max_abs_diff_unchanged=same,
    )


@dataclass(frozen=True)
class Trimmed:
    """A trim's outcome: the tokenizer the build now has and the step's report."""

    tokenizer: Any
    report: dict[str, Any]


def trim(
    cfg: VocabTrimStep,
    tok: Any,
    splits: dict[str, QuerySet],
    cut: Cut,
    scores: tuple[str, Scorer, Scorer] | None,
    labels: list[str],
    task: Task,
    remap_ok: bool = True,
) -> Trimmed:
    """Plan, cut the model (`cut(plan, new tokenizer, reading)` -> table name, row width, method; the
    tokenizer given is the model's own for an in-graph remap) and report; `scores`: (runtime, the
    untrimmed model, the trimmed one) for the effect on the held-out queries; `remap_ok`: the model can
    take a remap or a clamp."""
    texts, where = corpus_texts(cfg, splits)
    plan = plan_trim(tok, texts, cfg.coverage, cfg.min_count, cfg.single_chars)
    new_tok, dropped, choice = reader(cfg, tok, plan, splits, cut, scores, remap_ok, task)
    table, width, method = cut(plan, new_tok, dropped)
    split = heldout_split(splits)
    heldout, effect = None, None
    if split is not None:
        heldout, changed = _heldout(tok, plan, new_tok, split, dropped)
        if scores is not None:
            runtime, before, after = scores
            qs = split[1]
            texts_h = list(qs.texts[:EFFECT_QUERIES])
            y = qs.label_ids(labels)[: len(texts_h)] if qs.labels is not None and labels else None
            unchanged = np.ones(len(texts_h), bool)
            unchanged[[i for i in changed if i < len(texts_h)]] = False
            effect = _effect(runtime, before(tok, texts_h), after(new_tok, texts_h), y, task, unchanged)
    n_before, n_after = plan.vocab_before, len(plan.kept)
    removed = round(1 - n_after / n_before, 6)
    summary = f"{tok.kind} vocab {n_before:,} -> {n_after:,} pieces ({removed:.1%} of the rows removed)"
    if plan.single_chars_dropped:
        summary += (
            f"; {plan.single_chars_dropped:,} single letters of scripts the queries do not write in dropped "
            f"(kept: {', '.join(plan.scripts) or 'ASCII only'})"
        )
    if heldout is not None:
        how = "split otherwise" if dropped == SPLIT else "read [UNK] in a piece"
        summary += f"; {heldout.changed_share:.1%} of held-out queries {how}"
    if effect is not None and effect.accuracy_after is not None and effect.accuracy_before is not None:
        summary += f"; accuracy {effect.accuracy_before:.2%} -> {effect.accuracy_after:.2%}"
    elif effect is not None and effect.mean_cosine is not None:
        summary += f"; mean cosine {effect.mean_cosine:.4f}"
    if choice is not None:
        split, unk = choice.scores["split"], choice.scores["unk"]
        summary += f"; dropped: auto chose {dropped} (on val: unk {unk:.2%}, split {split:.2%})"
    report = {
        "tokenizer": tok.kind,
        "method": method,
        "vocab_before": n_before,
        "vocab_after": n_after,
        "rows_removed_share": removed,
        "kept_by_reason": plan.reasons,
        "single_chars": str(cfg.single_chars).lower(),
        "single_char_scripts": list(plan.scripts),
        "single_chars_dropped": plan.single_chars_dropped,
        "corpus": where,
        "corpus_queries": len(texts),
        "corpus_pieces": plan.corpus_pieces,
        "coverage": cfg.coverage,
        "min_count": cfg.min_count,
        "covered_share": plan.covered_share,
        "dropped": dropped,
        "dropped_choice": choice,
        "table": table,
        "embedding_params_before": n_before * width,
        "embedding_params_after": n_after * width,
        "heldout": heldout,
        "effect": effect,
        "summary": summary,
    }
    return Trimmed(new_tok, report)


REWRITTEN = "tokenizer rewritten (tokenizer.json + vocab.txt renumbered)"
REWRITTEN_SPM = (
    "tokenizer rewritten (tokenizer.json, vocab.txt and the SentencePiece .model cut to the kept pieces)"
)
REMAPPED = "in-graph id remap (the tokenizer is unchanged; a dropped piece reads the unknown piece's row)"
RENUMBERED = (
    "tokenizer renumbered, every piece kept (the kept ones first); an id past them is clamped in the graph "
    "to the unknown piece's row"
)


def trim_onnx(
    cfg: VocabTrimStep,
    src: Path,
    dst: Path,
    ids_input: str,
    inputs: tuple[ModelInput, ...],
    tok: Any,
    splits: dict[str, QuerySet],
    labels: list[str],
    task: Task,
) -> Trimmed:
    """The ONNX model `src` trimmed into `dst` (the module doc); the effect measured in onnxruntime."""
    if tok is None:
        raise DataError("vocab_trim needs the model's tokenizer", hint="pass --tokenizer or --vocab")

    def cut(plan: TrimPlan, new_tok: Any, reading: str) -> tuple[str, int, str]:
        name, _, width = word_table_rows(src, ids_input)
        if reading == UNK:
            trim_embedding(src, dst, ids_input, plan.kept, remap=plan.old_to_new())
            return name, width, REMAPPED
        if reading == UNK_RENUMBER:
            trim_embedding(src, dst, ids_input, plan.kept, clamp_row=int(plan.kept[plan.unk_new]))
            return name, width, RENUMBERED
        trim_embedding(src, dst, ids_input, plan.kept)
        return name, width, REWRITTEN_SPM if isinstance(new_tok, SentencePieceTokenizer) else REWRITTEN

    def scorer(path: Path) -> Scorer:
        def run(t: Any, texts: list[str]) -> np.ndarray:
            ref = OnnxReference(path, inspect_onnx(path).inputs)
            return np.asarray(ref.run(bind_inputs(t.encode_batch(texts), inputs)), np.float64)

        return run

    return trim(cfg, tok, splits, cut, ("onnxruntime", scorer(src), scorer(dst)), labels, task)


def _token_tables(model: Any, rows: int) -> list[Any]:
    embeddings = [layer for layer in model.layers if layer.__class__.__name__ == "Embedding"]
    found = [layer for layer in embeddings if int(layer.input_dim) == rows]
    if not found:
        tables = [(lay.name, int(lay.input_dim)) for lay in embeddings]
        raise StepError(
            f"vocab_trim: no Embedding layer with {rows} rows (the tokenizer's vocabulary)",
            hint=f"embedding tables in the model: {tables or 'none'}; vocab_trim cuts the token table",
        )
    return found


def run(cfg: VocabTrimStep, model: Any, ctx: StepContext) -> StepResult:
    """Keras: the token Embedding layers cut to the kept rows, the tokenizer rewritten (WordPiece, or a
    Unigram SentencePiece with its .model; a model None: a student is built later on the trimmed pieces,
    so only the tokenizer is cut)."""
    tok = ctx.tokenizer
    if cfg.dropped in (UNK, UNK_RENUMBER):
        how = "remaps" if cfg.dropped == UNK else "clamps"
        raise StepError(
            f"vocab_trim dropped: {cfg.dropped} {how} ids inside an ONNX graph; a Keras model's tokenizer is "
            "rewritten",
            hint="use dropped: split (or auto, which is split here), or convert the model from ONNX",
        )
    new_model: list[Any] = [None]

    def cut(plan: TrimPlan, new_tok: Any, reading: str) -> tuple[str, int, str]:
        method = REWRITTEN_SPM if isinstance(new_tok, SentencePieceTokenizer) else REWRITTEN
        if model is None:
            return "(the student's, built on the kept pieces)", 0, method
        tables = _token_tables(model, plan.vocab_before)
        plans = {}
        for layer in tables:
            rows = layer.get_weights()[0][plan.kept]
            plans[layer.name] = LayerPlan(None, layer_spec(layer, input_dim=len(plan.kept)), None, [rows])
        new_model[0] = rewrite(model, plans)
        return ", ".join(t.name for t in tables), int(tables[0].output_dim), method

    def scorer(which: int) -> Scorer:
        def run_keras(t: Any, texts: list[str]) -> np.ndarray:
            m = model if which == 0 else new_model[0]
            x = encode_for(model_inputs(m), t.encode_batch(texts))
            return np.asarray(m.predict(x, batch_size=256, verbose=0), np.float64)

        return run_keras

    scores = ("keras", scorer(0), scorer(1)) if model is not None else None
    trimmed = trim(cfg, tok, ctx.splits or {}, cut, scores, ctx.labels, Task.CLASSIFICATION, remap_ok=False)
    return StepResult(new_model[0], trimmed.report, tokenizer=trimmed.tokenizer)
