"""The journal: numbering entries, writing them, reading them back.

SQLite numbers entries one after the other under its single write lock. On PostgreSQL and
MariaDB numbers come from a server sequence, drawn at the end of the transaction, holding
every lock it took and after every read it made: an entry whose decision saw another
entry is numbered after it, and a stream's entries are numbered in the order the stream's
lock was held, so replay in number order sees what each writer saw.
"""

from __future__ import annotations

from typing import Any

from ..domain.writeset import JournalEntry
from ..ports import JournalRow
from .backends import Backend
from .codec import journal_row
from .statements import Statements

__all__ = ["Journal"]

INSTRUMENT = "instrument:"


class Journal:
    def __init__(self, backend: Backend, statements: Statements) -> None:
        self.backend = backend
        self.sql = statements
        q = backend.placeholder
        self._version_sql = f"SELECT max(version) FROM journal WHERE stream = {q}"
        self._record_sql = f"SELECT input FROM journal WHERE seq = {q}"
        self._txid_sql = "SELECT seq, txid FROM journal WHERE seq IN "
        self._mark = q
        self._next: int | None = None

    def forget(self) -> None:
        """Drop what another writer's commit could make stale."""
        self._next = None

    def version(self, cursor: Any, stream: str) -> int:
        """The stream's version; on a server, with the stream's lock taken."""
        if self.backend.has_streams_table_locks:
            return self.backend.lock_stream(cursor, stream)
        cursor.execute(self._version_sql, (stream,))
        row = cursor.fetchone()
        return int(row[0] or 0)

    def number(self, cursor: Any, count: int) -> list[int]:
        """``count`` new journal numbers, in order."""
        if self.backend.has_streams_table_locks:
            return sorted(self.backend.allocate(cursor, "journal", count))
        if self._next is None:
            cursor.execute("SELECT max(seq) FROM journal")
            self._next = int(cursor.fetchone()[0] or 0) + 1
        first = self._next
        self._next += count
        return list(range(first, first + count))

    def write(
        self,
        cursor: Any,
        entries: list[tuple[JournalEntry, int, str | None]],
        txid: str | None,
    ) -> None:
        """Write ``entries``: each with its number and the key that sent it (or None)."""
        if not entries:
            return
        stamp = txid if self.backend.sets_txid else None
        params = [(*journal_row(entry, seq, stamp), key) for entry, seq, key in entries]
        if len(params) == 1:
            cursor.execute(self.sql.insert["journal"], params[0])
        else:
            cursor.executemany(self.sql.insert["journal"], params)

    def write_versions(self, cursor: Any, versions: dict[str, int]) -> None:
        """Servers keep each stream's last version in ``streams`` (its row is the lock)."""
        if versions and self.backend.has_streams_table_locks:
            cursor.executemany(
                self.sql.stream_version, [(version, stream) for stream, version in versions.items()]
            )

    def record(self, cursor: Any, seq: int) -> str:
        cursor.execute(self._record_sql, (seq,))
        row = cursor.fetchone()
        if row is None:
            raise KeyError(seq)
        return str(row[0])

    def committed(self, cursor: Any, txid: str, drawn: list[int]) -> list[int]:
        """Which of the numbers ``drawn`` for transaction ``txid`` are in the journal with
        its key: all of them if it committed, none if it did not (a server sequence never
        hands a number out twice)."""
        if not drawn:
            return []
        marks = ", ".join([self._mark] * len(drawn))
        cursor.execute(f"{self._txid_sql}({marks}) ORDER BY seq", drawn)
        return [int(seq) for seq, key in cursor.fetchall() if key == txid]


def journal_rows(rows: list[tuple[Any, ...]]) -> list[JournalRow]:
    """Rows of ``SELECT seq, stream, version, kind, recorded_at, input, effects, key_id``."""
    return [
        JournalRow(int(r[0]), r[1], int(r[2]), r[3], int(r[4]), str(r[5]), str(r[6]), r[7])
        for r in rows
    ]
