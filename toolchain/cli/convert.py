"""`edgecomp convert`: source model + recipe/flags -> build/<name>/ with model.tflite and report.json."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from toolchain.base.errors import BuildRejected, RecipeError
from toolchain.base.types import PruneSchedule, QuantMode, StrEnum, Task
from toolchain.recipe.presets import PRESETS

Preset = StrEnum("Preset", [(name, name) for name in PRESETS])  # type: ignore[misc]  # --preset's choices
StudentTokenizer = StrEnum("StudentTokenizer", [("word", "word"), ("teacher", "teacher")])  # type: ignore[misc]
StudentWords = StrEnum("StudentWords", [("ascii", "ascii"), ("unicode", "unicode")])  # type: ignore[misc]

if TYPE_CHECKING:  # the report model costs ~0.25 s to import: `edgecomp --help` stays instant
    from toolchain.report.model import Report


def convert(
    source: Path | None = typer.Argument(
        None,
        help="Keras .keras/.h5, SavedModel dir, .onnx, or a Hugging Face folder: model.onnx inside, "
        "transformers or sentence-transformers weights (exported to ONNX in an isolated PyTorch env), or "
        "the Hub's onnx/ layout (overrides the recipe's); with a first distill step also a .tflite or a "
        "teacher scores .jsonl",
    ),
    recipe: Path | None = typer.Option(None, "--recipe", "-r", help="Recipe YAML; flags below override it."),
    preset: Preset | None = typer.Option(
        None,
        "--preset",
        help="Named compression plan: replaces the recipe's steps and quantization mode; other flags still "
        "override it.",
    ),
    quantize: QuantMode | None = typer.Option(
        None, "--quantize", "-Q", help="Quantization mode (-q is --quiet)."
    ),
    prune: PruneSchedule | None = typer.Option(
        None, "--prune", help="Add/modify a prune step: its schedule."
    ),
    target_sparsity: float | None = typer.Option(
        None, "--target-sparsity", min=0.0, max=0.99, help="Pruning target, e.g. 0.8."
    ),
    prune_epochs: int | None = typer.Option(
        None, "--prune-epochs", min=1, help="Fine-tuning epochs while pruning."
    ),
    prune_exclude: list[str] | None = typer.Option(None, "--prune-exclude", help="Layer name to keep dense."),
    calibration: Path | None = typer.Option(
        None, "--calibration", help="Queries (jsonl/csv) for int8 calibration."
    ),
    calibration_samples: int | None = typer.Option(
        None, "--calibration-samples", min=1, help="Queries to calibrate on."
    ),
    train: Path | None = typer.Option(None, "--train", help="Labelled training split (fine-tuning steps)."),
    val: Path | None = typer.Option(None, "--val", help="Labelled validation split."),
    test: Path | None = typer.Option(None, "--test", help="Labelled test split for the report."),
    unlabelled: Path | None = typer.Option(
        None,
        "--unlabelled",
        help="Unlabelled queries (jsonl, e.g. a query log): the distill step's teacher scores them too, and "
        "a vocab_trim step keeps their pieces.",
    ),
    student_tokenizer: StudentTokenizer | None = typer.Option(
        None,
        "--student-tokenizer",
        help="Distill from a foreign teacher: word (a regex vocab of the student's own; default) or teacher "
        "(the teacher's WordPiece/SentencePiece: packaged with MediaPipe's BERT path; for multilingual "
        "teachers, where the regex tokenizer's ASCII \\w splits non-English words).",
    ),
    student_words: StudentWords | None = typer.Option(
        None,
        "--student-words",
        help="A word-level student's words: ascii (MediaPipe's default delimiter) or unicode (letters, "
        "digits and marks of any script: for multilingual queries; still MediaPipe's regex tokenizer).",
    ),
    no_augment: bool = typer.Option(
        False,
        "--no-augment",
        help="Distill from a foreign teacher without augmentation (on by default: 4 teacher-scored perturbed "
        "copies of each training query; about 2x the training time, better rare intents).",
    ),
    vocab: Path | None = typer.Option(
        None,
        "--vocab",
        help="Vocab: 'token id' lines (regex) or a BERT vocab.txt (WordPiece); default: by the model.",
    ),
    tokenizer: Path | None = typer.Option(
        None,
        "--tokenizer",
        help="Hugging Face tokenizer.json (WordPiece); default: tokenizer.json by the model.",
    ),
    labels: Path | None = typer.Option(
        None, "--labels", help="Labels file (default: labels.txt by the model)."
    ),
    task: Task | None = typer.Option(
        None,
        "--task",
        help="classification or embedding (ONNX; default: from the labels found), or retrieval "
        "(Keras: one score per catalog item).",
    ),
    input_shape: list[str] | None = typer.Option(
        None, "--input-shape", help="Fix a dynamic ONNX input, e.g. input_ids=1x32 (repeatable)."
    ),
    onnx_file: Path | None = typer.Option(
        None,
        "--onnx-file",
        help="A Hugging Face folder: convert this ONNX file in it as it is, e.g. onnx/model_O1.onnx "
        "(default: export the weights, else onnx/model.onnx).",
    ),
    adapt_lowercase: bool = typer.Option(
        False,
        "--adapt-lowercase",
        help="A Hugging Face folder classifier: before export, fine-tune it briefly so that lower-cased "
        "queries get its predictions on the queries as they are (MediaPipe's SentencePiece path lower-cases "
        "all text). Changes the model; report hub.adaptation says by how much. Needs --train (or "
        "--calibration) queries.",
    ),
    smooth: float | None = typer.Option(
        None,
        "--smooth",
        min=0.0,
        max=1.0,
        help="ONNX, modes dynamic/int8/mixed/int4: move outlier activation channels into the weights "
        "before quantization (SmoothQuant, exact in float) with this strength, e.g. 0.3 (recipe: "
        "quantization.smooth).",
    ),
    per_tensor: bool = typer.Option(
        False,
        "--per-tensor",
        help="int8: one weight scale per tensor instead of per output channel, 12 bytes fewer per channel "
        "(worth it for tiny students; recipe: quantization.per_channel: false).",
    ),
    no_fuse_gelu: bool = typer.Option(
        False,
        "--no-fuse-gelu",
        help="ONNX: keep each exported Erf-GELU as the converter wrote it (about 24 elementwise ops per "
        "layer) instead of one GELU op (recipe: conversion.fuse_gelu: false).",
    ),
    seq_len: int | None = typer.Option(
        None, "--seq-len", min=2, max=1 << 16, help="Tokens per query (default: the model's)."
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Build directory (default: build/<name>)."),
    seed: int | None = typer.Option(
        None, "--seed", min=0, max=2**32 - 1, help="Random seed (same seed, same bytes)."
    ),
    max_accuracy_drop: float | None = typer.Option(
        None, "--max-accuracy-drop", min=0.0, help="Gate: accuracy drop (points) vs source, at most."
    ),
    min_agreement: float | None = typer.Option(
        None, "--min-agreement", min=0.0, max=1.0, help="Gate: agreement vs source (0-1), at least."
    ),
    min_cosine: float | None = typer.Option(
        None, "--min-cosine", min=-1.0, max=1.0, help="Gate (ONNX): mean cosine vs onnxruntime, at least."
    ),
    max_abs_error: float | None = typer.Option(
        None, "--max-abs-error", min=0.0, help="Gate (ONNX): max abs output error vs onnxruntime, at most."
    ),
    min_recall_at_10: float | None = typer.Option(
        None, "--min-recall-at-10", min=0.0, max=1.0, help="Gate (retrieval): test recall@10, at least."
    ),
    max_recall_drop: float | None = typer.Option(
        None, "--max-recall-drop", min=0.0, help="Gate (retrieval): recall@10 drop (points) vs source."
    ),
    min_top10_overlap: float | None = typer.Option(
        None, "--min-top10-overlap", min=0.0, max=1.0, help="Gate (retrieval): top-10 overlap vs source."
    ),
    workers: int = typer.Option(
        1, "--workers", "-w", min=1, max=64, help="distill-auto: candidate students built at once."
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        help="distill-auto: build the candidate students as Ray tasks on this cluster (auto, host:port).",
    ),
    min_agreement_where_sure: float | None = typer.Option(
        None,
        "--min-agreement-where-sure",
        min=0.0,
        max=1.0,
        help="Gate: agreement vs source (a foreign teacher's student: the teacher) on the test queries it is "
        "sure of (top-1 probability >= 0.95), 0-1, at least.",
    ),
    max_macro_f1_drop: float | None = typer.Option(
        None, "--max-macro-f1-drop", min=0.0, help="Gate: macro-F1 drop (points) vs source, at most."
    ),
    min_recall_ratio: float | None = typer.Option(
        None,
        "--min-recall-ratio",
        min=0.0,
        max=1.0,
        help="Gate: every intent's recall at least this share of the source's (teacher's) recall for it.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print report.json to stdout instead of a table."),
    trust_model_code: bool = typer.Option(
        False,
        "--trust-model-code",
        help="Load .h5/SavedModel sources and students although a Lambda layer in them would run its "
        "Python code, and a Hugging Face folder's pickled pytorch_model.bin; only for models from authors "
        "you trust (.keras and safetensors load safely without it; custom model code is never run).",
    ),
) -> None:
    """Compress and convert a model to TFLite, evaluate it, and write build/<name>/."""
    # loaded when the command runs, so `edgecomp --help` stays instant
    from toolchain.cli import render
    from toolchain.recipe.compose import compose_recipe
    from toolchain.search.auto import build_auto

    overrides = {
        "quantization.mode": _v(quantize),
        "quantization.calibration_samples": calibration_samples,
        "data.calibration": _s(calibration),
        "data.train": _s(train),
        "data.val": _s(val),
        "data.test": _s(test),
        "data.vocab": _s(vocab),
        "data.tokenizer": _s(tokenizer),
        "data.labels": _s(labels),
        "data.seq_len": seq_len,
        "source.input_shapes": parse_input_shapes(input_shape),
        "source.task": _v(task),
        "source.onnx_file": _s(onnx_file),
        "source.adapt_lowercase": True if adapt_lowercase else None,
        "conversion.fuse_gelu": False if no_fuse_gelu else None,
        "quantization.smooth": smooth,
        "quantization.per_channel": False if per_tensor else None,
        "seed": seed,
        "evaluation.max_accuracy_drop": max_accuracy_drop,
        "evaluation.min_agreement": min_agreement,
        "evaluation.min_cosine": min_cosine,
        "evaluation.max_abs_error": max_abs_error,
        "evaluation.min_recall_at_10": min_recall_at_10,
        "evaluation.max_recall_drop": max_recall_drop,
        "evaluation.min_top10_overlap": min_top10_overlap,
        "evaluation.min_agreement_where_sure": min_agreement_where_sure,
        "evaluation.max_macro_f1_drop": max_macro_f1_drop,
        "evaluation.min_recall_ratio": min_recall_ratio,
        "output.dir": _s(out.parent) if out else None,
        "name": out.name if out else None,
        "source.trust_model_code": True if trust_model_code else None,
    }
    prune_flags = None
    if any(v is not None for v in (prune, target_sparsity, prune_epochs)) or prune_exclude:
        prune_flags = {
            "schedule": _v(prune),
            "target_sparsity": target_sparsity,
            "epochs": prune_epochs,
            "exclude": prune_exclude or None,
        }
    distill_flags: dict = {"unlabelled": _s(unlabelled), "student_tokenizer": _v(student_tokenizer)}
    distill_flags["augment"] = "off" if no_augment else None
    if student_words is not None:
        distill_flags["student_vocab"] = {"words": _v(student_words)}
    distill_flags = {k: v for k, v in distill_flags.items() if v is not None} or None
    spec = compose_recipe(recipe, source, overrides, prune_flags, preset=_v(preset), distill=distill_flags)
    try:
        built = build_auto(spec, render.RichProgress(), workers, ray_address)  # `build` unless student auto
    except BuildRejected as rejected:  # the candidate's report is printed, then the one error line, exit 1
        _show(rejected.report, as_json, f"wrote the rejected candidate to {rejected.rejected_dir}/")
        raise
    _show(built.report, as_json, f"wrote {built.dir}/ (model.tflite, recipe.yaml, report.json, report.html)")


def _show(report: Report, as_json: bool, wrote: str) -> None:
    """A build's (or a rejected candidate's) report: --json, else the tables; warnings on stderr."""
    # loaded when the command runs, so `edgecomp --help` stays instant
    from toolchain.cli import render
    from toolchain.cli.convert_table import auto_table, build_table, stage_table

    render.warn(report.warnings)
    if as_json:
        render.print_json(report.to_json())
        return
    render.stdout.print(build_table(report))
    for extra in (stage_table(report), auto_table(report)):
        if extra is not None:
            render.stdout.print(extra)
    render.stdout.print(wrote)


def parse_input_shapes(specs: list[str] | None) -> dict[str, list[int]] | None:
    """`name=1x32` flags -> {"name": [1, 32]}."""

    if not specs:
        return None
    shapes = {}
    for spec in specs:
        name, _, dims = spec.partition("=")
        try:
            shapes[name.strip()] = [int(x) for x in dims.lower().split("x")]
        except ValueError:
            raise RecipeError(
                f"--input-shape {spec!r}: expected NAME=DIMxDIM", hint="e.g. input_ids=1x32"
            ) from None
        if not name.strip() or any(x <= 0 for x in shapes[name.strip()]):
            raise RecipeError(f"--input-shape {spec!r}: expected NAME=DIMxDIM", hint="e.g. input_ids=1x32")
    return shapes


def _s(p: Path | None) -> str | None:
    return str(p) if p is not None else None


def _v(choice: StrEnum | None) -> str | None:
    """A choice as the plain string the recipe layer takes (a recipe file spells it the same)."""
    return None if choice is None else str(choice.value)
