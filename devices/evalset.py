"""What to validate: a build directory (model + recipe's eval split + vocab/labels) or a bare .tflite."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converters.tflite_model import TFLiteModel
from toolchain.base.errors import DataError, InputFileError

SYNTHETIC_ROWS = 256


@dataclass
class EvalSet:
    """Token ids fed one row at a time, with labels when the split has them."""

    ids: np.ndarray
    y: np.ndarray | None
    labels: list[str] | None
    source: str


@dataclass
class Target:
    model_path: Path
    build_dir: Path | None
    float_accuracy: float | None = None

    def eval_set(self, model: TFLiteModel, limit: int | None = None) -> EvalSet:
        ev = self._build_eval_set(model) if self.build_dir is not None else synthetic_eval_set(model)
        if limit is not None and limit < len(ev.ids):
            ev = EvalSet(ev.ids[:limit], None if ev.y is None else ev.y[:limit], ev.labels, ev.source)
        return ev

    def _build_eval_set(self, model: TFLiteModel) -> EvalSet:
        import yaml

        from toolchain import data as d

        assert self.build_dir is not None
        recipe_path = self.build_dir / "recipe.yaml"
        spec = (yaml.safe_load(recipe_path.read_text(encoding="utf-8")) or {}).get("data") or {}
        named = spec.get("test") or spec.get("val")
        if named is None:
            return synthetic_eval_set(model)
        split = _find(Path(named), self.build_dir)
        if split is None:
            raise DataError(
                f"eval split {named} (named in {recipe_path}) not found",
                hint="run from the directory you built in, or restore the data file",
            )
        labels = d.load_labels(self.build_dir / "labels.txt")
        seq_len = int(model.tensors[model.inputs[0]].shape[-1])
        tok = d.Tokenizer(d.load_vocab(self.build_dir / "vocab.txt"), seq_len)
        qs = d.load_queries(split, spec.get("text_field", "text"), spec.get("label_field", "intent"))
        y = qs.label_ids(labels) if qs.labels is not None else None
        return EvalSet(tok.encode_batch(qs.texts), y, labels, str(split))


def _find(path: Path, build_dir: Path) -> Path | None:
    """A recipe's data path: absolute, relative to the build dir, or relative to where the build ran."""
    candidates = [path] if path.is_absolute() else [build_dir / path, Path.cwd() / path]
    return next((c.resolve() for c in candidates if c.is_file()), None)


def synthetic_eval_set(model: TFLiteModel, rows: int = SYNTHETIC_ROWS) -> EvalSet:
    """Seeded random inputs (token ids within the embedding table, or floats): parity only, no accuracy."""
    t = model.tensors[model.inputs[0]]
    shape = (rows, *[max(1, s) for s in t.shape[1:]])
    rng = np.random.default_rng(0)
    if t.dtype.startswith("FLOAT"):
        return EvalSet(rng.standard_normal(shape).astype(np.float32), None, None, "synthetic (seed 0)")
    vocab = 100
    for op in model.ops:
        if op.op == "GATHER" and op.inputs and model.tensors[op.inputs[0]].is_constant:
            vocab = max(2, model.tensors[op.inputs[0]].shape[0])
            break
    return EvalSet(rng.integers(0, vocab, size=shape, dtype=np.int32), None, None, "synthetic ids (seed 0)")


def load_target(path: Path) -> Target:
    path = Path(path)
    if path.is_dir():
        model = path / "model.tflite"
        if not model.is_file():
            raise InputFileError(
                f"no model.tflite in {path}", hint="pass a build dir from `edgecomp convert`"
            )
        if not (path / "recipe.yaml").is_file():
            return Target(model.resolve(), None)
        float_acc = None
        try:
            from toolchain.report import load_report

            ev = load_report(path).get("evaluation", {})
            float_acc = ev.get("vs_source_float", {}).get("reference", {}).get("accuracy")
        except InputFileError:
            pass
        return Target(model.resolve(), path.resolve(), float_acc)
    if path.suffix == ".tflite" and path.is_file():
        return Target(path.resolve(), None)
    raise InputFileError(f"not a build dir or .tflite: {path}", hint="pass build/<name> or a model.tflite")
