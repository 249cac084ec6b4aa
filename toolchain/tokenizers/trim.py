"""Which pieces of a WordPiece or SentencePiece vocabulary a trimmed model keeps, and its tokenizer.

Kept, always: every special and added token ([PAD] [UNK] [CLS] [SEP] [MASK]; <s> <pad> </s> <unk>
<mask>), and the single-character pieces (`a`, `##a`; SentencePiece `a`, `▁a`, `▁`), so an unseen word
still splits into pieces instead of one [UNK]: WordPiece's greedy longest match (Hugging Face's and
MediaPipe's alike, toolchain/tokenizers/mediapipe_bert.py) finds a piece at every position as long as
each character has one. `single_chars: scripts` (the default) keeps those of every character that is not
a letter (digits, punctuation, symbols), of every ASCII character, and of the letters of each script the
queries write in (the first word of a letter's Unicode name: LATIN, CYRILLIC, CJK, HIRAGANA, ...): on
all-MiniLM-L6-v2's vocabulary, 1,994 of the 5,637 pieces a shopping log kept were single characters, and
1,414 of them letters of scripts an English log never writes (CJK, Arabic, Devanagari, ...): 25% of the
trimmed table. A letter of a dropped script then reads [UNK] (with the WordPiece tokenizer rewritten, the
whole word that holds it does).
`true` keeps every single-character piece, `false` none. Then the pieces the user's queries use (train,
calibration, an unlabelled log),
counted on both sides: the training tokenizer on the query as given, and the device's view (MediaPipe's
BERT tokenizer; for SentencePiece the ASCII-lower-cased query, as MediaPipe lower-cases it), most frequent
first; `coverage` keeps the fewest that cover that share of the occurrences, `min_count` drops rarer ones.

The kept pieces keep their order (new id = rank among the kept ids), so [PAD] stays 0.
- WordPiece: the tokenizer itself is rewritten (tokenizer.json's vocab, added tokens, post-processor and
  padding ids; vocab.txt follows from it), so the training side and MediaPipe read the same file. A word
  whose pieces were dropped splits into shorter ones, identically on both sides.
- WordPiece with `dropped: unk-renumber`: every piece stays in the tokenizer, renumbered with the kept ones
  first (`renumbered_wordpiece`), and the graph clamps ids past them to the [UNK] row.
- SentencePiece Unigram with `dropped: split` (`trimmed_sentencepiece`): tokenizer.json's vocab and the
  .model file MediaPipe runs are both cut to the kept pieces, their order and scores kept. Unigram
  segments by the pieces' scores (Viterbi), the same in Hugging Face `tokenizers` and the SentencePiece
  library, so a word whose pieces were dropped splits into kept ones, identically on both sides; the .model
  shrinks with the table (about 23 bytes a piece on the 32k fixture) and packaging's raw-id table with it.
- SentencePiece with `dropped: unk` (and BPE, whose merges cannot lose pieces): the tokenizer stays as it
  is and `old_to_new` (a dropped piece -> <unk>) goes into the model's graph (converters/onnx_trim.py).
  Both sides still give the same ids; a dropped piece reads the <unk> row.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolchain.base.errors import StepError
from toolchain.tokenizers.mediapipe_bert import MediaPipeBertTokenizer, ascii_lower
from toolchain.tokenizers.sentencepiece import SentencePieceTokenizer
from toolchain.tokenizers.wordpiece import SPECIALS, WordPieceTokenizer

SPM_SPACE = "▁"
BYTE_PIECE = re.compile(r"<0x[0-9A-F]{2}>")  # a SentencePiece byte-fallback piece


@dataclass(frozen=True)
class TrimPlan:
    """The kept old ids (ascending: new id i is old id kept[i]) and why each was kept."""

    kept: np.ndarray
    vocab_before: int
    reasons: dict[str, int]  # special, single_char, corpus (each piece counted under its first reason)
    corpus_pieces: int  # distinct pieces the queries use
    corpus_occurrences: int
    covered_share: float  # of the queries' piece occurrences, by the kept pieces
    unk_new: int  # the unknown piece's new id
    scripts: tuple[str, ...] = ()  # single_chars: scripts: the scripts whose single letters were kept
    single_chars_dropped: int = 0  # single-character pieces dropped (letters of other scripts)

    def old_to_new(self) -> np.ndarray:
        """Old id -> new id; a dropped piece -> the unknown piece (SentencePiece's in-graph remap)."""
        table = np.full(self.vocab_before, self.unk_new, dtype=np.int32)
        table[self.kept] = np.arange(len(self.kept), dtype=np.int32)
        return table


def _special_ids(tok: Any) -> set[int]:
    spec = json.loads(tok.json)
    ids = {int(a["id"]) for a in spec.get("added_tokens") or []}
    if isinstance(tok, WordPieceTokenizer):
        ids |= {tok.vocab[t] for t in SPECIALS if t in tok.vocab}
    else:
        ids |= {i for i in (tok.bos_id, tok.eos_id, tok.pad_id, tok.unk_id) if i is not None}
        ids |= {i for p, i in tok.vocab.items() if BYTE_PIECE.fullmatch(p)}  # byte fallback's pieces
    return ids


def _single_char(piece: str, wordpiece: bool) -> bool:
    if wordpiece:
        return len(piece) == 1 or (piece.startswith("##") and len(piece) == 3)
    return len(piece.removeprefix(SPM_SPACE)) <= 1


def _letter_script(ch: str) -> str | None:
    """A letter's (or mark's) script, by the first word of its Unicode name (LATIN, CJK, HIRAGANA, ...);
    None for any other character (digits, punctuation, symbols, spaces)."""
    if unicodedata.category(ch)[0] not in "LM":
        return None
    return unicodedata.name(ch, "UNNAMED").split()[0]


def query_scripts(texts: Sequence[str]) -> set[str]:
    """The scripts the letters of `texts` are written in."""
    return {s for ch in set().union(*map(set, texts)) if (s := _letter_script(ch)) is not None}


def _keeps_char(piece: str, wordpiece: bool, scripts: set[str]) -> bool:
    """single_chars: scripts: a single-character piece is kept unless it is a non-ASCII letter of a script
    the queries do not write in."""
    ch = piece.removeprefix("##") if wordpiece else piece.removeprefix(SPM_SPACE)
    if not ch or ch.isascii():
        return True
    script = _letter_script(ch)
    return script is None or script in scripts


def _unpadded(tok: Any, texts: Sequence[str]) -> list[list[int]]:
    enc = tok.encode_batch(list(texts))
    ids, mask = enc["input_ids"], enc["attention_mask"]
    return [list(map(int, ids[i][: int(mask[i].sum())])) for i in range(len(texts))]


def piece_counts(tok: Any, texts: Sequence[str]) -> Counter[int]:
    """Occurrences of every piece id in `texts`, untruncated: the training tokenizer's, and where the
    device's view (MediaPipe) uses a piece more often, its count."""
    counts: Counter[int] = Counter()
    whole = tok.tok.from_str(tok.tok.to_str())  # a copy without the build's truncation and padding
    whole.no_truncation()
    whole.no_padding()
    for enc in whole.encode_batch(list(texts)):
        counts.update(enc.ids)
    seen: Counter[int] = Counter()  # the device's view: a piece only it uses is kept too
    if isinstance(tok, WordPieceTokenizer):
        device = MediaPipeBertTokenizer(tok.vocab_lines(), None)
        for text in texts:
            seen.update(device.ids(text))
    else:
        for enc in whole.encode_batch([ascii_lower(t) for t in texts]):
            seen.update(enc.ids)
    for i, n in seen.items():  # occurrences, not both sides added up
        counts[i] = max(counts[i], n)
    return counts


def plan_trim(
    tok: Any,
    texts: Sequence[str],
    coverage: float = 1.0,
    min_count: int = 1,
    single_chars: bool | str = "scripts",
) -> TrimPlan:
    """The pieces to keep for `texts` (the module doc's rule; `single_chars`: True, False or "scripts")."""
    if not isinstance(tok, WordPieceTokenizer | SentencePieceTokenizer):
        raise StepError(
            f"vocab_trim trims a WordPiece or SentencePiece vocabulary, not a {getattr(tok, 'kind', '?')}",
            hint="a word-level (regex) vocab of a Keras model is cut by the vocab_prune step",
        )
    wordpiece = isinstance(tok, WordPieceTokenizer)
    by_id = {i: t for t, i in tok.vocab.items()}
    size = tok.vocab_size
    specials = {i for i in _special_ids(tok) if i < size}
    singles = {i for i, p in by_id.items() if single_chars and _single_char(p, wordpiece)} - specials
    scripts = query_scripts(texts) if single_chars == "scripts" else set()
    chars = {i for i in singles if single_chars is True or _keeps_char(by_id[i], wordpiece, scripts)}
    counts = piece_counts(tok, texts)
    total = sum(counts.values())
    ranked = sorted((i for i, c in counts.items() if c >= min_count), key=lambda i: (-counts[i], i))
    corpus, running = [], 0
    for i in ranked:
        if running >= coverage * total:
            break
        corpus.append(i)
        running += counts[i]
    corpus_only = set(corpus) - specials - chars
    kept = np.array(sorted(specials | chars | corpus_only), dtype=np.int64)
    unk = tok.vocab.get("[UNK]") if wordpiece else tok.unk_id
    unk_new = int(np.searchsorted(kept, unk)) if unk is not None else 0
    kept_set = set(kept.tolist())
    covered = sum(c for i, c in counts.items() if i in kept_set)
    return TrimPlan(
        kept=kept,
        vocab_before=size,
        reasons={"special": len(specials), "single_char": len(chars), "corpus": len(corpus_only)},
        corpus_pieces=len(counts),
        corpus_occurrences=total,
        covered_share=round(covered / max(total, 1), 6),
        unk_new=unk_new,
        scripts=tuple(sorted(scripts)),
        single_chars_dropped=len(singles - chars - set(corpus)),
    )


def _fix_ids(node: Any, new: dict[str, int]) -> Any:
    """Post-processor ids by token: TemplateProcessing's {"ids", "tokens"}, BertProcessing's [tok, id]."""
    if isinstance(node, dict):
        out = {k: _fix_ids(v, new) for k, v in node.items()}
        if isinstance(out.get("ids"), list) and isinstance(out.get("tokens"), list):
            out["ids"] = [new[t] for t in out["tokens"]]
        return out
    if isinstance(node, list):
        if len(node) == 2 and isinstance(node[0], str) and isinstance(node[1], int) and node[0] in new:
            return [node[0], new[node[0]]]
        return [_fix_ids(v, new) for v in node]
    return node


def trimmed_wordpiece(tok: WordPieceTokenizer, plan: TrimPlan) -> WordPieceTokenizer:
    """The WordPiece tokenizer over the kept pieces, renumbered (tokenizer.json and vocab.txt alike)."""
    lines = tok.vocab_lines()
    return _wordpiece_of(tok, [lines[i] for i in plan.kept], "trimmed")


def renumbered_wordpiece(tok: WordPieceTokenizer, plan: TrimPlan) -> WordPieceTokenizer:
    """The WordPiece tokenizer with EVERY piece, renumbered: the kept ones first (new id = rank among the
    kept, as `trimmed_wordpiece` numbers them), then the dropped ones in their old order (ids >= the kept
    count). WordPiece splits by the set of pieces, not their ids, so every text splits as before; a model
    that clamps ids >= the kept count to the [UNK] row (`dropped: unk-renumber`) reads a dropped piece as
    [UNK] with no remap table. [PAD] (id 0, which MediaPipe pads with) stays 0."""
    lines = tok.vocab_lines()
    kept = set(plan.kept.tolist())
    order = [*plan.kept.tolist(), *(i for i in range(len(lines)) if i not in kept)]
    return _wordpiece_of(tok, [lines[i] for i in order], "renumbered: the kept pieces first")


def _wordpiece_of(tok: WordPieceTokenizer, pieces: list[str], how: str) -> WordPieceTokenizer:
    """`tok` over `pieces`, numbered in that order (vocab, added tokens, post-processor and padding ids)."""
    new = {p: i for i, p in enumerate(pieces)}
    spec = json.loads(tok.json)
    spec["model"]["vocab"] = new
    for added in spec.get("added_tokens") or []:
        added["id"] = new[added["content"]]
    spec["post_processor"] = _fix_ids(spec.get("post_processor"), new)
    if isinstance(spec.get("padding"), dict) and spec["padding"].get("pad_token") in new:
        spec["padding"]["pad_id"] = new[spec["padding"]["pad_token"]]
    return WordPieceTokenizer(json.dumps(spec, ensure_ascii=False), tok.seq_len, f"{tok.origin} ({how})")


def trimmed_sentencepiece(tok: SentencePieceTokenizer, plan: TrimPlan) -> SentencePieceTokenizer:
    """The Unigram tokenizer over the kept pieces: tokenizer.json's vocab (scores kept, renumbered: new id =
    rank among the kept, as the table's rows), its unk id, added tokens, post-processor and padding ids,
    and the .model file cut to the same pieces (and its <unk> and control pieces <s> </s>, which
    tokenizer.json may hold under other ids; byte-fallback pieces are kept by the plan), its special ids
    renumbered."""
    if tok.model_type != "Unigram":
        raise StepError(
            f"vocab_trim dropped: split cuts a Unigram SentencePiece model; {tok.origin} is {tok.model_type} "
            "(its merges need every piece)",
            hint="use dropped: unk on an ONNX model (a dropped piece reads <unk> through an id remap in the "
            "graph), or no vocab_trim step",
        )
    spec = json.loads(tok.json)
    vocab = spec["model"]["vocab"]
    by_id = {i: piece for piece, i in tok.vocab.items()}  # added tokens past the model's vocab included
    new = {by_id[int(old)]: rank for rank, old in enumerate(plan.kept)}  # ascending: those come last
    spec["model"]["vocab"] = [vocab[i] for i in plan.kept if i < len(vocab)]
    if spec["model"].get("unk_id") is not None:
        spec["model"]["unk_id"] = new[vocab[int(spec["model"]["unk_id"])][0]]
    for added in spec.get("added_tokens") or []:
        added["id"] = new[added["content"]]
    spec["post_processor"] = _fix_ids(spec.get("post_processor"), new)
    if isinstance(spec.get("padding"), dict) and spec["padding"].get("pad_token") in new:
        spec["padding"]["pad_id"] = new[spec["padding"]["pad_token"]]
    model = None if tok.spm_model is None else _cut_spm(tok.spm_bytes(), set(new))
    return SentencePieceTokenizer(
        json.dumps(spec, ensure_ascii=False), tok.seq_len, f"{tok.origin} (trimmed)", model, tok.folder
    )


def _cut_spm(data: bytes, kept: set[str]) -> bytes:
    """A SentencePiece ModelProto with only the `kept` pieces and its <unk> and control pieces, in order."""
    from sentencepiece import sentencepiece_model_pb2 as pb  # reason: native module, sentencepiece only

    m = pb.ModelProto()
    m.ParseFromString(data)
    old = list(m.pieces)
    always = (pb.ModelProto.SentencePiece.UNKNOWN, pb.ModelProto.SentencePiece.CONTROL)
    keep = [i for i, p in enumerate(old) if p.type in always or p.piece in kept]
    position = {o: n for n, o in enumerate(keep)}
    del m.pieces[:]
    m.pieces.extend(old[i] for i in keep)
    spec = m.trainer_spec
    for field in ("unk_id", "bos_id", "eos_id", "pad_id"):
        if getattr(spec, field) >= 0:
            setattr(spec, field, position[getattr(spec, field)])
    spec.vocab_size = len(keep)
    return m.SerializeToString()


def pieces_of(tok: Any, texts: Sequence[str]) -> list[list[str]]:
    """Each text's pieces (unpadded, with the specials) as strings: what a tokenization change compares."""
    by_id = {i: t for t, i in tok.vocab.items()}
    return [[by_id.get(i, "?") for i in ids] for ids in _unpadded(tok, texts)]
