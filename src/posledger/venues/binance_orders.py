"""Carrying the ledger's outbox commands out on Binance USD-M futures (docs/venues/binance.md,
Carrying out commands): bracket legs placed, amended and cancelled, each command's id
as the order's client order id (``newClientOrderId``), so a command sent twice is one
order, and the leg's fills name it.

A command is claimed from the outbox (``ledger.commands(claim=...)``), carried out, and
acked with Binance's order id, or failed with Binance's own reason. A crash anywhere
repeats the command after its lease: a place whose order exists is recognised by its
client order id; a cancel of an order that is gone is done.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx

from .base import SymbolMap
from .follow import LedgerSink

__all__ = ["BinanceExecutor", "order_params"]

DUPLICATE_ID = -4116
"""Binance: ``ClientOrderId is duplicated`` (the order was placed already)."""
UNKNOWN_ORDER = -2011
"""Binance: ``Unknown order sent`` (no such open order: filled, cancelled or never)."""

_TYPES = {"market": "MARKET", "limit": "LIMIT", "stop": "STOP_MARKET", "stop_limit": "STOP"}


class Refused(Exception):
    """Binance refused a request: its code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"Binance {code}: {message}")
        self.code = code


def order_params(payload: dict[str, Any], symbol: str, hedge: bool) -> dict[str, Any]:
    """``POST /fapi/v1/order``'s parameters for a ``place`` command's payload
    (docs/brackets.md, Commands)."""
    kind = str(payload["order_type"])
    params: dict[str, Any] = {
        "symbol": symbol,
        "side": payload["side"],
        "type": _TYPES[kind],
        "quantity": payload["quantity"],
        "newClientOrderId": payload["client_order_id"],
        "positionSide": payload.get("position_side") or "BOTH",
    }
    if kind in ("limit", "stop_limit"):
        params["price"] = payload["price"]
        params["timeInForce"] = "GTC"
    if kind in ("stop", "stop_limit"):
        params["stopPrice"] = payload["stop_price"]
    if payload.get("reduce_only") and not hedge:
        params["reduceOnly"] = "true"  # hedge mode: the position side says it (Binance)
    return params


class BinanceExecutor:
    """Claims the account's commands, carries them out, settles them."""

    def __init__(
        self,
        sink: LedgerSink,
        *,
        account: str,
        symbols: SymbolMap,
        signed: Callable[..., Any],
        worker: str,
        hedge: Callable[[], bool],
        idle_seconds: float = 0.5,
        log: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.sink = sink
        self.account = account
        self.signed = signed
        self.worker = worker
        self.hedge = hedge
        self.idle_seconds = idle_seconds
        self.log = log
        self.symbol_of = {
            instrument: symbol
            for (holder, symbol), instrument in symbols.entries.items()
            if holder == account
        }
        self.done = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: claim (the worker's own claims back first), carry out, settle."""
        own = True
        while not stop.is_set():
            commands = await self.sink.claim(self.worker, self.account, own)
            own = False
            for command in commands:
                await self._carry_out(command)
            if not commands:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.idle_seconds)

    async def _carry_out(self, command: dict[str, Any]) -> None:
        command_id, payload = command["command_id"], command["payload"]
        symbol = self.symbol_of.get(command["instrument"])
        if symbol is None:
            await self.sink.fail(
                command_id,
                f"no binance symbol is mapped to {command['instrument']} on {self.account}",
            )
            return
        try:
            order_id = await getattr(self, f"_{command['kind']}")(payload, symbol)
        except Refused as exc:
            await self.sink.fail(command_id, str(exc))
            self.log(f"binance {self.account}: {command['kind']} {command_id} refused: {exc}")
            return
        await self.sink.ack(command_id, order_id)
        self.done += 1

    async def _place(self, payload: dict[str, Any], symbol: str) -> str | None:
        params = order_params(payload, symbol, self.hedge())
        try:
            answer = await self._send("POST", params)
        except Refused as exc:
            if exc.code != DUPLICATE_ID:
                raise
            # Placed before (the ack was lost): the order under this id is the one.
            answer = await self._send(
                "GET", {"symbol": symbol, "origClientOrderId": payload["client_order_id"]}
            )
        return None if answer.get("orderId") is None else str(answer["orderId"])

    async def _amend(self, payload: dict[str, Any], symbol: str) -> str | None:
        order = await self._send(
            "GET", {"symbol": symbol, "origClientOrderId": payload["client_order_id"]}
        )
        if order.get("type") != "LIMIT":
            raise Refused(
                0,
                f"Binance modifies LIMIT orders only; {payload['client_order_id']} is a "
                f"{order.get('type')} order (cancel it and set the bracket again)",
            )
        params = {
            "symbol": symbol,
            "origClientOrderId": payload["client_order_id"],
            "side": order["side"],
            "quantity": str(Decimal(str(payload["quantity"]))),
            "price": order["price"],
        }
        answer = await self._send("PUT", params)
        return None if answer.get("orderId") is None else str(answer["orderId"])

    async def _cancel(self, payload: dict[str, Any], symbol: str) -> str | None:
        params = {"symbol": symbol, "origClientOrderId": payload["client_order_id"]}
        try:
            answer = await self._send("DELETE", params)
        except Refused as exc:
            if exc.code != UNKNOWN_ORDER:
                raise
            return None  # gone already: filled (its fills tell) or cancelled
        return None if answer.get("orderId") is None else str(answer["orderId"])

    async def _send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            found = await self.signed("/fapi/v1/order", params, method=method)
        except httpx.HTTPStatusError as exc:
            try:
                body = exc.response.json()
                code, message = int(body["code"]), str(body["msg"])
            except (ValueError, KeyError, TypeError):
                raise exc from None
            raise Refused(code, message) from None
        return dict(found)
