"""Named compression plans (`edgecomp convert --preset NAME`): functions returning a recipe's steps + mode.

A preset replaces the steps and the quantization mode of the recipe it is applied to; source, data,
calibration settings, evaluation gates and output are kept. Flags given with it still win. Presets are plain
data: toolchain.recipe.compose.apply_preset validates a plan into a recipe, so the import points recipe ->
presets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from toolchain.base.errors import RecipeError

Plan = dict[str, Any]  # {"steps": [...], "quantization": {"mode": ...}}

# The default student for text intent models: >5x fewer parameters than the example teacher.
STUDENT = {"embed_dim": 16, "layers": ["conv1d:32:3", "max_pool", "dense:32"]}
# In the full chain pruning removes 80% of the weights anyway: a wider student keeps the accuracy and the
# pruned int8 download stays > 25x smaller than the fp32 teacher's.
CHAIN_STUDENT = {"embed_dim": 24, "layers": ["conv1d:64:3", "max_pool", "dense:64"]}
PRUNE80 = {"kind": "prune", "target_sparsity": 0.8, "epochs": 10, "learning_rate": 0.003}


def _plan(mode: str, *steps: dict[str, Any]) -> Plan:
    return {"steps": list(steps), "quantization": {"mode": mode}}


def float16() -> Plan:
    """Float16 weights, no training: half the size, near-lossless."""
    return _plan("float16")


def dynamic() -> Plan:
    """Int8 weights with float activations; no calibration data needed."""
    return _plan("dynamic")


def int8() -> Plan:
    """Post-training full-integer int8 (calibrated on real queries)."""
    return _plan("int8")


def qat_int8() -> Plan:
    """Quantization-aware fine-tuning, then full-integer int8."""
    return _plan("int8", {"kind": "qat", "epochs": 2})


def prune80_int8() -> Plan:
    """80% magnitude pruning (smaller gzipped download), then int8."""
    return _plan("int8", {"kind": "prune", "target_sparsity": 0.8, "epochs": 4})


def prune24_int8() -> Plan:
    """Structured 2:4 sparsity on rank-2 weights (Dense, Embedding), then int8."""
    return _plan("int8", {"kind": "prune", "m_by_n": "2:4", "schedule": "constant", "epochs": 3})


def lowrank_int8() -> Plan:
    """Halve the Dense and embedding parameters by SVD, fine-tune, then int8."""
    return _plan("int8", {"kind": "lowrank", "param_reduction": 0.5, "epochs": 2})


def distill_int8() -> Plan:
    """Distill into a small student, then int8."""
    return _plan("int8", {"kind": "distill", "student": STUDENT})


# A phone-sized student of any teacher (ONNX BERT, .tflite, scores file as the source): word-level, with a
# 1,000-word vocab, ~9.5k parameters, a 14 KB int8 .tflite (22x smaller than the BERT fixture's dynamic int8).
PHONE_STUDENT = {"embed_dim": 8, "layers": ["conv1d:32:3", "max_pool"]}


def distill_student_int8() -> Plan:
    """Distill any teacher into a ~14 KB word-level student, then int8."""
    return _plan("int8", {"kind": "distill", "student": PHONE_STUDENT, "epochs": 20, "alpha": 0.9})


def distill_prune_int8() -> Plan:
    """The full chain: distill -> prune 80% -> pruning-preserving QAT -> int8."""
    return _plan(
        "int8",
        {"kind": "distill", "student": CHAIN_STUDENT},
        dict(PRUNE80),
        {"kind": "qat", "epochs": 2},
    )


# `student: auto` tries these from small to large (ordered by parameters when it runs) and keeps the
# smallest int8 student that meets the gates: word-level CNNs (the students above), wider ones on a
# 4,000-word vocab, and a CNN on the teacher's own tokenizer whose embedding starts from the teacher's.
# Parameters with the shopping example's 1,000-word vocab and 22 intents, in order: 9.5k, 21k, 147k, 311k;
# the teacher-cnn's depends on the teacher's vocab (2,922 x 32 + 12k = 106k on the BERT fixture; 30,522 x
# 32 on a bert-base vocab). The `word-bigru` family is not in it: unrolled over the query, each step keeps
# its own copy of the weights in the .tflite (11,222 parameters -> a 433 KB int8 model, 97 s to convert,
# measured on the two-input fixture), so its int8 size does not follow its parameters; name it in
# `auto.candidates` to try it. tiny-bert: one BERT block on the teacher's tokenizer, 16 wide (its embeddings
# projected from the teacher's) or the teacher's own width, heads and FFN (embeddings, embedding LayerNorm
# and the first layer copied): 50k and 221k parameters on the long-tail teacher's 2,858 pieces (the 16/64
# met its default gates at 77.9 KB without augmentation, the 8/32 at 50.9 KB with it on by default:
# benchmarks/acceptance_distill_auto.py --ladder tiny-bert).
# The rungs on the words that make up 98-99% of the queries' words (issue 25): a student's vocab of 1,000
# words (the default) covers 95.5% of the long-tail teacher's training words, 1,423 cover 98%, 1,800 99%;
# with augmentation (on by default) narrow word CNNs on those vocabs meet the default gates there, where
# the 8/32 on 1,000 words (9,856) and narrower vocabs at more filters missed accuracy and macro-F1. The
# smallest rung, 6/48 on 98% with one int8 weight scale per tensor (`per_channel: false`: 1.9 KB less;
# 11,018 parameters, 14.3 KB), met every default gate on test for 10 of 10 seeds; the 4/48 on 99% that
# held this place (9,404 parameters, 13.1 KB per-tensor) met them for 7 of 10, and its val numbers did not
# tell which (docs/guides/distillation.md). The vocab follows the user's queries, not a count: a corpus
# with more distinct words gets a larger vocab and the rung sorts later by parameters. A rung that comes
# out as the same student as another is skipped (toolchain/search/auto.py `ladder`).
AUTO_LADDER: list[dict[str, Any]] = [
    {"family": "word-cnn", "width": 6, "hidden": 48, "vocab_coverage": 0.98, "per_channel": False},
    {"family": "word-cnn", "width": 8, "hidden": 32},
    {"family": "word-cnn", "width": 8, "hidden": 32, "vocab_coverage": 0.99},
    {"family": "word-cnn", "width": 16, "hidden": 64},
    {"family": "teacher-cnn", "width": 32, "hidden": 128},
    {"family": "word-cnn", "width": 32, "hidden": 128, "vocab": 4000},
    {"family": "word-cnn", "width": 64, "hidden": 256, "vocab": 4000},
    {"family": "tiny-bert", "width": 16, "hidden": 64, "heads": 2},
    {"family": "tiny-bert", "width": "teacher", "hidden": "teacher", "heads": "teacher"},
]


def distill_auto() -> Plan:
    """Try students from small to large; keep the smallest int8 one that meets the gates."""
    return _plan("int8", {"kind": "distill", "student": "auto", "epochs": 20, "alpha": 0.9})


TRIM = {"kind": "vocab_trim", "dropped": "auto"}  # rewrite or remap: the better on val


def trim_mixed() -> Plan:
    """WordPiece/SentencePiece models: trim the vocabulary to the queries' pieces, then mixed precision."""
    return _plan("mixed", dict(TRIM))


def trim_int4() -> Plan:
    """WordPiece/SentencePiece models: trim the vocabulary, then 4-bit weights where the gates hold, GPTQ
    rounding, no slower than dynamic int8 (max_kernel_cost 1.0: 8-bit dense weights in the hybrid kernel;
    without it, on all-MiniLM-L6-v2, they ran as float math at 2.09x dynamic's latency)."""
    plan = _plan("int4", dict(TRIM))
    plan["quantization"]["int4"] = {"rounding": "gptq", "max_kernel_cost": 1.0}
    return plan


PRESETS: dict[str, Callable[[], Plan]] = {
    "float16": float16,
    "dynamic": dynamic,
    "int8": int8,
    "qat-int8": qat_int8,
    "prune80-int8": prune80_int8,
    "prune24-int8": prune24_int8,
    "lowrank-int8": lowrank_int8,
    "distill-int8": distill_int8,
    "distill-prune-int8": distill_prune_int8,
    "distill-student-int8": distill_student_int8,
    "distill-auto": distill_auto,
    "trim-mixed": trim_mixed,
    "trim-int4": trim_int4,
}


def preset_plan(name: str) -> Plan:
    if name not in PRESETS:
        raise RecipeError(f"unknown preset {name!r}", hint=f"valid presets: {', '.join(PRESETS)}")
    return PRESETS[name]()
