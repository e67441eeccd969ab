"""What differs between SQLite, PostgreSQL and MariaDB/MySQL for the writer.

The writer speaks SQL through the DBAPI driver; a backend says how that driver begins and
ends a transaction, how a writer takes the lock of one journal stream, how ids are
allocated, and which driver errors mean "try the transaction again".

Concurrency (see docs/deployment.md):

* SQLite has one writer at a time (``BEGIN IMMEDIATE``); ``PRAGMA data_version`` tells a
  writer that another connection committed, and its caches are dropped.
* On the servers every transaction runs at READ COMMITTED and takes a row lock on the
  ``streams`` row of each journal stream it appends to (``SELECT ... FOR UPDATE``). Writers
  on different instruments never wait for each other; writers on one instrument take
  turns, and each reads the stream's version under the lock, so a cached book is reused
  only if nobody else wrote to that stream since. Unique constraints (a fill's
  ``(account, exec_id)``, a journal ``(stream, version)``) catch the races the locks do
  not order, and the transaction is retried: the second attempt sees the winner's row
  and reports a duplicate.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from ..errors import DatabaseError
from ..ports import FATAL, RECONNECT, RETRY
from .database import Database

__all__ = ["Backend", "backend_for", "is_damage"]

LOCK_WAIT_SECONDS = 5
"""How long a server writer waits for a stream lock before the attempt counts as failed
and is retried (so a writer stuck behind a hung transaction gives up within a minute)."""


_SQLITE_DAMAGE = (11, 26)
"""SQLITE_CORRUPT ("database disk image is malformed") and SQLITE_NOTADB ("file is not a
database"): primary result codes, extended ones reduced to them."""
_POSTGRES_DAMAGE = ("XX001", "XX002")
"""data_corrupted, index_corrupted."""
_MARIADB_DAMAGE = (1194, 1195, 1712, 1817, 1877)
"""A table marked as crashed (and its repair failed), an index corrupted (in general and
InnoDB's), a table missing, corrupt or holding bad data."""


def is_damage(exc: BaseException) -> bool:
    """Whether a driver error (or SQLAlchemy's wrapper of one) says the database's storage
    is damaged: nothing retries that, and nothing more should be written (docs/doctor.md).
    The drivers are told apart by module so that none has to be installed."""
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException):
        exc = orig
    if isinstance(exc, sqlite3.DatabaseError):
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code & 0xFF in _SQLITE_DAMAGE
        text = str(exc)
        return "disk image is malformed" in text or "file is not a database" in text
    module = type(exc).__module__
    if module.startswith("psycopg"):
        return getattr(exc, "sqlstate", None) in _POSTGRES_DAMAGE
    if module.startswith("pymysql"):
        return bool(exc.args) and exc.args[0] in _MARIADB_DAMAGE
    return False


class Backend:
    """The SQLite flavour; servers override what differs."""

    placeholder = "?"
    has_streams_table_locks = False
    name = "sqlite"
    sets_txid = False
    """Whether journal entries carry their transaction's id: only where a commit's reply
    can be lost (a server connection), so that a retry can tell whether it happened."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def setup(self) -> None:
        """Per-connection settings, once after connecting."""

    def upsert(self, table: str, columns: tuple[str, ...], keys: tuple[str, ...]) -> str:
        """Insert a row, or replace the non-key columns of the row with the same key."""
        marks = ", ".join([self.placeholder] * len(columns))
        changed = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {changed}"
        )

    def insert_new(self, table: str, columns: tuple[str, ...], key: str) -> str:
        """Insert a row unless one with the same ``key`` (a unique column) exists."""
        marks = ", ".join([self.placeholder] * len(columns))
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
            f"ON CONFLICT ({key}) DO NOTHING"
        )

    def pipeline(self) -> AbstractContextManager[Any]:
        """Where the driver can, statements inside are sent without waiting for each
        one's reply: a transaction's writes and its COMMIT cost one round trip."""
        return nullcontext()

    def begin(self, cursor: Any) -> None:
        cursor.execute("BEGIN IMMEDIATE")

    def commit(self, cursor: Any) -> None:
        cursor.execute("COMMIT")

    def rollback(self, cursor: Any) -> None:
        cursor.execute("ROLLBACK")

    def data_version(self, cursor: Any) -> int | None:
        """A number that changes when another connection commits (None: not known)."""
        (version,) = cursor.execute("PRAGMA data_version").fetchone()
        return int(version)

    def lock_stream(self, cursor: Any, stream: str) -> int:
        raise NotImplementedError

    def lock_stream_with_fill(
        self, cursor: Any, stream: str, account: str, exec_id: str
    ) -> tuple[int, tuple[int, str] | None] | None:
        """:meth:`lock_stream` and the stored (seq, digest) of one fill, in one statement;
        None when the stream has no row yet."""
        raise NotImplementedError

    def allocate(self, cursor: Any, counter: str, count: int) -> list[int]:
        raise NotImplementedError

    def classify(self, exc: BaseException) -> str | None:
        """RETRY, RECONNECT, FATAL (a database error no retry cures), or None (not a
        database error). Damaged storage is FATAL on every backend (:func:`is_damage`)."""
        if is_damage(exc):
            return FATAL
        if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            return RETRY
        if isinstance(exc, sqlite3.IntegrityError):
            # A unique key another writer took first (a fill, a transfer id, a run name):
            # run again, the transaction sees the winner's row.
            return RETRY
        if isinstance(exc, sqlite3.Error):
            return FATAL
        return None


class PostgresBackend(Backend):
    placeholder = "%s"
    has_streams_table_locks = True
    name = "postgresql"
    sets_txid = True
    _pipeline: Any = None

    def setup(self) -> None:
        self.connection.autocommit = False
        self.connection.isolation_level = None  # the server's default: READ COMMITTED
        self.connection.execute(f"SET lock_timeout = '{LOCK_WAIT_SECONDS}s'")
        self.connection.commit()

    def pipeline(self) -> AbstractContextManager[Any]:
        return self.connection.pipeline()  # type: ignore[no-any-return]

    def begin(self, cursor: Any) -> None:
        """psycopg opens the transaction with the first statement; in pipeline mode its
        BEGIN travels with that statement instead of costing a round trip of its own (a
        statement whose rows are read waits for them, nothing else does)."""
        self._pipeline = self.connection.pipeline()
        self._pipeline.__enter__()

    def _end(self, commit: bool) -> None:
        """COMMIT or ROLLBACK, then leave the transaction's pipeline.

        In a pipeline the server skips everything after a failed statement up to the
        next sync, this COMMIT or ROLLBACK included: the transaction is then still open
        (aborted) when psycopg reports the failure, and leaving the pipeline reports
        "pipeline aborted" for each skipped statement. So on a failure the pipeline is
        left *with* that error (psycopg then keeps it, where leaving as if nothing had
        happened would raise "pipeline aborted" instead and hide it: a unique key another
        writer took first is a retry, not a lost connection), and the transaction is
        rolled back outside the pipeline. A ROLLBACK that only failed that way has
        done its work then; a failed COMMIT raises its error."""
        pipeline, self._pipeline = self._pipeline, None
        end = self.connection.commit if commit else self.connection.rollback
        if pipeline is None:
            end()
            return
        try:
            end()
        except BaseException as exc:
            pipeline.__exit__(type(exc), exc, exc.__traceback__)
            try:
                self.connection.rollback()
            except Exception:
                raise exc from None
            if commit or not isinstance(exc, Exception):
                raise
            return
        pipeline.__exit__(None, None, None)

    def commit(self, cursor: Any) -> None:
        self._end(commit=True)

    def rollback(self, cursor: Any) -> None:
        self._end(commit=False)

    def data_version(self, cursor: Any) -> int | None:
        return None

    def lock_stream(self, cursor: Any, stream: str) -> int:
        cursor.execute("SELECT version FROM streams WHERE stream = %s FOR UPDATE", (stream,))
        row = cursor.fetchone()
        if row is not None:
            return int(row[0])
        cursor.execute(
            "INSERT INTO streams (stream, version) VALUES (%s, 0) ON CONFLICT DO NOTHING",
            (stream,),
        )
        cursor.execute("SELECT version FROM streams WHERE stream = %s FOR UPDATE", (stream,))
        return int(cursor.fetchone()[0])

    def lock_stream_with_fill(
        self, cursor: Any, stream: str, account: str, exec_id: str
    ) -> tuple[int, tuple[int, str] | None] | None:
        cursor.execute(
            "WITH locked AS (SELECT version FROM streams WHERE stream = %s FOR UPDATE) "
            "SELECT locked.version, f.seq, f.digest FROM locked "
            "LEFT JOIN fills f ON f.account = %s AND f.exec_id = %s",
            (stream, account, exec_id),
        )
        return _locked_with_fill(cursor.fetchone())

    def allocate(self, cursor: Any, counter: str, count: int) -> list[int]:
        cursor.execute(f"SELECT nextval('{counter}_seq') FROM generate_series(1, %s)", (count,))
        return [int(row[0]) for row in cursor.fetchall()]

    def classify(self, exc: BaseException) -> str | None:
        import psycopg

        if is_damage(exc):
            return FATAL
        if isinstance(exc, psycopg.errors.PipelineAborted):
            # A statement before this one in the pipeline failed; the connection is
            # fine. The failure itself is what to classify, where psycopg kept it.
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, psycopg.Error) and cause is not exc:
                return self.classify(cause)
            return RETRY
        # Before the connection errors: psycopg files a deadlock, a lock timeout and a
        # serialization failure under OperationalError too, but the connection is fine.
        if isinstance(
            exc,
            psycopg.errors.UniqueViolation
            | psycopg.errors.DeadlockDetected
            | psycopg.errors.SerializationFailure
            | psycopg.errors.LockNotAvailable,
        ):
            return RETRY
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return RECONNECT
        if isinstance(exc, psycopg.Error):
            return FATAL
        return None


class MariaDbBackend(Backend):
    placeholder = "%s"
    has_streams_table_locks = True
    name = "mariadb"
    sets_txid = True

    def upsert(self, table: str, columns: tuple[str, ...], keys: tuple[str, ...]) -> str:
        # Only for tables whose one unique key is their primary key: MariaDB updates on a
        # conflict with *any* unique key.
        marks = ", ".join([self.placeholder] * len(columns))
        changed = ", ".join(f"{c} = VALUES({c})" for c in columns if c not in keys)
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
            f"ON DUPLICATE KEY UPDATE {changed}"
        )

    def insert_new(self, table: str, columns: tuple[str, ...], key: str) -> str:
        marks = ", ".join([self.placeholder] * len(columns))
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
            f"ON DUPLICATE KEY UPDATE {key} = {key}"
        )

    def setup(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            cursor.execute(f"SET SESSION innodb_lock_wait_timeout = {LOCK_WAIT_SECONDS}")
        self.connection.autocommit(False)

    def begin(self, cursor: Any) -> None:
        self.connection.begin()

    def commit(self, cursor: Any) -> None:
        self.connection.commit()

    def rollback(self, cursor: Any) -> None:
        self.connection.rollback()

    def data_version(self, cursor: Any) -> int | None:
        return None

    def lock_stream(self, cursor: Any, stream: str) -> int:
        cursor.execute("SELECT version FROM streams WHERE stream = %s FOR UPDATE", (stream,))
        row = cursor.fetchone()
        if row is not None:
            return int(row[0])
        cursor.execute("INSERT IGNORE INTO streams (stream, version) VALUES (%s, 0)", (stream,))
        cursor.execute("SELECT version FROM streams WHERE stream = %s FOR UPDATE", (stream,))
        return int(cursor.fetchone()[0])

    def lock_stream_with_fill(
        self, cursor: Any, stream: str, account: str, exec_id: str
    ) -> tuple[int, tuple[int, str] | None] | None:
        cursor.execute(
            "SELECT s.version, f.seq, f.digest FROM streams s "
            "LEFT JOIN fills f ON f.account = %s AND f.exec_id = %s "
            "WHERE s.stream = %s FOR UPDATE",
            (account, exec_id, stream),
        )
        return _locked_with_fill(cursor.fetchone())

    def allocate(self, cursor: Any, counter: str, count: int) -> list[int]:
        cursor.execute(f"SELECT NEXTVAL({counter}_seq) FROM seq_1_to_{int(count)}")
        return [int(row[0]) for row in cursor.fetchall()]

    def classify(self, exc: BaseException) -> str | None:
        import pymysql

        if is_damage(exc):
            return FATAL
        if isinstance(exc, pymysql.err.OperationalError):
            code = exc.args[0] if exc.args else 0
            # 1205 lock wait timeout, 1213 deadlock: the transaction can run again.
            return RETRY if code in (1205, 1213) else RECONNECT
        if isinstance(exc, pymysql.err.InterfaceError):
            return RECONNECT
        if isinstance(exc, pymysql.err.IntegrityError) and exc.args and exc.args[0] == 1062:
            return RETRY  # duplicate key
        if isinstance(exc, pymysql.err.MySQLError):
            return FATAL
        return None


def _locked_with_fill(row: Any) -> tuple[int, tuple[int, str] | None] | None:
    if row is None:
        return None
    version, seq, digest = row
    return int(version), (None if seq is None else (int(seq), digest))


def backend_for(database: Database, connection: Any) -> Backend:
    dialect = database.dialect
    if dialect == "sqlite":
        return Backend(connection)
    if dialect == "postgresql":
        return PostgresBackend(connection)
    if dialect in ("mysql", "mariadb"):
        if not getattr(database.engine.dialect, "is_mariadb", False):
            raise DatabaseError(
                "MySQL is not supported yet (posledger needs MariaDB 10.3+ sequences); "
                "use MariaDB or PostgreSQL"
            )
        return MariaDbBackend(connection)
    raise DatabaseError(f"posledger does not support {dialect} databases")
