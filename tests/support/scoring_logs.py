"""Query logs for the teacher-scoring tests (toolchain/steps/log_scoring.py), and its Ray check."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from toolchain.base.progress import SilentProgress
from toolchain.steps.log_scoring import score_log
from toolchain.steps.teachers import load_teacher

SHARD = 64
WORDS = ["red", "blue", "running", "shoes", "jacket", "where", "is", "my", "order", "cancel", "return"]
WORDS += ["size", "cheap", "wool", "socks", "kids"]


def write_log(path: Path, n: int) -> Path:
    """n queries, one per line (.txt) or as JSONL objects (.jsonl), a blank line among them."""
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 7)))) for _ in range(n)]
    if path.suffix == ".jsonl":
        lines = [json.dumps({"text": t}) for t in lines]
    lines.insert(n // 2, "")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def ray_scores_match_local(teacher_folder: Path, where: Path, address: str) -> None:
    """Run inside a Ray head's context (tests/e2e/test_search.py calls it there: one head for both, the
    head's start being most of the cost): 2 Ray tasks write the same shard bytes as 2 local workers."""
    n = len((teacher_folder / "labels.txt").read_text().split())
    teacher = load_teacher(teacher_folder, n, seq_len=32)
    where.mkdir(parents=True, exist_ok=True)
    log = write_log(where / "queries.jsonl", 600)
    before = os.environ.get("EDGECOMP_CACHE")
    try:
        os.environ["EDGECOMP_CACHE"] = str(where / "local")
        local, _ = score_log(teacher, log, SilentProgress(), workers=2, shard_rows=SHARD)
        os.environ["EDGECOMP_CACHE"] = str(where / "ray")
        on_ray, rec = score_log(teacher, log, SilentProgress(), 2, address, SHARD)
    finally:
        os.environ.pop("EDGECOMP_CACHE") if before is None else os.environ.update(EDGECOMP_CACHE=before)
    assert rec.where == "ray" and rec.workers == 2 and rec.shards_from_cache == 0 and rec.queries == 600
    np.testing.assert_array_equal(on_ray.to_array(), local.to_array())


def finished_tasks_are_never_cancelled(address: str, rounds: int = 300) -> None:
    """Cancelling finished tasks aborts Ray's driver in 50-160 rounds of this loop (ray-project/ray#54846);
    `cancel_unfinished`, which every edgecomp caller uses on its way out, must survive all of them."""
    from toolchain.base import ray_cluster

    ray = ray_cluster.connect(address, "the cancel check")
    try:
        echo = ray.remote(num_cpus=1, max_retries=0)(lambda i: i)
        for _ in range(rounds):
            refs = [echo.remote(i) for i in range(4)]
            ray_cluster.wait_all(ray, refs)
            assert ray.get(refs) == [0, 1, 2, 3]
            ray_cluster.cancel_unfinished(ray, refs)
    finally:
        ray.shutdown()
