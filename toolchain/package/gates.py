"""The parity gates of `edgecomp package --format mediapipe`: MediaPipe's task against the toolchain's model.

One gate per kind of output (package/mediapipe.py measures, these decide): a classifier's top-1
(`parity_gate`, a one-step rounding flip counted and listed), a retrieval model's top-k ranks in order
(`rank_gate`, no allowance), an embedder's vectors (`vector_gate`: one output step for an int8-throughout
graph, cosine where float ops round per runtime).
"""

from __future__ import annotations

from converters.tflite_edit import output_int8_step
from toolchain.base.errors import GateFailed
from toolchain.base.types import QuantMode
from toolchain.build import Build
from toolchain.package.parity import Parity, RankParity, VectorParity

AnyParity = Parity | RankParity | VectorParity
TOKENIZER_HINT = (
    "the on-device tokenizer does not reproduce the training one: check vocab.txt and the delimiter"
)
RANK_HINT = (
    "a dynamic-range model ranks near-ties differently in each runtime: convert with quantization.mode "
    "weight_only (or int8); otherwise the on-device tokenizer differs: check vocab.txt and the delimiter"
)


def gate(parity: AnyParity, build: Build) -> None:
    """The gate of a feed's kind: top-1, top-k ranks or vectors."""
    if isinstance(parity, Parity):
        parity_gate(parity, output_step(build))
    elif isinstance(parity, RankParity):
        rank_gate(parity)
    else:
        vector_gate(parity, build)


def output_step(build: Build) -> float | None:
    """The int8 step of the model's output (its own scale, or the int8 tensor a final DEQUANTIZE reads)."""

    return output_int8_step(build.model_bytes)


def vector_gate(parity: VectorParity, build: Build, min_cosine: float = 0.999) -> None:
    """Every vector at cosine >= 0.999, and within one output step when the graph is int8 throughout.

    Float ops have no step: a float output (the L2 norm of an int8 BERT embedder: max 0.0022, cosine 0.99998)
    and a mixed graph's float ops before its int8 output (6 steps, min cosine 0.99945 on a sentence embedder)
    round differently in MediaPipe's kernels and the host's, so cosine is the criterion there."""
    step = None if build.report.quantization.mode == QuantMode.MIXED else output_step(build)
    if (step is not None and parity.max_abs_diff > step * 1.001) or parity.min_cosine < min_cosine:
        bound = (
            f"one output step is {step:g}" if step is not None else f"float output; cosine >= {min_cosine}"
        )
        raise GateFailed(
            f"MediaPipe TextEmbedder vectors differ from the toolchain's by up to {parity.max_abs_diff:g} "
            f"({bound}; min cosine {parity.min_cosine:g}), e.g. {parity.worst_query!r}",
            hint=TOKENIZER_HINT,
        )


def rank_gate(parity: RankParity) -> None:
    """Retrieval: MediaPipe's first k categories must be the toolchain's top k ids, in order, on every query.

    No allowance: a swap of two ids is what the app would show differently. Float math (float32,
    weight_only) agrees across runtimes to ~1e-5 and full int8 carries the tie-break bias, so the order is
    defined; dynamic-range (hybrid) kernels quantize activations per call, each runtime its own way
    (converters/tflite_edit.py `weight_only`), and fail here on near-ties."""
    if not parity.disagreements:
        return
    d = parity.disagreements[0]
    first = next((i for i, (a, b) in enumerate(zip(d.toolchain, d.mediapipe, strict=False)) if a != b), 0)
    ours, theirs = d.toolchain[first : first + 3], d.mediapipe[first : first + 3]
    raise GateFailed(
        f"MediaPipe TextClassifier's top {parity.k} differs from the toolchain's on "
        f"{len(parity.disagreements)} of {parity.queries} queries ({parity.feed}), e.g. {d.query!r} at rank "
        f"{first + 1}: toolchain {ours}, MediaPipe {theirs}",
        hint=RANK_HINT,
    )


def parity_gate(parity: Parity, step: float | None = None) -> None:
    """Fail on any label change, exact int8 ties included, except a one-step rounding flip.

    The packaged model carries a tie-break bias (converters/tflite_edit.py), so MediaPipe's ranking among
    equal int8 scores is deterministic and must equal the toolchain's argmax (lowest index first). A flip
    between two labels the toolchain itself scored within one int8 output step is the classifier form of
    the embedder gate's one-step allowance: MediaPipe's kernel mix rounds an int8 elementwise op one step
    apart from every host kernel set (measured on a mixed-precision BERT: 1 of 748). Those are counted
    and listed (`one_step_flips`), never hidden; anything wider fails.
    """
    rounding = [d for d in parity.disagreements if step is not None and d.toolchain_gap <= step * 1.001]
    parity.one_step_flips = len(rounding)
    real = [d for d in parity.disagreements if d not in rounding]
    if not real:
        return
    d = real[0]
    raise GateFailed(
        f"MediaPipe TextClassifier disagrees with the toolchain on {len(real)} of {parity.queries} queries "
        f"({parity.feed}), e.g. {d.query!r}: toolchain {d.toolchain} ({d.toolchain_score:g}), MediaPipe "
        f"{d.mediapipe} ({d.mediapipe_score:g})",
        hint=TOKENIZER_HINT,
    )
