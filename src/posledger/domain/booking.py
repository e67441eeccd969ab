"""Booking: how quantity moves into and out of slots, and what that does to their trades.

A :class:`Booking` books one input's quantity (a fill, a transfer, a reconciliation
adjustment) against a :class:`~.book.Book` without changing it: it keeps the slots and
trades the input has touched so far, and hands out the legs, anomalies, new slots and
trades (immutable values) that make up the decision.

The rules of docs/accounting.md live here: open, increase, reduce, close and flip; "an exit never
opens" and "a hedge slot never changes sign" (what does not fit goes to ``EXTERNAL`` with
an anomaly); commissions per currency; spot base-currency commissions that change the
quantity held; the trade's peak quantity, exits and return. How the realized P&L of a
reduction is matched to entries is a lot policy: average cost, FIFO or LIFO
(:data:`POLICIES`, a table keyed by the account's lot method).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import Enum
from types import MappingProxyType

from .book import Book
from .decisions import Anomaly, Leg
from .enums import (
    EXTERNAL,
    CloseReason,
    Direction,
    Intent,
    LotMethod,
    PositionSide,
    Role,
    Source,
)
from .numbers import MAX_INTEGER_DIGITS, ZERO, fmt, minus, q18
from .positions import (
    Lot,
    Slot,
    SlotKey,
    Trade,
    out_of_range,
    pnl,
    realized_return,
    weighted_average,
)
from .refdata import Account, Instrument

__all__ = ["POLICIES", "AverageCost", "Booking", "LotPolicy", "LotQueue", "Routing"]


class Routing(Enum):
    """Which movements a slot may take."""

    FREE = "free"
    """Open, increase, reduce, close and (netting) flip."""
    REDUCE_ONLY = "reduce_only"
    """Only reduce; what is left over is handed back to the caller."""


_EXIT_REASON = {
    Intent.EXIT: CloseReason.EXIT,
    Intent.TAKE_PROFIT: CloseReason.TAKE_PROFIT,
    Intent.STOP_LOSS: CloseReason.STOP_LOSS,
}


# -- lot policies ------------------------------------------------------------------------


class LotPolicy:
    """How a slot's entries are kept and how a reduction realizes P&L against them."""

    def opened(self, size: Decimal, price: Decimal) -> tuple[Lot, ...]:
        """The lots of a slot just opened with ``size`` at ``price``."""
        raise NotImplementedError

    def increased(
        self, slot: Slot, size: Decimal, price: Decimal, adjustment: bool
    ) -> tuple[Decimal, tuple[Lot, ...]]:
        """The slot's average entry and lots after adding ``size`` at ``price`` (an
        ``adjustment`` is quantity a base-currency commission adds: it costs nothing)."""
        raise NotImplementedError

    def trade_average(
        self,
        trade_avg: Decimal,
        trade_entered: Decimal,
        slot_avg: Decimal,
        price: Decimal,
        size: Decimal,
    ) -> Decimal:
        """The trade's average entry once ``size`` more entered at ``price`` (the trade
        has taken ``trade_entered`` at ``trade_avg`` so far; the slot's new average
        entry is ``slot_avg``)."""
        raise NotImplementedError

    def reduced(
        self,
        slot: Slot,
        size: Decimal,
        price: Decimal,
        adjustment: bool,
        instrument: Instrument,
    ) -> tuple[Decimal, Decimal, tuple[Lot, ...]]:
        """(gross realized P&L, average entry, lots) after taking ``size`` out at
        ``price``. An ``adjustment`` (a base-currency commission) realizes nothing."""
        raise NotImplementedError


class AverageCost(LotPolicy):
    """One average entry price per slot (docs/accounting.md#lot-methods)."""

    def opened(self, size: Decimal, price: Decimal) -> tuple[Lot, ...]:
        return ()

    def increased(
        self, slot: Slot, size: Decimal, price: Decimal, adjustment: bool
    ) -> tuple[Decimal, tuple[Lot, ...]]:
        avg = slot.avg_entry
        assert avg is not None
        if adjustment:  # a base-currency commission adjusts quantity only
            return avg, ()
        return weighted_average(avg, abs(slot.quantity), price, size), ()

    def trade_average(
        self,
        trade_avg: Decimal,
        trade_entered: Decimal,
        slot_avg: Decimal,
        price: Decimal,
        size: Decimal,
    ) -> Decimal:
        return slot_avg  # the trade's average entry is its slot's

    def reduced(
        self,
        slot: Slot,
        size: Decimal,
        price: Decimal,
        adjustment: bool,
        instrument: Instrument,
    ) -> tuple[Decimal, Decimal, tuple[Lot, ...]]:
        avg = slot.avg_entry
        assert avg is not None
        if adjustment:
            return ZERO, avg, ()
        sign = 1 if slot.quantity > 0 else -1
        return pnl(avg, price, size, sign, instrument.multiplier, instrument.inverse), avg, ()


def _lots_average(lots: tuple[Lot, ...]) -> Decimal:
    total = sum((lot.quantity for lot in lots), ZERO)
    return q18(sum((lot.quantity * lot.price for lot in lots), ZERO) / total)


class LotQueue(LotPolicy):
    """Entries kept as lots; a reduction takes the oldest (FIFO) or newest (LIFO) first.
    The slot's average entry is that of the lots still open."""

    def __init__(self, index: int) -> None:
        self.index = index
        """0 takes the oldest lot first, -1 the newest."""

    def opened(self, size: Decimal, price: Decimal) -> tuple[Lot, ...]:
        return (Lot(size, price),)

    def increased(
        self, slot: Slot, size: Decimal, price: Decimal, adjustment: bool
    ) -> tuple[Decimal, tuple[Lot, ...]]:
        # Base-currency commission quantity enters at the average.
        assert slot.avg_entry is not None
        lots = (*slot.lots, Lot(size, slot.avg_entry if adjustment else price))
        return _lots_average(lots), lots

    def trade_average(
        self,
        trade_avg: Decimal,
        trade_entered: Decimal,
        slot_avg: Decimal,
        price: Decimal,
        size: Decimal,
    ) -> Decimal:
        # Over everything that entered the trade (the slot's is over the open lots).
        return weighted_average(trade_avg, trade_entered, price, size)

    def reduced(
        self,
        slot: Slot,
        size: Decimal,
        price: Decimal,
        adjustment: bool,
        instrument: Instrument,
    ) -> tuple[Decimal, Decimal, tuple[Lot, ...]]:
        sign = 1 if slot.quantity > 0 else -1
        remaining = list(slot.lots)
        realized = ZERO
        left = size
        index = self.index
        while left:
            lot = remaining[index]
            take = min(lot.quantity, left)
            if not adjustment:
                realized += pnl(
                    lot.price, price, take, sign, instrument.multiplier, instrument.inverse
                )
            if take == lot.quantity:
                remaining.pop(index)
            else:
                remaining[index] = Lot(lot.quantity - take, lot.price)
            left -= take
        lots = tuple(remaining)
        assert slot.avg_entry is not None
        return realized, _lots_average(lots) if lots else slot.avg_entry, lots


POLICIES: Mapping[LotMethod, LotPolicy] = MappingProxyType(
    {
        LotMethod.AVERAGE: AverageCost(),
        LotMethod.FIFO: LotQueue(0),
        LotMethod.LIFO: LotQueue(-1),
    }
)
"""The lot policy of each lot method."""


# -- trades being changed ----------------------------------------------------------------


def _changed(
    trade: Trade,
    quantity: Decimal,
    peak: Decimal,
    avg_entry: Decimal,
    entry_quantity: Decimal,
    avg_exit: Decimal | None,
    exit_quantity: Decimal,
    gross_realized: Decimal,
    commissions: Mapping[str, Decimal],
    realized_return: Decimal | None,
    closed_at: int | None,
    close_reason: CloseReason | None,
) -> Trade:
    """``trade`` with what a booking step changes (all of it, positionally: this runs for
    every fill)."""
    return Trade(
        trade.trade_id,
        trade.key,
        trade.direction,
        trade.opened_at,
        trade.pnl_currency,
        quantity,
        peak,
        avg_entry,
        entry_quantity,
        avg_exit,
        exit_quantity,
        gross_realized,
        commissions,
        realized_return,
        closed_at,
        close_reason,
        trade.mae,
        trade.mfe,
        trade.mae_price,
        trade.mfe_price,
    )


_LIMIT = Decimal(10) ** MAX_INTEGER_DIGITS


# -- the booking -------------------------------------------------------------------------


class Booking:
    """Books one input's quantity against a book; the book itself is never changed.

    ``price`` is the price of what is booked next and ``reason``/``source`` say what moves
    it (a transfer or a reconciliation set them between moves). ``label`` is how messages
    name what is booked (a fill's exec_id).
    """

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
        self.ts = ts
        self.label = label
        self.liquidation = liquidation
        self.reason: CloseReason | None = None
        """Close reason of every trade closed from here on, whatever the intent."""
        self.source = Source.FILL
        self.hedge = account.hedge
        self.policy = POLICIES[account.lot_method]
        self._slots: dict[SlotKey, Slot] = {}
        self._trades: dict[int, Trade] = {}
        self._peaks: dict[int, Decimal] = {}
        """Each touched trade's peak before this booking (zero for one it opened)."""
        self.legs: list[Leg] = []
        self.anomalies: list[Anomaly] = []
        self.opened: list[int] = []
        self.too_large: str | None = None
        """Why an amount this booking computed cannot be stored (see :meth:`_check`)."""

    # -- results --------------------------------------------------------------------

    def peek(self, key: SlotKey) -> Slot | None:
        """The slot as this booking has left it so far."""
        slot = self._slots.get(key)
        return self.book.slots.get(key) if slot is None else slot

    def slots(self) -> tuple[Slot, ...]:
        """Every slot this booking changed, in the order first changed."""
        return tuple(self._slots.values())

    def trades(self) -> tuple[Trade, ...]:
        """Every trade this booking changed, in the order first changed.

        A trade's peak is what it held after the whole booking (a spot fill's
        base-currency commission is taken before the peak is read). A trade opened and
        closed by one booking (EXTERNAL quantity a reconciliation books and hands on to a
        strategy in the same check) keeps what it opened with."""
        return tuple(self._trades.values())

    def _check(self, value: Decimal, what: str, trade_id: int) -> None:
        """Note ``value`` (the ``what`` of a trade) if it has more integer digits than the
        ledger stores: inputs are checked when they are read, but their sums and products
        (a quantity entered, a realized P&L, a return) can outgrow what the inputs fit in."""
        if (value >= _LIMIT or value <= -_LIMIT) and self.too_large is None:
            self.too_large = out_of_range(f"the {what} of trade {trade_id}", value)

    # -- routing: who may take which part -------------------------------------------

    def routing(self, key: SlotKey, delta: Decimal) -> Routing:
        """What ``key``'s slot may do with ``delta``: an exit never opens; a hedge slot
        never changes sign; EXTERNAL takes anything."""
        if key.strategy == EXTERNAL:
            return Routing.FREE
        if self.intent is not None and self.intent is not Intent.ENTRY:
            return Routing.REDUCE_ONLY
        if self.hedge and (key.position_side is PositionSide.LONG) == (delta < 0):
            return Routing.REDUCE_ONLY
        return Routing.FREE

    def route(self, key: SlotKey, delta: Decimal, commission: Decimal, adjustment: bool) -> None:
        """Book ``delta`` to ``key``'s slot as far as it may take it; the rest to EXTERNAL,
        with an anomaly."""
        excess, excess_commission = self.move(
            key, delta, commission, self.routing(key, delta), adjustment
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
        self.move(external, excess, excess_commission, Routing.FREE, adjustment)

    def check_external_sides(self) -> None:
        """On a hedge account, EXTERNAL's LONG slot short (or SHORT slot long) means the
        ledger is missing fills: the broker cannot hold that."""
        if not self.hedge:
            return
        for key, slot in self._slots.items():
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
        routing: Routing,
        adjustment: bool,
        flip: bool = False,
    ) -> tuple[Decimal, Decimal]:
        """Book ``delta`` to a slot; return what it could not take and its commission share."""
        current = self.peek(key)
        held = ZERO if current is None else current.quantity
        if not held or (held > 0) == (delta > 0):
            if routing is Routing.REDUCE_ONLY:
                return delta, commission
            if current is not None and held:
                self._increase(current, delta, commission, adjustment)
            else:
                self._open(key, delta, commission, adjustment, flip)
            return ZERO, ZERO
        assert current is not None
        size = abs(delta)
        closed = min(size, abs(held))
        rest = size - closed
        share = commission if not rest else q18(commission * closed / size)
        crossing = bool(rest) and routing is Routing.FREE
        sign = 1 if delta > 0 else -1
        self._reduce(current, sign * closed, share, adjustment, crossing)
        if not rest:
            return ZERO, ZERO
        remaining = commission - share
        if routing is Routing.REDUCE_ONLY:
            return sign * rest, remaining
        return self.move(key, sign * rest, remaining, routing, adjustment, flip=True)

    def _trade(self, trade_id: int | None) -> Trade:
        """The trade as this booking has left it so far."""
        assert trade_id is not None
        trade = self._trades.get(trade_id)
        if trade is None:
            trade = self.book.open_trades[trade_id]
            self._peaks[trade_id] = trade.peak_quantity
        return trade

    def _observed(self, trade: Trade) -> Trade:
        """``trade`` with the price it is booked at seen for its MAE/MFE, valued at its
        peak and average as this step leaves them (docs/accounting.md)."""
        instrument = self.instrument
        price = self.price
        seen = trade.observe(price, price, instrument.multiplier, instrument.inverse)
        if seen.mae is not None and seen.mfe is not None:
            self._check(seen.mae, "MAE", trade.trade_id)
            self._check(seen.mfe, "MFE", trade.trade_id)
        return seen

    def _commissions(self, trade: Trade, amount: Decimal) -> Mapping[str, Decimal]:
        totals = dict(trade.commissions)
        total = totals[self.currency] = totals.get(self.currency, ZERO) + amount
        self._check(total, "commissions", trade.trade_id)
        return MappingProxyType(totals)

    def _leg(
        self,
        key: SlotKey,
        trade_id: int,
        role: Role,
        delta: Decimal,
        commission: Decimal,
        realized: Decimal,
        adjustment: bool,
    ) -> None:
        self.legs.append(
            Leg(
                key,
                trade_id,
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
        )

    def _open(
        self, key: SlotKey, delta: Decimal, commission: Decimal, adjustment: bool, flip: bool
    ) -> None:
        price = self.price
        size = abs(delta)
        trade_id = self.new_trade_id()
        self.opened.append(trade_id)
        self._peaks[trade_id] = ZERO
        self._trades[trade_id] = self._observed(
            Trade(
                trade_id,
                key,
                Direction.LONG if delta > 0 else Direction.SHORT,
                self.ts,
                self.instrument.settlement_currency,
                size,
                size,
                price,
                size,
                commissions=MappingProxyType({self.currency: commission}),
            )
        )
        self._slots[key] = Slot(key, delta, price, self.policy.opened(size, price), trade_id, price)
        self._leg(
            key, trade_id, Role.FLIP if flip else Role.OPEN, delta, commission, ZERO, adjustment
        )

    def _increase(self, slot: Slot, delta: Decimal, commission: Decimal, adjustment: bool) -> None:
        price = self.price
        size = abs(delta)
        trade = self._trade(slot.trade_id)
        avg, lots = self.policy.increased(slot, size, price, adjustment)
        avg_entry, entered = trade.avg_entry, trade.entry_quantity
        if not adjustment:
            avg_entry = self.policy.trade_average(avg_entry, entered, avg, price, size)
            entered += size
        quantity = trade.quantity + size
        self._check(entered, "quantity", trade.trade_id)
        self._trades[trade.trade_id] = self._observed(
            _changed(
                trade,
                quantity,
                max(self._peaks[trade.trade_id], quantity),
                avg_entry,
                entered,
                trade.avg_exit,
                trade.exit_quantity,
                trade.gross_realized,
                self._commissions(trade, commission),
                trade.realized_return,
                trade.closed_at,
                trade.close_reason,
            )
        )
        key = slot.key
        self._slots[key] = Slot(key, slot.quantity + delta, avg, lots, slot.trade_id, price)
        self._leg(key, trade.trade_id, Role.INCREASE, delta, commission, ZERO, adjustment)

    def _reduce(
        self, slot: Slot, delta: Decimal, commission: Decimal, adjustment: bool, crossing: bool
    ) -> None:
        price = self.price
        size = abs(delta)
        sign = 1 if slot.quantity > 0 else -1
        trade = self._trade(slot.trade_id)
        realized, avg, lots = self.policy.reduced(slot, size, price, adjustment, self.instrument)
        quantity = slot.quantity + delta
        gross = trade.gross_realized + realized
        self._check(gross, "gross realized P&L", trade.trade_id)
        avg_exit, exits, returned = trade.avg_exit, trade.exit_quantity, trade.realized_return
        if not adjustment:
            avg_exit = price if avg_exit is None else weighted_average(avg_exit, exits, price, size)
            exits += size
            returned = realized_return(trade.avg_entry, avg_exit, sign)
            if returned is not None:
                self._check(returned, "return", trade.trade_id)
        closed_at, reason = trade.closed_at, trade.close_reason
        remaining = trade.quantity - size
        peak = max(self._peaks[trade.trade_id], remaining)
        if quantity:
            role = Role.REDUCE
        else:
            role = Role.FLIP if crossing else Role.CLOSE
            # A trade never closes before it opened (docs/accounting.md).
            closed_at = max(self.ts, trade.opened_at)
            reason = self._close_reason(crossing)
            if not self._peaks[trade.trade_id]:
                peak = trade.peak_quantity  # opened and closed here: keeps what it opened with
        commissions = self._commissions(trade, commission)
        self._trades[trade.trade_id] = self._observed(
            _changed(
                trade,
                remaining,
                peak,
                trade.avg_entry,
                trade.entry_quantity,
                avg_exit,
                exits,
                gross,
                commissions,
                returned,
                closed_at,
                reason,
            )
        )
        self._check(
            minus(gross, commissions.get(trade.pnl_currency, ZERO)), "realized P&L", trade.trade_id
        )
        key = slot.key
        self._slots[key] = Slot(key, quantity, avg, lots, slot.trade_id, price)
        self._leg(key, trade.trade_id, role, delta, commission, realized, adjustment)

    def _close_reason(self, crossing: bool) -> CloseReason:
        if self.reason is not None:
            return self.reason
        if self.liquidation:
            return CloseReason.LIQUIDATION
        if crossing:
            return CloseReason.FLIP
        intent = self.intent
        return CloseReason.EXIT if intent is None else _EXIT_REASON.get(intent, CloseReason.EXIT)
