"""``posledger pnl``, ``stats`` and ``report``: P&L by period, trade statistics and the
HTML report (docs/pnl.md). Registered on the command group by :mod:`.cli`."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import UsageError
from . import cli as shell
from .asof import as_of, as_of_option

if TYPE_CHECKING:
    from rich.table import Table


__all__ = ["pnl", "report", "stats"]

_MONEY_FIELDS = ("gross_realized", "commissions", "realized", "unrealized", "total", "cumulative")


def _progress(what: str) -> Any:
    """The command line's progress bar on stderr, shown on a terminal only (rows read)."""
    return shell._render().Progress(True, what, "rows")


def _window_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--strategy", help="Only this strategy."),
            click.option("--account", help="Only this account."),
            click.option("--instrument", help="Only this instrument."),
            click.option(
                "--mode",
                type=click.Choice(["LIVE", "SIM", "PAPER"], case_sensitive=False),
                help="Only accounts of this mode.",
            ),
            click.option(
                "--since",
                metavar="DATE|TIME",
                help="From this trading day (YYYY-MM-DD) or instant (ISO time; without an "
                "offset, read in --tz).",
            ),
            click.option(
                "--until",
                metavar="DATE|TIME",
                help="Through this trading day (included), or up to this instant (excluded).",
            ),
            click.option(
                "--tz",
                default="UTC",
                show_default=True,
                metavar="ZONE",
                help="IANA time zone of trading days and of times without an offset.",
            ),
            click.option(
                "--session-start",
                default="00:00",
                show_default=True,
                metavar="HH:MM",
                help="When a trading day starts on the --tz wall clock; 12:00 or later starts "
                "the next day's session (17:00: CME futures).",
            ),
        ]
    ):
        func = option(func)
    return func


def _human(value: str | None, places: int = 6) -> str:
    """An amount for people: at most ``places`` decimals, half-even (JSON keeps all)."""
    if value is None:
        return "-"
    if value == "inf":
        return "inf"
    amount = Decimal(value)
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        amount = amount.quantize(Decimal(1).scaleb(-places))
    text = format(amount, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _percent(value: str | None, scale: int = 100) -> str:
    """A fraction (``scale`` 100) or a percent (``scale`` 1) as a percent, 2 decimals."""
    if value is None:
        return "-"
    return f"{(Decimal(value) * scale).quantize(Decimal('0.01'))}%"


def _seconds(value: str | None) -> str:
    if value is None:
        return "-"
    total = int(Decimal(value).to_integral_value())
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def _print(ctx: click.Context, tables: list[Table]) -> None:
    """Print tables made as wide as ``--wide`` (or the configuration file) asks."""
    console = shell._render().console(wide=shell._wide(ctx))
    for table in tables:
        console.print(table)


# -- pnl --------------------------------------------------------------------------------


def pnl_tables(
    rows: list[dict[str, Any]], by: list[str], period: str | None, *, wide: bool = False
) -> list[Table]:
    """One table per currency: amounts of different currencies are never added. The
    groups, the period, realized, unrealized and total are always shown (a day's P&L
    never leaves out the open positions); the rest while it fits
    (docs/cli.md, tables)."""
    from .render import Column, fit_table

    columns = [Column(name) for name in by]
    if period is not None:
        columns.append(Column(period))
    columns += [
        Column("gross", "right", keep=False),
        Column("commissions", "right", keep=False, short="comm"),
        Column("realized", "right"),
        Column("unrealized", "right", short="unreal"),
        Column("total", "right"),
    ]
    if period is not None:
        columns.append(Column("cumulative", "right", keep=False, short="cum"))
    tables = []
    for currency in sorted({row["currency"] for row in rows}):
        cells = []
        for row in rows:
            if row["currency"] != currency:
                continue
            line = [row[name] for name in by]
            if period is not None:
                line.append(row["period"])
            line += [
                _human(row[name])
                for name in ("gross_realized", "commissions", "realized", "unrealized", "total")
            ]
            if period is not None:
                line.append(_human(row["cumulative"]))
            cells.append(line)
        tables.append(fit_table(f"P&L in {currency}", columns, cells, wide=wide))
    return tables


@click.command()
@click.option(
    "--by",
    default="strategy",
    show_default=True,
    metavar="GROUPS",
    help="Comma list of strategy, account, mode, instrument.",
)
@click.option(
    "--period",
    type=click.Choice(["day", "week", "month"]),
    help="One row per trading day, ISO week or month (default: one row per group).",
)
@_window_options
@as_of_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of tables.")
@shell._wide_option
@click.pass_context
def pnl(
    ctx: click.Context,
    by: str,
    period: str | None,
    strategy: str | None,
    account: str | None,
    instrument: str | None,
    mode: str | None,
    since: str | None,
    until: str | None,
    tz: str,
    session_start: str,
    as_of_time: str | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Realized and unrealized P&L per strategy (or --by account, mode, instrument), per
    trading day, week or month, one table per currency (currencies are never added).

    Realized P&L counts on the trading day of each fill that realized it (a trade closed
    in two parts on two days books each part on its day), net of the commissions paid on
    that day; unrealized P&L of open positions counts at the latest mark, on the mark's
    trading day. `cumulative` is the running total of each group over the periods;
    `cash_flows` (JSON, CSV) is 0 until funding is booked. See docs/pnl.md.

    \b
    Example:
      posledger pnl --period day --tz America/Chicago --session-start 17:00
      posledger pnl --by strategy,account --since 2026-03-01 --json
      posledger pnl --as-of 2026-03-02T21:00:00Z
    """
    if as_json and as_csv:
        raise click.UsageError("--json and --csv exclude each other; give one or neither")
    with (
        shell._ledger(ctx) as now,
        as_of(now, as_of_time) as ledger,
        _progress("reading fills") as progress,
    ):
        rows, unmarked = ledger.pnl_report(
            by=by,
            period=period,
            tz=tz,
            session_start=session_start,
            since=since,
            until=until,
            strategy=strategy,
            account=account,
            instrument=instrument,
            mode=mode,
            progress=progress.tick,
        )
    if unmarked:
        click.echo(
            f"note: {unmarked} open position(s) have no mark: their unrealized P&L is not counted",
            err=True,
        )
    groups = [name.strip().lower() for name in by.split(",")]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif as_csv:
        fields = [*groups, "currency"]
        if period is not None:
            fields += ["period", "period_start"]
        fields += [*_MONEY_FIELDS[:4], "cash_flows", "total", "cumulative"]
        writer = csv.DictWriter(sys.stdout, fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    elif not rows:
        click.echo("no P&L in this window")
    else:
        _print(ctx, pnl_tables(rows, groups, period, wide=shell._wide(ctx)))


# -- stats ------------------------------------------------------------------------------


def stats_table(rows: list[dict[str, Any]], *, wide: bool = False) -> Table:
    """Strategy, currency, trade count, win rate, net P&L and drawdown always; the rest
    while it fits (docs/cli.md, tables)."""
    from .render import Column, fit_table

    columns = [
        Column("strategy"),
        Column("ccy", label="P&L in {}"),
        Column("trades", "right"),
        Column("win rate", "right", short="win%"),
        Column("avg win", "right", keep=False),
        Column("avg loss", "right", keep=False),
        Column("profit factor", "right", keep=False, short="pf"),
        Column("expectancy", "right", keep=False, short="exp"),
        Column("net p&l", "right"),
        Column("max dd", "right"),
        Column("max dd %", "right", keep=False, short="dd%"),
        Column("avg mae", "right", keep=False),
        Column("avg mfe", "right", keep=False),
        Column("avg duration", "right", keep=False, short="avg dur"),
    ]
    return fit_table("Closed trades", columns, [stats_cells(row) for row in rows], wide=wide)


def stats_cells(row: dict[str, Any]) -> list[str]:
    """A statistics row as people read it (docs/pnl.md, Display)."""
    return [
        row["strategy"],
        row["currency"],
        str(row["trades"]),
        _percent(row["win_rate"]),
        _human(row["avg_win"], 2),
        _human(row["avg_loss"], 2),
        _human(row["profit_factor"], 3),
        _human(row["expectancy"], 2),
        _human(row["net_pnl"], 2),
        _human(row["max_drawdown"], 2),
        _percent(row["max_drawdown_pct"], 1),
        _human(row["avg_mae"], 2),
        _human(row["avg_mfe"], 2),
        _seconds(row["avg_duration_seconds"]),
    ]


@click.command()
@_window_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@shell._wide_option
@click.pass_context
def stats(
    ctx: click.Context,
    strategy: str | None,
    account: str | None,
    instrument: str | None,
    mode: str | None,
    since: str | None,
    until: str | None,
    tz: str,
    session_start: str,
    as_json: bool,
) -> None:
    """Statistics of closed trades per strategy and currency: win rate, average win and
    loss, profit factor, expectancy, maximum drawdown of the realized equity curve (in
    money and in percent of its peak), average MAE/MFE and duration.

    A trade counts when it closed inside --since/--until. The table rounds for reading;
    --json keeps every digit (profit factor "inf" with wins and no loss). See docs/pnl.md.

    \b
    Example:
      posledger stats --strategy orb --since 2026-03-01 --json
    """
    with shell._ledger(ctx) as ledger:
        rows = ledger.stats(
            tz=tz,
            session_start=session_start,
            since=since,
            until=until,
            strategy=strategy,
            account=account,
            instrument=instrument,
            mode=mode,
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        click.echo("no closed trades in this window")
    else:
        _print(ctx, [stats_table(rows, wide=shell._wide(ctx))])


# -- report -----------------------------------------------------------------------------


@click.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The HTML file to write.",
)
@_window_options
@click.option(
    "--max-trades",
    type=click.IntRange(min=0),
    default=500,
    show_default=True,
    help="At most this many trades in the trade table (the latest closed).",
)
@click.pass_context
def report(
    ctx: click.Context,
    out: Path,
    strategy: str | None,
    account: str | None,
    instrument: str | None,
    mode: str | None,
    since: str | None,
    until: str | None,
    tz: str,
    session_start: str,
    max_trades: int,
) -> None:
    """Write a self-contained HTML report that opens without a network: per currency an
    equity curve per strategy with its drawdown, P&L by trading day and an MAE/MFE
    scatter, then the statistics table and the latest closed trades.

    The charts are plotly's, with its JavaScript inside the page (install the `report`
    extra: pip install 'posledger[report]'). See docs/pnl.md.

    \b
    Example:
      posledger report --out report.html --tz America/Chicago --session-start 17:00
    """
    try:
        from .htmlreport import build_report
    except ImportError as exc:
        raise UsageError(
            f"posledger report needs plotly ({exc}): pip install 'posledger[report]'"
        ) from None
    with shell._ledger(ctx) as ledger, _progress("reading trades and fills") as progress:
        page, summary = build_report(
            ledger,
            tz=tz,
            session_start=session_start,
            since=since,
            until=until,
            strategy=strategy,
            account=account,
            instrument=instrument,
            mode=mode,
            max_trades=max_trades,
            progress=progress.tick,
        )
    out.write_text(page, encoding="utf-8")
    click.echo(f"wrote {out}: {summary}")
