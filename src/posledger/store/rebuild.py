"""Rewriting the projections from the journal, under the write lock, in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, insert, select, text

from . import schema as s
from .database import Database

__all__ = ["rewrite_projections"]

Rows = Mapping[str, Iterable[Mapping[str, Any]]]


def rewrite_projections(
    database: Database, produce: Callable[[Iterable[Mapping[str, Any]]], Rows]
) -> dict[str, int]:
    """Read the journal, let ``produce`` turn it into projection rows, store them.

    Holds the database's write lock from before the journal is read until the commit,
    so no input can land between the replay and the rewrite.
    """
    counts: dict[str, int] = {}
    with database.engine.connect() as conn, conn.begin():
        _lock(conn)
        query = select(s.journal).order_by(s.journal.c.seq).execution_options(yield_per=2000)
        journal = (dict(row._mapping) for row in conn.execute(query))
        tables = produce(journal)
        for table in reversed(s.PROJECTIONS):
            conn.execute(table.delete())
        for table in s.PROJECTIONS:
            rows = list(tables.get(table.name, ()))
            counts[table.name] = len(rows)
            for start in range(0, len(rows), 5000):
                conn.execute(insert(table), rows[start : start + 5000])
    return counts


def _lock(conn: Connection) -> None:
    """Keep every writer out until the rewrite commits."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        # A no-op write takes SQLite's write lock now rather than at the first DELETE.
        conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
    elif dialect == "postgresql":
        # Writers lock a stream row before they write: this waits for them and stops them.
        conn.execute(text("LOCK TABLE streams IN EXCLUSIVE MODE"))
    else:
        conn.execute(text("SELECT stream FROM streams FOR UPDATE"))
