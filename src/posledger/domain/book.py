"""A book: every slot and open trade of one instrument, across accounts and strategies.

The book is the state a fill or a mark is decided against. It is the in-memory image of
one journal stream; :func:`~.decide.decide_fill` and :func:`~.decide.decide_mark` read it
and return decisions, which :meth:`Book.apply` folds back in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from .positions import Slot, SlotKey, Trade

if TYPE_CHECKING:
    from .decide import FillDecision, MarkDecision

__all__ = ["Book"]


@dataclass(slots=True)
class Book:
    instrument: str
    slots: dict[SlotKey, Slot] = field(default_factory=dict)
    open_trades: dict[int, Trade] = field(default_factory=dict)
    mark: Decimal | None = None
    mark_ts: int | None = None

    def slot(self, key: SlotKey) -> Slot:
        found = self.slots.get(key)
        return found if found is not None else Slot(key)

    def apply(self, decision: FillDecision | MarkDecision) -> None:
        from .decide import FillDecision

        if isinstance(decision, FillDecision):
            for slot in decision.slots:
                self.slots[slot.key] = slot
        else:
            self.mark = decision.mark.price
            self.mark_ts = decision.ts
        for trade in decision.trades:
            if trade.is_open:
                self.open_trades[trade.trade_id] = trade
            else:
                self.open_trades.pop(trade.trade_id, None)
