"""A Hugging Face folder in front of the ONNX route: `prepare_folder` gives the .onnx to open, and the
report's `hub` section.

- an ONNX folder (model.onnx at the top): None, the ONNX route as before;
- the Hub's layout (onnx/*.onnx): the chosen file, announced when there were several;
- transformers / sentence-transformers: exported by converters/hf_export.py in the isolated PyTorch
  environment, at the build's query length (data.seq_len, else the folder's own: sentence_bert_config
  max_seq_length, tokenizer_config model_max_length, max_position_embeddings), with the folder's inputs,
  the classifier's logits or the encoder's pooled (+ normalised) embedding inside the graph; then checked
  against PyTorch on the build's queries (the first of test, calibration, train, at most PARITY_QUERIES;
  seeded random ids without a tokenizer or queries): max abs logit error < 1e-4 for a classifier, every
  cosine >= 0.9999 for an embedder, else a ConversionError. The exported .onnx is cached under
  `<cache>/hub-exports/<key>/` (key: the folder's files, the request, the environment and the child
  script), and so are PyTorch's outputs per query set, so a second build of the same folder starts no
  PyTorch at all; the section says what came from the cache.
- `source.adapt_lowercase` (opt-in, classifiers): before the export, the model is fine-tuned in the same
  child so that each train query ASCII-lower-cased gets the original model's output distribution on the
  query as it is (converters/hf_export_child.py `_adapt`). MediaPipe's SentencePiece path lower-cases all
  text, and a cased model then flips some predictions (the XLM-R fixture: 3 of 261 test queries, 98.85%
  agreement with the toolchain on training ids). The model CHANGES: `hub.adaptation` records accuracy and
  cased-vs-lower-cased agreement before and after on the test split, and everything after (evaluation,
  validate, package) is the adapted model's. Measured on the XLM-R fixture (benchmarks/
  acceptance_multilingual.py): 3 epochs, agreement 98.85% -> 100% on test, accuracy cased 96.55% -> 97.32%.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters import hf_export as hf
from converters import onnx_tflite as ox
from toolchain.base.atomic import locked, staged_dir, write_bytes
from toolchain.base.errors import ConversionError, RecipeError
from toolchain.base.notices import announce
from toolchain.base.types import FolderKind
from toolchain.base.venvs import cache_dir
from toolchain.report.hub import HubExportSection, HubFolderInfo, TorchParity
from toolchain.sources.hub_adapt import ADAPT_EVAL, AdaptTexts, adapt_inputs, adapt_notice, adaptation
from toolchain.sources.hub_folder import PREFERRED_ONNX, folder_seq_len, read_folder
from toolchain.tokenizers.binding import ModelInput, bind_inputs
from toolchain.tokenizers.interface import ATTENTION_MASK, INPUT_IDS, TOKEN_TYPE_IDS, TextTokenizer
from toolchain.tokenizers.sources import find_tokenizer, query_length

PARITY_QUERIES = 1000
RANDOM_ROWS = 64
MAX_ABS_LIMIT = 1e-4  # classifier logits, onnxruntime vs PyTorch
MIN_COSINE_LIMIT = 0.9999  # embedder vectors
CACHE_FOLDER = "hub-exports"
EXPORTED = "model.onnx"


@dataclass(frozen=True)
class PreparedFolder:
    """The ONNX file to open (inside the folder or in the export cache) and the report's section."""

    onnx: Path
    seq_len: int | None  # the length to open it at (None: the ONNX route's own rule)
    section: HubExportSection


ParityTexts = tuple[list[str], str] | None  # (queries, where they came from)


def prepare_folder(
    folder: Path,
    onnx_file: Path | None,
    seq_len: int | None,
    trust_model_code: bool,
    tokenizer_files: tuple[Path | None, Path | None],
    texts: ParityTexts,
    adapt: AdaptTexts | None = None,
) -> PreparedFolder | None:
    """What the module docstring says; None for a plain ONNX folder (the route as before)."""
    if onnx_file is None and (folder / PREFERRED_ONNX).is_file() and adapt is None:
        return None  # a model.onnx folder: the ONNX route exactly as before
    info = read_folder(folder, onnx_file, trust_model_code)
    if adapt is not None and (
        info.kind in (FolderKind.ONNX, FolderKind.HUB_ONNX) or info.head != "classifier"
    ):
        raise RecipeError(
            f"source.adapt_lowercase fine-tunes a classifier's weights; {folder.name}/ is a "
            f"{info.kind} folder" + (f" (head: {info.head})" if info.head else ""),
            hint="give a transformers folder of a *ForSequenceClassification model, or drop "
            "--adapt-lowercase",
        )
    if info.kind == FolderKind.ONNX:
        return None
    for note in info.notes:
        announce(note)
    if info.kind == FolderKind.HUB_ONNX:
        assert info.onnx_file is not None
        path = folder / info.onnx_file
        length = seq_len
        if length is None and _dynamic_length(path):
            length, where = folder_seq_len(folder)
            if length is not None:
                announce(
                    f"{info.onnx_file} takes any query length: using {length} tokens ({where}); set --seq-len"
                )
        section = HubExportSection(folder=info, exported=False, onnx_file=str(path), seq_len=length or 0)
        return PreparedFolder(path, length, section)
    length = query_length(None, seq_len or info.seq_len)  # no length at all: the "set --seq-len" error
    if seq_len is None:
        announce(f"exporting at {length} tokens per query ({info.seq_len_from}); set --seq-len for another")
    tokenizer = find_tokenizer(*tokenizer_files, folder, length)
    return _export(folder, info, length, tokenizer, texts, adapt)


def _dynamic_length(path: Path) -> bool:
    """The ONNX file's first input has no fixed sequence axis."""
    inputs = ox.inspect_onnx(path).inputs
    return bool(inputs) and len(inputs[0].dims) > 1 and not isinstance(inputs[0].dims[-1], int)


def _folder_hash(folder: Path, info: HubFolderInfo) -> str:
    """sha256 over the files the export reads: config, weights, modules.json and the modules' configs."""
    h = hashlib.sha256()
    names = ["config.json", "modules.json", *info.weights]
    names += [p.relative_to(folder).as_posix() for p in sorted(folder.glob("*_*/config.json"))]
    for name in names:
        p = folder / name
        if p.is_file():
            h.update(name.encode() + b"\0")
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def _request(folder: Path, info: HubFolderInfo, seq_len: int) -> hf.ExportRequest:
    assert info.head is not None and info.output is not None and info.weights_format is not None
    return hf.ExportRequest(
        folder=folder,
        head=info.head,
        pooling=info.pooling,
        normalize=info.normalize,
        inputs=tuple(info.inputs),
        output=info.output,
        seq_len=seq_len,
        weights=info.weights_format,
    )


def _key(
    folder: Path, info: HubFolderInfo, req: hf.ExportRequest, adapt: dict[str, np.ndarray] | None = None
) -> str:
    h = hashlib.sha256(_folder_hash(folder, info).encode())
    fields = {k: v for k, v in req.__dict__.items() if k != "folder"}
    h.update(json.dumps(fields, sort_keys=True, default=str).encode())
    h.update(hf.hf_export_spec().key.encode())
    h.update(hf.CHILD_SCRIPT.read_bytes())
    if adapt is not None:  # the fine-tune's queries and settings: another model, another entry
        h.update(b"adapt" + _ids_key(adapt).encode() + repr(hf.LowercaseAdapt(Path(), Path())).encode())
    return h.hexdigest()[:16]


def _export(
    folder: Path,
    info: HubFolderInfo,
    seq_len: int,
    tokenizer: TextTokenizer | None,
    texts: ParityTexts,
    adapt: AdaptTexts | None = None,
) -> PreparedFolder:
    req = _request(folder, info, seq_len)
    adapt_feeds = adapt_inputs(info, tokenizer, adapt) if adapt is not None else None
    entry = cache_dir() / CACHE_FOLDER / _key(folder, info, req, adapt_feeds)
    onnx_path, facts_path = entry / EXPORTED, entry / "export.json"
    feeds, split = _parity_inputs(info, tokenizer, texts, seq_len, folder)
    ids_key = _ids_key(feeds)
    torch_path = entry / f"torch-{ids_key}.npy"
    with locked(entry.parent / f".{entry.name}.lock"):  # one exporter per entry (test workers, builds)
        cached_export = facts_path.is_file() and onnx_path.is_file()
        cached_torch = cached_export and torch_path.is_file()
        if not cached_torch:
            _run_torch(folder, info, req, entry, feeds, cached_export, torch_path, adapt_feeds)
    want = np.load(torch_path, allow_pickle=False)
    facts = json.loads(facts_path.read_text())
    parity = _parity(info, onnx_path, feeds, want, split, cached_torch)
    section = HubExportSection(
        folder=info,
        exported=True,
        onnx_file=str(onnx_path),
        seq_len=seq_len,
        environment=hf.hf_export_spec().name,
        versions=facts.get("versions"),
        export_from_cache=cached_export,
        parity=parity,
        adaptation=adaptation(info, adapt, entry, facts) if adapt is not None else None,
    )
    if section.adaptation is not None:
        announce(adapt_notice(section.adaptation))
    if not parity.passed:
        raise ConversionError(
            f"the exported ONNX differs from PyTorch: {parity.metric} {parity.value:.3g} "
            f"(limit {parity.limit:g}) on {parity.queries} queries",
            hint="report the model's architecture to edgecomp's developers; meanwhile export it yourself",
        )
    return PreparedFolder(onnx_path, seq_len, section)


def _run_torch(
    folder: Path,
    info: HubFolderInfo,
    req: hf.ExportRequest,
    entry: Path,
    feeds: dict[str, np.ndarray],
    cached_export: bool,
    torch_path: Path,
    adapt_feeds: dict[str, np.ndarray] | None = None,
) -> None:
    """Export into `entry` (unless cached) and save PyTorch's outputs on `feeds`, in one child (after the
    lower-case fine-tune when `adapt_feeds` are given: the parity is the adapted model's)."""
    env = hf.ensure_hf_env()
    announce(f"exporting {folder.name}/ ({info.architecture}) to ONNX with PyTorch in {env.path.name}")
    if adapt_feeds is not None:
        announce(f"fine-tuning {folder.name}/ for lower-cased queries first (source.adapt_lowercase)")
    with tempfile.TemporaryDirectory(prefix="edgecomp-adapt-") as tmp, hf.TorchExporter(env) as exporter:
        if adapt_feeds is not None:
            np.savez(Path(tmp) / "in.npz", **adapt_feeds)

        def spec(out: Path) -> hf.LowercaseAdapt | None:
            return None if adapt_feeds is None else hf.LowercaseAdapt(Path(tmp) / "in.npz", out)

        if not cached_export:
            started = time.perf_counter()
            with staged_dir(entry, guard=False) as stage:
                facts = exporter.export(req, stage / EXPORTED, spec(stage / ADAPT_EVAL))
                facts.update(versions=exporter.versions, seconds=round(time.perf_counter() - started, 2))
                (stage / "export.json").write_text(json.dumps(facts, indent=2))
        else:
            exporter.export(req, None, spec(Path(tmp) / ADAPT_EVAL))  # the module only: the .onnx is cached
        want = exporter.run(feeds)
    buf = io.BytesIO()
    np.save(buf, want, allow_pickle=False)
    write_bytes(torch_path, buf.getvalue())


def _parity_inputs(
    info: HubFolderInfo, tokenizer: TextTokenizer | None, texts: ParityTexts, seq_len: int, folder: Path
) -> tuple[dict[str, np.ndarray], str]:
    """The model's inputs (by name, int64) for the check: the queries tokenized, else random ids."""
    inputs = tuple(ModelInput(n, "int64") for n in info.inputs)
    if tokenizer is not None and texts is not None and texts[0]:
        queries = texts[0][:PARITY_QUERIES]
        return bind_inputs(tokenizer.encode_batch(queries), inputs), f"{texts[1]} ({len(queries)} queries)"
    rows = tokenizer.vocab_size if tokenizer is not None else _vocab_size(folder)
    rng = np.random.default_rng(0)
    ids = rng.integers(1, max(2, rows), (RANDOM_ROWS, seq_len))
    lengths = rng.integers(2, seq_len + 1, RANDOM_ROWS)
    mask = (np.arange(seq_len)[None, :] < lengths[:, None]).astype(np.int64)
    encoded = {INPUT_IDS: ids * mask, ATTENTION_MASK: mask, TOKEN_TYPE_IDS: np.zeros_like(ids)}
    return bind_inputs(encoded, inputs), f"random token ids (seed 0, {RANDOM_ROWS} rows, ids < {rows})"


def _vocab_size(folder: Path) -> int:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return int(config.get("vocab_size") or 2)


def _ids_key(feeds: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name, arr in sorted(feeds.items()):
        h.update(name.encode() + np.ascontiguousarray(arr, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def _parity(
    info: HubFolderInfo,
    onnx_path: Path,
    feeds: dict[str, np.ndarray],
    want: np.ndarray,
    split: str,
    cached: bool,
) -> TorchParity:
    onnx_info = ox.inspect_onnx(onnx_path)
    got = ox.OnnxReference(onnx_path, onnx_info.inputs).run_batched(feeds, 256)
    err = float(np.abs(got - want).max()) if want.size else 0.0
    norms = np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1)
    cos = (got * want).sum(1) / np.maximum(norms, 1e-12)
    classifier = info.head == "classifier"
    metric, value = ("max_abs_error", err) if classifier else ("min_cosine", float(cos.min()))
    limit = MAX_ABS_LIMIT if classifier else MIN_COSINE_LIMIT
    passed = value < limit if classifier else value >= limit
    return TorchParity(
        queries=int(want.shape[0]),
        split=split,
        metric=metric,
        value=round(value, 8),
        limit=limit,
        max_abs_error=round(err, 8),
        mean_cosine=round(float(cos.mean()), 8),
        min_cosine=round(float(cos.min()), 8),
        passed=bool(passed),
        torch_from_cache=cached,
    )
