"""``posledger``: the command line, a thin shell over :class:`posledger.Ledger`.

Exit status: 0 success; 1 the command ran but found a problem (rejected lines, failed
verification, books that differ from the broker, a refused order); 2 usage error; 3 the
database could not be used; 4 reconcile refused the snapshot (nothing compared); 5 NATS
could not be used (consume, publish: :mod:`.nats`). Errors the ledger raises
(:class:`posledger.LedgerError`) are mapped to these once, in :func:`main`.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from ..bootstrap import DEFAULT_URL, open_ledger, resolve_url
from ..domain.enums import EXTERNAL
from ..domain.numbers import parse_decimal
from ..errors import (
    DatabaseError,
    InvalidInput,
    LedgerError,
    RebuildError,
    ReconcileError,
    UsageError,
)
from .asof import as_of, as_of_option

if TYPE_CHECKING:  # the command line imports the ledger only when a command runs
    from ..adapters.jsonl import Line
    from ..service.handlers import Outcome
    from ..service.ledger import Ledger
    from .config import Config


def _render() -> Any:
    """The tables and progress lines (Rich is imported only by commands that print them)."""
    from . import render

    return render


_DRIVERS = {"sqlalchemy", "sqlite3", "psycopg", "pymysql", "_sqlite3"}
"""Modules whose errors mean the database could not be used (exit status 3)."""

EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_DATABASE = 3
EXIT_REFUSED = 4
"""reconcile: the snapshot was refused (unreadable, unknown account or instrument, or the
broker's position mode is not the account's); nothing was compared."""
EXIT_INTERRUPTED = 130
"""Stopped by Ctrl-C (SIGINT), as shells report it: 128 + 2."""


def _json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def _config(ctx: click.Context) -> Config:
    """The configuration file's settings (read once, when a command first needs them)."""
    root = ctx.find_root()
    root.ensure_object(dict)
    if "config" not in root.obj:
        from .config import load_config

        root.obj["config"] = load_config()
    config: Config = root.obj["config"]
    return config


def database_url(ctx: click.Context) -> str:
    """The database: --db, else $POSLEDGER_DB, else the configuration file's ``db``, else
    sqlite:///posledger.db (docs/cli.md#which-database)."""
    given = ctx.find_root().obj.get("db") or os.environ.get("POSLEDGER_DB")
    return resolve_url(given or _config(ctx).db)


@contextmanager
def _ledger(ctx: click.Context, *, create: bool = False) -> Iterator[Ledger]:
    """The ledger ``--db`` names. Only ``ingest`` (and ``migrate``, ``demo``) ``create`` a
    database; every other command refuses one that does not exist, creating nothing (a
    typo must not look like an empty ledger). None takes an in-memory database, which
    would keep nothing once the command ends."""
    ledger = open_ledger(database_url(ctx), create=create, persistent=True)
    try:
        yield ledger
    finally:
        ledger.close()


@contextmanager
def _long_run() -> Iterator[None]:
    """For commands that apply or replay many inputs: what start-up made is frozen out of
    the garbage collector's reach, and the young generation is collected less often
    (the ledger's values hold no reference cycles to collect)."""
    gc.freeze()
    threshold = gc.get_threshold()
    gc.set_threshold(50_000, threshold[1], threshold[2])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


def _filters(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--account", help="Only this account."),
            click.option("--instrument", help="Only this instrument."),
            click.option("--strategy", help="Only this strategy (EXTERNAL for unowned fills)."),
            click.option(
                "--mode",
                type=click.Choice(["LIVE", "SIM", "PAPER"], case_sensitive=False),
                help="Only accounts of this mode (LIVE, SIM and PAPER live side by side).",
            ),
            click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table."),
        ]
    ):
        func = option(func)
    return func


def _where(func: Callable[..., Any]) -> Callable[..., Any]:
    """--account, --instrument and --strategy filters."""
    for option in reversed(
        [
            click.option("--account", help="Only this account."),
            click.option("--instrument", help="Only this instrument."),
            click.option("--strategy", help="Only this strategy."),
        ]
    ):
        func = option(func)
    return func


def _keep_listing_option(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta.setdefault("posledger.listing", {})[param.name] = value
    return value


def _time_bound(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """``--since``/``--until``: an ISO 8601 time with an offset, or a date (its UTC
    midnight)."""
    from ..domain.timestamps import parse_ts

    if value is None:
        return None
    text = value.strip()
    if len(text) == 10 and text[4:5] == "-" and text[7:8] == "-":
        text += "T00:00:00Z"
    try:
        return parse_ts(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _listing(name: str, *, times: str | None = None) -> Callable[..., Any]:
    """--limit, --since/--until (when the listing has a time: ``times`` says which),
    --sort, --jsonl, --csv and --wide for the listing ``name`` (docs/cli.md#listings).
    The values go to ``ctx.meta``, read back by :func:`_window` and :func:`_format`."""
    from ..service.queries import LISTINGS

    fields = ", ".join(sorted(LISTINGS[name].sorts))
    keep: dict[str, Any] = {"expose_value": False, "callback": _keep_listing_option}
    options = [
        click.option(
            "--limit", type=click.IntRange(min=1), help="At most N rows.", metavar="N", **keep
        ),
    ]
    if times is not None:
        options += [
            click.option(
                "--since",
                metavar="TIME",
                help=f"Only {times} at or after TIME (ISO 8601 with an offset, or a "
                "date: its midnight UTC).",
                callback=lambda c, p, v: _keep_listing_option(c, p, _time_bound(c, p, v)),
                expose_value=False,
            ),
            click.option(
                "--until",
                metavar="TIME",
                help=f"Only {times} before TIME.",
                callback=lambda c, p, v: _keep_listing_option(c, p, _time_bound(c, p, v)),
                expose_value=False,
            ),
        ]
    options += [
        click.option(
            "--sort",
            metavar="FIELD",
            multiple=True,
            help=f"Order by FIELD (-FIELD: descending; repeatable or comma-separated): {fields}.",
            **keep,
        ),
        click.option("--jsonl", is_flag=True, help="Print JSON Lines: one object a line.", **keep),
        click.option("--csv", is_flag=True, help="Print CSV with a header line.", **keep),
        click.option("--wide", is_flag=True, default=None, help="Show every column.", **keep),
    ]

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


_wide_option: Callable[[Callable[..., Any]], Callable[..., Any]] = click.option(
    "--wide",
    is_flag=True,
    default=None,
    expose_value=False,
    callback=_keep_listing_option,
    help="Show every column, however wide the table gets.",
)


def _show(ctx: click.Context, table: Callable[..., Any], *args: Any) -> None:
    """Print the table ``table(*args, wide=...)`` makes, as wide as --wide asks."""
    wide = _wide(ctx)
    _render().console(wide=wide).print(table(*args, wide=wide))


def _window(ctx: click.Context) -> dict[str, Any]:
    """The listing options given to the command, as :meth:`Ledger.listing` takes them."""
    given = ctx.meta.get("posledger.listing", {})
    return {
        "since": given.get("since"),
        "until": given.get("until"),
        "sort": tuple(given.get("sort") or ()),
        "limit": given.get("limit"),
    }


def _format(ctx: click.Context, as_json: bool) -> str:
    """table, json, jsonl or csv: what the command was asked to print."""
    given = ctx.meta.get("posledger.listing", {})
    chosen = [
        name
        for name, on in (
            ("json", as_json),
            ("jsonl", given.get("jsonl")),
            ("csv", given.get("csv")),
        )
        if on
    ]
    if len(chosen) > 1:
        raise click.UsageError(f"--{chosen[0]} and --{chosen[1]} exclude each other: give one")
    return chosen[0] if chosen else "table"


def _wide(ctx: click.Context) -> bool:
    given = ctx.meta.get("posledger.listing", {}).get("wide")
    if given is not None:
        return bool(given)
    return _config(ctx).wide


def _print_listing(
    ctx: click.Context,
    rows: Iterator[dict[str, Any]],
    fmt: str,
    table: Callable[..., Any],
    *,
    csv_drop: tuple[str, ...] = (),
) -> None:
    """Stream ``rows`` in ``fmt``, or show them as the ``table`` a person reads."""
    from .output import write_rows

    if fmt == "table":
        render = _render()
        wide = _wide(ctx)
        render.console(wide=wide).print(table(list(rows), wide=wide))
        return
    write_rows(rows, fmt, csv_drop=csv_drop)


def exit_status(exc: LedgerError) -> int:
    """The exit status of a command the ledger refused or could not carry out."""
    if isinstance(exc, ReconcileError):
        return EXIT_REFUSED
    if isinstance(exc, DatabaseError):
        return EXIT_DATABASE
    if isinstance(exc, UsageError | InvalidInput):
        return EXIT_USAGE
    return EXIT_PROBLEM


def _details(exc: LedgerError) -> list[str]:
    if isinstance(exc, ReconcileError):
        return exc.reasons[1:]
    if isinstance(exc, RebuildError):
        return exc.problems[:20]
    return []


class _Commands(click.Group):
    """The command group: what goes wrong in any command becomes an exit status here."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LedgerError as exc:
            click.echo(f"error: {exc}", err=True)
            for detail in _details(exc):
                click.echo(f"  {detail}", err=True)
            ctx.exit(exit_status(exc))
        except Exception as exc:
            if type(exc).__module__.partition(".")[0] not in _DRIVERS:
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_DATABASE)


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--db",
    metavar="URL",
    help=f"Database URL. Default: $POSLEDGER_DB, else db in posledger.toml, else {DEFAULT_URL}.",
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
    if outcome.status == "applied" and outcome.seq is None:
        return f"line {line.number}: applied {what} (in memory: see docs/accounting.md, Marks)"
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
    fill, mark, transfer, halt, resume (docs/format.md). Orders are checked pre-trade: a
    refused one is reported as rejected, and kept, so that its fills still belong to its
    strategy. Amounts are decimal strings, times ISO 8601 with an offset.
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

    \b
    Example:
      posledger --db sqlite:///my.db ingest session.jsonl --batch-size 500
    """
    from ..service.ledger import IngestReport
    from .reading import InputFile

    source = _source_name(file)
    reader = InputFile(file)
    problem = reader.sniff()
    if problem is not None:
        click.echo(f"error: {source}: {problem}", err=True)
        ctx.exit(EXIT_USAGE)
    progress = _render().Progress(not quiet, measure=reader.size)
    so_far = IngestReport()
    """What is committed, batch by batch: the summary if it is interrupted."""

    def on_commit(batch: list[tuple[Line, Outcome]]) -> None:
        for line, outcome in batch:
            so_far.count(outcome)
            if outcome.status == "rejected":
                so_far.rejections.append((line.number, outcome.reason or ""))
        if verbose:
            for line, outcome in batch:
                click.echo(_say_outcome(line, outcome))
            sys.stdout.flush()
        progress.tick(so_far.lines, reader.position)

    report = so_far
    with _ledger(ctx, create=True) as ledger, reader:
        try:
            with _long_run():
                report = ledger.ingest(
                    reader, source=source, batch_size=batch_size, on_commit=on_commit
                )
        except KeyboardInterrupt:
            reader.interrupted = True
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
                "interrupted": reader.interrupted,
            }
        )
    else:
        click.echo(_render().summary_text(report, source, interrupted=reader.interrupted))
    if reader.interrupted:
        ctx.exit(EXIT_INTERRUPTED)
    if not report.ok:
        ctx.exit(EXIT_PROBLEM)


# -- positions and trades ------------------------------------------------------------


@cli.command()
@click.option("--all", "include_flat", is_flag=True, help="Include flat slots.")
@_filters
@_listing("positions")
@as_of_option
@click.pass_context
def positions(
    ctx: click.Context,
    include_flat: bool,
    account: str | None,
    instrument: str | None,
    strategy: str | None,
    mode: str | None,
    as_json: bool,
    as_of_time: str | None,
) -> None:
    """Each strategy's position per account, instrument and position side (its slot).

    Open slots only unless --all. Realized P&L is that of the slot's current trade (or
    its last one when flat), net of commissions in the P&L currency; unrealized P&L is
    valued at the instrument's latest mark.

    \b
    Example:
      posledger positions --strategy mes-orb-01 --json
      posledger positions --as-of 2026-11-20T15:00:00Z
    """
    fmt = _format(ctx, as_json)
    with _ledger(ctx) as now, as_of(now, as_of_time, history=False) as ledger:
        rows = ledger.listing(
            "positions",
            include_flat=include_flat,
            account=account,
            instrument=instrument,
            strategy=strategy,
            mode=mode,
            **_window(ctx),
        )
        _print_listing(ctx, rows, fmt, _render().positions_table)


@cli.command()
@click.option("--open", "only_open", is_flag=True, help="Only open trades.")
@click.option("--closed", "only_closed", is_flag=True, help="Only closed trades.")
@_filters
@_listing("trades", times="trades opened")
@as_of_option
@click.pass_context
def trades(
    ctx: click.Context,
    only_open: bool,
    only_closed: bool,
    account: str | None,
    instrument: str | None,
    strategy: str | None,
    mode: str | None,
    as_json: bool,
    as_of_time: str | None,
) -> None:
    """Round-trip trades (flat to flat) in the order they were opened.

    JSON includes every fill of a trade with its role (open, increase, reduce, close,
    flip), gross and net realized P&L, return, duration, close reason and MAE/MFE.

    \b
    Example:
      posledger trades --closed --json
      posledger trades --as-of 2026-11-20T15:00:00Z --json
    """
    if only_open and only_closed:
        raise click.UsageError("--open and --closed exclude each other; give one or neither")
    status = "open" if only_open else "closed" if only_closed else None
    fmt = _format(ctx, as_json)
    with _ledger(ctx) as now, as_of(now, as_of_time) as ledger:
        rows = ledger.listing(
            "trades",
            account=account,
            instrument=instrument,
            strategy=strategy,
            status=status,
            with_fills=fmt in ("json", "jsonl"),
            mode=mode,
            **_window(ctx),
        )
        _print_listing(ctx, rows, fmt, _render().trades_table)


@cli.command()
@_filters
@_listing("anomalies")
@click.pass_context
def anomalies(
    ctx: click.Context,
    account: str | None,
    instrument: str | None,
    strategy: str | None,
    mode: str | None,
    as_json: bool,
) -> None:
    """Fills the ledger booked to EXTERNAL because they did not fit their strategy's slot.

    An exit order larger than its strategy's position (it took another strategy's
    quantity), or a hedge-mode fill that would take a LONG or SHORT slot past zero.

    \b
    Example:
      posledger anomalies --json
    """
    fmt = _format(ctx, as_json)
    with _ledger(ctx) as ledger:
        rows = ledger.listing(
            "anomalies",
            account=account,
            instrument=instrument,
            strategy=strategy,
            mode=mode,
            **_window(ctx),
        )
        _print_listing(ctx, rows, fmt, _render().anomalies_table)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_listing("rejected", times="inputs received")
@click.pass_context
def rejected(ctx: click.Context, as_json: bool) -> None:
    """Inputs that were refused, with the reason and the raw line as received.

    \b
    Example:
      posledger rejected --json
    """
    fmt = _format(ctx, as_json)
    with _ledger(ctx) as ledger:
        rows = ledger.listing("rejected", **_window(ctx))
        _print_listing(ctx, rows, fmt, _render().rejected_table)


# -- ownership and the broker check ---------------------------------------------------


def _outcome_exit(ctx: click.Context, outcome: Outcome, as_json: bool) -> None:
    if as_json:
        _json(
            {
                "status": outcome.status,
                "kind": outcome.kind,
                "key": outcome.key,
                "reason": outcome.reason,
                "seq": outcome.seq,
            }
        )
    elif outcome.status == "applied" and outcome.seq is None:
        click.echo(f"applied {outcome.kind} {outcome.key}")
    elif outcome.status == "applied":
        click.echo(f"applied {outcome.kind} {outcome.key} (seq {outcome.seq})")
    else:
        click.echo(f"{outcome.status} {outcome.kind} {outcome.key}: {outcome.reason}")
    if outcome.status == "rejected":
        ctx.exit(EXIT_PROBLEM)


@cli.command()
@click.argument("snapshot", type=click.File("rb"))
@click.option(
    "--fills",
    "fills_file",
    type=click.File("rb"),
    help="The broker's fill history (JSONL): fills the ledger has not seen are applied first.",
)
@click.option(
    "--account",
    "accounts",
    multiple=True,
    help="An account the snapshot covers even if it lists nothing for it (broker flat). "
    "Repeatable.",
)
@click.option(
    "--policy",
    type=click.Choice(["report", "adopt", "halt"], case_sensitive=False),
    help="For this run instead of each account's reconcile_policy: report (change "
    "nothing), adopt (book differences to EXTERNAL), halt (lock the instrument).",
)
@click.option(
    "--price-tolerance",
    default="0.001",
    show_default=True,
    help="Relative difference of average prices still counted as agreement.",
)
@click.option("--run", "run", help="Name of this run (default: a new id); must be new.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--quiet", is_flag=True, help="No progress output on stderr.")
@_wide_option
@click.pass_context
def reconcile(
    ctx: click.Context,
    snapshot: IO[bytes],
    fills_file: IO[bytes] | None,
    accounts: tuple[str, ...],
    policy: str | None,
    price_tolerance: str,
    run: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Compare the ledger with the broker's positions (SNAPSHOT: broker_position lines).

    Per account, instrument and position side, the sum of every strategy's slot
    (EXTERNAL included) is compared with what the broker holds; what the ledger holds on
    an account the snapshot covers and the snapshot does not list, the broker holds none
    of. Differences: missing_fills (ledger behind the broker), stale_position (ledger
    open, broker flat), unknown_position (broker holds what the ledger never saw),
    quantity_mismatch, avg_price_drift (beyond --price-tolerance).

    With --fills, the broker's fills the ledger has not seen are applied first (each
    exec_id once; attributed as usual), then what still differs is reported. Every
    comparison is journaled. A strategy's slot is never changed: the adopt policy books
    differences to EXTERNAL, the halt policy refuses new entries on the instrument until
    `posledger resume`.

    Exits 0 when the books agree, 1 when they differ, 4 when the snapshot is refused
    (unreadable, unknown account, position mode not the account's): nothing compared.

    \b
    Example line:
      {"type":"broker_position","account":"BIN-1","instrument":"BTCUSDT-PERP",
       "position_side":"LONG","quantity":"0.010","avg_price":"64210.5"}

    \b
    Example:
      posledger reconcile broker_positions.jsonl --fills broker_fills.jsonl --policy adopt
    """
    try:
        tolerance = parse_decimal(price_tolerance)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--price-tolerance") from None
    if tolerance < 0:
        raise click.BadParameter("must not be negative", param_hint="--price-tolerance")
    progress = _render().Progress(enabled=not quiet and fills_file is not None)
    done = 0

    def on_commit(batch: list[tuple[Line, Outcome]]) -> None:
        nonlocal done
        done += len(batch)
        progress.tick(done)

    source = _source_name(snapshot)
    with _ledger(ctx) as ledger:
        try:
            report = ledger.reconcile(
                snapshot,
                fills=fills_file,
                accounts=accounts,
                policy=policy,
                price_tolerance=tolerance,
                source=source,
                fills_source=None if fills_file is None else _source_name(fills_file),
                on_commit=on_commit,
                run=run,
            )
        finally:
            progress.done()
    if as_json:
        _json(report.as_dict())
    else:
        if report.history is not None:
            click.echo(_render().summary_text(report.history, "fill history"))
        title = f"Reconciliation {report.run}"
        _show(ctx, _render().reconcile_table, report.checks, title)
        differ = len(report.differences)
        if report.agreed:
            click.echo(f"books agree: {len(report.checks)} positions compared")
        else:
            click.echo(f"books DIFFER: {differ} of {len(report.checks)} positions")
    if not report.agreed:
        ctx.exit(EXIT_PROBLEM)


def _source_name(file: IO[bytes]) -> str:
    name = getattr(file, "name", "<stdin>")
    return name if isinstance(name, str) and name != "-" else "<stdin>"


@cli.command()
@click.option("--run", help="One run by its id (default: the latest --last runs).")
@click.option("--last", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--account", help="Only this account.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_wide_option
@click.pass_context
def reconciliations(
    ctx: click.Context, run: str | None, last: int, account: str | None, as_json: bool
) -> None:
    """Past reconciliation runs, as they were journaled: newest first.

    \b
    Example:
      posledger reconciliations --last 3 --account NET-1
    """
    with _ledger(ctx) as ledger:
        ledger.check_names(account=account)
        rows = ledger.reconciliations(run=run, account=account, last=last)
    if as_json:
        _json(rows)
        return
    runs: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        runs.setdefault(row["run"], []).append(row)
    if not runs:
        click.echo("no reconciliation recorded")
    for name, checks in runs.items():
        title = f"Reconciliation {name} at {checks[0]['recorded_at']}"
        _show(ctx, _render().reconcile_table, checks, title)


@cli.command()
@click.option("--account", required=True, help="The account.")
@click.option("--instrument", required=True, help="The instrument.")
@click.option("--from", "from_strategy", required=True, help=f"Giving strategy ({EXTERNAL} ok).")
@click.option("--to", "to_strategy", required=True, help=f"Receiving strategy ({EXTERNAL} ok).")
@click.option("--quantity", required=True, help="How much (positive; the giver's direction).")
@click.option("--position-side", type=click.Choice(["BOTH", "LONG", "SHORT"], case_sensitive=False))
@click.option("--price", help="Transfer price (default: the giving slot's average entry).")
@click.option("--id", "transfer_id", help="An id: the same transfer sent again applies once.")
@click.option("--ts", help="When it happened (ISO 8601 with offset; default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
def transfer(
    ctx: click.Context,
    account: str,
    instrument: str,
    from_strategy: str,
    to_strategy: str,
    quantity: str,
    position_side: str | None,
    price: str | None,
    transfer_id: str | None,
    ts: str | None,
    as_json: bool,
) -> None:
    """Move a position (or part of it) from one strategy's slot to another's.

    The only way external quantity becomes a strategy's: journaled, at the giving slot's
    average entry price (so the receiver's P&L starts from there), closing and opening
    trades with close_reason `transfer`. The giver must hold at least --quantity.

    \b
    Example:
      posledger transfer --account A --instrument MESH6.CME --from EXTERNAL \\
          --to mes-orb-01 --quantity 1
    """
    fields: dict[str, Any] = {
        "account": account,
        "instrument": instrument,
        "from_strategy": from_strategy,
        "to_strategy": to_strategy,
        "quantity": quantity,
        "position_side": position_side,
        "price": price,
        "transfer_id": transfer_id,
        "ts": ts,
    }
    with _ledger(ctx) as ledger:
        outcome = ledger.transfer(**{k: v for k, v in fields.items() if v is not None})
    _outcome_exit(ctx, outcome, as_json)


@cli.command(name="check-order")
@click.argument("file", type=click.File("rb"))
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
@click.pass_context
def check_order(ctx: click.Context, file: IO[bytes], as_json: bool) -> None:
    """Pre-trade check: would this order (FILE: one JSON order object, or -) be allowed?

    Registers nothing. Refused: an exit larger than its strategy's own position (what
    stops one strategy from closing another's) or one that would add to it; an entry
    beyond the strategy's max_open_slots or on an instrument halted on the account; a
    hedge-account order without position_side. Exits 0 if allowed, 1 if refused.

    \b
    Example:
      posledger --db sqlite:///my.db check-order exit_order.json
    """
    text = file.read().decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not a JSON object: {exc}", param_hint="FILE") from None
    if not isinstance(data, dict):
        raise click.BadParameter("not a JSON object", param_hint="FILE")
    if "type" not in data:  # the record type may be left out: it can only be an order
        text = '{"type":"order"' + ("," if data else "") + text[1:]
    with _ledger(ctx) as ledger:
        verdict = ledger.check_order_line(text)
    if as_json:
        _json({"allowed": verdict.allowed, "reasons": verdict.reasons})
    elif verdict.allowed:
        click.echo("allowed")
    else:
        click.echo("refused:")
        for reason in verdict.reasons:
            click.echo(f"  {reason}")
    if not verdict.allowed:
        ctx.exit(EXIT_PROBLEM)


@cli.command()
@click.argument("instrument")
@click.argument("price")
@click.option("--ts", help="When the price was seen (ISO 8601 with an offset). Default: now.")
@click.option("--high", help="The highest price seen since the previous mark.")
@click.option("--low", help="The lowest price seen since the previous mark.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
def mark(
    ctx: click.Context,
    instrument: str,
    price: str,
    ts: str | None,
    high: str | None,
    low: str | None,
    as_json: bool,
) -> None:
    """Record a price seen for INSTRUMENT: unrealized P&L and MAE/MFE.

    It updates the unrealized P&L of every open slot on the instrument and the best and
    worst prices of each open trade (docs/accounting.md, Marks). A price feed sends
    `mark` lines to `ingest` instead, or calls `Ledger.apply_marks`.

    \b
    Example:
      posledger mark MESH6.CME 6871.25
      posledger mark MESH6.CME 6871.25 --ts 2026-03-02T15:00:00Z --high 6874 --low 6866.5
    """
    fields = {"instrument": instrument, "price": price}
    for name, value in (("ts", ts), ("high", high), ("low", low)):
        if value is not None:
            fields[name] = value
    from ..domain.marks import MarkPolicy

    with _ledger(ctx) as ledger:
        ledger.mark_policy = MarkPolicy(persist_ms=0, extreme_ms=0)  # nothing kept in memory
        outcome = ledger.apply_mark(**fields)
    _outcome_exit(ctx, outcome, as_json)


@cli.command()
@click.option("--account", required=True, help="The account.")
@click.option("--instrument", required=True, help="The instrument.")
@click.option("--reason", help="Why (shown to whoever is refused).")
@click.pass_context
def halt(ctx: click.Context, account: str, instrument: str, reason: str | None) -> None:
    """Halt an instrument on an account: entry orders are refused until `resume`.

    \b
    Example:
      posledger halt --account NET-1 --instrument MESH6.CME --reason "books differ"
    """
    fields = {"account": account, "instrument": instrument}
    if reason:
        fields["reason"] = reason
    with _ledger(ctx) as ledger:
        outcome = ledger.halt(**fields)
    _outcome_exit(ctx, outcome, False)


@cli.command()
@click.option("--account", required=True, help="The account.")
@click.option("--instrument", required=True, help="The instrument.")
@click.pass_context
def resume(ctx: click.Context, account: str, instrument: str) -> None:
    """Lift a halt once the difference that caused it is resolved.

    \b
    Example:
      posledger resume --account NET-1 --instrument MESH6.CME
    """
    with _ledger(ctx) as ledger:
        outcome = ledger.resume(account=account, instrument=instrument)
    _outcome_exit(ctx, outcome, False)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_wide_option
@click.pass_context
def halts(ctx: click.Context, as_json: bool) -> None:
    """Instruments halted on an account, since when and why.

    \b
    Example:
      posledger halts --json
    """
    with _ledger(ctx) as ledger:
        rows = ledger.halts()
    if as_json:
        _json(rows)
    else:
        _show(ctx, _render().halts_table, rows)


@cli.command()
@click.option("--account", help="Only this account.")
@click.option("--instrument", help="Only this instrument.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_listing("transfers", times="transfers dated")
@click.pass_context
def transfers(
    ctx: click.Context, account: str | None, instrument: str | None, as_json: bool
) -> None:
    """Every transfer between strategies (by hand, or orphans adopted at reconciliation).

    \b
    Example:
      posledger transfers --account NET-1 --json
    """
    fmt = _format(ctx, as_json)
    with _ledger(ctx) as ledger:
        rows = ledger.listing("transfers", account=account, instrument=instrument, **_window(ctx))
        _print_listing(ctx, rows, fmt, _render().transfers_table)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--clear-damage",
    is_flag=True,
    help="Lift the damage mark first (after a repair); found again if still damaged.",
)
@click.pass_context
def doctor(ctx: click.Context, as_json: bool, clear_damage: bool) -> None:
    """Integrity report: what is wrong in the database, and what to do about it.

    Errors: damaged storage (SQLite's integrity check; it also stops every writer until
    `--clear-damage`), duplicate open trades, slots whose quantity disagrees with their
    fills, journal gaps, fills whose order belongs to another strategy, orders filled
    beyond their quantity, broken invariants. Warnings: EXTERNAL positions. Notes:
    instruments several strategies trade on one account (allowed). Exits 1 if there is
    an error.

    \b
    Example:
      posledger --db sqlite:///my.db doctor --json
    """
    with _ledger(ctx) as ledger:
        report = ledger.doctor(clear_damage=clear_damage)
    data = report.as_dict()
    if as_json:
        _json(data)
    else:
        click.echo(_render().doctor_text(data["findings"], data["checks_run"]))
    if not report.ok:
        ctx.exit(EXIT_PROBLEM)


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
        progress = _render().Progress(True, "replaying", "journal entries")
        try:
            with _long_run():
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

    \b
    Example:
      posledger --db sqlite:///my.db rebuild
    """
    with _ledger(ctx) as ledger:
        progress = _render().Progress(True, "replaying", "journal entries")
        try:
            with _long_run():
                report = ledger.rebuild(progress.tick)
        finally:
            progress.done()
    rows = ", ".join(f"{n} {name}" for name, n in report.rows.items() if n)
    click.echo(f"rebuilt from {report.journal_entries} journal entries: {rows}")


@cli.command(name="migrate")
@click.pass_context
def migrate_command(ctx: click.Context) -> None:
    """Create the schema in an empty database or upgrade an older one.

    \b
    Example:
      posledger --db postgresql+psycopg://ledger@db.internal/books migrate
    """
    from ..store.database import upgrade_database

    before, after = upgrade_database(database_url(ctx), persistent=True)
    if before == after:
        click.echo(f"schema is current (revision {after})")
    else:
        click.echo(f"schema upgraded from {before or 'nothing'} to revision {after}")


# -- the outbox --------------------------------------------------------------------------


@cli.command()
@click.option("--claim", "worker", metavar="WORKER", help="Claim them for this worker.")
@click.option(
    "--limit", default=100, show_default=True, type=click.IntRange(min=1), help="At most."
)
@click.option(
    "--status",
    type=click.Choice(["pending", "claimed", "acked", "failed", "all"], case_sensitive=False),
    default="pending",
    show_default=True,
    help="Which commands to list (without --claim).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_wide_option
@click.pass_context
def commands(
    ctx: click.Context, worker: str | None, limit: int, status: str, as_json: bool
) -> None:
    """Commands for whoever executes orders (the outbox), oldest first.

    Each is written with the input that caused it (place, amend or cancel an order)
    and stays pending until a worker claims it. --claim WORKER hands the worker the
    pending commands, and those whose claim ran out, for 30 s; then `ack` or `fail`
    settles each. The command id is the client order id to send: a retry is harmless.

    \b
    Example:
      posledger commands --json --claim worker-1 --limit 100
    """
    with _ledger(ctx) as ledger:
        rows = ledger.commands(
            claim=worker, limit=limit, status=None if status == "all" else status
        )
    if as_json:
        _json(rows)
    else:
        _show(ctx, _render().commands_table, rows)


@cli.command()
@click.argument("command_id")
@click.option("--broker-order-id", help="The broker's id of the order, if it gave one.")
@click.pass_context
def ack(ctx: click.Context, command_id: str, broker_order_id: str | None) -> None:
    """The outbox command COMMAND_ID was carried out. Acking it again is harmless.

    \b
    Example:
      posledger ack orb-tp-17 --broker-order-id 88123
    """
    with _ledger(ctx) as ledger:
        row = ledger.ack(command_id, broker_order_id=broker_order_id)
    click.echo(f"acked {row['kind']} {row['command_id']}")


@cli.command()
@click.argument("command_id")
@click.option("--reason", required=True, help="Why it could not be carried out.")
@click.pass_context
def fail(ctx: click.Context, command_id: str, reason: str) -> None:
    """The outbox command COMMAND_ID could not be carried out (final).

    \b
    Example:
      posledger fail orb-tp-17 --reason "rejected: reduce-only order would increase"
    """
    with _ledger(ctx) as ledger:
        row = ledger.fail(command_id, reason=reason)
    click.echo(f"failed {row['kind']} {row['command_id']}: {reason}")


# -- brackets and exits -------------------------------------------------------------------


@cli.group()
def bracket() -> None:
    """Take-profit and stop-loss legs kept at a strategy's own position size.

    A bracket belongs to one strategy's slot; posledger places its legs and keeps them
    sized to that slot (amend on a scale-in or partial exit, cancel when it goes flat or
    flips, cancel the sibling when a leg fills) through outbox commands (docs/brackets.md).

    \b
    Example:
      posledger bracket set --account NET-1 --instrument MESH6.CME --strategy orb \\
          --take-profit 6875.00 --stop-loss 6838.25
    """


def _slot_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--account", required=True, help="The account."),
            click.option("--instrument", required=True, help="The instrument."),
            click.option("--strategy", required=True, help="The strategy whose slot it is."),
            click.option(
                "--position-side",
                type=click.Choice(["BOTH", "LONG", "SHORT"], case_sensitive=False),
                help="LONG or SHORT on a hedge account (default BOTH: netting).",
            ),
        ]
    ):
        func = option(func)
    return func


@bracket.command(name="set")
@_slot_options
@click.option("--take-profit", metavar="PRICE", help="A limit order at PRICE.")
@click.option("--stop-loss", metavar="PRICE", help="A stop order triggered at PRICE.")
@click.option(
    "--stop-limit",
    metavar="PRICE",
    help="Make the stop-loss a stop-limit order with this limit price.",
)
@click.option("--id", "bracket_id", help="The bracket's id (default: one is made).")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
def bracket_set(
    ctx: click.Context,
    account: str,
    instrument: str,
    strategy: str,
    position_side: str | None,
    take_profit: str | None,
    stop_loss: str | None,
    stop_limit: str | None,
    bracket_id: str | None,
    as_json: bool,
) -> None:
    """Attach a take-profit and/or stop-loss to a strategy's open position.

    It replaces the slot's bracket if it has one (the old legs are cancelled first; the
    new ones are placed once those cancels are acked). The legs go out as `place`
    commands: see `posledger commands`.

    \b
    Example:
      posledger bracket set --account NET-1 --instrument MESH6.CME --strategy orb \\
          --take-profit 6875.00 --stop-loss 6838.25
    """
    if take_profit is None and stop_loss is None:
        raise click.UsageError("give --take-profit and/or --stop-loss")
    if stop_limit is not None and stop_loss is None:
        raise click.UsageError("--stop-limit goes with --stop-loss")
    fields: dict[str, Any] = {
        "account": account,
        "instrument": instrument,
        "strategy": strategy,
        "position_side": position_side,
    }
    if take_profit is not None:
        fields["take_profit"] = take_profit
    if stop_loss is not None:
        fields["stop_loss"] = (
            stop_loss
            if stop_limit is None
            else {"order_type": "stop_limit", "stop_price": stop_loss, "price": stop_limit}
        )
    if bracket_id is not None:
        fields["bracket_id"] = bracket_id
    _set_bracket(ctx, fields, as_json)


def _set_bracket(ctx: click.Context, fields: dict[str, Any], as_json: bool) -> None:
    """Apply a ``bracket`` input (without legs: remove the slot's bracket)."""
    given = {name: value for name, value in fields.items() if value is not None}
    with _ledger(ctx) as ledger:
        outcome = ledger.set_bracket(**given)
    _outcome_exit(ctx, outcome, as_json)


@bracket.command(name="clear")
@_slot_options
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
def bracket_clear(
    ctx: click.Context,
    account: str,
    instrument: str,
    strategy: str,
    position_side: str | None,
    as_json: bool,
) -> None:
    """Remove a strategy's bracket: its legs are cancelled.

    \b
    Example:
      posledger bracket clear --account NET-1 --instrument MESH6.CME --strategy orb
    """
    slot = {"account": account, "instrument": instrument, "strategy": strategy}
    _set_bracket(ctx, {**slot, "position_side": position_side}, as_json)


@bracket.command(name="list")
@_where
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_wide_option
@click.pass_context
def bracket_list(
    ctx: click.Context,
    account: str | None,
    instrument: str | None,
    strategy: str | None,
    as_json: bool,
) -> None:
    """Every slot's bracket, and where each leg stands with the broker.

    \b
    Example:
      posledger bracket list --strategy orb --json
    """
    with _ledger(ctx) as ledger:
        ledger.check_names(account=account, instrument=instrument, strategy=strategy)
        rows = ledger.brackets(account=account, instrument=instrument, strategy=strategy)
    if as_json:
        _json(rows)
    else:
        _show(ctx, _render().brackets_table, rows)


@cli.command()
@click.option(
    "--policy",
    type=click.Choice(["bracket", "flatten"], case_sensitive=False),
    default="bracket",
    show_default=True,
    help="bracket: a take-profit and a stop-loss at the strategy's default distances; "
    "flatten: a market exit of the whole position.",
)
@click.option("--at", metavar="HH:MM", help="flatten: when, a local time of day (default now).")
@click.option("--tz", default="UTC", show_default=True, help="The time zone of --at.")
@click.option("--watched", is_flag=True, help="List the exit orders posledger watches instead.")
@_where
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_wide_option
@click.pass_context
def exits(
    ctx: click.Context,
    policy: str,
    at: str | None,
    tz: str,
    watched: bool,
    account: str | None,
    instrument: str | None,
    strategy: str | None,
    as_json: bool,
) -> None:
    """The exit orders each open position lacks: what to place so that none is left
    unprotected.

    Read from the database alone. An open position is covered by exit orders posledger
    watches (its bracket legs, and exit orders the strategy registered) that are placing,
    live or waiting. Exits 0 whether or not something is missing; an empty list means
    every position is covered.

    \b
    Examples:
      posledger exits --policy bracket --json
      posledger exits --policy flatten --at 09:15 --tz Asia/Kolkata
    """
    where = {"account": account, "instrument": instrument, "strategy": strategy}
    with _ledger(ctx) as ledger:
        ledger.check_names(**where)
        if watched:
            rows = ledger.exit_orders(**where)
        else:
            rows = ledger.missing_exits(policy=policy, at=at, tz=tz, **where)
    if as_json:
        _json(rows)
    elif watched:
        _show(ctx, _render().watched_table, rows)
    else:
        _show(ctx, _render().missing_exits_table, rows, policy)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the outcomes as JSON.")
@click.pass_context
def sweep(ctx: click.Context, as_json: bool) -> None:
    """Look at every exit order again: orphans and stuck orders get their command again.

    An exit order whose position went flat, or that is larger than its position, is
    cancelled or amended as soon as it happens; one whose cancel or amend the broker
    refused is stuck (an anomaly) until a sweep sends it again. Run it at start-up.

    \b
    Example:
      posledger sweep
    """
    with _ledger(ctx) as ledger:
        outcomes = ledger.sweep()
    if as_json:
        _json(
            [
                {"status": o.status, "instrument": o.key, "seq": o.seq, "reason": o.reason}
                for o in outcomes
            ]
        )
        return
    for outcome in outcomes:
        if outcome.status == "applied":
            sent = len((outcome.effects or {}).get("commands", []))
            click.echo(f"{outcome.key}: {sent} command(s) sent (seq {outcome.seq})")
        else:
            click.echo(f"{outcome.key}: {outcome.reason}")
    if not outcomes:
        click.echo("no exit orders or brackets to look at")


# -- the paper venue -----------------------------------------------------------------------


@cli.group()
def paper() -> None:
    """A simulated venue that carries out the ledger's commands against a price stream.

    It talks to the ledger only as a broker adapter does: it claims outbox commands,
    fills them against prices (ticks or OHLC bars; within a bar a stop is taken before a
    target), sends its fills back and acks each command. Its own order book is kept in
    the database, so a run killed at any moment goes on where it stopped.

    \b
    Example:
      posledger paper run --prices bars.csv --db sqlite:///paper.db
    """


@paper.command(name="run")
@click.option(
    "--prices",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Price events: CSV or JSONL with ts, instrument and price (ticks) or "
    "open, high, low, close (bars).",
)
@click.option("--instrument", help="The instrument of every price (when the file has none).")
@click.option(
    "--account",
    "accounts",
    multiple=True,
    help="Serve this account's commands (repeatable; default: every PAPER account).",
)
@click.option("--venue", default="paper", show_default=True, help="The venue's name (its book).")
@click.option("--worker", default="paper", show_default=True, help="The worker id it claims as.")
@click.option(
    "--slippage", default="0", show_default=True, help="Price slippage of market and stop fills."
)
@click.option("--commission-per-unit", default="0", show_default=True, help="Commission per unit.")
@click.option(
    "--commission-rate", default="0", show_default=True, help="Commission per price x quantity."
)
@click.option("--no-marks", is_flag=True, help="Do not mark the ledger at each price.")
@click.option(
    "--snapshot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the venue's positions here at the end, as broker_position lines.",
)
@click.pass_context
def paper_run(
    ctx: click.Context,
    prices: Path,
    instrument: str | None,
    accounts: tuple[str, ...],
    venue: str,
    worker: str,
    slippage: str,
    commission_per_unit: str,
    commission_rate: str,
    no_marks: bool,
    snapshot: Path | None,
) -> None:
    """Run the paper venue over a price stream.

    First a sweep (every exit order is looked at again) and the commands already due;
    then, for each price event, the commands due, the event itself (fills go back to the
    ledger) and the commands those fills caused. Events the venue has seen (a restarted
    run) are skipped. Exits 1 if a command had to be failed.

    \b
    Example:
      posledger paper run --prices bars.csv --snapshot broker.jsonl
    """
    from ..paper.engine import CommissionModel, SlippageModel
    from ..paper.prices import PriceError, read_prices
    from ..paper.runner import PaperRun, snapshot_lines

    try:
        amount = parse_decimal(slippage)
        # One "tick" of the given size: market and stop fills are that much worse.
        slip = SlippageModel(ticks=Decimal(1), tick_size=amount) if amount else SlippageModel()
        costs = CommissionModel(
            per_unit=parse_decimal(commission_per_unit), rate=parse_decimal(commission_rate)
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    with _ledger(ctx) as ledger, _long_run():
        served = list(accounts) or ledger.accounts(mode="PAPER")
        if not served:
            raise click.UsageError("no PAPER account to serve: register one, or give --account")
        progress = _render().Progress(True, "paper", "events")
        run = PaperRun(
            ledger,
            venue=venue,
            worker=worker,
            accounts=served,
            slippage=slip,
            commission=costs,
            marks=not no_marks,
            progress=lambda report: progress.tick(report.events),
        )
        try:
            report = run.run(read_prices(prices, instrument=instrument))
        except PriceError as exc:
            raise click.BadParameter(str(exc), param_hint="--prices") from None
        finally:
            progress.done()
        if snapshot is not None:
            snapshot.write_text("".join(line + "\n" for line in snapshot_lines(run.venue)))
    click.echo(
        f"paper: {report.events} price events ({report.skipped} seen before), "
        f"{report.commands} commands carried out, {report.fills} fills sent"
    )
    for problem in report.failed:
        click.echo(f"  failed: {problem}")
    if report.failed:
        ctx.exit(EXIT_PROBLEM)


@paper.command(name="positions")
@click.option("--venue", default="paper", show_default=True, help="The venue's name.")
@click.pass_context
def paper_positions(ctx: click.Context, venue: str) -> None:
    """The venue's positions, as broker_position lines that `reconcile` reads.

    \b
    Example:
      posledger paper positions > broker.jsonl && posledger reconcile broker.jsonl
    """
    from ..paper.engine import Venue
    from ..paper.runner import snapshot_lines

    with _ledger(ctx) as ledger:
        saved = ledger.store.venue_state(venue)
    if saved is None:
        raise click.UsageError(f"no paper venue {venue!r} has run on this database")
    for line in snapshot_lines(Venue.from_state(json.loads(saved)["venue"])):
        click.echo(line)


# -- demo ------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file to (re)create for the demo [default: posledger-demo.db]. A file an "
    "earlier demo did not make is never overwritten.",
)
@click.pass_context
def demo(ctx: click.Context, path: Path | None) -> None:
    """Ingest a bundled trading session into a fresh database and show the result.

    Two strategies share one MES futures contract on a netting account (one scales in
    and out; one sends an exit too large for its own position, which the pre-trade check
    refuses and the broker fills anyway: the excess lands on EXTERNAL); a Binance-style
    hedge account holds LONG and SHORT on one symbol; a flip; a duplicate fill; a
    rejected line. Then the books are reconciled with the broker's positions, after its
    fill history brings back a fill a dropped connection lost.

    The session goes into posledger-demo.db (made anew), or --file, or an empty
    database given with --db.

    \b
    Example:
      posledger demo && posledger --db sqlite:///posledger-demo.db trades
    """
    from .demo import demo_target, run_demo

    ctx.exit(run_demo(demo_target(path, ctx.obj["db"]), _render().console(soft_wrap=True)))


from .reporting import pnl, report, stats  # noqa: E402  (P&L, statistics, HTML report)

cli.add_command(pnl)
cli.add_command(stats)
cli.add_command(report)


def _db_after_the_command(value: str | None, ctx: click.Context) -> None:
    if value is not None:
        ctx.ensure_object(dict)
        ctx.obj["db"] = value


SUMMARIES = {
    "ingest": "Apply a JSONL file of fills, orders, marks.",
    "positions": "Each strategy's position (its slots).",
    "trades": "Round-trip trades, flat to flat.",
    "anomalies": "Fills booked to EXTERNAL, and why.",
    "rejected": "Refused inputs, with reason and raw line.",
    "reconcile": "Compare the books with the broker's.",
    "reconciliations": "Past reconciliation runs, newest first.",
    "transfer": "Move a position between strategies.",
    "check-order": "Would this order be allowed? (pre-trade)",
    "halt": "Refuse entries on an instrument.",
    "resume": "Lift a halt.",
    "halts": "Instruments halted, since when and why.",
    "transfers": "Every transfer between strategies.",
    "doctor": "Integrity report, and what to do about it.",
    "verify": "Replay the journal; compare with the books.",
    "rebuild": "Rewrite every projection from the journal.",
    "migrate": "Create or upgrade the database schema.",
    "commands": "The outbox: orders for whoever executes them.",
    "ack": "An outbox command was carried out.",
    "fail": "An outbox command could not be carried out.",
    "bracket": "Take-profit and stop-loss legs.",
    "bracket set": "Attach a take-profit and/or stop-loss.",
    "bracket clear": "Remove a strategy's bracket.",
    "bracket list": "Every bracket and where its legs stand.",
    "exits": "The exit orders open positions lack.",
    "sweep": "Send stuck or orphaned exit orders again.",
    "paper": "A simulated venue for paper trading.",
    "paper run": "Run the paper venue over a price stream.",
    "paper positions": "The venue's positions, for reconcile.",
    "demo": "Run a bundled session on a fresh database.",
    "mark": "Record a price seen for an instrument.",
    "pnl": "P&L per strategy, period and currency.",
    "stats": "Closed-trade statistics: win rate, drawdown.",
    "report": "An HTML page of charts that opens offline.",
}
"""The one-line summary of each command in the list `--help` shows: short enough that
Click never cuts it (at 80 columns it has at least 45 characters)."""


def _summarize(group: click.Group, path: tuple[str, ...] = ()) -> None:
    for name, command in group.commands.items():
        summary = SUMMARIES.get(" ".join((*path, name)))
        if summary is not None and command.short_help is None:
            command.short_help = summary
        if isinstance(command, click.Group):
            _summarize(command, (*path, name))


_summarize(cli)

from .registry import register as _register_reference_data  # noqa: E402

_register_reference_data(cli)

from .follow import register as _register_follow  # noqa: E402
from .follow_dtc import register as _register_follow_dtc  # noqa: E402
from .follow_kotak import kotak as _follow_kotak  # noqa: E402, F401
from .importing import register as _register_import  # noqa: E402
from .journal import register as _register_journal  # noqa: E402
from .keys import register as _register_keys  # noqa: E402
from .nats import register as _register_nats  # noqa: E402
from .serve import register as _register_serve  # noqa: E402
from .symbols import register as _register_symbols  # noqa: E402

_register_keys(cli)
_register_symbols(cli)
_register_serve(cli)
_register_nats(cli)
_register_follow(cli)
_register_follow_dtc(cli)
_register_import(cli)
_register_journal(cli)


def _leaves(group: click.Group) -> Iterator[click.Command]:
    for command in group.commands.values():
        if isinstance(command, click.Group):
            yield from _leaves(command)
        else:
            yield command


for _command in _leaves(cli):
    # `posledger positions --db URL` works as `posledger --db URL positions` does.
    _command.params.append(
        click.Option(
            ["--db"],
            metavar="URL",
            expose_value=False,
            callback=lambda ctx, _param, value: _db_after_the_command(value, ctx),
            help="Database URL (also accepted before the command).",
        )
    )


def main() -> None:
    """The console script."""
    cli(prog_name="posledger")
