"""Train-vs-device tokenizer parity for a WordPiece build, recorded by `edgecomp package` and gated.

The train side is Hugging Face `tokenizers` on the build's tokenizer.json (or, without one, a
BertWordPieceTokenizer on its vocab.txt); the device side is MediaPipe's C++ BertTokenizer, reproduced
exactly in toolchain/tokenizers/mediapipe_bert.py. toolchain/tokenizers/parity.py counts the queries whose
ids differ by cause (accent, non_ascii_uppercase, unicode_whitespace, format_char, control_char, long_word,
other). The accuracy effect runs the build's model on both id sets: accuracy on train-side vs device-side
ids for a labelled classifier split, cosine between the two vectors for an embedder.
`package.max_tokenizer_mismatch` (0..1, recipe or `--max-tokenizer-mismatch`) fails packaging (exit 1)
when the share of differing queries is above it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from toolchain.base.errors import GateFailed
from toolchain.base.progress import Progress
from toolchain.build import Build
from toolchain.package.manifest_model import TokenizerExample, TokenizerParitySection
from toolchain.package.mediapipe import device_tokenizer, model_scores
from toolchain.report.stages import TokenizerEffect
from toolchain.tokenizers.parity import (
    ParityExample,
    ParityReport,
    accuracy_effect,
    cut_like_device,
    hf_train_encoder,
    tokenizer_parity,
)

TOKENIZER_JSON = "tokenizer.json"


def train_encoder(build: Build) -> tuple[Callable[[str], list[int]], str]:
    """The training-side encoder (unpadded ids with [CLS]/[SEP]) and where it came from."""

    path = build.dir / TOKENIZER_JSON
    if path.is_file():
        return hf_train_encoder(path), f"Hugging Face tokenizers ({TOKENIZER_JSON})"
    lowercase = build.report.tokenizer.lowercase
    return vocab_encoder(build.vocab_path, True if lowercase is None else lowercase)


def vocab_encoder(vocab: Path, lowercase: bool = True) -> tuple[Callable[[str], list[int]], str]:
    """BertWordPieceTokenizer (BertNormalizer + BertPreTokenizer + WordPiece) on a vocab.txt."""
    from tokenizers import BertWordPieceTokenizer

    tok = BertWordPieceTokenizer(str(vocab), lowercase=lowercase)

    def encode(text: str) -> list[int]:
        return list(tok.encode(text).ids)

    return encode, f"Hugging Face BertWordPieceTokenizer (vocab.txt, lowercase={lowercase})"


def padded(rows: list[list[int]], seq_len: int) -> np.ndarray:
    out = np.zeros((len(rows), seq_len), dtype=np.int64)
    for i, ids in enumerate(rows):
        out[i, : len(ids)] = ids
    return out


def measure(
    texts: list[str],
    train_encode: Callable[[str], list[int]],
    device: Any,
    run: Callable[[np.ndarray, str], np.ndarray],
    label_ids: np.ndarray | None,
) -> tuple[ParityReport, TokenizerEffect]:
    """Parity report + the model's accuracy (or vector cosine) on train-side vs device-side ids.

    `run(ids [n, seq_len], what)` returns the model's scores or vectors; `device` is a
    MediaPipeBertTokenizer with a static seq_len.
    """
    report = tokenizer_parity(train_encode, device, texts)
    seq_len = int(device.seq_len)
    train_ids = padded([cut_like_device(train_encode(t), seq_len) for t in texts], seq_len)
    device_ids = padded([device.ids(t) for t in texts], seq_len)
    train_out = run(train_ids, "train-side ids")
    device_out = run(device_ids, "device-side ids")
    if label_ids is not None:
        eff = accuracy_effect(label_ids, train_out, device_out)
        effect = TokenizerEffect(
            train_ids_accuracy=round(eff.train_accuracy, 6),
            device_ids_accuracy=round(eff.device_accuracy, 6),
            accuracy_delta=round(eff.delta, 6),
            flipped_predictions=eff.flipped,
        )
    else:
        norms = np.linalg.norm(train_out, axis=1) * np.linalg.norm(device_out, axis=1)
        cos = (train_out * device_out).sum(1) / np.maximum(norms, 1e-12) if len(texts) else np.ones(0)
        effect = TokenizerEffect(
            min_cosine_train_vs_device_ids=round(float(cos.min()), 6) if len(texts) else 1.0,
            mean_cosine_train_vs_device_ids=round(float(cos.mean()), 6) if len(texts) else 1.0,
        )
    return report, effect


def _example(example: ParityExample) -> TokenizerExample:
    return TokenizerExample(
        text=example.text,
        causes=list(example.causes),
        train_tokens=list(example.train_tokens),
        device_tokens=list(example.device_tokens),
    )


def parity_section(
    report: ParityReport, effect: TokenizerEffect, train_side: str, split: str
) -> TokenizerParitySection:
    """The manifest's `tokenizer_parity`."""
    return TokenizerParitySection(
        split=split,
        train_side=train_side,
        device_side="MediaPipe 0.10.21 BertTokenizer (toolchain/tokenizers/mediapipe_bert.py)",
        queries=report.total,
        differing=report.differing,
        differing_share=round(report.differing_share, 6),
        by_cause=report.counts,
        examples={c: [_example(e) for e in ex] for c, ex in report.examples.items()},
        effect=effect,
        summary=report.summary(),
    )


def tokenizer_section(
    build: Build, texts: list[str], label_ids: np.ndarray | None, split: str, progress: Progress
) -> TokenizerParitySection:
    """The package's `tokenizer_parity` section for a wordpiece build (see the module doc)."""

    encode, train_side = train_encoder(build)
    device = device_tokenizer(build)

    def run(ids: np.ndarray, what: str) -> np.ndarray:
        return model_scores(build, ids, progress, f"toolchain on {what}")

    report, effect = measure(texts, encode, device, run, label_ids)
    return parity_section(report, effect, train_side, split)


def mismatch_gate(section: TokenizerParitySection, limit: float | None) -> None:
    """GateFailed (exit 1) when more than `limit` of the queries get other ids on the device."""
    if limit is None or section.differing_share <= limit:
        return
    causes = ", ".join(f"{c} {n}" for c, n in section.by_cause.items() if n)
    first = next(iter(section.examples.values()), [])
    example = first[0].text if first else None
    raise GateFailed(
        f"the device tokenizer gives other ids than training on {section.differing} of "
        f"{section.queries} queries ({section.differing_share:.2%} > package.max_tokenizer_mismatch "
        f"{limit:.2%}): {causes}; e.g. {example!r}",
        hint="normalize queries in the app before MediaPipe as training did (lower-case, strip accents, "
        "NBSP -> space, drop zero-width chars), or retrain with the device's rules, or raise "
        "package.max_tokenizer_mismatch",
    )
