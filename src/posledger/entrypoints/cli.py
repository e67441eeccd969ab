"""``posledger``: the command line, a thin shell over :class:`posledger.Ledger`.

Exit status: 0 success; 1 the command ran but found a problem (rejected lines, failed
verification); 2 usage error; 3 the database could not be used.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import click
from sqlalchemy.exc import SQLAlchemyError

from ..adapters.jsonl import Line
from ..bootstrap import DEFAULT_URL, open_ledger, resolve_url
from ..service.handlers import Outcome
from ..service.ledger import Ledger, RebuildError
from ..store.database import DatabaseError, upgrade_database
from . import render

EXIT_PROBLEM = 1
EXIT_DATABASE = 3


def _json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


@contextmanager
def _ledger(ctx: click.Context) -> Iterator[Ledger]:
    url = resolve_url(ctx.obj["db"])
    try:
        ledger = open_ledger(url)
    except DatabaseError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(EXIT_DATABASE)
    try:
        yield ledger
    finally:
        ledger.close()


def _filters(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--account", help="Only this account."),
            click.option("--instrument", help="Only this instrument."),
            click.option("--strategy", help="Only this strategy (EXTERNAL for unowned fills)."),
            click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table."),
        ]
    ):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--db",
    metavar="URL",
    help=f"Database URL. Default: $POSLEDGER_DB, else {DEFAULT_URL}.",
)
@click.version_option(package_name="posledger")
@click.pass_context
def cli(ctx: click.Context, db: str | None) -> None:
    """A position ledger for traders who run several strategies on the same accounts.

    Fills go in (JSON Lines, see `ingest --help`); out come each strategy's positions,
    realized and unrealized P&L and round-trip trades, from a database that is the
    single source of truth.

    \b
    Example:
      posledger --db sqlite:///my.db ingest session.jsonl
      posledger --db sqlite:///my.db positions
      posledger --db sqlite:///my.db trades --json
    """
    ctx.ensure_object(dict)
    ctx.obj["db"] = db


# -- ingest -----------------------------------------------------------------------------


def _say_outcome(line: Line, outcome: Outcome) -> str:
    what = f"{outcome.kind} {outcome.key}" if outcome.kind else "input"
    if outcome.status == "applied":
        return f"line {line.number}: applied {what} (seq {outcome.seq})"
    return f"line {line.number}: {outcome.status} {what}: {outcome.reason}"


@cli.command()
@click.argument("file", type=click.File("rb"))
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Inputs per transaction. 1 makes every line durable before the next is read.",
)
@click.option(
    "-v", "--verbose", is_flag=True, help="Print each line's outcome once it is committed."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", is_flag=True, help="No progress output on stderr.")
@click.pass_context
def ingest(
    ctx: click.Context, file: IO[bytes], batch_size: int, verbose: bool, as_json: bool, quiet: bool
) -> None:
    """Apply a JSON Lines FILE (or - for stdin) of fills, orders, marks and reference data.

    One JSON object per line, `type` first: account, instrument, strategy, order, cancel,
    fill, mark (DESIGN §7). Amounts are decimal strings, times ISO 8601 with an offset.
    Ingesting the same file again changes nothing: each fill's exec_id is applied once
    per account.

    Prints applied / duplicate / rejected counts and every rejected line with its
    reason; rejected lines are refused whole and kept in the database for review.
    Exits 1 if any line was rejected (the others are still applied).

    \b
    Example line:
      {"type":"fill","exec_id":"x-1","account":"SIM-1","instrument":"MESH6.CME",
       "side":"BUY","quantity":"1","price":"6852.25","ts":"2026-03-02T14:45:02Z",
       "client_order_id":"o-1","commission":"0.62","commission_currency":"USD"}
    """
    name = getattr(file, "name", "<stdin>")
    source = name if isinstance(name, str) and name != "-" else "<stdin>"
    progress = render.Progress(enabled=not quiet)
    done = 0

    def on_commit(batch: list[tuple[Line, Outcome]]) -> None:
        nonlocal done
        done += len(batch)
        if verbose:
            for line, outcome in batch:
                click.echo(_say_outcome(line, outcome))
            sys.stdout.flush()
        progress.tick(done)

    with _ledger(ctx) as ledger:
        try:
            report = ledger.ingest(file, source=source, batch_size=batch_size, on_commit=on_commit)
        except DatabaseError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_DATABASE)
        finally:
            progress.done()
    if as_json:
        _json(
            {
                "source": source,
                "lines": report.lines,
                "applied": report.applied,
                "duplicate": report.duplicate,
                "rejected": report.rejected,
                "rejections": [{"line": n, "reason": r} for n, r in report.rejections],
            }
        )
    else:
        click.echo(render.summary_text(report, source))
    if not report.ok:
        ctx.exit(EXIT_PROBLEM)


# -- positions and trades ------------------------------------------------------------


@cli.command()
@click.option("--all", "include_flat", is_flag=True, help="Include flat slots.")
@_filters
@click.pass_context
def positions(
    ctx: click.Context,
    include_flat: bool,
    account: str | None,
    instrument: str | None,
    strategy: str | None,
    as_json: bool,
) -> None:
    """Each strategy's position per account, instrument and position side (its slot).

    Open slots only unless --all. Realized P&L is that of the slot's current trade (or
    its last one when flat), net of commissions in the P&L currency; unrealized P&L is
    valued at the instrument's latest mark.

    \b
    Example:
      posledger positions --strategy mes-orb-01 --json
    """
    with _ledger(ctx) as ledger:
        rows = ledger.positions(
            include_flat=include_flat, account=account, instrument=instrument, strategy=strategy
        )
    if as_json:
        _json(rows)
    else:
        render.console().print(render.positions_table(rows))


@cli.command()
@click.option("--open", "only_open", is_flag=True, help="Only open trades.")
@click.option("--closed", "only_closed", is_flag=True, help="Only closed trades.")
@_filters
@click.pass_context
def trades(
    ctx: click.Context,
    only_open: bool,
    only_closed: bool,
    account: str | None,
    instrument: str | None,
    strategy: str | None,
    as_json: bool,
) -> None:
    """Round-trip trades (flat to flat) in the order they were opened.

    JSON includes every fill of a trade with its role (open, increase, reduce, close,
    flip), gross and net realized P&L, return, duration, close reason and MAE/MFE.

    \b
    Example:
      posledger trades --closed --json
    """
    if only_open and only_closed:
        raise click.UsageError("--open and --closed exclude each other; give one or neither")
    status = "open" if only_open else "closed" if only_closed else None
    with _ledger(ctx) as ledger:
        rows = ledger.trades(
            account=account,
            instrument=instrument,
            strategy=strategy,
            status=status,
            with_fills=as_json,
        )
    if as_json:
        _json(rows)
    else:
        render.console().print(render.trades_table(rows))


@cli.command()
@_filters
@click.pass_context
def anomalies(
    ctx: click.Context,
    account: str | None,
    instrument: str | None,
    strategy: str | None,
    as_json: bool,
) -> None:
    """Fills the ledger booked to EXTERNAL because they did not fit their strategy's slot.

    An exit order larger than its strategy's position (it took another strategy's
    quantity), or a hedge-mode fill that would take a LONG or SHORT slot past zero.

    \b
    Example:
      posledger anomalies --json
    """
    with _ledger(ctx) as ledger:
        rows = ledger.anomalies(account=account, instrument=instrument, strategy=strategy)
    if as_json:
        _json(rows)
    else:
        render.console().print(render.anomalies_table(rows))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def rejected(ctx: click.Context, as_json: bool) -> None:
    """Inputs that were refused, with the reason and the raw line as received.

    \b
    Example:
      posledger rejected --json
    """
    with _ledger(ctx) as ledger:
        rows = ledger.rejected_inputs()
    if as_json:
        _json(rows)
    else:
        render.console().print(render.rejected_table(rows))


# -- replay ---------------------------------------------------------------------------


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def verify(ctx: click.Context, as_json: bool) -> None:
    """Replay the journal in memory and compare with the stored positions and trades.

    Also checks the invariants: per account, instrument and position side the slots
    sum to the net of the fills applied there; one open trade per slot; hedge-mode
    slots never change sign. Exits 1 if anything disagrees.

    \b
    Example:
      posledger verify
    """
    with _ledger(ctx) as ledger:
        progress = render.Progress(True, "replaying", "journal entries")
        try:
            report = ledger.verify(progress.tick)
        finally:
            progress.done()
    if as_json:
        _json(
            {
                "ok": report.ok,
                "journal_entries": report.journal_entries,
                "rows_compared": report.rows_compared,
                "problems": report.problems,
            }
        )
    elif report.ok:
        click.echo(
            f"ok: {report.journal_entries} journal entries replayed, "
            f"{report.rows_compared} stored rows match, invariants hold"
        )
    else:
        click.echo(f"FAILED: {len(report.problems)} problems")
        for problem in report.problems:
            click.echo(f"  {problem}")
    if not report.ok:
        ctx.exit(EXIT_PROBLEM)


@cli.command()
@click.pass_context
def rebuild(ctx: click.Context) -> None:
    """Rewrite every projection (slots, trades, fills, orders...) from the journal.

    Runs under the database's write lock in one transaction; refuses, changing
    nothing, if the journal does not replay cleanly.
    """
    with _ledger(ctx) as ledger:
        try:
            progress = render.Progress(True, "replaying", "journal entries")
            try:
                report = ledger.rebuild(progress.tick)
            finally:
                progress.done()
        except RebuildError as exc:
            click.echo(f"error: {exc}", err=True)
            for problem in exc.problems[:20]:
                click.echo(f"  {problem}", err=True)
            ctx.exit(EXIT_PROBLEM)
    rows = ", ".join(f"{n} {name}" for name, n in report.rows.items() if n)
    click.echo(f"rebuilt from {report.journal_entries} journal entries: {rows}")


@cli.command(name="migrate")
@click.pass_context
def migrate_command(ctx: click.Context) -> None:
    """Create the schema in an empty database or upgrade an older one."""
    url = resolve_url(ctx.obj["db"])
    try:
        before, after = upgrade_database(url)
    except DatabaseError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(EXIT_DATABASE)
    if before == after:
        click.echo(f"schema is current (revision {after})")
    else:
        click.echo(f"schema upgraded from {before or 'nothing'} to revision {after}")


# -- demo ------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("posledger-demo.db"),
    show_default=True,
    help="SQLite file to (re)create for the demo.",
)
@click.pass_context
def demo(ctx: click.Context, path: Path) -> None:
    """Ingest a bundled trading session into a fresh SQLite database and show the result.

    Two strategies share one MES futures contract on a netting account (one scales in
    and out, one sends an exit too large for its own position: the excess lands on
    EXTERNAL); a Binance-style hedge account holds LONG and SHORT on one symbol; a
    flip; a duplicate fill; a rejected line.
    """
    from .demo import run_demo

    ctx.exit(run_demo(path, render.console()))


def main() -> None:
    try:
        cli(prog_name="posledger")
    except (DatabaseError, sqlite3.Error, SQLAlchemyError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_DATABASE)
