"""`edgecomp inspect`: what is inside a received .tflite, and whether it matches its manifest."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from converters.metadata_reader import EmbeddedMetadata, read_metadata
from converters.tflite_model import parse_tflite
from toolchain.base.errors import InputFileError
from toolchain.package.manifest import MANIFEST_FILE, sha256, verify
from toolchain.package.manifest_model import Manifest, ModelSummary, read_manifest


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Inspection:
    path: Path
    sha256: str
    summary: ModelSummary  # with its custom_ops
    metadata: EmbeddedMetadata | None
    manifest_path: Path | None
    manifest: Manifest | None
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            **self.summary.to_json(),
            "metadata": None if self.metadata is None else self.metadata.as_dict(),
            "manifest": None if self.manifest_path is None else str(self.manifest_path),
            "checks": [c.__dict__ for c in self.checks],
            "ok": self.ok,
        }


def find_manifest(model_path: Path, levels: int = 6) -> Path | None:
    """manifest.json beside the model or in a parent (android/app/src/main/assets/ is 5 levels down)."""
    for parent in [model_path.parent, *model_path.parent.parents][:levels]:
        candidate = parent / MANIFEST_FILE
        if candidate.is_file():
            return candidate
    return None


def _manifest_checks(
    manifest: Manifest, path: Path, data: bytes, meta: EmbeddedMetadata | None, n_out: int
) -> list[Check]:
    problems = verify(manifest, path, data)
    checks = [Check("sha256", not problems, "; ".join(problems) or "matches the manifest")]
    want_labels = manifest.labels.count if manifest.labels is not None else None
    if want_labels is not None:
        checks.append(
            Check("output size", n_out == want_labels, f"{n_out} scores, manifest {want_labels} labels")
        )
    if manifest.model.has_tasks_metadata:
        if meta is None:
            return [*checks, Check("metadata", False, "manifest says MediaPipe metadata, the model has none")]
        got = (meta.name, meta.version)
        want = (manifest.metadata.name, manifest.metadata.version)
        checks.append(Check("name/version", got == want, f"model {got}, manifest {want}"))
        if want_labels is not None:
            n = len(meta.labels or [])
            checks.append(Check("labels", n == want_labels, f"{n} packed labels, manifest {want_labels}"))
        tok = manifest.tokenizer
        delim = meta.tokenizer.delim_regex if meta.tokenizer else None
        checks.append(Check("tokenizer", delim == tok.delimiter, f"delimiter {delim!r}"))
        # case variants add lines to a regex vocab
        want_vocab = tok.packed_vocab_lines if tok.packed_vocab_lines is not None else tok.vocab_size
        packed = meta.tokenizer.vocab_file if meta.tokenizer else None
        if tok.kind == "sentencepiece":  # the packed .model must be the bundle's sentencepiece.model
            entry = (manifest.files or {}).get("sentencepiece.model")
            got = sha256(meta.files[packed]) if packed in meta.files else None
            same = entry is not None and got == entry.sha256
            checks.append(
                Check(
                    "vocab",
                    same,
                    f"packed {packed} {'matches' if same else 'differs from'} "
                    "the bundle's sentencepiece.model",
                )
            )
        elif want_vocab is not None:
            checks.append(Check("vocab", meta.vocab_size == want_vocab, f"{meta.vocab_size} packed tokens"))
    return checks


def inspect_model(path: Path, manifest_path: Path | None = None) -> Inspection:
    """Read a model (and its manifest, found beside it unless given) and check one against the other."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"model not found: {path}", hint="pass the .tflite you received")
    data = path.read_bytes()
    model = parse_tflite(data, origin=str(path))
    meta = read_metadata(data, origin=str(path))
    summary = ModelSummary.model_validate({**model.summary(), "custom_ops": model.custom_ops()})
    if manifest_path is not None and not Path(manifest_path).is_file():
        raise InputFileError(f"manifest not found: {manifest_path}", hint="pass the bundle's manifest.json")
    manifest_path = Path(manifest_path) if manifest_path else find_manifest(path)
    result = Inspection(path, sha256(data), summary, meta, manifest_path, None)
    if manifest_path is not None:
        result.manifest = read_manifest(manifest_path)
        n_out = int(model.tensors[model.outputs[0]].shape[-1])
        result.checks = _manifest_checks(result.manifest, path, data, meta, n_out)
    return result
