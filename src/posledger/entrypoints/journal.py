"""``posledger journal``: the journal's entries, with the key that sent each input."""

from __future__ import annotations

import click

from . import cli as shell

__all__ = ["register"]


@click.command(short_help="Journal entries, and which key sent each.")
@click.option("--after-seq", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON (input and effects too).")
@click.pass_context
def journal(ctx: click.Context, after_seq: int, limit: int, as_json: bool) -> None:
    """The journal's entries after --after-seq, oldest first: what was applied, when, and
    which key of the HTTP API sent it ("-": the command line or the Python API; a mark
    written from memory names no key). The audit trail of docs/service.md, Keys.

    \b
    Example:
      posledger journal --after-seq 1200 --limit 20
    """
    with shell._ledger(ctx) as ledger:
        rows = ledger.journal_json(after_seq=after_seq, limit=limit)
    if as_json:
        shell._json(rows)
        return
    render = shell._render()
    columns = ["seq", "recorded", "kind", "stream", "key"]
    cells = [
        [
            str(row["seq"]),
            row["recorded_at"],
            row["kind"],
            row["stream"],
            row["key_id"] or "-",
        ]
        for row in rows
    ]
    table = [render.Column(column, keep=column in ("seq", "kind", "key")) for column in columns]
    wide = shell._wide(ctx)
    render.console(wide=wide).print(render.fit_table("Journal", table, cells, wide=wide))


def register(group: click.Group) -> None:
    group.add_command(journal)
