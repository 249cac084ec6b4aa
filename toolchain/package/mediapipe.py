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

from converters.metadata import ModelInfo, app_session
from converters.tflite_edit import dequantized_outputs, tie_break_eps
from converters.tflite_inputs import add_segment_input, bert_input_names, int32_inputs
from converters.tflite_model import parse_tflite
from devices.hostrun import HostRunner
from toolchain.base.errors import DataError
from toolchain.base.progress import Progress
from toolchain.build import SPM_MODEL, Build, text_feeds
from toolchain.data import DELIM_REGEX, load_queries, load_vocab
from toolchain.package.gates import AnyParity, gate, output_step
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
    session, setup_s = app_session(progress, opts.timeout_s, opts.mediapipe)
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
    gate(low, build)
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
        gate(result, build)
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
