"""`edgecomp train`: a project folder from `edgecomp data` -> model.keras and a recipe for convert.

The model is the example's family (toolchain/project/intent_model.py) named after the project, trained
with the
project's seed (same folder, same seed: same weights) and early stopping on the val loss (the best val
epoch's weights are kept). The recipe (PROJECT/recipe.yaml, paths relative to it) converts to full-integer
int8 calibrated on the train split; `--preset` on `edgecomp convert` swaps in other steps and keeps its data
and gates. The gates leave room for the test set's granularity: one test query is 100/n points, so
max_accuracy_drop is the larger of 2 points and two test queries. min_agreement (top-1 agreement with the
source model on the test split) allows what the baseline's own errors allow: a student as accurate as the
baseline but wrong on other queries disagrees on up to twice the error rate; so 1 - 2 x error - two
queries, between 0.5 and 0.98 (a 97.7% baseline on 748 queries: 0.95; 86% on 36 queries: 0.66). Measured
on the travel test project (tests/test_cli_init.py): an 86.1% baseline on 36 held-out-phrasing queries;
distill-prune-int8 agrees with it on 86.1% of them at -0.0 points (the gate written: 0.66).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from toolchain import data as d
from toolchain.base.atomic import write_bytes, write_text
from toolchain.base.progress import Progress
from toolchain.base.record import Record
from toolchain.base.tfenv import seed_everything
from toolchain.evaluation.metrics import classification_metrics
from toolchain.project.folder import load_project
from toolchain.project.intent_model import IntentModelSpec, build_intent_model, fit_intent_model
from toolchain.recipe.compose import load_recipe

RECIPE_FILE = "recipe.yaml"
TRAIN_FILE = "train.json"


@dataclass(frozen=True)
class TrainOptions:
    epochs: int = 30
    patience: int = 4
    batch_size: int = 32
    learning_rate: float = 2e-3
    seed: int | None = None  # default: the project's seed
    embed_dim: int = 64
    filters: int = 128
    hidden: int = 128
    build_dir: Path = field(default_factory=lambda: Path("build"))  # where `edgecomp convert` writes


class SplitScores(Record):
    """The trained model on one of the project's splits (train.json: the test split)."""

    queries: int
    accuracy: float
    macro_f1: float
    recall: dict[str, float]  # per label


class TrainSummary(Record):
    """train.json (and what `edgecomp train` prints)."""

    name: str
    model_name: str
    parameters: int
    seed: int
    epochs_run: int
    best_epoch: int  # 1-based: the epoch whose weights were kept
    val_accuracy: list[float]  # per epoch
    val_loss: list[float]
    test: SplitScores
    gates: dict[str, float]  # the recipe's evaluation gates (module docstring)
    model: str
    recipe: str
    build_dir: str


def default_gates(n_test: int, test_accuracy: float) -> dict[str, float]:
    """The recipe's gates for a baseline of `test_accuracy` on `n_test` queries (module docstring)."""
    n = max(n_test, 1)
    drop = max(2.0, math.ceil(200.0 / n * 10) / 10)
    agreement = 1.0 - 2.0 * (1.0 - test_accuracy) - 2.0 / n
    return {
        "max_accuracy_drop": round(drop, 1),
        "min_agreement": round(min(0.98, max(0.5, math.floor(agreement * 100) / 100)), 2),
    }


def recipe_text(
    name: str, seed: int, n_train: int, test: tuple[int, float], output_dir: str, project: str
) -> str:
    """The project's recipe.yaml: commented, with paths relative to the project folder."""
    recipe = {
        "version": 1,
        "name": name,
        "seed": seed,
        "source": {"path": "model.keras"},
        "data": {
            "train": "data/train.jsonl",
            "val": "data/val.jsonl",
            "test": "data/test.jsonl",
            "calibration": "data/train.jsonl",
            "vocab": "vocab.txt",
            "labels": "labels.txt",
        },
        "steps": [],
        "quantization": {
            "mode": "int8",
            "calibration_samples": min(500, n_train),
            "min_calibration_samples": min(100, n_train),
        },
        "evaluation": default_gates(*test),
        "output": {"dir": output_dir},
    }
    head = (
        f"# {name}: written by `edgecomp train` (paths are relative to this file).\n"
        f"#   edgecomp convert {project}/model.keras --recipe {project}/recipe.yaml"
        " [--preset distill-prune-int8]\n"
        "# --preset replaces `steps` and `quantization.mode` and keeps the data and the gates below.\n"
        f"# Gates: the test split has {test[0]} queries (one is {100 / max(test[0], 1):.2f} points); "
        f"the model scored {test[1]:.2%} on it.\n"
    )
    return head + yaml.safe_dump(recipe, sort_keys=False)


def train_project(
    project: Path, options: TrainOptions | None = None, progress: Progress | None = None
) -> TrainSummary:
    """Train, save PROJECT/model.keras, recipe.yaml and train.json; returns the summary (train.json)."""
    import json

    opts = options or TrainOptions()
    project = Path(project)
    info = load_project(project)
    seed = info.seed if opts.seed is None else opts.seed
    labels = d.load_labels(project / "labels.txt")
    tok = d.Tokenizer(d.load_vocab(project / "vocab.txt"), info.seq_len)
    splits = {s: d.load_queries(project / "data" / f"{s}.jsonl") for s in ("train", "val", "test")}
    arrays = {s: (tok.encode_batch(q.texts), q.label_ids(labels)) for s, q in splits.items()}

    seed_everything(seed)
    spec = IntentModelSpec(tok.seq_len, opts.embed_dim, opts.filters, hidden=opts.hidden)
    model = build_intent_model(tok.vocab_size, len(labels), info.name, spec)
    fit = fit_intent_model(
        model,
        arrays["train"],
        arrays["val"],
        epochs=opts.epochs,
        batch_size=opts.batch_size,
        learning_rate=opts.learning_rate,
        patience=opts.patience,
        progress=progress,
        description=f"train {info.name} (up to {opts.epochs} epochs, early stop on val)",
    )
    probs = model.predict(arrays["test"][0], batch_size=512, verbose=0)
    metrics = classification_metrics(arrays["test"][1], probs.argmax(1), labels)

    tmp = project / f".model.{os.getpid()}.tmp.keras"
    try:
        model.save(tmp)
        write_bytes(project / "model.keras", tmp.read_bytes())
    finally:
        tmp.unlink(missing_ok=True)
    out_dir = os.path.relpath(Path(opts.build_dir).resolve(), project.resolve())
    n_train, n_test = len(splits["train"]), len(splits["test"])
    text = recipe_text(info.name, seed, n_train, (n_test, metrics.accuracy), out_dir, str(project))
    write_text(project / RECIPE_FILE, text)
    recipe = load_recipe(project / RECIPE_FILE)  # the file must be one convert takes
    summary = TrainSummary(
        name=info.name,
        model_name=model.name,
        parameters=int(model.count_params()),
        seed=seed,
        epochs_run=fit.epochs_run,
        best_epoch=fit.best_epoch,
        val_accuracy=fit.val_accuracy,
        val_loss=fit.val_loss,
        test=SplitScores(
            queries=n_test, accuracy=metrics.accuracy, macro_f1=metrics.macro_f1, recall=metrics.recall
        ),
        gates=recipe.evaluation.model_dump(exclude_none=True),
        model=str((project / "model.keras").resolve()),
        recipe=str((project / RECIPE_FILE).resolve()),
        build_dir=str(recipe.build_dir),
    )
    write_text(project / TRAIN_FILE, json.dumps(summary.to_json(), indent=2) + "\n")
    return summary
