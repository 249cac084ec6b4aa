"""Output sinks: rich progress bars on stderr, tables or JSON on stdout."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from toolchain.base import logs

log = logging.getLogger(__name__)

PIPE_WIDTH = 10_000  # columns a table may use when stdout is not a terminal: wider than any row


class _Stdout(Console):
    """stdout that never cuts a cell: piped (`| cat`, `| grep`), tables take their natural width instead of
    rich's 80-column default; on a terminal, a cell too wide for the screen wraps (fold) instead of ending
    in an ellipsis, so a device name or a sha256 is always there in full."""

    _fixed = False  # a width set through `size` (tests), kept even when piped

    @property
    def size(self) -> ConsoleDimensions:
        if not self._fixed and not self.is_terminal:  # COLUMNS=80 included: a pipe has no width
            return ConsoleDimensions(PIPE_WIDTH, super().size.height)
        return super().size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size
        self._fixed = True

    def print(self, *objects: Any, **kwargs: Any) -> None:
        for obj in objects:
            if isinstance(obj, Table):
                for column in obj.columns:
                    column.overflow = "fold"
        super().print(*objects, **kwargs)


stdout = _Stdout(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)  # a diagnostic line stays one line when piped


class RichProgress:
    """Implements toolchain.base.progress.Progress with rich bars on stderr (hidden when not a terminal)."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.shown = logs.chatty()  # --quiet: no bars and no "… stage" lines
        self.enabled = (stderr.is_terminal if enabled is None else enabled) and self.shown
        # A private copy of the terminal: native code may silence fd 2 while a bar is live.
        self.console = stderr
        if self.enabled:
            self.console = Console(file=os.fdopen(os.dup(2), "w"), force_terminal=True)

    @contextlib.contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Any]:
        if not self.enabled:
            if self.shown:
                stderr.print(f"[dim]… {description}[/dim]", highlight=False)
            yield lambda n=1: None
            return
        cols = [
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        ]
        with Progress(*cols, console=self.console, transient=False) as bar:
            task_id = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(task_id, n)
            if total:
                bar.update(task_id, completed=total)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def warn(lines: list[str]) -> None:
    for line in lines:
        log.warning(line)


def note(lines: list[str]) -> None:
    """Something to know that is not a problem (an unset metadata field, a first-time download)."""
    for line in lines:
        log.info(line)


def progress_console() -> Console:
    """stderr for live progress (the search's trials view); a silent console under --quiet."""
    return stderr if logs.chatty() else Console(stderr=True, quiet=True)


class StderrHandler(logging.Handler):
    """edgecomp's log lines on stderr, one line each: `note:` (INFO), `warning:`, `debug: <module>:`."""

    _PREFIX = {logging.INFO: "[cyan]note:[/cyan]", logging.WARNING: "[yellow]warning:[/yellow]"}

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = " ".join(record.getMessage().split("\n"))
            if record.levelno < logging.INFO:
                stderr.print(f"debug: {record.name}: {text}", style="dim", highlight=False, markup=False)
                return
            prefix = self._PREFIX.get(record.levelno, "[yellow]warning:[/yellow]")
            stderr.print(f"{prefix} {escape(text)}", highlight=False)
        except Exception:  # logging's contract: a failing handler must not break the program
            self.handleError(record)
