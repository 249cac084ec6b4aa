"""`edgecomp search` end to end with real Optuna, real Ray and real trial processes on the tiny project.

The space is small on purpose (2 quantization modes, no training steps: a 1-epoch prune step alone costs
10-18 s per trial here): every trial is a real build in its own process, so this file stays near 90 s on
2 cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.support.processes import EXIT_GUARD_S, busy_loop, interrupt_when, processes_with_env, wait_for
from tests.support.ray_head import ray_head
from toolchain.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
SCORES_ON_RAY = """
import sys
from pathlib import Path
from tests.support.scoring_logs import finished_tasks_are_never_cancelled, ray_scores_match_local
ray_scores_match_local(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
finished_tasks_are_never_cancelled(sys.argv[3])
"""

pytestmark = pytest.mark.slow
SPACE = {
    "quant_modes": ["int8", "dynamic"],
    "prune_sparsity": None,
    "prune_2_4": False,
    "lowrank_reduction": None,
    "students": None,
    "qat": False,
    "vocab_min_counts": [1, 2],
    "startup_trials": 2,  # after the 2 seeded presets, TPE chooses trial 2 from the told objectives
}
DETERMINISTIC = (
    "number",
    "state",
    "params",
    "size_bytes",
    "gzip_bytes",
    "val_accuracy",
    "cost_us",
    "model_sha256",
)


def _recipe(tiny_project, out: Path, **extra) -> Path:
    data = tiny_project.recipe_dict(search=SPACE, output={"dir": str(out)}, **extra)
    path = out / "recipe.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


def _search(recipe: Path, *extra: str):
    args = ["search", "--recipe", str(recipe), "--device", "x86-host", "--json", *extra]
    return CliRunner().invoke(app, args)


def _trials(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["trials"]


def test_ray_equals_local_resume_and_best_recipe_rebuilds(tiny_project, bert_models, tmp_path, monkeypatch):
    """The same seeded search twice: locally, then on a Ray head beside a CPU-bound busy loop. Both choose
    the same trials (TPE's trial 2 included) and the same front: the sampler reads no wall-clock time.
    On the same head (its start is most of a Ray test's cost): teacher scores of a log on Ray equal local,
    and finished tasks are never cancelled (a cancel meeting a finished task's reply aborts Ray's driver)."""
    from toolchain.pipeline import build
    from toolchain.recipe.compose import load_recipe

    common = ("--trials", "3", "--workers", "2", "--seed", "7", "--max-accuracy-drop", "50")
    local_recipe = _recipe(tiny_project, tmp_path / "local")
    local = _search(local_recipe, *common)
    local_trials = _trials(local)
    with ray_head() as (address, auth), monkeypatch.context() as env:
        for key, value in auth.items():
            env.setenv(key, value)
        ray_recipe = _recipe(tiny_project, tmp_path / "ray")
        with busy_loop():  # the search only: a busy core slows everything else the suite runs
            busy = _search(ray_recipe, *common, "--ray-address", address, "--no-validate")
        on_ray = _trials(busy)
        _ctrl_c_mid_trial_leaves_no_trial_running(tiny_project, tmp_path / "sig", address)
        # a client process of its own: Ray's client state is per process, and this worker met the head above
        scored = subprocess.run(
            [sys.executable, "-c", SCORES_ON_RAY, str(bert_models.classifier), str(tmp_path / "sc"), address],
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])},
            cwd=ROOT, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert scored.returncode == 0, scored.stderr[-2000:]
    assert [t["state"] for t in local_trials] == ["complete"] * 3
    # the presets this space expresses run first, in PRESETS order; then TPE's trials
    assert [t["preset"] for t in local_trials] == ["dynamic", "int8", None]
    assert [t["vocab_min_count"] for t in local_trials[:2]] == [1, 1]
    front = [t for t in local_trials if t["number"] in json.loads(local.stdout)["pareto"]]
    assert front and all(t["validation"]["device"] == "x86-host" for t in front)
    assert all(t["device_validation"] == "passed" for t in front), [t["validation"] for t in front]
    assert "validate trial" in local.stderr
    assert all(t["validation"] is None for t in on_ray)
    assert [{k: t[k] for k in DETERMINISTIC} for t in on_ray] == [  # (validation aside)
        {k: t[k] for k in DETERMINISTIC} for t in local_trials
    ]
    assert json.loads(busy.stdout)["pareto"] == json.loads(local.stdout)["pareto"]
    assert all(t["latency_ms"] > 0 and t["cost_us"] > 0 for t in local_trials)

    again = _search(local_recipe, *common)  # same command: resumes, nothing new to run
    assert "resuming: 3 of 3" in again.stderr
    assert [t["model_sha256"] for t in _trials(again)] == [t["model_sha256"] for t in local_trials]
    out = tmp_path / "local" / "tiny.search"
    assert sorted(p.name for p in (out / "trials").iterdir() if p.name.startswith("trial-")) == [
        f"trial-{i:03d}" for i in range(3)
    ]
    for name in ("trials.csv", "trials.json", "pareto.md", "pareto.png", "best.recipe.yaml"):
        assert (out / name).is_file(), name

    best = json.loads(local.stdout)
    chosen = next(t for t in local_trials if t["number"] == best["best_trial"])
    rebuilt = build(load_recipe(out / "best.recipe.yaml"))  # what `edgecomp convert --recipe` runs
    assert rebuilt.dir == tmp_path / "local" / "tiny"
    assert hashlib.sha256(rebuilt.model_path.read_bytes()).hexdigest() == chosen["model_sha256"]


def _ctrl_c_mid_trial_leaves_no_trial_running(tiny_project, where: Path, address: str) -> None:
    """SIGINT to `edgecomp search --ray-address` while trials run on the cluster: exit 130 with one line,
    and the trial processes the Ray tasks started are gone (the tasks were cancelled, not left building).
    Every trial distills for 100,000 epochs, so a trial that was not killed cannot have finished."""
    tmp = where / "tmp"
    tmp.mkdir(parents=True)
    pid_file = where / "tiny.search" / "trials" / "run-000" / "worker.pid"
    endless = {"kind": "distill", "student": {"embed_dim": 8, "layers": ["max_pool"]}, "epochs": 100_000}
    recipe = _recipe(tiny_project, where, steps=[endless])
    args = ["search", "--recipe", str(recipe), "--device", "x86-host", "--trials", "2",
            "--workers", "2", "--ray-address", address, "--no-validate"]  # fmt: skip
    code, err = interrupt_when(
        args, tmp, lambda: pid_file.is_file() and bool(pid_file.read_text()), signal.SIGINT
    )
    assert code == 130, err[-2000:]
    assert [ln for ln in err.splitlines() if ln.startswith("error:")] == [
        "error: interrupted by SIGINT; nothing was written"
    ], err[-2000:]
    assert wait_for(lambda: not processes_with_env(str(tmp)), EXIT_GUARD_S), processes_with_env(str(tmp))
    assert not (pid_file.parent / "result.json").exists()  # killed mid-build, not left to finish


def test_killed_trial_fails_alone_and_unmeetable_limits_are_reported(tiny_project, tmp_path):
    recipe = _recipe(tiny_project, tmp_path / "kill")
    pid_file = tmp_path / "kill" / "tiny.search" / "trials" / "run-000" / "worker.pid"
    stop = threading.Event()

    def kill_first_trial() -> None:
        while not stop.is_set():
            if pid_file.is_file() and pid_file.read_text():
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
                return
            stop.wait(0.02)

    killer = threading.Thread(target=kill_first_trial)
    killer.start()
    try:
        result = _search(recipe, "--trials", "2", "--max-size-kb", "0.01")
    finally:
        stop.set()
        killer.join()
    assert result.exit_code == 1, result.output
    assert "no trial meets the constraints (size <= 0.01 KB" in result.stderr
    assert "closest: trial 1" in result.stderr
    rows = json.loads((tmp_path / "kill" / "tiny.search" / "trials.json").read_text())["trials"]
    assert [r["state"] for r in rows] == ["failed", "complete"]
    assert rows[0]["error"].startswith("killed by signal 9")


def test_bad_input_is_one_line_with_a_hint(tiny_project, tmp_path):
    empty = dict(SPACE, quant_modes=["int8"], vocab_min_counts=None)
    data = tiny_project.recipe_dict(search=empty, output={"dir": str(tmp_path)})
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(data))
    result = _search(tmp_path / "r.yaml", "--trials", "2")
    assert result.exit_code == 2
    assert "the search space is empty" in result.stderr
    result = _search(_recipe(tiny_project, tmp_path / "x"), "--trials", "2", "--ray-address", "127.0.0.1:1")
    assert result.exit_code == 2
    assert "cannot reach a Ray cluster at '127.0.0.1:1'" in result.stderr
    assert not (tmp_path / "x" / "tiny.search" / "trials").exists()


def test_every_sampled_point_is_a_valid_recipe(tiny_project):
    """Params -> recipe for each knob (distill width included): the steps keep their order, QAT only with
    int8, the `search:` section and a stale mixed plan are dropped."""
    from toolchain.recipe.compose import recipe_from_dict
    from toolchain.recipe.presets import preset_plan
    from toolchain.recipe.space import SearchSpec
    from toolchain.search.space import apply_params, search_choices

    base = recipe_from_dict(tiny_project.recipe_dict(search={}, **preset_plan("distill-student-int8")))
    spec = base.search or SearchSpec()
    space = search_choices(spec, has_distill=True)
    assert space["student_width"] == [8, 16, 24, 32] and space["prune"] == ["none", "magnitude", "2:4"]
    for mode in space["quant_mode"]:
        params = {"quant_mode": mode, "prune": "magnitude", "prune_sparsity": 0.7, "lowrank": True,
                  "lowrank_reduction": 0.4, "qat": True, "student_width": 24}  # fmt: skip
        recipe = recipe_from_dict(apply_params(base.model_dump(mode="json"), params, spec))
        kinds = [s.kind for s in recipe.steps]
        assert kinds == ["distill", "lowrank", "prune", *(["qat"] if mode == "int8" else [])]
        assert recipe.steps[0].student.embed_dim == 24 and recipe.search is None
        assert recipe.quantization.mode == mode and recipe.quantization.mixed is None


def test_a_hopeless_trial_stops_after_its_step_and_writes_nothing(tiny_project, tmp_path):
    """The worker's step hook: a post-step float val accuracy drop above the limit ends the build before
    quantization; the trial's result says why (Optuna records it as pruned: state `stopped`)."""
    from toolchain.recipe.compose import recipe_from_dict
    from toolchain.search.worker import measure

    steps = [{"kind": "vocab_prune", "min_count": 2}]
    data = tiny_project.recipe_dict(steps=steps, output={"dir": str(tmp_path)})
    recipe_yaml = recipe_from_dict(data).to_yaml()
    result = measure(recipe_yaml, "x86-host", stop_above_drop=-101.0)  # any drop is too much
    assert result.stopped is not None and result.metrics is None
    assert result.stopped.startswith("stopped after step 0 (vocab_prune): float val accuracy drop ")
    assert result.stopped.endswith("pt > -101 pt")
    assert not (tmp_path / "tiny").exists()


def test_the_default_space_holds_every_preset_and_seeds_them_with_their_exact_steps(tiny_project):
    """Each shipped preset is one point of the default space for a word-level Keras classifier: its params
    give the preset's steps and mode exactly (so the seeded trial builds the preset's bytes); a sampled
    student comes first after vocab pruning, and its prune step uses the chain's fine-tuning."""
    from toolchain.recipe.compose import recipe_from_dict
    from toolchain.recipe.presets import PRESETS, preset_plan
    from toolchain.recipe.space import SearchSpec
    from toolchain.search.space import apply_params, preset_params, search_choices

    spec = SearchSpec()
    space = search_choices(spec, has_distill=False, word_vocab=True)
    base = recipe_from_dict(tiny_project.recipe_dict()).model_dump(mode="json")
    seeded = preset_params(space, spec, base)
    # distill-auto is a search of its own; the trim presets are for subword (WordPiece/SentencePiece) sources
    assert list(seeded) == [p for p in PRESETS if p != "distill-auto" and not p.startswith("trim-")]
    for name, params in seeded.items():
        assert apply_params(base, params, spec)["steps"] == preset_plan(name)["steps"], name
    params = {"quant_mode": "int8", "vocab_min_count": 3, "student": "distill-int8", "prune": "magnitude",
              "prune_sparsity": 0.85, "lowrank": False, "qat": True}  # fmt: skip
    steps = recipe_from_dict(apply_params(base, params, spec)).steps
    assert [s.kind for s in steps] == ["vocab_prune", "distill", "prune", "qat"]
    assert (steps[2].epochs, steps[2].learning_rate) == (spec.student_prune_epochs, 0.003)
    # a recipe that distills already: its student's width is searched, no preset student is added
    assert "student" not in search_choices(spec, has_distill=True, word_vocab=True)
