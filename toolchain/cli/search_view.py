"""Rendering for `edgecomp search`: a live progress bar + table of trials on stderr, the front on stdout."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from toolchain.search.outputs import params_text, validation_text
from toolchain.search.study import TrialRecord

LIVE_ROWS = 15  # the newest trials shown while the search runs (all of them are in trials.csv)


def _name(r: TrialRecord) -> str:
    return f"{params_text(r.params)} (preset {r.preset})" if r.preset else params_text(r.params)


def _row(r: TrialRecord) -> list[str]:
    if r.state != "complete":
        return [str(r.number), _name(r) if r.params else "", r.state, "", "", "", "", r.error or ""]
    m = r.metrics
    assert m is not None  # complete
    return [
        str(r.number),
        _name(r),
        f"{m.size_bytes / 1024:.1f}",
        f"{m.gzip_bytes / 1024:.1f}",
        f"{m.accuracy_drop_points:.2f}",
        f"{m.cost_us:.1f}",
        f"{m.latency_ms:.3f}",
        "yes" if r.feasible else "no",
    ]


def trials_table(records: list[TrialRecord], title: str, device: str | None = None) -> Table:
    """`device`: add the column of each record's validation on it."""
    table = Table(title=title)
    for col in ("trial", "params", "raw KB", "gzip KB", "drop pt", "cost µs", "ms", "meets limits"):
        table.add_column(col, justify="left" if col in ("params", "meets limits") else "right")
    if device is not None:
        table.add_column(f"validate {device}")
    for r in records:
        table.add_row(*_row(r), *([validation_text(r) or ""] if device is not None else []))
    return table


def front_table(front: list[TrialRecord], best: TrialRecord | None) -> Table:
    device = next((r.validation.device for r in front if r.validation is not None), None)
    title = "Pareto front (feasible trials; gzip size, val accuracy drop, op cost)"
    table = trials_table(front, title, device)
    if best is not None:
        table.caption = f"chosen: trial {best.number} (smallest gzip size on the front)"
    return table


class TrialsView:
    """A progress bar and the newest trials, redrawn as each trial is told (static lines when piped)."""

    def __init__(self, console: Console, total: int) -> None:
        self.console, self.total = console, total
        self.records: list[TrialRecord] = []
        self.bar = Progress(
            TextColumn("search"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        )
        self.task = self.bar.add_task("trials", total=total)
        self.live = Live(self._render(), console=console, refresh_per_second=2, transient=False)

    def _render(self) -> Group:
        return Group(self.bar, trials_table(self.records[-LIVE_ROWS:], "trials"))

    def start(self, done: int) -> None:
        if done:
            self.console.print(f"resuming: {done} of {self.total} trials already finished", highlight=False)

    def add(self, record: TrialRecord) -> None:
        self.records.append(record)
        self.bar.update(self.task, completed=min(len(self.records), self.total))
        if self.console.is_terminal:
            self.live.update(self._render())
        else:
            self.console.print(" | ".join(_row(record)), highlight=False)

    def validated(self, record: TrialRecord) -> None:
        device = record.validation.device if record.validation is not None else "?"
        self.console.print(
            f"validate trial {record.number} on {device}: {validation_text(record)}", highlight=False
        )

    def __enter__(self) -> TrialsView:
        if self.console.is_terminal:
            self.live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.console.is_terminal:
            self.live.__exit__(kind, err, tb)
