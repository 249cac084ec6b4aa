"""One exception hierarchy. The library raises; only the CLI prints and exits."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class EdgecompError(Exception):
    """A failure the user can act on: a one-line message and a hint for the fix."""

    exit_code: int = 2

    def __init__(self, message: str, hint: str | None = None, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class InputFileError(EdgecompError):
    """A file is missing, unreadable or not what it claims to be."""


class RecipeError(EdgecompError):
    """The recipe (YAML or flags) is invalid."""


class DataError(EdgecompError):
    """Datasets, tokenizer or calibration data are unusable."""


class StepError(EdgecompError):
    """A compression step could not run as configured."""

    exit_code = 3


class ConversionError(EdgecompError):
    """The model could not be converted to TFLite as asked."""

    exit_code = 3


class GateFailed(EdgecompError):
    """A quality gate (accuracy, parity, budget) failed: the artifact must not ship."""

    exit_code = 1


class BuildRejected(GateFailed):
    """A convert gate failed: the candidate was written to `rejected_dir` (never over a good build), and
    `report` is its typed report (toolchain/report/model.py `Report`: the base cannot name that type), for
    the CLI to print (table or --json) before the one error line."""

    def __init__(self, message: str, hint: str | None, report: Any, rejected_dir: Path) -> None:
        super().__init__(message, hint)
        self.report = report
        self.rejected_dir = rejected_dir


class OutputDirError(EdgecompError):
    """An output folder edgecomp may not write or replace (the user's files, a symlink, a busy path)."""


class UntrustedModelError(EdgecompError):
    """Loading this model would run Python code stored in it; refused unless the user trusts it."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM, raised in the main thread so every `with` block unwinds and cleans up.

    A BaseException like KeyboardInterrupt, so no `except Exception` in the library swallows it; the CLI
    maps it to exit 128 + signal (130, 143).
    """

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.exit_code = 128 + signum


# The signals that interrupted the running command (the CLI's handler notes them before raising
# Interrupted). Native code the signal arrives in can hand Interrupted back as another exception: pybind11
# (TensorFlow's converter callbacks) as RuntimeError "MISMATCH of original and normalized active exception
# types", Ray's ray.get as SystemError. Code that catches broad exceptions around such calls asks
# `pending_interrupt()` first, and the CLI's error path checks it, not the exception's type.
_RECEIVED: list[int] = []


def note_interrupt(signum: int) -> None:
    _RECEIVED.append(signum)


def clear_interrupts() -> None:
    _RECEIVED.clear()


def pending_interrupt() -> Interrupted | None:
    """The Interrupted a signal raised during this command, if one did (whatever became of it)."""
    return Interrupted(_RECEIVED[0]) if _RECEIVED else None


UNEXPECTED_EXIT_CODE = 70  # EX_SOFTWARE: a bug in edgecomp, not a gate (1) and not bad input (2)
