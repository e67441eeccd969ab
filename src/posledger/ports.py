"""What the ledger service needs from storage: a unit of work, a read side, a store.

The service (``posledger.service``) is written against these interfaces only; the store
(``posledger.store``) implements them on SQLite, PostgreSQL and MariaDB (SQLAlchemy Core)
and in memory; :func:`posledger.bootstrap.open_ledger` wires one to the other. Neither
package imports the other.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from .domain.book import Book
from .domain.enums import OrderStatus, PositionSide
from .domain.exits import Bracket, ExitOrder
from .domain.positions import Slot
from .domain.refdata import Account, Instrument, Order, Strategy
from .domain.writeset import WriteSet

__all__ = [
    "FATAL",
    "RECONNECT",
    "RETRY",
    "CommandRow",
    "DamageMark",
    "DoctorReport",
    "Filters",
    "Finding",
    "ForeignFills",
    "Inspection",
    "JournalRow",
    "OverfilledOrder",
    "Reads",
    "Seen",
    "SlotKey4",
    "SlotState",
    "Store",
    "StreamStats",
    "UnitOfWork",
    "Window",
    "apply_window",
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


@dataclass(frozen=True)
class Window:
    """Which rows of a listing, in which order, how many (docs/cli.md#listings).

    ``time`` names the row's time column (ns since the epoch) that ``since`` (inclusive)
    and ``until`` (exclusive) bound; ``sort`` is ``(column, descending)`` pairs, the
    listing's own order breaking ties; absent values sort last either way. ``limit``: at
    most that many rows (None: all)."""

    time: str | None = None
    since: int | None = None
    until: int | None = None
    sort: tuple[tuple[str, bool], ...] = ()
    limit: int | None = None


def apply_window(rows: list[dict[str, Any]], window: Window) -> list[dict[str, Any]]:
    """``window`` applied to rows already in the listing's own order (for stores that
    read in memory)."""
    if window.time is not None:
        name = window.time
        if window.since is not None:
            rows = [r for r in rows if r[name] is not None and r[name] >= window.since]
        if window.until is not None:
            rows = [r for r in rows if r[name] is not None and r[name] < window.until]
    for column, descending in reversed(window.sort):
        present = [r for r in rows if r[column] is not None]
        absent = [r for r in rows if r[column] is None]
        present.sort(key=lambda r, c=column: r[c], reverse=descending)  # type: ignore[misc]
        rows = present + absent
    if window.limit is not None:
        rows = rows[: window.limit]
    return rows


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
    key_id: str | None = None
    """The key of the HTTP API that sent the input, if one did (docs/service.md, Keys)."""


class CommandRow(NamedTuple):
    """One outbox command as stored (docs/brackets.md)."""

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


# -- the doctor's questions (posledger doctor) ---------------------------------------------

SlotKey4 = tuple[str, str, str, str]
"""A slot's key as stored: (account, instrument, strategy, position_side)."""


class SymbolRow(NamedTuple):
    """One entry of the symbol map (docs/venues/README.md, Symbol map)."""

    venue: str
    account: str
    symbol: str
    """The venue's own name of the instrument on that account."""
    instrument: str
    created_at: int


class KeyRow(NamedTuple):
    """A key of the HTTP API as stored: only a hash of its secret (docs/service.md, Keys)."""

    key_id: str
    name: str | None
    scope: str
    """``admin`` or ``strategy``."""
    strategy: str | None
    """The strategy a strategy key acts for (None for an admin key)."""
    secret_hash: str
    """SHA-256 of the key's secret, in hex."""
    created_at: int
    revoked_at: int | None


class DamageMark(NamedTuple):
    """The storage damage a database is marked with (it stops every writer)."""

    found_at: int
    """When, in ns since the epoch."""
    found_by: str
    """``doctor``, or ``writer`` (a driver error while writing)."""
    detail: str
    """What was found."""


class SlotState(NamedTuple):
    """A stored slot and the trade it points at."""

    key: SlotKey4
    quantity: Decimal
    trade_id: int | None
    trade_found: bool
    """Whether a trade ``trade_id`` exists."""
    trade_status: str | None
    trade_key: SlotKey4 | None
    """The slot key the trade belongs to (None when it does not exist)."""


class StreamStats(NamedTuple):
    """What the journal holds of one stream."""

    stream: str
    entries: int
    distinct_versions: int
    lowest: int
    highest: int


class ForeignFills(NamedTuple):
    """Fills of an order booked to a strategy other than the order's, grouped by the order,
    the slot they went to, their side and whether they came after the order."""

    client_order_id: str
    order_strategy: str
    account: str
    instrument: str
    fill_strategy: str
    side: str
    position_side: str
    after_order: bool
    """Journaled after the order was registered."""
    quantity: Decimal
    fills: int
    exec_ids: list[str]
    """The first ones, in journal order."""


class OverfilledOrder(NamedTuple):
    client_order_id: str
    account: str
    instrument: str
    strategy: str
    ordered: Decimal
    filled: Decimal
    fills: int


class Inspection(ABC):
    """Plain questions about the stored books, answered from one read transaction.

    Amounts are exact. A read that the database refuses because its storage is damaged
    raises :class:`posledger.errors.DamagedDatabase`; any other database failure
    :class:`posledger.errors.DatabaseError`.
    """

    @abstractmethod
    def storage_problems(self) -> list[str] | None:
        """What the database's own check of its storage finds (none: intact), or None
        where there is no such check (PostgreSQL, MariaDB, memory)."""

    @abstractmethod
    def damage_mark(self) -> DamageMark | None:
        """The damage the database is marked with, if any."""

    @abstractmethod
    def open_trades_per_slot(self) -> list[tuple[SlotKey4, list[int]]]:
        """Slots with more than one open trade, and those trades' ids, in key order."""

    @abstractmethod
    def trade_legs_per_slot(self) -> dict[SlotKey4, tuple[Decimal, int]]:
        """Per slot key, the sum of the signed legs (``delta``) of its trades, and how
        many legs, in key order."""

    @abstractmethod
    def slots(self) -> list[SlotState]:
        """Every stored slot, in key order."""

    @abstractmethod
    def journal_streams(self) -> list[StreamStats]:
        """Version statistics of every journal stream, in stream order."""

    @abstractmethod
    def version_breaks(self, stream: str, limit: int) -> list[tuple[int, int | None]]:
        """(version, the version before it or None) wherever a stream's versions do not
        go up by one from 1 (a gap, a repeat, a version below 1): the first ``limit``."""

    @abstractmethod
    def stream_versions(self) -> dict[str, int] | None:
        """The streams table (each stream's last version), or None where the store does
        not keep it (SQLite numbers streams from the journal)."""

    @abstractmethod
    def seq_breaks(self, limit: int) -> list[tuple[int, int | None]] | None:
        """(seq, the seq before it or None) wherever journal numbers skip: the first
        ``limit``; None where numbers may skip (server sequences skip on every rollback)."""

    @abstractmethod
    def fills_of_other_strategies(self, exec_ids: int) -> list[ForeignFills]:
        """Fills booked to another strategy than their order's, grouped (with at most
        ``exec_ids`` exec ids each), in order of their keys."""

    @abstractmethod
    def overfilled_orders(self) -> list[OverfilledOrder]:
        """Orders whose fills add up to more than their quantity, by client order id."""

    @abstractmethod
    def strategies_per_instrument(self) -> dict[tuple[str, str], list[str]]:
        """The strategies (not EXTERNAL) with fills per (account, instrument), sorted."""

    @abstractmethod
    def external_slots(self) -> list[tuple[str, str, str, Decimal, Decimal | None]]:
        """EXTERNAL's slots: (account, instrument, position side, quantity, average
        entry), in key order."""

    @abstractmethod
    def invariant_problems(self) -> list[str]:
        """As :meth:`Reads.invariant_problems` (not necessarily in this read transaction)."""


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
        """After a connection was lost while this unit of work committed transaction
        ``txid``: the journal numbers of the entries that commit made, or None if it made
        none (it did not happen, or wrote no entry)."""
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

    def acting(self, key_id: str | None) -> None:
        """Say which key of the HTTP API sends the inputs added from now on (None: none);
        their journal entries record it (docs/service.md, Keys)."""
        return None

    def save_checkpoint(
        self, seq: int, entries: int, versions: dict[str, int], after: int, now: int
    ) -> None:
        """Save the books of this transaction as checkpoint ``seq`` (a rebuild's, at journal
        entry ``seq``, the ``entries``-th, with the streams at ``versions``; the previous
        checkpoint at entry ``after``). Nothing where the store keeps no checkpoints."""
        return None

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
    def claim_commands(
        self,
        worker: str,
        limit: int,
        now: int,
        lease_ns: int,
        accounts: tuple[str, ...] | None = None,
        strategies: tuple[str, ...] | None = None,
        own: bool = False,
    ) -> list[CommandRow]:
        """Claim up to ``limit`` commands for ``worker`` until ``now + lease_ns``: pending
        ones and those whose lease ran out, oldest first; none another worker holds.
        ``accounts``, ``strategies``: of these accounts, of these strategies only.
        ``own``: also those ``worker`` holds already (it restarted, and takes its claims
        back at once)."""

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
    def pnl_legs(
        self, filters: Filters, since: int | None, until: int | None, chunk: int = 5000
    ) -> Iterator[tuple[Any, ...]]:
        """Trade-fill legs stamped in ``[since, until)``, streamed: ``(strategy, account,
        mode, instrument, pnl_currency, ts, realized, commission, commission_currency)``."""

    @abstractmethod
    def closed_trades(
        self, filters: Filters, since: int | None, until: int | None, chunk: int = 5000
    ) -> Iterator[dict[str, Any]]:
        """Closed trades closed in ``[since, until)``, in close order, streamed."""

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
    def last_seq_at(self, recorded_at: int) -> int:
        """The number of the last journal entry recorded at or before ``recorded_at``
        (nanoseconds since the epoch), 0 when there is none."""

    def journal_end(self) -> int:
        """The number of the journal's last entry, 0 when it is empty."""
        return self.last_seq_at(2**63 - 1)

    def journal_writers(self) -> frozenset[int] | None:
        """Who may still commit journal entries numbered below one a reader already sees
        (the live stream: docs/service.md, Live stream).

        PostgreSQL and MariaDB number entries from a sequence as a transaction ends, so one
        that drew a lower number can commit after a higher one is seen: there, the ids of
        the transactions writing now. Once none of them runs any more, a number still
        missing below an entry seen before they were asked never appears. Empty where
        entries are numbered in commit order (SQLite, memory): a missing number never
        appears later. None where the store cannot tell (MariaDB without the PROCESS
        privilege)."""
        return frozenset()

    @abstractmethod
    def commands(self, status: str | None = None, limit: int | None = None) -> list[CommandRow]:
        """Outbox commands, oldest first."""

    @abstractmethod
    def owner(self, what: Literal["order", "command"], key: str) -> str | None:
        """The strategy an order (by client order id) or an outbox command (by id) is
        for; None when there is none."""

    @abstractmethod
    def open_slots(self, filters: Filters) -> list[Slot]:
        """The slots that hold a position, as domain values, by key."""

    # -- what the service's metrics read (docs/service.md, Metrics) ----------------------

    @abstractmethod
    def tally(self, name: str, by: tuple[str, ...]) -> dict[tuple[Any, ...], int]:
        """How many rows of table ``name`` hold each combination of the ``by`` columns."""

    @abstractmethod
    def closed_trade_figures(self, chunk: int = 5000) -> Iterator[tuple[Any, ...]]:
        """Every closed trade, streamed in no particular order: ``(account, instrument,
        strategy, position_side, opened_at, closed_at, peak_quantity, avg_entry, avg_exit,
        gross_realized, realized_pnl, realized_return, multiplier, inverse)`` (the last two
        its instrument's)."""

    @abstractmethod
    def oldest_command(self, statuses: tuple[str, ...]) -> int | None:
        """When the oldest outbox command in one of ``statuses`` was made (nanoseconds
        since the epoch); None when there is none."""

    @abstractmethod
    def latest_reconciliations(self) -> list[tuple[str, str, str, int, int]]:
        """Each account's latest reconciliation run (the run of its newest check):
        ``(account, run, kind, checks, ts)`` per check kind the run found there, ``ts``
        when it ran; by account, then kind."""

    @abstractmethod
    def reference(self) -> tuple[dict[str, Instrument], dict[str, Strategy]]:
        """Every registered instrument and strategy, by name."""

    @abstractmethod
    def brackets(self, filters: Filters) -> list[Bracket]:
        """The slots' brackets (docs/brackets.md), by slot."""

    @abstractmethod
    def exits(self, filters: Filters) -> list[ExitOrder]:
        """The exit orders the ledger watches, by slot then client order id."""

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
        """The invariants (docs/accounting.md) checked on the stored projections (conservation, one
        open trade per slot, hedge sides), as problems; none when they hold."""

    def listing(
        self, name: str, filters: Filters, window: Window, **options: Any
    ) -> Iterator[dict[str, Any]]:
        """The rows of listing ``name`` (``slots``, ``trades``, ``anomalies``,
        ``rejected``, ``transfers``, ``reconciliation_checks``) the filters and the window
        keep, one at a time. ``options``: ``include_flat`` for slots; ``status`` and
        ``with_fills`` for trades (each trade row then holds its legs under ``fills``);
        ``run`` and ``last`` for reconciliation checks.

        This default reads the list methods above (a store kept in memory); a database
        store streams instead, in bounded memory."""
        if name == "slots":
            rows = self.slots(filters, bool(options.get("include_flat")))
        elif name == "trades":
            rows = self.trades(filters, options.get("status"))
        elif name == "anomalies":
            rows = self.anomalies(filters)
        elif name == "rejected":
            rows = self.rejected()
        elif name == "transfers":
            rows = self.transfers(filters)
        elif name == "reconciliation_checks":
            rows = self.reconciliation_checks(filters, options.get("run"), options.get("last"))
        else:
            raise ValueError(f"no listing {name}")
        rows = apply_window(rows, window)
        if name == "trades" and options.get("with_fills"):
            legs = self.trade_fills([row["trade_id"] for row in rows])
            rows = [{**row, "fills": legs.get(row["trade_id"], [])} for row in rows]
        yield from rows


@dataclass
class Past:
    """Where the ledger as of an earlier entry is replayed: ``store`` holds the books as
    they stood after journal entry ``after`` (nothing when 0), with each stream at its
    version in ``versions``; the entries after it are replayed into it.
    ``history()`` then adds, when a reader needs them, the fills, legs, transfers and
    closed trades up to ``after`` that the books leave out."""

    store: Store
    after: int
    versions: dict[str, int]
    history: Callable[[], None] = lambda: None


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

    def past(self, until_seq: int) -> Past:
        """A scratch store to replay the journal up to entry ``until_seq`` into: restored
        from the newest usable checkpoint at or before it where the store keeps them
        (docs/format.md, As of a time), else empty. The caller closes it."""
        return Past(self.scratch(), 0, {})

    def checkpoint(self, every: int, now: int) -> int | None:
        """Save the books at the journal's last entry when ``every`` entries or more came
        since the last checkpoint; the entry saved at, or None (also where the store keeps
        no checkpoints)."""
        return None

    def last_checkpoint(self) -> int | None:
        """The newest checkpoint's entry, 0 when there is none, None where the store keeps
        no checkpoints."""
        return None

    @abstractmethod
    def rebuilding(self) -> AbstractContextManager[UnitOfWork]:
        """A replay unit of work inside a transaction that keeps every writer out and has
        emptied the projections. The caller commits; leaving early rolls back."""

    # -- what the doctor asks (posledger.service.doctor) -------------------------------------

    @abstractmethod
    def inspect(self) -> AbstractContextManager[Inspection]:
        """The stored books' facts, all read in one read transaction (one state of the
        books while writers go on)."""

    def mark_damaged(self, found_by: str, detail: str) -> bool:
        """Record that the storage is damaged (in a transaction of its own): from then on
        every unit of work refuses to begin. False when the mark could not be written (the
        database refused the write); a mark already there is kept as it is."""
        return False

    def clear_damage(self) -> DamageMark | None:
        """Delete the damage mark (after a repair); the mark there was, if any."""
        return None

    def unready(self) -> str | None:
        """Why the store cannot be used now (the database is unreachable, its schema is
        not this posledger's); None when it can (``/readyz``)."""
        return None

    # -- keys of the HTTP API (docs/service.md, Keys) ---------------------------------

    @abstractmethod
    def add_key(self, key: KeyRow) -> None:
        """Store a new key, in a transaction of its own."""

    @abstractmethod
    def api_keys(self) -> list[KeyRow]:
        """Every key, revoked ones included, oldest first."""

    @abstractmethod
    def key(self, key_id: str) -> KeyRow | None: ...

    @abstractmethod
    def revoke_key(self, key_id: str, now: int) -> KeyRow | None:
        """Revoke a key (a revoked one stays as it was); the key, None if there is none."""

    # -- the symbol map (docs/venues/README.md, Symbol map) ----------------------------

    @abstractmethod
    def add_symbol(self, row: SymbolRow) -> SymbolRow:
        """Map a venue's symbol on an account, in a transaction of its own; the entry now
        stored (an existing one is kept as it was: the caller compares)."""

    @abstractmethod
    def symbols(self, venue: str | None = None) -> list[SymbolRow]:
        """The map's entries (of ``venue``), by venue, account and symbol."""

    @abstractmethod
    def remove_symbol(self, venue: str, account: str, symbol: str) -> SymbolRow | None:
        """Remove an entry; the one removed, None if there was none."""

    @abstractmethod
    def venue_state(self, venue: str) -> str | None:
        """A simulated venue's saved state (JSON), None before its first save."""

    @abstractmethod
    def save_venue_state(self, venue: str, state: str, now: int) -> None:
        """Save a simulated venue's state, in a transaction of its own."""

    @abstractmethod
    def close(self) -> None: ...
