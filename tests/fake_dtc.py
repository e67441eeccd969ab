"""A Sierra Chart DTC server on loopback, for the connector's tests: JSON messages ended by
a NUL (after the binary ENCODING_REQUEST, when the client sends one), the logon checked,
heartbeats, and the answers to OPEN_ORDERS_REQUEST, HISTORICAL_ORDER_FILLS_REQUEST and
CURRENT_POSITIONS_REQUEST from what happened at the broker. The test says what happened
(:meth:`FakeDtc.trade`), what reaches the client live (:meth:`push`, :meth:`restate`) and
when the connection drops (:meth:`drop`).

Field names follow DTCProtocol.h, as the recorded messages in tests/fixtures/venues/dtc/
show them.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from posledger.venues.dtc import Framer, encode
from tests.progress import wait_until

USERNAME = "trader"
PASSWORD = "secret"


@dataclass
class Fill:
    """One execution at the broker: its ORDER_UPDATE and its history row agree."""

    trade_account: str
    symbol: str
    exec_id: str
    server_order_id: str
    client_order_id: str
    side: str
    qty: str
    price: str
    time_s: int
    in_history: bool = True

    def order_update(self, request_id: int = 0, reason: int = 4) -> dict[str, Any]:
        """The ORDER_UPDATE of this fill (the order filled by it alone)."""
        return {
            "Type": 301, "RequestID": request_id, "TotalNumMessages": 1, "MessageNumber": 1,
            "Symbol": self.symbol, "Exchange": "CME", "ServerOrderID": self.server_order_id,
            "ClientOrderID": self.client_order_id, "OrderStatus": 7,
            "OrderUpdateReason": reason, "OrderType": 1, "BuySell": _side(self.side),
            "OrderQuantity": float(self.qty), "FilledQuantity": float(self.qty),
            "RemainingQuantity": 0, "AverageFillPrice": float(self.price),
            "LastFillPrice": float(self.price), "LastFillDateTime": self.time_s * 1000 + 117,
            "LastFillQuantity": float(self.qty), "LastFillExecutionID": self.exec_id,
            "TradeAccount": self.trade_account, "NoOrders": 0,
        }  # fmt: skip

    def history(self, request_id: int, number: int, total: int) -> dict[str, Any]:
        """The HISTORICAL_ORDER_FILL_RESPONSE of this fill."""
        return {
            "Type": 304, "RequestID": request_id, "TotalNumberMessages": total,
            "MessageNumber": number, "Symbol": self.symbol, "Exchange": "CME",
            "ServerOrderID": self.server_order_id, "BuySell": _side(self.side),
            "Price": float(self.price), "DateTime": self.time_s, "Quantity": float(self.qty),
            "UniqueExecutionID": self.exec_id, "TradeAccount": self.trade_account,
            "NoOrderFills": 0,
        }  # fmt: skip


def _side(side: str) -> int:
    return 1 if side == "BUY" else 2


class FakeDtc:
    """The server, on a loop of its own thread."""

    def __init__(self, *, json_only: bool = False) -> None:
        self.json_only = json_only
        self.fills: list[Fill] = []
        self.restated: dict[str, list[Fill]] = {}
        """Per trade account: orders the open-orders answer restates as filled, whose
        fills are in neither the history nor the positions."""
        self.logons = 0
        self.requests: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self._ids = itertools.count(1)
        self._writers: list[asyncio.StreamWriter] = []
        self._loop = asyncio.new_event_loop()

    # -- what happens at the broker ----------------------------------------------------

    def trade(
        self,
        trade_account: str,
        symbol: str,
        side: str,
        qty: str,
        price: str,
        time_s: int,
        *,
        client_order_id: str = "",
        in_history: bool = True,
    ) -> Fill:
        number = next(self._ids)
        fill = Fill(
            trade_account, symbol, f"SC-F-{number:06d}", str(1400 + number),
            client_order_id or f"alpha-{number:04d}", side, qty, price, time_s, in_history,
        )  # fmt: skip
        self.fills.append(fill)
        return fill

    def restate(self, fill: Fill) -> None:
        """Keep ``fill``'s order among the open-orders answer, restated as filled."""
        self.restated.setdefault(fill.trade_account, []).append(fill)

    def positions(self, trade_account: str) -> list[tuple[str, Decimal, Decimal]]:
        """``(symbol, signed quantity, average price)`` of every open position."""
        held: dict[str, tuple[Decimal, Decimal]] = {}
        for fill in sorted(self.fills, key=lambda f: f.time_s):
            if fill.trade_account != trade_account:
                continue
            qty, avg = held.get(fill.symbol, (Decimal(0), Decimal(0)))
            signed = Decimal(fill.qty) * (1 if fill.side == "BUY" else -1)
            price = Decimal(fill.price)
            new = qty + signed
            if new == 0:
                avg = Decimal(0)
            elif qty == 0 or (qty > 0) != (new > 0):
                avg = price
            elif (qty > 0) == (signed > 0):
                avg = (avg * abs(qty) + price * abs(signed)) / abs(new)
            held[fill.symbol] = (new, avg)
        return [(s, q, a) for s, (q, a) in sorted(held.items()) if q != 0]

    # -- the connection ----------------------------------------------------------------

    def push(self, *messages: dict[str, Any]) -> None:
        """Send ``messages`` to every client."""

        def send() -> None:
            for writer in self._writers:
                for message in messages:
                    writer.write(encode(message))

        self._on_loop(send)

    def drop(self) -> None:
        """Close every connection."""

        def close() -> None:
            for writer in self._writers:
                writer.close()
            self._writers.clear()

        self._on_loop(close)

    @property
    def connections(self) -> int:
        return len(self._writers)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        framer = Framer()
        beating: asyncio.Task[None] | None = None
        try:
            first = await reader.readexactly(1)
            if first != b"{":
                if self.json_only:
                    self.refused.append(f"binary data on a JSON server: {first!r}")
                    return
                rest = await reader.readexactly(15)
                size, kind, _version, encoding = struct.unpack_from("<HHii", first + rest)
                if (size, kind, encoding) != (16, 6, 2):
                    self.refused.append(f"not an ENCODING_REQUEST for JSON: {first + rest!r}")
                    return
                writer.write(struct.pack("<HHii4s", 16, 7, 8, 2, b"DTC\x00"))
                first = b""
            framer.feed(first)
            while data := await reader.read(1 << 16):
                for message in framer.feed(data):
                    if not isinstance(message, dict):
                        self.refused.append(f"not a message: {message}")
                        continue
                    answer = self._answer(message)
                    if answer is None:
                        return
                    for reply in answer:
                        writer.write(encode(reply))
                    if message.get("Type") == 1 and beating is None:
                        interval = int(message.get("HeartbeatIntervalInSeconds") or 10)
                        beating = asyncio.create_task(self._beat(writer, interval))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if beating is not None:
                beating.cancel()
            if writer in self._writers:
                self._writers.remove(writer)
            writer.close()

    @staticmethod
    async def _beat(writer: asyncio.StreamWriter, interval: int) -> None:
        while not writer.is_closing():
            writer.write(encode({"Type": 3, "NumDroppedMessages": 0}))
            await asyncio.sleep(interval)

    def _answer(self, message: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The replies to ``message``; None closes the connection."""
        self.requests.append(message)
        kind = message.get("Type")
        request_id = message.get("RequestID", 0)
        account = message.get("TradeAccount", "")
        if kind == 1:
            ok = message.get("Username") == USERNAME and message.get("Password") == PASSWORD
            if ok:
                self.logons += 1
            return [
                {
                    "Type": 2, "ProtocolVersion": 8, "Result": 1 if ok else 3,
                    "ResultText": "" if ok else "Invalid username or password",
                    "ServerName": "FakeDTC", "TradingIsSupported": 1,
                }
            ]  # fmt: skip
        if kind == 3:
            return []
        if kind == 300:
            orders = [f for f in self.fills if f.trade_account == account]
            orders += self.restated.get(account, [])
            if not orders:
                return [{"Type": 301, "RequestID": request_id, "NoOrders": 1,
                         "TradeAccount": account}]  # fmt: skip
            replies = []
            for number, fill in enumerate(orders, 1):
                reason = 4 if fill in self.restated.get(account, []) else 1
                reply = fill.order_update(request_id, reason)
                reply.update(TotalNumMessages=len(orders), MessageNumber=number)
                replies.append(reply)
            return replies
        if kind == 303:
            start = int(message.get("StartDateTime") or 0)
            if not start:
                start = int(time.time()) - 86_400 * int(message.get("NumberOfDays") or 0)
            rows = [
                f
                for f in self.fills
                if f.trade_account == account and f.in_history and f.time_s >= start
            ]
            if not rows:
                return [{"Type": 304, "RequestID": request_id, "NoOrderFills": 1,
                         "TradeAccount": account}]  # fmt: skip
            return [f.history(request_id, n, len(rows)) for n, f in enumerate(rows, 1)]
        if kind == 305:
            held = self.positions(account)
            if not held:
                return [{"Type": 306, "RequestID": request_id, "NoPositions": 1,
                         "TradeAccount": account}]  # fmt: skip
            return [
                {
                    "Type": 306, "RequestID": request_id, "TotalNumberMessages": len(held),
                    "MessageNumber": n, "Symbol": symbol, "Exchange": "CME",
                    "Quantity": float(qty), "AveragePrice": float(avg),
                    "TradeAccount": account, "NoPositions": 0, "Unsolicited": 0,
                }
                for n, (symbol, qty, avg) in enumerate(held, 1)
            ]  # fmt: skip
        self.refused.append(f"unexpected message: {message}")
        return []

    # -- the thread --------------------------------------------------------------------

    def start(self) -> FakeDtc:
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._serve, "127.0.0.1", 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="fake-dtc")
        self._thread.start()
        wait_until(started.is_set, lambda: 0, "the fake DTC server to start")
        return self

    def _on_loop(self, work: Any) -> None:
        """Run ``work`` on the server's loop (where the connections live), and wait."""
        done = threading.Event()

        def run() -> None:
            work()
            done.set()

        self._loop.call_soon_threadsafe(run)
        wait_until(done.is_set, lambda: 0, "the fake DTC server's loop")

    def stop(self) -> None:
        """Close the connections, then the server."""
        self.drop()
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
