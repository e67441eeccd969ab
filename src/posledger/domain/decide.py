"""State + input -> decision: how a fill or a mark changes a book (DESIGN §3-§5).

Pure functions over immutable values. Nothing here reads a database or a clock; trade
ids come from the caller's allocator so that a replay can hand back the journaled ones.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, getcontext
from enum import Enum

from .attribution import attribute
from .book import Book
from .enums import (
    EXTERNAL,
    CloseReason,
    Direction,
    Intent,
    Kind,
    LotMethod,
    PositionSide,
    Role,
    Side,
    Source,
)
from .events import Anomaly, Duplicate, FillDecision, Leg, MarkDecision, Rejection
from .inputs import Fill, Mark
from .numbers import PRECISION, ZERO, exact, fmt, q18
from .positions import (
    Lot,
    Slot,
    SlotKey,
    Trade,
    pnl,
    realized_return,
    unrealized,
    weighted_average,
)
from .refdata import Account, Instrument, InvalidInput, Order

__all__ = [
    "Anomaly",
    "Duplicate",
    "FillDecision",
    "Leg",
    "MarkDecision",
    "Rejection",
    "decide_fill",
    "decide_mark",
]


class _Mode(Enum):
    FREE = "free"
    """Open, increase, reduce, close and (netting) flip."""
    REDUCE_ONLY = "reduce_only"
    """Only reduce; what is left over is returned to the caller."""


_new = tuple.__new__  # builds a NamedTuple without its Python-level __new__

_EXIT_REASON = {
    Intent.EXIT: CloseReason.EXIT,
    Intent.TAKE_PROFIT: CloseReason.TAKE_PROFIT,
    Intent.STOP_LOSS: CloseReason.STOP_LOSS,
}


def _lots_average(lots: tuple[Lot, ...]) -> Decimal:
    total = sum((lot.quantity for lot in lots), ZERO)
    return q18(sum((lot.quantity * lot.price for lot in lots), ZERO) / total)


class _Work:
    """Accumulates one fill's effects on working copies of the book's values."""

    __slots__ = (
        "account",
        "anomalies",
        "book",
        "currency",
        "instrument",
        "intent",
        "label",
        "legs",
        "liquidation",
        "lot_method",
        "new_trade_id",
        "opened",
        "price",
        "reason",
        "slots",
        "source",
        "trades",
        "ts",
    )

    def __init__(
        self,
        book: Book,
        account: Account,
        instrument: Instrument,
        currency: str,
        intent: Intent | None,
        new_trade_id: Callable[[], int],
        price: Decimal,
        ts: int,
        label: str,
        liquidation: bool = False,
    ) -> None:
        self.book = book
        self.account = account
        self.instrument = instrument
        self.currency = currency
        self.intent = intent
        self.new_trade_id = new_trade_id
        self.price = price
        """Price of what is booked next (a transfer or adjustment may change it between
        moves)."""
        self.ts = ts
        self.label = label
        """How messages name what is booked: a fill's exec_id."""
        self.liquidation = liquidation
        self.reason: CloseReason | None = None
        """Close reason of every trade closed from here on, whatever the intent."""
        self.source = Source.FILL
        self.lot_method = account.lot_method
        self.slots: dict[SlotKey, Slot] = {}
        self.trades: dict[int, Trade] = {}
        self.legs: list[Leg] = []
        self.anomalies: list[Anomaly] = []
        self.opened: list[int] = []

    def _close_reason(self, crossing: bool) -> CloseReason:
        if self.reason is not None:
            return self.reason
        if self.liquidation:
            return CloseReason.LIQUIDATION
        if crossing:
            return CloseReason.FLIP
        intent = self.intent
        return CloseReason.EXIT if intent is None else _EXIT_REASON.get(intent, CloseReason.EXIT)

    # -- working copies -----------------------------------------------------------

    def peek(self, key: SlotKey) -> Slot | None:
        """The slot as this fill has left it so far, without taking a working copy."""
        slot = self.slots.get(key)
        return self.book.slots.get(key) if slot is None else slot

    def slot(self, key: SlotKey) -> Slot:
        """A working copy of the slot, to change."""
        slot = self.slots.get(key)
        if slot is None:
            held = self.book.slots.get(key)
            slot = self.slots[key] = Slot(key) if held is None else held.copy()
        return slot

    def finish(self) -> None:
        """A trade's peak is what it held after the whole fill (a spot fill's base-currency
        commission is taken before the peak is read). A trade opened and closed by one
        decision (EXTERNAL quantity a reconciliation books and hands on to a strategy in the
        same check) keeps what it opened with."""
        book = self.book.open_trades
        for trade_id, trade in self.trades.items():
            before = book.get(trade_id)
            if before is None and trade.closed_at is not None:
                continue
            peak = ZERO if before is None else before.peak_quantity
            trade.peak_quantity = max(peak, trade.quantity)

    def trade(self, trade_id: int | None) -> Trade:
        assert trade_id is not None
        trade = self.trades.get(trade_id)
        if trade is None:
            trade = self.trades[trade_id] = self.book.open_trades[trade_id].copy()
        return trade

    def _commission(self, trade: Trade, amount: Decimal) -> None:
        totals = trade.commissions
        totals[self.currency] = totals.get(self.currency, ZERO) + amount

    def _leg(
        self,
        slot: Slot,
        role: Role,
        delta: Decimal,
        commission: Decimal,
        realized: Decimal,
        adjustment: bool,
    ) -> None:
        assert slot.trade_id is not None
        leg = (
            slot.key,
            slot.trade_id,
            role,
            abs(delta),
            delta,
            self.price,
            commission,
            self.currency,
            realized,
            adjustment,
            self.source,
        )
        self.legs.append(_new(Leg, leg))

    # -- routing: who may take which part -------------------------------------------

    def _mode(self, key: SlotKey, delta: Decimal) -> _Mode:
        if key.strategy == EXTERNAL:
            return _Mode.FREE
        if self.intent is not None and self.intent is not Intent.ENTRY:
            return _Mode.REDUCE_ONLY
        if self.account.hedge and (key.position_side is PositionSide.LONG) == (delta < 0):
            return _Mode.REDUCE_ONLY
        return _Mode.FREE

    def route(self, key: SlotKey, delta: Decimal, commission: Decimal, adjustment: bool) -> None:
        excess, excess_commission = self.move(
            key, delta, commission, self._mode(key, delta), adjustment
        )
        if not excess:
            return
        size = fmt(abs(excess))
        what = "base-currency commission of fill" if adjustment else "fill"
        if self.intent is not None and self.intent.is_exit:
            kind = "exit_overshoot"
            detail = (
                f"{self.intent} {what} {self.label} exceeds {key.strategy}'s position "
                f"by {size}; an exit never opens, so {size} is booked to {EXTERNAL}"
            )
        else:
            kind = "hedge_overshoot"
            detail = (
                f"{what} {self.label} would take {key.strategy}'s {key.position_side} "
                f"slot past zero by {size}; a hedge slot never changes sign, so {size} is "
                f"booked to {EXTERNAL}"
            )
        self.anomalies.append(Anomaly(kind, key, abs(excess), detail))
        external = key._replace(strategy=EXTERNAL)
        self.move(external, excess, excess_commission, _Mode.FREE, adjustment)

    def check_external_sides(self) -> None:
        if not self.account.hedge:
            return
        for key, slot in self.slots.items():
            if key.strategy != EXTERNAL or not slot.quantity:
                continue
            if (key.position_side is PositionSide.LONG) != (slot.quantity > 0):
                self.anomalies.append(
                    Anomaly(
                        "external_wrong_side",
                        key,
                        abs(slot.quantity),
                        f"{EXTERNAL} {key.position_side} slot holds {fmt(slot.quantity)}: "
                        "the broker cannot hold that, so the ledger is missing fills",
                    )
                )

    # -- accounting -----------------------------------------------------------------

    def move(
        self,
        key: SlotKey,
        delta: Decimal,
        commission: Decimal,
        mode: _Mode,
        adjustment: bool,
        flip: bool = False,
    ) -> tuple[Decimal, Decimal]:
        """Book ``delta`` to a slot; return what it could not take and its commission share."""
        current = self.peek(key)
        held = ZERO if current is None else current.quantity
        if not held or (held > 0) == (delta > 0):
            if mode is _Mode.REDUCE_ONLY:
                return delta, commission
            slot = self.slot(key)
            if held:
                self._increase(slot, delta, commission, adjustment)
            else:
                self._open(slot, delta, commission, adjustment, flip)
            return ZERO, ZERO
        size = abs(delta)
        closed = min(size, abs(held))
        rest = size - closed
        share = commission if not rest else q18(commission * closed / size)
        crossing = bool(rest) and mode is _Mode.FREE
        sign = 1 if delta > 0 else -1
        self._reduce(self.slot(key), sign * closed, share, adjustment, crossing)
        if not rest:
            return ZERO, ZERO
        remaining = commission - share
        if mode is _Mode.REDUCE_ONLY:
            return sign * rest, remaining
        return self.move(key, sign * rest, remaining, mode, adjustment, flip=True)

    def _open(
        self, slot: Slot, delta: Decimal, commission: Decimal, adjustment: bool, flip: bool
    ) -> None:
        price = self.price
        size = abs(delta)
        trade_id = self.new_trade_id()
        self.opened.append(trade_id)
        self.trades[trade_id] = Trade(
            trade_id=trade_id,
            key=slot.key,
            direction=Direction.LONG if delta > 0 else Direction.SHORT,
            opened_at=self.ts,
            pnl_currency=self.instrument.settlement_currency,
            quantity=size,
            peak_quantity=size,
            avg_entry=price,
            entry_quantity=size,
            commissions={self.currency: commission},
        )
        slot.quantity = delta
        slot.avg_entry = price
        slot.lots = () if self.lot_method is LotMethod.AVERAGE else (Lot(size, price),)
        slot.trade_id = trade_id
        slot.last_price = price
        self._leg(slot, Role.FLIP if flip else Role.OPEN, delta, commission, ZERO, adjustment)

    def _increase(self, slot: Slot, delta: Decimal, commission: Decimal, adjustment: bool) -> None:
        price = self.price
        size = abs(delta)
        avg = slot.avg_entry
        assert avg is not None
        trade = self.trade(slot.trade_id)
        if self.lot_method is LotMethod.AVERAGE:
            # A base-currency commission adjusts quantity only: the average stays.
            if not adjustment:
                slot.avg_entry = trade.avg_entry = weighted_average(
                    avg, abs(slot.quantity), price, size
                )
        else:
            # Lots: base-currency commission quantity enters at the average.
            slot.lots = (*slot.lots, Lot(size, avg if adjustment else price))
            slot.avg_entry = _lots_average(slot.lots)
            if not adjustment:
                trade.avg_entry = weighted_average(
                    trade.avg_entry, trade.entry_quantity, price, size
                )
        if not adjustment:
            trade.entry_quantity += size
        trade.quantity += size
        self._commission(trade, commission)
        slot.quantity += delta
        slot.last_price = price
        self._leg(slot, Role.INCREASE, delta, commission, ZERO, adjustment)

    def _reduce(
        self, slot: Slot, delta: Decimal, commission: Decimal, adjustment: bool, crossing: bool
    ) -> None:
        price = self.price
        size = abs(delta)
        sign = 1 if slot.quantity > 0 else -1
        avg = slot.avg_entry
        assert avg is not None
        trade = self.trade(slot.trade_id)
        multiplier, inverse = self.instrument.multiplier, self.instrument.inverse
        realized = ZERO
        if self.lot_method is LotMethod.AVERAGE:
            if not adjustment:
                realized = pnl(avg, price, size, sign, multiplier, inverse)
        else:
            remaining = list(slot.lots)
            left = size
            index = 0 if self.lot_method is LotMethod.FIFO else -1
            while left:
                lot = remaining[index]
                take = min(lot.quantity, left)
                if not adjustment:
                    realized += pnl(lot.price, price, take, sign, multiplier, inverse)
                if take == lot.quantity:
                    remaining.pop(index)
                else:
                    remaining[index] = Lot(lot.quantity - take, lot.price)
                left -= take
            slot.lots = tuple(remaining)
            if slot.lots:
                slot.avg_entry = _lots_average(slot.lots)
        slot.quantity += delta
        slot.last_price = price
        trade.quantity -= size
        trade.gross_realized += realized
        self._commission(trade, commission)
        if not adjustment:
            exits = trade.exit_quantity
            trade.avg_exit = (
                price
                if trade.avg_exit is None
                else weighted_average(trade.avg_exit, exits, price, size)
            )
            trade.exit_quantity = exits + size
            trade.realized_return = realized_return(trade.avg_entry, trade.avg_exit, sign)
        if slot.quantity:
            role = Role.REDUCE
        else:
            role = Role.FLIP if crossing else Role.CLOSE
            trade.closed_at = self.ts
            trade.close_reason = self._close_reason(crossing)
        self._leg(slot, role, delta, commission, realized, adjustment)


def decide_fill(
    fill: Fill,
    *,
    account: Account,
    instrument: Instrument,
    order: Order | None,
    strategy_known: Callable[[str], bool],
    book: Book,
    new_trade_id: Callable[[], int],
) -> FillDecision | Rejection:
    """Decide what ``fill`` does to ``book``. The book is not changed."""
    try:
        if getcontext().prec >= PRECISION:
            return _decide_fill(
                fill, account, instrument, order, strategy_known, book, new_trade_id
            )
        with exact():
            return _decide_fill(
                fill, account, instrument, order, strategy_known, book, new_trade_id
            )
    except InvalidInput as exc:
        return Rejection(str(exc))


def _decide_fill(
    fill: Fill,
    account: Account,
    instrument: Instrument,
    order: Order | None,
    strategy_known: Callable[[str], bool],
    book: Book,
    new_trade_id: Callable[[], int],
) -> FillDecision | Rejection:
    if fill.account != account.account or fill.instrument != instrument.instrument:
        raise ValueError("decide_fill needs the fill's own account and instrument")
    problem = instrument.price_problem(fill.price)
    if problem is not None:
        return Rejection(problem)
    who = attribute(fill, account, order, strategy_known)
    currency = fill.commission_currency or instrument.settlement_currency
    base_commission = (
        instrument.kind is Kind.SPOT
        and currency == instrument.base_currency
        and bool(fill.commission)
    )
    if base_commission and fill.side is Side.BUY and fill.commission >= fill.quantity:
        return Rejection(
            f"commission {fmt(fill.commission)} {currency} is not less than the quantity bought "
            f"({fmt(fill.quantity)})"
        )
    work = _Work(
        book,
        account,
        instrument,
        currency,
        who.intent,
        new_trade_id,
        fill.price,
        fill.ts,
        fill.exec_id,
        fill.liquidation,
    )
    key = book.key(fill.account, who.strategy, who.position_side)
    delta = fill.quantity if fill.side is Side.BUY else -fill.quantity
    work.route(key, delta, fill.commission, adjustment=False)
    if base_commission:
        work.route(key, -fill.commission, ZERO, adjustment=True)
    work.check_external_sides()
    work.finish()
    return FillDecision(
        fill,
        who.strategy,
        who.position_side,
        who.intent,
        currency,
        work.legs,
        list(work.slots.values()),
        list(work.trades.values()),
        work.anomalies,
        work.opened,
    )


def decide_mark(
    mark: Mark, *, instrument: Instrument, book: Book
) -> MarkDecision | Duplicate | Rejection:
    """Fold a mark into the MAE/MFE of every trade open on the instrument.

    ``mark.ts`` must be set (the service stamps marks that arrive without one). Marks move
    forward in time: one not newer than the last applied mark changes nothing.
    """
    if mark.ts is None:
        raise ValueError("decide_mark needs a timestamped mark")
    problem = instrument.price_problem(mark.price)
    if problem is not None:
        return Rejection(problem)
    if book.mark_ts is not None and mark.ts <= book.mark_ts:
        if mark.ts == book.mark_ts and mark.price == book.mark:
            return Duplicate("mark already applied")
        return Duplicate("stale mark: not newer than the last mark applied")
    updated: list[Trade] = []
    with exact():
        for trade_id in sorted(book.open_trades):
            trade = book.open_trades[trade_id]
            if trade.opened_at > mark.ts:
                continue
            slot = book.slots[trade.key]
            excursion = unrealized(slot, mark.price, instrument.multiplier, instrument.inverse)
            observed = trade.observe(mark.price, excursion)
            if observed is not trade:
                updated.append(observed)
    return MarkDecision(mark, mark.ts, updated)
