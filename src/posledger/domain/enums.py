"""The closed vocabularies of the ledger (docs/format.md)."""

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


class OrderType(StrEnum):
    """How an order executes: what a bracket leg or a planned exit is sent as."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class ExitState(StrEnum):
    """Where an exit order the ledger watches stands with the broker (docs/brackets.md)."""

    PLACING = "placing"
    """A bracket leg whose place command is not acknowledged yet."""
    LIVE = "live"
    """Working at the broker (a strategy's own exit order is live from its registration)."""
    WAITING = "waiting"
    """A bracket leg that replaces another: placed once the old legs' cancels settle, so
    that two brackets are never live on one slot."""
    CANCELLING = "cancelling"
    """A cancel command is out and not acknowledged yet."""
    STUCK = "stuck"
    """The broker refused a cancel or amend the ledger asked for: the order may still be
    working at a size its slot does not have. An anomaly until a fill, a ``cancel`` line
    or ``posledger sweep`` settles it."""


class Source(StrEnum):
    """What moved a slot: a broker fill, a transfer, or a reconciliation adjustment."""

    FILL = "fill"
    TRANSFER = "transfer"
    RECONCILIATION = "reconciliation"
