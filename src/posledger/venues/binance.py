"""Binance USD-M futures (docs/venues/binance.md): the user data stream's events and the
REST replies the ledger needs (fill history, positions, position mode, funding), read into
the ledger's input records.

Pure: every function takes the decoded JSON (or its text, for the stream) and the symbol
map, and gives back what it means. Venue data never raises: what cannot be read is a
:class:`~posledger.venues.base.Rejection` with its reason, except for
:func:`parse_position_mode`, whose answer is a single word.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from posledger.venues.base import (
    Funding,
    Parsed,
    Rejection,
    SymbolMap,
    VenueError,
    decimal_text,
    iso_from_ms,
)

__all__ = [
    "StrategyOf",
    "parse_income",
    "parse_position_mode",
    "parse_position_risk",
    "parse_user_event",
    "parse_user_trades",
]

StrategyOf = Callable[[str], str | None]
"""A client-order-id convention: the strategy an order id names, or None."""

_SIDES = ("BUY", "SELL")
_POSITION_SIDES = ("BOTH", "LONG", "SHORT")
_FILL_EXECUTIONS = ("TRADE", "CALCULATED")
"""Execution types that carry a fill: a trade, and a liquidation or ADL (CALCULATED)."""
_FORCED_PREFIXES = ("autoclose-", "adl_autoclose")
"""Client order ids of the orders Binance places itself to liquidate or deleverage."""
_MODES = ("hedge", "netting")

_IGNORED_EVENTS = {
    "TRADE_LITE": "a trade without its commission or position side; the same trade comes "
    "whole in ORDER_TRADE_UPDATE",
    "MARGIN_CALL": "a margin warning: no fill or position",
    "ACCOUNT_CONFIG_UPDATE": "leverage or multi-assets mode changed: no fill or position",
    "listenKeyExpired": "the listen key expired: nothing more comes on this stream until the "
    "connector opens it with a new key",
}


class _Unmapped(VenueError):
    """A symbol the map does not know: the reason is the map's own (with its command)."""


# -- the user data stream -----------------------------------------------------------------


def parse_user_event(
    message: Any,
    *,
    account: str,
    symbols: SymbolMap,
    strategy_of: StrategyOf | None = None,
    position_mode: str | None = None,
) -> Parsed:
    """One user-data-stream event (decoded JSON, or its text), bare or in the combined-stream
    envelope ``{"stream": ..., "data": ...}``.

    ``ORDER_TRADE_UPDATE`` with execution ``TRADE`` or ``CALCULATED`` (liquidation, ADL) is a
    fill; any other execution is ignored. ``ACCOUNT_UPDATE`` gives the broker positions it
    lists (only those that changed: ``extra["complete"]`` is False). ``position_mode``
    (``hedge``/``netting``, from :func:`parse_position_mode`) is written on the positions, so
    that reconciliation refuses them on an account of the other mode.
    """
    mode = _checked_mode(position_mode)
    kind = "event"
    try:
        event = _event(message)
        kind = _text_field(event, "e", "e (event type)")
        if kind == "ORDER_TRADE_UPDATE":
            return _order_update(event, account, symbols, strategy_of)
        if kind == "ACCOUNT_UPDATE":
            return _account_update(event, message, account, symbols, mode)
    except _Unmapped as exc:
        return Parsed(rejections=(Rejection(str(exc), _raw(message)),))
    except VenueError as exc:
        return Parsed(rejections=(Rejection(f"Binance {kind}: {exc}", _raw(message)),))
    why = _IGNORED_EVENTS.get(kind, "not a fill, position or funding event")
    return Parsed(ignored=f"{kind}: {why}", extra={"event": kind})


def _event(message: Any) -> Mapping[str, Any]:
    if isinstance(message, bytes | bytearray):
        try:
            message = bytes(message).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise VenueError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if isinstance(message, str):
        try:
            message = json.loads(message)
        except ValueError as exc:
            raise VenueError(f"malformed JSON: {exc}") from None
    if isinstance(message, Mapping) and "data" in message and "e" not in message:
        message = message["data"]
    if not isinstance(message, Mapping):
        raise VenueError(f"an event is a JSON object, got {_kind(message)}")
    return message


def _order_update(
    event: Mapping[str, Any],
    account: str,
    symbols: SymbolMap,
    strategy_of: StrategyOf | None,
) -> Parsed:
    order = _object(event, "o", "o (the order)")
    symbol = _text_field(order, "s", "o.s (symbol)")
    execution = _text_field(order, "x", "o.x (execution type)")
    order_id = _id_field(order, "i", "o.i (order id)")
    client_order_id = _text_field(order, "c", "o.c (client order id)")
    extra: dict[str, Any] = {
        "event": "ORDER_TRADE_UPDATE",
        "symbol": symbol,
        "order_id": order_id,
        "client_order_id": client_order_id,
        "execution_type": execution,
    }
    status = order.get("X")
    if isinstance(status, str):
        extra["order_status"] = status
    if execution not in _FILL_EXECUTIONS:
        return Parsed(
            ignored=f"ORDER_TRADE_UPDATE {execution} of order {order_id} on {symbol}: "
            "an order event, not a fill",
            extra=extra,
        )
    quantity = _decimal_field(order, "l", "o.l (last filled quantity)")
    if Decimal(quantity) <= 0:
        raise VenueError(
            f"o.l (last filled quantity) is {quantity} on a {execution} execution: "
            "a fill must have a positive quantity"
        )
    fill = _fill_record(
        account=account,
        symbol=symbol,
        trade_id=_id_field(order, "t", "o.t (trade id)"),
        side=_choice(order, "S", "o.S (side)", _SIDES),
        quantity=quantity,
        price=_decimal_field(order, "L", "o.L (last filled price)"),
        ts=_ms_field(order, "T", "o.T (trade time)"),
        position_side=_choice(order, "ps", "o.ps (position side)", _POSITION_SIDES),
        commission=_commission(order, "n", "N", "o.n (commission)", "o.N (commission asset)"),
        client_order_id=client_order_id,
        liquidation=execution == "CALCULATED" or _forced(client_order_id),
        strategy_of=strategy_of,
        instrument=_instrument(symbols, account, symbol),
    )
    return Parsed(fills=(fill,), extra=extra)


def _account_update(
    event: Mapping[str, Any],
    message: Any,
    account: str,
    symbols: SymbolMap,
    position_mode: str | None,
) -> Parsed:
    update = _object(event, "a", "a (the update)")
    reason = _text_field(update, "m", "a.m (event reason type)")
    at = "T" if event.get("T") is not None else "E"
    ts = _ms_field(event, at, "T (transaction time)" if at == "T" else "E (event time)")
    balances = tuple(
        {
            "asset": _text_field(item, "a", f"a.B[{n}].a (asset)"),
            "wallet_balance": _decimal_field(item, "wb", f"a.B[{n}].wb (wallet balance)"),
            "cross_wallet_balance": _decimal_field(
                item, "cw", f"a.B[{n}].cw (cross wallet balance)"
            ),
            "balance_change": _decimal_field(item, "bc", f"a.B[{n}].bc (balance change)"),
        }
        for n, item in enumerate(_objects(update, "B", "a.B (balances)"))
    )
    rows = [
        _PositionRow(
            symbol=_text_field(item, "s", f"a.P[{n}].s (symbol)"),
            quantity=_decimal_field(item, "pa", f"a.P[{n}].pa (position amount)"),
            entry=_decimal_field(item, "ep", f"a.P[{n}].ep (entry price)"),
            side=_choice(item, "ps", f"a.P[{n}].ps (position side)", _POSITION_SIDES),
            ts=ts,
            source=message,
        )
        for n, item in enumerate(_objects(update, "P", "a.P (positions)"))
    ]
    positions, rejections = _broker_positions(rows, account, symbols, position_mode)
    extra = {
        "event": "ACCOUNT_UPDATE",
        "reason": reason,
        "complete": False,
        "balances": balances,
    }
    ignored = None
    if not positions and not rejections:
        ignored = f"ACCOUNT_UPDATE {reason}: balances only, no position listed"
        if reason == "FUNDING_FEE":
            ignored += "; the payments per symbol come from GET /fapi/v1/income"
    return Parsed(positions=positions, rejections=rejections, ignored=ignored, extra=extra)


# -- REST replies --------------------------------------------------------------------------


def parse_user_trades(
    rows: Any,
    *,
    account: str,
    symbols: SymbolMap,
    strategy_of: StrategyOf | None = None,
    client_order_ids: Mapping[str, str] | None = None,
) -> Parsed:
    """The reply of ``GET /fapi/v1/userTrades`` (fill history): one fill per row, the same
    record the stream gives for that trade.

    A row carries no client order id: ``client_order_ids`` (Binance order id, as text ->
    client order id) supplies it, e.g. from the stream's order events (``extra``) or
    ``GET /fapi/v1/allOrders``. Without it the fill has none (and so no strategy, and no
    liquidation flag), and differs from the stream's record of the same trade.
    """
    if not isinstance(rows, list):
        reason = f"Binance userTrades: the reply is a JSON array of trades, got {_kind(rows)}"
        return Parsed(rejections=(Rejection(reason, _raw(rows)),))
    known = client_order_ids or {}
    fills: list[dict[str, Any]] = []
    rejections: list[Rejection] = []
    for n, row in enumerate(rows):
        try:
            fills.append(_trade_row(row, account, symbols, strategy_of, known))
        except _Unmapped as exc:
            rejections.append(Rejection(str(exc), _raw(row)))
        except VenueError as exc:
            rejections.append(Rejection(f"Binance userTrades row {n}: {exc}", _raw(row)))
    return Parsed(
        fills=tuple(fills),
        rejections=tuple(rejections),
        ignored=None if rows else "userTrades: no trades",
    )


def _trade_row(
    row: Any,
    account: str,
    symbols: SymbolMap,
    strategy_of: StrategyOf | None,
    known: Mapping[str, str],
) -> dict[str, Any]:
    trade = _row(row)
    symbol = _text_field(trade, "symbol", "symbol")
    quantity = _decimal_field(trade, "qty", "qty")
    if Decimal(quantity) <= 0:
        raise VenueError(f"qty is {quantity}: a fill must have a positive quantity")
    client_order_id = known.get(_id_field(trade, "orderId", "orderId"))
    return _fill_record(
        account=account,
        symbol=symbol,
        trade_id=_id_field(trade, "id", "id (trade id)"),
        side=_choice(trade, "side", "side", _SIDES),
        quantity=quantity,
        price=_decimal_field(trade, "price", "price"),
        ts=_ms_field(trade, "time", "time"),
        position_side=_choice(trade, "positionSide", "positionSide", _POSITION_SIDES),
        commission=_commission(
            trade, "commission", "commissionAsset", "commission", "commissionAsset"
        ),
        client_order_id=client_order_id,
        liquidation=client_order_id is not None and _forced(client_order_id),
        strategy_of=strategy_of,
        instrument=_instrument(symbols, account, symbol),
    )


def parse_position_risk(
    rows: Any,
    *,
    account: str,
    symbols: SymbolMap,
    position_mode: str | None = None,
) -> Parsed:
    """The reply of ``GET /fapi/v3/positionRisk`` (or v2): the broker's positions, a full
    snapshot for reconciliation (``extra["complete"]`` is True when every row was read).

    Flat rows of symbols the map does not know are skipped (v2 lists every symbol), and so
    are flat legs of the other position mode (a flat ``BOTH`` on a hedge account).
    ``position_mode`` is written on every position, as in :func:`parse_user_event`.
    """
    mode = _checked_mode(position_mode)
    if not isinstance(rows, list):
        reason = f"Binance positionRisk: the reply is a JSON array of positions, got {_kind(rows)}"
        return Parsed(rejections=(Rejection(reason, _raw(rows)),), extra={"complete": False})
    read: list[_PositionRow] = []
    rejections: list[Rejection] = []
    for n, row in enumerate(rows):
        try:
            item = _row(row)
            read.append(
                _PositionRow(
                    symbol=_text_field(item, "symbol", "symbol"),
                    quantity=_decimal_field(item, "positionAmt", "positionAmt"),
                    entry=_decimal_field(item, "entryPrice", "entryPrice"),
                    side=_choice(item, "positionSide", "positionSide", _POSITION_SIDES),
                    ts=_update_time(item),
                    source=row,
                )
            )
        except VenueError as exc:
            rejections.append(Rejection(f"Binance positionRisk row {n}: {exc}", _raw(row)))
    positions, unmapped = _broker_positions(read, account, symbols, mode)
    rejections.extend(unmapped)
    return Parsed(
        positions=positions,
        rejections=tuple(rejections),
        extra={"complete": not rejections},
    )


def parse_position_mode(body: Any) -> str:
    """The reply of ``GET /fapi/v1/positionSide/dual``: ``hedge`` when ``dualSidePosition``
    is true, ``netting`` when false (an account's ``position_mode``). Raises
    :class:`~posledger.venues.base.VenueError` for anything else."""
    if not isinstance(body, Mapping):
        raise VenueError(f"Binance positionSide/dual: a JSON object, got {_kind(body)}")
    if "dualSidePosition" not in body:
        raise VenueError("Binance positionSide/dual: missing field dualSidePosition")
    dual = body["dualSidePosition"]
    if not isinstance(dual, bool):
        raise VenueError(
            f"Binance positionSide/dual: dualSidePosition must be true or false, got {dual!r}"
        )
    return "hedge" if dual else "netting"


def parse_income(rows: Any, *, account: str, symbols: SymbolMap) -> Parsed:
    """The reply of ``GET /fapi/v1/income``: each ``FUNDING_FEE`` row is a funding payment
    (``payment_id`` its ``tranId``, unique per income type and user; ``amount`` signed,
    positive when received). Rows of other income types are counted in
    ``extra["other_income"]`` and ignored."""
    if not isinstance(rows, list):
        reason = f"Binance income: the reply is a JSON array of income rows, got {_kind(rows)}"
        return Parsed(rejections=(Rejection(reason, _raw(rows)),))
    funding: list[Funding] = []
    rejections: list[Rejection] = []
    others: dict[str, int] = {}
    for n, row in enumerate(rows):
        try:
            item = _row(row)
            kind = _text_field(item, "incomeType", "incomeType")
            if kind != "FUNDING_FEE":
                others[kind] = others.get(kind, 0) + 1
                continue
            funding.append(_funding(item, account, symbols))
        except _Unmapped as exc:
            rejections.append(Rejection(str(exc), _raw(row)))
        except VenueError as exc:
            rejections.append(Rejection(f"Binance income row {n}: {exc}", _raw(row)))
    ignored = None
    if not funding and not rejections:
        ignored = "income: no FUNDING_FEE rows"
    return Parsed(
        funding=tuple(funding),
        rejections=tuple(rejections),
        ignored=ignored,
        extra={"other_income": others} if others else {},
    )


def _funding(item: Mapping[str, Any], account: str, symbols: SymbolMap) -> Funding:
    symbol = _text_field(item, "symbol", "symbol")
    side = None
    if item.get("positionSide") is not None:
        side = _choice(item, "positionSide", "positionSide", _POSITION_SIDES)
    return Funding(
        payment_id=_id_field(item, "tranId", "tranId"),
        account=account,
        instrument=_instrument(symbols, account, symbol),
        position_side=side,
        amount=_decimal_field(item, "income", "income"),
        currency=_text_field(item, "asset", "asset"),
        ts=_ms_field(item, "time", "time"),
    )


# -- records -------------------------------------------------------------------------------


def _fill_record(
    *,
    account: str,
    symbol: str,
    trade_id: str,
    side: str,
    quantity: str,
    price: str,
    ts: str,
    position_side: str,
    commission: tuple[str, str] | None,
    client_order_id: str | None,
    liquidation: bool,
    strategy_of: StrategyOf | None,
    instrument: str,
) -> dict[str, Any]:
    """The ``fill`` record of one Binance trade, the same from the stream and the history:
    ``exec_id`` is ``SYMBOL:tradeId`` (trade ids are unique within a symbol)."""
    record: dict[str, Any] = {
        "type": "fill",
        "exec_id": f"{symbol}:{trade_id}",
        "account": account,
        "instrument": instrument,
        "side": side,
        "quantity": quantity,
        "price": price,
        "ts": ts,
    }
    if client_order_id is not None:
        record["client_order_id"] = client_order_id
        strategy = strategy_of(client_order_id) if strategy_of is not None else None
        if strategy is not None:
            record["strategy"] = strategy
    if commission is not None:
        record["commission"], record["commission_currency"] = commission
    record["position_side"] = position_side
    if liquidation:
        record["liquidation"] = True
    return record


@dataclass(frozen=True, slots=True, kw_only=True)
class _PositionRow:
    """One position as the venue listed it, before the symbol map."""

    symbol: str
    quantity: str
    entry: str
    side: str
    ts: str | None
    source: Any
    """The message or row it was read from (kept with a rejection)."""


def _broker_positions(
    rows: list[_PositionRow], account: str, symbols: SymbolMap, position_mode: str | None
) -> tuple[tuple[dict[str, Any], ...], tuple[Rejection, ...]]:
    """``broker_position`` records of the rows, and a rejection per held position on an
    unmapped symbol. Flat legs of the other mode and flat unmapped rows say nothing."""
    mode = position_mode
    if mode is None and any(row.side != "BOTH" for row in rows):
        mode = "hedge"
    records: list[dict[str, Any]] = []
    rejections: list[Rejection] = []
    for row in rows:
        flat = row.quantity == "0"
        if flat and mode is not None and (row.side == "BOTH") == (mode == "hedge"):
            continue
        instrument = symbols.instrument(account, row.symbol)
        if instrument is None:
            if not flat:
                rejections.append(Rejection(symbols.missing(account, row.symbol), _raw(row.source)))
            continue
        record: dict[str, Any] = {
            "type": "broker_position",
            "account": account,
            "instrument": instrument,
            "position_side": row.side,
            "quantity": row.quantity,
        }
        # Binance gives entry price 0 when it has none: an average of 0 would be compared
        # (and adopted) as a price.
        if not flat and row.entry != "0":
            record["avg_price"] = row.entry
        if row.ts is not None:
            record["ts"] = row.ts
        if position_mode is not None:
            record["position_mode"] = position_mode
        records.append(record)
    return tuple(records), tuple(rejections)


# -- fields --------------------------------------------------------------------------------


def _raw(message: Any) -> str:
    """The message as text, as received when it came as text."""
    if isinstance(message, str):
        return message
    if isinstance(message, bytes | bytearray):
        return bytes(message).decode("utf-8", errors="replace")
    try:
        return json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(message)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object" if isinstance(value, Mapping) else type(value).__name__


def _checked_mode(position_mode: str | None) -> str | None:
    if position_mode is not None and position_mode not in _MODES:
        raise ValueError(f"position_mode must be hedge or netting, got {position_mode!r}")
    return position_mode


def _row(row: Any) -> Mapping[str, Any]:
    if not isinstance(row, Mapping):
        raise VenueError(f"a row is a JSON object, got {_kind(row)}")
    return row


def _field(obj: Mapping[str, Any], key: str, what: str) -> Any:
    value = obj.get(key)
    if value is None:
        raise VenueError(f"missing field {what}")
    return value


def _object(obj: Mapping[str, Any], key: str, what: str) -> Mapping[str, Any]:
    value = _field(obj, key, what)
    if not isinstance(value, Mapping):
        raise VenueError(f"{what} must be a JSON object, got {_kind(value)}")
    return value


def _objects(obj: Mapping[str, Any], key: str, what: str) -> list[Mapping[str, Any]]:
    """An optional array of objects (absent: none)."""
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise VenueError(f"{what} must be a JSON array, got {_kind(value)}")
    for n, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise VenueError(f"{what} item {n} must be a JSON object, got {_kind(item)}")
    return value


def _text_field(obj: Mapping[str, Any], key: str, what: str) -> str:
    value = _field(obj, key, what)
    if not isinstance(value, str):
        raise VenueError(f"{what} must be a string, got {_kind(value)} {value!r}")
    if not value or value.strip() != value:
        raise VenueError(f"{what} {value!r} is empty or has surrounding spaces")
    return value


def _choice(obj: Mapping[str, Any], key: str, what: str, allowed: tuple[str, ...]) -> str:
    value = _text_field(obj, key, what)
    if value not in allowed:
        raise VenueError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _decimal_field(obj: Mapping[str, Any], key: str, what: str) -> str:
    return decimal_text(_field(obj, key, what), what)


def _id_field(obj: Mapping[str, Any], key: str, what: str) -> str:
    """A Binance id (an integer, or its digits as a string) as canonical text."""
    value = _field(obj, key, what)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise VenueError(f"{what} {value!r} is not an integer id")
    text = str(value)
    if not text.isascii() or not text.isdigit() or int(text) <= 0:
        raise VenueError(f"{what} {value!r} is not a positive integer id")
    return str(int(text))


def _ms_field(obj: Mapping[str, Any], key: str, what: str) -> str:
    return iso_from_ms(_field(obj, key, what), what)


def _update_time(item: Mapping[str, Any]) -> str | None:
    """A position's ``updateTime``; 0 (never updated) or absent is no time."""
    value = item.get("updateTime")
    if value is None or (not isinstance(value, bool) and value in (0, "0")):
        return None
    return iso_from_ms(value, "updateTime")


def _commission(
    obj: Mapping[str, Any], amount_key: str, asset_key: str, amount_what: str, asset_what: str
) -> tuple[str, str] | None:
    """(amount, asset), or None when neither is given (Binance omits both when nothing
    was charged). One without the other is refused: the amount needs its currency."""
    has_amount = obj.get(amount_key) is not None
    has_asset = obj.get(asset_key) is not None
    if not has_amount and not has_asset:
        return None
    if has_amount != has_asset:
        given, missing = (amount_what, asset_what) if has_amount else (asset_what, amount_what)
        raise VenueError(f"{given} is given without {missing}")
    return (
        _decimal_field(obj, amount_key, amount_what),
        _text_field(obj, asset_key, asset_what),
    )


def _forced(client_order_id: str) -> bool:
    """Whether the order is Binance's own liquidation (``autoclose-``) or ADL order."""
    return client_order_id.startswith(_FORCED_PREFIXES)


def _instrument(symbols: SymbolMap, account: str, symbol: str) -> str:
    instrument = symbols.instrument(account, symbol)
    if instrument is None:
        raise _Unmapped(symbols.missing(account, symbol))
    return instrument
