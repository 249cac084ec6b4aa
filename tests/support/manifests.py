"""manifest.json as edgecomp writes it (the shape of the shopping-intent example's, trimmed), for the readers'
tests: a received manifest is untrusted input, so they feed this one, older ones and broken ones."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

_FEED = {
    "feed": "lowercased",
    "queries": 748,
    "agree": 748,
    "agreement": 1.0,
    "agreement_up_to_ties": 1.0,
    "disagreements_count": 0,
    "tie_disagreements": 0,
    "one_step_flips": 0,
    "top1_ties": 7,
    "max_abs_score_diff": 0.000932,
    "disagreements": [],
}
_DISAGREEMENT = {
    "query": "START A RETURN FOR NO. 18570",
    "toolchain": "returns_refunds",
    "mediapipe": "product_search_attribute",
    "toolchain_score": 0.996094,
    "mediapipe_score": 0.176625,
    "tie": False,
    "toolchain_gap": 0.996094,
}


def written_manifest(model: bytes, n_labels: int = 22) -> dict[str, Any]:
    """The manifest of a MediaPipe classifier bundle of `model`, as the current main writes it."""
    digest = hashlib.sha256(model).hexdigest()
    return {
        "manifest_version": 1,
        "name": "tiny-app",
        "version": "1.0.0",
        "format": "mediapipe",
        "created_by": "edgecomp 0.9.0",
        "metadata": {
            "name": "tiny-app",
            "version": "1.0.0",
            "description": "tiny-app: classifies a search query into one of 22 intents.",
            "author": None,
            "license": None,
        },
        "model": {
            "file": "tiny-app.tflite",
            "asset": "android/app/src/main/assets/tiny-app.tflite",
            "sha256": digest,
            "size_bytes": len(model),
            "gzip_bytes": len(model) // 2,
            "inputs": [{"name": "serving_default_input_ids:0", "dtype": "INT32", "shape": [-1, 32]}],
            "outputs": [{"name": "StatefulPartitionedCall:0", "dtype": "FLOAT32", "shape": [-1, n_labels]}],
            "validated_model_sha256": "789a814281ba05fc4df07c21921bc7ee081b2beeaa22dd6a173522446e6978db",
            "has_tasks_metadata": False,
        },
        "quantization": "int8",
        "tokenizer": {
            "kind": "regex",
            "seq_len": 32,
            "delimiter": "[^\\w']+",
            "lowercase": True,
            "vocab_size": 1374,
            "special_tokens": {"<PAD>": 0, "<START>": 1, "<UNKNOWN>": 2},
            "files": ["vocab.txt"],
            "vocab_file": "vocab.txt",
            "app_must_lowercase": False,
            "packed_vocab_lines": 4013,
        },
        "tokenizer_parity": None,
        "task": "classifier",
        "labels": {"file": "labels.txt", "count": n_labels},
        "runtime": {
            "required": "MediaPipe Tasks TextClassifier: com.google.mediapipe:tasks-text:0.10.21 (Android) / "
            "mediapipe==0.10.21 (Python)",
            "min_runtime_version": "1.14.0",
            "op_versions": {"ADD": 1, "DEQUANTIZE": 2, "FULLY_CONNECTED": 4},
            "ops": {"ADD": 1, "DEQUANTIZE": 1, "FULLY_CONNECTED": 2},
        },
        "recipe_sha256": "1a09482927ef0be5d2e3e160187999881a16b0106d242a308ec380540b425de5",
        "report_sha256": "0629ccb7ac8aa99b9e6e07b7343b7df1dfdaa7d0678bb699d633f85c9d1c5159",
        "validation": {
            "status": "passed",
            "devices": {
                "x86-host": {"passed": True, "runtime": "litert 2.3.0", "arch": "x86_64", "failures": []}
            },
        },
        "allow_failed_validation": False,
        "parity": {
            "runtime": "MediaPipe 0.10.21",
            "dequantized_outputs": ["StatefulPartitionedCall:0"],
            "lowercased": copy.deepcopy(_FEED),
            "raw": {**copy.deepcopy(_FEED), "feed": "raw"},
            "raw_without_case_variants": {
                **copy.deepcopy(_FEED),
                "feed": "raw_without_case_variants",
                "agree": 700,
                "agreement": 0.935829,
                "agreement_up_to_ties": 0.935829,
                "disagreements_count": 48,
                "max_abs_score_diff": 0.992099,
                "disagreements": [dict(_DISAGREEMENT)],
            },
            "case_variants": {
                "packed": 2639,
                "vocab_lines": 4013,
                "forms": "Capitalized and UPPER of every word, cased forms seen in the train/val splits",
            },
            "tie_break": {
                "eps": 4.438920454545455e-05,
                "max_score_change": 0.0009321732954545455,
                "int8_step": 0.00390625,
                "rule": "among equal int8 scores the lower label index ranks first",
            },
            "task": "TextClassifier (same C++ task as Android tasks-text)",
            "split": "data/test.jsonl",
        },
        "server_fallback": {
            "threshold": 0.421875,
            "coverage": 0.9826,
            "accuracy_above": 0.981,
            "target_accuracy": 0.98,
            "split": "data/val.jsonl",
            "queries": 748,
            "overall_accuracy": 0.9679,
            "tied_to_server": 4,
            "best_threshold": None,
            "best_coverage": None,
            "best_accuracy": None,
            "note": "",
        },
        "files": {
            "README.md": {
                "sha256": "4bf4714e3e040e93bb544acff503e5ce98f18d842acc28846d4bfc56533ecfb7",
                "size_bytes": 2409,
            },
            "tiny-app.tflite": {"sha256": digest, "size_bytes": len(model)},
        },
    }


def older_manifest(model: bytes, n_labels: int = 22) -> dict[str, Any]:
    """The same bundle as the first manifest edgecomp wrote (issue 7): no `task`, `tokenizer_parity`,
    `packed_vocab_lines`, `one_step_flips`, case variants or tie-break yet; `validation` "not run"."""
    m = written_manifest(model, n_labels)
    for key in ("task", "tokenizer_parity"):
        del m[key]
    del m["tokenizer"]["packed_vocab_lines"]
    m["validation"] = "not run"
    parity = m["parity"]
    for key in ("raw_without_case_variants", "case_variants", "tie_break"):
        del parity[key]
    for feed in (parity["lowercased"], parity["raw"]):
        del feed["one_step_flips"]
    return m
