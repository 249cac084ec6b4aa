"""Entry point: the Typer app and the single EdgecompError -> exit code mapping."""

from __future__ import annotations

import os
import sys

import typer
from typer.core import TyperGroup

from toolchain import __version__
from toolchain.base.errors import EdgecompError
from toolchain.cli import convert, devices, profile, validate
from toolchain.cli import inspect as inspect_cmd
from toolchain.cli import package as package_cmd


class _ErrorMappingGroup(TyperGroup):
    """Turns an EdgecompError into one line on stderr and its exit code (EDGECOMP_DEBUG=1: traceback)."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except EdgecompError as err:
            if os.environ.get("EDGECOMP_DEBUG") == "1":
                raise
            line = f"error: {err.message}"
            if err.hint:
                line += f" (hint: {err.hint})"
            typer.echo(line, err=True)
            sys.stderr.flush()
            raise typer.Exit(err.exit_code) from None


app = typer.Typer(
    cls=_ErrorMappingGroup,
    no_args_is_help=True,
    add_completion=False,
    help="edgecomp: convert, compress, validate and package search models for on-device inference.",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgecomp {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Compression toolchain for on-device search models (TFLite / LiteRT)."""


app.command("convert")(convert.convert)
app.command("validate")(validate.validate)
app.add_typer(devices.app, name="devices")
app.command("profile")(profile.profile)
app.command("package")(package_cmd.package)
app.command("inspect")(inspect_cmd.inspect)

if __name__ == "__main__":  # pragma: no cover
    app()
