"""Interactive Brokers (docs/venues/ib.md): ib_async's own objects to the ledger's input
records.

* :func:`parse_fill`: one ``ib_async.Fill`` (an execution with its commission report) to
  a ``fill`` record;
* :class:`Joiner`: executions and the commission reports that arrive after them, joined;
  each execution passed on once, corrections of executions handled;
* :func:`parse_executions`: the fills of a ``reqExecutions`` catch-up, the same records as
  live ones (sent again, they are duplicates);
* :func:`parse_positions`: ``ib.positions()`` to ``broker_position`` records.

ib_async keeps IB's numbers as floats. A float is read through its ``repr``, the shortest
decimal that gives that float back; for a value IB sent as a decimal of at most 15
significant digits, that is the value IB sent (:func:`exact_decimal`).
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from ib_async import CommissionReport, Fill, Position

from posledger.venues.base import Parsed, Rejection, SymbolMap, VenueError, decimal_text

__all__ = [
    "EXACT_DIGITS",
    "Joiner",
    "exact_decimal",
    "instrument_key",
    "iso_time",
    "parse_executions",
    "parse_fill",
    "parse_positions",
    "split_exec_id",
]

EXACT_DIGITS = 15
"""Significant digits a float read exactly may have: any decimal of at most 15 (a double's
``DBL_DIG``) survives decimal -> float -> shortest ``repr`` unchanged."""

_SIDES = {"BOT": "BUY", "SLD": "SELL"}
_UNSET_DOUBLE = sys.float_info.max
"""IB's 'no value' for a double (ib_async's ``UNSET_DOUBLE``)."""
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
"""ib_async's default ``Execution.time``: no time was given."""
_PER_CONTRACT = frozenset({"FUT", "OPT", "FOP"})
"""Security types whose ``avgCost`` is per contract: the price times the multiplier."""
_PER_UNIT = frozenset({"STK", "CASH", "CRYPTO"})
"""Security types whose ``avgCost`` is per unit (share, coin, unit of currency)."""
_QUANTUM = Decimal(1).scaleb(-18)

StrategyOf = Callable[[str], str | None]
"""An ``orderRef`` to the strategy it names (None: the fill names no strategy)."""


# --- numbers, times, ids -------------------------------------------------------------------


def exact_decimal(value: object, what: str, *, digits: int | None = EXACT_DIGITS) -> Decimal:
    """``value`` as the decimal IB sent.

    A float is read through ``repr`` (the shortest decimal that rounds to it): IB sends
    decimal text, ib_async parses it with ``float()``, and a decimal of at most 15
    significant digits is the only one of so few digits that rounds to that float, so
    ``repr`` gives it back. A float whose ``repr`` needs more than ``digits`` significant
    digits was not such a decimal (IB's unset value, or a computed number) and is refused
    (``digits=None`` takes any finite float as its shortest decimal). A ``Decimal`` (newer
    ib_async sizes), an ``int`` or a decimal string is taken as is. :class:`VenueError` for
    anything else.
    """
    if isinstance(value, bool):
        raise VenueError(f"{what} {value!r} is not a number")
    if isinstance(value, float):
        if value == _UNSET_DOUBLE:
            raise VenueError(f"{what} is IB's unset value ({value!r}): IB gave no number")
        if not math.isfinite(value):
            raise VenueError(f"{what} {value!r} is not a finite number")
        number = Decimal(repr(value))
        significant = len(number.normalize().as_tuple().digits)
        if digits is not None and significant > digits:
            raise VenueError(
                f"{what} {value!r} has {significant} significant digits: not a decimal IB "
                f"sent (at most {digits}), so it cannot be read exactly"
            )
        return number
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise VenueError(f"{what} {value!r} is not a finite number")
        return value
    if isinstance(value, int | str):
        return Decimal(decimal_text(value, what))
    raise VenueError(f"{what} {value!r} is not a number")


def _text(number: Decimal) -> str:
    """A decimal as the ledger's canonical decimal string (no exponent, no trailing zeros)."""
    return decimal_text(format(number, "f"), "number")


def iso_time(value: object, what: str = "execution time") -> str:
    """An aware ``datetime`` as ISO 8601 UTC (``Z``), to the microsecond it holds."""
    if not isinstance(value, dt.datetime):
        raise VenueError(f"{what} {value!r} is not a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise VenueError(f"{what} {value.isoformat()} has no time zone: its instant is unknown")
    utc = value.astimezone(dt.UTC)
    if utc == _EPOCH:
        raise VenueError(f"{what} is unset (1970-01-01T00:00:00Z)")
    return utc.replace(tzinfo=None).isoformat() + "Z"


def split_exec_id(exec_id: str) -> tuple[str, int | None]:
    """An IB execution id as (base, correction number): ``0000e0d5.6564cf53.01.02`` is
    (``0000e0d5.6564cf53.01``, 2), the second version of that execution. An id without
    digits after its last period has no number: (the id, None)."""
    base, dot, last = exec_id.rpartition(".")
    if dot and base and last.isascii() and last.isdigit():
        return base, int(last)
    return exec_id, None


def instrument_key(contract: Any) -> str:
    """The symbol-map key of an IB contract: its ``conId``, as decimal text. (IB's contract
    id names one contract for its whole life; a ``localSymbol`` such as ``MESH6`` is
    reused by the next decade's contract.)"""
    con_id = getattr(contract, "conId", 0)
    if isinstance(con_id, bool) or not isinstance(con_id, int) or con_id <= 0:
        raise VenueError(f"contract {_describe(contract)} has no conId")
    return str(con_id)


def _describe(contract: Any) -> str:
    parts = [
        str(getattr(contract, name, "") or "")
        for name in ("localSymbol", "secType", "exchange", "currency")
    ]
    text = " ".join(part for part in parts if part)
    return text or "?"


def _identifier(value: object, what: str) -> str:
    """``value`` when the ledger takes it as an identifier (docs/format.md, Limits)."""
    if not isinstance(value, str) or not value:
        raise VenueError(f"{what} {value!r} is empty or not text")
    if len(value) > 128:
        raise VenueError(f"{what} {value[:64]!r}... is longer than 128 characters")
    if value != value.strip() or not value.isprintable():
        raise VenueError(f"{what} {value!r} has surrounding spaces or unprintable characters")
    return value


def _account(code: object, accounts: Mapping[str, str]) -> str:
    if not isinstance(code, str) or not code:
        raise VenueError("the execution names no IB account (acctNumber is empty)")
    account = accounts.get(code)
    if account is None:
        raise VenueError(
            f"IB account {code} is not mapped to a posledger account: add it to the "
            f"accounts mapping ({code} -> ACCOUNT)"
        )
    return account


def _instrument(contract: Any, account: str, symbols: SymbolMap) -> str:
    key = instrument_key(contract)
    instrument = symbols.instrument(account, key)
    if instrument is None:
        raise VenueError(f"{symbols.missing(account, key)} (IB contract {_describe(contract)})")
    return instrument


# --- fills -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Commission:
    """A commission report read: ``amount`` None when IB gave none that can be read."""

    amount: Decimal | None
    currency: str | None

    def show(self) -> str:
        if self.amount is None:
            return "no commission"
        return f"commission {_text(self.amount)} {self.currency or ''}".rstrip()


_NONE = _Commission(None, None)


def _has_report(fill: Fill) -> bool:
    report = fill.commissionReport
    return bool(report.execId) and report.execId == fill.execution.execId


def _read_report(report: CommissionReport, what: str) -> _Commission:
    """Raises :class:`VenueError` when the commission cannot be read exactly."""
    amount = exact_decimal(report.commission, f"commission of {what}")
    currency = report.currency or None
    if currency is not None:
        _identifier(currency, f"commission currency of {what}")
    return _Commission(amount, currency)


def _base_record(
    fill: Fill,
    *,
    accounts: Mapping[str, str],
    symbols: SymbolMap,
    strategy_of: StrategyOf | None,
) -> dict[str, Any]:
    """The ``fill`` record of an execution, without commission. :class:`VenueError` when
    it cannot be read."""
    execution = fill.execution
    exec_id = _identifier(execution.execId, "execId")
    account = _account(execution.acctNumber, accounts)
    instrument = _instrument(fill.contract, account, symbols)
    side = _SIDES.get(execution.side)
    if side is None:
        raise VenueError(f"execution {exec_id} has side {execution.side!r}, not BOT or SLD")
    quantity = exact_decimal(execution.shares, f"shares of {exec_id}")
    if quantity <= 0:
        raise VenueError(f"execution {exec_id} has shares {_text(quantity)}: not positive")
    price = exact_decimal(execution.price, f"price of {exec_id}")
    record: dict[str, Any] = {
        "type": "fill",
        "exec_id": exec_id,
        "account": account,
        "instrument": instrument,
        "side": side,
        "quantity": _text(quantity),
        "price": _text(price),
        "ts": iso_time(execution.time, f"time of {exec_id}"),
    }
    if isinstance(execution.permId, int) and execution.permId > 0:
        record["client_order_id"] = str(execution.permId)
    if execution.orderRef:
        tag = execution.orderRef if strategy_of is None else strategy_of(execution.orderRef)
        if tag is not None:
            record["strategy"] = _identifier(tag, f"strategy (orderRef) of {exec_id}")
    if execution.liquidation:
        record["liquidation"] = True
    return record


def _with_commission(record: dict[str, Any], commission: _Commission) -> dict[str, Any]:
    if commission.amount is None:
        return record
    out = dict(record)
    out["commission"] = _text(commission.amount)
    if commission.currency is not None:
        out["commission_currency"] = commission.currency
    return out


def _show(record: Mapping[str, Any], commission: _Commission) -> str:
    return f"{record['side']} {record['quantity']} @ {record['price']}, {commission.show()}"


_SAME_FOR_A_DIFFERENCE = (
    "account",
    "instrument",
    "side",
    "price",
    "client_order_id",
    "strategy",
    "liquidation",
)
"""The fields a correction must keep for the extra quantity to be booked as a fill."""


@dataclass(frozen=True)
class _Booked:
    """What the ledger was given for one execution (all versions of one base id)."""

    exec_id: str
    version: int | None
    record: Mapping[str, Any]
    """The execution as it now stands in the ledger: the last version booked, with the
    whole quantity (not a difference)."""
    commission: _Commission


@dataclass
class _Out:
    fills: list[dict[str, Any]]
    rejections: list[Rejection]
    ignored: list[str]
    awaiting: list[str]

    @classmethod
    def new(cls) -> _Out:
        return cls([], [], [], [])

    def add(self, other: _Out) -> None:
        self.fills += other.fills
        self.rejections += other.rejections
        self.ignored += other.ignored
        self.awaiting += other.awaiting

    def parsed(self) -> Parsed:
        extra: dict[str, Any] = {}
        if self.awaiting:
            extra["awaiting_commission"] = tuple(self.awaiting)
        ignored = None
        if self.ignored and not self.fills and not self.rejections:
            ignored = "; ".join(self.ignored)
        elif self.ignored:
            extra["ignored"] = tuple(self.ignored)
        return Parsed(
            fills=tuple(self.fills),
            rejections=tuple(self.rejections),
            ignored=ignored,
            extra=extra,
        )


class Joiner:
    """Executions joined to their commission reports; each passed on to the ledger once.

    IB sends an execution (``execDetails``) and its commission report separately, the
    report usually just after. An execution is held until its report arrives
    (:meth:`execution`, :meth:`report`, in either order), then passed on with its
    commission. :meth:`flush` passes on what is still held without a commission, when the
    caller has waited long enough; a report arriving after that is refused for review,
    never sent as a second version of the fill (the ledger keeps a fill as first applied,
    and rejects the same ``exec_id`` with other content as a conflict).

    A correction (the same execution id with a higher last number) replaces the earlier
    version. The ledger cannot cancel or amend a fill, so it is booked only where a
    difference says it exactly: the same order, side and price with a larger quantity is
    booked as a fill of the extra quantity under the correction's own id; anything else is
    refused for review (docs/venues/ib.md, Corrections).
    """

    def __init__(
        self,
        *,
        accounts: Mapping[str, str],
        symbols: SymbolMap,
        strategy_of: StrategyOf | None = None,
        max_reports: int = 10_000,
    ) -> None:
        self._accounts = accounts
        self._symbols = symbols
        self._strategy_of = strategy_of
        self._max_reports = max_reports
        self._pending: dict[str, Fill] = {}
        """Executions waiting for their commission report, by exec id, oldest first."""
        self._reports: OrderedDict[str, CommissionReport] = OrderedDict()
        """Commission reports whose execution has not arrived (at most ``max_reports``)."""
        self._booked: dict[str, _Booked] = {}
        """By base id: what the ledger was given."""
        self._passed: dict[str, _Commission] = {}
        """Exec ids passed on to the ledger, with the commission they carried."""
        self._latest: dict[str, tuple[int, str]] = {}
        """By base id: the highest correction number seen, and its exec id."""
        self._done: set[str] = set()
        """Exec ids settled without being passed on (superseded, refused for review)."""
        self._refused: set[tuple[str, _Commission]] = set()
        """Late commission reports refused: the same one again is only ignored."""

    @property
    def pending(self) -> tuple[str, ...]:
        """Exec ids held for their commission report, oldest first."""
        return tuple(self._pending)

    def execution(self, fill: Fill) -> Parsed:
        """An execution (``execDetailsEvent``'s fill, or one of ``reqExecutions``): passed
        on when its commission report is there (in the fill, or received before), else
        held (``extra["awaiting_commission"]``)."""
        return self._execution(fill).parsed()

    def report(self, report: CommissionReport) -> Parsed:
        """A commission report (``commissionReportEvent``): passes its held execution on."""
        return self._report(report).parsed()

    def flush(self, exec_ids: Iterable[str] | None = None) -> Parsed:
        """Pass on the held executions (``exec_ids``, or all): with the commission when its
        report has since reached the fill, else without one, for good."""
        chosen = list(self._pending) if exec_ids is None else list(exec_ids)
        out = _Out.new()
        for exec_id in chosen:
            fill = self._pending.pop(exec_id, None)
            if fill is None:
                continue
            if _has_report(fill):
                out.add(self._complete(fill, fill.commissionReport))
            else:
                out.add(self._complete(fill, None))
        return out.parsed()

    # -- the steps ------------------------------------------------------------------------

    def _execution(self, fill: Fill) -> _Out:
        out = _Out.new()
        execution = fill.execution
        exec_id = execution.execId
        if getattr(fill.contract, "secType", "") == "BAG":
            out.ignored.append(
                f"execution {exec_id} is of a combo (BAG): its legs come as executions of their own"
            )
            return out
        if not isinstance(exec_id, str) or not exec_id:
            out.rejections.append(Rejection("the execution has no execId", repr(fill)))
            return out
        if exec_id in self._passed or exec_id in self._done:
            if _has_report(fill):
                return self._late(exec_id, fill.commissionReport)
            out.ignored.append(f"execution {exec_id} was already handled")
            return out
        try:
            _base_record(
                fill,
                accounts=self._accounts,
                symbols=self._symbols,
                strategy_of=self._strategy_of,
            )
        except VenueError as exc:
            out.rejections.append(Rejection(str(exc), repr(fill)))
            return out
        base, version = split_exec_id(exec_id)
        if version is not None:
            latest = self._latest.get(base)
            if latest is not None and latest[0] > version:
                self._done.add(exec_id)
                self._pending.pop(exec_id, None)
                out.ignored.append(
                    f"execution {exec_id} is superseded by its correction {latest[1]}"
                )
                return out
            self._latest[base] = (version, exec_id)
            for held in [e for e in self._pending if e != exec_id]:
                held_base, held_version = split_exec_id(held)
                if held_base == base and held_version is not None and held_version < version:
                    del self._pending[held]
                    self._done.add(held)
                    out.ignored.append(
                        f"execution {held} was superseded by its correction {exec_id} before "
                        "it was passed on"
                    )
        if _has_report(fill):
            self._pending.pop(exec_id, None)
            self._reports.pop(exec_id, None)
            out.add(self._complete(fill, fill.commissionReport))
            return out
        report = self._reports.pop(exec_id, None)
        if report is not None:
            self._pending.pop(exec_id, None)
            out.add(self._complete(fill, report))
            return out
        self._pending[exec_id] = fill
        out.awaiting.append(exec_id)
        out.ignored.append(f"execution {exec_id} waits for its commission report")
        return out

    def _report(self, report: CommissionReport) -> _Out:
        out = _Out.new()
        exec_id = report.execId
        if not isinstance(exec_id, str) or not exec_id:
            out.rejections.append(Rejection("the commission report has no execId", repr(report)))
            return out
        fill = self._pending.pop(exec_id, None)
        if fill is not None:
            out.add(self._complete(fill, report))
            return out
        if exec_id in self._passed or exec_id in self._done:
            return self._late(exec_id, report)
        self._reports[exec_id] = report
        while len(self._reports) > self._max_reports:
            self._reports.popitem(last=False)
        out.ignored.append(f"commission report of {exec_id} is kept until its execution arrives")
        return out

    def _late(self, exec_id: str, report: CommissionReport) -> _Out:
        """A commission report of an execution already settled: refused for review when it
        says other than what was booked."""
        out = _Out.new()
        passed = self._passed.get(exec_id)
        booked = self._booked.get(split_exec_id(exec_id)[0])
        if passed is None and (booked is None or booked.exec_id != exec_id):
            out.ignored.append(f"commission report of {exec_id}: its execution was settled")
            return out
        try:
            now = _read_report(report, exec_id)
        except VenueError as exc:
            out.rejections.append(Rejection(str(exc), repr(report)))
            return out
        held = passed if passed is not None else booked.commission if booked else _NONE
        if now == held:
            out.ignored.append(f"commission report of {exec_id}: already booked with it")
            return out
        if (exec_id, now) in self._refused:
            out.ignored.append(f"commission report of {exec_id}: already refused")
            return out
        self._refused.add((exec_id, now))
        if held.amount is None:
            out.rejections.append(
                Rejection(
                    f"commission report of {exec_id} ({now.show()}) came after the fill was "
                    "passed on without a commission; a fill is never sent twice with "
                    "different content, so it is not booked: review it",
                    repr(report),
                )
            )
        else:
            out.rejections.append(
                Rejection(
                    f"commission report of {exec_id} ({now.show()}) differs from the one "
                    f"booked ({held.show()}); the ledger cannot amend a fill: review it",
                    repr(report),
                )
            )
        return out

    def _complete(self, fill: Fill, report: CommissionReport | None) -> _Out:
        """An execution with its report (None: passed on without one)."""
        out = _Out.new()
        exec_id = fill.execution.execId
        try:
            record = _base_record(
                fill,
                accounts=self._accounts,
                symbols=self._symbols,
                strategy_of=self._strategy_of,
            )
        except VenueError as exc:
            out.rejections.append(Rejection(str(exc), repr(fill)))
            return out
        commission = _NONE
        if report is not None:
            try:
                commission = _read_report(report, exec_id)
            except VenueError as exc:
                out.rejections.append(
                    Rejection(f"{exc}; the fill is booked without a commission", repr(report))
                )
        base, version = split_exec_id(exec_id)
        if version is not None and version > 1:
            out.add(self._correction(fill, record, commission, self._booked.get(base)))
            return out
        out.fills.append(_with_commission(record, commission))
        self._passed[exec_id] = commission
        if version is not None:
            self._booked[base] = _Booked(exec_id, version, record, commission)
        return out

    def _correction(
        self,
        fill: Fill,
        record: dict[str, Any],
        commission: _Commission,
        booked: _Booked | None,
    ) -> _Out:
        """A correction: booked as a difference when one says it exactly, else refused."""
        out = _Out.new()
        exec_id = record["exec_id"]
        base, version = split_exec_id(exec_id)
        corrected = f"{exec_id} ({_show(record, commission)})"
        if booked is None:
            self._done.add(exec_id)
            out.rejections.append(
                Rejection(
                    f"IB corrected execution {base} by {corrected}, but no earlier version was "
                    "passed on here, so what the ledger holds for it is not known; a "
                    "correction replaces the execution, and the ledger cannot cancel a fill: "
                    f"not booked. Review it: if the ledger holds no fill of {base}, book "
                    "this one as is; else book the difference by hand, and reconcile",
                    repr(fill),
                )
            )
            return out
        old_quantity = Decimal(booked.record["quantity"])
        new_quantity = Decimal(record["quantity"])
        same = all(booked.record.get(name) == record.get(name) for name in _SAME_FOR_A_DIFFERENCE)
        kept = booked.commission if commission.amount is None else commission
        currencies = {c for c in (booked.commission.currency, commission.currency) if c}
        if same and new_quantity == old_quantity and kept == booked.commission:
            self._done.add(exec_id)
            self._booked[base] = _Booked(exec_id, version, record, kept)
            out.ignored.append(f"correction {exec_id} of {booked.exec_id} changes nothing booked")
            return out
        if same and new_quantity > old_quantity and len(currencies) <= 1:
            difference = dict(record)
            difference["quantity"] = _text(new_quantity - old_quantity)
            extra = _NONE
            if commission.amount is not None:
                held = booked.commission.amount or Decimal(0)
                extra = _Commission(commission.amount - held, commission.currency)
            out.fills.append(_with_commission(difference, extra))
            self._passed[exec_id] = commission
            self._booked[base] = _Booked(exec_id, version, record, kept)
            return out
        self._done.add(exec_id)
        earlier = f"{booked.exec_id} ({_show(booked.record, booked.commission)}, booked)"
        out.rejections.append(
            Rejection(
                f"IB corrected execution {earlier} by {corrected}; the ledger cannot cancel or "
                "amend a fill, and only a larger quantity at the same price, side and order "
                "can be booked as a difference: not booked. Review it, book the difference by "
                "hand, and reconcile",
                repr(fill),
            )
        )
        return out


def parse_fill(
    fill: Fill,
    *,
    accounts: Mapping[str, str],
    symbols: SymbolMap,
    strategy_of: StrategyOf | None = None,
) -> Parsed:
    """One ``ib_async.Fill`` as a ``fill`` record, with its commission report's
    commission. A fill whose report has not arrived (ib_async's empty report) gives
    nothing yet (``extra["awaiting_commission"]``: see :class:`Joiner`); a correction gives
    a rejection for review (what the ledger holds for the execution is not known here).

    The record: ``exec_id`` the execId; ``account`` from ``accounts`` (IB account code ->
    posledger account); ``instrument`` from ``symbols`` by the contract's conId; ``side``
    BUY for BOT, SELL for SLD; ``quantity`` the shares; ``price``; ``ts`` the execution's
    time in UTC; ``client_order_id`` the permId (when not 0); ``strategy`` the orderRef
    (through ``strategy_of`` when given); ``commission`` and ``commission_currency``;
    ``liquidation`` when IB liquidated.
    """
    joiner = Joiner(accounts=accounts, symbols=symbols, strategy_of=strategy_of)
    return joiner.execution(fill)


def parse_executions(
    fills: Iterable[Fill],
    *,
    accounts: Mapping[str, str],
    symbols: SymbolMap,
    strategy_of: StrategyOf | None = None,
) -> Parsed:
    """The fills of a ``reqExecutions`` catch-up (or ``ib.fills()``), in order: the same
    records as :func:`parse_fill` gives live, so those the ledger has are duplicates.
    Corrections whose earlier version is in the list are handled as :class:`Joiner` does;
    fills without a commission report are listed in ``extra["awaiting_commission"]`` and
    not passed on."""
    joiner = Joiner(accounts=accounts, symbols=symbols, strategy_of=strategy_of)
    out = _Out.new()
    for fill in fills:
        out.add(joiner._execution(fill))
    out.awaiting = list(joiner.pending)
    return out.parsed()


# --- positions -------------------------------------------------------------------------------


def _multiplier(contract: Any) -> Decimal | None:
    """What ``avgCost`` is divided by to give a price: the multiplier for futures and
    options, 1 for stocks, currencies and crypto; None when that is not known (another
    security type, or a future or option that does not give its multiplier)."""
    text = getattr(contract, "multiplier", "") or ""
    sec_type = getattr(contract, "secType", "") or ""
    if sec_type in _PER_UNIT:
        return Decimal(1)
    if sec_type not in _PER_CONTRACT or not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() and number > 0 else None


def _avg_price(position: Position) -> str | None:
    """IB's average cost as a price (None when it says none, or its unit is not known):
    ``avgCost`` is per contract for futures and options (price times multiplier) and per
    share for stocks, and includes the commissions paid."""
    try:
        cost = exact_decimal(position.avgCost, "avgCost", digits=None)
    except VenueError:
        return None
    multiplier = _multiplier(position.contract)
    if cost == 0 or multiplier is None:
        return None
    price = (cost / multiplier).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
    return _text(price)


def parse_positions(
    positions: Iterable[Position],
    *,
    accounts: Mapping[str, str],
    symbols: SymbolMap,
) -> Parsed:
    """``ib.positions()`` as ``broker_position`` records: ``account`` and ``instrument``
    mapped as for fills, ``quantity`` signed (negative short), ``avg_price`` the average
    cost per unit of price (``avgCost``, divided by the multiplier for futures and options;
    absent when IB gives none or its unit is not known), ``position_mode`` netting (IB nets
    per account and contract)."""
    records: list[dict[str, Any]] = []
    rejections: list[Rejection] = []
    for position in positions:
        try:
            account = _account(position.account, accounts)
            instrument = _instrument(position.contract, account, symbols)
            quantity = exact_decimal(position.position, f"position of {account} {instrument}")
        except VenueError as exc:
            rejections.append(Rejection(str(exc), repr(position)))
            continue
        record: dict[str, Any] = {
            "type": "broker_position",
            "account": account,
            "instrument": instrument,
            "quantity": _text(quantity),
        }
        avg_price = _avg_price(position)
        if avg_price is not None and quantity != 0:
            record["avg_price"] = avg_price
        record["position_mode"] = "netting"
        records.append(record)
    return Parsed(positions=tuple(records), rejections=tuple(rejections))
