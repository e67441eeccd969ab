"""The read side: plain queries over the projections, rows out as dicts of domain values.

Amounts come back as canonical Decimals on every database (the schema's ``Amount`` type).
A :class:`SqlReads` either opens a connection per query, or (``connection=``) reads
everything through one connection, inside the caller's read transaction: one snapshot of
the books while writers go on.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import (
    Connection,
    Engine,
    Float,
    Select,
    String,
    Table,
    and_,
    case,
    cast,
    func,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError

from ..domain.enums import PositionMode, PositionSide, Side
from ..domain.exits import Bracket, ExitOrder
from ..domain.invariants import Position3, check_invariants, fill_delta
from ..domain.numbers import exact
from ..domain.positions import Slot
from ..domain.refdata import Instrument, Strategy
from ..ports import CommandRow, Filters, JournalRow, Reads, Window
from . import codec
from . import schema as s
from .journal import journal_rows
from .outbox import command_from_row

__all__ = ["SqlReads"]

_OUTBOX = [c.name for c in s.outbox.columns]
PROJECTIONS = {
    table.name: tuple(column.name for column in table.primary_key.columns)
    for table in s.PROJECTIONS
}
"""Each projection's key columns, in the order the tables are rewritten."""
TABLES = {table.name: table for table in s.metadata.sorted_tables}


def _filtered(query: Select[Any], table: Table, filters: Filters) -> Select[Any]:
    for name, value in filters.items():
        if value is None:
            continue
        if name == "mode":
            # LIVE, SIM and PAPER accounts side by side: a mode is the accounts it has.
            accounts = select(s.accounts.c.account).where(s.accounts.c.mode == value)
            query = query.where(table.c.account.in_(accounts))
        else:
            query = query.where(table.c[name] == value)
    return query


_PG_RUNNING = (
    "SELECT CAST(CAST(x AS text) AS bigint) FROM pg_snapshot_xip(pg_current_snapshot()) AS x"
)
_INNODB_RUNNING = re.compile(r"^---TRANSACTION (\d+), ACTIVE", re.MULTILINE)
"""A read-write transaction in the InnoDB monitor's list (read-only ones have no number)."""


def _cannot_tell(dialect: str, exc: DBAPIError) -> bool:
    """Whether ``exc`` says the server will not list its transactions to this user
    (MariaDB without the PROCESS privilege) or has no way to (PostgreSQL before 13)."""
    if dialect == "postgresql":
        return getattr(exc.orig, "sqlstate", None) == "42883"  # no such function
    args: tuple[Any, ...] = getattr(exc.orig, "args", ())
    return bool(args) and args[0] in (1227, 1142)  # access denied


_PAGE = 1000
"""Rows a listing fetches from the database at a time."""


class SqlReads(Reads):
    def __init__(self, engine: Engine, connection: Connection | None = None) -> None:
        self.engine = engine
        self.connection = connection

    def _connect(self) -> AbstractContextManager[Connection]:
        if self.connection is not None:
            return nullcontext(self.connection)
        return self.engine.connect()

    def _rows(self, query: Select[Any]) -> list[dict[str, Any]]:
        with self._connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def slots(self, filters: Filters, include_flat: bool) -> list[dict[str, Any]]:
        sl = s.slots
        query = self._slots_query()
        rows = self._rows(_filtered(query, sl, filters))
        if not include_flat:
            rows = [row for row in rows if row["quantity"]]
        return rows

    def _slots_query(self) -> Select[Any]:
        sl, tr, mk = s.slots, s.trades, s.marks
        return (
            select(
                sl,
                tr.c.realized_pnl,
                tr.c.commissions,
                tr.c.pnl_currency,
                mk.c.price.label("mark_price"),
                mk.c.ts.label("mark_ts"),
                s.instruments.c.multiplier,
                s.instruments.c.inverse,
                s.instruments.c.settlement_currency,
            )
            .join(tr, tr.c.trade_id == sl.c.trade_id, isouter=True)
            .join(mk, mk.c.instrument == sl.c.instrument, isouter=True)
            .join(s.instruments, s.instruments.c.instrument == sl.c.instrument)
            .order_by(sl.c.account, sl.c.instrument, sl.c.strategy, sl.c.position_side)
        )

    def trades(self, filters: Filters, status: str | None = None) -> list[dict[str, Any]]:
        """Trades in the order they were opened: by the journal number of their first fill
        (trade ids are unique but, with several writers, not allocated in that order)."""
        tr, tf = s.trades, s.trade_fills
        opened = select(func.min(tf.c.seq)).where(tf.c.trade_id == tr.c.trade_id).scalar_subquery()
        query = _filtered(select(tr).order_by(opened, tr.c.trade_id), tr, filters)
        if status is not None:
            query = query.where(tr.c.status == status)
        return self._rows(query)

    def trade_fills(self, trade_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        tf = s.trade_fills
        result: dict[int, list[dict[str, Any]]] = {trade_id: [] for trade_id in trade_ids}
        for start in range(0, len(trade_ids), 500):
            chunk = trade_ids[start : start + 500]
            query = (
                select(tf)
                .where(tf.c.trade_id.in_(chunk))
                .order_by(tf.c.trade_id, tf.c.seq, tf.c.leg)
            )
            for row in self._rows(query):
                result[row["trade_id"]].append(row)
        return result

    def pnl_legs(
        self, filters: Filters, since: int | None, until: int | None, chunk: int = 5000
    ) -> Iterator[tuple[Any, ...]]:
        """Every trade-fill leg stamped in ``[since, until)`` (docs/pnl.md), streamed
        ``chunk`` rows at a time: ``(strategy, account, mode, instrument, pnl_currency, ts,
        realized, commission, commission_currency)``. Filters apply to the leg's trade."""
        tf, tr, ac = s.trade_fills, s.trades, s.accounts
        query: Select[Any] = (
            select(
                tr.c.strategy,
                tf.c.account,
                ac.c.mode,
                tr.c.instrument,
                tr.c.pnl_currency,
                tf.c.ts,
                tf.c.realized,
                tf.c.commission,
                tf.c.commission_currency,
            )
            .join(tr, tr.c.trade_id == tf.c.trade_id)
            .join(ac, ac.c.account == tf.c.account)
        )
        query = _filtered(query, tr, filters)
        if since is not None:
            query = query.where(tf.c.ts >= since)
        if until is not None:
            query = query.where(tf.c.ts < until)
        return self._tuples(query, chunk)

    def closed_trades(
        self, filters: Filters, since: int | None, until: int | None, chunk: int = 5000
    ) -> Iterator[dict[str, Any]]:
        """Closed trades whose ``closed_at`` is in ``[since, until)``, in close order (then
        by trade id), streamed ``chunk`` rows at a time."""
        tr = s.trades
        query = _filtered(select(tr).where(tr.c.status == "closed"), tr, filters)
        if since is not None:
            query = query.where(tr.c.closed_at >= since)
        if until is not None:
            query = query.where(tr.c.closed_at < until)
        return self._stream(query.order_by(tr.c.closed_at, tr.c.trade_id), chunk)

    def rejected(self) -> list[dict[str, Any]]:
        table = s.rejected_inputs
        return self._rows(select(table).order_by(table.c.id))

    def anomalies(self, filters: Filters) -> list[dict[str, Any]]:
        table = s.anomalies
        query = select(table).order_by(table.c.seq, table.c.idx)
        return self._rows(_filtered(query, table, filters))

    def projections(self) -> dict[str, tuple[str, ...]]:
        return dict(PROJECTIONS)

    # -- listings, streamed ---------------------------------------------------------------

    def _order_by(self, column: Any, descending: bool) -> list[Any]:
        """ORDER BY terms for ``column``: absent values last either way; amounts by value
        (SQLite keeps them as text: compared as REAL there, to about 15 digits)."""
        key = column
        if isinstance(column.type, s.Amount) and self.engine.dialect.name == "sqlite":
            key = cast(column, Float)
        terms: list[Any] = []
        if column.nullable:
            terms.append(case((column.is_(None), 1), else_=0))
        terms.append(key.desc() if descending else key)
        return terms

    def _windowed(
        self, query: Select[Any], table: Any, window: Window, own_order: list[Any]
    ) -> Select[Any]:
        if window.time is not None:
            column = table.c[window.time]
            if window.since is not None:
                query = query.where(column >= window.since)
            if window.until is not None:
                query = query.where(column < window.until)
        order: list[Any] = []
        for name, descending in window.sort:
            order += self._order_by(table.c[name], descending)
        return query.order_by(*order, *own_order)

    def _stream(self, query: Select[Any], page: int = _PAGE) -> Iterator[dict[str, Any]]:
        names = [column.name for column in query.selected_columns]
        for row in self._tuples(query, page):
            yield dict(zip(names, row, strict=True))

    def _tuples(self, query: Select[Any], page: int = _PAGE) -> Iterator[tuple[Any, ...]]:
        """The rows of ``query`` as tuples, fetched ``page`` at a time (a server-side
        cursor on PostgreSQL and MariaDB)."""
        with self._connect() as conn:
            result = conn.execute(query.execution_options(yield_per=page))
            try:
                for row in result:
                    yield tuple(row)
            finally:
                result.close()

    def listing(
        self, name: str, filters: Filters, window: Window, **options: Any
    ) -> Iterator[dict[str, Any]]:
        rows = self._listing_rows(name, filters, window, **options)
        if name == "slots" and not options.get("include_flat"):
            rows = (row for row in rows if row["quantity"])
        if window.limit is None:
            yield from rows
            return
        if window.limit <= 0:
            return
        for count, row in enumerate(rows, 1):
            yield row
            if count >= window.limit:
                break

    def _listing_rows(
        self, name: str, filters: Filters, window: Window, **options: Any
    ) -> Iterator[dict[str, Any]]:
        if name == "trades":
            return self._trade_listing(
                filters, window, options.get("status"), bool(options.get("with_fills"))
            )
        if name == "slots":
            sl = s.slots
            query = self._slots_query().order_by(None)
            keys = [sl.c.account, sl.c.instrument, sl.c.strategy, sl.c.position_side]
            return self._stream(self._windowed(_filtered(query, sl, filters), sl, window, keys))
        if name == "anomalies":
            table = s.anomalies
            query = _filtered(select(table), table, filters)
            return self._stream(self._windowed(query, table, window, [table.c.seq, table.c.idx]))
        if name == "rejected":
            table = s.rejected_inputs
            return self._stream(self._windowed(select(table), table, window, [table.c.id]))
        if name == "transfers":
            table = s.transfers
            query = _filtered(select(table), table, filters)
            return self._stream(self._windowed(query, table, window, [table.c.seq]))
        return super().listing(name, filters, window, **options)

    def _trade_listing(
        self, filters: Filters, window: Window, status: str | None, with_fills: bool
    ) -> Iterator[dict[str, Any]]:
        """Trades with (``with_fills``) their legs: one statement, trades and legs joined,
        read a page at a time and put back together trade by trade."""
        tr = s.trades
        first = s.trade_fills.alias("first_leg")
        opened = (
            select(func.min(first.c.seq)).where(first.c.trade_id == tr.c.trade_id).scalar_subquery()
        )
        own = [opened, tr.c.trade_id]
        if not with_fills:
            query = _filtered(select(tr), tr, filters)
            if status is not None:
                query = query.where(tr.c.status == status)
            yield from self._stream(self._windowed(query, tr, window, own))
            return
        tf = s.trade_fills
        legs = [c.label(f"leg_{c.name}") for c in tf.columns]
        query = _filtered(select(tr, *legs), tr, filters).join(
            tf, tf.c.trade_id == tr.c.trade_id, isouter=True
        )
        if status is not None:
            query = query.where(tr.c.status == status)
        query = self._windowed(query, tr, window, [*own, tf.c.seq, tf.c.leg])
        trade_names = [c.name for c in tr.columns]
        leg_names = [c.name for c in tf.columns]
        split = len(trade_names)
        key = trade_names.index("trade_id")
        trade: dict[str, Any] | None = None
        current = None
        for row in self._tuples(query):
            if trade is None or row[key] != current:
                if trade is not None:
                    yield trade
                current = row[key]
                trade = dict(zip(trade_names, row[:split], strict=True))
                trade["fills"] = []
            if row[split] is not None:  # a trade without legs: the outer join's NULLs
                trade["fills"].append(dict(zip(leg_names, row[split:], strict=True)))
        if trade is not None:
            yield trade

    def counts(self) -> dict[str, int]:
        with self._connect() as conn:
            return {
                name: int(conn.execute(select(func.count()).select_from(TABLES[name])).scalar_one())
                for name in PROJECTIONS
            }

    def table(self, name: str) -> Iterator[dict[str, Any]]:
        """Every row of a table in primary-key order (for verify), a page at a time. Text
        keys sort by code point on every database (binary collation), as Python sorts."""
        table = TABLES[name]
        order: list[Any] = [
            column.collate("C")
            if isinstance(column.type, String) and self.engine.dialect.name == "postgresql"
            else column
            for column in table.primary_key.columns
        ]
        with self._connect() as conn:
            # Per statement: on a connection lent for a snapshot, yield_per on the connection
            # would stay on for every later statement.
            query = select(table).order_by(*order).execution_options(yield_per=2000)
            result = conn.execute(query)
            for row in result:
                yield dict(row._mapping)

    def last_seq_at(self, recorded_at: int) -> int:
        jr = s.journal
        query = select(func.max(jr.c.seq)).where(jr.c.recorded_at <= recorded_at)
        with self._connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def journal(self, after_seq: int = 0, limit: int | None = None) -> list[JournalRow]:
        jr = s.journal
        query = (
            select(jr.c.seq, jr.c.stream, jr.c.version, jr.c.kind, jr.c.recorded_at)
            .add_columns(jr.c.input, jr.c.effects, jr.c.key_id)
            .where(jr.c.seq > after_seq)
            .order_by(jr.c.seq)
        )
        if limit is not None:
            query = query.limit(limit)
        with self._connect() as conn:
            return journal_rows([tuple(row) for row in conn.execute(query)])

    def journal_end(self) -> int:
        with self._connect() as conn:
            return int(conn.execute(select(func.max(s.journal.c.seq))).scalar() or 0)

    def journal_writers(self) -> frozenset[int] | None:
        dialect = self.engine.dialect.name
        if dialect == "sqlite":
            return frozenset()  # one writer at a time, numbering under its lock
        try:
            with self._connect() as conn:
                if dialect == "postgresql":
                    # The transactions running now that hold an id: every writer does,
                    # from the first stream lock it takes, before it draws its numbers.
                    rows = conn.execute(text(_PG_RUNNING))
                    return frozenset(int(row[0]) for row in rows)
                # InnoDB's read-write transactions running now: a writer is one from its
                # first stream lock on. (Its INNODB_TRX table would not do: a cache that
                # is refreshed only when nobody read it for 0.1 s.)
                status = str(conn.execute(text("SHOW ENGINE INNODB STATUS")).one()[2])
        except DBAPIError as exc:
            if _cannot_tell(dialect, exc):
                return None
            raise
        listed = status.partition("LIST OF TRANSACTIONS FOR EACH SESSION:")[2]
        if not listed or "truncated" in listed:
            return None
        return frozenset(int(trx) for trx in _INNODB_RUNNING.findall(listed))

    def owner(self, what: Literal["order", "command"], key: str) -> str | None:
        table, column = (
            (s.orders, "client_order_id") if what == "order" else (s.outbox, "command_id")
        )
        with self._connect() as conn:
            found = conn.execute(
                select(table.c.strategy).where(table.c[column] == key)
            ).scalar_one_or_none()
        return None if found is None else str(found)

    def commands(self, status: str | None = None, limit: int | None = None) -> list[CommandRow]:
        ob = s.outbox
        query = select(*(ob.c[name] for name in _OUTBOX)).order_by(ob.c.seq, ob.c.command_id)
        if status is not None:
            query = query.where(ob.c.status == status)
        if limit is not None:
            query = query.limit(limit)
        with self._connect() as conn:
            return [command_from_row(tuple(row)) for row in conn.execute(query)]

    def reconciliation_checks(
        self, filters: Filters, run: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Reconciliation checks, newest run first (``limit`` runs), keys in order."""
        table = s.reconciliation_checks
        query = _filtered(select(table), table, filters)
        if run is not None:
            query = query.where(table.c.run == run)
        elif limit is not None:
            runs = (
                select(table.c.run, func.max(table.c.seq).label("last"))
                .group_by(table.c.run)
                .order_by(func.max(table.c.seq).desc())
                .limit(limit)
            )
            picked = [row["run"] for row in self._rows(_filtered(runs, table, filters))]
            query = query.where(table.c.run.in_(picked))
        return self._rows(query.order_by(table.c.seq.desc()))

    def halts(self, filters: Filters) -> list[dict[str, Any]]:
        table = s.halts
        query = select(table).order_by(table.c.account, table.c.instrument)
        return self._rows(_filtered(query, table, filters))

    def open_slots(self, filters: Filters) -> list[Slot]:
        table = s.slots
        keys = [table.c[name] for name in ("account", "instrument", "strategy", "position_side")]
        query = _filtered(select(table).order_by(*keys), table, filters)
        found = [codec.slot_from_row(row) for row in self._rows(query)]
        return [slot for slot in found if slot.quantity]

    # -- what the service's metrics read (docs/service.md, Metrics) ----------------------

    def tally(self, name: str, by: tuple[str, ...]) -> dict[tuple[Any, ...], int]:
        table = TABLES[name]
        columns = [table.c[column] for column in by]
        query = select(*columns, func.count()).group_by(*columns)
        with self._connect() as conn:
            return {tuple(row[:-1]): int(row[-1]) for row in conn.execute(query)}

    def closed_trade_figures(self, chunk: int = 5000) -> Iterator[tuple[Any, ...]]:
        tr, ins = s.trades, s.instruments
        query = (
            select(
                tr.c.account,
                tr.c.instrument,
                tr.c.strategy,
                tr.c.position_side,
                tr.c.opened_at,
                tr.c.closed_at,
                tr.c.peak_quantity,
                tr.c.avg_entry,
                tr.c.avg_exit,
                tr.c.gross_realized,
                tr.c.realized_pnl,
                tr.c.realized_return,
                ins.c.multiplier,
                ins.c.inverse,
            )
            .join(ins, ins.c.instrument == tr.c.instrument)
            .where(tr.c.status == "closed")
        )
        return self._tuples(query, chunk)

    def oldest_command(self, statuses: tuple[str, ...]) -> int | None:
        ob = s.outbox
        query = select(func.min(ob.c.created_at)).where(ob.c.status.in_(statuses))
        with self._connect() as conn:
            found = conn.execute(query).scalar()
        return None if found is None else int(found)

    def latest_reconciliations(self) -> list[tuple[str, str, str, int, int]]:
        rc = s.reconciliation_checks
        newest = (
            select(rc.c.account, func.max(rc.c.seq).label("seq")).group_by(rc.c.account).subquery()
        )
        latest = (
            select(rc.c.account, rc.c.run)
            .join(newest, and_(rc.c.account == newest.c.account, rc.c.seq == newest.c.seq))
            .subquery()
        )
        query = (
            select(rc.c.account, rc.c.run, rc.c.kind, func.count(), func.max(rc.c.ts))
            .join(latest, and_(rc.c.account == latest.c.account, rc.c.run == latest.c.run))
            .group_by(rc.c.account, rc.c.run, rc.c.kind)
            .order_by(rc.c.account, rc.c.kind)
        )
        with self._connect() as conn:
            return [
                (str(account), str(run), str(kind), int(checks), int(ts))
                for account, run, kind, checks, ts in conn.execute(query)
            ]

    def reference(self) -> tuple[dict[str, Instrument], dict[str, Strategy]]:
        instruments = [codec.instrument_from_row(row) for row in self._rows(select(s.instruments))]
        strategies = [codec.strategy_from_row(row) for row in self._rows(select(s.strategies))]
        return (
            {found.instrument: found for found in instruments},
            {found.strategy: found for found in strategies},
        )

    def brackets(self, filters: Filters) -> list[Bracket]:
        table = s.brackets
        keys = [table.c[name] for name in ("account", "instrument", "strategy", "position_side")]
        query = _filtered(select(table).order_by(*keys), table, filters)
        return [codec.bracket_from_row(row) for row in self._rows(query)]

    def exits(self, filters: Filters) -> list[ExitOrder]:
        table = s.exits
        keys = [table.c[name] for name in ("account", "instrument", "strategy", "position_side")]
        query = _filtered(select(table).order_by(*keys, table.c.client_order_id), table, filters)
        return [codec.exit_from_row(row) for row in self._rows(query)]

    def transfers(self, filters: Filters) -> list[dict[str, Any]]:
        table = s.transfers
        return self._rows(_filtered(select(table).order_by(table.c.seq), table, filters))

    def invariant_problems(self) -> list[str]:
        with exact():
            instruments = {
                r["instrument"]: codec.instrument_from_row(r) for r in self.table("instruments")
            }
            hedge = {
                r["account"]
                for r in self.table("accounts")
                if r["position_mode"] == PositionMode.HEDGE.value
            }
            net: dict[Position3, Decimal] = defaultdict(Decimal)
            for r in self.table("fills"):
                where = (r["account"], r["instrument"], PositionSide(r["position_side"]))
                net[where] += fill_delta(
                    Side(r["side"]),
                    r["quantity"],
                    r["commission"],
                    r["commission_currency"],
                    instruments[r["instrument"]],
                )
            for r in self.table("adjustments"):
                where = (r["account"], r["instrument"], PositionSide(r["position_side"]))
                net[where] += r["quantity"]
            slots = [codec.slot_from_row(r) for r in self.table("slots")]
            open_trades = [
                codec.trade_from_row(r) for r in self.table("trades") if r["status"] == "open"
            ]
            return check_invariants(slots, open_trades, net, hedge)
