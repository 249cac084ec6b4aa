"""`edgecomp data`: labelled queries (JSONL/CSV) -> a project folder (toolchain.project.folder)."""

from __future__ import annotations

from pathlib import Path

import typer


def data(
    queries: Path = typer.Argument(
        ...,
        help='Labelled queries: .jsonl ({"text": ..., "intent": ...} per line) or .csv with a header row.',
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Project folder to write (then: edgecomp train OUT)."),
    name: str | None = typer.Option(None, "--name", help="Model name (default: the folder's name)."),
    text_field: str = typer.Option("text", "--text-field", help="Field (column) holding the query."),
    label_field: str = typer.Option("intent", "--label-field", help="Field (column) holding the label."),
    val_share: float = typer.Option(
        0.1, "--val-share", min=0.01, max=0.45, help="Share of each label for val."
    ),
    test_share: float = typer.Option(
        0.1, "--test-share", min=0.01, max=0.45, help="Share of each label for test."
    ),
    seed: int = typer.Option(0, "--seed", min=0, max=2**32 - 1, help="Split seed (also train's default)."),
    min_per_label: int = typer.Option(
        10, "--min-per-label", min=3, help="Refuse labels with fewer queries than this."
    ),
    dedupe: bool = typer.Option(
        False, "--dedupe", help="Keep the first of repeated queries instead of failing."
    ),
    min_count: int = typer.Option(
        2, "--min-count", min=1, help="Vocab: words seen fewer times are <UNKNOWN>."
    ),
    seq_len: int | None = typer.Option(
        None, "--seq-len", min=2, max=1024, help="Tokens per query (default: from the queries' lengths)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Check and split labelled queries (no test phrasing in train); write the vocab and labels."""
    # loaded when the command runs, so `edgecomp --help` stays instant
    from toolchain.cli import render
    from toolchain.project.folder import DataOptions, prepare_data

    options = DataOptions(
        text_field=text_field,
        label_field=label_field,
        val_share=val_share,
        test_share=test_share,
        seed=seed,
        min_per_label=min_per_label,
        dedupe=dedupe,
        min_count=min_count,
        seq_len=seq_len,
    )
    summary = prepare_data(queries, out, name, options)
    if as_json:
        render.print_json(summary.to_json())
        return
    rows = [
        [lab, str(c.train), str(c.val), str(c.test), str(c.groups), c.grouping]
        for lab, c in summary.per_label.items()
    ]
    total = summary.splits
    rows.append(["total", str(total.train), str(total.val), str(total.test), str(summary.groups), ""])
    columns = ["label", "train", "val", "test", "phrasings", "grouped"]
    print_rows(f"{summary.name}: {summary.queries} queries", columns, rows)
    leaks = summary.leaks
    render.stdout.print(
        f"test/val phrasings also in train: {leaks.exact} exact, {leaks.near} one word apart; "
        f"vocab {summary.vocab_size} tokens, {summary.seq_len} tokens per query "
        f"({summary.truncated_queries} queries longer)",
        highlight=False,
    )
    exact = [lab for lab, c in summary.per_label.items() if c.grouping == "exact"]
    if exact:
        render.warn(
            [
                f"{len(exact)} label(s) grouped by exact phrasing only (one-word variants chain too far): "
                + ", ".join(exact)
            ]
        )
    if summary.dropped_duplicates:
        render.warn([f"--dedupe dropped {summary.dropped_duplicates} repeated queries"])
    render.stdout.print(f"wrote {summary.dir}/ (next: edgecomp train {out})", highlight=False)


def print_rows(title: str, header: list[str], rows: list[list[str]]) -> None:
    """A rich table on a terminal; tab-separated plain rows (never truncated) when stdout is piped."""
    from rich.table import Table

    # loaded when the command runs, so `edgecomp --help` stays instant
    from toolchain.cli import render

    if not render.stdout.is_terminal:
        render.stdout.print(title, highlight=False)
        for row in [header, *rows]:
            render.stdout.print("\t".join(row), highlight=False, markup=False)
        return
    table = Table(title=title)
    for i, col in enumerate(header):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    render.stdout.print(table)
