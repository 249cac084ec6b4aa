"""The shipped example: its data is what the committed generator makes, and the example runs end to end."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "shopping_intent"


def _generator():
    spec = importlib.util.spec_from_file_location("generate_data", EXAMPLE / "generate_data.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(EXAMPLE))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLE))
    return module


def _rows(split):
    return [json.loads(line) for line in (EXAMPLE / "data" / f"{split}.jsonl").read_text().splitlines()]


def test_committed_data_is_what_the_generator_makes(tmp_path):
    splits = _generator().generate()
    for split in ("train", "val", "test"):
        assert [(r["text"], r["intent"]) for r in splits[split]] == [
            (r["text"], r["intent"]) for r in _rows(split)
        ]


def test_generator_is_byte_identical_across_processes(tmp_path):
    """A fresh process with another hash seed, run from a copy, writes exactly the committed files."""
    import os
    import shutil

    for name in ("generate_data.py", "catalog.py"):
        if (EXAMPLE / name).is_file():
            shutil.copy(EXAMPLE / name, tmp_path / name)
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    subprocess.run(
        [sys.executable, str(tmp_path / "generate_data.py")], check=True, capture_output=True, env=env
    )
    for name in ("train.jsonl", "val.jsonl", "test.jsonl"):
        assert (tmp_path / "data" / name).read_bytes() == (EXAMPLE / "data" / name).read_bytes(), name
    assert (tmp_path / "labels.txt").read_bytes() == (EXAMPLE / "labels.txt").read_bytes()


def test_dataset_shape_matches_the_issue():
    labels = (EXAMPLE / "labels.txt").read_text().split()
    rows = {s: _rows(s) for s in ("train", "val", "test")}
    assert len(labels) >= 20 and "out_of_scope" in labels
    assert sum(len(r) for r in rows.values()) >= 6000
    texts = [r["text"].lower() for split in rows.values() for r in split]
    assert len(texts) == len(set(texts)), "a query appears in two places"
    for split, split_rows in rows.items():
        assert {r["intent"] for r in split_rows} == set(labels), split
    assert sum(p.stat().st_size for p in (EXAMPLE / "data").glob("*.jsonl")) < 1_000_000


def test_vocab_follows_the_mediapipe_convention():
    lines = (EXAMPLE / "vocab.txt").read_text().splitlines()
    assert lines[:3] == ["<PAD> 0", "<START> 1", "<UNKNOWN> 2"]


@pytest.mark.slow
def test_example_recipe_runs_end_to_end(example_build):
    """The demo's own command, on the real example (trains the teacher first when it is missing); the
    session's shared build of it (conftest)."""
    report = example_build.report.to_json()
    ev = report["evaluation"]
    assert ev["vs_source_float"]["reference"]["accuracy"] >= 0.9
    assert ev["vs_source_float"]["accuracy_drop_points"] <= 1.5
    assert ev["vs_final_float"]["top1_agreement"] >= 0.97
    assert abs(report["steps"][0]["achieved_sparsity"] - 0.8) <= 0.02
