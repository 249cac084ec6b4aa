"""`-v/--verbose` and `-q/--quiet` on the root and on every command, wired to Python logging.

`edgecomp -v convert ...` and `edgecomp convert ... -v` mean the same: the options are added to every
command of the app (`add_to`), and each occurrence updates one setting kept on the root context, so a flag
given at either level counts. toolchain/base/logs.py says what each level shows. `-q` is quiet (as in pip,
git, curl); `--quantize` therefore takes `-Q`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import typer

from toolchain.base import logs
from toolchain.cli import render

_KEY = "edgecomp.verbosity"
PANEL = "Output"
VERBOSE_HELP = "More detail on stderr: what edgecomp does, step by step (logging DEBUG)."
QUIET_HELP = "Only results, warnings and errors: no notes, no progress bars."


def _apply(ctx: typer.Context, param: typer.CallbackParam, value: object) -> None:
    state = ctx.find_root().meta.setdefault(_KEY, {"verbose": 0, "quiet": False})
    if param.name == "verbose":
        state["verbose"] += int(value or 0)  # type: ignore[call-overload]
    elif value:
        state["quiet"] = True
    if state["verbose"] and state["quiet"]:
        raise typer.BadParameter("-v/--verbose and -q/--quiet contradict each other; give one")
    configure(state["verbose"], state["quiet"])


def configure(verbose: int, quiet: bool) -> None:
    logs.configure(logs.level_for(verbose, quiet), render.StderrHandler())


def verbose_option() -> typer.models.OptionInfo:
    return typer.Option(
        0,
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_apply,
        show_default=False,
        help=VERBOSE_HELP,
        rich_help_panel=PANEL,
    )


def quiet_option() -> typer.models.OptionInfo:
    return typer.Option(
        False, "-q", "--quiet", expose_value=False, callback=_apply, help=QUIET_HELP, rich_help_panel=PANEL
    )


def wrap(command: Callable[..., Any]) -> Callable[..., Any]:
    """`command` with -v and -q added to the options Typer reads from its signature."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs.pop("verbose", None)  # applied by the options' callback already
        kwargs.pop("quiet", None)
        return command(*args, **kwargs)

    signature = inspect.signature(command)
    extra = [
        inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d(), annotation=a)
        for n, d, a in (("verbose", verbose_option, int), ("quiet", quiet_option, bool))
    ]
    wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *extra])  # type: ignore[attr-defined]
    return wrapper


def add_to(app: typer.Typer) -> None:
    """Every command registered on `app` and its sub-apps takes -v and -q (call before the app runs)."""
    for info in app.registered_commands:
        if info.callback is not None and not getattr(info.callback, "_verbosity", False):
            info.callback = wrap(info.callback)
            info.callback._verbosity = True  # type: ignore[attr-defined]
    for group in app.registered_groups:
        if group.typer_instance is not None:
            add_to(group.typer_instance)
