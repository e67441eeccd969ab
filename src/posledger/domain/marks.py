"""Marks kept in memory, and when they are written (docs/accounting.md, Marks).

Marks can arrive far faster than a database should be written. The ledger applies each
one to a :class:`Window` per instrument: the latest price, and the range of prices seen
since the last mark written. A window is written (as one journaled ``mark`` carrying that
``high`` and ``low``) when the :class:`MarkPolicy` says it is due, and before anything
else changes the instrument's trades (a fill, a transfer, a reconciliation), so that a
written range always belongs to the trades that were open through all of it.

Nothing here reads a database: the window starts from the instrument's book.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .book import Book
from .enums import Direction
from .inputs import Mark

__all__ = ["MarkPolicy", "Window"]

MS = 1_000_000
"""Nanoseconds in a millisecond."""


@dataclass(frozen=True, slots=True)
class MarkPolicy:
    """How often an instrument's marks are written, in milliseconds of mark time.

    - A mark is written when at least ``persist_ms`` have passed since the instrument's
      last written mark.
    - A mark that brings a new extreme (a price beyond the best or worst an open trade has
      seen) is written sooner: once at least ``extreme_ms`` have passed.

    So at most ``1000 / min(persist_ms, extreme_ms)`` marks per instrument and second of
    mark time are written, and a crash loses only marks newer than the last one written:
    prices dated less than ``persist_ms`` after it, extremes less than ``extreme_ms``.
    Zero for both writes every mark, as it comes.
    """

    persist_ms: int = 1000
    extreme_ms: int = 100

    def __post_init__(self) -> None:
        if self.persist_ms < 0 or self.extreme_ms < 0:
            raise ValueError("mark persistence intervals cannot be negative")
        if self.extreme_ms > self.persist_ms:
            raise ValueError(
                f"extreme_ms ({self.extreme_ms}) cannot be longer than persist_ms "
                f"({self.persist_ms}): a new extreme is written no later than any mark"
            )


class Window:
    """One instrument's marks since the last one written.

    ``envelope_high`` is the lowest of the best-so-far highs of the open trades (a price
    above it is a new high for at least one of them), ``envelope_low`` the highest of
    their lows; both ``None`` without open trades."""

    __slots__ = (
        "count",
        "envelope_high",
        "envelope_low",
        "extreme",
        "high",
        "instrument",
        "low",
        "price",
        "ts",
        "written_ts",
    )

    def __init__(self, instrument: str, book: Book) -> None:
        self.instrument = instrument
        self.written_ts: int | None = book.mark_ts
        """Time of the last mark written (``None``: none yet)."""
        self.ts: int | None = book.mark_ts
        """Time of the latest mark applied, written or not."""
        self.price: Decimal | None = book.mark
        self.high: Decimal | None = None
        self.low: Decimal | None = None
        self.count = 0
        """Marks applied since the last one written."""
        self.extreme = False
        """Whether one of them was a new extreme."""
        high: Decimal | None = None
        low: Decimal | None = None
        for trade in book.open_trades.values():
            worst, best = trade.mae_price, trade.mfe_price
            if worst is None or best is None:
                continue
            top, bottom = (best, worst) if trade.direction is Direction.LONG else (worst, best)
            high = top if high is None or top < high else high
            low = bottom if low is None or bottom > low else low
        self.envelope_high = high
        self.envelope_low = low

    def offer(self, mark: Mark) -> str | None:
        """Apply a mark (its ``ts`` set): ``None``, or why it changes nothing (a duplicate).

        Marks move forward in time: one not newer than the latest applied is stale."""
        ts = mark.ts
        assert ts is not None
        price = mark.price
        latest = self.ts
        if latest is not None and ts <= latest:
            if ts == latest and price == self.price:
                return "mark already applied"
            return "stale mark: not newer than the last mark applied"
        self.ts = ts
        self.price = price
        top = price if mark.high is None else mark.high
        bottom = price if mark.low is None else mark.low
        if self.high is None or top > self.high:
            self.high = top
        if self.low is None or bottom < self.low:
            self.low = bottom
        envelope = self.envelope_high
        if envelope is not None and top > envelope:
            self.extreme = True
            self.envelope_high = top
        envelope = self.envelope_low
        if envelope is not None and bottom < envelope:
            self.extreme = True
            self.envelope_low = bottom
        self.count += 1
        return None

    def due(self, policy: MarkPolicy) -> bool:
        """Whether the marks applied since the last one written should be written now."""
        if not self.count:
            return False
        written = self.written_ts
        if written is None:
            return True
        assert self.ts is not None
        waited = self.ts - written
        if waited >= policy.persist_ms * MS:
            return True
        return self.extreme and waited >= policy.extreme_ms * MS

    def take(self) -> Mark:
        """The mark to write: the latest price and time, with the range since the last
        mark written (``high``/``low`` left out where they are the price itself)."""
        price, ts, high, low = self.price, self.ts, self.high, self.low
        assert price is not None and ts is not None and high is not None and low is not None
        self.written_ts = ts
        self.high = self.low = None
        self.count = 0
        self.extreme = False
        return Mark(
            self.instrument,
            price,
            ts,
            None if high == price else high,
            None if low == price else low,
        )

    def copy(self) -> Window:
        twin = Window.__new__(Window)
        for name in Window.__slots__:
            setattr(twin, name, getattr(self, name))
        return twin
