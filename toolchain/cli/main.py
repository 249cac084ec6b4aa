"""Entry point: the Typer app and the one error path (exit codes: docs/reference/errors.md).

Every failure leaves as one `error:` line on stderr. An EdgecompError carries its own exit code; SIGINT and
SIGTERM become `Interrupted` in the main thread (exit 130/143) so staging dirs and temp dirs unwind through
their context managers, and child process groups are killed by toolchain/base/child.py's handler, which
chains to ours; a full disk or a read-only folder is exit 2; a reader that closed stdout early (`| head`) is a
quiet exit 1 (rich's and typer's code for it); any other exception is a bug in edgecomp: exit 70 (not 1,
which means a gate failed), with a request to rerun with EDGECOMP_DEBUG=1 for the traceback.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import signal
import sys
from collections.abc import Iterator

import typer
from typer.core import TyperGroup

from toolchain import __version__
from toolchain.base.errors import (
    UNEXPECTED_EXIT_CODE,
    EdgecompError,
    Interrupted,
    clear_interrupts,
    note_interrupt,
    pending_interrupt,
)
from toolchain.base.notices import notice_sink
from toolchain.cli import cache as cache_cmd
from toolchain.cli import convert, data, devices, profile, search, train, validate, verbosity
from toolchain.cli import doctor as doctor_cmd
from toolchain.cli import inspect as inspect_cmd
from toolchain.cli import package as package_cmd

PIPE_CLOSED_EXIT = 1  # stdout's reader left early (`| head`): quiet, and the code rich and typer use for it
# A path the user gave that cannot be written: their input, exit 2 (not a bug in edgecomp)
_ENVIRONMENT_ERRNOS = {
    errno.ENOSPC,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EDQUOT,
    errno.ENAMETOOLONG,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.ELOOP,
}
_HANDLED = (signal.SIGINT, signal.SIGTERM)


def _raise_interrupted(signum: int, frame: object) -> None:
    for s in _HANDLED:  # a second Ctrl-C must not interrupt the cleanup the first one started
        signal.signal(s, signal.SIG_IGN)
    note_interrupt(signum)  # Interrupted may come back wrapped: see toolchain.base.errors.pending_interrupt
    raise Interrupted(signum)


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """SIGINT/SIGTERM raise Interrupted while a command runs; the previous handlers come back after."""
    clear_interrupts()
    try:
        previous = {s: signal.signal(s, _raise_interrupted) for s in _HANDLED}
    except ValueError:  # not the main thread (an embedding app): leave signals alone
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _drop_stdout() -> None:
    """Point fd 1 at /dev/null so that the interpreter's final flush cannot fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):  # not a real fd (CliRunner)
        pass


def _note(line: str) -> None:
    """Library notices (toolchain.base.notices, e.g. a first-time download and its size): stderr."""
    # loaded when the command runs, so `edgecomp --help` stays instant
    from toolchain.cli import render

    render.note([line])


def one_line(text: str) -> str:
    """An error message as one line: a message with line breaks (a YAML parser's, a library's) is joined."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _fail(line: str, code: int) -> typer.Exit:
    typer.echo(one_line(line), err=True)
    sys.stderr.flush()
    return typer.Exit(code)


def usage_error_line(err: typer.TyperException) -> str:
    """Typer's own errors (a bad option, a value out of range, a missing argument) in edgecomp's form."""
    message = one_line(err.format_message()).rstrip(".").replace("Value error, ", "")
    message = message[:1].lower() + message[1:]
    ctx, names = getattr(err, "ctx", None), []
    while ctx is not None and ctx.parent is not None:  # the root's name is how edgecomp was started
        names.insert(0, ctx.info_name)
        ctx = ctx.parent
    command = ["edgecomp", *names]
    return f"error: {message} (hint: see '{' '.join(command)} --help')"


class _ErrorMappingGroup(TyperGroup):
    """One error path: one line on stderr and the documented exit code (EDGECOMP_DEBUG=1: traceback)."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        """Typer's usage errors (exit 2) as one `error: ... (hint: ...)` line instead of a framed box."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)  # typer.Exit(n): returns n
        except typer.TyperException as err:  # click's UsageError, BadParameter, NoSuchOption ...
            if not err.format_message().strip():  # `edgecomp` or `edgecomp cache` alone: the help was shown
                sys.exit(0)
            typer.echo(usage_error_line(err), err=True)
            sys.exit(err.exit_code)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: typer.Context):
        try:
            return self._invoke(ctx)
        finally:
            clear_interrupts()  # a signal belongs to this command: the next call in this process starts clean

    def _invoke(self, ctx: typer.Context):
        debug = os.environ.get("EDGECOMP_DEBUG") == "1"
        try:
            with _signals_raise(), notice_sink(_note):
                result = super().invoke(ctx)
                if pending_interrupt():  # the signal's exception was swallowed (see base/atomic.py)
                    raise _interrupted_exit()
                return result
        except (typer.Exit, typer.Abort, typer.TyperException):  # usage errors, --help: typer's own exits
            raise
        except (Interrupted, KeyboardInterrupt) as err:
            code = err.exit_code if isinstance(err, Interrupted) else 130
            raise _fail(f"error: {err or 'interrupted by SIGINT'}; nothing was written", code) from None
        except EdgecompError as err:
            if pending_interrupt():  # the signal came back wrapped
                raise _interrupted_exit() from None
            if debug:
                raise
            line = f"error: {err.message}"
            if err.hint:
                line += f" (hint: {err.hint})"
            raise _fail(line, err.exit_code) from None
        except BrokenPipeError:  # `edgecomp ... | head`: the reader has all it wanted and left
            _drop_stdout()
            raise typer.Exit(PIPE_CLOSED_EXIT) from None
        except OSError as err:
            if pending_interrupt():
                raise _interrupted_exit() from None
            if debug or err.errno not in _ENVIRONMENT_ERRNOS:
                if debug:
                    raise
                raise _fail(_unexpected(err), UNEXPECTED_EXIT_CODE) from None
            where = f": {err.filename}" if err.filename else ""
            hint = (
                "free some space or choose another --out"
                if err.errno in (errno.ENOSPC, errno.EDQUOT)
                else ("choose a writable path")
            )
            raise _fail(f"error: {err.strerror}{where} (hint: {hint})", 2) from None
        except Exception as err:
            if pending_interrupt():
                raise _interrupted_exit() from None
            if debug:
                raise
            raise _fail(_unexpected(err), UNEXPECTED_EXIT_CODE) from None


def _interrupted_exit() -> typer.Exit:
    err = pending_interrupt()
    assert err is not None
    return _fail(f"error: {err}; nothing was written", err.exit_code)


def _unexpected(err: BaseException) -> str:
    first = (str(err).splitlines() or [""])[0][:200]
    return (
        f"error: unexpected {err.__class__.__name__}: {first} (hint: this is a bug in edgecomp; rerun with "
        "EDGECOMP_DEBUG=1 for the traceback and report it)"
    )


app = typer.Typer(
    cls=_ErrorMappingGroup,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
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
    verbose: int = verbosity.verbose_option(),
    quiet: bool = verbosity.quiet_option(),
) -> None:
    """Compression toolchain for on-device search models (TFLite / LiteRT)."""


app.command("data")(data.data)
app.command("train")(train.train)
app.command("convert")(convert.convert)
app.command("validate")(validate.validate)
app.add_typer(devices.app, name="devices")
app.command("profile")(profile.profile)
app.command("package")(package_cmd.package)
app.command("inspect")(inspect_cmd.inspect)
app.command("search")(search.search)
app.add_typer(cache_cmd.app, name="cache")
app.command("doctor")(doctor_cmd.doctor)
verbosity.add_to(app)

if __name__ == "__main__":  # pragma: no cover
    app()
