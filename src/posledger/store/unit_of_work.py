"""The SQL unit of work: load what a decision needs, stage write sets, commit them.

One transaction at a time on a dedicated DBAPI connection. Loads read through caches
(reference data, books, recent orders) that survive across transactions while they can
be trusted: on SQLite ``PRAGMA data_version`` tells when another connection committed; on
a server, each book is checked against its stream's version under the stream's lock. A
rollback drops them all.

Write sets are staged (:mod:`.staging`) and written at commit: journal numbers and rows
first (:mod:`.journal`), then the rows of every change, each keyed row once, with one
``executemany`` per table (:mod:`.projections`), the outbox (:mod:`.outbox`), COMMIT.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from ..domain.book import Book
from ..domain.enums import OrderStatus
from ..domain.numbers import ZERO
from ..domain.positions import SlotKey
from ..domain.refdata import Account, Instrument, Order, Strategy
from ..domain.writeset import JournalEntry
from ..ports import FATAL, CommandRow, DamageMark, Seen
from . import backends, codec, damage
from .database import Database
from .journal import Journal
from .outbox import Outbox
from .projections import Projections
from .staging import INSTRUMENT, StagingUnitOfWork
from .statements import Statements

__all__ = ["SqlUnitOfWork"]

_PREFETCH = 400
DAMAGE_RECHECK_NS = 1_000_000_000
"""How old the damage mark a server writer last read may be (SQLite writers read it again
exactly when another connection committed: ``PRAGMA data_version``)."""


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _PREFETCH):
        yield values[start : start + _PREFETCH]


class SqlUnitOfWork(StagingUnitOfWork):
    def __init__(self, database: Database, *, replay: bool = False) -> None:
        self.database = database
        self._data_version: int | None = None
        self._in_transaction = False
        self._txid: str | None = None
        self._seqs: list[int] = []
        self._locked: dict[str, int] = {}
        self._checked: set[str] = set()
        self._drawn: list[int] = []
        """Journal numbers the last write drew (see :meth:`committed`)."""
        self._connect()
        super().__init__(replay=replay)

    # -- connection -----------------------------------------------------------------

    def _connect(self) -> None:
        self._fairy = self.database.engine.raw_connection()
        connection: Any = self._fairy.driver_connection
        backend = self._backend = backends.backend_for(self.database, connection)
        backend.setup()
        self._cur = connection.cursor()
        mark = backend.placeholder
        self._q: Callable[[str], str] = (
            (lambda sql: sql) if mark == "?" else (lambda sql: sql.replace("?", mark))
        )
        self._servers = backend.has_streams_table_locks
        statements = Statements(backend)
        self._journal = Journal(backend, statements)
        self._projections = Projections(statements)
        self._outbox = Outbox(backend, statements)

    def _forget(self) -> None:
        super()._forget()
        self._next_trade: int | None = None
        self._trade_pool: list[int] = []
        self._block = 1
        """How many trade ids to draw from a server sequence at once (a batch draws as
        many as it has inputs: ids stay dense for one writer)."""
        self._known: dict[tuple[str, str], Seen | None] = {}
        """Prefetched lookups of stored fills (None: not stored)."""
        self._damage: DamageMark | None = None
        self._damage_read_at: int | None = None
        """When the damage mark was last read (monotonic ns; None: read it at begin)."""
        self._journal.forget()
        self._projections.forget()

    @property
    def cursor(self) -> Any:
        """The connection's DBAPI cursor, for the store's own maintenance statements."""
        return self._cur

    def close(self) -> None:
        if self._in_transaction:
            self.rollback()
        with contextlib.suppress(Exception):
            self._cur.close()
        self._fairy.close()

    # -- transactions ---------------------------------------------------------------

    def begin(self, txid: str) -> None:
        if self._in_transaction:
            raise RuntimeError("a transaction is already open")
        self._backend.begin(self._cur)
        self._in_transaction = True
        self._txid = txid
        self._locked = {}
        self._checked = set()
        self._absent_orders = set()  # what a prefetch found missing holds for one transaction
        try:
            version = self._backend.data_version(self._cur)
            if version != self._data_version:
                if self._data_version is not None:
                    self._forget_all()
                self._data_version = version
            mark = self._damage_mark()
        except BaseException:
            self.rollback()
            raise
        if mark is not None:
            self.rollback()
            raise damage.mark_error(self.database.display_url, mark)

    def _damage_mark(self) -> DamageMark | None:
        """The damage mark (docs/doctor.md), read again only when the caches were dropped
        (another connection committed, a rollback) or, on a server, once a second."""
        now = time.monotonic_ns()
        read_at = self._damage_read_at
        if read_at is None or (self._servers and now - read_at >= DAMAGE_RECHECK_NS):
            self._damage = damage.read_mark(self._cur)
            self._damage_read_at = now
        return self._damage

    def commit(self) -> list[int]:
        try:
            with self._backend.pipeline():
                self._write()
                self._backend.commit(self._cur)
        except BaseException:
            self.rollback()
            raise
        self._in_transaction = False
        self._known = {}
        seqs, self._seqs = self._seqs, []
        return seqs

    def flush(self) -> None:
        self._write()

    def rollback(self) -> None:
        if self._in_transaction:
            with contextlib.suppress(Exception):
                self._backend.rollback(self._cur)
        self._in_transaction = False
        self._take_staged()
        self._seqs = []
        self._forget_all()

    def classify(self, exc: BaseException) -> str | None:
        """As the backend says; but damaged storage raises ``DamagedDatabase`` at once, once
        the database is marked damaged (where it still takes that write)."""
        cure = self._backend.classify(exc)
        if cure == FATAL and backends.is_damage(exc):
            if self._in_transaction:
                self.rollback()
            marked = damage.record_mark(self._backend, self._cur, damage.BY_WRITER, str(exc))
            self._damage_read_at = None
            raise damage.writer_error(self.database.display_url, exc, marked) from exc
        return cure

    def reconnect(self) -> None:
        """Drop the connection (the server may have gone) and open a fresh one."""
        if self._fairy.is_valid:
            with contextlib.suppress(Exception):
                self._fairy.invalidate()
        self._in_transaction = False
        self._take_staged()
        self._data_version = None
        self._connect()
        self._forget_all()

    def committed(self, txid: str) -> list[int] | None:
        if not self._backend.sets_txid:
            return None
        try:
            seqs = self._journal.committed(self._cur, txid, self._drawn)
        finally:
            with contextlib.suppress(Exception):
                self._backend.rollback(self._cur)
        return seqs or None

    def _write(self) -> None:
        staged = self._take_staged()
        cur = self._cur
        entries = staged.entries
        seqs: list[int] = []
        fresh: list[tuple[JournalEntry, int, str | None]] = []
        if entries:
            count = sum(1 for _, given in entries if given is None)
            self._drawn = self._journal.number(cur, count) if count else []
            numbers = iter(self._drawn)
            for (entry, given), key in zip(entries, staged.keys, strict=True):
                if given is None:
                    given = next(numbers)
                    fresh.append((entry, given, key))
                seqs.append(given)
            self._journal.write(cur, fresh, self._txid)
        self._projections.write(
            cur, ((change, None if index < 0 else seqs[index]) for change, index in staged.changes)
        )
        if staged.commands:
            self._outbox.write(
                cur,
                [
                    (command, seqs[index], entries[index][0].recorded_at)
                    for command, index in staged.commands
                ],
            )
        self._journal.write_versions(cur, staged.versions)
        self._seqs.extend(seqs)

    # -- reading what is stored -----------------------------------------------------------

    def _one(self, sql: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
        self._cur.execute(self._q(sql), params)
        row = self._cur.fetchone()  # (first: in pipeline mode the reply comes with the rows)
        if row is None:
            return None
        names = [d[0] for d in self._cur.description]
        return dict(zip(names, row, strict=True))

    def _all(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        self._cur.execute(self._q(sql), params)
        rows = self._cur.fetchall()
        names = [d[0] for d in self._cur.description]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def _in(self, sql: str, values: list[str], before: list[str]) -> list[tuple[Any, ...]]:
        """``sql`` (ending in a column name) ``IN`` the given values."""
        marks = ", ".join("?" * len(values))
        self._cur.execute(self._q(f"{sql} IN ({marks})"), [*before, *values])
        rows: list[tuple[Any, ...]] = self._cur.fetchall()
        return rows

    def _read_account(self, account: str) -> Account | None:
        row = self._one("SELECT * FROM accounts WHERE account = ?", (account,))
        return None if row is None else codec.account_from_row(row)

    def _read_instrument(self, instrument: str) -> Instrument | None:
        row = self._one("SELECT * FROM instruments WHERE instrument = ?", (instrument,))
        return None if row is None else codec.instrument_from_row(row)

    def _read_strategy(self, strategy: str) -> Strategy | None:
        row = self._one("SELECT * FROM strategies WHERE strategy = ?", (strategy,))
        return None if row is None else codec.strategy_from_row(row)

    def _read_order(self, client_order_id: str) -> tuple[Order, OrderStatus] | None:
        row = self._one("SELECT * FROM orders WHERE client_order_id = ?", (client_order_id,))
        return None if row is None else (codec.order_from_row(row), OrderStatus(row["status"]))

    def _lock_with_fill(self, instrument: str, account: str, exec_id: str) -> bool:
        """Lock one stream and look one fill up in a single round trip (a durable fill on a
        server); False when the stream has no row yet."""
        stream = INSTRUMENT + instrument
        if stream in self._locked:
            return False
        found = self._backend.lock_stream_with_fill(self._cur, stream, account, exec_id)
        if found is None:
            return False
        version, seen = found
        self._locked[stream] = version
        self._known[(account, exec_id)] = None if seen is None else Seen(*seen)
        return True

    def _read_fill(self, account: str, exec_id: str) -> Seen | None:
        key = (account, exec_id)
        if key in self._known:
            return self._known[key]
        row = self._one(
            "SELECT seq, digest FROM fills WHERE account = ? AND exec_id = ?", (account, exec_id)
        )
        return None if row is None else Seen(int(row["seq"]), row["digest"])

    def _read_transfer(self, account: str, transfer_id: str) -> Seen | None:
        row = self._one(
            "SELECT seq, digest FROM transfers WHERE account = ? AND transfer_id = ?",
            (account, transfer_id),
        )
        return None if row is None else Seen(int(row["seq"]), row["digest"])

    def _read_run(self, run: str) -> bool:
        return self._one("SELECT seq FROM reconciliation_runs WHERE run = ?", (run,)) is not None

    def journal_record(self, seq: int) -> str:
        return self._journal.record(self._cur, seq)

    def save_checkpoint(
        self, seq: int, entries: int, versions: dict[str, int], after: int, now: int
    ) -> None:
        from .checkpoints import save_in_transaction

        self.flush()
        placeholder = "?" if self.database.engine.dialect.paramstyle == "qmark" else "%s"
        save_in_transaction(self._cur, placeholder, seq, entries, versions, after, now)

    def _lock(self, stream: str) -> int:
        """The stream's stored version, with its lock taken for this transaction (servers)."""
        version = self._locked.get(stream)
        if version is None:
            version = self._locked[stream] = self._journal.version(self._cur, stream)
        return version

    def _read_version(self, stream: str) -> int:
        return self._lock(stream)

    def _book_is_current(self, book: Book) -> bool:
        if not self._servers or book.instrument in self._checked:
            return True
        self._checked.add(book.instrument)
        return self._lock(INSTRUMENT + book.instrument) == book.version

    def stream_version(self, stream: str) -> int:
        if self._servers and not stream.startswith(INSTRUMENT):
            # On a server another writer may have moved it: look under its lock.
            stored = self._lock(stream)
            if self._versions.get(stream, -1) < stored:
                self._versions[stream] = stored
        return super().stream_version(stream)

    def _read_book(self, instrument: str) -> Book:
        self._checked.add(instrument)
        book = Book(instrument, version=self._lock(INSTRUMENT + instrument))
        for row in self._all("SELECT * FROM slots WHERE instrument = ?", (instrument,)):
            slot = codec.slot_from_row(row)
            book.slots[slot.key] = slot
        stored = self._projections.stored_trades
        for row in self._all(
            "SELECT * FROM trades WHERE instrument = ? AND status = 'open' ORDER BY trade_id",
            (instrument,),
        ):
            trade = codec.trade_from_row(row)
            book.open_trades[trade.trade_id] = trade
            stored.add(trade.trade_id)
        for row in self._all("SELECT * FROM halts WHERE instrument = ?", (instrument,)):
            book.halts[row["account"]] = codec.halt_from_row(row)
        for row in self._all("SELECT * FROM brackets WHERE instrument = ?", (instrument,)):
            bracket = codec.bracket_from_row(row)
            book.brackets[bracket.key] = bracket
        for row in self._all(
            "SELECT * FROM exits WHERE instrument = ? ORDER BY seq, client_order_id", (instrument,)
        ):
            found = codec.exit_from_row(row)
            book.exits[found.client_order_id] = found
        mark = self._one("SELECT price, ts FROM marks WHERE instrument = ?", (instrument,))
        if mark is not None:
            book.mark = codec.dec(mark["price"])
            book.mark_ts = mark["ts"]
        return book

    def _read_slots(self, column: str, value: str) -> Iterator[tuple[SlotKey, bool]]:
        for row in self._all(f"SELECT * FROM slots WHERE {column} = ?", (value,)):
            yield codec.slot_key_from_row(row), bool(codec.dec(row["quantity"]))

    def _read_bracket(self, bracket_id: str) -> list[str]:
        rows = self._all("SELECT client_order_id FROM orders WHERE bracket_id = ?", (bracket_id,))
        return [row["client_order_id"] for row in rows]

    def _read_filled(self, account: str, client_order_id: str) -> Decimal:
        filled = ZERO
        for (quantity,) in self._in(
            "SELECT quantity FROM fills WHERE account = ? AND client_order_id",
            [client_order_id],
            [account],
        ):
            filled += codec.dec(quantity)
        return filled

    def prefetch(
        self, fills: list[tuple[str, str]], orders: list[str], instruments: list[str]
    ) -> None:
        """Take a batch's stream locks, then look its fills and orders up in a few indexed
        queries instead of one each.

        The locks come first, in a fixed order: what is looked up under them stays true
        until commit, and two batches never wait for each other's locks in a cycle.
        """
        self._block = max(1, min(len(fills) + len(orders), 1000))
        if self._servers:
            names = sorted(set(instruments))
            if len(names) == 1 and len(fills) == 1 and self._lock_with_fill(names[0], *fills[0]):
                fills = []
            for name in names:
                if self.instrument(name) is not None:
                    self._lock(INSTRUMENT + name)
        known = self._known
        by_account: dict[str, list[str]] = {}
        for account, exec_id in dict.fromkeys(fills):
            by_account.setdefault(account, []).append(exec_id)
        for account, exec_ids in by_account.items():
            for chunk in _chunks(exec_ids):
                found = {
                    exec_id: Seen(int(seq), digest)
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
            rows = self._in("SELECT * FROM orders WHERE client_order_id", chunk, [])
            names = [d[0] for d in self._cur.description]
            for row in rows:
                entry = dict(zip(names, row, strict=True))
                self._remember_order((codec.order_from_row(entry), OrderStatus(entry["status"])))
                present.add(entry["client_order_id"])
            self._absent_orders.update(cid for cid in chunk if cid not in present)

    # -- ids --------------------------------------------------------------------------

    def next_trade_id(self) -> int:
        if self._servers:
            # Drawn a block at a time (see prefetch): trade ids need not follow the
            # journal's order.
            pool = self._trade_pool
            if not pool:
                pool.extend(reversed(self._backend.allocate(self._cur, "trade_id", self._block)))
            return pool.pop()
        if self._next_trade is None:
            self._cur.execute("SELECT max(trade_id) FROM trades")
            self._next_trade = int(self._cur.fetchone()[0] or 0) + 1
        trade_id = self._next_trade
        self._next_trade += 1
        return trade_id

    # -- the outbox -------------------------------------------------------------------

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
        return self._outbox.claim(
            self._cur,
            worker,
            limit,
            now,
            lease_ns,
            accounts=accounts,
            strategies=strategies,
            own=own,
        )

    def command(self, command_id: str) -> CommandRow | None:
        return self._outbox.get(self._cur, command_id)

    def settle_command(
        self,
        command: CommandRow,
        status: str,
        now: int,
        broker_order_id: str | None = None,
        reason: str | None = None,
    ) -> CommandRow:
        return self._outbox.settle(self._cur, command, status, now, broker_order_id, reason)
