"""The journal as a feed: each entry once, in number order, with what it changed
(docs/service.md, Live stream).

:class:`Tail` reads the entries after a number a page at a time. Where entries are
numbered as transactions end (PostgreSQL, MariaDB), a lower number can become visible after
a higher one: a tail then holds at the missing number until the transactions that may
still write it have ended (``Reads.journal_writers``), so a reader that resumes after the
last number it was given misses nothing and sees nothing twice.

:func:`changes` names, from an entry's input and effects, what the entry changed: the
slots its legs moved, the trades it touched, opened and closed, the outbox commands it
issued, and every strategy it concerns (what a strategy key may see).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..ports import JournalRow, Reads

__all__ = ["PAGE", "SETTLE_SECONDS", "Owner", "Tail", "changes"]

PAGE = 500
"""Journal entries a tail reads at a time."""
SETTLE_SECONDS = 10.0
"""How long a missing number is waited for where the database cannot say who is writing."""

Owner = Callable[[Literal["order", "command"], str], str | None]
"""The strategy an order (by client order id) or an outbox command (by id) is for."""


def changes(entry: dict[str, Any], owner: Owner) -> dict[str, Any]:
    """What a journal entry (as ``journal_views`` gives it) changed::

        {"strategies": [...], "slots": [{"account", "instrument", "strategy",
         "position_side"}], "trades": [...], "opened": [...], "closed": [...],
         "commands": [{"command_id", "kind", "client_order_id", "strategy"}]}

    ``slots``: the slots whose position it moved (its legs); ``trades``: every trade it
    touched (legs, opened, closed, a mark's excursions); ``commands``: the outbox commands
    it issued. ``strategies``: every strategy it concerns, sorted: the strategy it names
    (an order, a fill, a bracket, a transfer's two), the strategy of each leg, anomaly and
    command, the owner of the order a cancel cancels and of the command an ack or failure
    settles. A mark, a halt and reference data concern no strategy."""
    record: dict[str, Any] = entry["input"]
    effects: dict[str, Any] = entry["effects"]
    account, instrument = record.get("account"), record.get("instrument")
    strategies: set[str] = set()
    slots: list[dict[str, Any]] = []
    trades: list[int] = []

    def trade(trade_id: Any) -> None:
        if isinstance(trade_id, int) and trade_id not in trades:
            trades.append(trade_id)

    for leg in effects.get("legs", ()):
        slot = {
            "account": account,
            "instrument": instrument,
            "strategy": leg["strategy"],
            "position_side": leg["position_side"],
        }
        if slot not in slots:
            slots.append(slot)
        strategies.add(leg["strategy"])
        trade(leg.get("trade_id"))
    opened = [t for t in effects.get("opened", ()) if isinstance(t, int)]
    closed = [c["trade_id"] for c in effects.get("closed", ())]
    for trade_id in (*opened, *closed):
        trade(trade_id)
    for excursion in effects.get("trades", ()):  # a mark's
        trade(excursion.get("trade_id"))
    commands = [
        {
            "command_id": command_id,
            "kind": kind,
            "client_order_id": target,
            "strategy": owner("command", command_id),
        }
        for command_id, kind, target in effects.get("commands", ())
    ]
    named = [record.get(f) for f in ("strategy", "from_strategy", "to_strategy")]
    named += [effects.get("strategy"), (effects.get("orphan") or {}).get("strategy")]
    named += [a.get("strategy") for a in effects.get("anomalies", ())]
    named += [c["strategy"] for c in commands]
    if entry["kind"] == "cancel":
        named.append(owner("order", record["client_order_id"]))
    elif entry["kind"] in ("command_ack", "command_failed"):
        named.append(owner("command", record["command_id"]))
    strategies.update(name for name in named if isinstance(name, str))
    return {
        "strategies": sorted(strategies),
        "slots": slots,
        "trades": trades,
        "opened": opened,
        "closed": closed,
        "commands": commands,
    }


@dataclass
class _Hold:
    """Numbers are missing below ``upto`` (an entry seen): wait for ``writers`` (the
    transactions running when they were found missing) to end, or, when the store cannot
    tell (None), until ``since + settle``."""

    upto: int
    writers: frozenset[int] | None
    since: float


class Tail:
    """The journal after ``after``: :meth:`read` gives the next entries, each once, in
    number order, a page at a time."""

    def __init__(
        self,
        reads: Reads,
        after: int,
        *,
        page: int = PAGE,
        settle: float = SETTLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reads = reads
        self.cursor = after
        """The last number given (or passed as never to come): where to resume."""
        self.page = page
        self.settle = settle
        self.clock = clock
        self.more = False
        """Read again at once: the last page was full, or a missing number may just have
        been settled."""
        self._hold: _Hold | None = None

    @property
    def holding(self) -> bool:
        """Whether a missing number holds the entries after it back."""
        return self._hold is not None

    def read(self) -> list[JournalRow]:
        """The next entries after :attr:`cursor` (none when there are none yet, or while a
        missing number holds them back); the cursor moves past them."""
        final = 0  # numbers missing below this will never come
        if self._hold is not None and self._settled(self._hold):
            final, self._hold = self._hold.upto, None
        rows = self.reads.journal(self.cursor, self.page)
        self.more = len(rows) == self.page
        given: list[JournalRow] = []
        for row in rows:
            if row.seq != self.cursor + 1 and row.seq > final:
                if self._hold is None:
                    # Asked after this read: a transaction that drew a missing number and
                    # had not ended by then is among them.
                    writers = self.reads.journal_writers()
                    self._hold = _Hold(rows[-1].seq, writers, self.clock())
                    self.more = writers == frozenset()
                else:
                    self.more = False
                break
            given.append(row)
            self.cursor = row.seq
            if self._hold is not None and self.cursor >= self._hold.upto:
                self._hold = None  # what it held back came
        return given

    def _settled(self, hold: _Hold) -> bool:
        if hold.writers is not None:
            if not hold.writers:
                return True
            running = self.reads.journal_writers()
            if running is not None:
                return hold.writers.isdisjoint(running)
        return self.clock() - hold.since >= self.settle
