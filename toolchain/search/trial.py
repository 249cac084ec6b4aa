"""What a trial reports: its measured objectives, or why it stopped, and its device validation.

A trial runs in its own process (toolchain/search/worker.py), which writes a `TrialResult` as result.json;
the study reads it back through the same record (toolchain/search/execute.py), so the two sides share one
schema instead of agreeing on dict keys.
"""

from __future__ import annotations

from toolchain.base.record import Record

# All minimised, all deterministic (same trial recipe, same values on any machine under any load): the
# sampler reads these, so a seeded search chooses the same trials; the measured latency is reported and
# checked against limits (study.py), never steered by.
OBJECTIVES = ("gzip_bytes", "accuracy_drop_points", "cost_us")


class TrialMetrics(Record):
    """What a complete trial measured: size, quality on val against the source, its op-cost table cost, and
    its latency on the device."""

    model_sha256: str
    size_bytes: int
    gzip_bytes: int
    val_accuracy: float
    source_val_accuracy: float
    accuracy_drop_points: float
    val_agreement: float
    cost_us: float  # devices/opcost.estimated_us: the op-cost table's load-free cost of one invoke
    latency_ms: float  # measured on this host: the report and --max-latency-ms only
    latency_runtime: str
    build_dir: str

    def objective(self, name: str) -> float:
        """One of OBJECTIVES by name (the Pareto front and Optuna read them as a list)."""
        return float(getattr(self, name))


class StudentTrial(Record):
    """A `student: auto` candidate's trial (toolchain/search/auto_trial.py): the parent reads its val
    predictions from `predictions` (beside result.json) and judges the gates itself."""

    int8_bytes: int
    parameters: int
    build_dir: str
    predictions: str


class TrialResult(Record):
    """result.json of a trial process: metrics, or why it stopped early (hopeless after a step)."""

    metrics: TrialMetrics | None = None
    stopped: str | None = None
    student: StudentTrial | None = None  # a distill-auto candidate instead of a search trial


class TrialValidation(Record):
    """A Pareto-front member validated on the search's device (run.py `validate_front`)."""

    device: str
    runtime: str
    passed: bool
    failures: list[str]
    seconds: float
