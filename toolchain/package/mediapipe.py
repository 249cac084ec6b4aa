"""The MediaPipe model of `edgecomp package`: metadata, and parity in MediaPipe's own TextClassifier/Embedder.

Two tokenizer paths, one rule: the packaged model in MediaPipe 0.10.21 must reproduce the toolchain's model
on every query of the split (top-1 for classifiers, vectors within one output step for embedders).
- regex (word-level): the regex tokenizer + a vocab that also carries case variants (package/vocab.py),
  so raw mixed-case queries work without app code; raw-query parity is measured with and without them.
- wordpiece (BERT): int64 inputs retyped to int32 (converters/tflite_inputs.py), BERT metadata (`ids`,
  `mask`, `segment_ids` bound by tensor name, vocab.txt packed). A two-input export (no token_type_ids)
  gets a third int32 input that no op reads (MediaPipe's BERT path feeds three); the parity below runs
  the build's own two-input model as the reference, so it proves the outputs unchanged. MediaPipe
  tokenizes with its own C++ BertTokenizer, so the reference is the build's model fed the ids of its exact
  Python reproduction (toolchain/tokenizers/mediapipe_bert.py): a difference is then a packaging bug,
  never tokenizer skew.
  The skew itself (train-side vs device ids) is measured and gated apart (package/tokenizer.py).
- sentencepiece (XLM-R): the BERT path with SentencePiece metadata and the id remap in the graph (package/
  spm.py); reference: the model on MediaPipe's remapped ids; `vs_training_ids`: MediaPipe vs the toolchain
  on training-side ids (lower-casing's cost end to end, also measured by cause in package/spm.py).
  Kernels: MediaPipe 0.10.21's CPU task runs some ops in XNNPACK and some in TFLite's builtin kernels,
  and which depends on the model. Measured: on the onnx2tf int8 BERT fixture (float fallback ops) it
  reproduced ai_edge_litert's XNNPACK scores (0/748 top-1 flips; builtin kernels: 2 flips on near-ties,
  max score difference 0.09); on a small hybrid int8 model it reproduced the builtin kernels (to 1e-8 on
  one query; XNNPACK rounded an int8 value one step apart). So both host kernel sets are run, the one
  MediaPipe reproduced best is the gated reference, and the other's agreement is recorded.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from converters.metadata import ModelInfo, timed_session
from converters.tflite_edit import dequantized_outputs, output_int8_step, tie_break_eps
from converters.tflite_inputs import add_segment_input, bert_input_names, int32_inputs
from converters.tflite_model import parse_tflite
from devices.hostrun import HostRunner
from toolchain.base.errors import DataError, GateFailed
from toolchain.base.progress import Progress
from toolchain.base.types import QuantMode
from toolchain.build import SPM_MODEL, Build, text_feeds
from toolchain.data import DELIM_REGEX, load_queries, load_vocab
from toolchain.package.manifest_model import (
    AddedInput,
    AppParity,
    BertInputNames,
    CaseVariants,
    KernelReference,
    TieBreak,
)
from toolchain.package.parity import (
    FeedParity,
    Parity,
    RankParity,
    VectorParity,
    compare_top1,
    compare_top_k,
    compare_vectors,
)
from toolchain.package.spm import Remap
from toolchain.package.types import PackageOptions, PackageValues
from toolchain.package.vocab import case_variants, write_packed_vocab
from toolchain.tasks import task_spec
from toolchain.tokenizers.mediapipe_bert import MediaPipeBertTokenizer

AnyParity = Parity | RankParity | VectorParity
TOKENIZER_HINT = (
    "the on-device tokenizer does not reproduce the training one: check vocab.txt and the delimiter"
)
RANK_HINT = (
    "a dynamic-range model ranks near-ties differently in each runtime: convert with quantization.mode "
    "weight_only (or int8); otherwise the on-device tokenizer differs: check vocab.txt and the delimiter"
)
MEDIAPIPE_KINDS = ("regex", "wordpiece", "sentencepiece")


def tokenizer_kind(build: Build) -> str:
    """regex | wordpiece | sentencepiece; anything else cannot be packaged for MediaPipe (DataError)."""
    kind = build.report.tokenizer.kind
    if kind not in MEDIAPIPE_KINDS:
        raise DataError(
            f"MediaPipe packaging supports the regex, wordpiece and sentencepiece tokenizers; this build "
            f"uses {kind!r}",
            hint="package it with --format edge",
        )
    return kind


def is_classifier(build: Build) -> bool:
    return build.labels is not None


def top_k(build: Build) -> int | None:
    """The ranks parity compares beyond top-1 (a retrieval model's top 10, toolchain/tasks.py), else None."""

    k = task_spec(build.task).parity_top_k
    return k if k is not None and k > 1 else None


def device_tokenizer(build: Build):  # noqa: ANN201 - MediaPipeBertTokenizer, imported lazily
    """MediaPipe's BERT tokenizer on the build's vocab.txt, at the model's static input length."""

    shape = build.tflite.tensors[build.tflite.inputs[0]].shape
    return MediaPipeBertTokenizer.from_vocab_file(build.vocab_path, int(shape[-1]) if shape else None)


def model_scores(
    build: Build, ids: np.ndarray | dict[str, np.ndarray], progress: Progress, what: str, xnnpack: bool = True
) -> np.ndarray:
    """The build's .tflite in the host runner (its runtime child) on given ids (a bare array: mask = ids != 0,
    segment ids 0) or tokenizer outputs by canonical name."""

    with HostRunner(build.model_bytes, xnnpack=xnnpack, name=f"{build.dir.name}/model.tflite") as runner:
        return runner.scores(text_feeds(build.tflite, ids), progress, what)


def _seen_texts(build: Build) -> list[str]:
    """Queries of the train and val splits: the cased forms a vocab variant should cover."""

    texts: list[str] = []
    for split in ("train", "val"):
        path = getattr(build.recipe.data, split)
        if path is not None and Path(path).is_file():
            texts += load_queries(Path(path), build.recipe.data.text_field, None).texts
    return texts


def _run(session, build: Build, model: Path, texts: list[str], progress: Progress, what: str) -> Any:  # noqa: ANN001
    if is_classifier(build):
        return session.classify(model, texts, progress, what, max_results=top_k(build))
    return np.array(session.embed(model, texts), dtype=np.float32)


def _compare(build: Build, feed: str, texts: list[str], ref: np.ndarray, got: Any) -> AnyParity:
    k = top_k(build)
    if is_classifier(build):
        assert build.labels is not None
        if k is not None:
            return compare_top_k(feed, texts, ref, got, build.labels, k)
        return compare_top1(feed, texts, ref, got, build.labels)
    return compare_vectors(feed, texts, ref, got)


def _gate(parity: AnyParity, build: Build) -> None:
    if isinstance(parity, Parity):
        parity_gate(parity, output_step(build))
    elif isinstance(parity, RankParity):
        rank_gate(parity)
    else:
        vector_gate(parity, build)


def _record(parity: AnyParity, limit: int = 20) -> FeedParity:
    """What the manifest keeps of one feed (the first `limit` disagreements)."""
    return parity if isinstance(parity, VectorParity) else parity.record(limit)


def mediapipe_model(
    build: Build,
    values: PackageValues,
    tmp: Path,
    texts: list[str],
    scores: np.ndarray,
    opts: PackageOptions,
    progress: Progress,
) -> tuple[bytes, str, AppParity, dict[str, float]]:
    """Model with float outputs + Tasks metadata, and its parity with the toolchain in MediaPipe's task."""

    kind = tokenizer_kind(build)
    source, retyped, added = build.model_bytes, [], None
    if kind != "regex":
        source, retyped = int32_inputs(source)
        source, added = add_segment_input(source)  # a two-input export (XLM-R's too): MediaPipe feeds 3
    remap = Remap.of(build) if kind == "sentencepiece" else None
    if remap is not None:
        source = remap.edit(source, bert_input_names(source))
    float_out, changed = dequantized_outputs(source, tie_break=is_classifier(build))
    (tmp / "float_out.tflite").write_bytes(float_out)
    info = ModelInfo(values.name, values.version, values.description, values.author, values.license)
    model_path = tmp / "model.tflite"
    session, setup_s = timed_session(progress, opts.timeout_s)
    t0 = time.perf_counter()
    with session:
        if kind == "regex":
            metadata_json, parts, runs = _regex(build, session, tmp, info, texts, scores, progress)
        else:
            metadata_json, parts, runs = _bert(build, session, tmp, info, texts, progress, remap)
    run_s = time.perf_counter() - t0
    if retyped:
        parts["int32_inputs"] = retyped
    if added:
        parts["added_inputs"] = [_added(source, added)]
    got = parts.pop("got", None)  # MediaPipe on the raw queries (bert path)
    if remap is not None:  # vs the toolchain on the training tokenizer's ids
        parts["vs_training_ids"] = _record(_compare(build, "vs_training_ids", texts, scores, got))
    out = build.tflite.tensors[build.tflite.outputs[0]]
    step = output_step(build)
    if changed and step and is_classifier(build):
        n = int(out.shape[-1])
        eps = tie_break_eps(step, n)
        parts["tie_break"] = TieBreak(
            eps=eps,
            max_score_change=eps * (n - 1),
            int8_step=step,
            rule="among equal int8 scores the lower label index ranks first",
        )
    task = "TextClassifier" if is_classifier(build) else "TextEmbedder"
    k = top_k(build)
    task += f" with max_results {k}, the top {k} ids compared" if k else ""
    parity = AppParity(
        runtime=f"MediaPipe {session.version}",
        dequantized_outputs=changed,
        **parts,
        task=f"{task} (same C++ task as Android tasks-text)",
    )
    timings = {
        "mediapipe_env_s": setup_s,
        "mediapipe_ms_per_query": round(run_s * 1e3 / max(1, runs * len(texts)), 3),
    }
    return model_path.read_bytes(), metadata_json, parity, timings


def _regex(build, session, tmp, info, texts, scores, progress) -> tuple[str, dict[str, Any], int]:  # noqa: ANN001
    """Regex tokenizer: lower-cased parity (gated), raw parity without and with the case variants.

    Returns the metadata JSON, the `AppParity` fields it measured, and the MediaPipe runs per query."""

    kind = "regex" if is_classifier(build) else "embedder"
    delim = build.report.tokenizer.delimiter or DELIM_REGEX
    plain = tmp / "plain"
    plain.mkdir()
    session.write_metadata(
        tmp / "float_out.tflite", plain / "model.tflite", kind, build.vocab_path, build.labels, info, delim
    )
    before = _run(session, build, plain / "model.tflite", texts, progress, "(raw queries, plain vocab)")

    vocab = load_vocab(build.vocab_path)  # 'token id' lines, exactly what the plain model packs
    extra = case_variants(vocab, _seen_texts(build), delim)
    (tmp / "packed").mkdir()
    packed = tmp / "packed" / "vocab.txt"  # the name MediaPipe's writer records for the packed file
    lines = write_packed_vocab(packed, vocab, extra)
    model = tmp / "model.tflite"
    metadata_json = session.write_metadata(
        tmp / "float_out.tflite", model, kind, packed, build.labels, info, delim
    )
    lowered = _run(session, build, model, [t.lower() for t in texts], progress, "(lower-cased queries)")
    raw = _run(session, build, model, texts, progress, "(raw queries)")
    low = _compare(build, "lowercased", texts, scores, lowered)
    _gate(low, build)
    parts = {
        "lowercased": _record(low),
        "raw": _record(_compare(build, "raw", texts, scores, raw), 10),
        "raw_without_case_variants": _record(
            _compare(build, "raw_without_case_variants", texts, scores, before), 10
        ),
        "case_variants": CaseVariants(
            packed=len(extra),
            vocab_lines=lines,
            forms="Capitalized and UPPER of every word, cased forms seen in the train/val splits",
        ),
    }
    return metadata_json, parts, 3


def _bert(build, session, tmp, info, texts, progress, remap=None) -> tuple[str, dict[str, Any], int]:  # noqa: ANN001
    """WordPiece or SentencePiece (`remap`): MediaPipe on raw and on lower-cased queries vs the model fed
    device-tokenized ids (the metadata JSON, the `AppParity` fields measured, the MediaPipe runs per
    query)."""

    float_out = tmp / "float_out.tflite"
    names = bert_input_names(float_out.read_bytes())
    kind = ("bert" if is_classifier(build) else "bert_embedder") + ("_spm" if remap is not None else "")
    vocab = build.vocab_path if remap is None else build.dir / SPM_MODEL
    model = tmp / "model.tflite"
    metadata_json = session.write_metadata(
        float_out, model, kind, vocab, build.labels, info, input_names=names
    )
    device = device_tokenizer(build) if remap is None else None
    ids_name, mask_name, segment_name = names
    parts: dict[str, Any] = {
        "input_names": BertInputNames(ids=ids_name, mask=mask_name, segment_ids=segment_name)
    }
    results: dict[str, dict[str, AnyParity]] = {"xnnpack": {}, "builtin": {}}
    for feed, feed_texts in (("lowercased", [t.lower() for t in texts]), ("raw", texts)):
        if remap is not None:
            ids = remap.model_ids(feed_texts)
        else:
            ids = np.stack([device.encode(t)["input_ids"] for t in feed_texts]) if texts else np.zeros((0, 1))
        got = _run(session, build, model, feed_texts, progress, f"({feed} queries)")
        parts["got"] = got  # the raw feed's (last) MediaPipe results, for vs_training_ids
        for kernels in results:
            what = f"toolchain ({kernels} kernels) on device-tokenized {feed} queries"
            ref = model_scores(build, ids, progress, what, xnnpack=kernels == "xnnpack")
            results[kernels][feed] = _compare(build, feed, texts, ref, got)
    # The reference is the host kernel set whose numbers MediaPipe reproduced (smallest max difference).
    chosen = min(results, key=lambda k: _max_diff(results[k]["lowercased"]))
    other = "builtin" if chosen == "xnnpack" else "xnnpack"
    for feed, result in results[chosen].items():
        _gate(result, build)
        parts[feed] = _record(result)
    parts["reference"] = KernelReference.model_validate(
        {
            "model": "the build's model on ids from "
            + ("package/spm.py (remapped)" if remap else "toolchain/tokenizers/mediapipe_bert.py"),
            "kernels": chosen,
            "why": "the host TFLite kernel set (XNNPACK or builtin) whose scores MediaPipe reproduced best",
            f"vs_{other}_kernels": {f: _record(r, 5) for f, r in results[other].items()},
        }
    )
    return metadata_json, parts, 2


def _added(model: bytes, name: str) -> AddedInput:
    """The manifest's record of the segment-ids input given to a two-input export."""
    info = parse_tflite(model)
    idx = next(i for i in info.inputs if info.tensors[i].name == name)
    consumers = sum(idx in op.inputs for op in info.ops)
    tensor = info.tensors[idx]
    return AddedInput(
        name=name,
        role="segment_ids",
        dtype=tensor.dtype,
        shape=[int(d) for d in tensor.shape],
        consumers=consumers,
        why="the model was exported without token_type_ids and MediaPipe's BERT tasks feed three inputs; "
        "no op reads this one, so the segment ids MediaPipe writes there cannot change an output",
    )


def _max_diff(result: AnyParity) -> float:
    return result.max_abs_diff if isinstance(result, VectorParity) else result.max_abs_score_diff


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
