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
    REFUSED = "refused"
    """Refused by the pre-trade check; kept, because its fills still belong to its strategy."""


class ReconcilePolicy(StrEnum):
    """What reconciliation does with a difference the broker's fill history leaves."""

    REPORT = "report"
    """Change nothing."""
    ADOPT = "adopt"
    """Book the difference to the EXTERNAL slot."""
    HALT = "halt"
    """Change nothing in the books and lock the instrument on the account."""


class CheckKind(StrEnum):
    """The outcome of comparing one (account, instrument, position side) with the broker."""

    AGREE = "agree"
    MISSING_FILLS = "missing_fills"
    STALE_POSITION = "stale_position"
    UNKNOWN_POSITION = "unknown_position"
    QUANTITY_MISMATCH = "quantity_mismatch"
    AVG_PRICE_DRIFT = "avg_price_drift"


class Source(StrEnum):
    """What moved a slot: a broker fill, a transfer, or a reconciliation adjustment."""

    FILL = "fill"
    TRANSFER = "transfer"
    RECONCILIATION = "reconciliation"
