"""Teacher scoring of an unlabelled log at scale (toolchain/steps/log_scoring.py), on a tiny log and the BERT
fixture teacher (real onnxruntime in real worker processes, a real Ray head): a SIGKILLed worker's run
resumes to the same shards as an uninterrupted one; a worker holds at most one shard of rows; Ray and local
workers write the same bytes (tests/support/scoring_logs.py `ray_scores_match_local`, run on the Ray head
of tests/e2e/test_search.py). The scale (1M queries, qps, peak RSS) is benchmarks/bench_log_scoring.py.
"""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest

from tests.support.processes import EXIT_GUARD_S, wait_for
from tests.support.scoring_logs import SHARD, write_log
from toolchain.base.errors import StepError
from toolchain.base.progress import SilentProgress
from toolchain.steps.log_scoring import index_log, read_shard, score_log
from toolchain.steps.teachers import load_teacher, teacher_logits

pytestmark = pytest.mark.slow


def _teacher(bert_models):
    folder = bert_models.classifier
    n = len((folder / "labels.txt").read_text().split())
    return load_teacher(folder, n, seq_len=32)


def test_sigkilled_worker_resumes_to_the_uninterrupted_scores(bert_models, tmp_path, monkeypatch):
    log = write_log(tmp_path / "queries.txt", 2000)
    teacher = _teacher(bert_models)
    monkeypatch.setenv("EDGECOMP_CACHE", str(tmp_path / "whole"))
    whole, rec = score_log(teacher, log, SilentProgress(), shard_rows=SHARD)
    assert rec.queries == 2000 and rec.shards == -(-2000 // SHARD) and rec.shards_from_cache == 0
    assert rec.max_rows_held <= SHARD and rec.peak_rss_mb and rec.queries_per_second
    assert all(isinstance(part, np.memmap) and len(part) <= SHARD for part in whole.iter_shards())
    # float16 soft targets against the teacher's float32 logits of the same queries
    ref = teacher_logits(teacher, read_shard(index_log(log, SHARD), 3), SilentProgress(), "ref")
    np.testing.assert_allclose(whole.shard(3), ref, atol=2e-2, rtol=2e-3)

    monkeypatch.setenv("EDGECOMP_CACHE", str(tmp_path / "killed"))
    folder = tmp_path / "killed" / "teacher-scores"
    seen: dict[str, int] = {}

    def kill_after_first_shard() -> None:  # SIGSTOP at once, count, then SIGKILL: nothing written between
        assert wait_for(lambda: any(folder.glob("log-*/shard-000000.npy")), 600)
        pid = int(next(folder.glob("log-*/request-0.pid")).read_text())
        os.kill(pid, signal.SIGSTOP)
        seen["done"] = len(list(folder.glob("log-*/shard-*.npy")))
        os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_after_first_shard)
    killer.start()
    with pytest.raises(StepError, match="killed by signal SIGKILL") as err:
        score_log(teacher, log, SilentProgress(), shard_rows=SHARD)
    killer.join(EXIT_GUARD_S)
    assert "rerun the same command" in err.value.hint
    assert 0 < seen["done"] < rec.shards
    again, resumed = score_log(teacher, log, SilentProgress(), shard_rows=SHARD)
    assert resumed.shards_from_cache == seen["done"]
    np.testing.assert_array_equal(again.to_array(), whole.to_array())
    for i in range(rec.shards):  # the same bytes, shard by shard
        assert (again.folder / f"shard-{i:06d}.npy").read_bytes() == (
            whole.folder / f"shard-{i:06d}.npy"
        ).read_bytes()
