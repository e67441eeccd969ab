"""Kotak Neo: the trade report as ``fill`` records, the position book as
``broker_position`` records (docs/venues/kotak.md).

Both parsers take the response of the Neo API (``trade_report()``, ``positions()``) as
text or decoded JSON. Every record they give back has passed the ledger's own record
checks, so a row the ledger would refuse is a rejection here, naming the row.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from ..adapters.records import parse_record
from ..domain.refdata import InvalidInput
from .base import Parsed, Rejection, SymbolMap, VenueError, decimal_text

__all__ = [
    "IST",
    "VENUE",
    "exact_number",
    "parse_positions",
    "parse_trade_report",
    "symbol_key",
]

VENUE = "kotak_neo"
"""The venue name of Kotak Neo symbol maps (``posledger symbols add kotak_neo ...``)."""

IST = dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")
"""India Standard Time, UTC+05:30 all year: the zone of every time Kotak Neo writes."""

Body = str | bytes | Mapping[str, Any]

_PLAIN = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?\Z")
_DATE = re.compile(r"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})\Z")
_CLOCK = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})\Z")
_UPDATED = re.compile(r"([0-9]{4})/([0-9]{2})/([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})\Z")
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_SIDES = {"B": "BUY", "BUY": "BUY", "S": "SELL", "SELL": "SELL"}
_NO_TAG = {"", "--", "-", "NA", "N/A", "NULL", "NONE"}
_EXACT_FLOAT_DIGITS = 15
"""A double holds every decimal of up to 15 significant digits exactly enough that its
shortest repr gives that decimal back; beyond that the text the venue sent is lost."""
_AVERAGE_PLACES = 18


def symbol_key(exchange_segment: str, trading_symbol: str) -> str:
    """The symbol-map key of a Kotak Neo instrument: ``nse_cm:AXISBANK-EQ``."""
    return f"{exchange_segment}:{trading_symbol}"


def exact_number(value: Any, what: str) -> str:
    """A Neo API number as a canonical decimal string, exactly as the venue wrote it.

    Strings must be plain decimals (``"658.70"``); integers and ``Decimal`` are taken as
    they are; a float only when its shortest repr has at most 15 significant digits (then
    it is the decimal that was sent), else :class:`VenueError`."""
    if isinstance(value, bool) or value is None:
        raise VenueError(f"{what} {value!r} is not a number")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise VenueError(f"{what} {value!r} is not a finite number")
        text = repr(value)
        if len(Decimal(text).normalize().as_tuple().digits) > _EXACT_FLOAT_DIGITS:
            raise VenueError(
                f"{what} {value!r} is a JSON number with more significant digits than a "
                "double keeps: the value sent is not known exactly"
            )
        return decimal_text(text, what)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise VenueError(f"{what} {value!r} is not a finite number")
        return decimal_text(str(value), what)
    if isinstance(value, str) and not _PLAIN.match(value):
        raise VenueError(f"{what} {value!r} is not a plain decimal number")
    return decimal_text(value, what)


def parse_trade_report(
    body: Body,
    *,
    account: str,
    symbols: SymbolMap,
    strategy_of: Callable[[str], str | None] | None = None,
) -> Parsed:
    """The fills of a ``trade_report()`` response, one ``fill`` record per row.

    ``strategy_of`` is asked for the strategy of each fill, given the order's tag (a
    ``rmk`` remark, when the row holds one) or else its order number; None leaves the
    fill to the order registered under that number, or to ``EXTERNAL``."""
    rows, refused = _rows(body, "trade report")
    if refused is not None:
        return refused
    if not rows:
        return Parsed(ignored="the trade report lists no fills")
    fills: list[dict[str, Any]] = []
    rejections: list[Rejection] = []
    for index, row in enumerate(rows):
        where = f"data[{index}]"
        try:
            fills.append(_fill(row, account, symbols, strategy_of))
        except VenueError as exc:
            rejections.append(Rejection(f"{where}: {exc}", _raw(row)))
    return Parsed(fills=tuple(fills), rejections=tuple(rejections))


def parse_positions(body: Body, *, account: str, symbols: SymbolMap) -> Parsed:
    """The ``broker_position`` records of a ``positions()`` response: one per instrument,
    netting the rows of every product (CNC, MIS, NRML) mapped to it.

    An instrument one of whose rows cannot be read is not reported (its total would be
    wrong); the row's rejection says so."""
    rows, refused = _rows(body, "position book")
    if refused is not None:
        return refused
    if not rows:
        return Parsed(ignored="the position book lists no positions")
    books: dict[str, list[_Line]] = {}
    failed: dict[str, list[tuple[str, Any]]] = {}
    rejections: list[Rejection] = []
    for index, row in enumerate(rows):
        where = f"data[{index}]"
        try:
            line = _position_line(row)
        except VenueError as exc:
            instrument = _instrument_of(row, account, symbols)
            if instrument is None:
                rejections.append(Rejection(f"{where}: {exc}", _raw(row)))
            else:
                failed.setdefault(instrument, []).append((f"{where}: {exc}", row))
            continue
        instrument = symbols.instrument(account, line.key)
        if instrument is None:
            missing = symbols.missing(account, line.key)
            rejections.append(Rejection(f"{where}: {missing}", _raw(row)))
            continue
        books.setdefault(instrument, []).append(line)
    for instrument, problems in failed.items():
        books.pop(instrument, None)
        note = f"; no position is reported for {instrument}"
        rejections.extend(Rejection(reason + note, _raw(row)) for reason, row in problems)
    positions: list[dict[str, Any]] = []
    for instrument, lines in books.items():
        record = _position(account, instrument, lines)
        problem = _problem(record)
        if problem is None:
            positions.append(record)
        else:
            raw = "[" + ",".join(line.raw for line in lines) + "]"
            rejections.append(Rejection(f"{instrument}: {problem}", raw))
    return Parsed(positions=tuple(positions), rejections=tuple(rejections))


# -- the response ----------------------------------------------------------------------


def _rows(body: Body, what: str) -> tuple[list[Any], Parsed | None]:
    """The ``data`` rows of a response, or the Parsed that refuses it whole."""
    if isinstance(body, str | bytes):
        try:
            decoded: Any = json.loads(body, parse_float=Decimal, parse_constant=_no_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            return [], _refuse(f"the {what} is not JSON: {exc}", body)
        except RecursionError:
            return [], _refuse(f"the {what} is not JSON this parser reads: nested too deep", body)
    else:
        decoded = body
    if not isinstance(decoded, Mapping):
        return [], _refuse(f"the {what} is not a JSON object", body)
    status = decoded.get("stat")
    if status is not None and str(status).lower() != "ok":
        message = decoded.get("errMsg") or decoded.get("emsg") or "no message"
        return [], _refuse(
            f"Kotak Neo refused the {what}: stat {status!r}, stCode "
            f"{decoded.get('stCode')!r}: {message}",
            body,
        )
    if "data" not in decoded:
        return [], _refuse(f"the {what} has no 'data'", body)
    data = decoded["data"]
    if data is None:
        return [], None
    if not isinstance(data, list):
        return [], _refuse(f"the {what}'s 'data' is not a list", body)
    return data, None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def _refuse(reason: str, body: Body) -> Parsed:
    return Parsed(rejections=(Rejection(reason, _raw(body)),))


def _raw(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    return _dumps(value)


def _dumps(value: Any) -> str:
    """JSON text of a decoded message, its decimals written as the numbers they were."""
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k), ensure_ascii=False)}: {_dumps(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_dumps(item) for item in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value, default=str, ensure_ascii=False)


def _problem(record: dict[str, Any]) -> str | None:
    """What the ledger would refuse in ``record``, or None."""
    try:
        parse_record(record)
    except InvalidInput as exc:
        return str(exc)
    return None


def _field(row: Any, name: str) -> Any:
    if not isinstance(row, Mapping):
        raise VenueError("the row is not a JSON object")
    if row.get(name) is None:
        raise VenueError(f"missing field {name!r}")
    return row[name]


def _text(row: Any, name: str) -> str:
    value = _field(row, name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise VenueError(f"{name} {value!r} is not a non-empty string")
    return value.strip()


def _decimal(row: Any, name: str) -> Decimal:
    return Decimal(exact_number(_field(row, name), name))


# -- the trade report ------------------------------------------------------------------


def _fill(
    row: Any,
    account: str,
    symbols: SymbolMap,
    strategy_of: Callable[[str], str | None] | None,
) -> dict[str, Any]:
    report_type = row.get("rptTp") if isinstance(row, Mapping) else None
    if report_type is not None and str(report_type).lower() != "fill":
        raise VenueError(f"rptTp {report_type!r} is not a fill")
    segment = _text(row, "exSeg")
    trading_symbol = _text(row, "trdSym")
    order = _text(row, "nOrdNo")
    fill_id = _text(row, "flId")
    side = _SIDES.get(_text(row, "trnsTp").upper())
    if side is None:
        raise VenueError(f"trnsTp {row['trnsTp']!r} is neither B nor S")
    quantity = _decimal(row, "fldQty")
    if quantity <= 0:
        raise VenueError(f"fldQty {row['fldQty']!r} is not a positive quantity")
    price = exact_number(_field(row, "avgPrc"), "avgPrc")
    ts = _fill_time(_text(row, "flDt"), _text(row, "flTm"))
    key = symbol_key(segment, trading_symbol)
    instrument = symbols.instrument(account, key)
    if instrument is None:
        raise VenueError(symbols.missing(account, key))
    record: dict[str, Any] = {
        "type": "fill",
        "exec_id": f"{segment}:{order}:{fill_id}",
        "account": account,
        "instrument": instrument,
        "side": side,
        "quantity": decimal_text(str(quantity), "fldQty"),
        "price": price,
        "ts": ts,
        "client_order_id": order,
    }
    if strategy_of is not None:
        strategy = strategy_of(_tag(row) or order)
        if strategy:
            record["strategy"] = strategy
    problem = _problem(record)
    if problem is not None:
        raise VenueError(f"the ledger would refuse the fill: {problem}")
    return record


def _tag(row: Mapping[str, Any]) -> str | None:
    remark = row.get("rmk")
    if not isinstance(remark, str) or remark.strip().upper() in _NO_TAG:
        return None
    return remark.strip()


def _fill_time(date: str, clock: str) -> str:
    """``flDt`` ``21-Jun-2022`` and ``flTm`` ``14:30:38`` (IST) as ISO 8601 with +05:30."""
    day = _DATE.match(date)
    if day is None or day.group(2).lower() not in _MONTHS:
        raise VenueError(f"flDt {date!r} is not a date like 21-Jun-2022")
    time = _CLOCK.match(clock)
    if time is None:
        raise VenueError(f"flTm {clock!r} is not a time like 14:30:38")
    hour, minute, second = (int(part) for part in time.groups())
    try:
        at = dt.datetime(
            int(day.group(3)),
            _MONTHS[day.group(2).lower()],
            int(day.group(1)),
            hour,
            minute,
            second,
            tzinfo=IST,
        )
    except ValueError as exc:
        raise VenueError(f"flDt {date!r} flTm {clock!r} is not a valid time: {exc}") from None
    return at.isoformat()


# -- the position book -----------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    """One row of the position book, read."""

    key: str
    carried_buy: Decimal
    carried_sell: Decimal
    bought: Decimal
    sold: Decimal
    buy_amount: Decimal | None
    sell_amount: Decimal | None
    scale: Fraction | None
    """multiplier x genNum/genDen x prcNum/prcDen: amount = price x quantity x scale."""
    updated: str | None
    raw: str


_QUANTITIES = ("cfBuyQty", "cfSellQty", "flBuyQty", "flSellQty")
_SCALE = ("multiplier", "genNum", "genDen", "prcNum", "prcDen")


def _position_line(row: Any) -> _Line:
    key = symbol_key(_text(row, "exSeg"), _text(row, "trdSym"))
    quantities = [_decimal(row, name) for name in _QUANTITIES]
    for name, quantity in zip(_QUANTITIES, quantities, strict=True):
        if quantity < 0:
            raise VenueError(f"{name} {row[name]!r} is negative")
    carried_buy, carried_sell, bought, sold = quantities
    buy_amount, sell_amount = (
        _decimal(row, name) if row.get(name) is not None else None for name in ("buyAmt", "sellAmt")
    )
    return _Line(
        key,
        carried_buy,
        carried_sell,
        bought,
        sold,
        buy_amount,
        sell_amount,
        _scale(row),
        _updated(row.get("hsUpTm")),
        _raw(row),
    )


def _scale(row: Mapping[str, Any]) -> Fraction | None:
    if any(row.get(name) is None for name in _SCALE):
        return None
    multiplier, gen_num, gen_den, prc_num, prc_den = (_decimal(row, n) for n in _SCALE)
    for name, value in (("genDen", gen_den), ("prcDen", prc_den), ("multiplier", multiplier)):
        if value <= 0:
            raise VenueError(f"{name} {row[name]!r} is not positive")
    scale = (
        Fraction(multiplier)
        * Fraction(gen_num)
        / Fraction(gen_den)
        * Fraction(prc_num)
        / Fraction(prc_den)
    )
    if scale <= 0:
        raise VenueError("multiplier x genNum/genDen x prcNum/prcDen is not positive")
    return scale


def _updated(value: Any) -> str | None:
    """``hsUpTm`` ``2021/07/13 18:34:44`` (IST) as ISO 8601 with +05:30."""
    if value is None:
        return None
    match = _UPDATED.match(value) if isinstance(value, str) else None
    if match is None:
        raise VenueError(f"hsUpTm {value!r} is not a time like 2021/07/13 18:34:44")
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        return dt.datetime(year, month, day, hour, minute, second, tzinfo=IST).isoformat()
    except ValueError as exc:
        raise VenueError(f"hsUpTm {value!r} is not a valid time: {exc}") from None


def _instrument_of(row: Any, account: str, symbols: SymbolMap) -> str | None:
    """The instrument a row that cannot be read is about, when that much can be read."""
    try:
        key = symbol_key(_text(row, "exSeg"), _text(row, "trdSym"))
    except VenueError:
        return None
    return symbols.instrument(account, key)


def _position(account: str, instrument: str, lines: list[_Line]) -> dict[str, Any]:
    carried_buy = sum((line.carried_buy for line in lines), Decimal(0))
    carried_sell = sum((line.carried_sell for line in lines), Decimal(0))
    bought = sum((line.bought for line in lines), Decimal(0))
    sold = sum((line.sold for line in lines), Decimal(0))
    net = carried_buy + bought - carried_sell - sold
    record: dict[str, Any] = {
        "type": "broker_position",
        "account": account,
        "instrument": instrument,
        "quantity": decimal_text(str(net), "net quantity"),
        "position_side": "BOTH",
        "position_mode": "netting",
    }
    average = _average(lines, net, carried_buy + carried_sell, bought, sold)
    if average is not None:
        record["avg_price"] = average
    times = [line.updated for line in lines if line.updated is not None]
    if times:
        record["ts"] = max(times)
    return record


def _average(
    lines: list[_Line], net: Decimal, carried: Decimal, bought: Decimal, sold: Decimal
) -> str | None:
    """The average entry of an open position built today by fills of one side only, where
    Kotak's amounts give it exactly; None otherwise (docs/venues/kotak.md)."""
    scales = {line.scale for line in lines}
    if net == 0 or carried != 0 or len(scales) != 1:
        return None
    (scale,) = scales
    if scale is None:
        return None
    if net > 0 and sold == 0:
        amounts = [line.buy_amount for line in lines]
        quantity = bought
    elif net < 0 and bought == 0:
        amounts = [line.sell_amount for line in lines]
        quantity = sold
    else:
        return None
    if any(amount is None for amount in amounts):
        return None
    total = sum((Fraction(amount) for amount in amounts if amount is not None), Fraction(0))
    exact = total / (Fraction(quantity) * scale)
    units = round(exact * 10**_AVERAGE_PLACES)
    return decimal_text(f"{units}E-{_AVERAGE_PLACES}", "average price")
