"""Exit orders the ledger watches, and brackets: the values (docs/brackets.md).

:mod:`.brackets` holds the rules that change them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

from .enums import Direction, ExitState, Intent, Side
from .numbers import ZERO
from .positions import SlotKey
from .refdata import BracketSpec, Order, OrderSpec

__all__ = ["ACTIVE", "Bracket", "ExitOrder", "command_id", "exit_side", "waiting_id"]

LEG_INTENTS = (Intent.TAKE_PROFIT, Intent.STOP_LOSS)
ACTIVE = frozenset({ExitState.PLACING, ExitState.LIVE, ExitState.WAITING})
"""States in which an exit order protects its slot (or is about to)."""


def command_id(instrument: str, version: int, number: int) -> str:
    """The id of the ``number``-th command issued by the entry that makes ``instrument``'s
    stream ``version``."""
    digest = hashlib.sha256(f"{instrument}\n{version}".encode()).hexdigest()
    return f"pl-{digest[:20]}-{number:03d}"


def waiting_id(bracket_id: str, intent: Intent) -> str:
    """A stand-in id of a leg waiting to be placed (it gets its command's id then)."""
    return "wt-" + hashlib.sha256(f"{bracket_id}\n{intent}".encode()).hexdigest()[:24]


def exit_side(direction: Direction) -> Side:
    """The side of an order that reduces a position pointing ``direction``."""
    return Side.SELL if direction is Direction.LONG else Side.BUY


@dataclass(frozen=True, slots=True)
class Bracket:
    """The bracket of one slot."""

    bracket_id: str
    key: SlotKey
    spec: BracketSpec
    direction: Direction
    """The way the slot pointed when the bracket was set: it ends when the slot no longer
    does (flat or flipped)."""
    failed: tuple[Intent, ...] = ()
    """Legs the broker refused to place: not placed again until the bracket is set again."""

    def legs(self) -> list[tuple[Intent, OrderSpec]]:
        out = []
        if self.spec.take_profit is not None and Intent.TAKE_PROFIT not in self.failed:
            out.append((Intent.TAKE_PROFIT, self.spec.take_profit))
        if self.spec.stop_loss is not None and Intent.STOP_LOSS not in self.failed:
            out.append((Intent.STOP_LOSS, self.spec.stop_loss))
        return out


@dataclass(frozen=True, slots=True)
class ExitOrder:
    """An exit order the ledger watches: a bracket leg, or a strategy's own exit order."""

    client_order_id: str
    key: SlotKey
    intent: Intent
    side: Side
    quantity: Decimal
    """Total quantity of the order, as last asked of the broker."""
    state: ExitState
    filled: Decimal = ZERO
    spec: OrderSpec | None = None
    """How a leg executes (None for a strategy's own order)."""
    bracket_id: str | None = None
    """The bracket a leg belongs to (None for a strategy's own order)."""
    confirmed: Decimal = ZERO
    """Total quantity the broker last confirmed: a refused amend goes back to it."""
    armed: bool = True
    """False for a strategy's own exit sent in its bracket before the entry filled: it is
    looked at once its slot holds a position it reduces."""

    @property
    def leg(self) -> bool:
        return self.spec is not None

    def resized(self, quantity: Decimal) -> ExitOrder:
        """This order with a new total quantity (what an amend asks for)."""
        return ExitOrder(
            self.client_order_id,
            self.key,
            self.intent,
            self.side,
            quantity,
            self.state,
            self.filled,
            self.spec,
            self.bracket_id,
            self.confirmed,
            self.armed,
        )

    def in_state(self, state: ExitState) -> ExitOrder:
        """This order in another state."""
        return ExitOrder(
            self.client_order_id,
            self.key,
            self.intent,
            self.side,
            self.quantity,
            state,
            self.filled,
            self.spec,
            self.bracket_id,
            self.confirmed,
            self.armed,
        )

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled

    def order(self, status_quantity: Decimal | None = None) -> Order:
        """The registered order of a leg."""
        key = self.key
        return Order(
            self.client_order_id,
            key.account,
            key.strategy,
            key.instrument,
            self.side,
            self.quantity if status_quantity is None else status_quantity,
            self.intent,
            key.position_side,
            self.bracket_id,
        )
