"""Logging: one logger per module (`log = logging.getLogger(__name__)`), under edgecomp's three packages.

The library logs and never prints: DEBUG for what it is doing (an isolated environment reused or created,
a child process started, a cache entry hit), INFO for what a user should know (the notices of
toolchain.base.notices), WARNING for a result worth a second look. The CLI chooses the level from
`-v/--verbose` and `--quiet` (`configure`) and the handler that writes the lines; an embedding application
configures the `toolchain`, `converters` and `devices` loggers like any other.

  default      INFO: notes, warnings, progress bars (errors are not logged: they are raised)
  -v           DEBUG: also what edgecomp does, line by line
  --quiet      WARNING: no notes, no progress bars; warnings and the one `error:` line still show
"""

from __future__ import annotations

import logging

PACKAGES = ("toolchain", "converters", "devices")


def level_for(verbose: int, quiet: bool) -> int:
    if quiet:
        return logging.WARNING
    return logging.DEBUG if verbose > 0 else logging.INFO


def configure(level: int, handler: logging.Handler) -> None:
    """Route the three packages' loggers to `handler` at `level` (replacing a handler set here before)."""
    handler.set_name("edgecomp")
    for name in PACKAGES:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == "edgecomp"]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False


def chatty() -> bool:
    """Whether notes and progress are wanted (False under --quiet)."""
    return logging.getLogger(PACKAGES[0]).getEffectiveLevel() <= logging.INFO
