"""A ledger database on SQLite, PostgreSQL or MariaDB, as the service sees it (a Store)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..ports import DamageMark, Inspection, KeyRow, Past, Reads, Store, SymbolRow, UnitOfWork
from . import damage
from . import schema as s
from .database import Database, open_database
from .inspection import inspecting
from .reads import SqlReads
from .unit_of_work import SqlUnitOfWork

__all__ = ["SqlStore"]


class SqlStore(Store):
    def __init__(self, database: Database, *, cleanup: Path | None = None) -> None:
        self.database = database
        self.display_url = database.display_url
        self._cleanup = cleanup

    @classmethod
    def scratch_sqlite(cls) -> SqlStore:
        """An empty ledger in a temporary SQLite file, removed when closed: where verify
        replays the journal (on disk, so that memory stays bounded)."""
        directory = Path(tempfile.mkdtemp(prefix="posledger-replay-"))
        # Nothing here needs to survive a crash: it is rebuilt from the journal.
        database = open_database(f"sqlite:///{directory / 'replay.db'}", durable=False)
        return cls(database, cleanup=directory)

    def unit_of_work(self) -> UnitOfWork:
        return SqlUnitOfWork(self.database)

    def replay_unit_of_work(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.database, replay=True)

    def reads(self) -> Reads:
        return SqlReads(self.database.engine)

    def scratch(self) -> Store:
        return SqlStore.scratch_sqlite()

    @contextmanager
    def snapshot(self) -> Iterator[Reads]:
        """Reads inside one read transaction: one state of the books while writers go on
        (REPEATABLE READ is a snapshot on PostgreSQL and InnoDB; an SQLite read transaction
        in WAL mode is one by nature)."""
        with self.database.engine.connect() as conn:
            if self.database.dialect != "sqlite":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin() as transaction:
                try:
                    yield SqlReads(self.database.engine, conn)
                finally:
                    transaction.rollback()

    def past(self, until_seq: int) -> Past:
        from . import checkpoints

        return checkpoints.restore(self.database, until_seq)

    def checkpoint(self, every: int, now: int) -> int | None:
        from . import checkpoints

        if self.database.read_only is not None:
            return None
        try:
            return checkpoints.take(self.database.engine, every, now)
        except Exception as exc:
            if checkpoints.passing(exc):  # a cache: the next commit that is due tries again
                return None
            raise

    def last_checkpoint(self) -> int | None:
        from . import checkpoints

        try:
            return checkpoints.last(self.database.engine)
        except Exception as exc:
            if checkpoints.passing(exc):  # not known now: as if none, tried again when due
                return 0
            raise

    @contextmanager
    def rebuilding(self) -> Iterator[UnitOfWork]:
        """A replay unit of work in a transaction that holds the database's write lock and
        has emptied every projection; committed by the caller, rolled back on error."""
        uow = SqlUnitOfWork(self.database, replay=True)
        try:
            uow.begin("rebuild")
            cursor = uow.cursor
            _lock(cursor, self.database.dialect)
            for table in (*reversed(s.PROJECTIONS), *s.CHECKPOINTS):
                cursor.execute(f"DELETE FROM {table.name}")
            yield uow
        finally:
            uow.close()

    @contextmanager
    def inspect(self) -> Iterator[Inspection]:
        with inspecting(self.database.engine, self.display_url) as inspection:
            yield inspection

    def mark_damaged(self, found_by: str, detail: str) -> bool:
        return damage.write_mark(self.database.engine, found_by, detail)

    def clear_damage(self) -> DamageMark | None:
        return damage.clear_mark(self.database.engine)

    def unready(self) -> str | None:
        from .database import schema_revision

        try:
            revision, _ = schema_revision(self.database.engine)
        except Exception as exc:  # unreachable, refused: say what the driver said
            return f"{self.display_url}: {exc}"
        if revision != s.SCHEMA_REVISION:
            return (
                f"{self.display_url} has schema revision {revision}, not "
                f"{s.SCHEMA_REVISION}: run `posledger migrate`"
            )
        return None

    def add_key(self, key: KeyRow) -> None:
        with self.database.engine.begin() as conn:
            conn.execute(insert(s.api_keys).values(**key._asdict()))

    def api_keys(self) -> list[KeyRow]:
        table = s.api_keys
        with self.database.engine.connect() as conn:
            rows = conn.execute(select(table).order_by(table.c.created_at, table.c.key_id))
            return [KeyRow(**row._asdict()) for row in rows]

    def key(self, key_id: str) -> KeyRow | None:
        table = s.api_keys
        with self.database.engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.key_id == key_id)).first()
        return None if row is None else KeyRow(**row._asdict())

    def revoke_key(self, key_id: str, now: int) -> KeyRow | None:
        table = s.api_keys
        with self.database.engine.begin() as conn:
            conn.execute(
                update(table)
                .where(table.c.key_id == key_id, table.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            row = conn.execute(select(table).where(table.c.key_id == key_id)).first()
        return None if row is None else KeyRow(**row._asdict())

    def add_symbol(self, row: SymbolRow) -> SymbolRow:
        try:
            with self.database.engine.begin() as conn:
                conn.execute(insert(s.symbols).values(**row._asdict()))
            return row
        except IntegrityError:  # there already, perhaps just added by another process
            found = self._symbol(row.venue, row.account, row.symbol)
            if found is None:
                raise
            return found

    def _symbol(self, venue: str, account: str, symbol: str) -> SymbolRow | None:
        t = s.symbols
        query = select(t).where(t.c.venue == venue, t.c.account == account, t.c.symbol == symbol)
        with self.database.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else SymbolRow(**row._asdict())

    def symbols(self, venue: str | None = None) -> list[SymbolRow]:
        t = s.symbols
        query = select(t).order_by(t.c.venue, t.c.account, t.c.symbol)
        if venue is not None:
            query = query.where(t.c.venue == venue)
        with self.database.engine.connect() as conn:
            return [SymbolRow(**row._asdict()) for row in conn.execute(query)]

    def remove_symbol(self, venue: str, account: str, symbol: str) -> SymbolRow | None:
        t = s.symbols
        where = (t.c.venue == venue, t.c.account == account, t.c.symbol == symbol)
        with self.database.engine.begin() as conn:
            row = conn.execute(select(t).where(*where).with_for_update()).first()
            if row is None:
                return None
            conn.execute(delete(t).where(*where))
        return SymbolRow(**row._asdict())

    def venue_state(self, venue: str) -> str | None:
        table = s.paper_venues
        with self.database.engine.connect() as conn:
            found = conn.execute(select(table.c.state).where(table.c.venue == venue)).first()
        return None if found is None else str(found[0])

    def save_venue_state(self, venue: str, state: str, now: int) -> None:
        table = s.paper_venues
        with self.database.engine.begin() as conn:
            changed = conn.execute(
                update(table).where(table.c.venue == venue).values(state=state, updated_at=now)
            )
            if not changed.rowcount:
                conn.execute(insert(table).values(venue=venue, state=state, updated_at=now))

    def close(self) -> None:
        self.database.dispose()
        if self._cleanup is not None:
            for path in sorted(self._cleanup.glob("*")):
                path.unlink(missing_ok=True)
            self._cleanup.rmdir()
            self._cleanup = None


def _lock(cursor: object, dialect: str) -> None:
    """Keep every writer out until the rewrite commits."""
    execute = cursor.execute  # type: ignore[attr-defined]
    if dialect == "sqlite":
        return  # BEGIN IMMEDIATE holds SQLite's write lock already
    if dialect == "postgresql":
        # Writers lock a stream row before they write: this waits for them and stops them.
        execute("LOCK TABLE streams IN EXCLUSIVE MODE")
    else:
        execute("SELECT stream FROM streams FOR UPDATE")
