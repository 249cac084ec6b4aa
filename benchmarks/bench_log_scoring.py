"""A million unlabelled queries scored by a teacher: queries per second, peak memory, SIGKILL and resume.

The teacher is the ONNX BERT intent classifier fixture (tests/fixtures/make_bert_models.py) in onnxruntime.
The log is generated (seeded) from the shopping example's words, one query per line. Three runs of
toolchain/steps/log_scoring.py `score_log`, each into its own cache folder:
1. uninterrupted, `--workers` local worker processes: wall time, queries/s, peak RSS of a worker and of
   this (the parent) process;
2. the same, with worker 0 SIGKILLed once a quarter of the shards are on disk, then the same call again:
   the shards found, the resume's time, and the check that every shard equals run 1's, byte for byte.
Checks: resumed scores identical to the uninterrupted run (required); a worker held at most one shard of
rows (required). The speed and memory are reported; none of them decides (they move with load).
Writes benchmarks/results/log_scoring.{json,md}.

    python benchmarks/bench_log_scoring.py [--queries 1000000] [--workers 2] [--shard-rows 8192]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "examples" / "shopping_intent" / "data"
OUT = ROOT / "benchmarks" / "results"


def make_log(path: Path, n: int) -> Path:
    """n queries of 1-8 words drawn (seed 0) from the example's training queries, written streaming."""
    import numpy as np

    words = sorted({w for line in (DATA / "train.jsonl").read_text("utf-8").splitlines() if line
                    for w in json.loads(line)["text"].split()})  # fmt: skip
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, n, 50_000):
            rows = min(50_000, n - start)
            lengths = rng.integers(1, 9, size=rows)
            picks = rng.integers(0, len(words), size=int(lengths.sum()))
            at = 0
            for k in lengths:
                f.write(" ".join(words[j] for j in picks[at : at + k]) + "\n")
                at += k
    return path


def run(teacher, log: Path, cache: Path, workers: int, shard_rows: int, kill_at: float | None = None):
    from toolchain.base.errors import StepError
    from toolchain.cli.render import RichProgress
    from toolchain.steps.log_scoring import score_log

    os.environ["EDGECOMP_CACHE"] = str(cache)
    killed: dict = {}
    if kill_at is not None:
        folder = cache / "teacher-scores"

        def killer() -> None:
            while True:
                shards = list(folder.glob("log-*/shard-*.npy"))
                total = len(list(folder.glob("log-*/request-*.json")))
                pid_file = next(folder.glob("log-*/request-0.pid"), None)
                if total and pid_file is not None and len(shards) >= kill_at:
                    os.kill(int(pid_file.read_text()), signal.SIGKILL)
                    killed["shards_on_disk"] = len(shards)
                    return
                time.sleep(0.05)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        t0 = time.perf_counter()
        try:
            score_log(teacher, log, RichProgress(), workers, None, shard_rows)
        except StepError as err:
            killed["error"] = err.message
        killed["seconds_to_kill"] = round(time.perf_counter() - t0, 1)
    scores, record = score_log(teacher, log, RichProgress(), workers, None, shard_rows)
    return scores, record, killed


def same_shards(a, b) -> bool:
    return all(
        (a.folder / f"shard-{i:06d}.npy").read_bytes() == (b.folder / f"shard-{i:06d}.npy").read_bytes()
        for i in range(a.shards)
    )


def main() -> int:
    from tests.fixtures.make_bert_models import ensure_models
    from toolchain.steps.teachers import load_teacher

    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shard-rows", type=int, default=8192)
    ap.add_argument("--root", type=Path, default=ROOT / "build" / "bench-log-scoring")
    args = ap.parse_args()
    clf = ensure_models() / "classifier"
    n_labels = len((clf / "labels.txt").read_text("utf-8").split())
    teacher = load_teacher(clf / "model.onnx", n_labels, (clf / "tokenizer.json", None), seq_len=32)
    log = make_log(args.root / f"queries-{args.queries}.txt", args.queries)
    for sub in ("whole", "killed"):
        for old in (args.root / sub / "teacher-scores").glob("log-*/*"):
            old.unlink()
    whole, rec, _ = run(teacher, log, args.root / "whole", args.workers, args.shard_rows)
    quarter = max(1, rec.shards // 4)
    resumed, rec2, killed = run(teacher, log, args.root / "killed", args.workers, args.shard_rows, quarter)
    parent_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    identical = same_shards(whole, resumed)
    checks = [
        ("a SIGKILLed worker's run, resumed, gives every shard byte for byte as the uninterrupted run",
         identical and rec2.shards_from_cache > 0 and "SIGKILL" in killed.get("error", "")),
        (f"a worker held at most one shard ({args.shard_rows} rows)",
         max(rec.max_rows_held, rec2.max_rows_held) <= args.shard_rows),
    ]  # fmt: skip
    data = {"queries": args.queries, "workers": args.workers, "uninterrupted": rec.to_json(),
            "killed": killed, "resumed": rec2.to_json(), "parent_peak_rss_mb": round(parent_mb, 1),
            "checks": checks}  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "log_scoring.json").write_text(json.dumps(data, indent=1))
    text = markdown(args, rec, rec2, killed, parent_mb, checks)
    (OUT / "log_scoring.md").write_text(text)
    print(text)
    return 0 if all(ok for _, ok in checks) else 1


def markdown(args, rec, rec2, killed: dict, parent_mb: float, checks) -> str:
    lines = [
        f"{args.queries:,} generated queries (one per line), the BERT fixture teacher in onnxruntime, "
        f"{args.workers} local worker processes, shards of {args.shard_rows} queries stored as float16.",
        "",
        "| run | shards scored | from cache | seconds | queries/s | peak RSS per worker |",
        "|---|---:|---:|---:|---:|---:|",
        f"| uninterrupted | {rec.shards - rec.shards_from_cache} | {rec.shards_from_cache}"
        f" | {rec.seconds:.1f}"
        f" | {rec.queries_per_second or 0:,.0f} | {rec.peak_rss_mb} MB |",
        f"| resumed after SIGKILL of worker 0 at {killed.get('shards_on_disk')} shards on disk (the other"
        f" worker finished its own; that run ended after {killed.get('seconds_to_kill')} s)"
        f" | {rec2.shards - rec2.shards_from_cache}"
        f" | {rec2.shards_from_cache} | {rec2.seconds:.1f} | {rec2.queries_per_second or 0:,.0f}"
        f" | {rec2.peak_rss_mb} MB |",
        "",
        f"The calling process (it streams the log to index it, never holds the scores): peak RSS "
        f"{parent_mb:.0f} MB. Speeds and memory are measured on this machine as it was (not checks).",
        "",
        "| check | result |",
        "|---|---|",
    ]
    lines += [f"| {name} | {'PASS' if ok else 'FAIL'} |" for name, ok in checks]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
