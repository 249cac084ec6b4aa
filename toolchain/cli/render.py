"""Output sinks: rich progress bars on stderr, tables or JSON on stdout."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True)


class RichProgress:
    """Implements toolchain.base.progress.Progress with rich bars on stderr (hidden when not a terminal)."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = stderr.is_terminal if enabled is None else enabled
        # A private copy of the terminal: native code may silence fd 2 while a bar is live.
        self.console = stderr
        if self.enabled:
            self.console = Console(file=os.fdopen(os.dup(2), "w"), force_terminal=True)

    @contextlib.contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Any]:
        if not self.enabled:
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
        stderr.print(f"[yellow]warning:[/yellow] {line}", highlight=False)
