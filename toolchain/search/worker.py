"""One trial in its own process: `python -m toolchain.search.worker REQUEST.json` builds and measures.

The request holds the trial's recipe (YAML text), the trial directory and the device's thread count; the
process writes `result.json` beside the request (atomically) and exits 0, or exits non-zero on any failure,
so a crash, an OOM kill or a SIGKILL marks that trial failed and nothing else. Its pid is written to
`worker.pid` first, so whoever runs it (a local thread or a Ray task) and the tests can see it.

A request with an `auto` block is a distill-auto candidate instead (toolchain/search/auto_trial.py): its
build, an early stop by val agreement after its first epochs, and its val predictions; no latency.

What is measured, never estimated:
- size: model.tflite raw and gzipped bytes (the report's numbers);
- accuracy and agreement on the **val** split: the trial recipe evaluates data.val in place of data.test
  (data.test is never read for choosing), against the source model on the same split; training does not
  read data.test, so the model bytes are those of the final recipe (the search test rebuilds and compares);
- a hopeless trial stops early: after each step the post-step float model's val accuracy is compared with
  the source's; a drop above `stop_above_drop` points (the accuracy limit plus a margin: quantization rarely
  wins points back) ends the trial there, with `{"stopped": why}` as its result and no quantization;
- cost: the op-cost table's estimate of one invoke from the model's op shapes (devices/opcost.py
  `estimated_us`): deterministic, the objective the sampler reads;
- latency: median of timed invokes (set inputs, invoke, read the output) of the .tflite on this host in the
  device profile's own runtime and version (its venv, devices.runtimes.host_timing_env), with its thread
  count and XNNPACK setting, batch 1, synthetic token ids, after untimed warm-up invokes (an emulated
  device's time is never used as latency).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from converters.tflite_model import parse_tflite
from devices.hostrun import synthetic_feeds
from devices.opcost import estimated_us, model_costs
from devices.profiles.schema import get_profile
from devices.runner import RuntimeWorker
from devices.runtimes import host_timing_env
from toolchain.base.atomic import write_text
from toolchain.pipeline import build
from toolchain.recipe.compose import recipe_from_dict
from toolchain.report.steps import StepReport
from toolchain.search.auto_trial import measure_student
from toolchain.search.trial import TrialMetrics, TrialResult

LATENCY_WARMUP = 8  # untimed invokes (one per synthetic query) before the timed ones
LATENCY_RUNS = 50


def device_latency(model: Path, device: str) -> tuple[float, str]:
    """Median ms per query in the device profile's runtime on this host, and what measured it."""

    profile = get_profile(device)
    feeds = synthetic_feeds(parse_tflite(model.read_bytes()), LATENCY_WARMUP)
    with RuntimeWorker(host_timing_env(profile)) as worker:
        run = worker.run(model, feeds, profile.threads, profile.xnnpack, latency_runs=LATENCY_RUNS)
    if run.error or run.latency_ms is None:
        raise RuntimeError(f"latency run failed in {profile.runtime_label}: {run.error}")
    xnn = "XNNPACK" if profile.xnnpack else "builtin kernels"
    return round(run.latency_ms, 4), f"{profile.runtime_label}, {profile.threads} thread(s), {xnn}, this host"


class Hopeless(Exception):
    """A step left the float model too far below the source on val: the trial stops before quantization."""


def stop_hopeless(limit: float | None) -> Any:
    """A pipeline.StepHook raising Hopeless once a step's float val accuracy drop exceeds `limit` points."""

    def hook(step: StepReport, source_accuracy: float | None) -> None:
        after = step.float_test_accuracy
        if limit is None or after is None or source_accuracy is None:
            return
        drop = (source_accuracy - after) * 100.0
        if drop > limit:
            raise Hopeless(
                f"stopped after step {step.index} ({step.kind}): float val accuracy drop "
                f"{drop:.2f} pt > {limit:g} pt"
            )

    return hook


def measure(recipe_yaml: str, device: str, stop_above_drop: float | None = None) -> TrialResult:
    """Build the trial recipe (val evaluated as the report's split) and return its measured objectives."""
    import yaml

    data = yaml.safe_load(recipe_yaml)
    data["data"]["test"] = data["data"]["val"]  # choose on val: the report's evaluation split is val here
    data["evaluation"] = {}  # the search applies the constraints itself; no candidate is rejected
    try:
        built = build(recipe_from_dict(data, origin="search trial"), on_step=stop_hopeless(stop_above_drop))
    except Hopeless as err:
        return TrialResult(stopped=str(err))
    report = built.report
    cmp = report.evaluation.vs_source_float
    assert cmp is not None and report.model_sha256 is not None  # a search builds word-level classifiers
    latency, runtime = device_latency(built.model_path, device)
    cost = estimated_us(model_costs(parse_tflite(built.model_path.read_bytes())))
    metrics = TrialMetrics(
        model_sha256=report.model_sha256,
        size_bytes=report.model.size_bytes,
        gzip_bytes=report.model.gzip_bytes,
        val_accuracy=cmp.converted.accuracy,
        source_val_accuracy=cmp.reference.accuracy,
        accuracy_drop_points=cmp.accuracy_drop_points,
        val_agreement=cmp.top1_agreement,
        cost_us=cost,
        latency_ms=latency,
        latency_runtime=runtime,
        build_dir=str(built.dir),
    )
    return TrialResult(metrics=metrics)


def main(argv: list[str]) -> int:
    request_path = Path(argv[0])
    request = json.loads(request_path.read_text())
    (request_path.parent / "worker.pid").write_text(str(os.getpid()))

    auto = request.get("auto")
    if auto is not None:  # a distill-auto candidate: predictions for the parent's gates, no latency
        result = measure_student(
            request["recipe_yaml"], request_path.parent, auto["after_epochs"], auto["min_agreement"]
        )
    else:
        result = measure(request["recipe_yaml"], request["device"], request.get("stop_above_drop"))
    write_text(request_path.parent / "result.json", json.dumps(result.to_json(), indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main(sys.argv[1:]))
