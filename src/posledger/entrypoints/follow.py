"""``posledger follow VENUE``: a broker account's fills into the ledger as they happen
(docs/venues/README.md, Following a venue)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import click

from . import cli as shell

if TYPE_CHECKING:
    from ..service.ledger import Ledger
    from ..venues.base import SymbolMap
    from ..venues.follow import LedgerSink

__all__ = ["register"]


@click.group(short_help="Follow a broker account's fills live.")
def follow() -> None:
    """Follow a broker account: its fills applied as they happen, what was missed while
    disconnected caught up from the broker's history, and the books reconciled with the
    broker's positions on every connect (docs/venues/README.md).

    \b
    Example:
      posledger symbols add binance BIN-1 BTCUSDT BTC-PERP
      posledger follow binance --account BIN-1    # $BINANCE_API_KEY, $BINANCE_API_SECRET
    """


def _convention(pattern: str | None) -> Callable[[str], str | None] | None:
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise click.BadParameter(f"not a regular expression: {exc}") from None
    if "strategy" not in compiled.groupindex:
        raise click.BadParameter("the pattern needs a group named strategy: (?P<strategy>…)")

    def strategy_of(client_order_id: str) -> str | None:
        found = compiled.match(client_order_id)
        return None if found is None else found.group("strategy")

    return strategy_of


strategy_pattern_option = click.option(
    "--strategy-pattern",
    help="A regular expression with a group named strategy, matched against each "
    "fill's client order id: the strategy it names (else the registered order's).",
)
history_days_option = click.option(
    "--history-days",
    default=7,
    show_default=True,
    type=click.IntRange(1, 365),
    help="How far back the first connect reads the fill history.",
)
quiet_option = click.option("--quiet", is_flag=True, help="No progress lines on stderr.")


def speaker(quiet: bool) -> Callable[[str], None]:
    """Where a connector's progress lines go: stderr, or nowhere with --quiet."""

    def say(line: str) -> None:
        if not quiet:
            click.echo(line, err=True)

    return say


def mapped_symbols(
    ledger: Ledger, venue: str, accounts: Iterable[str], symbol: str = "SYMBOL"
) -> SymbolMap:
    """``venue``'s symbol map, once each account is registered and has a symbol mapped
    (a usage error naming the command that maps one, otherwise)."""
    symbols = ledger.symbol_map(venue)
    for account in accounts:
        ledger.check_names(account=account)
        if not any(a == account for a, _ in symbols.entries):
            raise click.UsageError(
                f"no {venue} symbol is mapped on account {account}: posledger symbols add "
                f"{venue} {account} {symbol} INSTRUMENT"
            )
    return symbols


@follow.command(name="binance", short_help="A Binance USD-M futures account.")
@click.option("--account", required=True, help="The posledger account it is (registered).")
@click.option(
    "--rest-url",
    default="https://fapi.binance.com",
    show_default=True,
    help="Binance's REST API.",
)
@click.option(
    "--ws-url",
    default="wss://fstream.binance.com",
    show_default=True,
    help="Binance's user data stream.",
)
@click.option(
    "--key-env",
    default="BINANCE_API_KEY",
    show_default=True,
    help="The environment variable holding the API key.",
)
@click.option(
    "--secret-env",
    default="BINANCE_API_SECRET",
    show_default=True,
    help="The environment variable holding the API secret.",
)
@strategy_pattern_option
@history_days_option
@click.option(
    "--execute-commands",
    is_flag=True,
    help="Carry the account's outbox commands out (bracket legs): the key needs trading access.",
)
@quiet_option
@click.pass_context
def binance(
    ctx: click.Context,
    account: str,
    rest_url: str,
    ws_url: str,
    key_env: str,
    secret_env: str,
    strategy_pattern: str | None,
    history_days: int,
    execute_commands: bool,
    quiet: bool,
) -> None:
    """Follow a Binance USD-M futures account until stopped (Ctrl-C or SIGTERM), then
    print what was done. The account's symbols must be mapped (`posledger symbols add
    binance ACCOUNT SYMBOL INSTRUMENT`); a fill of a symbol not mapped is refused and
    kept (`posledger rejected`). The API key needs read access only, unless
    --execute-commands: then the connector also places, amends and cancels the bracket
    legs the ledger's outbox asks for (docs/venues/binance.md).

    \b
    Example:
      posledger follow binance --account BIN-1 --strategy-pattern '^(?P<strategy>[^.]+)\\.'
    """
    try:
        from ..venues.binance_follow import BinanceFollower, Settings
        from ..venues.follow import LedgerSink
    except ImportError as exc:
        raise click.ClickException(
            f"follow binance needs its extra: pip install 'posledger[binance]' ({exc})"
        ) from None
    key, secret = os.environ.get(key_env, ""), os.environ.get(secret_env, "")
    if not key or not secret:
        raise click.UsageError(f"set ${key_env} and ${secret_env} (the account's API key)")
    strategy_of = _convention(strategy_pattern)
    settings = Settings(
        rest_url=rest_url,
        ws_url=ws_url,
        api_key=key,
        api_secret=secret,
        history_days=history_days,
        execute_commands=execute_commands,
        worker=f"binance-{account}",
    )

    say = speaker(quiet)
    with shell._ledger(ctx) as ledger:
        symbols = mapped_symbols(ledger, "binance", [account])
        sink = LedgerSink(ledger)
        follower = BinanceFollower(
            sink,
            account=account,
            symbols=symbols,
            settings=settings,
            strategy_of=strategy_of,
            log=say,
        )
        try:
            follow_until_stopped(follower, sink, f"binance {account}", say)
        finally:
            sink.close()
    click.echo(f"binance {account}: {sink.counts.line()}")


def follow_until_stopped(
    follower: Any, sink: LedgerSink, name: str, say: Callable[[str], None]
) -> None:
    """Run ``follower`` (a connector: ``run(stop)``) until SIGINT or SIGTERM, saying what
    ``sink`` has done every 5 s when it changed."""
    import asyncio

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, stop.set)

        async def progress() -> None:
            said = ""
            while not stop.is_set():
                line = sink.counts.line()
                if line != said:
                    say(f"{name}: {line}")
                    said = line
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 5)

        reporting = asyncio.create_task(progress())
        started = time.monotonic()
        try:
            await follower.run(stop)
        finally:
            stop.set()
            await reporting
            say(f"{name}: stopped after {time.monotonic() - started:.0f} s")
            sys.stderr.flush()

    asyncio.run(run())


def register(group: click.Group) -> None:
    group.add_command(follow)
