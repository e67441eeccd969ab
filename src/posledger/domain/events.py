"""What was decided: the values a decision hands to the store and the journal."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from .enums import Intent, PositionSide, Role
from .inputs import Fill, Mark
from .positions import Slot, SlotKey, Trade

__all__ = ["Anomaly", "Duplicate", "FillDecision", "Leg", "MarkDecision", "Rejection"]


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


class Anomaly(NamedTuple):
    kind: str
    key: SlotKey
    """The slot whose fill caused it."""
    quantity: Decimal
    detail: str


@dataclass(slots=True)
class FillDecision:
    fill: Fill
    strategy: str
    position_side: PositionSide
    intent: Intent | None
    commission_currency: str
    legs: list[Leg]
    slots: list[Slot]
    """New state of every slot the fill touched."""
    trades: list[Trade]
    """New state of every trade the fill touched, in the order they were touched."""
    anomalies: list[Anomaly]
    opened: list[int]
    """Ids of the trades this fill opened, in allocation order."""


@dataclass(slots=True)
class MarkDecision:
    mark: Mark
    ts: int
    trades: list[Trade]
    """Open trades whose MAE/MFE changed, by trade id."""
