"""Following a Kotak Neo account by polling (docs/venues/kotak.md, Following an account).

Kotak Neo has no fill stream here: every poll reads the whole day's trade report and
applies it. A fill applied before is a duplicate (fills are applied once by
``(account, exec_id)``), so nothing is ever doubled and a missed poll loses nothing: the
next one reads the fill again. Every few polls, and at the start of each session, the
position book is read and reconciled. A failed request (an HTTP error, or a body Kotak
marks as not ``Ok``) ends the session: the next starts after a wait that grows each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .base import Parsed, Rejection, SymbolMap
from .follow import LedgerSink
from .kotak import parse_positions, parse_trade_report

__all__ = ["BASE_URL", "POSITIONS_PATH", "TRADE_REPORT_PATH", "KotakFollower", "Settings"]

BASE_URL = "https://gw-napi.kotaksecurities.com"
"""The Neo API's gateway."""
TRADE_REPORT_PATH = "/Orders/2.0/quick/user/trades"
"""``trade_report()``'s path in the v1 SDK's production URLs."""
POSITIONS_PATH = "/Orders/2.0/quick/user/positions"
"""``positions()``'s path in the v1 SDK's production URLs."""
RECONCILE_TRIES = 3
"""How often the position book is read again when fills arrive while it is read."""


@dataclass(frozen=True)
class Settings:
    """How to reach the account, and how often to do what."""

    base_url: str = BASE_URL
    access_token: str = ""
    """The API access token: ``Authorization: Bearer <token>``."""
    session_token: str = ""
    """The session (trade) token after login: the ``Auth`` header."""
    sid: str = ""
    """The session id after login: the ``Sid`` header."""
    server_id: str = ""
    """The ``sId`` query parameter the SDK sends (the login's server id), if any."""
    neo_fin_key: str = "neotradeapi"
    trade_report_path: str = TRADE_REPORT_PATH
    positions_path: str = POSITIONS_PATH
    poll_seconds: float = 2.0
    positions_every: int = 15
    """The position book is reconciled every this many polls (and on each session)."""
    reconnect_seconds: tuple[float, float] = (0.5, 30.0)
    """The first and the longest wait before a new session."""


class Refused(Exception):
    """Kotak Neo answered, but not with a report: the session is over."""


class KotakFollower:
    """Follows one account: the trade report polled and applied, the position book
    reconciled every ``positions_every`` polls and on every new session."""

    def __init__(
        self,
        sink: LedgerSink,
        *,
        account: str,
        symbols: SymbolMap,
        settings: Settings,
        strategy_of: Callable[[str], str | None] | None = None,
        log: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.sink = sink
        self.account = account
        self.symbols = symbols
        self.settings = settings
        self.strategy_of = strategy_of
        self.log = log
        self.sessions = 0
        """Sessions started (the first, then one after each failure)."""
        self.polls = 0
        """Trade reports read and applied."""
        self.caught_up = asyncio.Event()
        """Set once a session has read the trade report and reconciled."""
        self._kept: set[tuple[str, str]] = set()
        self._http = httpx.AsyncClient(base_url=settings.base_url, timeout=30)

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the account until ``stop`` is set, starting a new session when a
        request fails (waiting longer each time, up to the longest wait)."""
        first, longest = self.settings.reconnect_seconds
        wait = first
        try:
            while not stop.is_set():
                try:
                    await self._session(stop)
                    wait = first
                except (Refused, httpx.HTTPError, OSError) as exc:
                    self.log(f"kotak {self.account}: {exc}; again in {wait:g} s")
                    self.caught_up.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), wait)
                    wait = min(longest, wait * 2)
        finally:
            await self._http.aclose()

    async def _session(self, stop: asyncio.Event) -> None:
        self.sessions += 1
        every = max(1, self.settings.positions_every)
        turn = 0
        while not stop.is_set():
            await self._poll()
            if turn % every == 0:
                await self._reconcile()
                self.caught_up.set()
            turn += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.poll_seconds)

    async def _poll(self) -> int:
        """Read the trade report and apply it: the fills applied anew."""
        body = await self._get(self.settings.trade_report_path, "trade report")
        parsed = parse_trade_report(
            body, account=self.account, symbols=self.symbols, strategy_of=self.strategy_of
        )
        before = self.sink.counts.applied
        await self.sink.apply(self._new(parsed), f"kotak {self.account} trade report")
        self.polls += 1
        return self.sink.counts.applied - before

    def _new(self, parsed: Parsed) -> Parsed:
        """``parsed`` without the rejections already kept by an earlier poll (the same
        bad row comes back in every report of the day)."""
        fresh: list[Rejection] = []
        for rejection in parsed.rejections:
            key = (rejection.reason, rejection.raw)
            if key not in self._kept:
                self._kept.add(key)
                fresh.append(rejection)
        return Parsed(fills=parsed.fills, rejections=tuple(fresh))

    async def _reconcile(self) -> None:
        """Reconcile with the position book, read when no fill arrived while it was
        read: the trade report is read again after it, and the book again if that
        brought new fills (at most :data:`RECONCILE_TRIES` times)."""
        source = f"kotak {self.account} positions"
        for attempt in range(1, RECONCILE_TRIES + 1):
            body = await self._get(self.settings.positions_path, "position book")
            positions = parse_positions(body, account=self.account, symbols=self.symbols)
            if await self._poll() == 0 or attempt == RECONCILE_TRIES:
                break
        if positions.rejections:
            await self.sink.apply(self._new(Parsed(rejections=positions.rejections)), source)
        report = await self.sink.reconcile(positions, self.account, source)
        if not report["agreed"]:
            self.log(
                f"kotak {self.account}: the books differ from the broker in "
                f"{report['differences']} places (reconciliation {report['run']})"
            )

    async def _get(self, path: str, what: str) -> str:
        """A response's text, checked to be a report: a body that is not (not JSON, or
        ``stat`` not ``Ok``) raises :class:`Refused` rather than reading as no fills or
        an empty book."""
        settings = self.settings
        headers = {
            "Authorization": f"Bearer {settings.access_token}",
            "Sid": settings.sid,
            "Auth": settings.session_token,
            "neo-fin-key": settings.neo_fin_key,
            "accept": "application/json",
        }
        params = {"sId": settings.server_id} if settings.server_id else None
        answer = await self._http.get(path, headers=headers, params=params)
        answer.raise_for_status()
        text = answer.text
        try:
            decoded: Any = json.loads(text)
        except ValueError:
            raise Refused(f"the {what} is not JSON: {text[:200]!r}") from None
        if not isinstance(decoded, dict) or "data" not in decoded:
            raise Refused(f"the {what} is no report: {text[:200]!r}")
        status = decoded.get("stat")
        if status is not None and str(status).lower() != "ok":
            message = decoded.get("errMsg") or decoded.get("emsg") or "no message"
            raise Refused(f"Kotak Neo refused the {what}: stat {status!r}: {message}")
        return text
