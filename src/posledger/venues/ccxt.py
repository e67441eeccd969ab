"""ccxt's unified structures (docs/venues/ccxt.md): trades (``fetch_my_trades``,
``watch_my_trades``) and positions (``fetch_positions``) of any exchange ccxt supports, read
into the ledger's input records.

Pure: the functions read ccxt's dicts as given and never import ccxt. The symbol map's
venue is the ccxt exchange id (``binanceusdm``) and its symbols are ccxt's unified symbols
(``BTC/USDT:USDT``). Numbers must be exact: a decimal string, an ``int`` or a ``Decimal``
(an exchange created with ``exchange.number = str`` gives the exchange's own strings), or a
float whose ``repr`` has at most 15 significant digits. Venue data never raises: what
cannot be read is a :class:`~posledger.venues.base.Rejection` with its reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from posledger.venues.base import (
    Parsed,
    Rejection,
    SymbolMap,
    VenueError,
    decimal_text,
    iso_from_ms,
)
from posledger.venues.binance import (
    StrategyOf,
    _broker_positions,
    _checked_mode,
    _kind,
    _PositionRow,
    _raw,
)

__all__ = ["EXACT_DIGITS", "exact_text", "parse_positions", "parse_trades"]

EXACT_DIGITS = 15
"""A float of at most this many significant digits is the decimal it was parsed from."""

_BINANCE = ("binance", "binanceusdm", "binancecoinm")
"""Exchange ids whose ``info`` is read as Binance's (position side, client order id,
liquidation)."""
_FORCED_PREFIXES = ("autoclose-", "adl_autoclose")
"""Client order ids of Binance's own liquidation and ADL orders (docs/venues/binance.md)."""
_SIDES = {"buy": "BUY", "sell": "SELL"}
_POSITION_SIDES = ("BOTH", "LONG", "SHORT")


class _Unmapped(VenueError):
    """A symbol the map does not know: the reason is the map's own (with its command)."""


def exact_text(value: Any, what: str) -> str:
    """``value`` as a canonical decimal string, exactly.

    A decimal string, an ``int`` or a finite ``Decimal`` is taken as is. A float (ccxt's
    default) is read through ``repr``, the shortest decimal that rounds to it: a decimal of
    at most :data:`EXACT_DIGITS` significant digits parsed with ``float()`` comes back
    whole; a float needing more was computed, not sent, and is refused.
    """
    if isinstance(value, bool):
        raise VenueError(f"{what} {value!r} is not a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise VenueError(f"{what} {value!r} is not a finite number")
        number = Decimal(repr(value))
        significant = len(number.normalize().as_tuple().digits)
        if significant > EXACT_DIGITS:
            raise VenueError(
                f"{what} {value!r} has {significant} significant digits (at most "
                f"{EXACT_DIGITS} round-trip exactly): create the exchange with "
                "exchange.number = str"
            )
        return decimal_text(format(number, "f"), what)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise VenueError(f"{what} {value!r} is not a finite number")
        return decimal_text(format(value, "f"), what)
    if isinstance(value, int | str):
        return decimal_text(value, what)
    raise VenueError(f"{what} {value!r} is not a number")


# -- trades --------------------------------------------------------------------------------


def parse_trades(
    trades: Any,
    *,
    venue: str,
    account: str,
    symbols: SymbolMap,
    strategy_of: StrategyOf | None = None,
    market_id: Callable[[str], str] | None = None,
    client_order_ids: Mapping[str, str] | None = None,
) -> Parsed:
    """ccxt unified trades (a list, as ``fetch_my_trades`` and ``watch_my_trades`` give):
    one fill per trade.

    ``exec_id`` is ``MARKET_ID:id``, the exchange's own market id (``BTCUSDT``) and trade
    id, so that a Binance trade read here and by :mod:`posledger.venues.binance` has one
    ``exec_id``. The market id is ``market_id(symbol)`` when given (``exchange.market_id``
    after ``load_markets``), else ``info["symbol"]`` (or Binance's stream ``info["s"]``).
    The client order id is the trade's ``clientOrderId``, else ``info``'s, else
    ``client_order_ids[order]``. ``venue`` is the ccxt exchange id: for Binance's,
    ``info`` also gives the position side and the liquidation flag.
    """
    if not isinstance(trades, list | tuple):
        reason = f"ccxt {venue} trades: a list of trades, got {_kind(trades)}"
        return Parsed(rejections=(Rejection(reason, _raw(trades)),))
    fills: list[dict[str, Any]] = []
    rejections: list[Rejection] = []
    for n, trade in enumerate(trades):
        try:
            fills.append(
                _fill(trade, venue, account, symbols, strategy_of, market_id, client_order_ids)
            )
        except _Unmapped as exc:
            rejections.append(Rejection(str(exc), _raw(trade)))
        except VenueError as exc:
            rejections.append(Rejection(f"ccxt {venue} trade {n}: {exc}", _raw(trade)))
    return Parsed(
        fills=tuple(fills),
        rejections=tuple(rejections),
        ignored=None if trades else "no trades",
    )


def _fill(
    trade: Any,
    venue: str,
    account: str,
    symbols: SymbolMap,
    strategy_of: StrategyOf | None,
    market_id: Callable[[str], str] | None,
    client_order_ids: Mapping[str, str] | None,
) -> dict[str, Any]:
    item = _mapping(trade, "a trade")
    info = _info(item)
    symbol = _text(item, "symbol", "symbol")
    trade_id = _text(item, "id", "id (trade id)")
    side = _text(item, "side", "side")
    if side not in _SIDES:
        raise VenueError(f"side must be buy or sell, got {side!r}")
    quantity = exact_text(_field(item, "amount", "amount"), "amount")
    if Decimal(quantity) <= 0:
        raise VenueError(f"amount is {quantity}: a fill must have a positive quantity")
    price = exact_text(_field(item, "price", "price"), "price")
    ts = _ms(item, "timestamp")
    binance = venue.lower() in _BINANCE
    record: dict[str, Any] = {
        "type": "fill",
        "exec_id": f"{_market(symbol, info, market_id)}:{trade_id}",
        "account": account,
        "instrument": _instrument(symbols, account, symbol),
        "side": _SIDES[side],
        "quantity": quantity,
        "price": price,
        "ts": ts,
    }
    client_order_id = _client_order_id(item, info, binance, client_order_ids)
    if client_order_id is not None:
        record["client_order_id"] = client_order_id
        strategy = strategy_of(client_order_id) if strategy_of is not None else None
        if strategy is not None:
            record["strategy"] = strategy
    commission = _commission(item)
    if commission is not None:
        record["commission"], record["commission_currency"] = commission
    if binance:
        position_side = info.get("positionSide", info.get("ps"))
        if position_side is not None:
            if position_side not in _POSITION_SIDES:
                raise VenueError(
                    f"info positionSide must be one of {', '.join(_POSITION_SIDES)}, "
                    f"got {position_side!r}"
                )
            record["position_side"] = position_side
        forced = client_order_id is not None and client_order_id.startswith(_FORCED_PREFIXES)
        if info.get("x") == "CALCULATED" or forced:
            record["liquidation"] = True
    return record


def _market(symbol: str, info: Mapping[str, Any], market_id: Callable[[str], str] | None) -> str:
    if market_id is not None:
        try:
            found = market_id(symbol)
        except Exception as exc:  # ccxt raises its own BadSymbol
            raise VenueError(f"market_id({symbol!r}) failed: {exc}") from None
        if not isinstance(found, str) or not found:
            raise VenueError(f"market_id({symbol!r}) gave {found!r}, not a market id")
        return found
    for key in ("symbol", "s"):
        value = info.get(key)
        if isinstance(value, str) and value:
            return value
    raise VenueError(
        "info has no market id (symbol): pass market_id=exchange.market_id for a stable exec_id"
    )


def _client_order_id(
    item: Mapping[str, Any],
    info: Mapping[str, Any],
    binance: bool,
    known: Mapping[str, str] | None,
) -> str | None:
    keys = ("clientOrderId", "c") if binance else ("clientOrderId",)
    for source in (item, info):
        for key in keys:
            value = source.get(key)
            if isinstance(value, str) and value:
                return value
    order = item.get("order")
    if known is not None and order is not None:
        return known.get(str(order))
    return None


def _commission(item: Mapping[str, Any]) -> tuple[str, str] | None:
    """(cost, currency) of the trade's ``fees`` (else ``fee``); None when it has none.
    Costs in one currency are added; fees in several currencies are refused (a fill has
    one commission)."""
    fees = item.get("fees")
    if not isinstance(fees, list) or not fees:
        fee = item.get("fee")
        fees = [fee] if fee is not None else []
    total: dict[str, Decimal] = {}
    for n, fee in enumerate(fees):
        what = f"fees[{n}]"
        fee = _mapping(fee, what)
        cost, currency = fee.get("cost"), fee.get("currency")
        if cost is None and currency is None:
            continue
        if cost is None or currency is None:
            raise VenueError(f"{what} has a cost without a currency, or the reverse")
        if not isinstance(currency, str) or not currency:
            raise VenueError(f"{what}.currency must be a string, got {currency!r}")
        amount = Decimal(exact_text(cost, f"{what}.cost"))
        total[currency] = total.get(currency, Decimal(0)) + amount
    if not total:
        return None
    if len(total) > 1:
        raise VenueError(f"fees in {len(total)} currencies ({', '.join(total)}): a fill has one")
    [(currency, amount)] = total.items()
    return decimal_text(format(amount, "f"), "fee"), currency


# -- positions -----------------------------------------------------------------------------


def parse_positions(
    positions: Any,
    *,
    venue: str,
    account: str,
    symbols: SymbolMap,
    position_mode: str | None = None,
) -> Parsed:
    """ccxt unified positions (``fetch_positions``): the broker's positions, a snapshot for
    reconciliation (``extra["complete"]`` is True when every position was read).

    ``quantity`` is ``contracts`` signed by ``side`` (``short`` negative). ``position_side``
    is Binance's ``info["positionSide"]`` for Binance's exchange ids; elsewhere ``LONG`` or
    ``SHORT`` by ``side`` when ``hedged`` is true, else ``BOTH``. ``position_mode`` is
    written on every position, as in :func:`posledger.venues.binance.parse_position_risk`.
    """
    mode = _checked_mode(position_mode)
    if not isinstance(positions, list | tuple):
        reason = f"ccxt {venue} positions: a list of positions, got {_kind(positions)}"
        return Parsed(rejections=(Rejection(reason, _raw(positions)),), extra={"complete": False})
    binance = venue.lower() in _BINANCE
    read: list[_PositionRow] = []
    rejections: list[Rejection] = []
    for n, position in enumerate(positions):
        try:
            read.append(_position_row(position, binance))
        except VenueError as exc:
            rejections.append(Rejection(f"ccxt {venue} position {n}: {exc}", _raw(position)))
    records, unmapped = _broker_positions(read, account, symbols, mode)
    rejections.extend(unmapped)
    return Parsed(
        positions=records, rejections=tuple(rejections), extra={"complete": not rejections}
    )


def _position_row(position: Any, binance: bool) -> _PositionRow:
    item = _mapping(position, "a position")
    info = _info(item)
    symbol = _text(item, "symbol", "symbol")
    contracts = item.get("contracts")
    quantity = "0" if contracts is None else exact_text(contracts, "contracts")
    side = item.get("side")
    if Decimal(quantity) < 0:
        raise VenueError(f"contracts is {quantity}: ccxt gives them unsigned, with side")
    if quantity != "0":
        if side not in ("long", "short"):
            raise VenueError(f"side must be long or short, got {side!r}")
        if side == "short":
            quantity = f"-{quantity}"
    if binance and info.get("positionSide") is not None:
        leg = info["positionSide"]
        if leg not in _POSITION_SIDES:
            raise VenueError(
                f"info positionSide must be one of {', '.join(_POSITION_SIDES)}, got {leg!r}"
            )
    elif item.get("hedged") is True:
        if side not in ("long", "short"):
            raise VenueError(f"a hedged position needs side long or short, got {side!r}")
        leg = side.upper()
    else:
        leg = "BOTH"
    entry = item.get("entryPrice")
    timestamp = item.get("timestamp")
    return _PositionRow(
        symbol=symbol,
        quantity=quantity,
        entry="0" if entry is None else exact_text(entry, "entryPrice"),
        side=leg,
        ts=None if timestamp in (None, 0) else _ms(item, "timestamp"),
        source=position,
    )


# -- fields --------------------------------------------------------------------------------


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise VenueError(f"{what} is a dict, got {_kind(value)}")
    return value


def _info(item: Mapping[str, Any]) -> Mapping[str, Any]:
    info = item.get("info")
    return info if isinstance(info, Mapping) else {}


def _field(obj: Mapping[str, Any], key: str, what: str) -> Any:
    value = obj.get(key)
    if value is None:
        raise VenueError(f"missing field {what}")
    return value


def _text(obj: Mapping[str, Any], key: str, what: str) -> str:
    value = _field(obj, key, what)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise VenueError(f"{what} must be a string, got {_kind(value)} {value!r}")
    if not value or value.strip() != value:
        raise VenueError(f"{what} {value!r} is empty or has surrounding spaces")
    return value


def _ms(obj: Mapping[str, Any], key: str) -> str:
    return iso_from_ms(_field(obj, key, key), key)


def _instrument(symbols: SymbolMap, account: str, symbol: str) -> str:
    instrument = symbols.instrument(account, symbol)
    if instrument is None:
        raise _Unmapped(symbols.missing(account, symbol))
    return instrument
