"""App-runtime parity (MediaPipe TextClassifier vs the toolchain) and the server-fallback threshold.

`Parity` and `RankParity` are the working results (the gates read them, `one_step_flips` is filled in by
the gate); what the manifest keeps of one feed is a record: `Top1Feed`, `RankFeed` or `VectorParity` (the
`FeedParity` union, told apart by its keys when a received manifest is read back).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Discriminator, Field, Tag

from toolchain.base.errors import DataError
from toolchain.base.record import Record
from toolchain.report.stages import FallbackSection


class Disagreement(Record):
    query: str = Field(description="the query text as fed")
    toolchain: str = Field(description="the toolchain's top-1 label")
    mediapipe: str = Field(description="MediaPipe's top-1 label")
    toolchain_score: float = Field(description="the toolchain's score for its label")
    mediapipe_score: float = Field(description="MediaPipe's score for its label")
    tie: bool = Field(description="MediaPipe's first category has the same score as the toolchain's top-1")
    toolchain_gap: float = Field(
        0.0, description="toolchain's top score minus its score for MediaPipe's label"
    )


class Top1Feed(Record):
    """One feed's top-1 parity as the manifest holds it (`Parity.record`)."""

    feed: str = Field(description="which query strings were fed (lowercased, raw, ...)")
    queries: int = Field(description="queries compared")
    agree: int = Field(description="queries with the same top-1 label")
    agreement: float = Field(description="agree / queries")
    agreement_up_to_ties: float = Field(description="agreement counting a tie at the top as agreeing")
    disagreements_count: int = Field(description="queries with another top-1 label")
    tie_disagreements: int = Field(description="of which ties (equal top scores ordered differently)")
    one_step_flips: int = Field(0, description="not in manifests written before the one-step allowance")
    top1_ties: int = Field(description="queries whose top two toolchain scores are equal")
    max_abs_score_diff: float = Field(description="largest absolute score difference of any label")
    disagreements: list[Disagreement] = Field(description="the first `limit` of them")


@dataclass
class Parity:
    """Top-1 agreement of the app runtime with the toolchain on one set of query strings."""

    feed: str  # "lowercased" (what the app should send) or "raw"
    queries: int
    agree: int
    ties: int  # queries whose top-1 score is shared by more than one label (either runtime)
    max_abs_score_diff: float
    disagreements: list[Disagreement] = field(default_factory=list)
    one_step_flips: int = 0  # disagreements on labels the toolchain scored within one int8 step

    @property
    def agreement(self) -> float:
        return self.agree / self.queries if self.queries else 1.0

    @property
    def agreement_up_to_ties(self) -> float:
        """Agreement counting a tie flip (MediaPipe's first label shares the top score) as agreeing."""
        real = sum(not d.tie for d in self.disagreements)
        return (self.queries - real) / self.queries if self.queries else 1.0

    def record(self, limit: int = 20) -> Top1Feed:
        return Top1Feed(
            feed=self.feed,
            queries=self.queries,
            agree=self.agree,
            agreement=round(self.agreement, 6),
            agreement_up_to_ties=round(self.agreement_up_to_ties, 6),
            disagreements_count=len(self.disagreements),
            tie_disagreements=sum(d.tie for d in self.disagreements),
            one_step_flips=self.one_step_flips,
            top1_ties=self.ties,
            max_abs_score_diff=round(self.max_abs_score_diff, 6),
            disagreements=self.disagreements[:limit],
        )


def mediapipe_score_matrix(results: list[list[tuple[int, float]]], n_labels: int) -> np.ndarray:
    """MediaPipe category lists -> a (queries, labels) score matrix (missing categories score 0)."""
    scores = np.zeros((len(results), n_labels), dtype=np.float32)
    for row, cats in enumerate(results):
        for idx, score in cats:
            if not 0 <= idx < n_labels:
                raise DataError(f"MediaPipe returned category index {idx} for {n_labels} labels")
            scores[row, idx] = score
    return scores


def compare_top1(
    feed: str,
    texts: Sequence[str],
    toolchain_scores: np.ndarray,
    mediapipe_results: list[list[tuple[int, float]]],
    labels: Sequence[str],
) -> Parity:
    """The app shows MediaPipe's first category; the toolchain's top-1 is argmax (lowest index on ties)."""
    mp_scores = mediapipe_score_matrix(mediapipe_results, len(labels))
    tc_top = toolchain_scores.argmax(1)
    mp_first = np.array([cats[0][0] if cats else -1 for cats in mediapipe_results])
    tc_best = toolchain_scores.max(1)
    ties = int(np.sum((toolchain_scores == tc_best[:, None]).sum(1) > 1))
    out: list[Disagreement] = []
    for i in np.flatnonzero(mp_first != tc_top):
        mp_idx = int(mp_first[i])
        mp_score = float(mp_scores[i, mp_idx]) if mp_idx >= 0 else float("nan")
        out.append(
            Disagreement(
                query=texts[i],
                toolchain=labels[int(tc_top[i])],
                mediapipe=labels[mp_idx] if mp_idx >= 0 else "(no category)",
                toolchain_score=round(float(tc_best[i]), 6),
                mediapipe_score=round(mp_score, 6),
                tie=bool(mp_idx >= 0 and toolchain_scores[i, mp_idx] == tc_best[i]),
                toolchain_gap=round(float(tc_best[i] - toolchain_scores[i, mp_idx]), 6)
                if mp_idx >= 0
                else 1e9,
            )
        )
    diff = float(np.max(np.abs(mp_scores - toolchain_scores))) if len(texts) else 0.0
    return Parity(feed, len(texts), len(texts) - len(out), ties, diff, out)


@dataclass(frozen=True)
class ServerFallback:
    """Queries whose top score is below `threshold` go to the server; above it the device answers.

    `threshold` is None when no threshold reaches the target; `best_*` then give the most accurate one.
    """

    threshold: float | None
    coverage: float  # fraction of queries answered on device
    accuracy_above: float | None
    target_accuracy: float
    split: str
    queries: int
    overall_accuracy: float
    tied_to_server: int = 0  # queries with two labels on the top score: always sent to the server
    best_threshold: float | None = None
    best_coverage: float | None = None
    best_accuracy: float | None = None
    note: str = ""

    def section(self) -> FallbackSection:
        """The manifest's and the report's `server_fallback` (every field set, so every key is written)."""
        return FallbackSection(**asdict(self))


def server_fallback(scores: np.ndarray, y_true: np.ndarray, target: float, split: str) -> ServerFallback:
    """The lowest confidence threshold whose kept queries reach `target` accuracy (max coverage).

    A query whose top score is shared by two labels always goes to the server (which label MediaPipe lists
    first is unspecified), so it never counts as kept.
    """
    if len(y_true) == 0:
        raise DataError(f"no labelled queries in {split} for the server-fallback threshold")
    conf = scores.max(1)
    correct = scores.argmax(1) == y_true
    common = {
        "target_accuracy": target,
        "split": split,
        "queries": len(y_true),
        "overall_accuracy": round(float(correct.mean()), 4),
    }
    tied = (scores == conf[:, None]).sum(1) > 1
    common["tied_to_server"] = int(tied.sum())
    best: tuple[float, float, float] = (0.0, 1.0, 0.0)  # (accuracy, threshold, coverage)
    for t in np.unique(conf[~tied]):  # ascending: the first hit keeps the most queries
        kept = (conf >= t) & ~tied
        acc = float(correct[kept].mean())
        if acc >= target:
            return ServerFallback(round(float(t), 6), round(float(kept.mean()), 4), round(acc, 4), **common)
        if acc > best[0]:
            best = (acc, float(t), float(kept.mean()))
    return ServerFallback(
        None,
        0.0,
        None,
        **common,
        best_threshold=round(best[1], 6),
        best_coverage=round(best[2], 4),
        best_accuracy=round(best[0], 4),
        note=f"no threshold reaches {target:.2%} on {Path(split).name} (best: {best[0]:.2%} above "
        f"{best[1]:g}): improve the model, lower --min-confidence-accuracy or use the server only",
    )


class VectorParity(Record):
    """Embedding models: MediaPipe TextEmbedder vectors vs the toolchain's, query by query."""

    feed: str = Field(description="which query strings were fed")
    queries: int = Field(description="queries compared")
    identical: int = Field(description="queries whose vectors are identical")
    max_abs_diff: float = Field(description="largest absolute difference of any vector value")
    min_cosine: float = Field(description="smallest cosine between the two vectors of a query")
    worst_query: str | None = Field(description="the query with the largest difference")

    @property
    def agreement(self) -> float:
        """The share of identical vectors (the report's `package.parity` number for an embedder)."""
        return round(self.identical / max(1, self.queries), 6)


def compare_vectors(feed: str, texts: Sequence[str], reference: np.ndarray, got: np.ndarray) -> VectorParity:
    if reference.shape != got.shape:
        raise DataError(f"MediaPipe embeddings have shape {got.shape}, the toolchain's {reference.shape}")
    diff = np.abs(reference - got).max(1) if len(texts) else np.zeros(0)
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(got, axis=1)
    cos = np.where(norms > 0, (reference * got).sum(1) / np.maximum(norms, 1e-12), 1.0)
    worst = int(diff.argmax()) if len(texts) else None
    return VectorParity(
        feed=feed,
        queries=len(texts),
        identical=int(np.sum(diff == 0)),
        max_abs_diff=round(float(diff.max()), 6) if len(texts) else 0.0,
        min_cosine=round(float(cos.min()), 6) if len(texts) else 1.0,
        worst_query=texts[worst] if worst is not None else None,
    )


class RankDisagreement(Record):
    query: str = Field(description="the query text as fed")
    toolchain: list[str] = Field(description="the toolchain's top k ids, best first")
    mediapipe: list[str] = Field(description="MediaPipe's first k categories")
    toolchain_gap: float = Field(
        description="the smallest score gap between neighbours in the toolchain's top k+1"
    )


class RankFeed(Record):
    """One feed's top-k parity as the manifest holds it (`RankParity.record`)."""

    feed: str = Field(description="which query strings were fed")
    queries: int = Field(description="queries compared")
    k: int = Field(description="how many items are compared")
    identical_top_k: int = Field(description="queries whose k items are equal and in the same order")
    agreement: float = Field(description="identical_top_k / queries")
    same_set_top_k: int = Field(description="queries whose k items are equal in any order")
    max_abs_score_diff: float = Field(description="largest absolute score difference")
    disagreements_count: int = Field(description="queries whose top k differ")
    disagreements: list[RankDisagreement] = Field(description="the first `limit` of them")


@dataclass
class RankParity:
    """Retrieval models: MediaPipe's first k categories vs the toolchain's top k ids, query by query.

    The toolchain's list is its top k with equal scores in item order (toolchain/evaluation/retrieval.py
    `top_k`);
    `identical` counts queries whose k ids are equal in the same order, `same_set` in any order."""

    feed: str
    queries: int
    k: int
    identical: int
    same_set: int
    max_abs_score_diff: float  # over the ids both lists hold
    disagreements: list[RankDisagreement] = field(default_factory=list)

    @property
    def agreement(self) -> float:
        return self.identical / self.queries if self.queries else 1.0

    def record(self, limit: int = 20) -> RankFeed:
        return RankFeed(
            feed=self.feed,
            queries=self.queries,
            k=self.k,
            identical_top_k=self.identical,
            agreement=round(self.agreement, 6),
            same_set_top_k=self.same_set,
            max_abs_score_diff=round(self.max_abs_score_diff, 6),
            disagreements_count=len(self.disagreements),
            disagreements=self.disagreements[:limit],
        )


def _feed_shape(value: Any) -> str:
    """Which record one feed's parity is: by type, or by its keys in a manifest read back."""
    if isinstance(value, dict):
        return "rank" if "k" in value else "vector" if "min_cosine" in value else "top1"
    return "rank" if isinstance(value, RankFeed) else "vector" if isinstance(value, VectorParity) else "top1"


FeedParity = Annotated[
    Annotated[Top1Feed, Tag("top1")]
    | Annotated[RankFeed, Tag("rank")]
    | Annotated[VectorParity, Tag("vector")],
    Discriminator(_feed_shape),
]


def compare_top_k(
    feed: str,
    texts: Sequence[str],
    toolchain_scores: np.ndarray,
    mediapipe_results: list[list[tuple[int, float]]],
    labels: Sequence[str],
    k: int,
) -> RankParity:
    """The app shows MediaPipe's first k categories (max_results k); they must be the toolchain's top k."""
    k = min(k, len(labels))
    top = np.argsort(-toolchain_scores, axis=1, kind="stable")[:, : k + 1] if len(texts) else np.zeros((0, 0))
    identical = same = 0
    diff, out = 0.0, []
    for i, cats in enumerate(mediapipe_results):
        mine = [int(j) for j in top[i, :k]]
        theirs = [int(j) for j, _ in cats[:k]]
        for j, score in cats[:k]:
            if not 0 <= j < len(labels):
                raise DataError(f"MediaPipe returned category index {j} for {len(labels)} labels")
            if j in mine:
                diff = max(diff, abs(float(toolchain_scores[i, j]) - score))
        identical += mine == theirs
        same += set(mine) == set(theirs)
        if mine != theirs:
            ranked = toolchain_scores[i, top[i]]
            out.append(
                RankDisagreement(
                    query=texts[i],
                    toolchain=[labels[j] for j in mine],
                    mediapipe=[labels[j] for j in theirs],
                    toolchain_gap=round(float(np.min(ranked[:-1] - ranked[1:])), 6)
                    if len(ranked) > 1
                    else 0.0,
                )
            )
    return RankParity(feed, len(texts), k, identical, same, diff, out)
