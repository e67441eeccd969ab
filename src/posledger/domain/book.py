"""A book: every slot and open trade of one instrument, across accounts and strategies.

The book is the state an input on one instrument is decided against: the in-memory image
of one journal stream at one version. Deciding never changes it; the unit of work swaps
in the slots, trades, mark and halts a committed write set carries (:meth:`Book.put_slot`
and friends), and pure code folds a whole decision in with :meth:`Book.apply`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from .decisions import Decision, MarkDecision
from .enums import PositionSide
from .exits import Bracket, ExitOrder
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
    version: int = 0
    """The version of the instrument's journal stream this book is the image of."""
    keys: dict[tuple[str, str, PositionSide], SlotKey] = field(default_factory=dict)
    brackets: dict[SlotKey, Bracket] = field(default_factory=dict)
    """The bracket of each slot that has one (docs/brackets.md)."""
    exits: dict[str, ExitOrder] = field(default_factory=dict)
    """Exit orders watched on this instrument, by client order id, oldest first."""

    def key(self, account: str, strategy: str, side: PositionSide) -> SlotKey:
        """The slot key of this book's instrument (one object per key)."""
        found = self.keys.get((account, strategy, side))
        if found is None:
            found = self.keys[(account, strategy, side)] = SlotKey(
                account, self.instrument, strategy, side
            )
        return found

    def slot(self, key: SlotKey) -> Slot:
        found = self.slots.get(key)
        return found if found is not None else Slot(key)

    def put_slot(self, slot: Slot) -> None:
        self.slots[slot.key] = slot

    def put_trade(self, trade: Trade) -> None:
        """Keep an open trade; forget a closed one."""
        if trade.closed_at is None:
            self.open_trades[trade.trade_id] = trade
        else:
            self.open_trades.pop(trade.trade_id, None)

    def set_mark(self, price: Decimal, ts: int) -> None:
        self.mark = price
        self.mark_ts = ts

    def set_halt(self, account: str, halt: HaltState | None) -> None:
        if halt is None:
            self.halts.pop(account, None)
        else:
            self.halts[account] = halt

    def put_exit(self, client_order_id: str, found: ExitOrder | None) -> None:
        if found is None:
            self.exits.pop(client_order_id, None)
        else:
            self.exits[client_order_id] = found

    def put_bracket(self, key: SlotKey, bracket: Bracket | None) -> None:
        if bracket is None:
            self.brackets.pop(key, None)
        else:
            self.brackets[key] = bracket

    def apply(self, decision: Decision) -> None:
        """Fold a decision made against this book into it."""
        if isinstance(decision, MarkDecision):
            self.set_mark(decision.mark.price, decision.ts)
        else:
            for slot in decision.slots:
                self.put_slot(slot)
        for trade in decision.trades:
            self.put_trade(trade)
