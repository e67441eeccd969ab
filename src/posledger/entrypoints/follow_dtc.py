"""``posledger follow dtc``: Sierra Chart DTC trade accounts' fills into the ledger as they
happen (docs/venues/dtc.md, Following an account)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from . import cli as shell
from .follow import (
    _convention,
    follow,
    follow_until_stopped,
    history_days_option,
    mapped_symbols,
    quiet_option,
    speaker,
    strategy_pattern_option,
)

if TYPE_CHECKING:
    pass

__all__ = ["dtc", "register"]


def _account_map(values: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for value in values:
        trade_account, equals, account = value.partition("=")
        if not equals or not trade_account or not account:
            raise click.BadParameter(f"{value!r} is not TRADEACCOUNT=ACCOUNT")
        if trade_account in found:
            raise click.BadParameter(f"trade account {trade_account} is mapped twice")
        found[trade_account] = account
    if len(set(found.values())) != len(found):
        raise click.BadParameter("map each trade account to a posledger account of its own")
    return found


@follow.command(name="dtc", short_help="Sierra Chart DTC trade accounts.")
@click.option("--host", default="127.0.0.1", show_default=True, help="The DTC server.")
@click.option("--port", default=11099, show_default=True, type=int, help="Its port.")
@click.option(
    "--account-map",
    "account_map",
    multiple=True,
    required=True,
    metavar="TRADEACCOUNT=ACCOUNT",
    help="A DTC trade account and the posledger account it is (registered; repeatable).",
)
@click.option(
    "--username-env",
    default="DTC_USERNAME",
    show_default=True,
    help="The environment variable holding the username.",
)
@click.option(
    "--password-env",
    default="DTC_PASSWORD",
    show_default=True,
    help="The environment variable holding the password.",
)
@strategy_pattern_option
@history_days_option
@click.option(
    "--encoding-request/--no-encoding-request",
    default=True,
    show_default=True,
    help="Ask for the JSON encoding first (--no-encoding-request: the server is set to JSON).",
)
@quiet_option
@click.pass_context
def dtc(
    ctx: click.Context,
    host: str,
    port: int,
    account_map: tuple[str, ...],
    username_env: str,
    password_env: str,
    strategy_pattern: str | None,
    history_days: int,
    encoding_request: bool,
    quiet: bool,
) -> None:
    """Follow Sierra Chart DTC trade accounts until stopped (Ctrl-C or SIGTERM), then
    print what was done. Each trade account maps to a posledger account of its own (mode
    SIM for a simulated one, LIVE for a live one), whose symbols are mapped (`posledger
    symbols add dtc ACCOUNT SYMBOL INSTRUMENT`); a fill of a symbol not mapped is refused
    and kept (`posledger rejected`). Read only: no order is sent (docs/venues/dtc.md).

    \b
    Example:
      posledger follow dtc --port 11099 --account-map Sim1=SIM-1 --account-map 12345=LIVE-1
    """
    from ..venues.dtc_follow import DtcFollower, LogonRefused, Settings
    from ..venues.follow import LedgerSink

    accounts = _account_map(account_map)
    username, password = os.environ.get(username_env, ""), os.environ.get(password_env, "")
    if not username:
        raise click.UsageError(f"set ${username_env} (and ${password_env}): the DTC logon")
    strategy_of = _convention(strategy_pattern)
    settings = Settings(history_days=history_days, encoding_request=encoding_request)

    say = speaker(quiet)
    with shell._ledger(ctx) as ledger:
        symbols = mapped_symbols(ledger, "dtc", accounts.values())
        sink = LedgerSink(ledger)
        follower = DtcFollower(
            sink,
            host=host,
            port=port,
            username=username,
            password=password,
            accounts=accounts,
            symbols=symbols,
            strategy_of=strategy_of,
            settings=settings,
            log=say,
        )
        try:
            follow_until_stopped(follower, sink, f"dtc {follower.host}:{follower.port}", say)
        except LogonRefused as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            sink.close()
    click.echo(f"dtc {host}:{port}: {sink.counts.line()}")


def register(group: click.Group) -> None:
    """``follow dtc`` under ``group``'s ``follow``."""
    group.add_command(follow)
