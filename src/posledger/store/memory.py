"""A ledger kept in memory: the same unit of work contract, with nothing on disk.

For tests of the service (no database needed) and for ``memory://NAME`` ledgers that live
as long as the process. The store keeps each table as rows keyed by their primary key,
written by the same projection code as the SQL stores (:func:`~.codec.rows`); the unit of
work enforces what the databases' constraints do (one fill per account and exec_id, one
open trade per slot, one version per stream, a transfer id and a run name used once) and a
failed commit changes nothing. One transaction at a time, as with SQLite: a unit of work
holds the store's lock from ``begin`` to ``commit`` or ``rollback``, and learns from the
store's commit count whether another one committed since its caches were filled (as
SQLite's ``data_version`` tells). What a transaction writes before it commits (a replay's
flush, a rebuild's emptied projections) is undone by a rollback. Journal entries carry
their transaction's id, so ``committed(txid)`` tells whether a transaction committed.

Reads copy the committed rows into an in-memory SQLite database (once per commit) and run
the SQL read side over it, so that queries, ``verify`` and ``doctor`` mean the same as on a
database.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import cache
from typing import Any, ClassVar, Literal

from sqlalchemy import create_engine
from sqlalchemy.dialects import sqlite
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateIndex, CreateTable

from ..domain.book import Book
from ..domain.enums import OrderStatus
from ..domain.exits import Bracket, ExitOrder
from ..domain.numbers import ZERO
from ..domain.positions import Slot, SlotKey
from ..domain.refdata import Account, Instrument, Order, Strategy
from ..ports import (
    RETRY,
    CommandRow,
    Filters,
    Inspection,
    JournalRow,
    KeyRow,
    Reads,
    Seen,
    Store,
    SymbolRow,
    UnitOfWork,
)
from . import codec
from . import schema as s
from .codec import COLUMNS, KEY_OF, Row, command_row
from .inspection import inspecting
from .outbox import ACKED, CLAIMED, FAILED, PENDING, command_from_row, stored_row
from .reads import SqlReads
from .staging import INSTRUMENT, StagingUnitOfWork

__all__ = ["ConstraintError", "MemoryStore", "MemoryUnitOfWork"]

Key = tuple[Any, ...]

_KEYS: dict[str, tuple[int, ...]] = {
    table.name: tuple(COLUMNS[table.name].index(c.name) for c in table.primary_key.columns)
    for table in s.metadata.sorted_tables
    if table.name != "rejected_inputs"
}
"""Where each table's primary key is in its row tuples."""


@cache
def _schema() -> str:
    """The schema's DDL for SQLite, compiled once (quicker than ``create_all`` each time
    the reads are copied)."""
    dialect = sqlite.dialect()
    statements = []
    for table in s.metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)))
        statements.extend(
            str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes
        )
    return ";\n".join(statements) + ";"


class ConstraintError(Exception):
    """A commit would break what a database constraint guards; nothing was written."""


def _as_dict(table: str, row: Row) -> dict[str, Any]:
    return dict(zip(COLUMNS[table], row, strict=True))


class MemoryStore(Store):
    _named: ClassVar[dict[str, MemoryStore]] = {}
    _registry_lock = threading.Lock()

    def __init__(self, name: str = "") -> None:
        self.display_url = f"memory://{name}"
        self.tables: dict[str, dict[Key, Row]] = {table: {} for table in COLUMNS}
        self.rejected: dict[str, Row] = {}
        """Refused inputs by digest, in the order they were kept."""
        self.streams: dict[str, int] = {}
        self.open_trades: dict[str, Key] = {}
        """The open trade of each slot (its ``open_slot`` text -> the trade's key): the
        databases' unique key on ``trades.open_slot``."""
        self.transfer_ids: dict[tuple[str, str], Key] = {}
        """Transfers sent with an id, by (account, transfer_id): the databases' unique key."""
        self.top_seq = 0
        self.top_trade = 0
        self.version = 0
        """Counts commits that wrote something (like SQLite's data_version)."""
        self.dirty = False
        """A transaction has written rows it may still roll back (reads keep showing what
        was committed before it)."""
        self.lock = threading.RLock()
        """Held by the unit of work in a transaction: one writer at a time."""
        self._reads: tuple[int, SqlReads] | None = None
        self.venues: dict[str, str] = {}
        """Simulated venues' saved states (posledger.paper)."""
        self.key_rows: dict[str, KeyRow] = {}
        self.symbol_rows: dict[tuple[str, str, str], SymbolRow] = {}
        """Keys of the HTTP API, by id, oldest first."""

    @classmethod
    def named(cls, name: str) -> MemoryStore:
        """The process's ledger of that name (a new one for an empty name)."""
        if not name:
            return cls()
        with cls._registry_lock:
            found = cls._named.get(name)
            if found is None:
                found = cls._named[name] = cls(name)
            return found

    @classmethod
    def forget(cls, name: str) -> None:
        """Drop the process's ledger of that name (what it held is gone)."""
        with cls._registry_lock:
            cls._named.pop(name, None)

    # -- the Store interface ---------------------------------------------------------------

    def unit_of_work(self) -> UnitOfWork:
        return MemoryUnitOfWork(self)

    def replay_unit_of_work(self) -> UnitOfWork:
        return MemoryUnitOfWork(self, replay=True)

    def reads(self) -> Reads:
        return _Reads(self)

    @contextmanager
    def snapshot(self) -> Iterator[Reads]:
        yield self._materialized()

    def scratch(self) -> Store:
        return MemoryStore()

    @contextmanager
    def rebuilding(self) -> Iterator[UnitOfWork]:
        uow = MemoryUnitOfWork(self, replay=True)
        try:
            uow.begin("rebuild")
            uow.clear_projections()
            yield uow
        finally:
            uow.close()

    @contextmanager
    def inspect(self) -> Iterator[Inspection]:
        """The same SQL as on a database, over the rows copied into SQLite (whose storage
        is no concern: nothing here can be damaged, so nothing is marked)."""
        engine = self._materialized().engine
        with inspecting(engine, self.display_url, copy=True) as inspection:
            yield inspection

    def add_key(self, key: KeyRow) -> None:
        with self.lock:
            if key.key_id in self.key_rows:
                raise ConstraintError(f"key {key.key_id} exists")
            self.key_rows[key.key_id] = key

    def api_keys(self) -> list[KeyRow]:
        with self.lock:
            return list(self.key_rows.values())

    def key(self, key_id: str) -> KeyRow | None:
        with self.lock:
            return self.key_rows.get(key_id)

    def revoke_key(self, key_id: str, now: int) -> KeyRow | None:
        with self.lock:
            found = self.key_rows.get(key_id)
            if found is not None and found.revoked_at is None:
                found = self.key_rows[key_id] = found._replace(revoked_at=now)
            return found

    def add_symbol(self, row: SymbolRow) -> SymbolRow:
        with self.lock:
            return self.symbol_rows.setdefault((row.venue, row.account, row.symbol), row)

    def symbols(self, venue: str | None = None) -> list[SymbolRow]:
        with self.lock:
            rows = [r for r in self.symbol_rows.values() if venue is None or r.venue == venue]
        return sorted(rows, key=lambda r: (r.venue, r.account, r.symbol))

    def remove_symbol(self, venue: str, account: str, symbol: str) -> SymbolRow | None:
        with self.lock:
            return self.symbol_rows.pop((venue, account, symbol), None)

    def venue_state(self, venue: str) -> str | None:
        with self.lock:
            return self.venues.get(venue)

    def save_venue_state(self, venue: str, state: str, now: int) -> None:
        with self.lock:
            self.venues[venue] = state

    def close(self) -> None:
        pass

    # -- reads through SQLite -------------------------------------------------------------

    def _materialized(self) -> SqlReads:
        with self.lock:
            if self._reads is not None and (self._reads[0] == self.version or self.dirty):
                return self._reads[1]
            engine = create_engine(
                "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
            )
            with engine.connect() as conn:
                conn.connection.driver_connection.executescript(_schema())  # type: ignore[union-attr]
            with engine.begin() as conn:
                for table, rows in self.tables.items():
                    if rows:
                        columns = COLUMNS[table]
                        marks = ", ".join("?" * len(columns))
                        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
                        conn.exec_driver_sql(sql, list(rows.values()))
                if self.rejected:
                    columns = COLUMNS["rejected_inputs"]
                    marks = ", ".join("?" * len(columns))
                    sql = f"INSERT INTO rejected_inputs ({', '.join(columns)}) VALUES ({marks})"
                    conn.exec_driver_sql(sql, list(self.rejected.values()))
            reads = SqlReads(engine)
            self._reads = (self.version, reads)
            return reads


_ABSENT = object()
_INDEXES = ("open_trades", "transfer_ids")


class _Undo:
    """How to put the store back as it was when a transaction began: the first value of
    every key it wrote, the tables and indexes it emptied, its counters."""

    def __init__(self, store: MemoryStore) -> None:
        self.before: dict[int, tuple[dict[Any, Any], dict[Any, Any]]] = {}
        """Per dict written (by id), the dict and the value each key had (``_ABSENT``:
        none)."""
        self.tables: dict[str, dict[Key, Row]] = {}
        self.indexes: dict[str, dict[Any, Any]] = {}
        """Tables and indexes emptied (a rebuild's first step), as they were."""
        self.top = (store.top_seq, store.top_trade, dict(store.streams))

    def put(self, target: dict[Any, Any], key: Any) -> None:
        """``target`` is about to change at ``key``."""
        kept = self.before.get(id(target))
        if kept is None:
            kept = self.before[id(target)] = (target, {})
        if key not in kept[1]:
            kept[1][key] = target.get(key, _ABSENT)

    def empty(self, store: MemoryStore, table: str) -> None:
        if table not in self.tables:
            self.tables[table] = store.tables[table]
        store.tables[table] = {}

    def empty_index(self, store: MemoryStore, name: str) -> None:
        if name not in self.indexes:
            self.indexes[name] = getattr(store, name)
        setattr(store, name, {})

    def restore(self, store: MemoryStore) -> None:
        for target, before in self.before.values():
            for key, value in before.items():
                if value is _ABSENT:
                    target.pop(key, None)
                else:
                    target[key] = value
        for table, rows in self.tables.items():
            store.tables[table] = rows
        for name, index in self.indexes.items():
            setattr(store, name, index)
        store.top_seq, store.top_trade, streams = self.top
        store.streams.clear()
        store.streams.update(streams)


_OPEN_SLOT = COLUMNS["trades"].index("open_slot")
_TRANSFER_ACCOUNT = COLUMNS["transfers"].index("account")
_TRANSFER_ID = COLUMNS["transfers"].index("transfer_id")


def _index_trade(
    store: MemoryStore, undo: _Undo, pk: Key, old: Row | None, new: Row | None
) -> None:
    index = store.open_trades
    if old is not None and old[_OPEN_SLOT] is not None and index.get(old[_OPEN_SLOT]) == pk:
        undo.put(index, old[_OPEN_SLOT])
        del index[old[_OPEN_SLOT]]
    if new is not None and new[_OPEN_SLOT] is not None:
        undo.put(index, new[_OPEN_SLOT])
        index[new[_OPEN_SLOT]] = pk


def _index_transfer(
    store: MemoryStore, undo: _Undo, pk: Key, old: Row | None, new: Row | None
) -> None:
    if new is not None and new[_TRANSFER_ID] is not None:
        key = (new[_TRANSFER_ACCOUNT], new[_TRANSFER_ID])
        undo.put(store.transfer_ids, key)
        store.transfer_ids[key] = pk


_INDEX = {"trades": _index_trade, "transfers": _index_transfer}
"""How writing a row of these tables keeps the store's indexes."""


class MemoryUnitOfWork(StagingUnitOfWork):
    def __init__(self, store: MemoryStore, *, replay: bool = False) -> None:
        self.store = store
        self._seen_version = -1
        """The store's commit count when this unit of work's caches were last current."""
        self._in_transaction = False
        self._txid: str | None = None
        self._outbox: dict[str, CommandRow] = {}
        """Commands claimed or settled in this transaction."""
        self._undo: _Undo | None = None
        """How to undo what this transaction wrote (a flush, a rebuild's clearing)."""
        self._seqs: list[int] = []
        self._tried: list[int] = []
        """Journal numbers the last commit made (see :meth:`committed`)."""
        """Journal numbers given by this transaction's flushes."""
        super().__init__(replay=replay)
        self._next_trade: int | None = None

    # -- transactions ---------------------------------------------------------------------

    def begin(self, txid: str) -> None:
        if self._in_transaction:
            raise RuntimeError("a transaction is already open")
        self.store.lock.acquire()
        self._in_transaction = True
        self._txid = txid
        if self.store.version != self._seen_version:
            # Another unit of work committed since: what was cached may be stale.
            self._forget_all()
            self._next_trade = None
            self._seen_version = self.store.version
        self._outbox = {}

    def _end(self) -> None:
        if self._in_transaction:
            self._in_transaction = False
            self.store.lock.release()

    def commit(self) -> list[int]:
        try:
            self._write(final=True)
        except BaseException:
            self.rollback()
            raise
        seqs, self._seqs = self._seqs, []
        self._tried = list(seqs)
        store = self.store
        if self._undo is not None:
            self._undo = None
            store.version += 1
            store.dirty = False
        self._seen_version = store.version
        self._end()
        return seqs

    def flush(self) -> None:
        """Write what is staged into the store's tables, still undone by a rollback (a long
        replay keeps its staging small)."""
        self._write(final=False)

    def rollback(self) -> None:
        if self._undo is not None:
            self._undo.restore(self.store)
            self._undo = None
            self.store.dirty = False
        self._take_staged()
        self._seqs = []
        self._forget_all()
        self._next_trade = None
        self._outbox = {}
        self._end()

    def close(self) -> None:
        if self._in_transaction:
            self.rollback()

    def classify(self, exc: BaseException) -> str | None:
        return RETRY if isinstance(exc, ConstraintError) else None

    def committed(self, txid: str) -> list[int] | None:
        """As on a server: the entries this unit of work's last commit made, if they are
        there with its key."""
        with self.store.lock:
            journal = self.store.tables["journal"]
            seqs = [
                seq
                for seq in self._tried
                if (row := journal.get((seq,))) is not None and row[7] == txid
            ]
        return seqs or None

    def clear_projections(self) -> None:
        """The first step of a rebuild (undone by a rollback, like the rest)."""
        undo = self._undoing(final=False)
        for table in s.PROJECTIONS:
            undo.empty(self.store, table.name)
        for name in _INDEXES:
            undo.empty_index(self.store, name)
        self._forget_all()

    def _undoing(self, final: bool) -> _Undo:
        """This transaction's undo log, started at its first write. A write before the
        commit (``final`` False) keeps reads on what was committed until the commit."""
        store = self.store
        if self._undo is None:
            self._undo = _Undo(store)
        if not final and not store.dirty:
            store._materialized()
            store.dirty = True
        return self._undo

    # -- writing at commit ----------------------------------------------------------------

    def _write(self, final: bool) -> None:
        """Check the staged write sets against what is stored, as the databases' constraints
        would, then write them (nothing is written when a check fails). ``final``: at
        commit, with the store locked until it returns."""
        store = self.store
        staged = self._take_staged()
        top = store.top_seq
        seqs: list[int] = []
        new_rows: dict[str, dict[Key, Row | None]] = {}
        versions: dict[str, int] = {}
        journal = new_rows.setdefault("journal", {})
        for (entry, given), key in zip(staged.entries, staged.keys, strict=True):
            seq = given
            if seq is None:
                top += 1
                seq = top
                stored = versions.get(entry.stream, store.streams.get(entry.stream, 0))
                if entry.version != stored + 1:
                    raise ConstraintError(
                        f"journal: {entry.stream} version {entry.version} after {stored}"
                    )
                journal[(seq,)] = (*codec.journal_row(entry, seq, self._txid), key)
            versions[entry.stream] = max(versions.get(entry.stream, 0), entry.version)
            seqs.append(seq)
        for change, index in staged.changes:
            seq = None if index < 0 else seqs[index]
            replaces = type(change) in KEY_OF  # else the row is new: a second one is refused
            for table, key, row in codec.rows(change, seq):
                rows = new_rows.setdefault(table, {})
                if table == "rejected_inputs":
                    assert row is not None
                    if row[-1] not in store.rejected:  # kept once (the digest is unique)
                        rows[(row[-1],)] = row
                    continue
                pk = key if row is None else tuple(row[i] for i in _KEYS[table])
                if not replaces and (pk in rows or pk in store.tables[table]):
                    raise ConstraintError(f"{table}: {pk} exists")
                rows[pk] = row
        outbox = new_rows.setdefault("outbox", {})
        for command, index in staged.commands:
            pk = (command.command_id,)
            if pk in outbox or pk in store.tables["outbox"]:
                raise ConstraintError(f"outbox: {command.command_id} exists")
            recorded_at = staged.entries[index][0].recorded_at
            outbox[pk] = command_row(command, seqs[index], recorded_at)
        for settled in self._outbox.values():
            outbox[(settled.command_id,)] = stored_row(settled)
        self._outbox = {}
        self._check(new_rows)
        self._seqs.extend(seqs)
        if not any(new_rows.values()):
            return
        undo = self._undoing(final)
        for table, rows in new_rows.items():
            if table == "rejected_inputs":
                for (digest,), kept in rows.items():
                    assert kept is not None
                    undo.put(store.rejected, digest)
                    store.rejected[digest] = kept
                continue
            target = store.tables[table]
            keep_index = _INDEX.get(table)
            for pk, value in rows.items():
                if keep_index is not None:
                    keep_index(store, undo, pk, target.get(pk), value)
                undo.put(target, pk)
                if value is None:
                    target.pop(pk, None)
                else:
                    target[pk] = value
        store.top_seq = max([store.top_seq, *seqs])
        store.top_trade = max([store.top_trade, *(pk[0] for pk in new_rows.get("trades", ()))])
        for stream, version in versions.items():
            if self._replay:  # the journal says where the stream is
                version = max(version, store.streams.get(stream, 0))
            store.streams[stream] = version

    def _check(self, new_rows: dict[str, dict[Key, Row | None]]) -> None:
        """One open trade per slot, and a transfer id once per account, as the databases'
        unique keys would."""
        store = self.store
        claimed: set[str] = set()
        trades = new_rows.get("trades", {})
        for pk, trade in trades.items():
            if trade is None or trade[_OPEN_SLOT] is None:
                continue
            slot = trade[_OPEN_SLOT]
            holder = store.open_trades.get(slot)
            # another trade of this transaction, or a stored one it leaves open, holds it
            if slot in claimed or (holder not in (None, pk) and holder not in trades):
                raise ConstraintError(f"trades: a second open trade on {slot!r}")
            claimed.add(slot)
        taken: set[tuple[str, str]] = set()
        for transfer in new_rows.get("transfers", {}).values():
            assert transfer is not None
            if transfer[_TRANSFER_ID] is not None:
                key = (transfer[_TRANSFER_ACCOUNT], transfer[_TRANSFER_ID])
                if key in taken or key in store.transfer_ids:
                    raise ConstraintError(f"transfers: {key[1]} exists on {key[0]}")
                taken.add(key)

    # -- reading what is stored -----------------------------------------------------------

    def _row(self, table: str, *key: Any) -> dict[str, Any] | None:
        found = self.store.tables[table].get(key)
        return None if found is None else _as_dict(table, found)

    def _rows(self, table: str) -> Iterator[dict[str, Any]]:
        for row in self.store.tables[table].values():
            yield _as_dict(table, row)

    def _read_account(self, account: str) -> Account | None:
        row = self._row("accounts", account)
        return None if row is None else codec.account_from_row(row)

    def _read_instrument(self, instrument: str) -> Instrument | None:
        row = self._row("instruments", instrument)
        return None if row is None else codec.instrument_from_row(row)

    def _read_strategy(self, strategy: str) -> Strategy | None:
        row = self._row("strategies", strategy)
        return None if row is None else codec.strategy_from_row(row)

    def _read_order(self, client_order_id: str) -> tuple[Order, OrderStatus] | None:
        row = self._row("orders", client_order_id)
        return None if row is None else (codec.order_from_row(row), OrderStatus(row["status"]))

    def _read_fill(self, account: str, exec_id: str) -> Seen | None:
        row = self._row("fills", account, exec_id)
        return None if row is None else Seen(row["seq"], row["digest"])

    def _read_transfer(self, account: str, transfer_id: str) -> Seen | None:
        pk = self.store.transfer_ids.get((account, transfer_id))
        if pk is None:
            return None
        row = _as_dict("transfers", self.store.tables["transfers"][pk])
        return Seen(row["seq"], row["digest"])

    def _read_run(self, run: str) -> bool:
        return (run,) in self.store.tables["reconciliation_runs"]

    def journal_record(self, seq: int) -> str:
        row = self.store.tables["journal"].get((seq,))
        if row is None:
            raise KeyError(seq)
        return str(row[5])

    def _read_version(self, stream: str) -> int:
        return self.store.streams.get(stream, 0)

    def _read_book(self, instrument: str) -> Book:
        book = Book(instrument, version=self._read_version(INSTRUMENT + instrument))
        for row in self._rows("slots"):
            if row["instrument"] == instrument:
                slot = codec.slot_from_row(row)
                book.slots[slot.key] = slot
        trades = self.store.tables["trades"]
        for pk in sorted(self.store.open_trades.values()):
            row = _as_dict("trades", trades[pk])
            if row["instrument"] == instrument:
                trade = codec.trade_from_row(row)
                book.open_trades[trade.trade_id] = trade
        for row in self._rows("halts"):
            if row["instrument"] == instrument:
                book.halts[row["account"]] = codec.halt_from_row(row)
        for row in self._rows("brackets"):
            if row["instrument"] == instrument:
                bracket = codec.bracket_from_row(row)
                book.brackets[bracket.key] = bracket
        exits = [row for row in self._rows("exits") if row["instrument"] == instrument]
        for row in sorted(exits, key=lambda row: (row["seq"], row["client_order_id"])):
            found = codec.exit_from_row(row)
            book.exits[found.client_order_id] = found
        mark = self._row("marks", instrument)
        if mark is not None:
            book.mark = codec.dec(mark["price"])
            book.mark_ts = mark["ts"]
        return book

    def _read_slots(self, column: str, value: str) -> Iterator[tuple[SlotKey, bool]]:
        for row in self._rows("slots"):
            if row[column] == value:
                yield codec.slot_key_from_row(row), bool(codec.dec(row["quantity"]))

    def _read_bracket(self, bracket_id: str) -> list[str]:
        return [
            row["client_order_id"]
            for row in self._rows("orders")
            if row["bracket_id"] == bracket_id
        ]

    def _read_filled(self, account: str, client_order_id: str) -> Decimal:
        filled = ZERO
        for row in self._rows("fills"):
            if row["account"] == account and row["client_order_id"] == client_order_id:
                filled += codec.dec(row["quantity"])
        return filled

    def next_trade_id(self) -> int:
        if self._next_trade is None:
            self._next_trade = self.store.top_trade + 1
        trade_id = self._next_trade
        self._next_trade += 1
        return trade_id

    # -- the outbox -----------------------------------------------------------------------

    def _commands(self) -> Iterator[CommandRow]:
        for pk, row in self.store.tables["outbox"].items():
            yield self._outbox.get(pk[0]) or command_from_row(row)

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
        due = [
            command
            for command in self._commands()
            if (
                command.status == PENDING
                or (
                    command.status == CLAIMED
                    and ((command.lease_until or 0) <= now or (own and command.worker == worker))
                )
            )
            and (accounts is None or command.account in accounts)
            and (strategies is None or command.strategy in strategies)
        ]
        due.sort(key=lambda command: (command.seq, command.command_id))
        claimed = []
        for command in due[:limit]:
            claimed.append(
                command._replace(
                    status=CLAIMED,
                    worker=worker,
                    lease_until=now + lease_ns,
                    attempts=command.attempts + 1,
                    updated_at=now,
                )
            )
            self._outbox[command.command_id] = claimed[-1]
        return claimed

    def command(self, command_id: str) -> CommandRow | None:
        found = self._outbox.get(command_id)
        if found is not None:
            return found
        row = self.store.tables["outbox"].get((command_id,))
        return None if row is None else command_from_row(row)

    def settle_command(
        self,
        command: CommandRow,
        status: str,
        now: int,
        broker_order_id: str | None = None,
        reason: str | None = None,
    ) -> CommandRow:
        assert status in (ACKED, FAILED)
        settled = command._replace(
            status=status,
            broker_order_id=broker_order_id,
            reason=reason,
            lease_until=None,
            updated_at=now,
        )
        self._outbox[command.command_id] = settled
        return settled


class _Reads(Reads):
    """Reads of a memory store: each over the rows as they are when it is asked."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def _now(self) -> SqlReads:
        return self.store._materialized()

    def slots(self, filters: Filters, include_flat: bool) -> list[dict[str, Any]]:
        return self._now().slots(filters, include_flat)

    def owner(self, what: Literal["order", "command"], key: str) -> str | None:
        return self._now().owner(what, key)

    def trades(self, filters: Filters, status: str | None = None) -> list[dict[str, Any]]:
        return self._now().trades(filters, status)

    def trade_fills(self, trade_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        return self._now().trade_fills(trade_ids)

    def pnl_legs(
        self, filters: Filters, since: int | None, until: int | None, chunk: int = 5000
    ) -> Iterator[tuple[Any, ...]]:
        return self._now().pnl_legs(filters, since, until, chunk)

    def closed_trades(
        self, filters: Filters, since: int | None, until: int | None, chunk: int = 5000
    ) -> Iterator[dict[str, Any]]:
        return self._now().closed_trades(filters, since, until, chunk)

    def rejected(self) -> list[dict[str, Any]]:
        return self._now().rejected()

    def anomalies(self, filters: Filters) -> list[dict[str, Any]]:
        return self._now().anomalies(filters)

    def halts(self, filters: Filters) -> list[dict[str, Any]]:
        return self._now().halts(filters)

    def brackets(self, filters: Filters) -> list[Bracket]:
        return self._now().brackets(filters)

    def open_slots(self, filters: Filters) -> list[Slot]:
        return self._now().open_slots(filters)

    def tally(self, name: str, by: tuple[str, ...]) -> dict[tuple[Any, ...], int]:
        return self._now().tally(name, by)

    def closed_trade_figures(self, chunk: int = 5000) -> Iterator[tuple[Any, ...]]:
        return self._now().closed_trade_figures(chunk)

    def oldest_command(self, statuses: tuple[str, ...]) -> int | None:
        return self._now().oldest_command(statuses)

    def latest_reconciliations(self) -> list[tuple[str, str, str, int, int]]:
        return self._now().latest_reconciliations()

    def reference(self) -> tuple[dict[str, Instrument], dict[str, Strategy]]:
        return self._now().reference()

    def exits(self, filters: Filters) -> list[ExitOrder]:
        return self._now().exits(filters)

    def transfers(self, filters: Filters) -> list[dict[str, Any]]:
        return self._now().transfers(filters)

    def reconciliation_checks(
        self, filters: Filters, run: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        return self._now().reconciliation_checks(filters, run, limit)

    def journal(self, after_seq: int = 0, limit: int | None = None) -> list[JournalRow]:
        return self._now().journal(after_seq, limit)

    def last_seq_at(self, recorded_at: int) -> int:
        return self._now().last_seq_at(recorded_at)

    def commands(self, status: str | None = None, limit: int | None = None) -> list[CommandRow]:
        return self._now().commands(status, limit)

    def projections(self) -> dict[str, tuple[str, ...]]:
        return self._now().projections()

    def counts(self) -> dict[str, int]:
        return self._now().counts()

    def table(self, name: str) -> Iterator[dict[str, Any]]:
        return self._now().table(name)

    def invariant_problems(self) -> list[str]:
        return self._now().invariant_problems()
