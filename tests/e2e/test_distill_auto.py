"""`student: auto` (`--preset distill-auto`) end to end: real trial processes, real Optuna journal, real
Ray, on the two-input DistilBERT ONNX fixture (tests/fixtures/make_two_input_models.py) and the shopping
example's splits.

To stay small: half of the example's val and test queries (374 each: the files are shuffled), all of
train (a third of it at 8 epochs left the 16/64 student at 57% agreement), 4 epochs (the 8/32 student
reaches 50.5% agreement) and an agreement gate of 40%.
The ladder is given out of order and small: a hopeless 2-wide CNN, the 8/32 word CNN (with one int8 weight
scale per tensor: `per_channel: false`) and a 16/64 one.
Ordered by parameters, the first batch (two workers) holds the two smallest: the 2-wide one is stopped
after its second epoch (val agreement far below the gate), the 8/32 meets the gate, and the largest is never
built. On a local Ray head, the kept student alone (a one-rung ladder: the Ray check costs one trial, not
the whole ladder again) has the same row and the same model bytes (the candidates only: no final build).
The trials run with the recipe's gate and the final build is judged by it; the foreign-teacher defaults
(which this small a student misses) are the gates of tests/unit/test_distill_auto_units.py and the
acceptance bench (benchmarks/acceptance_distill_auto.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.support.builds import example_splits
from tests.support.ray_head import ray_head
from toolchain.cli.main import app

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
RAY_CLIENT = """
import json, sys
from pathlib import Path
from toolchain.base.progress import SilentProgress
from toolchain.recipe.compose import load_recipe
from toolchain.search.auto import run_candidates
_, section = run_candidates(load_recipe(Path(sys.argv[1])), SilentProgress(), 1, sys.argv[2])
print(json.dumps(section.to_json()))
"""
LADDER = [
    {"family": "word-cnn", "width": 16, "hidden": 64},
    {"family": "word-cnn", "width": 2, "hidden": 2},
    {"family": "word-cnn", "width": 8, "hidden": 32, "per_channel": False},  # one int8 scale per tensor
]
SIZES = {"train": 5984, "val": 374, "test": 374}


def _recipe(teacher: Path, out: Path, ladder: list[dict] = LADDER) -> Path:
    splits = example_splits(out, SIZES)
    data = {
        "name": "auto",
        "source": {"path": str(teacher)},
        "data": {**{k: str(v) for k, v in splits.items()}, "seq_len": 32},
        "steps": [
            {
                "kind": "distill",
                "student": "auto",
                "epochs": 4,
                "alpha": 0.9,
                "auto": {"candidates": ladder, "hopeless_after_epochs": 2, "hopeless_margin": 0.25},
                "augment": "off",  # on by default (~2x the rows): tests/e2e/test_distill_tiny_bert.py
            }
        ],  # fmt: skip
        "evaluation": {"min_agreement": 0.4},
        "output": {"dir": str(out)},
    }
    path = out / "recipe.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def _convert(recipe: Path, *extra: str) -> dict:
    result = CliRunner().invoke(app, ["convert", "--recipe", str(recipe), "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def local(two_input_models, tmp_path_factory) -> tuple[Path, dict]:
    recipe = _recipe(two_input_models.classifier, tmp_path_factory.mktemp("auto-local"))
    return recipe, _convert(recipe, "--workers", "2")


def test_tries_small_to_large_and_keeps_the_first_that_meets_the_gates(local):
    recipe, report = local
    auto = report["distill_auto"]
    cands = auto["candidates"]
    assert [c["parameters"] for c in cands] == sorted(c["parameters"] for c in cands)
    assert [(c["width"], c["hidden"]) for c in cands] == [(2, 2), (8, 32), (16, 64)]
    table = (recipe.parent / "auto.distill-auto" / "candidates.md").read_text()
    assert [c["verdict"] for c in cands] == ["stopped", "passed", "not tried"], table
    assert cands[0]["reasons"][0].startswith("stopped after epoch 2: val agreement with the teacher ")
    assert cands[2]["trial"] is None and cands[2]["int8_bytes"] is None
    kept = cands[1]
    assert auto["chosen"] == 1 and auto["split"] == "val" and auto["runner"] == "local workers 2"
    q = kept["quality"]
    assert q["agreement"] >= 0.4 and q["queries"] == SIZES["val"] and 0 < q["macro_f1"] <= 1
    assert q["worst_intent"] in report["labels"] and q["worst_intent_recall"] <= q["accuracy"]
    trials = recipe.parent / "auto.distill-auto" / "trials"
    trial_model = trials / f"trial-{kept['trial']:03d}" / "model.tflite"
    # a trial build carries the real gates (judged on val), not one that cannot fail
    trial_recipe = yaml.safe_load((trial_model.parent / "recipe.yaml").read_text())
    assert trial_recipe["evaluation"] == {"min_agreement": 0.4}, trial_recipe["evaluation"]
    assert hashlib.sha256(trial_model.read_bytes()).hexdigest() == report["model_sha256"]  # the same bytes
    # the build is the kept student's, evaluated on test; its recipe names it (replays without a search)
    assert report["steps"][0]["student"] == {"embed_dim": 8, "layers": ["conv1d:32:3", "max_pool"]}
    assert report["steps"][0]["student_parameters"] == kept["parameters"]  # the ladder's arithmetic count
    assert kept["per_channel"] is False and report["quantization"]["per_channel"] is False
    assert "| word-cnn | 8/32, per-tensor |" in table
    build = recipe.parent / "auto"
    saved = yaml.safe_load((build / "recipe.yaml").read_text())
    assert saved["steps"][0]["student"] == report["steps"][0]["student"] and "auto" not in saved["steps"][0]
    assert "## Students tried (distill-auto)" in (build / "report.md").read_text()
    assert "Students tried" in (build / "report.html").read_text()
    assert (recipe.parent / "auto.distill-auto" / "candidates.md").is_file()


def test_rerun_resumes_without_building_a_candidate_again(local):
    """The journal holds both trials: the ladder is read back, nothing is run (no trial folder added)."""
    from toolchain.base.progress import SilentProgress
    from toolchain.recipe.compose import load_recipe
    from toolchain.search.auto import run_candidates

    recipe, report = local
    trials = recipe.parent / "auto.distill-auto" / "trials"
    before = sorted(p.name for p in trials.iterdir())
    _, again = run_candidates(load_recipe(recipe), SilentProgress())
    assert sorted(p.name for p in trials.iterdir()) == before == ["run-000", "run-001", "trial-001"]
    assert [c.to_json() for c in again.candidates] == report["distill_auto"]["candidates"]


def test_ray_head_builds_and_judges_the_kept_student_as_local_workers(local, two_input_models, tmp_path):
    """The kept student alone on a local Ray head (a one-rung ladder, to stay cheap): the same row of the
    table (size, every gate's number and verdict) and the same model bytes as the local run's. The Ray
    client is a process of its own, as a user's `edgecomp convert --ray-address` is: Ray keeps its first
    cluster's auth token for the life of a process, so a pytest worker that already met another test's
    head could not join this one."""
    recipe, report = local
    kept = report["distill_auto"]["candidates"][report["distill_auto"]["chosen"]]
    rung = [c for c in LADDER if (c["width"], c["hidden"]) == (kept["width"], kept["hidden"])]
    ray_recipe = _recipe(two_input_models.classifier, tmp_path, rung)
    with ray_head() as (address, auth):
        env = {
            **os.environ,
            **auth,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        done = subprocess.run(
            [sys.executable, "-c", RAY_CLIENT, str(ray_recipe), address],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    on_ray = json.loads(done.stdout.strip().splitlines()[-1])
    assert on_ray["runner"] == f"ray {address}" and on_ray["chosen"] == 0
    row = on_ray["candidates"][0]
    assert {**row, "trial": kept["trial"]} == kept
    local_model = recipe.parent / "auto.distill-auto" / f"trials/trial-{kept['trial']:03d}/model.tflite"
    assert (
        tmp_path / "auto.distill-auto" / "trials/trial-000/model.tflite"
    ).read_bytes() == local_model.read_bytes()
