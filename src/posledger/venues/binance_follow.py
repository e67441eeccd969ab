"""Following a Binance USD-M futures account (docs/venues/binance.md, Following an account).

One session: a listen key, the user data stream opened on it, then the fill history since
the cursor (in windows of at most 7 days, with the orders it belongs to, so a fill from
history is the same record as the stream's), then the account's position mode and
positions reconciled, then the stream's events as they come. The listen key is kept
alive. When the connection drops, the next session starts over from the cursor, so a fill
the stream never delivered comes back from history, and nothing is applied twice (fills
are applied once by ``(account, exec_id)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from .base import Parsed, SymbolMap
from .binance import (
    StrategyOf,
    parse_position_mode,
    parse_position_risk,
    parse_user_event,
    parse_user_trades,
)
from .follow import LedgerSink

__all__ = ["BinanceFollower", "Settings"]

DAY_MS = 86_400_000
WINDOW_MS = 7 * DAY_MS
"""The longest time span ``userTrades`` and ``allOrders`` answer for at once."""
OVERLAP_MS = 60_000
"""History is read again from this long before the cursor: a fill of the same
millisecond as the last one seen is not missed (the ones read again are duplicates)."""
PAGE = 1000


@dataclass(frozen=True)
class Settings:
    """How to reach the account, and how often to do what."""

    rest_url: str = "https://fapi.binance.com"
    ws_url: str = "wss://fstream.binance.com"
    api_key: str = ""
    api_secret: str = ""
    keepalive_seconds: float = 1800.0
    """How often the listen key is kept alive (Binance lets one lapse after 60 min)."""
    history_days: int = 7
    """How far back the first session reads the fill history, with no cursor yet."""
    reconnect_seconds: tuple[float, float] = (0.5, 30.0)
    """The first and the longest wait before connecting again."""
    recv_window_ms: int = 5000
    execute_commands: bool = False
    """Carry the account's outbox commands out (:mod:`.binance_orders`)."""
    worker: str = "binance"
    """The worker name commands are claimed under."""


class Disconnected(Exception):
    """The stream ended: the session is over."""


class BinanceFollower:
    """Follows one account: its fills applied to the ledger as they happen, and what was
    missed while away caught up from the history when it connects again."""

    def __init__(
        self,
        sink: LedgerSink,
        *,
        account: str,
        symbols: SymbolMap,
        settings: Settings,
        strategy_of: StrategyOf | None = None,
        log: Callable[[str], None] = lambda _: None,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.sink = sink
        self.account = account
        self.symbols = symbols
        self.settings = settings
        self.strategy_of = strategy_of
        self.log = log
        self.clock_ms = clock_ms
        self.state_name = f"binance:{account}"
        self.sessions = 0
        """Sessions started (the first connect, then each reconnect)."""
        self.caught_up = asyncio.Event()
        """Set once a session has read the history and reconciled."""
        self._rest = httpx.AsyncClient(base_url=settings.rest_url, timeout=30)
        self._mode: str | None = None
        self._cursor = 0
        self.executor: Any = None
        """The command executor, once it runs (``execute_commands``)."""

    # -- the loop -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the account until ``stop`` is set, connecting again when the stream or
        the REST API fails (waiting longer each time, up to the longest wait)."""
        first, longest = self.settings.reconnect_seconds
        wait = first
        executing = None
        if self.settings.execute_commands:
            executing = asyncio.create_task(self._execute(stop))
        try:
            while not stop.is_set():
                try:
                    await self._session(stop)
                    wait = first
                except (Disconnected, httpx.HTTPError, WebSocketException, OSError) as exc:
                    self.log(f"binance {self.account}: disconnected ({exc}); again in {wait:g} s")
                    self.caught_up.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), wait)
                    wait = min(longest, wait * 2)
        finally:
            if executing is not None:
                await executing
            await self._rest.aclose()

    async def _execute(self, stop: asyncio.Event) -> None:
        """Carry the outbox's commands out once the first session has read the position
        mode, and go on after a failed request."""
        from .binance_orders import BinanceExecutor

        caught_up = asyncio.create_task(self.caught_up.wait())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({caught_up, stopping}, return_when=asyncio.FIRST_COMPLETED)
        caught_up.cancel()
        stopping.cancel()
        executor = BinanceExecutor(
            self.sink,
            account=self.account,
            symbols=self.symbols,
            signed=self._signed,
            worker=self.settings.worker,
            hedge=lambda: self._mode == "hedge",
            log=self.log,
        )
        self.executor = executor
        first = self.settings.reconnect_seconds[0]
        while not stop.is_set():
            try:
                await executor.run(stop)
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                self.log(f"binance {self.account}: commands: {exc}; again in {first:g} s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), first)

    async def _session(self, stop: asyncio.Event) -> None:
        self.sessions += 1
        key = await self._listen_key()
        url = f"{self.settings.ws_url}/ws/{key}"
        async with connect(url, max_size=2**22, ping_interval=20) as stream:
            events: asyncio.Queue[str | None] = asyncio.Queue()
            reading = asyncio.create_task(self._read(stream, events))
            keeping = asyncio.create_task(self._keep_alive(key))
            stopping = asyncio.create_task(stop.wait())
            try:
                # The stream is open first: what happens while history is read waits
                # in the queue, and what is both in history and the queue is a duplicate.
                await self._catch_up()
                await self._reconcile()
                self.caught_up.set()
                while True:
                    getting = asyncio.create_task(events.get())
                    done, _ = await asyncio.wait(
                        {getting, stopping, keeping}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if getting not in done:
                        getting.cancel()
                    if stopping in done:
                        return
                    if keeping in done:
                        keeping.result()  # raises why it stopped
                    batch = [getting.result()]
                    while batch[-1] is not None and not events.empty() and len(batch) < PAGE:
                        batch.append(events.get_nowait())
                    await self._events([m for m in batch if m is not None])
                    if batch[-1] is None:
                        raise Disconnected("the stream closed")
            finally:
                for task in (reading, keeping, stopping):
                    task.cancel()

    @staticmethod
    async def _read(stream: Any, events: asyncio.Queue[str | None]) -> None:
        try:
            async for message in stream:
                events.put_nowait(message if isinstance(message, str) else message.decode())
        except WebSocketException:
            pass
        finally:
            events.put_nowait(None)

    async def _keep_alive(self, key: str) -> None:
        while True:
            await asyncio.sleep(self.settings.keepalive_seconds)
            answer = await self._rest.put(
                "/fapi/v1/listenKey", params={"listenKey": key}, headers=self._headers()
            )
            answer.raise_for_status()

    # -- what comes on the stream ------------------------------------------------------

    async def _events(self, messages: list[str]) -> None:
        """Apply what the messages waiting say, in order, in one transaction."""
        fills: list[dict[str, Any]] = []
        rejections: list[Any] = []
        funding: list[Any] = []
        expired = False
        for message in messages:
            parsed = parse_user_event(
                message,
                account=self.account,
                symbols=self.symbols,
                strategy_of=self.strategy_of,
                position_mode=self._mode,
            )
            # ACCOUNT_UPDATE lists the positions that changed, not every one: it is no
            # snapshot to reconcile with (the session reconciles with positionRisk).
            fills += parsed.fills
            rejections += parsed.rejections
            funding += parsed.funding
            expired = expired or parsed.extra.get("event") == "listenKeyExpired"
        together = Parsed(fills=tuple(fills), rejections=tuple(rejections), funding=tuple(funding))
        await self.sink.apply(together, f"binance {self.account} stream")
        await self._advance(together)
        if expired:
            raise Disconnected("the listen key expired")

    async def _advance(self, parsed: Parsed) -> None:
        """Move the cursor to the latest fill applied (its trade time, in ms)."""
        times = [_ms(record["ts"]) for record in parsed.fills]
        if not times or max(times) <= self._cursor:
            return
        self._cursor = max(times)
        state = {"cursor_ms": self._cursor}
        await self.sink.save_state(self.state_name, state, self.clock_ms() * 1_000_000)

    # -- what the history says ----------------------------------------------------------

    async def _catch_up(self) -> None:
        """Every mapped symbol's fills since the cursor (less :data:`OVERLAP_MS`), or
        since ``history_days`` ago on the first session."""
        now = self.clock_ms()
        state = await self.sink.state(self.state_name)
        cursor = state.get("cursor_ms")
        self._cursor = 0 if cursor is None else int(cursor)
        since = (
            self._cursor - OVERLAP_MS
            if cursor is not None
            else now - self.settings.history_days * DAY_MS
        )
        for symbol in self._symbols():
            start = since
            while start <= now:
                end = min(now, start + WINDOW_MS - 1)
                await self._window(symbol, start, end)
                start = end + 1

    def _symbols(self) -> list[str]:
        return sorted(s for (a, s) in self.symbols.entries if a == self.account)

    async def _window(self, symbol: str, start: int, end: int) -> None:
        orders = await self._client_order_ids(symbol, start, end)
        page_start = start
        while True:
            rows = await self._signed(
                "/fapi/v1/userTrades",
                {"symbol": symbol, "startTime": page_start, "endTime": end, "limit": PAGE},
            )
            parsed = parse_user_trades(
                rows,
                account=self.account,
                symbols=self.symbols,
                strategy_of=self.strategy_of,
                client_order_ids=orders,
            )
            await self.sink.apply(parsed, f"binance {self.account} history")
            await self._advance(parsed)
            if not isinstance(rows, list) or len(rows) < PAGE:
                return
            last = max(int(row["time"]) for row in rows)
            if last <= page_start:  # a whole page in one millisecond: go on after it
                last = page_start + 1
            page_start = last

    async def _client_order_ids(self, symbol: str, start: int, end: int) -> dict[str, str]:
        """Binance order id -> client order id, of the orders of ``symbol`` in the window
        (a fill from history names its order by the Binance id only)."""
        found: dict[str, str] = {}
        page_start = start
        while True:
            rows = await self._signed(
                "/fapi/v1/allOrders",
                {"symbol": symbol, "startTime": page_start, "endTime": end, "limit": PAGE},
            )
            if not isinstance(rows, list):
                return found
            for row in rows:
                if isinstance(row, dict) and "orderId" in row and "clientOrderId" in row:
                    found[str(row["orderId"])] = str(row["clientOrderId"])
            if len(rows) < PAGE:
                return found
            last = max(int(row.get("time", page_start)) for row in rows)
            page_start = max(last, page_start + 1)

    async def _reconcile(self) -> None:
        """The account's position mode, then its positions, reconciled."""
        self._mode = parse_position_mode(await self._signed("/fapi/v1/positionSide/dual", {}))
        rows = await self._signed("/fapi/v3/positionRisk", {})
        positions = parse_position_risk(
            rows, account=self.account, symbols=self.symbols, position_mode=self._mode
        )
        if positions.rejections:
            await self.sink.apply(Parsed(rejections=positions.rejections), self._source())
        report = await self.sink.reconcile(positions, self.account, self._source())
        if not report["agreed"]:
            self.log(
                f"binance {self.account}: the books differ from the broker in "
                f"{report['differences']} places (reconciliation {report['run']})"
            )

    def _source(self) -> str:
        return f"binance {self.account} positions"

    # -- the REST API -------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"X-MBX-APIKEY": self.settings.api_key}

    async def _listen_key(self) -> str:
        answer = await self._rest.post("/fapi/v1/listenKey", headers=self._headers())
        answer.raise_for_status()
        return str(answer.json()["listenKey"])

    async def _signed(self, path: str, params: dict[str, Any], method: str = "GET") -> Any:
        query = {**params, "timestamp": self.clock_ms()}
        query["recvWindow"] = self.settings.recv_window_ms
        text = urlencode(query)
        query["signature"] = sign(self.settings.api_secret, text)
        answer = await self._rest.request(method, path, params=query, headers=self._headers())
        answer.raise_for_status()
        return answer.json()


def sign(secret: str, query: str) -> str:
    """Binance's signature of a request: HMAC-SHA256 of its query string, in hex."""
    return hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()


def _ms(iso: str) -> int:
    """An ISO time the parser wrote (``…T…Z`` with milliseconds) as epoch milliseconds."""
    from ..domain.timestamps import parse_ts

    return parse_ts(iso) // 1_000_000
