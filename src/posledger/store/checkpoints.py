"""Checkpoints: the books saved every so many journal entries, so that the ledger as of a
time is a checkpoint and a short replay, not a replay of the whole journal
(docs/format.md, As of a time).

A checkpoint is taken at the journal's last entry, in one read transaction (one state of
the database), after a writer commits. It holds:

- ``state``: every row of the tables a replay reads and changes (reference data, slots,
  open trades and each slot's last trade, marks, halts, brackets and watched exits) and
  each stream's version;
- ``checkpoint_orders``: the orders registered or changed since the checkpoint before it,
  as they stood. An order as of a checkpoint is its stored row if that was last changed
  by then, else its row in the latest of these at or before the checkpoint.

Everything else a replay may look up (fills, transfers, reconciliation runs, the journal's
own records) only grows: it is read from the database, up to the checkpoint's entry.

Checkpoints are a cache of the projections, never a source of truth. Each records how many
journal entries it covers. On a server, a transaction that drew a lower journal number
can commit after a checkpoint was taken; the count then no longer matches and the
checkpoint is not used (and is replaced by the next one). ``rebuild`` deletes them all.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine

from ..domain.enums import OrderStatus
from ..domain.numbers import fmt
from ..domain.refdata import Order
from ..ports import Past, Seen
from . import codec
from . import schema as s
from .database import Database, open_database
from .sqlstore import SqlStore
from .unit_of_work import SqlUnitOfWork

__all__ = ["History", "PastStore", "PastUnitOfWork", "last", "restore", "take"]

STATE = (
    s.accounts,
    s.instruments,
    s.strategies,
    s.slots,
    s.trades,
    s.marks,
    s.halts,
    s.brackets,
    s.exits,
)
"""Tables a checkpoint holds whole (``trades``: the open ones, and each slot's last)."""

_AMOUNTS = {
    table.name: frozenset(c.name for c in table.columns if isinstance(c.type, s.Amount))
    for table in (*STATE, s.orders, s.fills, s.trade_fills, s.transfers, s.adjustments)
}
HISTORY = (s.fills, s.trade_fills, s.transfers, s.adjustments)
"""What ``trades`` and ``pnl`` as of a time read besides the books: copied up to the
checkpoint's entry (with the trades closed by then) when asked for."""


def _mark(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _dicts(conn: Connection, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    result = conn.exec_driver_sql(sql.replace("?", _mark(conn)), params)
    names = list(result.keys())
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def _canonical(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A row as SQLite stores it: amounts as canonical text, whatever the database."""
    amounts = _AMOUNTS[table]
    out = {}
    for name, value in row.items():
        if name in amounts and value is not None:
            value = fmt(value if isinstance(value, Decimal) else Decimal(value))
        elif isinstance(value, bool):
            value = int(value)
        out[name] = value
    return out


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin() as transaction:
            try:
                yield conn
            finally:
                transaction.rollback()


def _count(conn: Connection, after: int, upto: int) -> int:
    result = conn.exec_driver_sql(
        "SELECT count(*) FROM journal WHERE seq > ? AND seq <= ?".replace("?", _mark(conn)),
        (after, upto),
    )
    return int(result.scalar_one())


def _valid(conn: Connection, upto: int) -> list[dict[str, Any]]:
    """The checkpoints at or before entry ``upto``, newest first, down to (and with) the
    newest one that still covers every journal entry up to its own."""
    found = []
    for row in _dicts(
        conn, "SELECT seq, entries FROM checkpoints WHERE seq <= ? ORDER BY seq DESC", (upto,)
    ):
        found.append(row)
        if _count(conn, 0, int(row["seq"])) == int(row["entries"]):
            return found
    return [*found, {"seq": 0, "entries": 0}]


def last(engine: Engine) -> int:
    """The newest checkpoint's entry (0 when there is none)."""
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT max(seq) FROM checkpoints").scalar() or 0)


class _Sql:
    """SQL with ``?`` placeholders on a DBAPI cursor (one transaction, whatever opened it)."""

    def __init__(self, cursor: Any, placeholder: str) -> None:
        self.cursor = cursor
        self.q = placeholder

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        self.cursor.execute(sql.replace("?", self.q), params)
        rows = self.cursor.fetchall()  # first: in pipeline mode the reply comes with the rows
        names = [d[0] for d in self.cursor.description]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def scalar(self, sql: str, *params: Any) -> Any:
        self.cursor.execute(sql.replace("?", self.q), params)
        row = self.cursor.fetchone()
        return None if row is None else row[0]

    def execute(self, sql: str, *params: Any) -> None:
        self.cursor.execute(sql.replace("?", self.q), params)

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.cursor.executemany(sql.replace("?", self.q), rows)


def _capture(sql: _Sql, after: int, head: int, versions: dict[str, int]) -> tuple[str, list[Any]]:
    """The books as ``sql``'s transaction sees them, with the streams at ``versions``; and
    the orders registered or changed after entry ``after``, as checkpoint ``head``'s."""
    tables = {}
    for table in STATE:
        where = (
            " WHERE status = 'open' OR trade_id IN (SELECT trade_id FROM slots)"
            if table is s.trades
            else ""
        )
        tables[table.name] = [
            _canonical(table.name, row) for row in sql.rows(f"SELECT * FROM {table.name}{where}")
        ]
    orders = [
        (row["client_order_id"], head, msgspec.json.encode(_canonical("orders", row)).decode())
        for row in sql.rows("SELECT * FROM orders WHERE seq > ? AND seq <= ?", after, head)
    ]
    state = msgspec.json.encode({"versions": versions, "tables": tables}).decode()
    return state, orders


def _save(
    sql: _Sql, head: int, entries: int, now: int, state: str, orders: list[Any], after: int
) -> None:
    """Write checkpoint ``head``, replacing any after entry ``after``."""
    sql.execute("DELETE FROM checkpoints WHERE seq > ?", after)
    sql.execute("DELETE FROM checkpoint_orders WHERE seq > ?", after)
    sql.execute(
        "INSERT INTO checkpoints (seq, entries, recorded_at, state) VALUES (?, ?, ?, ?)",
        head,
        entries,
        now,
        state,
    )
    sql.many("INSERT INTO checkpoint_orders (client_order_id, seq, state) VALUES (?, ?, ?)", orders)


_PASSING = frozenset({"OperationalError", "InterfaceError", "IntegrityError"})


def passing(exc: BaseException) -> bool:
    """Whether ``exc`` is the database failing for a passing reason (a lost connection, a
    server going away, another writer taking the same checkpoint), raised by the driver
    or by SQLAlchemy around it: a checkpoint not taken then is taken at the next commit
    that is due. A mistake in the SQL is no passing reason."""
    for error in (exc, getattr(exc, "orig", None)):
        if error is not None and any(c.__name__ in _PASSING for c in type(error).__mro__):
            return True
    return False


def take(engine: Engine, every: int, now: int) -> int | None:
    """Save a checkpoint at the journal's last entry if at least ``every`` entries came
    after the newest valid one; the entry it was taken at, or None."""
    with _snapshot(engine) as conn:
        head = int(conn.exec_driver_sql("SELECT max(seq) FROM journal").scalar() or 0)
        chain = _valid(conn, head)
        base, stale = chain[-1], len(chain) > 1
        after = int(base["seq"])
        if head <= after or (head - after < every and not stale):
            return None
        entries = int(base["entries"]) + _count(conn, after, head)
        versions: dict[str, int] = {}
        if after:
            (stored,) = conn.exec_driver_sql(
                "SELECT state FROM checkpoints WHERE seq = ?".replace("?", _mark(conn)), (after,)
            ).one()
            versions = msgspec.json.decode(stored)["versions"]
        for stream, version in conn.exec_driver_sql(
            "SELECT stream, max(version) FROM journal WHERE seq > ? AND seq <= ? "
            "GROUP BY stream".replace("?", _mark(conn)),
            (after, head),
        ):
            versions[stream] = int(version)
        reading = _Sql(conn.connection.driver_connection.cursor(), _mark(conn))  # type: ignore[union-attr]
        state, orders = _capture(reading, after, head, versions)
    try:
        with engine.begin() as conn:
            writing = _Sql(conn.connection.driver_connection.cursor(), _mark(conn))  # type: ignore[union-attr]
            _save(writing, head, entries, now, state, orders, after)
    except Exception as exc:
        if not passing(exc):
            raise
        return None  # another writer took this one, or the database went away
    return head


def save_in_transaction(
    cursor: Any,
    placeholder: str,
    head: int,
    entries: int,
    versions: dict[str, int],
    after: int,
    now: int,
) -> None:
    """Checkpoint ``head`` from the books of the transaction ``cursor`` is in (a rebuild's,
    which replays the whole journal: ``entries`` and ``versions`` are its own count), the
    last one before it at entry ``after``."""
    sql = _Sql(cursor, placeholder)
    state, orders = _capture(sql, after, head, dict(versions))
    _save(sql, head, entries, now, state, orders, after)


def _insert(cursor: Any, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    names = list(rows[0])
    cursor.executemany(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
        [tuple(row[name] for name in names) for row in rows],
    )


def restore(database: Database, until_seq: int) -> Past:
    """A scratch SQLite store holding the books as of the newest valid checkpoint at or
    before entry ``until_seq`` (empty when there is none), whose replay unit of work looks
    what only grows up in ``database`` as it stood then."""
    directory = Path(tempfile.mkdtemp(prefix="posledger-as-of-"))
    scratch = open_database(f"sqlite:///{directory / 'past.db'}", durable=False)
    store = PastStore(scratch, cleanup=directory, history=database, after=0)
    try:
        with _snapshot(database.engine) as conn:
            after = int(_valid(conn, until_seq)[-1]["seq"])
            versions: dict[str, int] = {}
            if after:
                (stored,) = conn.exec_driver_sql(
                    "SELECT state FROM checkpoints WHERE seq = ?".replace("?", _mark(conn)),
                    (after,),
                ).one()
                state = msgspec.json.decode(stored)
                versions = state["versions"]
                raw = scratch.engine.raw_connection()
                try:
                    cursor = raw.cursor()
                    for name, rows in state["tables"].items():
                        _insert(cursor, name, rows)
                    raw.commit()
                finally:
                    raw.close()
        store.after, store.versions = after, versions
        return Past(store, after, versions, store.copy_history)
    except BaseException:
        store.close()
        raise


class History:
    """What a replay starting at checkpoint ``after`` looks up in the database it came
    from: rows that only grow, up to entry ``after``, and orders as they stood then."""

    def __init__(self, database: Database, after: int) -> None:
        self.after = after
        self._fairy = database.engine.raw_connection()
        cursor = self._fairy.driver_connection.cursor()  # type: ignore[union-attr]
        self._sql = _Sql(cursor, "?" if database.engine.dialect.paramstyle == "qmark" else "%s")
        self._all = self._sql.rows

    def close(self) -> None:
        self._fairy.close()

    def fill(self, account: str, exec_id: str) -> Seen | None:
        for row in self._all(
            "SELECT seq, digest FROM fills WHERE account = ? AND exec_id = ? AND seq <= ?",
            account,
            exec_id,
            self.after,
        ):
            return Seen(int(row["seq"]), row["digest"])
        return None

    def transfer(self, account: str, transfer_id: str) -> Seen | None:
        for row in self._all(
            "SELECT seq, digest FROM transfers WHERE account = ? AND transfer_id = ? AND seq <= ?",
            account,
            transfer_id,
            self.after,
        ):
            return Seen(int(row["seq"]), row["digest"])
        return None

    def run(self, run: str) -> bool:
        return bool(
            self._all(
                "SELECT seq FROM reconciliation_runs WHERE run = ? AND seq <= ?", run, self.after
            )
        )

    def order_row(self, client_order_id: str) -> dict[str, Any] | None:
        for row in self._all("SELECT * FROM orders WHERE client_order_id = ?", client_order_id):
            if int(row["seq"]) <= self.after:
                return row
        for row in self._all(
            "SELECT state FROM checkpoint_orders WHERE client_order_id = ? AND seq <= ? "
            "ORDER BY seq DESC",
            client_order_id,
            self.after,
        ):
            found: dict[str, Any] = msgspec.json.decode(row["state"])
            return found
        return None

    def order(self, client_order_id: str) -> tuple[Order, OrderStatus] | None:
        row = self.order_row(client_order_id)
        return None if row is None else (codec.order_from_row(row), OrderStatus(row["status"]))

    def bracket(self, bracket_id: str) -> list[str]:
        rows = self._all("SELECT client_order_id FROM orders WHERE bracket_id = ?", bracket_id)
        return [
            row["client_order_id"]
            for row in rows
            if self.order_row(row["client_order_id"]) is not None
        ]

    def filled(self, account: str, client_order_id: str) -> Decimal:
        total = Decimal(0)
        for row in self._all(
            "SELECT quantity FROM fills WHERE account = ? AND client_order_id = ? AND seq <= ?",
            account,
            client_order_id,
            self.after,
        ):
            total += codec.dec(row["quantity"])
        return total

    def journal_record(self, seq: int) -> str | None:
        for row in self._all("SELECT input FROM journal WHERE seq = ?", seq):
            return str(row["input"])
        return None

    def copy(self, scratch: Database, progress: Any = None) -> None:
        """Copy into ``scratch`` what only grows, up to entry ``after``, and the trades
        closed by then (those open then are the checkpoint's)."""
        raw = scratch.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("SELECT trade_id FROM trades")
            present = {int(trade_id) for (trade_id,) in cursor.fetchall()}
            for table in HISTORY:
                self._copy(cursor, table.name, f"SELECT * FROM {table.name} WHERE seq <= ?")
            self._copy(
                cursor,
                "trades",
                "SELECT * FROM trades WHERE status = 'closed' AND trade_id IN "
                "(SELECT trade_id FROM trade_fills WHERE seq <= ?)",
                skip=present,
            )
            raw.commit()
        finally:
            raw.close()

    def _copy(self, cursor: Any, table: str, sql: str, skip: set[int] | None = None) -> None:
        amounts = _AMOUNTS.get(table, frozenset())
        source = self._sql.cursor
        self._sql.execute(sql, self.after)
        names = [d[0] for d in source.description]
        insert = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        amount_at = [i for i, name in enumerate(names) if name in amounts]
        key_at = names.index("trade_id") if skip is not None else -1
        while batch := source.fetchmany(5000):
            rows = []
            for row in batch:
                if skip is not None and int(row[key_at]) in skip:
                    continue
                if amount_at:
                    row = list(row)
                    for i in amount_at:
                        value = row[i]
                        if isinstance(value, Decimal):
                            row[i] = fmt(value)
                rows.append(tuple(int(v) if isinstance(v, bool) else v for v in row))
            cursor.executemany(insert, rows)


class PastUnitOfWork(SqlUnitOfWork):
    """The replay unit of work of a store restored from a checkpoint: what is not in it
    (it holds the books, not what only grows) is looked up in :class:`History`."""

    def __init__(self, database: Database, history: History, versions: dict[str, int]) -> None:
        super().__init__(database, replay=True)
        self._history = history
        self._versions = versions

    def _lock(self, stream: str) -> int:
        """A stream's version: the last one replayed here, else the checkpoint's."""
        version = self._locked.get(stream)
        if version is None:
            stored = self._journal.version(self._cur, stream)
            version = self._locked[stream] = stored or self._versions.get(stream, 0)
        return version

    def _read_order(self, client_order_id: str) -> tuple[Order, OrderStatus] | None:
        return super()._read_order(client_order_id) or self._history.order(client_order_id)

    def _read_fill(self, account: str, exec_id: str) -> Seen | None:
        return super()._read_fill(account, exec_id) or self._history.fill(account, exec_id)

    def _read_transfer(self, account: str, transfer_id: str) -> Seen | None:
        return super()._read_transfer(account, transfer_id) or self._history.transfer(
            account, transfer_id
        )

    def _read_run(self, run: str) -> bool:
        return super()._read_run(run) or self._history.run(run)

    def _read_bracket(self, bracket_id: str) -> list[str]:
        return [*super()._read_bracket(bracket_id), *self._history.bracket(bracket_id)]

    def _read_filled(self, account: str, client_order_id: str) -> Decimal:
        return super()._read_filled(account, client_order_id) + self._history.filled(
            account, client_order_id
        )

    def journal_record(self, seq: int) -> str:
        if seq <= self._history.after:
            found = self._history.journal_record(seq)
            if found is not None:
                return found
        return super().journal_record(seq)


def _attach_and_copy(scratch: Database, path: str, after: int) -> None:
    """:meth:`History.copy` from an SQLite file, inside SQLite: the file attached to the
    scratch database and copied by ``INSERT … SELECT``."""
    raw = scratch.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("ATTACH DATABASE ? AS source", (path,))
        try:
            cursor.execute("BEGIN")
            for table in (*HISTORY, s.trades):
                names = ", ".join(column.name for column in table.columns)
                where = "seq <= ?"
                if table is s.trades:
                    where = (
                        "status = 'closed' AND trade_id NOT IN (SELECT trade_id FROM "
                        "main.trades) AND trade_id IN (SELECT trade_id FROM main.trade_fills "
                        "WHERE seq <= ?)"
                    )
                cursor.execute(
                    f"INSERT INTO main.{table.name} ({names}) SELECT {names} "
                    f"FROM source.{table.name} WHERE {where}",
                    (after,),
                )
            cursor.execute("COMMIT")
        finally:
            cursor.execute("DETACH DATABASE source")
    finally:
        raw.close()


class PastStore(SqlStore):
    """A scratch SQLite store restored from a checkpoint of ``source`` at entry ``after``
    (see :func:`restore`)."""

    def __init__(self, database: Database, *, cleanup: Path, history: Database, after: int):
        super().__init__(database, cleanup=cleanup)
        self.source = history
        self.after = after
        self.versions: dict[str, int] = {}
        self._opened: list[History] = []

    def replay_unit_of_work(self) -> SqlUnitOfWork:
        history = History(self.source, self.after)
        self._opened.append(history)
        return PastUnitOfWork(self.database, history, self.versions)

    def copy_history(self) -> None:
        if self.source.dialect == "sqlite" and self.source.url.database:
            _attach_and_copy(self.database, self.source.url.database, self.after)
            return
        history = History(self.source, self.after)
        try:
            history.copy(self.database)
        finally:
            history.close()

    def close(self) -> None:
        while self._opened:
            self._opened.pop().close()
        super().close()
