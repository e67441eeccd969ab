"""``posledger symbols add|list|remove``: the symbol map (docs/venues/README.md)."""

from __future__ import annotations

import click

from . import cli as shell

__all__ = ["register"]


@click.group(short_help="Venue symbols as instruments, per account.")
def symbols() -> None:
    """The symbol map: which instrument a venue's symbol is on each account, so that
    `BTCUSDT` on one account and `BTC-PERP` on another can be one instrument, or two
    (docs/venues/README.md, Symbol map). A broker's message with a symbol not mapped
    is refused, with the command that maps it.

    \b
    Example:
      posledger symbols add binance BIN-1 BTCUSDT BTC-PERP
      posledger symbols list --venue binance
    """


@symbols.command(name="add", short_help="Map a venue's symbol on an account.")
@click.argument("venue")
@click.argument("account")
@click.argument("symbol")
@click.argument("instrument")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def add(
    ctx: click.Context, venue: str, account: str, symbol: str, instrument: str, as_json: bool
) -> None:
    """Map VENUE's SYMBOL on ACCOUNT (registered) to INSTRUMENT (registered). The same
    entry again changes nothing; another instrument for a mapped symbol is refused
    (remove it first). Venue names are kept in lower case.

    \b
    Example:
      posledger symbols add binance BIN-1 BTCUSDT BTC-PERP
      posledger symbols add dtc SC-SIM ESZ6 ES-2026-12
    """
    with shell._ledger(ctx, create=True) as ledger:
        info = ledger.map_symbol(venue, account, symbol, instrument)
    if as_json:
        shell._json(info)
        return
    said = "mapped" if info["added"] else "already mapped"
    click.echo(f"{said}: {info['venue']} {symbol} on {account} is {instrument}")


@symbols.command(name="list", short_help="The symbol map's entries.")
@click.option("--venue", help="This venue's entries only.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_symbols(ctx: click.Context, venue: str | None, as_json: bool) -> None:
    """Every entry of the symbol map (of --venue), by venue, account and symbol.

    \b
    Example:
      posledger symbols list --venue binance --json
    """
    with shell._ledger(ctx) as ledger:
        rows = ledger.symbols(venue)
    if as_json:
        shell._json(rows)
        return
    render = shell._render()
    columns = ["venue", "account", "symbol", "instrument", "added"]
    cells = [
        [row["venue"], row["account"], row["symbol"], row["instrument"], row["created_at"]]
        for row in rows
    ]
    table = [render.Column(column, keep=column != "added") for column in columns]
    wide = shell._wide(ctx)
    render.console(wide=wide).print(render.fit_table("Symbols", table, cells, wide=wide))


@symbols.command(name="remove", short_help="Remove an entry of the symbol map.")
@click.argument("venue")
@click.argument("account")
@click.argument("symbol")
@click.pass_context
def remove(ctx: click.Context, venue: str, account: str, symbol: str) -> None:
    """Remove VENUE's SYMBOL on ACCOUNT from the map: its messages are refused from now
    on, until it is mapped again. Exits 1 when it is not mapped. What was already
    applied stays as it is.

    \b
    Example:
      posledger symbols remove binance BIN-1 BTCUSDT
    """
    with shell._ledger(ctx, create=True) as ledger:
        info = ledger.unmap_symbol(venue, account, symbol)
    click.echo(f"removed: {info['venue']} {symbol} on {account} (was {info['instrument']})")


def register(group: click.Group) -> None:
    group.add_command(symbols)
