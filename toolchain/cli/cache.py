"""`edgecomp cache list|clean`: what edgecomp keeps in its cache folder, and removing it.

Thin: toolchain/caches.py finds and removes the entries.
"""

from __future__ import annotations

import typer
from rich.table import Table

from toolchain import caches
from toolchain.cli import render

app = typer.Typer(
    no_args_is_help=True,
    help="The isolated environments, device sysroots and other caches edgecomp made, and removing them.",
)


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _table(title: str, entries: list[caches.CacheEntry]) -> None:
    t = Table(title=title)
    for col, justify in (("name", "left"), ("what", "left"), ("version", "left"), ("size", "right")):
        t.add_column(col, justify=justify)
    for e in entries:
        t.add_row(e.name, e.what, e.version or "-", _mb(e.bytes))
    render.stdout.print(t)


@app.command("list")
def list_cache(as_json: bool = typer.Option(False, "--json", help="Print the entries as JSON.")) -> None:
    """List every cache entry edgecomp made: what it is, its version, its size (clean takes the name)."""
    listing = caches.list_caches()
    if as_json:
        render.print_json(listing.to_json())
        return
    _table(f"edgecomp caches in {listing.root}: {_mb(listing.total_bytes)}", listing.entries)


@app.command("clean")
def clean(
    names: list[str] | None = typer.Argument(
        None, help="Entries to remove: a name from `edgecomp cache list`, or a kind (envs, sysroots, ...)."
    ),
    everything: bool = typer.Option(False, "--all", help="Remove every entry `edgecomp cache list` shows."),
    as_json: bool = typer.Option(False, "--json", help="Print what was removed as JSON."),
) -> None:
    """Remove cache entries (exactly those `list` shows; files edgecomp did not make are never touched)."""
    if not names and not everything:
        raise typer.BadParameter("name an entry (see edgecomp cache list) or pass --all", param_hint="NAMES")
    listing = caches.list_caches()
    chosen = caches.select(listing, names or [], everything)
    freed = caches.remove(chosen)
    if as_json:
        render.print_json(
            {"root": listing.root, "removed": [e.to_json() for e in chosen], "freed_bytes": freed}
        )
        return
    _table(f"removed from {listing.root}: {_mb(freed)}", chosen)
