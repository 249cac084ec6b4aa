"""`source.adapt_lowercase`: a Hugging Face folder classifier fine-tuned for lower-cased queries before
its export (sources/hub_export.py runs it in the PyTorch child, converters/hf_export_child.py `_adapt`).

MediaPipe's SentencePiece path ASCII-lower-cases every query; a model trained on cased text then predicts
otherwise on some of them (the XLM-R fixture: 3 of 261 test queries). The fine-tune is a distillation from
the folder's own model: each train query as it is and lower-cased, the target the original model's softmax
on the query as it is; no labels. The model CHANGES, so the report says by how much: accuracy on cased and
lower-cased test queries and their top-1 agreement, before and after (`hub.adaptation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters import hf_export as hf
from toolchain.base.errors import RecipeError
from toolchain.report.hub import CaseAgreement, HubFolderInfo, LowercaseAdaptation
from toolchain.tokenizers.binding import ModelInput, bind_inputs
from toolchain.tokenizers.interface import TextTokenizer
from toolchain.tokenizers.mediapipe_bert import ascii_lower

ADAPT_EVAL = "adapt-eval.npz"
ADAPT_METHOD = (
    "distilled from the folder's own model: each train query as it is and ASCII-lower-cased, target the "
    "original model's softmax on the query as it is (KL, AdamW, batches of 32, seed 0), no labels"
)


@dataclass(frozen=True)
class AdaptTexts:
    """`source.adapt_lowercase`: the queries of the fine-tune and of its before/after check."""

    train: list[str]
    train_split: str
    eval: list[str] | None = None
    eval_labels: list[str] | None = None
    eval_split: str | None = None


def adapt_inputs(
    info: HubFolderInfo, tokenizer: TextTokenizer | None, adapt: AdaptTexts
) -> dict[str, np.ndarray]:
    """The fine-tune's inputs by `<set>/<input name>`: train and eval queries, as they are and lower-cased."""
    if tokenizer is None or not adapt.train:
        raise RecipeError(
            "source.adapt_lowercase needs the folder's tokenizer and training queries",
            hint="pass --train (or --calibration) with the model folder's own tokenizer.json",
        )
    inputs = tuple(ModelInput(n, "int64") for n in info.inputs)
    sets = {"train": adapt.train, **({"eval": adapt.eval} if adapt.eval else {})}
    out: dict[str, np.ndarray] = {}
    for name, texts in sets.items():
        for variant, queries in (("cased", texts), ("lower", [ascii_lower(t) for t in texts])):
            for inp, arr in bind_inputs(tokenizer.encode_batch(queries), inputs).items():
                out[f"{name}_{variant}/{inp}"] = np.asarray(arr, dtype=np.int64)
    return out


def _case_agreement(
    cased: np.ndarray, lower: np.ndarray, labels: list[str], truth: list[str] | None
) -> CaseAgreement:
    pc, pl = cased.argmax(1), lower.argmax(1)
    index = {name: i for i, name in enumerate(labels)}
    known = truth is not None and all(t in index for t in truth)
    y = np.array([index[t] for t in truth]) if known and truth is not None else None
    return CaseAgreement(
        queries=len(pc),
        accuracy_cased=None if y is None else round(float((pc == y).mean()), 6),
        accuracy_lowercased=None if y is None else round(float((pl == y).mean()), 6),
        agreement=round(float((pc == pl).mean()), 6),
    )


def adaptation(info: HubFolderInfo, adapt: AdaptTexts, entry: Path, facts: dict) -> LowercaseAdaptation:
    settings = hf.LowercaseAdapt(Path(), Path())
    done = facts.get("adapted") or {}
    section = LowercaseAdaptation(
        method=ADAPT_METHOD,
        train_split=adapt.train_split,
        train_queries=int(done.get("rows", len(adapt.train))),
        epochs=settings.epochs,
        lr=settings.lr,
        temperature=settings.temperature,
        seconds=float(done.get("seconds", 0.0)),
    )
    if adapt.eval and (entry / ADAPT_EVAL).is_file():
        with np.load(entry / ADAPT_EVAL) as logits:
            before = _case_agreement(
                logits["before_cased"], logits["before_lower"], info.labels, adapt.eval_labels
            )
            after = _case_agreement(
                logits["after_cased"], logits["after_lower"], info.labels, adapt.eval_labels
            )
        section = section.model_copy(
            update={"eval_split": adapt.eval_split, "before": before, "after": after}
        )
    return section


def adapt_notice(a: LowercaseAdaptation) -> str:
    text = f"the model was fine-tuned for lower-cased queries ({a.train_queries} queries, {a.epochs} epochs)"
    if a.before is None or a.after is None:
        return text + "; the model changed (no test split to measure it on)"

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v:.2%}"

    return (
        f"{text}; on {a.eval_split}: cased-vs-lower-cased agreement {pct(a.before.agreement)} -> "
        f"{pct(a.after.agreement)}, accuracy cased {pct(a.before.accuracy_cased)} -> "
        f"{pct(a.after.accuracy_cased)}, lower-cased {pct(a.before.accuracy_lowercased)} -> "
        f"{pct(a.after.accuracy_lowercased)}"
    )
