"""A Binance USD-M futures account on loopback, for the connector's tests: the REST
endpoints the connector calls (listen key, fill history, orders, positions, position
mode), signed requests checked as Binance checks them, and the user data stream as a
WebSocket. The test says what happened at the broker (:meth:`FakeBinance.trade`), what
reaches the stream (:meth:`push`) and when the connection drops (:meth:`drop`).

Message shapes follow Binance's documentation, as the recorded payloads in
tests/fixtures/venues/binance/ show them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import socket
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.progress import wait_until

KEY = "fake-api-key"
SECRET = "fake-api-secret"


@dataclass
class Trade:
    """One execution at the broker: its stream event, history row and order row agree."""

    symbol: str
    trade_id: int
    order_id: int
    client_order_id: str
    side: str
    qty: str
    price: str
    time_ms: int
    commission: str = "0.01"
    commission_asset: str = "USDT"
    position_side: str = "BOTH"
    liquidation: bool = False
    in_history: bool = True
    """False: counted in the positions, gone from the fill and order history."""

    def event(self) -> dict[str, Any]:
        """``ORDER_TRADE_UPDATE`` of this execution (the order filled by it alone)."""
        return {
            "e": "ORDER_TRADE_UPDATE",
            "E": self.time_ms + 3,
            "T": self.time_ms,
            "o": {
                "s": self.symbol,
                "c": self.client_order_id,
                "S": self.side,
                "o": "MARKET",
                "f": "GTC",
                "q": self.qty,
                "p": "0",
                "ap": self.price,
                "sp": "0",
                "x": "CALCULATED" if self.liquidation else "TRADE",
                "X": "FILLED",
                "i": self.order_id,
                "l": self.qty,
                "z": self.qty,
                "L": self.price,
                "N": self.commission_asset,
                "n": self.commission,
                "T": self.time_ms,
                "t": self.trade_id,
                "b": "0",
                "a": "0",
                "m": False,
                "R": False,
                "wt": "CONTRACT_PRICE",
                "ot": "MARKET",
                "ps": self.position_side,
                "cp": False,
                "rp": "0",
                "pP": False,
                "si": 0,
                "ss": 0,
                "V": "NONE",
                "pm": "NONE",
                "gtd": 0,
            },
        }

    def row(self) -> dict[str, Any]:
        """This execution as ``GET /fapi/v1/userTrades`` lists it."""
        return {
            "symbol": self.symbol,
            "id": self.trade_id,
            "orderId": self.order_id,
            "side": self.side,
            "price": self.price,
            "qty": self.qty,
            "realizedPnl": "0",
            "marginAsset": "USDT",
            "quoteQty": str(Decimal(self.qty) * Decimal(self.price)),
            "commission": self.commission,
            "commissionAsset": self.commission_asset,
            "time": self.time_ms,
            "positionSide": self.position_side,
            "buyer": self.side == "BUY",
            "maker": False,
        }

    def order(self) -> dict[str, Any]:
        """Its order as ``GET /fapi/v1/allOrders`` lists it."""
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "clientOrderId": self.client_order_id,
            "side": self.side,
            "positionSide": self.position_side,
            "status": "FILLED",
            "type": "MARKET",
            "origQty": self.qty,
            "executedQty": self.qty,
            "avgPrice": self.price,
            "time": self.time_ms,
            "updateTime": self.time_ms,
        }


@dataclass
class FakeBinance:
    """The fake account. ``dual``: hedge mode (``dualSidePosition``)."""

    dual: bool = False
    trades: list[Trade] = field(default_factory=list)
    listen_keys: list[str] = field(default_factory=list)
    keepalives: int = 0
    preload: list[dict[str, Any]] = field(default_factory=list)
    """Events the first stream to open is sent at once (the benchmark's)."""
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Orders placed through the REST API, by client order id."""
    refused: list[str] = field(default_factory=list)
    """Requests refused (a bad key or signature): a test expects none."""
    _streams: list[asyncio.Queue[dict[str, Any] | None]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- what happens at the broker ------------------------------------------------------

    def trade(self, side: str, qty: str, price: str, time_ms: int, **kw: Any) -> Trade:
        """An execution at the broker (in the history from now on; not yet on the stream)."""
        n = next(self._ids)
        found = Trade(
            kw.pop("symbol", "BTCUSDT"),
            1000 + n,
            5000 + n,
            kw.pop("client_order_id", f"alpha-{n}"),
            side,
            qty,
            price,
            time_ms,
            **kw,
        )
        self.trades.append(found)
        return found

    def fill_order(self, client_order_id: str, price: str, time_ms: int) -> Trade:
        """An order placed through the API fills whole (in the history from now on)."""
        order = self.orders[client_order_id]
        assert order["status"] == "NEW", order
        order["status"] = "FILLED"
        found = Trade(
            order["symbol"],
            1000 + next(self._ids),
            order["orderId"],
            client_order_id,
            order["side"],
            order["origQty"],
            price,
            time_ms,
            position_side=order["positionSide"],
        )
        self.trades.append(found)
        return found

    def positions(self) -> list[dict[str, Any]]:
        """``positionRisk`` v3: each symbol's (and side's) net position from the trades."""
        net: dict[tuple[str, str], Decimal] = {}
        for t in self.trades:
            sign = 1 if t.side == "BUY" else -1
            key = (t.symbol, t.position_side)
            net[key] = net.get(key, Decimal(0)) + sign * Decimal(t.qty)
        return [
            {
                "symbol": symbol,
                "positionSide": side,
                "positionAmt": str(amount),
                "entryPrice": "0",
                "breakEvenPrice": "0",
                "markPrice": "0",
                "unRealizedProfit": "0",
                "liquidationPrice": "0",
                "isolatedMargin": "0",
                "notional": "0",
                "marginAsset": "USDT",
                "isolatedWallet": "0",
                "initialMargin": "0",
                "maintMargin": "0",
                "positionInitialMargin": "0",
                "openOrderInitialMargin": "0",
                "adl": 0,
                "bidNotional": "0",
                "askNotional": "0",
                "updateTime": 0,
            }
            for (symbol, side), amount in sorted(net.items())
            if amount != 0
        ]

    # -- the stream ---------------------------------------------------------------------

    def push(self, *events: dict[str, Any]) -> None:
        """Send ``events`` on every open stream, in order."""
        self._on_loop(lambda: [q.put_nowait(e) for q in self._streams for e in events])

    def drop(self) -> None:
        """Close every open stream (the connection drops)."""
        self._on_loop(lambda: [q.put_nowait(None) for q in self._streams])

    @property
    def streams(self) -> int:
        return len(self._streams)

    # -- the server ---------------------------------------------------------------------

    def _ok(self, request: Request, signed: bool) -> bool:
        if request.headers.get("x-mbx-apikey") != KEY:
            self.refused.append(f"{request.url.path}: api key")
            return False
        if not signed:
            return True
        query = request.url.query
        body, _, signature = query.rpartition("&signature=")
        expected = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected) or "timestamp=" not in body:
            self.refused.append(f"{request.url.path}: signature")
            return False
        return True

    def _app(self) -> Starlette:
        def refused() -> JSONResponse:
            return JSONResponse({"code": -1022, "msg": "Signature is not valid."}, 401)

        async def listen_key(request: Request) -> JSONResponse:
            if not self._ok(request, signed=False):
                return refused()
            if request.method == "PUT":
                self.keepalives += 1
                return JSONResponse({})
            key = f"lk{len(self.listen_keys) + 1}"
            self.listen_keys.append(key)
            return JSONResponse({"listenKey": key})

        def window(request: Request, rows: list[dict[str, Any]], at: str) -> list[Any]:
            q = request.query_params
            start, end = int(q.get("startTime", 0)), int(q.get("endTime", 2**62))
            assert end - start < 7 * 86_400_000, "a window longer than 7 days"
            chosen = [r for r in rows if r["symbol"] == q["symbol"] and start <= r[at] <= end]
            return chosen[: int(q.get("limit", 500))]

        async def user_trades(request: Request) -> JSONResponse:
            if not self._ok(request, signed=True):
                return refused()
            rows = [t.row() for t in self.trades if t.in_history]
            return JSONResponse(window(request, rows, "time"))

        async def all_orders(request: Request) -> JSONResponse:
            if not self._ok(request, signed=True):
                return refused()
            rows = [t.order() for t in self.trades if t.in_history]
            return JSONResponse(window(request, rows, "time"))

        async def position_risk(request: Request) -> JSONResponse:
            if not self._ok(request, signed=True):
                return refused()
            return JSONResponse(self.positions())

        async def dual(request: Request) -> JSONResponse:
            if not self._ok(request, signed=True):
                return refused()
            return JSONResponse({"dualSidePosition": self.dual})

        async def stream(websocket: WebSocket) -> None:
            if websocket.path_params["key"] not in self.listen_keys:
                await websocket.close(code=4001)
                return
            await websocket.accept()
            queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
            for event in self.preload:
                queue.put_nowait(event)
            self.preload = []
            self._streams.append(queue)
            try:
                while (event := await queue.get()) is not None:
                    await websocket.send_json(event)
                await websocket.close()
            except WebSocketDisconnect:
                pass
            finally:
                self._streams.remove(queue)

        def error(code: int, message: str) -> JSONResponse:
            return JSONResponse({"code": code, "msg": message}, 400)

        async def order(request: Request) -> JSONResponse:
            if not self._ok(request, signed=True):
                return refused()
            q = request.query_params
            if request.method == "POST":
                cid = q["newClientOrderId"]
                if cid in self.orders:
                    return error(-4116, "ClientOrderId is duplicated.")
                placed = {
                    "orderId": 9000 + next(self._ids),
                    "clientOrderId": cid,
                    "symbol": q["symbol"],
                    "side": q["side"],
                    "positionSide": q.get("positionSide", "BOTH"),
                    "type": q["type"],
                    "origQty": q["quantity"],
                    "price": q.get("price", "0"),
                    "stopPrice": q.get("stopPrice", "0"),
                    "reduceOnly": q.get("reduceOnly") == "true",
                    "status": "NEW",
                }
                self.orders[cid] = placed
                return JSONResponse(placed)
            found = self.orders.get(q["origClientOrderId"])
            if request.method == "GET":
                if found is None:
                    return error(-2013, "Order does not exist.")
                return JSONResponse(found)
            if found is None or found["status"] != "NEW":
                return error(-2011, "Unknown order sent.")
            if request.method == "DELETE":
                found["status"] = "CANCELED"
                return JSONResponse(found)
            if found["type"] != "LIMIT":
                return error(-4028, "Order type not supported for modification.")
            found["origQty"], found["price"] = q["quantity"], q["price"]
            return JSONResponse(found)

        return Starlette(
            routes=[
                Route("/fapi/v1/order", order, methods=["POST", "GET", "PUT", "DELETE"]),
                Route("/fapi/v1/listenKey", listen_key, methods=["POST", "PUT"]),
                Route("/fapi/v1/userTrades", user_trades),
                Route("/fapi/v1/allOrders", all_orders),
                Route("/fapi/v3/positionRisk", position_risk),
                Route("/fapi/v1/positionSide/dual", dual),
                WebSocketRoute("/ws/{key}", stream),
            ]
        )

    def start(self) -> FakeBinance:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app(),
            log_level="warning",
            lifespan="off",
            loop="asyncio",
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._server.serve(sockets=[sock]))

        self._thread = threading.Thread(target=serve, name="fake-binance")
        self._thread.start()
        wait_until(lambda: self._server.started, lambda: 0, "the fake Binance to start")
        return self

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _on_loop(self, work: Any) -> None:
        """Run ``work`` on the server's loop (where the streams live), and wait for it."""
        done = threading.Event()

        def run() -> None:
            work()
            done.set()

        self._loop.call_soon_threadsafe(run)
        wait_until(done.is_set, lambda: 0, "the fake Binance's loop")

    def stop(self) -> None:
        """Close the streams, then the server."""
        self.drop()
        self._server.should_exit = True
        self._thread.join()
