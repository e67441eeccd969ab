"""What the ledger service needs from storage: a unit of work, a read side, a store.

The service (``posledger.service``) is written against these interfaces only; the store
(``posledger.store``) implements them on SQLite, PostgreSQL and MariaDB (SQLAlchemy Core)
and in memory; :func:`posledger.bootstrap.open_ledger` wires one to the other. Neither
package imports the other.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from .domain.book import Book
from .domain.enums import OrderStatus, PositionSide
from .domain.refdata import Account, Instrument, Order, Strategy
from .domain.writeset import WriteSet

__all__ = [
    "FATAL",
    "RECONNECT",
    "RETRY",
    "CommandRow",
    "DoctorReport",
    "Filters",
    "Finding",
    "JournalRow",
    "Reads",
    "Seen",
    "Store",
    "UnitOfWork",
]

RETRY = "retry"
"""A failed transaction that may succeed if run again (a deadlock, a lock timeout, a
unique key another writer took first)."""
RECONNECT = "reconnect"
"""The connection is gone (the server restarted): reconnect, then run it again."""
FATAL = "fatal"
"""A database error no retry cures."""

Filters = Mapping[str, str | None]
"""Listing filters: account, instrument, strategy, mode (None: any)."""


class Seen(NamedTuple):
    """An id (a fill's exec_id, a transfer's id) applied before, and how."""

    seq: int | None
    """The journal entry that applied it; None when it was applied earlier in the same
    transaction (its number is given at commit)."""
    digest: str
    """Of its canonical record: the same id with other content is a conflict."""
    record: str | None = None
    """Its canonical record, when it was applied in the same transaction."""


class JournalRow(NamedTuple):
    """One journal entry as stored."""

    seq: int
    stream: str
    version: int
    kind: str
    recorded_at: int
    input: str
    effects: str


class CommandRow(NamedTuple):
    """One outbox command as stored (DESIGN §8)."""

    command_id: str
    kind: str
    account: str
    instrument: str
    strategy: str
    payload: str
    seq: int
    """The journal entry that caused it."""
    status: str
    """``pending``, ``claimed``, ``acked`` or ``failed``."""
    created_at: int
    worker: str | None
    lease_until: int | None
    attempts: int
    broker_order_id: str | None
    reason: str | None
    updated_at: int


Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    check: str
    """The id of the check that found it (one of :data:`CHECKS`)."""
    severity: Severity
    subject: str
    """What it is about: a slot ``account/instrument/strategy/position_side``, an
    ``account/instrument``, ``order <client_order_id>``, ``stream <name>``, ``journal``."""
    detail: str
    """What is wrong, and what to do about it where there is something to do."""
    data: dict[str, Any] = field(default_factory=dict)
    """JSON-able facts: amounts as canonical decimal strings."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity,
            "subject": self.subject,
            "detail": self.detail,
            "data": self.data,
        }


@dataclass
class DoctorReport:
    findings: list[Finding] = field(default_factory=list)
    checks_run: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No finding is an error."""
        return not any(finding.severity == "error" for finding in self.findings)

    def count(self, severity: Severity) -> int:
        return sum(1 for finding in self.findings if finding.severity == severity)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks_run": list(self.checks_run),
            "findings": [finding.as_dict() for finding in self.findings],
        }


class UnitOfWork(ABC):
    """One transaction at a time: load what a decision needs, then commit write sets.

    Loads see the write sets added earlier in the same transaction; nothing is durable
    until :meth:`commit`, and :meth:`rollback` forgets everything added since
    :meth:`begin`.
    """

    # -- transactions ---------------------------------------------------------------------

    @abstractmethod
    def begin(self, txid: str) -> None:
        """Start a transaction. ``txid`` is its idempotency key, fixed before the first
        attempt: the journal entries it commits carry it (see :meth:`committed`)."""

    @abstractmethod
    def commit(self) -> list[int]:
        """Make the transaction durable; return the journal number of each entry added,
        in the order added."""

    @abstractmethod
    def rollback(self) -> None: ...

    def classify(self, exc: BaseException) -> str | None:
        """What a failed transaction needs: :data:`RETRY`, :data:`RECONNECT`,
        :data:`FATAL`, or None (not a storage error at all)."""
        return None

    def reconnect(self) -> None:  # noqa: B027
        """Replace a connection the database dropped."""

    def committed(self, txid: str) -> list[int] | None:
        """The journal numbers of the entries transaction ``txid`` committed, or None if it
        committed none: after a connection was lost while committing, whether the commit
        happened."""
        return None

    def close(self) -> None:  # noqa: B027
        pass

    # -- loads ----------------------------------------------------------------------------

    @abstractmethod
    def account(self, account: str) -> Account | None: ...

    @abstractmethod
    def instrument(self, instrument: str) -> Instrument | None: ...

    @abstractmethod
    def strategy(self, strategy: str) -> Strategy | None: ...

    @abstractmethod
    def order(self, client_order_id: str) -> tuple[Order, OrderStatus] | None: ...

    @abstractmethod
    def fill_seen(self, account: str, exec_id: str) -> Seen | None: ...

    @abstractmethod
    def transfer_seen(self, account: str, transfer_id: str) -> Seen | None: ...

    @abstractmethod
    def run_seen(self, run: str) -> bool:
        """Whether a reconciliation run of this name was recorded."""

    @abstractmethod
    def journal_record(self, seq: int) -> str:
        """The canonical input record journaled at ``seq``."""

    @abstractmethod
    def book(self, instrument: str) -> Book:
        """The instrument's slots, open trades, last mark, halts and stream version, as
        this transaction sees them. With several writers this takes the stream's lock."""

    @abstractmethod
    def stream_version(self, stream: str) -> int:
        """The version of a journal stream as this transaction sees it (takes its lock)."""

    @abstractmethod
    def next_trade_id(self) -> int: ...

    @abstractmethod
    def open_slots(self, strategy: str) -> int:
        """How many non-flat slots ``strategy`` holds, over every account and instrument."""

    @abstractmethod
    def held(self, account: str) -> list[tuple[str, PositionSide]]:
        """(instrument, position side) of every key where a slot of ``account`` is not flat."""

    @abstractmethod
    def bracket(self, bracket_id: str) -> list[tuple[Order, OrderStatus, Decimal]]:
        """Every order sharing ``bracket_id``, with its status and the quantity filled."""

    def has_strategy(self, strategy: str) -> bool:
        return self.strategy(strategy) is not None

    def recorded_verdict(self) -> list[str] | None:
        """The pre-trade verdict the journal recorded for the order being replayed (replay
        takes it as given: it judged the live state), or None: decide it now."""
        return None

    def prefetch(  # noqa: B027
        self, fills: list[tuple[str, str]], orders: list[str], instruments: list[str]
    ) -> None:
        """Hint: the coming inputs touch these instruments' books, and ``fill_seen`` and
        ``order`` will be asked about these fills (account, exec_id) and orders."""

    # -- writes ---------------------------------------------------------------------------

    @abstractmethod
    def add(self, write_set: WriteSet, *, seq: int | None = None) -> None:
        """Stage a write set: loads see it at once, commit makes it durable.

        ``seq`` (replay only) is the number its entry already has in the journal: the
        entry is not written again, and the projections take that number."""

    def flush(self) -> None:  # noqa: B027
        """Write what is staged without committing (a long replay keeps memory bounded)."""

    # -- the outbox -------------------------------------------------------------------------

    @abstractmethod
    def claim_commands(self, worker: str, limit: int, now: int, lease_ns: int) -> list[CommandRow]:
        """Claim up to ``limit`` commands for ``worker`` until ``now + lease_ns``: pending
        ones and those whose lease ran out, oldest first; none another worker holds."""

    @abstractmethod
    def command(self, command_id: str) -> CommandRow | None:
        """One command, locked for this transaction."""

    @abstractmethod
    def settle_command(
        self,
        command: CommandRow,
        status: str,
        now: int,
        broker_order_id: str | None = None,
        reason: str | None = None,
    ) -> CommandRow:
        """Mark a command acked or failed (final)."""


class Reads(ABC):
    """The read side: projections and journal as plain rows (dicts of domain values)."""

    @abstractmethod
    def slots(self, filters: Filters, include_flat: bool) -> list[dict[str, Any]]: ...

    @abstractmethod
    def trades(self, filters: Filters, status: str | None = None) -> list[dict[str, Any]]: ...

    @abstractmethod
    def trade_fills(self, trade_ids: list[int]) -> dict[int, list[dict[str, Any]]]: ...

    @abstractmethod
    def rejected(self) -> list[dict[str, Any]]: ...

    @abstractmethod
    def anomalies(self, filters: Filters) -> list[dict[str, Any]]: ...

    @abstractmethod
    def halts(self, filters: Filters) -> list[dict[str, Any]]: ...

    @abstractmethod
    def transfers(self, filters: Filters) -> list[dict[str, Any]]: ...

    @abstractmethod
    def reconciliation_checks(
        self, filters: Filters, run: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]: ...

    @abstractmethod
    def journal(self, after_seq: int = 0, limit: int | None = None) -> list[JournalRow]:
        """Journal entries numbered after ``after_seq``, in order (at most ``limit``)."""

    @abstractmethod
    def commands(self, status: str | None = None, limit: int | None = None) -> list[CommandRow]:
        """Outbox commands, oldest first."""

    @abstractmethod
    def projections(self) -> dict[str, tuple[str, ...]]:
        """Every projection table (rebuilt from the journal) and its key columns."""

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """How many rows each projection table holds."""

    @abstractmethod
    def table(self, name: str) -> Iterator[dict[str, Any]]:
        """Every row of a projection table in key order (for verify)."""

    @abstractmethod
    def invariant_problems(self) -> list[str]:
        """DESIGN §3's invariants checked on the stored projections (conservation, one
        open trade per slot, hedge sides), as problems; none when they hold."""


class Store(ABC):
    """A ledger database: where units of work and reads come from."""

    display_url: str
    """The database, named for messages (no password)."""

    @abstractmethod
    def unit_of_work(self) -> UnitOfWork:
        """A unit of work on a connection of its own."""

    @abstractmethod
    def replay_unit_of_work(self) -> UnitOfWork:
        """A unit of work for replaying the journal into this (empty) store: write sets are
        added with the journal numbers they already have."""

    @abstractmethod
    def reads(self) -> Reads: ...

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[Reads]:
        """Reads that all see one state of the database."""

    @abstractmethod
    def scratch(self) -> Store:
        """A new, empty store to replay the journal into (verify); gone once closed."""

    @abstractmethod
    def rebuilding(self) -> AbstractContextManager[UnitOfWork]:
        """A replay unit of work inside a transaction that keeps every writer out and has
        emptied the projections. The caller commits; leaving early rolls back."""

    @abstractmethod
    def doctor(self) -> DoctorReport:
        """The integrity report over the stored books (``posledger doctor``)."""

    @abstractmethod
    def close(self) -> None: ...
