"""What ``posledger doctor`` asks of a database, answered in SQL (SQLAlchemy Core).

:class:`SqlInspection` answers the plain questions of :class:`~posledger.ports.Inspection`
with plain data; :mod:`posledger.service.doctor` turns the answers into findings. Every
question is asked in one read transaction, so that all see one state of the books while
writers go on. Nothing is changed.

Amounts are summed exactly: by the database on PostgreSQL and MariaDB (``NUMERIC``), and
in Python on SQLite, which stores amounts as text and would sum them as floats.

A read the driver refuses because the storage is damaged raises
:class:`~posledger.errors.DamagedDatabase` (the driver's words), and leaves the read
transaction usable for the next question (each is asked in a savepoint); any other
database failure raises :class:`~posledger.errors.DatabaseError`.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from sqlalchemy import Connection, Engine, FromClause, and_, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from ..domain.enums import EXTERNAL
from ..domain.numbers import ZERO
from ..errors import DamagedDatabase, DatabaseError
from ..ports import (
    DamageMark,
    ForeignFills,
    Inspection,
    OverfilledOrder,
    SlotKey4,
    SlotState,
    StreamStats,
)
from . import schema as s
from .backends import is_damage
from .reads import SqlReads

__all__ = ["SqlInspection", "inspecting"]

MAX_STORAGE_PROBLEMS = 100
"""At most this many problems of SQLite's integrity check are read."""

P = ParamSpec("P")
R = TypeVar("R")

Group = tuple[tuple[Any, ...], Decimal, int]
"""(the group's key values, the exact sum of its amounts, how many rows it has)."""


def failure(display_url: str, exc: BaseException) -> DatabaseError:
    """A driver error met while reading, as a :class:`~posledger.errors.LedgerError`."""
    reason = getattr(exc, "orig", None) or exc
    if is_damage(exc):
        return DamagedDatabase(str(reason))
    return DatabaseError(f"{display_url}: {reason}")


def _reading(
    method: Callable[Concatenate[SqlInspection, P], R],
) -> Callable[Concatenate[SqlInspection, P], R]:
    """A method of :class:`SqlInspection` whose driver errors become ledger errors."""

    def read(self: SqlInspection, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            if self.copy:
                return method(self, *args, **kwargs)
            # In a savepoint: a refused read leaves the read transaction usable for the
            # next question (PostgreSQL aborts a transaction on any error).
            with self.conn.begin_nested():
                return method(self, *args, **kwargs)
        except (SQLAlchemyError, sqlite3.Error) as exc:
            raise failure(self.display_url, exc) from exc

    return cast("Callable[Concatenate[SqlInspection, P], R]", functools.wraps(method)(read))


@contextmanager
def inspecting(engine: Engine, display_url: str, *, copy: bool = False) -> Iterator[SqlInspection]:
    """An inspection inside one read transaction (REPEATABLE READ is a snapshot on
    PostgreSQL and InnoDB; an SQLite read transaction is one by nature), rolled back at
    the end. ``copy``: the database is a memory store's rows copied into SQLite, whose
    storage is no concern (no integrity check, no savepoints)."""
    try:
        conn = engine.connect()
    except (SQLAlchemyError, sqlite3.Error) as exc:
        raise failure(display_url, exc) from exc
    with conn:
        if engine.dialect.name != "sqlite":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        try:
            transaction = conn.begin()
        except (SQLAlchemyError, sqlite3.Error) as exc:
            raise failure(display_url, exc) from exc
        try:
            yield SqlInspection(conn, engine, display_url, copy=copy)
        finally:
            try:
                transaction.rollback()
            except (SQLAlchemyError, sqlite3.Error):
                conn.invalidate()  # what a damaged read left behind: this connection goes


class SqlInspection(Inspection):
    def __init__(
        self, conn: Connection, engine: Engine, display_url: str, *, copy: bool = False
    ) -> None:
        self.conn = conn
        self.engine = engine
        self.display_url = display_url
        self.copy = copy
        self.sqlite = engine.dialect.name == "sqlite"

    # -- reading ------------------------------------------------------------------------

    def _rows(self, query: Any) -> list[Any]:
        return list(self.conn.execute(query))

    def _sums(
        self,
        keys: Sequence[ColumnElement[Any]],
        amount: ColumnElement[Decimal],
        source: FromClause,
        where: ColumnElement[bool] | None = None,
        exceeding: int | None = None,
    ) -> list[Group]:
        """The exact sum and count of ``amount`` per group of ``keys``, in key order.

        ``exceeding``: keep only the groups whose sum exceeds ``keys[exceeding]``.
        """
        if not self.sqlite:
            query = (
                select(*keys, func.sum(amount), func.count())
                .select_from(source)
                .group_by(*keys)
                .order_by(*keys)
            )
            if where is not None:
                query = query.where(where)
            if exceeding is not None:
                query = query.having(func.sum(amount) > keys[exceeding])
            return [(tuple(row[:-2]), row[-2], int(row[-1])) for row in self.conn.execute(query)]
        # SQLite would sum the amounts' text as floats: stream them in key order and add
        # them up here, exactly, one group at a time.
        query = select(*keys, amount).select_from(source).order_by(*keys)
        if where is not None:
            query = query.where(where)
        width = len(keys)
        groups: list[Group] = []
        result = self.conn.execute(query.execution_options(yield_per=5000))
        for key, members in itertools.groupby(result, key=lambda row: tuple(row[:width])):
            total = ZERO
            count = 0
            for row in members:
                total += row[width]
                count += 1
            if exceeding is None or total > key[exceeding]:
                groups.append((key, total, count))
        return groups

    # -- storage --------------------------------------------------------------------------

    @_reading
    def storage_problems(self) -> list[str] | None:
        # integrity_check rather than quick_check: it also checks that every index holds
        # exactly its table's rows, and the unique indexes are what keeps a fill or a
        # journal version from being stored twice. It reads the whole file (O(N log N)):
        # doctor is run by hand or on a schedule, never by a writer.
        if self.copy or not self.sqlite:
            return None
        result = self.conn.exec_driver_sql(f"PRAGMA integrity_check({MAX_STORAGE_PROBLEMS})")
        problems: list[str] = []
        for (text,) in result:
            for line in str(text).splitlines():
                if line and line != "ok" and not line.startswith("*** in database"):
                    problems.append(line)
        return problems

    @_reading
    def damage_mark(self) -> DamageMark | None:
        table = s.storage_damage
        row = self.conn.execute(
            select(table.c.found_at, table.c.found_by, table.c.detail).order_by(table.c.id)
        ).first()
        return None if row is None else DamageMark(int(row[0]), str(row[1]), str(row[2]))

    # -- slots and trades -------------------------------------------------------------------

    @_reading
    def open_trades_per_slot(self) -> list[tuple[SlotKey4, list[int]]]:
        tr = s.trades
        keys = (tr.c.account, tr.c.instrument, tr.c.strategy, tr.c.position_side)
        query = (
            select(*keys, func.count())
            .where(tr.c.status == "open")
            .group_by(*keys)
            .having(func.count() > 1)
            .order_by(*keys)
        )
        found: list[tuple[SlotKey4, list[int]]] = []
        for account, instrument, strategy, side, _count in self._rows(query):
            ids = [
                int(trade_id)
                for (trade_id,) in self._rows(
                    select(tr.c.trade_id)
                    .where(
                        tr.c.status == "open",
                        tr.c.account == account,
                        tr.c.instrument == instrument,
                        tr.c.strategy == strategy,
                        tr.c.position_side == side,
                    )
                    .order_by(tr.c.trade_id)
                )
            ]
            found.append(((account, instrument, strategy, side), ids))
        return found

    @_reading
    def trade_legs_per_slot(self) -> dict[SlotKey4, tuple[Decimal, int]]:
        tr, tf = s.trades, s.trade_fills
        keys = (tr.c.account, tr.c.instrument, tr.c.strategy, tr.c.position_side)
        groups = self._sums(keys, tf.c.delta, tf.join(tr, tr.c.trade_id == tf.c.trade_id))
        return {_key4(key): (total, count) for key, total, count in groups}

    @_reading
    def slots(self) -> list[SlotState]:
        sl, tr = s.slots, s.trades
        query = (
            select(
                sl.c.account,
                sl.c.instrument,
                sl.c.strategy,
                sl.c.position_side,
                sl.c.quantity,
                sl.c.trade_id,
                tr.c.trade_id,
                tr.c.status,
                tr.c.account,
                tr.c.instrument,
                tr.c.strategy,
                tr.c.position_side,
            )
            .select_from(sl.join(tr, tr.c.trade_id == sl.c.trade_id, isouter=True))
            .order_by(sl.c.account, sl.c.instrument, sl.c.strategy, sl.c.position_side)
        )
        states = []
        for row in self._rows(query):
            found = row[6] is not None
            states.append(
                SlotState(
                    key=_key4(tuple(row[:4])),
                    quantity=row[4],
                    trade_id=None if row[5] is None else int(row[5]),
                    trade_found=found,
                    trade_status=row[7],
                    trade_key=_key4(tuple(row[8:])) if found else None,
                )
            )
        return states

    # -- the journal --------------------------------------------------------------------------

    @_reading
    def journal_streams(self) -> list[StreamStats]:
        jr = s.journal
        query = (
            select(
                jr.c.stream,
                func.count(),
                func.count(jr.c.version.distinct()),
                func.min(jr.c.version),
                func.max(jr.c.version),
            )
            .group_by(jr.c.stream)
            .order_by(jr.c.stream)
        )
        return [
            StreamStats(stream, int(count), int(distinct), int(low), int(high))
            for stream, count, distinct, low, high in self._rows(query)
        ]

    @_reading
    def version_breaks(self, stream: str, limit: int) -> list[tuple[int, int | None]]:
        jr = s.journal
        ordered = (
            select(
                jr.c.version.label("version"),
                func.lag(jr.c.version).over(order_by=jr.c.version).label("previous"),
            )
            .where(jr.c.stream == stream)
            .subquery()
        )
        query = (
            select(ordered.c.version, ordered.c.previous)
            .where(ordered.c.version - func.coalesce(ordered.c.previous, 0) != 1)
            .order_by(ordered.c.version)
            .limit(limit)
        )
        return [(int(v), None if p is None else int(p)) for v, p in self._rows(query)]

    @_reading
    def stream_versions(self) -> dict[str, int] | None:
        if self.sqlite:
            # Server writers number a stream's entries from its row in ``streams``;
            # SQLite's writer reads the journal instead and never keeps that table.
            return None
        return {stream: int(version) for stream, version in self._rows(select(s.streams))}

    @_reading
    def seq_breaks(self, limit: int) -> list[tuple[int, int | None]] | None:
        if not self.sqlite:
            return None  # server sequences skip numbers on every rollback
        # SQLite (and a memory store) number entries one after the other under one write
        # lock: there a skipped number is an entry removed.
        jr = s.journal
        ordered = select(
            jr.c.seq.label("seq"), func.lag(jr.c.seq).over(order_by=jr.c.seq).label("previous")
        ).subquery()
        query = (
            select(ordered.c.seq, ordered.c.previous)
            .where(ordered.c.seq - func.coalesce(ordered.c.previous, 0) > 1)
            .order_by(ordered.c.seq)
            .limit(limit)
        )
        return [(int(q), None if p is None else int(p)) for q, p in self._rows(query)]

    # -- fills and orders ---------------------------------------------------------------------

    @_reading
    def fills_of_other_strategies(self, exec_ids: int) -> list[ForeignFills]:
        fl, od = s.fills, s.orders
        after = fl.c.seq > od.c.seq
        keys = (
            od.c.client_order_id,
            od.c.strategy,
            od.c.seq,
            fl.c.account,
            fl.c.instrument,
            fl.c.strategy,
            fl.c.side,
            fl.c.position_side,
            after,
        )
        source = fl.join(
            od, and_(od.c.client_order_id == fl.c.client_order_id, od.c.account == fl.c.account)
        )
        groups = self._sums(keys, fl.c.quantity, source, where=fl.c.strategy != od.c.strategy)
        found = []
        for key, total, count in groups:
            cid, owner, order_seq, account, instrument, booked_to, side, position_side, late = key
            late = bool(late)
            ids = [
                exec_id
                for (exec_id,) in self._rows(
                    select(fl.c.exec_id)
                    .where(
                        fl.c.client_order_id == cid,
                        fl.c.account == account,
                        fl.c.strategy == booked_to,
                        fl.c.side == side,
                        fl.c.position_side == position_side,
                        (fl.c.seq > order_seq) if late else (fl.c.seq <= order_seq),
                    )
                    .order_by(fl.c.seq)
                    .limit(exec_ids)
                )
            ]
            found.append(
                ForeignFills(
                    cid,
                    owner,
                    account,
                    instrument,
                    booked_to,
                    side,
                    position_side,
                    late,
                    total,
                    count,
                    ids,
                )
            )
        return found

    @_reading
    def overfilled_orders(self) -> list[OverfilledOrder]:
        fl, od = s.fills, s.orders
        keys = (od.c.client_order_id, od.c.account, od.c.instrument, od.c.strategy, od.c.quantity)
        source = fl.join(
            od, and_(od.c.client_order_id == fl.c.client_order_id, od.c.account == fl.c.account)
        )
        return [
            OverfilledOrder(cid, account, instrument, strategy, ordered, total, count)
            for (cid, account, instrument, strategy, ordered), total, count in self._sums(
                keys, fl.c.quantity, source, exceeding=4
            )
        ]

    @_reading
    def strategies_per_instrument(self) -> dict[tuple[str, str], list[str]]:
        fl = s.fills
        query = (
            select(fl.c.account, fl.c.instrument, fl.c.strategy)
            .where(fl.c.strategy != EXTERNAL)
            .distinct()
            .order_by(fl.c.account, fl.c.instrument, fl.c.strategy)
        )
        traders: dict[tuple[str, str], set[str]] = defaultdict(set)
        for account, instrument, strategy in self._rows(query):
            traders[(account, instrument)].add(strategy)
        return {key: sorted(names) for key, names in traders.items()}

    @_reading
    def external_slots(self) -> list[tuple[str, str, str, Decimal, Decimal | None]]:
        sl = s.slots
        query = (
            select(sl.c.account, sl.c.instrument, sl.c.position_side, sl.c.quantity, sl.c.avg_entry)
            .where(sl.c.strategy == EXTERNAL)
            .order_by(sl.c.account, sl.c.instrument, sl.c.position_side)
        )
        return [tuple(row) for row in self._rows(query)]

    # -- the invariants verify checks ---------------------------------------------------------

    @_reading
    def invariant_problems(self) -> list[str]:
        # On connections of their own, as before the split: SqlReads sets options on a
        # connection it is lent (yield_per, so server-side cursors) that would outlive
        # the call and break this transaction's next statement on PostgreSQL.
        return SqlReads(self.engine).invariant_problems()


def _key4(values: tuple[Any, ...]) -> SlotKey4:
    account, instrument, strategy, position_side = values
    return (account, instrument, strategy, position_side)
