"""Decisions: what deciding one input against a book concluded (immutable values).

A decision says what an input does (the legs it books, the slots and trades it leaves,
the anomalies it raises) or why it does nothing (:class:`Rejection`, :class:`Duplicate`).
The service turns a decision into a write set (journal entry, projection changes, outbox
commands); nothing here knows how it is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from .enums import CheckKind, Intent, PositionSide, Role, Source
from .inputs import Fill, Mark, Reconcile, Transfer
from .positions import Slot, SlotKey, Trade

__all__ = [
    "Anomaly",
    "Check",
    "Decision",
    "Duplicate",
    "FillDecision",
    "Leg",
    "MarkDecision",
    "Orphan",
    "ReconcileDecision",
    "Rejection",
    "TransferDecision",
]


@dataclass(frozen=True, slots=True)
class Rejection:
    """The input is refused whole; ``reason`` says why."""

    reason: str


@dataclass(frozen=True, slots=True)
class Duplicate:
    """The input was already applied (or is superseded); applying it changes nothing."""

    reason: str


class Leg(NamedTuple):
    """One slot's share of a fill."""

    key: SlotKey
    trade_id: int
    role: Role
    quantity: Decimal
    """Unsigned quantity of this leg."""
    delta: Decimal
    """Signed change of the slot's quantity."""
    price: Decimal
    commission: Decimal
    commission_currency: str
    realized: Decimal
    """Gross realized P&L of this leg."""
    adjustment: bool = False
    """True for the quantity a spot fill's base-currency commission takes away."""
    source: Source = Source.FILL
    """A broker fill, a transfer between strategies, or a reconciliation adjustment."""


class Anomaly(NamedTuple):
    kind: str
    key: SlotKey
    """The slot whose fill caused it."""
    quantity: Decimal
    detail: str


class FillDecision(NamedTuple):
    fill: Fill
    strategy: str
    position_side: PositionSide
    intent: Intent | None
    commission_currency: str
    legs: tuple[Leg, ...]
    slots: tuple[Slot, ...]
    """New state of every slot the fill touched."""
    trades: tuple[Trade, ...]
    """New state of every trade the fill touched, in the order they were touched."""
    anomalies: tuple[Anomaly, ...]
    opened: tuple[int, ...]
    """Ids of the trades this fill opened, in allocation order."""


class MarkDecision(NamedTuple):
    mark: Mark
    ts: int
    trades: tuple[Trade, ...]
    """Open trades whose MAE/MFE changed, by trade id."""


class TransferDecision(NamedTuple):
    transfer: Transfer
    """The transfer as applied: its ``ts`` is set."""
    position_side: PositionSide
    price: Decimal
    legs: tuple[Leg, ...]
    slots: tuple[Slot, ...]
    trades: tuple[Trade, ...]
    opened: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Check:
    """How the ledger compares with the broker on one (account, instrument, position side)."""

    kind: CheckKind
    ledger_quantity: Decimal
    """Sum of every strategy's slot, EXTERNAL included, before any adjustment."""
    broker_quantity: Decimal
    ledger_avg_price: Decimal | None
    """Average entry of the slots, when they all point the way the sum does."""
    broker_avg_price: Decimal | None
    holders: tuple[tuple[str, Decimal], ...]
    """(strategy, signed quantity) of every non-flat slot, by strategy."""
    action: str
    """``none``, ``adopted`` (booked to EXTERNAL) or ``halted``."""
    detail: str

    @property
    def agrees(self) -> bool:
        return self.kind is CheckKind.AGREE


@dataclass(frozen=True, slots=True)
class Orphan:
    """EXTERNAL quantity a reconciliation under the adopt policy found on a key that agrees
    with the broker, and who (if anyone) took it under their ``adopt_orphans`` policy."""

    quantity: Decimal
    strategy: str | None
    price: Decimal | None
    detail: str


class ReconcileDecision(NamedTuple):
    reconcile: Reconcile
    check: Check
    adjustment: Decimal | None
    """Signed quantity booked to EXTERNAL under the adopt policy."""
    adjustment_price: Decimal | None
    orphan: Orphan | None
    halt: bool
    """True when this check halts the instrument on the account (it was not halted)."""
    legs: tuple[Leg, ...]
    slots: tuple[Slot, ...]
    trades: tuple[Trade, ...]
    opened: tuple[int, ...]


Decision = FillDecision | MarkDecision | TransferDecision | ReconcileDecision
"""A decision that changes a book."""
