"""One teacher-scoring worker: `python -m toolchain.steps.log_worker REQUEST.json` (see log_scoring.py).

It loads the teacher from the request's `load_teacher` arguments, then for each of its shards reads the
shard's queries from the log by byte offset, scores them in one call (the teacher batches inside: 256 rows
per ONNX run) and writes the logits as float16 `shard-NNNNNN.npy` atomically, so a kill at any moment
leaves only complete shards. It holds one shard at a time and reports the most rows it held and its peak
RSS (its own and its children's, e.g. a .tflite teacher's runtime child) in `request-K.result.json`.
"""

from __future__ import annotations

import io
import json
import os
import resource
import sys
from pathlib import Path

import numpy as np

from toolchain.base.atomic import write_bytes, write_text
from toolchain.base.errors import DataError
from toolchain.steps.log_scoring import LogIndex, read_shard, shard_name
from toolchain.steps.teachers import load_teacher


def main(argv: list[str]) -> int:
    request_path = Path(argv[0])
    req = json.loads(request_path.read_text())
    request_path.with_suffix(".pid").write_text(str(os.getpid()))
    t = req["teacher"]
    teacher = load_teacher(
        Path(t["path"]), t["n_labels"], (_path(t["tokenizer"]), _path(t["vocab"])), t["input_shapes"],
        t["seq_len"], t["trust_model_code"],
    )  # fmt: skip
    offsets = dict((i, off) for i, off in req["shards"])
    index = LogIndex(
        Path(req["log"]), "", req["rows"], req["shard_rows"], [0] * (max(offsets) + 1), req["jsonl"],
        req["text_field"],
    )  # fmt: skip
    for i, off in offsets.items():
        index.offsets[i] = off
    out, held = Path(req["out"]), 0
    for i in offsets:
        texts = read_shard(index, i)
        held = max(held, len(texts))
        logits = np.asarray(teacher.score(texts, lambda n: None), dtype=np.float32)
        if logits.shape != (len(texts), teacher.n_labels):
            raise DataError(
                f"the teacher {teacher.path.name} gives {logits.shape[1:]} scores per query, "
                f"the labels file has {teacher.n_labels} labels",
                hint="pass the labels.txt the teacher was trained with (data.labels)",
            )
        buf = io.BytesIO()
        np.save(buf, logits.astype(np.float16), allow_pickle=False)
        write_bytes(out / shard_name(i), buf.getvalue())
        del texts, logits
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    result = {"peak_rss_kb": int(peak), "max_rows_held": held, "shards": len(offsets)}
    write_text(request_path.with_suffix(".result.json"), json.dumps(result))
    return 0


def _path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


if __name__ == "__main__":
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main(sys.argv[1:]))
