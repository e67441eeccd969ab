"""``posledger account|instrument|strategy add|list``: reference data from the command line.

``add`` builds the JSONL record docs/format.md describes and applies it exactly as
``ingest`` applies that line (one transaction: applied, a duplicate, or rejected whole and
kept with its reason), so the rules are the same whichever way it is registered.
"""

from __future__ import annotations

import json
from typing import Any

import click

from . import cli as shell

__all__ = ["register"]

SOURCE = "command line"
"""The source a registration from the command line is kept under when rejected."""


def _apply(ctx: click.Context, record: dict[str, Any], as_json: bool) -> None:
    """Apply one record as ``ingest`` applies its line, and say what happened."""
    given = {name: value for name, value in record.items() if value is not None}
    line = json.dumps(given, ensure_ascii=False)
    outcomes: list[Any] = []
    with shell._ledger(ctx, create=True) as ledger:
        ledger.ingest([line], source=SOURCE, on_commit=lambda batch: outcomes.extend(batch))
    ((_, outcome),) = outcomes
    kind, key = record["type"], record[record["type"]]
    if as_json:
        shell._json(
            {
                "status": outcome.status,
                "kind": kind,
                "key": key,
                "reason": outcome.reason,
                "seq": outcome.seq,
            }
        )
    elif outcome.status == "applied":
        click.echo(f"applied {kind} {key} (seq {outcome.seq})")
    else:
        click.echo(f"{outcome.status} {kind} {key}: {outcome.reason}")
    if outcome.status == "rejected":
        ctx.exit(shell.EXIT_PROBLEM)


def _list(ctx: click.Context, kind: str, as_json: bool, columns: list[str]) -> None:
    with shell._ledger(ctx) as ledger:
        rows = ledger.registered(kind)
    if as_json:
        shell._json(rows)
        return
    render = shell._render()
    cells = [[_text(row.get(column)) for column in columns] for row in rows]
    title = {"account": "Accounts", "instrument": "Instruments", "strategy": "Strategies"}[kind]
    table = [render.Column(column, keep=column in columns[:4]) for column in columns]
    wide = shell._wide(ctx)
    render.console(wide=wide).print(render.fit_table(title, table, cells, wide=wide))


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _choice(*values: str) -> click.Choice[str]:
    return click.Choice(values, case_sensitive=False)


# -- accounts ----------------------------------------------------------------------------


@click.group(short_help="Register and list broker accounts.")
def account() -> None:
    """Broker accounts: register one (`add`) or list them (`list`).

    \b
    Example:
      posledger account add NET-1 --venue CME --mode LIVE --position-mode netting
    """


@account.command(name="add", short_help="Register a broker account.")
@click.argument("name")
@click.option("--venue", required=True, help="The venue or broker (CME, BINANCE...).")
@click.option("--mode", required=True, type=_choice("LIVE", "SIM", "PAPER"), help="Its mode.")
@click.option(
    "--position-mode",
    required=True,
    type=_choice("netting", "hedge"),
    help="netting: one position per instrument; hedge: LONG and SHORT side by side.",
)
@click.option(
    "--lot-method",
    type=_choice("average", "fifo", "lifo"),
    help="How a reduction's entry price is found [default: average].",
)
@click.option(
    "--reconcile-policy",
    type=_choice("report", "adopt", "halt"),
    help="What reconcile does with a difference [default: report].",
)
@_json_option
@click.pass_context
def account_add(
    ctx: click.Context,
    name: str,
    venue: str,
    mode: str,
    position_mode: str,
    lot_method: str | None,
    reconcile_policy: str | None,
    as_json: bool,
) -> None:
    """Register a broker account, as an `account` line of `ingest` does.

    The same account registered again identically is a duplicate; with only another
    --reconcile-policy, its policy changes; any other difference is rejected. Exits 1
    when rejected.

    \b
    Example:
      posledger account add NET-1 --venue CME --mode LIVE --position-mode netting \\
          --lot-method fifo --reconcile-policy halt
    """
    _apply(
        ctx,
        {
            "type": "account",
            "account": name,
            "venue": venue,
            "mode": mode,
            "position_mode": position_mode,
            "lot_method": lot_method,
            "reconcile_policy": reconcile_policy,
        },
        as_json,
    )


@account.command(name="list", short_help="List the registered accounts.")
@_json_option
@shell._wide_option
@click.pass_context
def account_list(ctx: click.Context, as_json: bool) -> None:
    """The registered accounts, by name, with the fields they were registered with.

    \b
    Example:
      posledger account list --json
    """
    columns = ["account", "venue", "mode", "position_mode", "lot_method", "reconcile_policy"]
    _list(ctx, "account", as_json, columns)


# -- instruments -------------------------------------------------------------------------


@click.group(short_help="Register and list instruments.")
def instrument() -> None:
    """Instruments: register one (`add`) or list them (`list`).

    \b
    Example:
      posledger instrument add MESH6.CME --kind future --multiplier 5 \\
          --quote-currency USD --settlement-currency USD --tick-size 0.25
    """


@instrument.command(name="add", short_help="Register an instrument.")
@click.argument("name")
@click.option(
    "--kind",
    required=True,
    type=_choice("spot", "equity", "future", "perpetual", "option"),
    help="What it is.",
)
@click.option("--multiplier", required=True, help="Contract multiplier (a decimal).")
@click.option("--quote-currency", required=True, help="The currency prices are quoted in.")
@click.option("--settlement-currency", required=True, help="The currency P&L settles in.")
@click.option("--base-currency", help="Required for spot and inverse instruments.")
@click.option("--tick-size", help="Price increment (a decimal).")
@click.option("--lot-size", help="Quantity increment (a decimal).")
@click.option("--inverse", is_flag=True, default=None, help="An inverse contract.")
@click.option(
    "--allow-negative-prices/--no-negative-prices",
    default=None,
    help="Whether prices at or below zero are taken [default: yes for future, perpetual "
    "and option].",
)
@_json_option
@click.pass_context
def instrument_add(
    ctx: click.Context,
    name: str,
    kind: str,
    multiplier: str,
    quote_currency: str,
    settlement_currency: str,
    base_currency: str | None,
    tick_size: str | None,
    lot_size: str | None,
    inverse: bool | None,
    allow_negative_prices: bool | None,
    as_json: bool,
) -> None:
    """Register an instrument, as an `instrument` line of `ingest` does.

    Amounts are decimal strings (5, 0.25), checked as in a JSONL line. Registered again
    identically: a duplicate; differently: rejected. Exits 1 when rejected.

    \b
    Example:
      posledger instrument add MESH6.CME --kind future --multiplier 5 \\
          --quote-currency USD --settlement-currency USD --tick-size 0.25 --lot-size 1
    """
    _apply(
        ctx,
        {
            "type": "instrument",
            "instrument": name,
            "kind": kind,
            "multiplier": multiplier,
            "quote_currency": quote_currency,
            "settlement_currency": settlement_currency,
            "base_currency": base_currency,
            "tick_size": tick_size,
            "lot_size": lot_size,
            "inverse": inverse,
            "allow_negative_prices": allow_negative_prices,
        },
        as_json,
    )


@instrument.command(name="list", short_help="List the registered instruments.")
@_json_option
@shell._wide_option
@click.pass_context
def instrument_list(ctx: click.Context, as_json: bool) -> None:
    """The registered instruments, by name, with the fields they were registered with.

    \b
    Example:
      posledger instrument list
    """
    columns = [
        "instrument",
        "kind",
        "multiplier",
        "settlement_currency",
        "quote_currency",
        "base_currency",
        "tick_size",
        "lot_size",
        "inverse",
        "allow_negative_prices",
    ]
    _list(ctx, "instrument", as_json, columns)


# -- strategies --------------------------------------------------------------------------


@click.group(short_help="Register and list strategies.")
def strategy() -> None:
    """Strategies: register one (`add`) or list them (`list`).

    \b
    Example:
      posledger strategy add orb --max-open-slots 2
    """


@strategy.command(name="add", short_help="Register a strategy.")
@click.argument("name")
@click.option(
    "--adopt-orphans",
    is_flag=True,
    default=None,
    help="Takes EXTERNAL quantity reconciliation adopts on its keys.",
)
@click.option("--max-open-slots", type=int, help="Entries beyond this many open slots are refused.")
@click.option("--take-profit", help='Default take-profit distance: "20 ticks" or "0.5%".')
@click.option("--stop-loss", help='Default stop-loss distance: "12 ticks" or "0.25%".')
@_json_option
@click.pass_context
def strategy_add(
    ctx: click.Context,
    name: str,
    adopt_orphans: bool | None,
    max_open_slots: int | None,
    take_profit: str | None,
    stop_loss: str | None,
    as_json: bool,
) -> None:
    """Register a strategy, as a `strategy` line of `ingest` does.

    Registered again identically: a duplicate; differently: rejected. Exits 1 when
    rejected.

    \b
    Example:
      posledger strategy add orb --adopt-orphans --take-profit "20 ticks" \\
          --stop-loss "12 ticks"
    """
    _apply(
        ctx,
        {
            "type": "strategy",
            "strategy": name,
            "adopt_orphans": adopt_orphans,
            "max_open_slots": max_open_slots,
            "take_profit": take_profit,
            "stop_loss": stop_loss,
        },
        as_json,
    )


@strategy.command(name="list", short_help="List the registered strategies.")
@_json_option
@shell._wide_option
@click.pass_context
def strategy_list(ctx: click.Context, as_json: bool) -> None:
    """The registered strategies, by name, with the fields they were registered with.

    \b
    Example:
      posledger strategy list --json
    """
    columns = ["strategy", "adopt_orphans", "max_open_slots", "take_profit", "stop_loss"]
    _list(ctx, "strategy", as_json, columns)


def register(group: click.Group) -> None:
    """Add the ``account``, ``instrument`` and ``strategy`` groups to ``group``."""
    for command in (account, instrument, strategy):
        group.add_command(command)
