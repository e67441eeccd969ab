"""The closed vocabularies of the ledger (DESIGN §2)."""

from __future__ import annotations

from enum import StrEnum

EXTERNAL = "EXTERNAL"
"""The strategy that owns fills nobody can be shown to own."""


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class PositionSide(StrEnum):
    BOTH = "BOTH"
    LONG = "LONG"
    SHORT = "SHORT"


class Direction(StrEnum):
    """Which way a slot or a trade points."""

    LONG = "LONG"
    SHORT = "SHORT"
    FLAT = "FLAT"


class Intent(StrEnum):
    ENTRY = "entry"
    EXIT = "exit"
    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"

    @property
    def is_exit(self) -> bool:
        return self is not Intent.ENTRY


class Kind(StrEnum):
    SPOT = "spot"
    EQUITY = "equity"
    FUTURE = "future"
    PERPETUAL = "perpetual"
    OPTION = "option"


class Mode(StrEnum):
    LIVE = "LIVE"
    SIM = "SIM"
    PAPER = "PAPER"


class PositionMode(StrEnum):
    NETTING = "netting"
    HEDGE = "hedge"


class LotMethod(StrEnum):
    AVERAGE = "average"
    FIFO = "fifo"
    LIFO = "lifo"


class Role(StrEnum):
    """What a fill did to a trade."""

    OPEN = "open"
    INCREASE = "increase"
    REDUCE = "reduce"
    CLOSE = "close"
    FLIP = "flip"


class CloseReason(StrEnum):
    TAKE_PROFIT = "take_profit"
    STOP_LOSS = "stop_loss"
    EXIT = "exit"
    LIQUIDATION = "liquidation"
    FLIP = "flip"
    RECONCILIATION = "reconciliation"
    TRANSFER = "transfer"


class OrderStatus(StrEnum):
    OPEN = "open"
    CANCELLED = "cancelled"
