"""One exception hierarchy. The library raises; only the CLI prints and exits."""

from __future__ import annotations


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
