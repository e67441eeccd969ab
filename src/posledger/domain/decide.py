"""State + input -> decision: how a fill or a mark changes a book (docs/accounting.md).

Pure functions over immutable values. Nothing here reads a database or a clock (the
caller passes the time it received a mark); trade ids come from the caller's allocator so
that a replay can hand back the journaled ones.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import getcontext

from .attribution import attribute
from .book import Book
from .booking import Booking
from .decisions import Anomaly, Duplicate, FillDecision, Leg, MarkDecision, Rejection
from .enums import Kind, Side
from .inputs import Fill, Mark
from .numbers import PRECISION, ZERO, exact, fmt
from .positions import Trade, trade_out_of_range
from .refdata import Account, Instrument, InvalidInput, Order
from .timestamps import format_ts

__all__ = [
    "MARK_MAX_AHEAD_NS",
    "Anomaly",
    "Duplicate",
    "FillDecision",
    "Leg",
    "MarkDecision",
    "Rejection",
    "decide_fill",
    "decide_mark",
    "mark_problem",
]


MARK_MAX_AHEAD_NS = 300 * 1_000_000_000
"""How far ahead of the ledger's clock a mark's time may be (5 minutes): a mark dated
later is refused, because marks only move forward and one from the future would make
every later mark stale."""


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
    if base_commission and fill.commission >= fill.quantity:
        # Bought: nothing would be received. Sold: more would leave the account than was
        # sold, and a spot holding cannot go below what was there.
        what = "bought" if fill.side is Side.BUY else "sold"
        return Rejection(
            f"commission {fmt(fill.commission)} {currency} is not less than the quantity {what} "
            f"({fmt(fill.quantity)})"
        )
    work = Booking(
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
    if work.too_large is not None:
        return Rejection(work.too_large)
    trades = work.trades()
    return FillDecision(
        fill,
        who.strategy,
        who.position_side,
        who.intent,
        currency,
        tuple(work.legs),
        work.slots(),
        trades,
        tuple(work.anomalies),
        tuple(work.opened),
    )


def mark_problem(mark: Mark, instrument: Instrument, now: int | None) -> str | None:
    """Why a mark (its ``ts`` set) cannot be applied, or None: a price the instrument
    cannot have, or a time more than :data:`MARK_MAX_AHEAD_NS` after ``now``, when it was
    received."""
    assert mark.ts is not None
    for price in (mark.price, mark.high, mark.low):
        problem = None if price is None else instrument.price_problem(price)
        if problem is not None:
            return problem
    if now is not None and mark.ts > now + MARK_MAX_AHEAD_NS:
        return (
            f"mark time {format_ts(mark.ts)} is more than {MARK_MAX_AHEAD_NS // 10**9 // 60} "
            f"minutes ahead of the ledger's clock ({format_ts(now)}): marks only move "
            "forward, so one from the future would make every later mark stale"
        )
    return None


def decide_mark(
    mark: Mark, *, instrument: Instrument, book: Book, now: int | None = None
) -> MarkDecision | Duplicate | Rejection:
    """Fold a mark (its price, and its high and low when given) into the MAE/MFE of every
    trade open on the instrument.

    ``mark.ts`` must be set (the service stamps marks that arrive without one). Marks move
    forward in time: one not newer than the last applied mark changes nothing. ``now`` is
    when the mark was received: a mark dated more than :data:`MARK_MAX_AHEAD_NS` after it
    is refused.
    """
    if mark.ts is None:
        raise ValueError("decide_mark needs a timestamped mark")
    problem = mark_problem(mark, instrument, now)
    if problem is not None:
        return Rejection(problem)
    if book.mark_ts is not None and mark.ts <= book.mark_ts:
        if mark.ts == book.mark_ts and mark.price == book.mark:
            return Duplicate("mark already applied")
        return Duplicate("stale mark: not newer than the last mark applied")
    low = mark.price if mark.low is None else mark.low
    high = mark.price if mark.high is None else mark.high
    multiplier, inverse = instrument.multiplier, instrument.inverse
    updated: list[Trade] = []
    with exact():
        for trade_id in sorted(book.open_trades):
            trade = book.open_trades[trade_id]
            if trade.opened_at > mark.ts:
                continue
            observed = trade.observe(low, high, multiplier, inverse)
            if observed is not trade:
                problem = trade_out_of_range(observed)
                if problem is not None:
                    return Rejection(problem)
                updated.append(observed)
    return MarkDecision(mark, mark.ts, tuple(updated))
