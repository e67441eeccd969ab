"""The unit of work the ledger service decides and writes through.

One implementation keeps a database (:class:`posledger.store.writer.SqlUnitOfWork`);
another keeps everything in memory for replay (:mod:`posledger.service.replay`). The
service's handlers are written once against this interface.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from decimal import Decimal
from typing import NamedTuple

from ..domain.book import Book, HaltState
from ..domain.enums import OrderStatus, PositionSide
from ..domain.events import FillDecision, MarkDecision, ReconcileDecision, TransferDecision
from ..domain.refdata import Account, Instrument, Order, Strategy

__all__ = ["FillSeen", "Rejected", "UnitOfWork"]


class FillSeen(NamedTuple):
    seq: int
    digest: str


class Rejected(NamedTuple):
    received_at: int
    source: str | None
    line_no: int | None
    raw: str
    reason: str
    digest: str


class UnitOfWork(ABC):
    """Reads see the writes made earlier in the same unit; nothing is durable until commit."""

    # -- transactions -------------------------------------------------------------------

    @abstractmethod
    def begin(self) -> None: ...

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def rollback(self) -> None: ...

    def classify(self, exc: BaseException) -> str | None:
        """What a failed transaction needs: "retry", "reconnect", "fatal" (a database
        error no retry cures), or None (not a database error at all)."""
        return None

    def resolve(self, seq: int | None) -> int | None:
        """The final journal number of ``seq`` as an ``append`` returned it, once the
        transaction committed (a writer may number entries only at commit)."""
        return seq

    def reconnect(self) -> None:  # noqa: B027
        """Replace a connection the database dropped."""

    # -- reads --------------------------------------------------------------------------

    @abstractmethod
    def account(self, account: str) -> Account | None: ...

    @abstractmethod
    def instrument(self, instrument: str) -> Instrument | None: ...

    @abstractmethod
    def strategy(self, strategy: str) -> Strategy | None: ...

    @abstractmethod
    def order(self, client_order_id: str) -> tuple[Order, OrderStatus] | None: ...

    @abstractmethod
    def fill_seen(self, account: str, exec_id: str) -> FillSeen | None: ...

    def prefetch(  # noqa: B027
        self, fills: list[tuple[str, str]], orders: list[str], instruments: list[str]
    ) -> None:
        """Hint: the coming inputs touch these instruments' books, and ``fill_seen`` and
        ``order`` will be asked about these fills (account, exec_id) and orders."""

    @abstractmethod
    def journal_record(self, seq: int) -> str:
        """The canonical input record journaled at ``seq``."""

    @abstractmethod
    def book(self, instrument: str) -> Book:
        """The instrument's slots, open trades and last mark. The caller may apply
        decisions to it; a rollback forgets them."""

    @abstractmethod
    def rejected_seen(self, digest: str) -> bool: ...

    @abstractmethod
    def transfer_seen(self, account: str, transfer_id: str) -> FillSeen | None: ...

    def recorded_verdict(self) -> list[str] | None:
        """The pre-trade verdict the journal recorded for the order being applied (replay
        takes it as given: it judged the live state), or None: decide it now."""
        return None

    def open_slots(self, strategy: str) -> int:
        """How many non-flat slots ``strategy`` holds, over every account and instrument."""
        raise NotImplementedError

    def held(self, account: str) -> list[tuple[str, PositionSide]]:
        """(instrument, position side) of every key where a slot of ``account`` is not flat."""
        raise NotImplementedError

    def bracket_pending(self, order: Order) -> Decimal:
        """Signed unfilled quantity of the open entry orders of ``order``'s strategy, account
        and instrument that share its bracket."""
        raise NotImplementedError

    def has_strategy(self, strategy: str) -> bool:
        return self.strategy(strategy) is not None

    # -- ids and the journal -----------------------------------------------------------

    @abstractmethod
    def next_trade_id(self) -> int: ...

    @abstractmethod
    def append(self, stream: str, kind: str, record: str, effects: str, recorded_at: int) -> int:
        """Append to the journal; return the entry's sequence number."""

    # -- projections -------------------------------------------------------------------

    @abstractmethod
    def add_account(self, account: Account, seq: int) -> None: ...

    @abstractmethod
    def add_instrument(self, instrument: Instrument, seq: int) -> None: ...

    @abstractmethod
    def add_strategy(self, strategy: Strategy, seq: int) -> None: ...

    @abstractmethod
    def update_account(self, account: Account, seq: int) -> None: ...

    @abstractmethod
    def add_order(self, order: Order, seq: int, status: OrderStatus = OrderStatus.OPEN) -> None: ...

    @abstractmethod
    def cancel_order(self, order: Order, seq: int) -> None: ...

    @abstractmethod
    def add_fill(self, decision: FillDecision, seq: int, digest: str) -> None: ...

    @abstractmethod
    def add_mark(self, decision: MarkDecision, seq: int) -> None: ...

    @abstractmethod
    def add_transfer(self, decision: TransferDecision, seq: int, digest: str | None) -> None: ...

    @abstractmethod
    def add_reconcile(self, decision: ReconcileDecision, seq: int) -> None: ...

    @abstractmethod
    def set_halt(self, account: str, instrument: str, halt: HaltState | None, seq: int) -> None:
        """Halt (or, with None, resume) the instrument on the account."""

    @abstractmethod
    def add_rejected(self, rejected: Rejected) -> None: ...
