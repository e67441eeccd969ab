"""Following Sierra Chart DTC trade accounts (docs/venues/dtc.md, Following an account).

One session: a TCP connection (the JSON encoding asked for first, unless the server speaks
it already), LOGON_REQUEST, then per mapped trade account its orders (for each fill's
ClientOrderID), its fill history since the cursor, and its positions reconciled; then the
ORDER_UPDATE fills as they come. Heartbeats go out every interval, and a server silent
for too long ends the session. When the connection drops, the next session starts over
from the cursor, so a fill missed while away comes back from history, and nothing is
applied twice (fills are applied once by ``(account, exec_id)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..domain.timestamps import parse_ts
from .base import Parsed, Rejection, SymbolMap
from .dtc import (
    HISTORICAL_ORDER_FILL_RESPONSE,
    JSON_ENCODING_REQUEST,
    ORDER_UPDATE,
    POSITION_UPDATE,
    Frame,
    Framer,
    current_positions_request,
    encode,
    heartbeat,
    historical_order_fills_request,
    logon_request,
    open_orders_request,
    parse_message,
)
from .follow import LedgerSink

__all__ = ["DtcFollower", "LogonRefused", "Settings"]

OVERLAP_SECONDS = 60
"""History is read again from this long before the cursor: a fill of the same second as
the last one seen is not missed (the ones read again are duplicates)."""
BATCH = 1000
ENCODING_RESPONSE_SIZE = 16


@dataclass(frozen=True)
class Settings:
    """How to reach the server, and how often to do what."""

    heartbeat_seconds: int = 10
    """The heartbeat interval asked for at logon, and kept."""
    silence_seconds: float = 35.0
    """A server silent this long (no heartbeat either) has gone: the session ends."""
    history_days: int = 7
    """How far back the first session reads the fill history, with no cursor yet."""
    reconnect_seconds: tuple[float, float] = (0.5, 30.0)
    """The first and the longest wait before connecting again."""
    encoding_request: bool = True
    """Ask for the JSON encoding first (False: the server is set to JSON already)."""
    logon_seconds: float = 30.0
    """How long a connection and the logon may take."""


class LogonRefused(Exception):
    """The server refused the logon, or asked not to reconnect: following stops."""


class Disconnected(Exception):
    """The connection ended: the session is over."""


class _Stopped(Exception):
    """``stop`` was set during a session."""


class DtcFollower:
    """Follows the mapped trade accounts of one DTC server: their fills applied to the
    ledger as they happen, and what was missed while away caught up from the history when
    it connects again."""

    def __init__(
        self,
        sink: LedgerSink,
        *,
        host: str,
        port: int,
        username: str,
        password: str,
        accounts: Mapping[str, str],
        symbols: SymbolMap,
        strategy_of: Callable[[str], str | None] | None = None,
        settings: Settings = Settings(),
        log: Callable[[str], None] = lambda _: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not accounts:
            raise ValueError("map at least one DTC trade account to a posledger account")
        if len(set(accounts.values())) != len(accounts):
            raise ValueError("map each DTC trade account to a posledger account of its own")
        self.sink = sink
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.accounts = dict(accounts)
        self.symbols = symbols
        self.strategy_of = strategy_of
        self.settings = settings
        self.log = log
        self.clock = clock
        self.sessions = 0
        """Sessions started (the first connect, then each reconnect)."""
        self.caught_up = asyncio.Event()
        """Set once a session has read the history and reconciled every trade account."""
        self.logon: dict[str, Any] = {}
        """What the last LOGON_RESPONSE said (``extra["logon"]``)."""
        self._orders: dict[str, str] = {}
        self._cursors: dict[str, int] = {}
        self._request_id = 0
        self._frames: asyncio.Queue[list[Frame] | None] = asyncio.Queue()
        self._writer: asyncio.StreamWriter | None = None

    # -- the loop -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Follow until ``stop`` is set, connecting again when the connection fails
        (waiting longer each time, up to the longest wait). Raises :class:`LogonRefused`
        when the server refuses the logon: bad credentials are not retried."""
        first, longest = self.settings.reconnect_seconds
        wait = first
        while not stop.is_set():
            try:
                await self._session(stop)
                wait = first
            except (Disconnected, OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                self.log(f"dtc {self.host}:{self.port}: disconnected ({exc}); again in {wait:g} s")
                self.caught_up.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
                wait = min(longest, wait * 2)

    async def _session(self, stop: asyncio.Event) -> None:
        self.sessions += 1
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.settings.logon_seconds
        )
        self._writer = writer
        self._frames = asyncio.Queue()
        tasks: list[asyncio.Task[Any]] = []
        try:
            if self.settings.encoding_request:
                await self._ask_json(reader, writer)
            tasks.append(asyncio.create_task(self._read(reader)))
            await self._send(
                logon_request(
                    self.username,
                    self.password,
                    heartbeat_interval=self.settings.heartbeat_seconds,
                )
            )
            await asyncio.wait_for(self._await_logon(), self.settings.logon_seconds)
            tasks.append(asyncio.create_task(self._beat()))
            stopping = asyncio.create_task(stop.wait())
            tasks.append(stopping)
            try:
                for trade_account in sorted(self.accounts):
                    await self._catch_up(trade_account, tasks)
                self.caught_up.set()
                while True:
                    await self._live(await self._receive(tasks))
            except _Stopped:
                return
        finally:
            for task in tasks:
                task.cancel()
            self._writer = None
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _ask_json(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The binary ENCODING_REQUEST for JSON, and the server's binary answer."""
        writer.write(JSON_ENCODING_REQUEST)
        await writer.drain()
        answer = await asyncio.wait_for(
            reader.readexactly(ENCODING_RESPONSE_SIZE), self.settings.logon_seconds
        )
        size, kind, _version, encoding = struct.unpack_from("<HHii", answer)
        if size != ENCODING_RESPONSE_SIZE or kind != 7 or encoding != 2:
            raise LogonRefused(
                f"the DTC server at {self.host}:{self.port} did not agree to the JSON "
                f"encoding (ENCODING_RESPONSE size {size}, type {kind}, encoding {encoding})"
            )

    async def _read(self, reader: asyncio.StreamReader) -> None:
        framer = Framer()
        try:
            while data := await reader.read(1 << 16):
                frames = framer.feed(data)
                if frames:
                    self._frames.put_nowait(frames)
        except OSError:
            pass
        finally:
            self._frames.put_nowait(None)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            await self._send(heartbeat(int(self.clock())))

    async def _send(self, message: Mapping[str, Any]) -> None:
        if self._writer is None:
            raise Disconnected("not connected")
        self._writer.write(encode(message))
        await self._writer.drain()

    async def _receive(self, tasks: list[asyncio.Task[Any]]) -> list[Frame]:
        """The frames of the next read; raises when stopped, silent, or disconnected."""
        getting = asyncio.create_task(self._frames.get())
        watched = {getting, *tasks[1:]}
        done, _ = await asyncio.wait(
            watched, timeout=self.settings.silence_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        if getting not in done:
            getting.cancel()
        if not done:
            raise Disconnected(f"nothing from the server for {self.settings.silence_seconds:g} s")
        for task in done:
            if task is getting:
                continue
            if task is tasks[-1]:
                raise _Stopped
            task.result()  # the heartbeat failed: raises why
            raise Disconnected("the heartbeat stopped")
        frames = getting.result()
        if frames is None:
            raise Disconnected("the server closed the connection")
        return frames

    async def _await_logon(self) -> None:
        while True:
            frames = await self._frames.get()
            if frames is None:
                raise Disconnected("the server closed the connection before LOGON_RESPONSE")
            for frame in frames:
                parsed = self._parse(frame)
                logon = parsed.extra.get("logon")
                if logon is None:
                    continue
                self.logon = dict(logon)
                if not logon["ok"]:
                    raise LogonRefused(
                        f"the DTC server at {self.host}:{self.port} refused the logon: "
                        f"{logon['result']}" + (f": {logon['text']}" if logon["text"] else "")
                    )
                return

    # -- what a message means -----------------------------------------------------------

    def _parse(self, frame: Frame) -> Parsed:
        parsed = parse_message(
            frame,
            accounts=self.accounts,
            symbols=self.symbols,
            strategy_of=self.strategy_of,
            client_order_of=self._orders.get,
        )
        order = parsed.extra.get("order")
        if order and order["server_order_id"] and order["client_order_id"]:
            self._orders[order["server_order_id"]] = order["client_order_id"]
        logoff = parsed.extra.get("logoff")
        if logoff is not None:
            said = logoff["reason"] or "no reason given"
            if logoff["do_not_reconnect"]:
                raise LogonRefused(f"the DTC server logged off, not to reconnect: {said}")
            raise Disconnected(f"the server logged off: {said}")
        return parsed

    async def _live(self, frames: list[Frame]) -> None:
        """Apply the live fills (and refused messages) of ``frames``, in one transaction."""
        fills: list[dict[str, Any]] = []
        rejections: list[Rejection] = []
        for frame in frames:
            parsed = self._parse(frame)
            if isinstance(frame, dict) and frame.get("Type") == ORDER_UPDATE:
                fills += parsed.fills
            rejections += parsed.rejections
        if fills or rejections:
            together = Parsed(fills=tuple(fills), rejections=tuple(rejections))
            await self.sink.apply(together, f"dtc {self.host}:{self.port} live")
            await self._advance(together)

    async def _advance(self, parsed: Parsed) -> None:
        """Move each account's cursor to its latest fill applied (in epoch seconds)."""
        latest: dict[str, int] = {}
        for record in parsed.fills:
            seconds = parse_ts(record["ts"]) // 1_000_000_000
            latest[record["account"]] = max(latest.get(record["account"], 0), seconds)
        now_ns = int(self.clock() * 1_000_000_000)
        for account, seconds in sorted(latest.items()):
            if seconds > self._cursors.get(account, 0):
                self._cursors[account] = seconds
                await self.sink.save_state(f"dtc:{account}", {"cursor": seconds}, now_ns)

    async def _exchange(
        self,
        request: dict[str, Any],
        answers: Callable[[dict[str, Any]], bool],
        complete: Callable[[dict[str, Any], Parsed], bool],
        tasks: list[asyncio.Task[Any]],
        each: Callable[[Parsed], Any] | None = None,
    ) -> Parsed | None:
        """Send ``request``, then read until its answer is ``complete``: the answer's
        messages go to ``each``, every other message is live. The last message, or None
        when the request was rejected."""
        await self._send(request)
        request_id = request["RequestID"]
        while True:
            live: list[Frame] = []
            finished: Parsed | None = None
            rejected = False
            for frame in await self._receive(tasks):
                if finished is not None or rejected:
                    live.append(frame)
                    continue
                is_answer = (
                    isinstance(frame, dict)
                    and frame.get("RequestID") == request_id
                    and answers(frame)
                )
                if not is_answer:
                    live.append(frame)
                    continue
                assert isinstance(frame, dict)
                parsed = self._parse(frame)
                refusal = parsed.extra.get("rejected")
                if refusal is not None:
                    self.log(
                        f"dtc {self.host}:{self.port}: {refusal['type']}: "
                        f"{refusal['text'] or 'no reason given'}"
                    )
                    rejected = True
                    continue
                if each is not None:
                    await each(parsed)
                if complete(frame, parsed):
                    finished = parsed
            await self._live(live)
            if finished is not None:
                return finished
            if rejected:
                return None

    async def _catch_up(self, trade_account: str, tasks: list[asyncio.Task[Any]]) -> None:
        """``trade_account``'s orders, fills since the cursor, then positions reconciled."""
        account = self.accounts[trade_account]
        await self._exchange(
            open_orders_request(self._next_id(), trade_account),
            lambda m: m.get("Type") in (ORDER_UPDATE, 302),
            lambda m, _p: (
                m.get("NoOrders") == 1
                or int(m.get("MessageNumber") or 0)
                >= int(m.get("TotalNumMessages") or m.get("TotalNumberMessages") or 0)
            ),
            tasks,
        )
        state = await self.sink.state(f"dtc:{account}")
        cursor = state.get("cursor")
        self._cursors[account] = 0 if cursor is None else int(cursor)
        if cursor is None:
            request = historical_order_fills_request(
                self._next_id(),
                trade_account=trade_account,
                number_of_days=self.settings.history_days,
            )
        else:
            request = historical_order_fills_request(
                self._next_id(),
                trade_account=trade_account,
                start_datetime=max(1, int(cursor) - OVERLAP_SECONDS),
            )
        history: list[Parsed] = []

        async def keep(parsed: Parsed) -> None:
            history.append(parsed)
            if len(history) >= BATCH:
                await self._history(history)

        await self._exchange(
            request,
            lambda m: m.get("Type") in (HISTORICAL_ORDER_FILL_RESPONSE, 308),
            lambda _m, p: "fills_complete" in p.extra,
            tasks,
            keep,
        )
        await self._history(history)
        positions: list[Parsed] = []

        async def collect(parsed: Parsed) -> None:
            positions.append(parsed)

        last = await self._exchange(
            current_positions_request(self._next_id(), trade_account),
            lambda m: m.get("Type") in (POSITION_UPDATE, 307),
            lambda _m, p: "snapshot_complete" in p.extra,
            tasks,
            collect,
        )
        if last is None:
            return
        records = tuple(r for p in positions for r in p.positions)
        refused = tuple(r for p in positions for r in p.rejections)
        source = f"dtc {trade_account} positions"
        if refused:
            await self.sink.apply(Parsed(rejections=refused), source)
            self.log(f"dtc {trade_account}: a position was refused: no reconciliation")
            return
        report = await self.sink.reconcile(Parsed(positions=records), account, source)
        if not report["agreed"]:
            self.log(
                f"dtc {trade_account}: the books of {account} differ from the broker in "
                f"{report['differences']} places (reconciliation {report['run']})"
            )

    async def _history(self, history: list[Parsed]) -> None:
        """Apply the history read so far, in one transaction."""
        if not history:
            return
        fills = tuple(r for p in history for r in p.fills)
        rejections = tuple(r for p in history for r in p.rejections)
        history.clear()
        together = Parsed(fills=fills, rejections=rejections)
        await self.sink.apply(together, f"dtc {self.host}:{self.port} history")
        await self._advance(together)

    def _next_id(self) -> int:
        self._request_id += 1
        return self._request_id
