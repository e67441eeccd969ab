"""A book: every slot and open trade of one instrument, across accounts and strategies.

The book is the state a fill or a mark is decided against. It is the in-memory image of
one journal stream; :func:`~.decide.decide_fill` and :func:`~.decide.decide_mark` read it
and return decisions, which :meth:`Book.apply` folds back in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from .enums import PositionSide
from .events import FillDecision, MarkDecision, ReconcileDecision, TransferDecision
from .positions import Slot, SlotKey, Trade

__all__ = ["Book", "HaltState"]


@dataclass(frozen=True, slots=True)
class HaltState:
    """Why and since when an instrument is halted on an account."""

    ts: int
    reason: str


@dataclass(slots=True)
class Book:
    instrument: str
    slots: dict[SlotKey, Slot] = field(default_factory=dict)
    open_trades: dict[int, Trade] = field(default_factory=dict)
    mark: Decimal | None = None
    mark_ts: int | None = None
    halts: dict[str, HaltState] = field(default_factory=dict)
    """Accounts on which this instrument is halted: entry orders are refused there."""

    keys: dict[tuple[str, str, PositionSide], SlotKey] = field(default_factory=dict)

    def key(self, account: str, strategy: str, side: PositionSide) -> SlotKey:
        """The slot key of this book's instrument (interned: deciding a fill stays cheap)."""
        found = self.keys.get((account, strategy, side))
        if found is None:
            found = self.keys[(account, strategy, side)] = SlotKey(
                account, self.instrument, strategy, side
            )
        return found

    def slot(self, key: SlotKey) -> Slot:
        found = self.slots.get(key)
        return found if found is not None else Slot(key)

    def apply(
        self, decision: FillDecision | MarkDecision | TransferDecision | ReconcileDecision
    ) -> None:
        """Fold a decision made against this book into it."""
        if isinstance(decision, MarkDecision):
            self.mark = decision.mark.price
            self.mark_ts = decision.ts
        else:
            for slot in decision.slots:
                self.slots[slot.key] = slot
        open_trades = self.open_trades
        for trade in decision.trades:
            if trade.closed_at is None:
                open_trades[trade.trade_id] = trade
            else:
                open_trades.pop(trade.trade_id, None)
