"""Sierra Chart's DTC protocol in its JSON encoding: the parser (docs/venues/dtc.md).

:func:`parse_message` turns one decoded DTC message into ledger input records
(posledger.venues.base.Parsed): ORDER_UPDATE fills, HISTORICAL_ORDER_FILL_RESPONSE fills,
POSITION_UPDATE broker positions, and what LOGON_RESPONSE, TRADE_ACCOUNT_RESPONSE, LOGOFF
and the request rejections tell a connector. Pure. The codec (framing and what a client
sends) is :mod:`posledger.venues.dtc_codec`, re-exported here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .base import Parsed, Rejection, SymbolMap, VenueError, decimal_text
from .dtc_codec import (
    CURRENT_POSITIONS_REJECT,
    CURRENT_POSITIONS_REQUEST,
    HEARTBEAT,
    HISTORICAL_ORDER_FILL_RESPONSE,
    HISTORICAL_ORDER_FILLS_REJECT,
    HISTORICAL_ORDER_FILLS_REQUEST,
    JSON_ENCODING_REQUEST,
    LOGOFF,
    LOGON_REQUEST,
    LOGON_RESPONSE,
    LOGON_STATUS,
    LOGON_SUCCESS,
    MESSAGE_NAMES,
    OPEN_ORDERS_REJECT,
    OPEN_ORDERS_REQUEST,
    ORDER_FILLED,
    ORDER_FILLED_PARTIALLY,
    ORDER_STATUSES,
    ORDER_UPDATE,
    ORDER_UPDATE_REASONS,
    POSITION_UPDATE,
    PROTOCOL_VERSION,
    SIDES,
    TRADE_ACCOUNT_RESPONSE,
    TRADE_ACCOUNTS_REQUEST,
    Frame,
    Framer,
    current_positions_request,
    decode,
    encode,
    heartbeat,
    historical_order_fills_request,
    json_kind,
    logon_request,
    open_orders_request,
    trade_accounts_request,
)

__all__ = [
    "CURRENT_POSITIONS_REQUEST",
    "HEARTBEAT",
    "HISTORICAL_ORDER_FILLS_REQUEST",
    "HISTORICAL_ORDER_FILL_RESPONSE",
    "JSON_ENCODING_REQUEST",
    "LOGON_REQUEST",
    "LOGON_RESPONSE",
    "OPEN_ORDERS_REQUEST",
    "ORDER_UPDATE",
    "POSITION_UPDATE",
    "PROTOCOL_VERSION",
    "TRADE_ACCOUNTS_REQUEST",
    "TRADE_ACCOUNT_RESPONSE",
    "Frame",
    "Framer",
    "current_positions_request",
    "decode",
    "encode",
    "heartbeat",
    "historical_order_fills_request",
    "logon_request",
    "open_orders_request",
    "parse_message",
    "trade_accounts_request",
]

DBL_MAX = Decimal(repr(1.7976931348623157e308))
"""What DTC puts in a double field it leaves unset."""
MILLISECONDS_FROM = 10**11
"""An epoch time this large is in milliseconds (after 1973-03-03); below, in seconds
(before the year 5138). DTCProtocol.h has sent LastFillDateTime in both units."""
LATEST_SECOND = 9_183_110_399
"""2261-12-31T23:59:59Z, the latest second the ledger takes."""


# -- the parser ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Context:
    accounts: Mapping[str, str]
    symbols: SymbolMap
    strategy_of: Callable[[str], str | None] | None
    client_order_of: Callable[[str], str | None] | None
    whole_seconds: bool

    def account(self, trade_account: str) -> str:
        if not trade_account:
            raise VenueError("the message names no TradeAccount")
        account = self.accounts.get(trade_account)
        if account is None:
            raise VenueError(
                f"DTC trade account {trade_account} is not mapped to a posledger account: "
                f"map it in the connector's accounts ({trade_account} -> ACCOUNT) to an "
                "account registered with mode SIM for a simulated trade account, LIVE for "
                "a live one"
            )
        return account

    def instrument(self, account: str, symbol: str) -> str:
        if not symbol:
            raise VenueError("the message names no Symbol")
        instrument = self.symbols.instrument(account, symbol)
        if instrument is None:
            raise VenueError(self.symbols.missing(account, symbol))
        return instrument

    def owner(self, client_order_id: str, server_order_id: str) -> dict[str, str]:
        """``client_order_id`` and ``strategy`` of a fill, as far as they are known."""
        if not client_order_id and server_order_id and self.client_order_of is not None:
            client_order_id = self.client_order_of(server_order_id) or ""
        if not client_order_id:
            return {}
        owner = {"client_order_id": client_order_id}
        strategy = self.strategy_of(client_order_id) if self.strategy_of is not None else None
        if strategy:
            owner["strategy"] = strategy
        return owner


def parse_message(
    message: Mapping[str, Any] | Rejection,
    *,
    accounts: Mapping[str, str],
    symbols: SymbolMap,
    strategy_of: Callable[[str], str | None] | None = None,
    client_order_of: Callable[[str], str | None] | None = None,
    whole_seconds: bool = True,
) -> Parsed:
    """What one DTC message (or a :class:`Framer`'s rejected frame) means to the ledger.

    ``accounts`` maps a DTC ``TradeAccount`` to a posledger account; ``symbols`` maps a DTC
    ``Symbol`` per posledger account. ``strategy_of`` names the strategy of a client order
    id (a naming convention); ``client_order_of`` gives the ``ClientOrderID`` of a
    ``ServerOrderID`` (HISTORICAL_ORDER_FILL_RESPONSE carries none). ``whole_seconds``
    cuts fill times to the second, the precision of the fill history, so that a live fill
    and the same fill caught up from history are one record; False keeps the fraction
    ORDER_UPDATE carries. Venue data never raises: what cannot be read is a rejection."""
    if isinstance(message, Rejection):
        return Parsed(rejections=(message,))
    context = _Context(accounts, symbols, strategy_of, client_order_of, whole_seconds)
    try:
        kind = message.get("Type")
        if kind is None:
            raise VenueError("no Type: not a DTC message")
        if isinstance(kind, bool) or not isinstance(kind, int):
            raise VenueError(f"Type must be an integer, got {_show(kind)}")
        reader = _READERS.get(kind)
        if reader is not None:
            return reader(message, context)
        if kind in MESSAGE_NAMES:
            return Parsed(ignored=f"{MESSAGE_NAMES[kind]}: nothing for the ledger")
        return Parsed(ignored=f"DTC message type {kind}: not read")
    except VenueError as error:
        return Parsed(rejections=(Rejection(str(error), _raw(message)),))


def _order_update(message: Mapping[str, Any], context: _Context) -> Parsed:
    reason = _int(message, "OrderUpdateReason")
    name = ORDER_UPDATE_REASONS.get(reason, f"OrderUpdateReason {reason}")
    request_id = _int(message, "RequestID")
    if _int(message, "NoOrders") == 1:
        return Parsed(ignored="ORDER_UPDATE NoOrders: no open orders", extra=_request(message))
    trade_account = _text(message, "TradeAccount")
    server_order_id = _text(message, "ServerOrderID")
    client_order_id = _text(message, "ClientOrderID")
    status = _int(message, "OrderStatus")
    order = {
        "trade_account": trade_account,
        "server_order_id": server_order_id,
        "client_order_id": client_order_id,
        "status": ORDER_STATUSES.get(status, f"OrderStatus {status}"),
        "reason": name,
    }
    extra = {"order": order}
    if reason not in (ORDER_FILLED, ORDER_FILLED_PARTIALLY):
        return Parsed(ignored=f"ORDER_UPDATE {name}: not a fill", extra=extra)
    total = _int(message, "TotalNumMessages") or _int(message, "TotalNumberMessages")
    if request_id != 0 or total > 1:
        return Parsed(
            ignored=(
                f"ORDER_UPDATE {name} restated (RequestID {request_id}, message "
                f"{_int(message, 'MessageNumber')} of {total}): a restated order is not a "
                "fill; fills are caught up with HISTORICAL_ORDER_FILLS_REQUEST"
            ),
            extra=extra,
        )
    account = context.account(trade_account)
    exec_id = _text(message, "LastFillExecutionID")
    if not exec_id:
        raise VenueError(f"ORDER_UPDATE {name} has no LastFillExecutionID")
    fill = _fill(
        exec_id=exec_id,
        account=account,
        instrument=context.instrument(account, _text(message, "Symbol")),
        side=_side(message),
        quantity=_positive(message, "LastFillQuantity"),
        price=_number(message, "LastFillPrice"),
        ts=_time(message, "LastFillDateTime", context.whole_seconds),
        owner=context.owner(client_order_id, server_order_id),
    )
    return Parsed(fills=(fill,), extra=extra)


def _historical_fill(message: Mapping[str, Any], context: _Context) -> Parsed:
    extra = _request(message)
    trade_account = _text(message, "TradeAccount")
    if _int(message, "NoOrderFills") == 1:
        extra["fills_complete"] = context.accounts.get(trade_account)
        return Parsed(ignored="HISTORICAL_ORDER_FILL_RESPONSE NoOrderFills: no fills", extra=extra)
    account = context.account(trade_account)
    if _is_last(message, "TotalNumberMessages"):
        extra["fills_complete"] = account
    exec_id = _text(message, "UniqueExecutionID")
    if not exec_id:
        raise VenueError("HISTORICAL_ORDER_FILL_RESPONSE has no UniqueExecutionID")
    fill = _fill(
        exec_id=exec_id,
        account=account,
        instrument=context.instrument(account, _text(message, "Symbol")),
        side=_side(message),
        quantity=_positive(message, "Quantity"),
        price=_number(message, "Price"),
        ts=_time(message, "DateTime", context.whole_seconds),
        owner=context.owner("", _text(message, "ServerOrderID")),
    )
    return Parsed(fills=(fill,), extra=extra)


def _fill(*, owner: dict[str, str], **fields: str) -> dict[str, Any]:
    return {"type": "fill", **fields, **owner}


def _position_update(message: Mapping[str, Any], context: _Context) -> Parsed:
    extra = _request(message)
    trade_account = _text(message, "TradeAccount")
    solicited = extra["request_id"] != 0 and _int(message, "Unsolicited") != 1
    if _int(message, "NoPositions") == 1:
        extra["snapshot_complete"] = context.account(trade_account) if trade_account else None
        return Parsed(ignored="POSITION_UPDATE NoPositions: no positions", extra=extra)
    account = context.account(trade_account)
    if solicited and _is_last(message, "TotalNumberMessages"):
        extra["snapshot_complete"] = account
    quantity = _number(message, "Quantity")
    position: dict[str, Any] = {
        "type": "broker_position",
        "account": account,
        "instrument": context.instrument(account, _text(message, "Symbol")),
        "quantity": quantity,
    }
    if quantity != "0":
        position["avg_price"] = _number(message, "AveragePrice")
    return Parsed(positions=(position,), extra=extra)


def _logon_response(message: Mapping[str, Any], _context: _Context) -> Parsed:
    result = _int(message, "Result")
    name = LOGON_STATUS.get(result, f"Result {result}")
    text = _text(message, "ResultText")
    logon = {
        "ok": result == LOGON_SUCCESS,
        "result": name,
        "text": text,
        "server_name": _text(message, "ServerName"),
        "trading_supported": _int(message, "TradingIsSupported") == 1,
        "multiple_positions_per_symbol": (
            _int(message, "UsesMultiplePositionsPerSymbolAndTradeAccount") == 1
        ),
    }
    said = f"LOGON_RESPONSE {name}" + (f": {text}" if text else "")
    return Parsed(ignored=said, extra={"logon": logon})


def _trade_account(message: Mapping[str, Any], context: _Context) -> Parsed:
    trade_account = _text(message, "TradeAccount")
    extra = _request(message)
    if not trade_account:
        return Parsed(ignored="TRADE_ACCOUNT_RESPONSE: no trade accounts", extra=extra)
    account = context.accounts.get(trade_account)
    extra.update(trade_account=trade_account, account=account)
    mapped = f"mapped to {account}" if account is not None else "not mapped"
    return Parsed(ignored=f"TRADE_ACCOUNT_RESPONSE {trade_account} ({mapped})", extra=extra)


def _request_rejected(message: Mapping[str, Any], _context: _Context) -> Parsed:
    name = MESSAGE_NAMES[_int(message, "Type")]
    text = _text(message, "RejectText")
    rejected = {"type": name, "request_id": _int(message, "RequestID"), "text": text}
    return Parsed(ignored=f"{name}: {text or 'no reason given'}", extra={"rejected": rejected})


def _logoff(message: Mapping[str, Any], _context: _Context) -> Parsed:
    logoff = {
        "reason": _text(message, "Reason"),
        "do_not_reconnect": _int(message, "DoNotReconnect") == 1,
    }
    said = "LOGOFF" + (f": {logoff['reason']}" if logoff["reason"] else "")
    return Parsed(ignored=said, extra={"logoff": logoff})


def _heartbeat(_message: Mapping[str, Any], _context: _Context) -> Parsed:
    return Parsed(ignored="HEARTBEAT")


_READERS: dict[int, Callable[[Mapping[str, Any], _Context], Parsed]] = {
    ORDER_UPDATE: _order_update,
    HISTORICAL_ORDER_FILL_RESPONSE: _historical_fill,
    POSITION_UPDATE: _position_update,
    LOGON_RESPONSE: _logon_response,
    TRADE_ACCOUNT_RESPONSE: _trade_account,
    HEARTBEAT: _heartbeat,
    LOGOFF: _logoff,
    OPEN_ORDERS_REJECT: _request_rejected,
    CURRENT_POSITIONS_REJECT: _request_rejected,
    HISTORICAL_ORDER_FILLS_REJECT: _request_rejected,
}


# -- fields --------------------------------------------------------------------------


def _request(message: Mapping[str, Any]) -> dict[str, Any]:
    return {"request_id": _int(message, "RequestID")}


def _is_last(message: Mapping[str, Any], total_field: str) -> bool:
    """Whether the message is the last one of a response (MessageNumber of the total)."""
    total = _int(message, total_field)
    return total > 0 and _int(message, "MessageNumber") == total


def _text(message: Mapping[str, Any], name: str) -> str:
    value = message.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise VenueError(f"{name} must be a string, got {_show(value)}")
    return value


def _int(message: Mapping[str, Any], name: str) -> int:
    value = message.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise VenueError(f"{name} must be an integer, got {_show(value)}")
    return value


def _side(message: Mapping[str, Any]) -> str:
    value = _int(message, "BuySell")
    if value not in SIDES:
        raise VenueError(f"BuySell {value} is neither 1 (BUY) nor 2 (SELL)")
    return SIDES[value]


def _double(value: Any, name: str) -> Decimal:
    """A JSON number as the decimal it stands for. DTC's numbers are doubles: one is read
    as the shortest decimal naming the same double (its ``repr``), so 0.1 stays 0.1
    whether written 0.1 or 0.10000000000000001; an integer is read as written."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise VenueError(f"{name} must be a number, got {_show(value)}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal) and not value.is_finite():
        raise VenueError(f"{name} {value} is not a finite number")
    double = float(value)
    if double != double or double in (float("inf"), float("-inf")):
        raise VenueError(f"{name} {value} is not a finite number")
    return Decimal(repr(double))


def _number(message: Mapping[str, Any], name: str) -> str:
    value = message.get(name)
    if value is None:
        raise VenueError(f"{name} is missing")
    number = _double(value, name)
    if abs(number) >= DBL_MAX:
        raise VenueError(f"{name} is unset (DBL_MAX)")
    return decimal_text(str(number), name)


def _positive(message: Mapping[str, Any], name: str) -> str:
    text = _number(message, name)
    if Decimal(text) <= 0:
        raise VenueError(f"{name} must be positive, got {text}")
    return text


def _time(message: Mapping[str, Any], name: str, whole_seconds: bool) -> str:
    """An epoch time as ISO 8601 UTC: in seconds (int, or double with a fraction) or in
    milliseconds (int, from :data:`MILLISECONDS_FROM`), converted exactly."""
    value = message.get(name)
    if value is None:
        raise VenueError(f"{name} is missing")
    number = _double(value, name)
    if number <= 0:
        raise VenueError(f"{name} {_show(value)} is not a time (unset or before 1970)")
    seconds = number / 1000 if number >= MILLISECONDS_FROM else number
    whole = int(seconds)
    if whole > LATEST_SECOND:
        raise VenueError(f"{name} {_show(value)} is after 2261-12-31, the latest time taken")
    text = dt.datetime.fromtimestamp(whole, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = format(seconds - whole, "f").partition(".")[2][:9].rstrip("0")
    return f"{text}.{fraction}Z" if fraction and not whole_seconds else f"{text}Z"


def _show(value: Any) -> str:
    text = repr(value)
    return f"{json_kind(value)} {text if len(text) <= 64 else text[:61] + '...'}"


def _raw(message: Mapping[str, Any]) -> str:
    """The message as JSON text, for the rejection that keeps it."""
    try:
        return json.dumps(dict(message), separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(message)
