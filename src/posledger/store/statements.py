"""The SQL the writer sends, spelt once per database from the schema's tables.

Rows are tuples in the column order of :data:`~.codec.COLUMNS`; every statement here takes
them as they are (or, for updates, reordered by :attr:`Statements.trade_open` and friends).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

from . import schema as s
from .backends import Backend
from .codec import COLUMNS, KEYED

__all__ = ["Statements", "Update"]


class Update:
    """``UPDATE table SET columns WHERE key``, with the row reordered to fit."""

    def __init__(self, backend: Backend, table: str, columns: tuple[str, ...], key: str) -> None:
        mark = backend.placeholder
        sets = ", ".join(f"{name} = {mark}" for name in columns)
        self.sql = f"UPDATE {table} SET {sets} WHERE {key} = {mark}"
        order = COLUMNS[table]
        self.params: Callable[[tuple[Any, ...]], tuple[Any, ...]] = itemgetter(
            *(order.index(name) for name in (*columns, key))
        )


class Statements:
    def __init__(self, backend: Backend) -> None:
        mark = backend.placeholder
        self.insert: dict[str, str] = {}
        for table, columns in COLUMNS.items():
            marks = ", ".join([mark] * len(columns))
            self.insert[table] = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
        self.upsert = {
            table: backend.upsert(table, COLUMNS[table], keys)
            for table, keys in KEYED.items()
            if table != "trades"
        }
        # Trades are inserted when opened and updated after (an upsert on MariaDB would
        # update on a clash of the one-open-trade-per-slot key instead of refusing it).
        # Only what changes is updated, so that an open trade's update touches no index.
        self.trade_open = Update(backend, "trades", s.TRADE_MUTABLE_OPEN, "trade_id")
        self.trade_close = Update(backend, "trades", s.TRADE_MUTABLE_CLOSE, "trade_id")
        self.delete = {
            table: f"DELETE FROM {table} WHERE " + " AND ".join(f"{name} = {mark}" for name in keys)
            for table, keys in KEYED.items()
        }
        """Of a keyed row, given its key in the order of :data:`~.codec.KEYED`."""
        self.rejected = backend.insert_new("rejected_inputs", COLUMNS["rejected_inputs"], "digest")
        self.stream_version = f"UPDATE streams SET version = {mark} WHERE stream = {mark}"
