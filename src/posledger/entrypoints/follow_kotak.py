"""``posledger follow kotak``: a Kotak Neo account's trade report polled into the ledger
(docs/venues/kotak.md, Following an account)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from . import cli as shell
from .follow import (
    _convention,
    follow,
    follow_until_stopped,
    mapped_symbols,
    quiet_option,
    speaker,
)

if TYPE_CHECKING:
    pass

__all__ = ["kotak"]


@follow.command(name="kotak", short_help="A Kotak Neo account, by polling.")
@click.option("--account", required=True, help="The posledger account it is (registered).")
@click.option(
    "--base-url",
    default="https://gw-napi.kotaksecurities.com",
    show_default=True,
    help="The Neo API's gateway.",
)
@click.option(
    "--access-token-env",
    default="KOTAK_ACCESS_TOKEN",
    show_default=True,
    help="The environment variable holding the API access token (Authorization: Bearer).",
)
@click.option(
    "--session-token-env",
    default="KOTAK_SESSION_TOKEN",
    show_default=True,
    help="The environment variable holding the session token after login (Auth).",
)
@click.option(
    "--sid-env",
    default="KOTAK_SID",
    show_default=True,
    help="The environment variable holding the session id after login (Sid).",
)
@click.option(
    "--server-id-env",
    default="KOTAK_SERVER_ID",
    show_default=True,
    help="The environment variable holding the login's server id, sent as sId if set.",
)
@click.option(
    "--poll-seconds",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="How often the trade report is read.",
)
@click.option(
    "--positions-every",
    default=15,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="The position book is reconciled every this many polls (and on each new session).",
)
@click.option(
    "--strategy-pattern",
    help="A regular expression with a group named strategy, matched against each "
    "fill's tag (rmk) or else its order number: the strategy it names (else the "
    "registered order's).",
)
@quiet_option
@click.pass_context
def kotak(
    ctx: click.Context,
    account: str,
    base_url: str,
    access_token_env: str,
    session_token_env: str,
    sid_env: str,
    server_id_env: str,
    poll_seconds: float,
    positions_every: int,
    strategy_pattern: str | None,
    quiet: bool,
) -> None:
    """Follow a Kotak Neo account until stopped (Ctrl-C or SIGTERM), then print what was
    done. Every poll reads the day's whole trade report: fills applied before are
    duplicates, so a missed poll loses nothing. The account's symbols must be mapped
    (`posledger symbols add kotak_neo ACCOUNT nse_cm:AXISBANK-EQ INSTRUMENT`); a fill of
    a symbol not mapped is refused and kept once (`posledger rejected`). The tokens are
    those of a logged-in session (docs/venues/kotak.md).

    \b
    Example:
      posledger follow kotak --account KOTAK-1 --poll-seconds 5
    """
    try:
        from ..venues.follow import LedgerSink
        from ..venues.kotak_follow import KotakFollower, Settings
    except ImportError as exc:
        raise click.ClickException(f"follow kotak needs httpx: pip install httpx ({exc})") from None
    tokens = {
        name: os.environ.get(name, "") for name in (access_token_env, session_token_env, sid_env)
    }
    missing = [f"${name}" for name, value in tokens.items() if not value]
    if missing:
        raise click.UsageError(f"set {', '.join(missing)} (a logged-in Kotak Neo session)")
    strategy_of = _convention(strategy_pattern)
    settings = Settings(
        base_url=base_url,
        access_token=tokens[access_token_env],
        session_token=tokens[session_token_env],
        sid=tokens[sid_env],
        server_id=os.environ.get(server_id_env, ""),
        poll_seconds=poll_seconds,
        positions_every=positions_every,
    )

    say = speaker(quiet)
    with shell._ledger(ctx) as ledger:
        symbols = mapped_symbols(ledger, "kotak_neo", [account], "SEGMENT:SYMBOL")
        sink = LedgerSink(ledger)
        follower = KotakFollower(
            sink,
            account=account,
            symbols=symbols,
            settings=settings,
            strategy_of=strategy_of,
            log=say,
        )
        try:
            follow_until_stopped(follower, sink, f"kotak {follower.account}", say)
        finally:
            sink.close()
    click.echo(f"kotak {account}: {sink.counts.line()}")
