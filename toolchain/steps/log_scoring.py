"""Teacher scores for a large unlabelled query log: streamed, in shards, resumable, on local workers or Ray.

A log (one query per line, or JSONL with the text field) is read once, streaming, to index it: its sha256
and the byte offset where each shard of `shard_rows` queries starts; nothing else of it is kept. Worker
processes (`python -m toolchain.steps.log_worker`, toolchain/steps/log_worker.py) load the teacher (the same
`load_teacher` arguments), read their shards by offset and write each shard's logits as float16
(`shard-NNNNNN.npy`, written atomically) into a cache folder keyed by the teacher's fingerprint, the log's
bytes and the shard size. So:
- memory is bounded: a worker holds one shard's texts and logits at a time (its report says the most rows
  it held); the caller gets `ShardedScores`, memory-mapped shards, not one array;
- a rerun resumes: a shard file that is there is complete (atomic rename), so after a SIGKILL of a worker
  (or of the whole command) the same call scores only the missing shards, and the shards are the same bytes
  as an uninterrupted run's (a shard is scored alone, in the same batches, whoever scores it);
- `ray_address`: the same worker processes run as Ray tasks (one CPU each), the shards dealt out as locally;
  the cache folder must be on a path the Ray workers share (any path on a one-machine cluster).
float16 keeps ~3 significant digits of a logit: soft targets at T >= 1 move by < 1e-3 (measured in the
tests against float32 scores of the same teacher).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolchain.base import ray_cluster
from toolchain.base.child import child_env
from toolchain.base.errors import DataError, StepError, pending_interrupt
from toolchain.base.progress import Progress
from toolchain.base.venvs import cache_dir
from toolchain.report.steps import LogScoring
from toolchain.steps.teachers import CACHE_FOLDER, Teacher

SHARD_ROWS = 8192
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
POLL_S = 0.2  # how often the progress bar looks for finished shards (no result depends on it)


@dataclass(frozen=True)
class LogIndex:
    path: Path
    sha256: str
    rows: int
    shard_rows: int
    offsets: list[int]  # byte offset of each shard's first line
    jsonl: bool
    text_field: str

    def shard_len(self, i: int) -> int:
        return min(self.shard_rows, self.rows - i * self.shard_rows)


def _is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in (".jsonl", ".json", ".ndjson")


def index_log(path: Path, shard_rows: int = SHARD_ROWS, text_field: str = "text") -> LogIndex:
    """One streaming pass: sha256, row count and shard offsets (non-blank lines are queries)."""
    if not path.is_file():
        raise DataError(f"unlabelled query log not found: {path}", hint="check distill.unlabelled")
    h, offsets, rows, pos = hashlib.sha256(), [], 0, 0
    with open(path, "rb") as f:
        for line in f:
            h.update(line)
            if line.strip():
                if rows % shard_rows == 0:
                    offsets.append(pos)
                rows += 1
            pos += len(line)
    return LogIndex(path, h.hexdigest(), rows, shard_rows, offsets, _is_jsonl(path), text_field)


def read_shard(index: LogIndex, i: int) -> list[str]:
    """The texts of shard `i` (at most `shard_rows`), read from its offset."""
    texts: list[str] = []
    want = index.shard_len(i)
    with open(index.path, "rb") as f:
        f.seek(index.offsets[i])
        for raw in f:
            if len(texts) == want:
                break
            if not raw.strip():
                continue
            texts.append(_text(raw, index, i * index.shard_rows + len(texts) + 1))
    return texts


def _text(raw: bytes, index: LogIndex, row: int) -> str:
    try:
        line = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise DataError(f"{index.path}: query {row} is not UTF-8", hint="save the log as UTF-8") from None
    if not index.jsonl:
        return line
    try:
        value = json.loads(line)
    except ValueError:
        raise DataError(
            f"{index.path}: query {row} is not valid JSON", hint="one JSON object per line"
        ) from None
    text = value.get(index.text_field) if isinstance(value, dict) else None
    if not isinstance(text, str):
        raise DataError(
            f"{index.path}: query {row} has no string field '{index.text_field}'", hint="set data.text_field"
        )
    return text


@dataclass(frozen=True)
class ShardedScores:
    """A scored log on disk: float16 logits in shards, read memory-mapped."""

    folder: Path
    rows: int
    shard_rows: int
    n_labels: int

    @property
    def shards(self) -> int:
        return -(-self.rows // self.shard_rows)

    def shard(self, i: int) -> np.ndarray:
        return np.load(self.folder / shard_name(i), mmap_mode="r", allow_pickle=False)

    def iter_shards(self) -> Iterator[np.ndarray]:
        for i in range(self.shards):
            yield self.shard(i)

    def to_array(self) -> np.ndarray:
        """All logits as one float32 array (for training on them; scoring itself never does this)."""
        out = np.empty((self.rows, self.n_labels), np.float32)
        for i, part in enumerate(self.iter_shards()):
            out[i * self.shard_rows : i * self.shard_rows + len(part)] = part
        return out


def shard_name(i: int) -> str:
    return f"shard-{i:06d}.npy"


def shard_done(folder: Path, i: int, rows: int, n_labels: int) -> bool:
    """A shard file of the right shape (atomic writes: present means complete; a damaged one is redone)."""
    try:
        return np.load(folder / shard_name(i), mmap_mode="r", allow_pickle=False).shape == (rows, n_labels)
    except (OSError, ValueError):
        return False


def cache_folder(teacher: Teacher, index: LogIndex) -> Path:
    key = json.dumps([teacher.fingerprint(), index.sha256, index.shard_rows, index.text_field, "float16"])
    return cache_dir() / CACHE_FOLDER / f"log-{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def score_log(
    teacher: Teacher,
    log: Path,
    progress: Progress,
    workers: int = 1,
    ray_address: str | None = None,
    shard_rows: int = SHARD_ROWS,
    text_field: str = "text",
) -> tuple[ShardedScores, LogScoring]:
    """Score every query of `log` with `teacher` (resuming from the shards already in the cache)."""
    if teacher.load_args is None:
        raise StepError(f"the teacher {teacher.path.name} cannot be reloaded by a scoring worker")
    index = index_log(log, shard_rows, text_field)
    folder = cache_folder(teacher, index)
    folder.mkdir(parents=True, exist_ok=True)
    todo = [
        i
        for i in range(len(index.offsets))
        if not shard_done(folder, i, index.shard_len(i), teacher.n_labels)
    ]
    resumed = len(index.offsets) - len(todo)
    groups = [todo[k::workers] for k in range(workers) if todo[k::workers]]
    t0 = time.perf_counter()
    what = f"teacher scores: {log.name} ({index.rows:,} queries, {len(index.offsets)} shards"
    what += f", {resumed} from the cache)" if resumed else ")"
    results: list[dict[str, Any]] = []
    with progress.task(what, index.rows) as advance:
        pending = set(todo)
        advance(sum(index.shard_len(i) for i in range(len(index.offsets)) if i not in pending))
        if groups:
            requests = [_request(teacher, index, folder, g, k) for k, g in enumerate(groups)]
            run = _run_ray if ray_address else _run_local
            results = run(requests, ray_address, _Watch(folder, index, teacher.n_labels, todo, advance))
    seconds = time.perf_counter() - t0
    scored = sum(index.shard_len(i) for i in todo)
    peak = max((r["peak_rss_kb"] for r in results), default=0)
    record = LogScoring(
        log=str(log),
        queries=index.rows,
        shards=len(index.offsets),
        shard_rows=shard_rows,
        shards_from_cache=resumed,
        workers=len(groups),
        where="ray" if ray_address else "local",
        seconds=round(seconds, 2),
        queries_per_second=round(scored / seconds, 1) if scored and seconds > 0 else None,
        peak_rss_mb=round(peak / 1024, 1) if results else None,
        max_rows_held=max((r["max_rows_held"] for r in results), default=0),
        cache=str(folder),
    )
    teacher.stats["scored"] += scored
    teacher.stats["cached"] += index.rows - scored
    return ShardedScores(folder, index.rows, shard_rows, teacher.n_labels), record


def _request(teacher: Teacher, index: LogIndex, folder: Path, shards: list[int], k: int) -> Path:
    request = {
        "teacher": teacher.load_args,
        "log": str(index.path),
        "jsonl": index.jsonl,
        "text_field": index.text_field,
        "shard_rows": index.shard_rows,
        "rows": index.rows,
        "shards": [[i, index.offsets[i]] for i in shards],
        "out": str(folder),
    }
    path = folder / f"request-{k}.json"
    for stale in (path.with_suffix(".pid"), path.with_suffix(".result.json")):  # an earlier run's
        stale.unlink(missing_ok=True)
    path.write_text(json.dumps(request))
    return path


class _Watch:
    """Advances the bar as shard files appear (polled; only the display depends on the poll)."""

    def __init__(self, folder: Path, index: LogIndex, n_labels: int, todo: list[int], advance) -> None:
        self.folder, self.index, self.n_labels, self.advance = folder, index, n_labels, advance
        self.pending = list(todo)

    def poll(self) -> None:
        for i in list(self.pending):
            if (self.folder / shard_name(i)).is_file():
                self.pending.remove(i)
                self.advance(self.index.shard_len(i))


def worker_command(request: Path) -> tuple[list[str], dict[str, str]]:
    env = child_env(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return [sys.executable, "-m", "toolchain.steps.log_worker", str(request)], env


def _result(request: Path, code: int) -> dict[str, Any]:
    out = request.with_suffix(".result.json")
    if code == 0 and out.is_file():
        return json.loads(out.read_text())
    log = request.with_suffix(".log")
    last = log.read_text(errors="replace").strip().splitlines()[-1:] if log.is_file() else []
    why = f"killed by signal {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
    raise StepError(
        f"a teacher scoring worker failed ({why}{': ' + last[0][:200] if last else ''})",
        hint="rerun the same command: it resumes from the shards already scored",
    )


def _run_local(requests: list[Path], _address: str | None, watch: _Watch) -> list[dict[str, Any]]:
    procs = []
    try:
        for req in requests:
            cmd, env = worker_command(req)
            with open(req.with_suffix(".log"), "wb") as err:
                procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                              start_new_session=True))  # fmt: skip
        while any(p.poll() is None for p in procs):
            watch.poll()
            time.sleep(POLL_S)
        watch.poll()
        return [_result(req, p.returncode) for req, p in zip(requests, procs, strict=True)]
    finally:  # Ctrl-C, SIGTERM or a failure: no worker keeps scoring
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def _run_ray(requests: list[Path], address: str | None, watch: _Watch) -> list[dict[str, Any]]:
    ray = ray_cluster.connect(address or "auto", "scoring on Ray")
    task = ray_cluster.command_task(ray)
    cwd = str(Path.cwd())
    refs = [task.remote(*worker_command(req), cwd, str(req.with_suffix(".log"))) for req in requests]
    running = refs
    try:
        ray_cluster.wait_all(ray, refs, on_slice=watch.poll)
        watch.poll()
        results = [_result(req, _ray_exit_code(ray, ref)) for req, ref in zip(requests, refs, strict=True)]
        running = []  # every task has ended: nothing to cancel (a cancel racing a reply aborts Ray's driver)
        return results
    finally:  # Ctrl-C, SIGTERM or a failure: each task still running kills its worker's group first
        ray_cluster.cancel_and_wait(ray, running)


def _ray_exit_code(ray: Any, ref: Any) -> int:
    """The scoring child's exit code; a Ray worker that died is a StepError (the rerun resumes)."""
    try:
        return ray.get(ref)[0]
    except Exception as err:  # RayTaskError, WorkerCrashedError, ...; or Ctrl-C wrapped by ray.get
        interrupted = pending_interrupt()
        if interrupted is not None:
            raise interrupted from None
        raise StepError(
            f"a teacher scoring task failed on the Ray cluster ({err.__class__.__name__})",
            hint="rerun the same command: it resumes from the shards already scored",
        ) from None
