"""Writing projection rows: each row once per transaction, one ``executemany`` per table.

The changes staged in a transaction are turned into rows by :func:`~.codec.rows` once the
journal numbers are known. Rows of a keyed table (slots, trades, orders...) are written
once, in their last state; the others are appended. Tables are written in an order that
keeps every constraint true at each statement: a flip closes its old trade before the new
one takes the slot's one open-trade key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..domain.writeset import Change
from . import codec
from .codec import KEY_OF, Row, rows
from .statements import Statements

__all__ = ["Projections"]

_REGISTERED = ("accounts", "instruments", "strategies", "orders")
_KEYED_LATER = ("slots", "marks")
_DELETABLE = ("halts", "brackets", "exits")
"""Keyed tables whose rows a change may delete (a lifted halt, an ended bracket...)."""
_APPENDED_LAST = (
    "trade_fills",
    "anomalies",
    "transfers",
    "adjustments",
    "reconciliation_checks",
    "reconciliation_runs",
)


class Projections:
    def __init__(self, statements: Statements) -> None:
        self.sql = statements
        self.stored_trades: set[int] = set()
        """Trades known to have a row (loaded open, or written by this writer)."""

    def forget(self) -> None:
        self.stored_trades.clear()

    def write(self, cursor: Any, staged: Iterable[tuple[Change, int | None]]) -> None:
        latest: dict[str, dict[Any, tuple[Change, int | None]]] = {}
        appended: dict[str, list[Row]] = {}
        for change, seq in staged:
            keyed_by = KEY_OF.get(type(change))
            if keyed_by is not None:
                table, key_of = keyed_by
                found = latest.get(table)
                if found is None:
                    found = latest[table] = {}
                found[key_of(change)] = (change, seq)
                continue
            for table, _, built in rows(change, seq):
                assert built is not None  # only a keyed row is ever deleted
                rows_of = appended.get(table)
                if rows_of is None:
                    appended[table] = [built]
                else:
                    rows_of.append(built)
        keyed = {
            table: {key: codec.row(change, seq) for key, (change, seq) in changes.items()}
            for table, changes in latest.items()
        }
        sql = self.sql
        for table in _REGISTERED:  # new rows first, then changes to them
            if table in appended:
                _many(cursor, sql.insert[table], appended[table])
        for table in _REGISTERED:
            if table in keyed:
                _many(cursor, sql.upsert[table], keyed[table].values())
        if "fills" in appended:
            _many(cursor, sql.insert["fills"], appended["fills"])
        for table in _DELETABLE:
            rows_of_table = keyed.get(table)
            if rows_of_table:
                gone = [key for key, row in rows_of_table.items() if row is None]
                kept = [row for row in rows_of_table.values() if row is not None]
                _many(cursor, sql.delete[table], gone)
                _many(cursor, sql.upsert[table], kept)
        if "trades" in keyed:
            self._trades(cursor, keyed["trades"])
        for table in _KEYED_LATER:
            if table in keyed:
                _many(cursor, sql.upsert[table], keyed[table].values())
        for table in _APPENDED_LAST:
            if table in appended:
                _many(cursor, sql.insert[table], appended[table])
        if "rejected_inputs" in appended:
            _many(cursor, sql.rejected, appended["rejected_inputs"])

    def _trades(self, cursor: Any, trades: dict[Any, Row | None]) -> None:
        if not trades:
            return
        stored = self.stored_trades
        still_open: list[tuple[Any, ...]] = []
        closing: list[tuple[Any, ...]] = []
        new: list[Row] = []
        sql = self.sql
        for trade_id, row in trades.items():
            assert row is not None
            is_open = row[9] is None  # closed_at
            if trade_id not in stored:
                new.append(row)
            elif is_open:
                still_open.append(sql.trade_open.params(row))
            else:
                closing.append(sql.trade_close.params(row))
        # Close before insert: a flip's new trade takes the open slot its old one frees.
        _many(cursor, sql.trade_open.sql, still_open)
        _many(cursor, sql.trade_close.sql, closing)
        _many(cursor, sql.insert["trades"], new)
        for trade_id, row in trades.items():
            assert row is not None
            if row[9] is None:
                stored.add(trade_id)
            else:
                stored.discard(trade_id)


def _many(cursor: Any, sql: str, params: Iterable[Any]) -> None:
    batch = params if isinstance(params, list) else list(params)
    if len(batch) == 1:
        cursor.execute(sql, batch[0])
    elif batch:
        cursor.executemany(sql, batch)
