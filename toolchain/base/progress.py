"""Progress reporting as an injectable sink: the library never prints; the CLI passes rich bars."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol

Advance = Callable[[int], None]


class Progress(Protocol):
    def task(self, description: str, total: int | None) -> contextlib.AbstractContextManager[Advance]:
        """A context manager yielding `advance(n)` for one stage of `total` units."""
        ...


class SilentProgress:
    """Default sink: does nothing (library use, tests)."""

    @contextlib.contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Advance]:
        yield lambda n=1: None
