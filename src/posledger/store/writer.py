"""The SQL unit of work: one transaction at a time on a dedicated connection.

Statements are built with SQLAlchemy Core and compiled once for the driver; the hot path
runs them on the DBAPI cursor. Writes are buffered and flushed with ``executemany`` just
before COMMIT, so a batch of inputs costs one round of statements per table.

Caches (reference data, books, counters) survive across transactions while this process
is the only writer. On SQLite ``PRAGMA data_version`` tells when another connection has
committed; the caches are then dropped and re-read.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, and_, bindparam, insert, update

from ..domain.book import Book, HaltState
from ..domain.enums import Intent, OrderStatus, PositionSide, Side
from ..domain.events import FillDecision, MarkDecision, ReconcileDecision, TransferDecision
from ..domain.numbers import ZERO, fmt
from ..domain.positions import Slot, SlotKey, Trade
from ..domain.refdata import Account, Instrument, Order, Strategy
from ..service.unit_of_work import FillSeen, Rejected, UnitOfWork
from . import backends, codec
from . import schema as s
from .database import Database

__all__ = ["SqlUnitOfWork"]

Params = tuple[Any, ...] | dict[str, Any]


class _Statement:
    """A Core statement compiled for one dialect, with a row -> DBAPI params binder."""

    def __init__(self, statement: Any, database: Database, table: Table) -> None:
        compiled = statement.compile(dialect=database.engine.dialect)
        self.sql: str = compiled.string
        sqlite = database.dialect == "sqlite"
        amounts = {c.name for c in table.columns if isinstance(c.type, s.Amount)}
        names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
        fields = [name[3:] if name.startswith("pk_") else name for name in names]
        self._names = names
        self._get = itemgetter(*fields)
        # SQLite keeps amounts as canonical text; the server drivers take Decimal.
        self._amounts = [i for i, field in enumerate(fields) if sqlite and field in amounts]
        self._positional = bool(compiled.positional)

    def params(self, row: Mapping[str, Any]) -> Params:
        values = self._get(row)
        if self._amounts:
            values = list(values)
            for index in self._amounts:
                value = values[index]
                if value is not None:
                    values[index] = fmt(value)
        if self._positional:
            return tuple(values)
        return dict(zip(self._names, values, strict=True))


def _insert(table: Table, database: Database) -> _Statement:
    columns = [c.name for c in table.columns if not (c.primary_key and c.autoincrement is True)]
    statement = insert(table).values({name: bindparam(name) for name in columns})
    return _Statement(statement, database, table)


def _update(
    table: Table, database: Database, key: list[str], columns: Iterable[str] | None = None
) -> _Statement:
    names = [c.name for c in table.columns if c.name not in key] if columns is None else columns
    values: dict[str, Any] = {name: bindparam(name) for name in names}
    where = and_(*(table.c[name] == bindparam("pk_" + name) for name in key))
    return _Statement(update(table).where(where).values(values), database, table)


class _Buffer:
    """Rows waiting for the next flush, in the order tables must be written."""

    def __init__(self) -> None:
        self.inserts: dict[str, list[codec.Row]] = {}
        self.slots: dict[SlotKey, tuple[Slot, int]] = {}
        self.trades: dict[int, Trade] = {}
        self.marks: dict[str, tuple[MarkDecision, int]] = {}
        self.order_status: dict[str, codec.Row] = {}
        self.streams: dict[str, int] = {}
        """New version of every stream appended to (servers keep it in ``streams``)."""
        self.fills: dict[tuple[str, str], FillSeen] = {}
        self.known: dict[tuple[str, str], FillSeen | None] = {}
        """Prefetched lookups of stored fills (None: not stored)."""
        self.absent_orders: set[str] = set()
        """Prefetched: client order ids with no stored order."""
        self.rejected: set[str] = set()
        self.transfers: dict[tuple[str, str], FillSeen] = {}
        self.halts: dict[tuple[str, str], codec.Row | None] = {}
        """(account, instrument) -> the halt row, or None: resumed."""
        self.accounts: dict[str, codec.Row] = {}
        """Accounts whose registration changed (their reconcile policy)."""

    def add(self, table: str, row: codec.Row) -> None:
        self.inserts.setdefault(table, []).append(row)

    def __bool__(self) -> bool:
        return bool(
            self.inserts
            or self.slots
            or self.trades
            or self.marks
            or self.order_status
            or self.halts
            or self.accounts
        )


_WRITTEN_FIRST = ("journal", "accounts", "instruments", "strategies", "orders", "fills")
_WRITTEN_LAST = (
    "trade_fills",
    "anomalies",
    "transfers",
    "adjustments",
    "reconciliation_checks",
    "rejected_inputs",
)
_INSTRUMENT = "instrument:"
_ORDER_CACHE = 200_000
_PREFETCH = 400


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _PREFETCH):
        yield values[start : start + _PREFETCH]


class SqlUnitOfWork(UnitOfWork):
    def __init__(self, database: Database) -> None:
        self.database = database
        self._name = database.display_url
        self._inserts = {t.name: _insert(t, database) for t in s.metadata.sorted_tables}
        self._slot_update = _update(
            s.slots, database, ["account", "instrument", "strategy", "position_side"]
        )
        # Only what changes, so that an update of an open trade touches no index.
        self._trade_update = _update(s.trades, database, ["trade_id"], s.TRADE_MUTABLE_OPEN)
        self._trade_close = _update(s.trades, database, ["trade_id"], s.TRADE_MUTABLE_CLOSE)
        self._mark_update = _update(s.marks, database, ["instrument"])
        self._order_update = _update(s.orders, database, ["client_order_id"])
        self._account_update = _update(s.accounts, database, ["account"])
        self._stream_update = _update(s.streams, database, ["stream"])
        self._accounts: dict[str, Account] = {}
        self._instruments: dict[str, Instrument] = {}
        self._strategies: dict[str, Strategy] = {}
        self._orders: OrderedDict[str, tuple[Order, OrderStatus]] = OrderedDict()
        self._data_version: int | None = None
        self._in_transaction = False
        self._buffer = _Buffer()
        self._connect()
        self._forget()

    def _connect(self) -> None:
        self._fairy = self.database.engine.raw_connection()
        connection: Any = self._fairy.driver_connection
        self._conn = connection
        self._backend = backends.backend_for(self.database, connection)
        self._backend.setup()
        self._cur = connection.cursor()
        mark = self._backend.placeholder
        self._q: Callable[[str], str] = (
            (lambda sql: sql) if mark == "?" else (lambda sql: sql.replace("?", mark))
        )
        self._streams_locked = self._backend.has_streams_table_locks

    def _forget(self) -> None:
        """Drop every cache that another writer's commit could make stale."""
        self._books: dict[str, Book] = {}
        self._book_versions: dict[str, int] = {}
        self._versions: dict[str, int] = {}
        self._slots_stored: set[SlotKey] = set()
        self._trades_stored: set[int] = set()
        self._marks_stored: set[str] = set()
        self._next_seq: int | None = None
        self._next_trade: int | None = None
        self._pool: dict[str, list[int]] = {"trade_id": []}
        self._block = 1
        self.numbered: dict[int, int] = {}
        """Stand-in journal numbers of the last transaction and the numbers they got."""
        """How many ids to fetch from a server sequence at once."""

    def _forget_all(self) -> None:
        self._forget()
        self._accounts.clear()
        self._instruments.clear()
        self._strategies.clear()
        self._orders.clear()

    def close(self) -> None:
        if self._in_transaction:
            self.rollback()
        with contextlib.suppress(Exception):
            self._cur.close()
        self._fairy.close()

    # -- transactions ---------------------------------------------------------------

    def begin(self) -> None:
        if self._in_transaction:
            raise RuntimeError("a transaction is already open")
        self._backend.begin(self._cur)
        self._in_transaction = True
        self._locked: dict[str, int] = {}
        version = self._backend.data_version(self._cur)
        if version != self._data_version:
            if self._data_version is not None:
                self._forget_all()
            self._data_version = version

    def commit(self) -> None:
        try:
            self._flush()
            self._backend.commit(self._cur)
        except BaseException:
            self.rollback()
            raise
        self._in_transaction = False
        self._buffer = _Buffer()
        for stream in self._locked:
            if stream.startswith(_INSTRUMENT):
                self._book_versions[stream[len(_INSTRUMENT) :]] = self._versions[stream]

    def rollback(self) -> None:
        if self._in_transaction:
            with contextlib.suppress(Exception):
                self._backend.rollback(self._cur)
        self._in_transaction = False
        self._buffer = _Buffer()
        self._forget_all()

    def classify(self, exc: BaseException) -> str | None:
        """Whether a failed transaction may be tried again: "retry", "reconnect" or None."""
        return self._backend.classify(exc)

    def reconnect(self) -> None:
        """Drop the connection (the server may have gone) and open a fresh one."""
        if self._fairy.is_valid:
            with contextlib.suppress(Exception):
                self._fairy.invalidate()
        self._in_transaction = False
        self._buffer = _Buffer()
        self._forget_all()
        self._data_version = None
        self._connect()

    def _lock(self, stream: str) -> int:
        """Take the stream's lock for this transaction (servers) and return its version."""
        version = self._locked.get(stream)
        if version is None:
            if self._streams_locked:
                version = self._backend.lock_stream(self._cur, stream)
            else:
                version = self._versions.get(stream)
                if version is None:
                    self._cur.execute(
                        self._q("SELECT max(version) FROM journal WHERE stream = ?"), (stream,)
                    )
                    version = self._cur.fetchone()[0] or 0
            self._locked[stream] = version
            self._versions[stream] = version
        return version

    def _flush(self) -> None:
        buf = self._buffer
        if not buf:
            return
        if self._streams_locked:
            self._number_entries()
        inserts = buf.inserts
        for table in _WRITTEN_FIRST:
            if table in inserts:
                self._run(self._inserts[table], inserts[table])
        if buf.order_status:
            self._run(self._order_update, buf.order_status.values())
        if buf.accounts:
            self._run(self._account_update, buf.accounts.values())
        if buf.halts:
            self._cur.executemany(
                self._q("DELETE FROM halts WHERE account = ? AND instrument = ?"),
                list(buf.halts),
            )
            self._run(self._inserts["halts"], [row for row in buf.halts.values() if row])
        if buf.trades:
            self._flush_trades(buf.trades)
        if buf.slots:
            slots = {key: codec.slot_row(slot, seq) for key, (slot, seq) in buf.slots.items()}
            self._upsert(slots, self._slots_stored, self._slot_update, "slots")
        if buf.marks:
            marks = {name: codec.mark_row(mark, seq) for name, (mark, seq) in buf.marks.items()}
            self._upsert(marks, self._marks_stored, self._mark_update, "marks")
        for table in _WRITTEN_LAST:
            if table in inserts:
                self._run(self._inserts[table], inserts[table])
        if self._streams_locked and buf.streams:
            rows = [{"stream": k, "version": v} for k, v in buf.streams.items()]
            self._run(self._stream_update, rows)

    def _number_entries(self) -> None:
        """Give this transaction's journal entries their sequence numbers.

        On a server, numbers are drawn at the end of the transaction, holding every lock
        it took and after every read it made. So an entry whose decision saw another
        entry is numbered after it (that one was numbered before it committed, and was
        read after), and a stream's entries are numbered in the order the stream's lock
        was held. Replay in sequence order therefore sees what each writer saw.
        """
        buf = self._buffer
        entries = buf.inserts.get("journal", [])
        if not entries:
            return
        numbers = sorted(self._backend.allocate(self._cur, "journal", len(entries)))
        real = {-(index + 1): number for index, number in enumerate(numbers)}
        self.numbered = real
        for rows in buf.inserts.values():
            for row in rows:
                seq = row.get("seq")
                if isinstance(seq, int) and seq < 0:
                    row["seq"] = real[seq]
        for key, (slot, seq) in list(buf.slots.items()):
            if seq < 0:
                buf.slots[key] = (slot, real[seq])
        for name, (mark, seq) in list(buf.marks.items()):
            if seq < 0:
                buf.marks[name] = (mark, real[seq])
        changed = [*buf.order_status.values(), *buf.accounts.values()]
        changed.extend(row for row in buf.halts.values() if row is not None)
        for row in changed:
            if row["seq"] < 0:
                row["seq"] = real[row["seq"]]

    def resolve(self, seq: int | None) -> int | None:
        """The journal number of an entry appended in the last committed transaction."""
        if seq is None or seq >= 0:
            return seq
        return self.numbered.get(seq, seq)

    def _run(self, statement: _Statement, rows: Iterable[codec.Row]) -> None:
        params = [statement.params(row) for row in rows]
        if len(params) == 1:
            self._cur.execute(statement.sql, params[0])
        elif params:
            self._cur.executemany(statement.sql, params)

    def _upsert(
        self, rows: Mapping[Any, codec.Row], stored: set[Any], update: _Statement, table: str
    ) -> None:
        self._run(update, [row for key, row in rows.items() if key in stored])
        self._run(self._inserts[table], [row for key, row in rows.items() if key not in stored])
        stored.update(rows)

    def _flush_trades(self, trades: Mapping[int, Trade]) -> None:
        stored = self._trades_stored
        still_open: list[codec.Row] = []
        closing: list[codec.Row] = []
        new: list[codec.Row] = []
        for trade_id, trade in trades.items():
            row = codec.trade_row(trade)
            if trade_id not in stored:
                new.append(row)
            elif trade.closed_at is None:
                still_open.append(row)
            else:
                closing.append(row)
        # Close before insert: a flip's new trade takes the open slot its old one frees.
        self._run(self._trade_update, still_open)
        self._run(self._trade_close, closing)
        self._run(self._inserts["trades"], new)
        for trade_id, trade in trades.items():
            if trade.closed_at is None:
                stored.add(trade_id)
            else:
                stored.discard(trade_id)

    # -- reads ------------------------------------------------------------------------

    def _scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        self._cur.execute(self._q(sql), params)
        row = self._cur.fetchone()
        return None if row is None else row[0]

    def _one(self, sql: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
        self._cur.execute(self._q(sql), params)
        row = self._cur.fetchone()
        if row is None:
            return None
        names = [d[0] for d in self._cur.description]
        return dict(zip(names, row, strict=True))

    def _all(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        self._cur.execute(self._q(sql), params)
        names = [d[0] for d in self._cur.description]
        return [dict(zip(names, row, strict=True)) for row in self._cur.fetchall()]

    def _cached(
        self,
        cache: dict[str, Any],
        key: str,
        sql: str,
        build: Callable[[Mapping[str, Any]], Any],
    ) -> Any:
        found = cache.get(key)
        if found is None:
            row = self._one(sql, (key,))
            if row is not None:
                found = cache[key] = build(row)
        return found

    def account(self, account: str) -> Account | None:
        result: Account | None = self._cached(
            self._accounts,
            account,
            "SELECT * FROM accounts WHERE account = ?",
            codec.account_from_row,
        )
        return result

    def instrument(self, instrument: str) -> Instrument | None:
        result: Instrument | None = self._cached(
            self._instruments,
            instrument,
            "SELECT * FROM instruments WHERE instrument = ?",
            codec.instrument_from_row,
        )
        return result

    def strategy(self, strategy: str) -> Strategy | None:
        result: Strategy | None = self._cached(
            self._strategies,
            strategy,
            "SELECT * FROM strategies WHERE strategy = ?",
            codec.strategy_from_row,
        )
        return result

    def order(self, client_order_id: str) -> tuple[Order, OrderStatus] | None:
        found = self._orders.get(client_order_id)
        if found is not None:
            self._orders.move_to_end(client_order_id)
            return found
        if client_order_id in self._buffer.absent_orders:
            return None
        row = self._one("SELECT * FROM orders WHERE client_order_id = ?", (client_order_id,))
        if row is None:
            return None
        found = (codec.order_from_row(row), OrderStatus(row["status"]))
        self._remember_order(found)
        return found

    def _remember_order(self, entry: tuple[Order, OrderStatus]) -> None:
        self._orders[entry[0].client_order_id] = entry
        self._orders.move_to_end(entry[0].client_order_id)
        if len(self._orders) > _ORDER_CACHE:
            self._orders.popitem(last=False)

    def prefetch(
        self, fills: list[tuple[str, str]], orders: list[str], instruments: list[str]
    ) -> None:
        """Take a batch's stream locks, then look its fills and orders up in a few indexed
        queries instead of one each.

        The locks come first, in a fixed order: what is looked up under them stays true
        until commit, and two batches never wait for each other's locks in a cycle.
        """
        self._block = max(1, min(len(fills) + len(orders), 1000))
        if self._streams_locked:
            for name in sorted(set(instruments)):
                if self.instrument(name) is not None:
                    self._lock(_INSTRUMENT + name)
        known = self._buffer.known
        by_account: dict[str, list[str]] = {}
        for account, exec_id in dict.fromkeys(fills):
            by_account.setdefault(account, []).append(exec_id)
        for account, exec_ids in by_account.items():
            for chunk in _chunks(exec_ids):
                found = {
                    exec_id: FillSeen(seq, digest)
                    for exec_id, seq, digest in self._in(
                        "SELECT exec_id, seq, digest FROM fills WHERE account = ? AND exec_id",
                        chunk,
                        [account],
                    )
                }
                for exec_id in chunk:
                    known[(account, exec_id)] = found.get(exec_id)
        missing = [cid for cid in dict.fromkeys(orders) if cid not in self._orders]
        for chunk in _chunks(missing):
            present = set()
            for row in self._in("SELECT * FROM orders WHERE client_order_id", chunk, []):
                entry = dict(zip([d[0] for d in self._cur.description], row, strict=True))
                self._remember_order((codec.order_from_row(entry), OrderStatus(entry["status"])))
                present.add(entry["client_order_id"])
            self._buffer.absent_orders.update(cid for cid in chunk if cid not in present)

    def _in(self, sql: str, values: list[str], before: list[str]) -> list[tuple[Any, ...]]:
        """``sql`` (ending in a column name) ``IN`` the given values."""
        marks = ", ".join("?" * len(values))
        self._cur.execute(self._q(f"{sql} IN ({marks})"), [*before, *values])
        rows: list[tuple[Any, ...]] = self._cur.fetchall()
        return rows

    def fill_seen(self, account: str, exec_id: str) -> FillSeen | None:
        key = (account, exec_id)
        buf = self._buffer
        pending = buf.fills.get(key)
        if pending is not None:
            return pending
        if key in buf.known:
            return buf.known[key]
        row = self._one(
            "SELECT seq, digest FROM fills WHERE account = ? AND exec_id = ?", (account, exec_id)
        )
        return None if row is None else FillSeen(row["seq"], row["digest"])

    def journal_record(self, seq: int) -> str:
        for row in self._buffer.inserts.get("journal", ()):
            if row["seq"] == seq:
                return str(row["input"])
        found = self._scalar("SELECT input FROM journal WHERE seq = ?", (seq,))
        if found is None:
            raise KeyError(seq)
        return str(found)

    def book(self, instrument: str) -> Book:
        version = self._lock(_INSTRUMENT + instrument)
        book = self._books.get(instrument)
        if book is not None and (
            not self._streams_locked or self._book_versions.get(instrument) == version
        ):
            return book
        # Not cached, or another writer appended to the stream since: read it again.
        book = Book(instrument)
        for row in self._all("SELECT * FROM slots WHERE instrument = ?", (instrument,)):
            slot = codec.slot_from_row(row)
            book.slots[slot.key] = slot
            self._slots_stored.add(slot.key)
        for row in self._all(
            "SELECT * FROM trades WHERE instrument = ? AND status = 'open' ORDER BY trade_id",
            (instrument,),
        ):
            trade = codec.trade_from_row(row)
            book.open_trades[trade.trade_id] = trade
            self._trades_stored.add(trade.trade_id)
        for row in self._all("SELECT * FROM halts WHERE instrument = ?", (instrument,)):
            book.halts[row["account"]] = codec.halt_from_row(row)
        mark = self._one("SELECT price, ts FROM marks WHERE instrument = ?", (instrument,))
        if mark is not None:
            book.mark = codec.dec(mark["price"])
            book.mark_ts = mark["ts"]
            self._marks_stored.add(instrument)
        self._books[instrument] = book
        self._book_versions[instrument] = version
        return book

    def rejected_seen(self, digest: str) -> bool:
        if digest in self._buffer.rejected:
            return True
        return self._scalar("SELECT 1 FROM rejected_inputs WHERE digest = ?", (digest,)) is not None

    # -- ids and the journal ---------------------------------------------------------

    def _allocate(self, counter: str) -> int:
        """The next trade id from the server's sequence (fetched a batch at a time, see
        prefetch: trade ids need not follow the journal's order)."""
        pool = self._pool[counter]
        if not pool:
            pool.extend(reversed(self._backend.allocate(self._cur, counter, self._block)))
        return pool.pop()

    def next_trade_id(self) -> int:
        if self._streams_locked:
            return self._allocate("trade_id")
        if self._next_trade is None:
            self._next_trade = (self._scalar("SELECT max(trade_id) FROM trades") or 0) + 1
        trade_id = self._next_trade
        self._next_trade += 1
        return trade_id

    def append(self, stream: str, kind: str, record: str, effects: str, recorded_at: int) -> int:
        version = self._lock(stream) if stream not in self._locked else self._versions[stream]
        if self._streams_locked:
            # A stand-in, replaced at flush by a number from the server's sequence: taken
            # then, after every read and lock of the transaction, journal order agrees
            # with what each entry saw (see _number_entries).
            seq = -(len(self._buffer.inserts.get("journal", ())) + 1)
        else:
            if self._next_seq is None:
                self._next_seq = (self._scalar("SELECT max(seq) FROM journal") or 0) + 1
            seq = self._next_seq
            self._next_seq += 1
        version += 1
        self._versions[stream] = version
        self._buffer.streams[stream] = version
        self._buffer.add(
            "journal",
            {
                "seq": seq,
                "stream": stream,
                "version": version,
                "kind": kind,
                "recorded_at": recorded_at,
                "input": record,
                "effects": effects,
            },
        )
        return seq

    # -- projections -----------------------------------------------------------------

    def add_account(self, account: Account, seq: int) -> None:
        self._buffer.add("accounts", codec.account_row(account, seq))
        self._accounts[account.account] = account

    def add_instrument(self, instrument: Instrument, seq: int) -> None:
        self._buffer.add("instruments", codec.instrument_row(instrument, seq))
        self._instruments[instrument.instrument] = instrument

    def add_strategy(self, strategy: Strategy, seq: int) -> None:
        self._buffer.add("strategies", codec.strategy_row(strategy, seq))
        self._strategies[strategy.strategy] = strategy

    def update_account(self, account: Account, seq: int) -> None:
        row = codec.account_row(account, seq)
        pending = self._buffer.inserts.get("accounts", [])
        for index, waiting in enumerate(pending):
            if waiting["account"] == account.account:
                pending[index] = row
                break
        else:
            self._buffer.accounts[account.account] = row
        self._accounts[account.account] = account

    def add_order(self, order: Order, seq: int, status: OrderStatus = OrderStatus.OPEN) -> None:
        self._buffer.add("orders", codec.order_row(order, status, seq))
        self._buffer.absent_orders.discard(order.client_order_id)
        self._remember_order((order, status))

    def cancel_order(self, order: Order, seq: int) -> None:
        row = codec.order_row(order, OrderStatus.CANCELLED, seq)
        pending = self._buffer.inserts.get("orders", [])
        for index, waiting in enumerate(pending):
            if waiting["client_order_id"] == order.client_order_id:
                pending[index] = row
                break
        else:
            self._buffer.order_status[order.client_order_id] = row
        self._remember_order((order, OrderStatus.CANCELLED))

    def add_fill(self, decision: FillDecision, seq: int, digest: str) -> None:
        buf = self._buffer
        fill = decision.fill
        buf.add("fills", codec.fill_row(decision, seq, digest))
        buf.fills[(fill.account, fill.exec_id)] = FillSeen(seq, digest)
        self._project(decision, seq)
        for row in codec.trade_fill_rows(decision, seq):
            buf.add("trade_fills", row)
        for row in codec.anomaly_rows(decision, seq):
            buf.add("anomalies", row)

    def add_mark(self, decision: MarkDecision, seq: int) -> None:
        buf = self._buffer
        buf.marks[decision.mark.instrument] = (decision, seq)
        for trade in decision.trades:
            buf.trades[trade.trade_id] = trade

    def _project(
        self, decision: FillDecision | TransferDecision | ReconcileDecision, seq: int
    ) -> None:
        """Buffer the slots and trades a decision changed."""
        buf = self._buffer
        for slot in decision.slots:
            buf.slots[slot.key] = (slot, seq)
        for trade in decision.trades:
            buf.trades[trade.trade_id] = trade

    def _add_rows(self, rows: Mapping[str, list[codec.Row]]) -> None:
        for table, table_rows in rows.items():
            for row in table_rows:
                self._buffer.add(table, row)

    def add_transfer(self, decision: TransferDecision, seq: int, digest: str | None) -> None:
        transfer = decision.transfer
        if transfer.transfer_id is not None and digest is not None:
            self._buffer.transfers[(transfer.account, transfer.transfer_id)] = FillSeen(seq, digest)
        self._add_rows(codec.transfer_rows(decision, seq, digest))
        self._project(decision, seq)

    def add_reconcile(self, decision: ReconcileDecision, seq: int) -> None:
        self._add_rows(codec.reconcile_rows(decision, seq))
        self._project(decision, seq)

    def set_halt(self, account: str, instrument: str, halt: HaltState | None, seq: int) -> None:
        row = None if halt is None else codec.halt_row(account, instrument, halt, seq)
        self._buffer.halts[(account, instrument)] = row

    def transfer_seen(self, account: str, transfer_id: str) -> FillSeen | None:
        pending = self._buffer.transfers.get((account, transfer_id))
        if pending is not None:
            return pending
        row = self._one(
            "SELECT seq, digest FROM transfers WHERE account = ? AND transfer_id = ?",
            (account, transfer_id),
        )
        return None if row is None else FillSeen(row["seq"], row["digest"])

    def _non_flat_slots(self, column: str, value: str) -> list[SlotKey]:
        """Keys of the non-flat slots whose ``column`` (account or strategy) is ``value``, as
        this transaction sees them: the stored rows, then what it changed."""
        held: dict[SlotKey, bool] = {}
        for row in self._all(f"SELECT * FROM slots WHERE {column} = ?", (value,)):
            held[codec.slot_key_from_row(row)] = bool(codec.dec(row["quantity"]))
        for key, (slot, _) in self._buffer.slots.items():
            if getattr(key, column) == value:
                held[key] = bool(slot.quantity)
        return [key for key, on in held.items() if on]

    def open_slots(self, strategy: str) -> int:
        return len(self._non_flat_slots("strategy", strategy))

    def held(self, account: str) -> list[tuple[str, PositionSide]]:
        keys = self._non_flat_slots("account", account)
        return sorted({(key.instrument, key.position_side) for key in keys})

    def bracket_pending(self, order: Order) -> Decimal:
        bracket = order.bracket_id
        ids = [
            row["client_order_id"]
            for row in self._all(
                "SELECT client_order_id FROM orders WHERE bracket_id = ?", (bracket,)
            )
        ]
        ids += [
            row["client_order_id"]
            for row in self._buffer.inserts.get("orders", ())
            if row["bracket_id"] == bracket
        ]
        pending = ZERO
        for cid in dict.fromkeys(ids):
            found = self.order(cid)  # as this transaction sees it: a cancel here counts
            if found is None:
                continue
            entry, status = found
            if (
                status is not OrderStatus.OPEN
                or entry.intent is not Intent.ENTRY
                or (entry.account, entry.instrument, entry.strategy)
                != (order.account, order.instrument, order.strategy)
            ):
                continue
            filled = ZERO
            for (quantity,) in self._in(
                "SELECT quantity FROM fills WHERE account = ? AND client_order_id",
                [cid],
                [entry.account],
            ):
                filled += codec.dec(quantity)
            for row in self._buffer.inserts.get("fills", ()):
                if row["client_order_id"] == cid:
                    filled += row["quantity"]
            left = max(entry.quantity - filled, ZERO)
            pending += left if entry.side is Side.BUY else -left
        return pending

    def add_rejected(self, rejected: Rejected) -> None:
        self._buffer.add("rejected_inputs", codec.rejected_row(rejected))
        self._buffer.rejected.add(rejected.digest)
