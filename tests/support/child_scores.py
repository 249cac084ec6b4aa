"""Run a .tflite in a child Python: some int8 models with masked attention abort the interpreter (SIGABRT),
which must fail a test or a bench row, not take the process down."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
_CHILD = """
import json, sys
import numpy as np
from devices.hostrun import HostRunner
feeds = dict(np.load(sys.argv[2]))
print(json.dumps(HostRunner(open(sys.argv[1], "rb").read()).scores(feeds).tolist()))
"""


def scores_in_child(model: bytes, feeds: dict[str, np.ndarray], work: Path) -> np.ndarray | int:
    """The model's scores from a child Python, or its exit code (negative: the signal) if it failed."""
    (work / "m.tflite").write_bytes(model)
    np.savez(work / "feeds.npz", **feeds)
    run = subprocess.run(
        [sys.executable, "-c", _CHILD, str(work / "m.tflite"), str(work / "feeds.npz")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return np.array(json.loads(run.stdout.splitlines()[-1])) if run.returncode == 0 else run.returncode
