"""Slots and trades: the state a fill changes, and the arithmetic of docs/accounting.md.

A *slot* is one strategy's position in one instrument on one account and one position
side. A *trade* is one round trip of a slot, from flat to flat. Both are immutable values:
deciding an input builds new ones (:mod:`.booking`), and a book swaps them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import NamedTuple

from .enums import CloseReason, Direction, PositionSide
from .numbers import MAX_INTEGER_DIGITS, ZERO, fmt, minus, q18

__all__ = [
    "NO_COMMISSIONS",
    "Lot",
    "Slot",
    "SlotKey",
    "Trade",
    "commissions",
    "out_of_range",
    "pnl",
    "realized_return",
    "trade_out_of_range",
    "unrealized",
    "weighted_average",
]


class SlotKey(NamedTuple):
    account: str
    instrument: str
    strategy: str
    position_side: PositionSide


class Lot(NamedTuple):
    """An open entry under the FIFO/LIFO lot methods: unsigned quantity at a price."""

    quantity: Decimal
    price: Decimal


NO_COMMISSIONS: Mapping[str, Decimal] = MappingProxyType({})


def commissions(amounts: Mapping[str, Decimal]) -> Mapping[str, Decimal]:
    """A read-only copy of per-currency commission totals (the form a :class:`Trade` holds)."""
    return MappingProxyType(dict(amounts))


class Slot(NamedTuple):
    """One strategy's position."""

    key: SlotKey
    quantity: Decimal = ZERO
    """Signed: positive long, negative short."""
    avg_entry: Decimal | None = None
    """Average entry price of what is held; kept from the last trade when flat."""
    lots: tuple[Lot, ...] = ()
    """Open lots, oldest first (FIFO/LIFO accounts only)."""
    trade_id: int | None = None
    """The open trade, or the last one when flat."""
    last_price: Decimal | None = None
    """Price of the last fill applied to the slot."""

    @property
    def direction(self) -> Direction:
        if self.quantity > 0:
            return Direction.LONG
        if self.quantity < 0:
            return Direction.SHORT
        return Direction.FLAT


class Trade(NamedTuple):
    """One round trip of a slot."""

    trade_id: int
    key: SlotKey
    direction: Direction
    opened_at: int
    pnl_currency: str
    quantity: Decimal
    """Still open, unsigned."""
    peak_quantity: Decimal
    avg_entry: Decimal
    entry_quantity: Decimal
    """Total quantity that opened or increased the trade."""
    avg_exit: Decimal | None = None
    exit_quantity: Decimal = ZERO
    gross_realized: Decimal = ZERO
    commissions: Mapping[str, Decimal] = NO_COMMISSIONS
    """Total per currency (read-only)."""
    realized_return: Decimal | None = None
    closed_at: int | None = None
    close_reason: CloseReason | None = None
    mae: Decimal | None = None
    mfe: Decimal | None = None
    mae_price: Decimal | None = None
    mfe_price: Decimal | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def sign(self) -> int:
        return 1 if self.direction is Direction.LONG else -1

    @property
    def settlement_commission(self) -> Decimal:
        return self.commissions.get(self.pnl_currency, ZERO)

    @property
    def realized_pnl(self) -> Decimal:
        """Net of the commissions charged in the P&L currency."""
        return minus(self.gross_realized, self.commissions.get(self.pnl_currency, ZERO))

    @property
    def duration_ns(self) -> int | None:
        return None if self.closed_at is None else self.closed_at - self.opened_at

    def observe(self, low: Decimal, high: Decimal, multiplier: Decimal, inverse: bool) -> Trade:
        """Fold prices seen while the trade is open into its MAE/MFE (docs/accounting.md).

        ``low`` to ``high`` is what was seen: a price it was booked at (then both are that
        price), or the range of the marks since the last one persisted. The worst and best
        prices seen are kept; MAE and MFE in money are what the trade's peak quantity,
        entered at its average entry, would make at them (at most zero and at least zero).
        They are valued again on every call, so a fill that changes the peak or the
        average changes them too. Returns ``self`` when nothing changes."""
        long = self.direction is Direction.LONG
        worst, best = (low, high) if long else (high, low)
        mae_price, mfe_price = self.mae_price, self.mfe_price
        if mae_price is None or (worst < mae_price if long else worst > mae_price):
            mae_price = worst
        if mfe_price is None or (best > mfe_price if long else best < mfe_price):
            mfe_price = best
        sign = 1 if long else -1
        entry, peak = self.avg_entry, self.peak_quantity
        mae = min(pnl(entry, mae_price, peak, sign, multiplier, inverse), ZERO)
        mfe = max(pnl(entry, mfe_price, peak, sign, multiplier, inverse), ZERO)
        if (
            mae == self.mae
            and mfe == self.mfe
            and mae_price == self.mae_price
            and mfe_price == self.mfe_price
        ):
            return self
        return self._replace(mae=mae, mfe=mfe, mae_price=mae_price, mfe_price=mfe_price)


def weighted_average(avg: Decimal, quantity: Decimal, price: Decimal, added: Decimal) -> Decimal:
    """``(avg*quantity + price*added) / (quantity + added)``, quantized (quantities unsigned)."""
    if not quantity:
        return price
    return q18((avg * quantity + price * added) / (quantity + added))


def pnl(
    entry: Decimal,
    exit_price: Decimal,
    quantity: Decimal,
    sign: int,
    multiplier: Decimal,
    inverse: bool,
) -> Decimal:
    """P&L of ``quantity`` (unsigned) entered at ``entry`` and valued at ``exit_price``.

    Linear: ``(exit - entry) * q * m * sign``, in the quote/settlement currency.
    Inverse: ``(1/entry - 1/exit) * q * m * sign``, in the base currency.
    """
    if inverse:
        return q18(quantity * multiplier * sign * (exit_price - entry) / (entry * exit_price))
    return q18((exit_price - entry) * quantity * multiplier * sign)


def unrealized(slot: Slot, mark: Decimal, multiplier: Decimal, inverse: bool) -> Decimal:
    if not slot.quantity or slot.avg_entry is None:
        return ZERO
    sign = 1 if slot.quantity > 0 else -1
    return pnl(slot.avg_entry, mark, abs(slot.quantity), sign, multiplier, inverse)


def realized_return(entry: Decimal, exit_price: Decimal, sign: int) -> Decimal | None:
    """``(exit - entry) / entry``, sign-adjusted for shorts; None when entry is zero."""
    if not entry:
        return None
    return q18((exit_price - entry) * sign / entry)


_STORED_LIMIT = Decimal(10) ** MAX_INTEGER_DIGITS


def out_of_range(what: str, value: Decimal | None) -> str | None:
    """Why ``value`` cannot be stored (more integer digits than the ledger keeps), or None.

    Inputs are checked when they are read; this catches what their arithmetic gives (a
    realized P&L, an average, a total) when the inputs fit but the result does not."""
    if value is None or abs(value) < _STORED_LIMIT:
        return None
    return (
        f"{what} would be {fmt(value)}, more than the {MAX_INTEGER_DIGITS} integer digits "
        "the ledger stores"
    )


def trade_out_of_range(trade: Trade) -> str | None:
    """The first amount of ``trade`` that cannot be stored, named, or None.

    Averages and the peak lie between amounts that were checked; what can grow past the
    limit is a sum (quantities entered and exited, P&L, commissions), a return, MAE/MFE."""
    high, low = _STORED_LIMIT, -_STORED_LIMIT
    realized = trade.realized_pnl
    if (
        trade.entry_quantity < high
        and trade.exit_quantity < high
        and low < trade.gross_realized < high
        and low < realized < high
        and (trade.realized_return is None or low < trade.realized_return < high)
        and (trade.mae is None or low < trade.mae)
        and (trade.mfe is None or trade.mfe < high)
        and all(low < amount < high for amount in trade.commissions.values())
    ):
        return None
    for what, value in (
        ("entry quantity", trade.entry_quantity),
        ("exit quantity", trade.exit_quantity),
        ("gross realized P&L", trade.gross_realized),
        ("realized P&L", realized),
        ("return", trade.realized_return),
        ("MAE", trade.mae),
        ("MFE", trade.mfe),
        *((f"{currency} commissions", amount) for currency, amount in trade.commissions.items()),
    ):
        problem = out_of_range(f"the {what} of trade {trade.trade_id}", value)
        if problem is not None:
            return problem
    return None
