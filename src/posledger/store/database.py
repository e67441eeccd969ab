"""Opening a database: where it is, whether it may be created, the schema version check.

The rules (``docs/deployment.md``, "Opening and migrating"):

* ``create=True`` (writers; the default) creates an SQLite file, or the schema in an empty
  server database, on first use. ``create=False`` (readers) refuses, creating and changing
  nothing, a file that does not exist or a database with no posledger schema.
* An in-memory SQLite URL keeps nothing once its process ends: ``persistent=True`` (the
  command line) refuses it with a :class:`UsageError`.
* A reader opens an SQLite file it may not write (or whose directory it may not write)
  read-only; a writer is refused with a :class:`DatabaseError` naming the file and the
  permission that is missing.
* Creating or upgrading the schema can be killed at any instant and run again: SQLite and
  PostgreSQL roll the whole upgrade back, and on MariaDB, whose DDL commits statement by
  statement, every migration step checks what exists before it acts
  (``migrations/steps.py``) and a schema whose creation was interrupted is finished, not
  taken for a foreign one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ..errors import DatabaseError, DatabaseNotFound, SchemaError, UsageError
from .schema import SCHEMA_REVISION, SEQUENCES, metadata

__all__ = [
    "Database",
    "DatabaseError",
    "DatabaseNotFound",
    "SchemaError",
    "in_memory",
    "migrate",
    "not_persistent",
    "open_database",
    "schema_revision",
    "upgrade_database",
]


@dataclass(frozen=True)
class Database:
    url: URL
    engine: Engine
    read_only: str | None = None
    """Why the database was opened read-only (an SQLite file this process may not write),
    or None: writes to a read-only database fail."""

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()


# -- URLs and SQLite files ---------------------------------------------------------------


def _parse(url: str | URL) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise DatabaseError(f"not a database URL: {url!r} (try sqlite:///posledger.db)") from None


def _is_sqlite(url: URL) -> bool:
    try:
        return url.get_backend_name() == "sqlite"
    except Exception:  # an unknown dialect: make_engine says so
        return False


def _uri_mode(url: URL) -> bool:
    return str(url.query.get("uri", "")).lower() in ("true", "1", "yes", "on")


def in_memory(url: str | URL) -> bool:
    """Whether ``url`` names an SQLite database that lives in memory (``sqlite://``,
    ``sqlite:///:memory:``, a ``mode=memory`` URI) or in a temporary file SQLite deletes
    on close (``sqlite:///``): either way nothing is kept once the process ends."""
    parsed = url if isinstance(url, URL) else _parse(url)
    if not _is_sqlite(parsed):
        return False
    database = parsed.database or ""
    if database in ("", ":memory:"):
        return True
    if _uri_mode(parsed):
        return (
            parsed.query.get("mode") == "memory"
            or database.startswith("file::memory:")
            or database == "file:"
            or "mode=memory" in database
        )
    return False


def not_persistent(url: str) -> UsageError:
    """The error for a database URL that keeps nothing once the process ends, where one
    that lasts is needed (``persistent=True``)."""
    return UsageError(
        f"{url} is an in-memory database: it keeps nothing once the command ends; "
        "name a database that lasts, e.g. sqlite:///posledger.db or a server database"
    )


def _sqlite_path(url: URL) -> Path | None:
    """The file an SQLite URL names (None: in memory)."""
    if in_memory(url):
        return None
    database = url.database or ""
    if _uri_mode(url):
        if not database.startswith("file:"):
            return Path(database).absolute()
        split = urlsplit(database)
        return Path(unquote(split.path)).absolute()
    return Path(database).absolute()


@dataclass(frozen=True)
class _Access:
    """How an SQLite file is opened: the SQLite URI query (None: as the URL says) and why
    it is read-only (None: it is not)."""

    query: dict[str, str] | None = None
    read_only: str | None = None


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


def _directory_writable(directory: Path) -> bool:
    return os.access(directory, os.W_OK | os.X_OK)


def _side_file(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _writer_access(path: Path) -> _Access:
    """A writer needs the file (or its directory, to create it) and the directory, where
    SQLite keeps its journal (``-wal`` and ``-shm`` files beside the database)."""
    directory = path.parent
    if not path.exists():
        if not directory.is_dir():
            raise DatabaseError(f"cannot create {path}: the directory {directory} does not exist")
        if not _directory_writable(directory):
            raise DatabaseError(
                f"cannot create {path}: permission denied: this user may not create files "
                f"in {directory}"
            )
        return _Access()
    if path.is_dir():
        raise DatabaseError(f"{path} is a directory, not a database file")
    if not os.access(path, os.R_OK):
        raise DatabaseError(f"cannot read {path}: permission denied (check the file's mode)")
    if not _writable(path):
        raise DatabaseError(
            f"cannot write to {path}: permission denied: the file is read-only for this user "
            "(commands that only read it work; to write, make it writable, e.g. chmod u+w)"
        )
    if not _directory_writable(directory):
        journal = [_side_file(path, suffix) for suffix in ("-wal", "-shm")]
        if not all(side.exists() and _writable(side) for side in journal):
            raise DatabaseError(
                f"cannot write to {path}: permission denied: its directory {directory} is "
                f"not writable for this user, and SQLite writes its journal "
                f"({path.name}-wal, {path.name}-shm) beside the database"
            )
    return _Access()


def _reader_access(path: Path, url: URL) -> _Access:
    """A reader never creates the file. One it may not write (or whose directory it may
    not write, where SQLite would keep the ``-shm`` index of the write-ahead log) is
    opened read-only: ``immutable=1`` when no write-ahead log or rollback journal is
    pending (SQLite then needs no side files and takes no locks), else ``mode=ro``, which
    reads the log through its ``-shm`` index."""
    directory = path.parent
    if not path.exists():
        raise DatabaseNotFound(
            f"no database at {path}: nothing was created; create it with "
            "`posledger migrate` or by ingesting into it"
        )
    if path.is_dir():
        raise DatabaseError(f"{path} is a directory, not a database file")
    if not os.access(path, os.R_OK):
        raise DatabaseError(f"cannot read {path}: permission denied (check the file's mode)")
    user_query = {key: str(value) for key, value in url.query.items()}
    if _writable(path) and _directory_writable(directory):
        if _uri_mode(url):
            return _Access()  # the URL's own SQLite URI says how to open it
        return _Access({**user_query, "mode": "rw", "uri": "true"})
    why = (
        "the file is read-only for this user"
        if not _writable(path)
        else f"its directory {directory} is not writable for this user"
    )
    wal = _side_file(path, "-wal")
    journal = _side_file(path, "-journal")
    pending = (wal.exists()) or (journal.exists() and journal.stat().st_size > 0)
    if not pending:
        return _Access({**user_query, "mode": "ro", "immutable": "1", "uri": "true"}, why)
    query = {**user_query, "mode": "ro", "uri": "true"}
    problem = _probe(path, query)
    if problem is not None:
        raise DatabaseError(
            f"cannot read {path}: {why}, and SQLite cannot read its pending journal "
            f"({wal.name if wal.exists() else journal.name}) read-only: {problem}; "
            "read it as a user who may write the directory, or copy the database with its "
            "-wal and -shm files somewhere writable"
        )
    return _Access(query, why)


def _file_uri(path: Path) -> str:
    return "file:" + quote(str(path))


def _probe(path: Path, query: dict[str, str]) -> str | None:
    """Why SQLite cannot read ``path`` opened with ``query`` (None: it can)."""
    import sqlite3

    options = "&".join(f"{key}={value}" for key, value in query.items() if key != "uri")
    try:
        conn = sqlite3.connect(f"{_file_uri(path)}?{options}", uri=True)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return str(exc)
    return None


def _sqlite_access(url: URL, create: bool) -> tuple[URL, _Access]:
    """The URL the engine opens, and how, for an SQLite URL."""
    path = _sqlite_path(url)
    if path is None:
        return url, _Access()
    access = _writer_access(path) if create else _reader_access(path, url)
    if access.query is None:
        return url, access
    return url.set(database=_file_uri(path), query=access.query), access


# -- engines -----------------------------------------------------------------------------


def _sqlite_engine(url: URL, durable: bool = True) -> Engine:
    memory = url.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {}
    if memory:
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (and the writer) say when transactions begin: pysqlite's own
        # implicit BEGIN handling is not what a ledger wants.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # (WAL mode is set once the file is known to be posledger's: see _settle.)
        # FULL: a committed fill survives power loss, not only a process crash.
        if durable:
            cursor.execute("PRAGMA synchronous=FULL")
        else:  # a scratch database, rebuilt from the journal whenever it is needed
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("PRAGMA journal_mode=MEMORY")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    return engine


def make_engine(url: str | URL, *, durable: bool = True) -> tuple[URL, Engine]:
    """An engine on ``url`` as it stands (no check of what it holds, no file access rules:
    :func:`open_database` adds those)."""
    parsed = _parse(url)
    return parsed, _engine(parsed, parsed, durable)


def _engine(parsed: URL, target: URL, durable: bool) -> Engine:
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(target, durable)
        return create_engine(target, pool_pre_ping=True)
    except (NoSuchModuleError, ImportError) as exc:
        hint = scheme_hint(parsed.drivername)
        raise DatabaseError(
            f"no driver for {parsed.drivername}: {exc}" + (f"; {hint}" if hint else "")
        ) from None


SCHEMES = {
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}
"""The URL schemes posledger's drivers take, by database (docs/deployment.md)."""


def scheme_hint(drivername: str) -> str | None:
    """What to write instead of a URL scheme no installed driver takes (``postgres://``,
    ``mysql://``), or None."""
    database = drivername.partition("+")[0].lower()
    if database in ("postgres", "postgresql", "psql", "pg"):
        return f"write {SCHEMES['postgresql']}://USER@HOST/DATABASE (psycopg 3)"
    if database in ("mysql", "mariadb"):
        return f"write {SCHEMES['mysql']}://USER@HOST/DATABASE (PyMySQL)"
    if database in ("sqlite3", "file"):
        return "write sqlite:///PATH (three slashes, then the file's path)"
    return None


def _connect(url: str | URL, *, create: bool, durable: bool, persistent: bool) -> Database:
    parsed = _parse(url)
    if persistent and in_memory(parsed):
        raise not_persistent(url if isinstance(url, str) else url.render_as_string())
    target, access = _sqlite_access(parsed, create) if _is_sqlite(parsed) else (parsed, _Access())
    return Database(parsed, _engine(parsed, target, durable), access.read_only)


# -- what a database holds ---------------------------------------------------------------

POSLEDGER_TABLES = frozenset(
    {table.name for table in metadata.tables.values()} | set(SEQUENCES) | {"alembic_version"}
)
"""Every table (and, as MariaDB lists them with tables, sequence) a posledger schema of
any revision holds."""


@dataclass(frozen=True)
class _State:
    revision: str | None
    tables: frozenset[str]

    @property
    def empty(self) -> bool:
        return not self.tables

    @property
    def unfinished(self) -> bool:
        """A posledger schema whose creation was interrupted before its first revision was
        stamped (MariaDB: Alembic creates ``alembic_version`` first, and every table
        commits on its own): only posledger's tables, and no revision yet."""
        return (
            self.revision is None
            and "alembic_version" in self.tables
            and self.tables <= POSLEDGER_TABLES
        )

    @property
    def foreign(self) -> bool:
        return self.revision is None and not self.empty and not self.unfinished


def _state_on(conn: Connection) -> _State:
    names = frozenset(inspect(conn).get_table_names())
    if "alembic_version" not in names:
        return _State(None, names)
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return _State(None if row is None else str(row[0]), names)


def _revision_on(conn: Connection) -> tuple[str | None, bool]:
    state = _state_on(conn)
    return state.revision, not state.empty


def schema_revision(engine: Engine) -> tuple[str | None, bool]:
    """(stored Alembic revision or None, whether the database has any tables)."""
    with engine.connect() as conn:
        return _revision_on(conn)


_LOCK_KEY = 7061726  # "pl" and a version: any constant other applications do not use
_LOCK_WAIT = 600  # seconds


@contextmanager
def _schema_lock(database: Database) -> Iterator[Connection]:
    """A connection holding the database-wide lock under which the schema is created or
    upgraded, so that two processes never do it at once. (On SQLite the schema is
    created in one transaction under SQLite's own write lock.) The lock belongs to the
    connection: a process killed while holding it releases it as its connection drops."""
    with database.engine.connect() as conn:
        dialect = database.dialect
        if dialect == "postgresql":
            conn.execute(text(f"SELECT pg_advisory_lock({_LOCK_KEY})"))
        elif dialect in ("mysql", "mariadb"):
            got = conn.execute(text(f"SELECT GET_LOCK('posledger-schema', {_LOCK_WAIT})"))
            if got.scalar() != 1:
                raise DatabaseError(
                    f"{database.display_url}: another process has been creating or upgrading "
                    f"the schema for {_LOCK_WAIT} s (lock posledger-schema); try again later"
                )
        conn.commit()
        try:
            yield conn
        finally:
            conn.rollback()
            if dialect == "postgresql":
                conn.execute(text(f"SELECT pg_advisory_unlock({_LOCK_KEY})"))
            elif dialect in ("mysql", "mariadb"):
                conn.execute(text("SELECT RELEASE_LOCK('posledger-schema')"))
            conn.commit()


def _upgrade(conn: Connection) -> None:
    """Upgrade to the head in one transaction: all or nothing on SQLite and PostgreSQL.
    On MariaDB each DDL statement commits on its own; Alembic moves the version stamp
    after a revision's last step, and the steps check what exists before they act, so a
    killed upgrade is finished by the next one."""
    from alembic import command

    from .migrations import alembic_config

    with conn.begin():
        command.upgrade(alembic_config(conn), "head")


def migrate(database: Database) -> tuple[str | None, str]:
    """Apply pending migrations; return (revision before, revision after). A schema whose
    creation or upgrade was interrupted is finished."""
    with _schema_lock(database) as conn:
        state = _state_on(conn)
        conn.rollback()
        _refuse_foreign(database, state)
        _upgrade(conn)
        after = _state_on(conn).revision
        return state.revision, after or ""


def _state(database: Database) -> _State:
    try:
        with database.engine.connect() as conn:
            return _state_on(conn)
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        if _no_such_database(reason):
            name = database.url.database
            raise DatabaseNotFound(
                f"no database {name} on the server of {database.display_url}: posledger "
                "does not create server databases; create it (CREATE DATABASE), then run "
                "`posledger migrate`"
            ) from None
        raise DatabaseError(f"cannot open {database.display_url}: {reason}") from None


def _no_such_database(error: object) -> bool:
    """The server says the database the URL names does not exist."""
    if getattr(error, "sqlstate", None) == "3D000":  # PostgreSQL: invalid_catalog_name
        return True
    module = type(error).__module__
    if module.startswith("psycopg"):  # a refused connection carries no SQLSTATE
        return bool(re.search(r'FATAL: +database ".*" does not exist', str(error)))
    args: tuple[Any, ...] = getattr(error, "args", ())
    return module.startswith("pymysql") and bool(args) and args[0] == 1049  # ER_BAD_DB_ERROR


def _refuse_foreign(database: Database, state: _State) -> None:
    """Refuse a database that is not posledger's, or that a newer posledger wrote."""
    shown = database.display_url
    if state.foreign:
        raise SchemaError(
            f"{shown} holds tables but no posledger schema version; "
            "point --db at a posledger database or an empty one"
        )
    revision = state.revision
    if revision is not None and revision != SCHEMA_REVISION:
        from .migrations import known_revisions

        if revision not in known_revisions():
            raise SchemaError(
                f"{shown} has schema revision {revision}, which this posledger "
                f"(revision {SCHEMA_REVISION}) does not know: it was written by a newer "
                "posledger"
            )


def _refuse_to_create(database: Database, state: _State) -> None:
    """Why a database without this posledger's schema is not used as it is (raises)."""
    shown = database.display_url
    _refuse_foreign(database, state)
    if state.revision is not None:
        raise SchemaError(
            f"{shown} has schema revision {state.revision}, older than this posledger's "
            f"{SCHEMA_REVISION}: run `posledger --db ... migrate` to upgrade it"
        )
    if state.unfinished:
        raise SchemaError(
            f"{shown} holds a posledger schema whose creation was interrupted: nothing "
            "was changed; run `posledger migrate` to finish it"
        )
    raise SchemaError(
        f"{shown} has no posledger schema (the database is empty): nothing was created; "
        "run `posledger migrate` to create it, or ingest into it"
    )


def _settle(database: Database) -> None:
    """Per-file settings, made once the database is known to be posledger's."""
    if database.dialect == "sqlite" and database.read_only is None and not in_memory(database.url):
        raw = database.engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA journal_mode=WAL")  # type: ignore[union-attr]
        finally:
            raw.close()


def open_database(
    url: str | URL, *, create: bool = True, durable: bool = True, persistent: bool = False
) -> Database:
    """Open ``url``; create the schema in an empty database, refuse a mismatched one.

    ``create=False`` (for readers) creates and changes nothing: it refuses an SQLite file
    that does not exist and a database without this posledger's schema, and opens an
    SQLite file this process may not write read-only. ``create=True`` (for writers)
    creates the file or schema if needed (finishing one whose creation was interrupted)
    and refuses a file it may not write. ``persistent=True`` refuses a database that
    keeps nothing once the process ends (``sqlite://``, ``sqlite:///:memory:``) with a
    :class:`UsageError`. ``durable=False`` (SQLite only) is for a scratch database
    nothing depends on: commits are not synced to disk."""
    database = _connect(url, create=create, durable=durable, persistent=persistent)
    try:
        state = _state(database)
        if state.revision != SCHEMA_REVISION:
            if not create:
                _refuse_to_create(database, state)
            with _schema_lock(database) as conn:
                # Again under the lock: another process may be creating the schema.
                state = _state_on(conn)
                conn.rollback()
                if state.revision != SCHEMA_REVISION:
                    if state.revision is not None or state.foreign:
                        _refuse_to_create(database, state)
                    try:
                        _upgrade(conn)
                    except SQLAlchemyError:
                        # SQLite: another process created the schema while we waited
                        # for its write lock.
                        if _state_on(conn).revision != SCHEMA_REVISION:
                            raise
        if durable:
            _settle(database)
    except BaseException:
        database.dispose()
        raise
    return database


def upgrade_database(url: str | URL, *, persistent: bool = False) -> tuple[str | None, str]:
    """Create or upgrade the schema at ``url``: (revision before, revision after).

    Safe to run again after it was interrupted at any point: it finishes the job.
    ``persistent=True`` refuses an in-memory database (see :func:`open_database`)."""
    database = _connect(url, create=True, durable=True, persistent=persistent)
    try:
        _state(database)
        result = migrate(database)
        _settle(database)
        return result
    finally:
        database.dispose()
