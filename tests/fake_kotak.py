"""A Kotak Neo account on loopback, for the polling connector's tests: the trade report
and the position book at the v1 SDK's paths, the SDK's headers checked. The test says
what happened at the broker (:meth:`FakeKotak.trade`, :meth:`hold`) and when requests fail
(:meth:`fail`). Row shapes follow tests/fixtures/venues/kotak_neo/.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from decimal import Decimal
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.progress import wait_until

ACCESS = "fake-access-token"
SESSION = "fake-session-token"
SID = "fake-sid"
TRADES = "/Orders/2.0/quick/user/trades"
POSITIONS = "/Orders/2.0/quick/user/positions"


class FakeKotak:
    """The trade report and position book of one account, served on 127.0.0.1."""

    TRADES = TRADES
    POSITIONS = POSITIONS

    def __init__(self) -> None:
        self.trades: list[dict[str, Any]] = []
        self.book: dict[str, dict[str, Any]] = {}
        self.requests: dict[str, int] = {TRADES: 0, POSITIONS: 0}
        self.failed = 0
        """Requests answered with a server error."""
        self.refused: list[str] = []
        """Requests with headers the SDK would not send (a test fails on any)."""
        self._failing = 0
        self._lock = threading.Lock()

    # -- what happens at the broker ------------------------------------------------------

    def trade(
        self, side: str, qty: int, price: str, clock: str, *, symbol: str = "AXISBANK-EQ"
    ) -> str:
        """A fill in today's report (21-Jun-2022), its position booked: its exec_id."""
        with self._lock:
            number = len(self.trades) + 1
            order = f"2206210000000{number:02d}"
            self.trades.append(
                {
                    "exSeg": "nse_cm", "trdSym": symbol, "nOrdNo": order,
                    "flId": str(40000 + number), "trnsTp": side, "fldQty": qty,
                    "avgPrc": price, "flDt": "21-Jun-2022", "flTm": clock, "rptTp": "fill",
                    "rmk": "--", "prod": "CNC", "hsUpTm": f"2022/06/21 {clock}",
                }
            )  # fmt: skip
            row = self.book.setdefault(symbol, _row(symbol))
            field = "flBuyQty" if side == "B" else "flSellQty"
            amount = "buyAmt" if side == "B" else "sellAmt"
            row[field] = str(int(row[field]) + qty)
            row[amount] = str(Decimal(row[amount]) + Decimal(price) * qty)
            row["hsUpTm"] = f"2022/06/21 {clock}"
            return f"nse_cm:{order}:{40000 + number}"

    def hold(self, symbol: str, carried: int) -> None:
        """A position carried forward from an earlier day (no fill in today's report)."""
        with self._lock:
            row = self.book.setdefault(symbol, _row(symbol))
            row["cfBuyQty" if carried > 0 else "cfSellQty"] = str(abs(carried))

    def fail(self, requests: int) -> None:
        """Answer the next ``requests`` requests with 500."""
        with self._lock:
            self._failing = requests

    # -- the API -------------------------------------------------------------------------

    def _check(self, request: Request) -> JSONResponse | None:
        headers = request.headers
        expected = {"authorization": f"Bearer {ACCESS}", "sid": SID, "auth": SESSION}
        wrong = [k for k, v in expected.items() if headers.get(k) != v]
        if not headers.get("neo-fin-key"):
            wrong.append("neo-fin-key")
        if wrong:
            self.refused.append(f"{request.url.path}: {wrong}")
            return JSONResponse({"stat": "Not_Ok", "stCode": 1007, "errMsg": "Invalid session"})
        with self._lock:
            self.requests[request.url.path] += 1
            if self._failing > 0:
                self._failing -= 1
                self.failed += 1
                return JSONResponse({"message": "gateway error"}, status_code=500)
        return None

    def _app(self) -> Starlette:
        async def trades(request: Request) -> JSONResponse:
            answer = self._check(request)
            if answer is not None:
                return answer
            with self._lock:
                data = [dict(row) for row in self.trades]
            return JSONResponse({"stat": "Ok", "stCode": 200, "data": data})

        async def positions(request: Request) -> JSONResponse:
            answer = self._check(request)
            if answer is not None:
                return answer
            with self._lock:
                data = [dict(row) for row in self.book.values()]
            return JSONResponse({"stat": "Ok", "stCode": 200, "data": data})

        return Starlette(routes=[Route(TRADES, trades), Route(POSITIONS, positions)])

    def start(self) -> FakeKotak:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._app(), log_level="warning", lifespan="off", loop="asyncio")
        self._server = uvicorn.Server(config)
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._server.serve(sockets=[sock]))

        self._thread = threading.Thread(target=serve, name="fake-kotak")
        self._thread.start()
        wait_until(lambda: self._server.started, lambda: 0, "the fake Kotak Neo to start")
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join()


def _row(symbol: str) -> dict[str, Any]:
    """A position-book row with nothing bought or sold yet."""
    return {
        "exSeg": "nse_cm", "trdSym": symbol, "prod": "CNC", "cfBuyQty": "0",
        "cfSellQty": "0", "flBuyQty": "0", "flSellQty": "0", "buyAmt": "0.00",
        "sellAmt": "0.00", "cfBuyAmt": "0.00", "cfSellAmt": "0.00", "multiplier": "1",
        "genNum": "1", "genDen": "1", "prcNum": "1", "prcDen": "1", "lotSz": "1",
        "hsUpTm": "2022/06/21 09:15:00",
    }  # fmt: skip
