"""SentencePiece builds on MediaPipe: the device's ids, the in-graph id remap, and what lower-casing costs.

MediaPipe's SentencePiece path (bert_preprocessor_calculator.cc + sentencepiece_tokenizer.h, read at
google-ai-edge/mediapipe) ASCII-lower-cases the query (`absl::AsciiStrToLower`: A-Z only, never accents
or Cyrillic), runs the SentencePiece library on it (`Encode` into pieces), prepends the literal "[CLS]"
and appends "[SEP]" (an XLM-R .model has neither: `PieceToId` gives <unk>), truncates to the model's
length, looks every piece up with `PieceToId` (raw .model ids), pads with 0, mask 1/0, segment ids 0.
`DeviceSpm` is that, in Python, on the same library (sentencepiece 0.2.0).

An XLM-R-style model wants other ids (fairseq's +1 offset, <s>/</s>/<pad>/<unk> at 0/2/1/3), so packaging
puts a lookup table and the <s>/</s>/<pad> placement in front of the model (converters/tflite_spm.py).
`remap_table` builds the table by piece string: raw id i -> the tokenizer.json id of the same piece
(the .model's unknown -> the tokenizer's <unk>); a .model piece the tokenizer.json does not have means
they are not the same tokenizer, and packaging is refused.

What remains is what MediaPipe cannot express: its lower-casing (a cased vocabulary reads "Nike" as
"nike") and any normalisation where Hugging Face's tokenizer.json and the SentencePiece library differ.
`tokenization_cost` counts the test queries whose device ids differ from the training ids by cause:
`case` (the ids equal the training tokenizer's on the ASCII-lower-cased query), `unknown_pieces` (the
device produces <unk> the training side does not), `normalization` (anything else) and the model's
accuracy (or cosine) on both id sets. package.max_tokenizer_mismatch (share of queries) and
package.max_tokenizer_accuracy_drop (points; 1.0 unless the recipe says otherwise) gate it; the hint
offers `--format edge`: the LiteRT model with tokenizer.json for the app to run the exact tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from converters.tflite_spm import remap_ids, remap_reference
from devices.hostrun import HostRunner
from toolchain.base.errors import DataError, GateFailed
from toolchain.base.progress import Progress
from toolchain.build import SPM_MODEL, Build, text_feeds
from toolchain.package.manifest_model import TokenizerExample, TokenizerParitySection
from toolchain.report.stages import TokenizerEffect
from toolchain.tokenizers.sentencepiece import SentencePieceTokenizer

EDGE_HINT = (
    "package --format edge ships the LiteRT model with tokenizer.json + sentencepiece.model, for the app to "
    "tokenize with the model's own tokenizer"
)
DEFAULT_MAX_ACCURACY_DROP = 1.0  # points, when the recipe sets no package.max_tokenizer_accuracy_drop
DEFAULT_MIN_COSINE = 0.99  # mean, embedders, when the recipe sets no package.min_tokenizer_cosine
CAUSES = ("case", "unknown_pieces", "normalization")


def ascii_lower(text: str) -> str:
    """absl::AsciiStrToLower: A-Z only."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans({chr(c): chr(c + 32) for c in range(ord("A"), ord("Z") + 1)})


class DeviceSpm:
    """MediaPipe's SentencePiece preprocessing (raw .model ids, mask), at a static length."""

    def __init__(self, model_file: Path, seq_len: int) -> None:
        import sentencepiece as spm  # reason: heavy native module, only for sentencepiece builds

        self.sp = spm.SentencePieceProcessor(model_file=str(model_file))
        self.seq_len = seq_len

    def ids(self, text: str) -> list[int]:
        pieces = self.sp.encode(ascii_lower(text), out_type=str)[: self.seq_len - 2]
        return [self.sp.piece_to_id(p) for p in ["[CLS]", *pieces, "[SEP]"]]

    def batch(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        raw = np.zeros((len(texts), self.seq_len), np.int32)
        mask = np.zeros_like(raw)
        for row, text in enumerate(texts):
            ids = self.ids(text)
            raw[row, : len(ids)], mask[row, : len(ids)] = ids, 1
        return raw, mask


def spm_tokenizer(build: Build) -> SentencePieceTokenizer:
    tok = build.tokenizer
    assert isinstance(tok, SentencePieceTokenizer)
    if not (build.dir / SPM_MODEL).is_file():
        raise DataError(
            "MediaPipe's SentencePiece tokenizer needs the SentencePiece .model file; this build has none "
            "(there was no sentencepiece.bpe.model / spiece.model beside tokenizer.json)",
            hint=f"convert with the .model file beside tokenizer.json, or: {EDGE_HINT}",
        )
    return (
        tok  # a tokenizer.json that lower-cases all text differs on non-ASCII capitals: measured, not refused
    )


class Remap:
    """The table and special ids `converters.tflite_spm.remap_ids` puts in the graph."""

    def __init__(self, tok: SentencePieceTokenizer, model_file: Path) -> None:
        self.device = DeviceSpm(model_file, tok.seq_len)
        sp, self.tok = self.device.sp, tok
        table, missing = np.zeros(sp.get_piece_size(), np.int32), []
        for i in range(sp.get_piece_size()):
            piece = sp.id_to_piece(i)
            if sp.is_unknown(i):
                table[i] = tok.unk_id if tok.unk_id is not None else 0
            elif piece in tok.vocab:
                table[i] = tok.vocab[piece]
            else:
                missing.append(piece)
        if missing:
            raise DataError(
                f"{len(missing)} pieces of sentencepiece.model are not in tokenizer.json (e.g. "
                f"{missing[0]!r}): they are not the same tokenizer, the device's ids would be wrong",
                hint=f"convert with the tokenizer files the model was trained with, or: {EDGE_HINT}",
            )
        self.table = table
        self.shift = int(np.median(table[3:] - np.arange(3, len(table)))) if len(table) > 3 else 0

    @classmethod
    def of(cls, build: Build) -> Remap:
        return cls(spm_tokenizer(build), build.dir / SPM_MODEL)

    def model_ids(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """What the packaged graph feeds the model for `texts` (MediaPipe's ids after the remap)."""
        raw, mask = self.device.batch(texts)
        t = self.tok
        ids = remap_reference(raw, mask, self.table, t.bos_id, t.eos_id, t.pad_id)
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(mask)}

    def edit(self, model: bytes, names: tuple[str, str, str]) -> bytes:
        """The model (int32 inputs, three: converters.tflite_inputs.add_segment_input) with the remap in
        front of its ids input (`names`: ids, mask, segment ids tensor names)."""
        t = self.tok
        return remap_ids(model, names[0], names[1], self.table, t.bos_id, t.eos_id, t.pad_id)


def _run(build: Build, feeds: dict[str, np.ndarray], progress: Progress, what: str) -> np.ndarray:
    with HostRunner(build.model_bytes, name=f"{build.dir.name}/model.tflite") as runner:
        return runner.scores(text_feeds(build.tflite, feeds), progress, what)


def _trim(ids: np.ndarray, mask: np.ndarray) -> list[int]:
    return [int(x) for x in ids[: int(mask.sum())]]


def tokenization_cost(
    build: Build, texts: list[str], label_ids: np.ndarray | None, split: str, progress: Progress
) -> TokenizerParitySection:
    """Training ids (tokenizer.json on the raw query) vs the device's (after the remap), by cause."""
    remap = Remap.of(build)
    tok = remap.tok
    train = tok.encode_batch(texts)
    device = remap.model_ids(texts)
    lowered = tok.encode_batch([ascii_lower(t) for t in texts])
    by_id = tok.id_to_piece()
    counts = dict.fromkeys(CAUSES, 0)
    examples: dict[str, list[TokenizerExample]] = {}
    for i, text in enumerate(texts):
        a = _trim(train["input_ids"][i], train["attention_mask"][i])
        b = _trim(device["input_ids"][i], device["attention_mask"][i])
        if a == b:
            continue
        if _trim(lowered["input_ids"][i], lowered["attention_mask"][i]) == b:
            cause = "case"
        elif b.count(tok.unk_id) > a.count(tok.unk_id):
            cause = "unknown_pieces"
        else:
            cause = "normalization"
        counts[cause] += 1
        if len(examples.setdefault(cause, [])) < 5:
            examples[cause].append(
                TokenizerExample(
                    text=text,
                    causes=[cause],
                    train_tokens=[by_id.get(x, "?") for x in a],
                    device_tokens=[by_id.get(x, "?") for x in b],
                )
            )
    differing = sum(counts.values())
    train_out = _run(build, train, progress, "toolchain on training ids")
    device_out = _run(build, device, progress, "toolchain on MediaPipe's ids (remapped)")
    effect = _effect(train_out, device_out, label_ids)
    n = max(1, len(texts))
    summary = (
        f"{differing} of {len(texts)} queries get other ids on the device ("
        + ", ".join(f"{c} {k}" for c, k in counts.items())
        + ")"
    )
    return TokenizerParitySection(
        split=split,
        train_side=f"Hugging Face tokenizers ({tok.model_type}, tokenizer.json), raw query",
        device_side="MediaPipe 0.10.21 SentencePiece path (ASCII lower-case, sentencepiece.model), ids "
        "remapped "
        f"in the graph (offset +{remap.shift}, <s>/</s>/<pad> placed)",
        queries=len(texts),
        differing=differing,
        differing_share=round(differing / n, 6),
        by_cause=counts,
        examples=examples,
        effect=effect,
        summary=summary,
    )


def _effect(train_out: np.ndarray, device_out: np.ndarray, label_ids: np.ndarray | None) -> TokenizerEffect:
    if label_ids is not None:
        a = float((train_out.argmax(1) == label_ids).mean()) if len(label_ids) else 1.0
        b = float((device_out.argmax(1) == label_ids).mean()) if len(label_ids) else 1.0
        return TokenizerEffect(
            train_ids_accuracy=round(a, 6),
            device_ids_accuracy=round(b, 6),
            accuracy_delta=round(b - a, 6),
            flipped_predictions=int((train_out.argmax(1) != device_out.argmax(1)).sum()),
        )
    norms = np.linalg.norm(train_out, axis=1) * np.linalg.norm(device_out, axis=1)
    cos = (train_out * device_out).sum(1) / np.maximum(norms, 1e-12) if len(train_out) else np.ones(1)
    return TokenizerEffect(
        min_cosine_train_vs_device_ids=round(float(cos.min()), 6),
        mean_cosine_train_vs_device_ids=round(float(cos.mean()), 6),
    )


def accuracy_gate(
    section: TokenizerParitySection, limit: float | None, min_cosine: float | None = None
) -> None:
    """GateFailed when the device's ids cost more than `limit` points of accuracy (default 1.0), or an
    embedder's vectors on them fall below `min_cosine` mean cosine (default 0.99)."""
    limit = DEFAULT_MAX_ACCURACY_DROP if limit is None else limit
    min_cosine = DEFAULT_MIN_COSINE if min_cosine is None else min_cosine
    mean = section.effect.mean_cosine_train_vs_device_ids
    if mean is not None and mean < min_cosine:
        raise GateFailed(
            f"MediaPipe's SentencePiece ids move the vectors to mean cosine {mean:g} (min "
            f"{section.effect.min_cosine_train_vs_device_ids:g}) of the training ids' on {section.split} "
            f"(< package.min_tokenizer_cosine {min_cosine:g})",
            hint=f"train on lower-cased queries too, lower package.min_tokenizer_cosine, or: {EDGE_HINT}",
        )
    delta = section.effect.accuracy_delta
    if delta is None or -delta * 100 <= limit + 1e-9:
        return
    causes = ", ".join(f"{c} {n}" for c, n in section.by_cause.items() if n)
    raise GateFailed(
        f"MediaPipe's SentencePiece ids cost {-delta * 100:.2f} accuracy points on {section.split} "
        f"(> package.max_tokenizer_accuracy_drop {limit:g}): {section.differing} of {section.queries} "
        "queries "
        f"get other ids ({causes})",
        hint=f"train the model on lower-cased queries too, raise package.max_tokenizer_accuracy_drop, or: "
        f"{EDGE_HINT}",
    )
