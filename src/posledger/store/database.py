"""Opening a database: engine set-up per dialect and the schema version check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ..errors import DatabaseError, SchemaError
from .schema import SCHEMA_REVISION

__all__ = [
    "Database",
    "DatabaseError",
    "SchemaError",
    "migrate",
    "open_database",
    "schema_revision",
    "upgrade_database",
]


@dataclass(frozen=True)
class Database:
    url: URL
    engine: Engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()


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
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(f"not a database URL: {url!r} (try sqlite:///posledger.db)") from None
    try:
        if parsed.get_backend_name() == "sqlite":
            return parsed, _sqlite_engine(parsed, durable)
        return parsed, create_engine(parsed, pool_pre_ping=True)
    except (NoSuchModuleError, ImportError) as exc:
        raise DatabaseError(f"no driver for {parsed.drivername}: {exc}") from None


def _revision_on(conn: Connection) -> tuple[str | None, bool]:
    names = set(inspect(conn).get_table_names())
    if "alembic_version" not in names:
        return None, bool(names)
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return (None if row is None else str(row[0])), True


def schema_revision(engine: Engine) -> tuple[str | None, bool]:
    """(stored Alembic revision or None, whether the database has any tables)."""
    with engine.connect() as conn:
        return _revision_on(conn)


_LOCK_KEY = 7061726  # "pl" and a version: any constant other applications do not use


@contextmanager
def _schema_lock(database: Database) -> Iterator[Connection]:
    """A connection holding the database-wide lock under which the schema is created or
    upgraded, so that two processes never do it at once. (On SQLite the schema is
    created in one transaction under SQLite's own write lock.)"""
    with database.engine.connect() as conn:
        dialect = database.dialect
        if dialect == "postgresql":
            conn.execute(text(f"SELECT pg_advisory_lock({_LOCK_KEY})"))
        elif dialect in ("mysql", "mariadb"):
            conn.execute(text("SELECT GET_LOCK('posledger-schema', 600)"))
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
    from alembic import command

    from .migrations import alembic_config

    with conn.begin():
        command.upgrade(alembic_config(conn), "head")


def migrate(database: Database) -> tuple[str | None, str]:
    """Apply pending migrations; return (revision before, revision after)."""
    with _schema_lock(database) as conn:
        before, has_tables = _revision_on(conn)
        conn.rollback()
        _refuse_foreign(database, before, has_tables)
        _upgrade(conn)
        after, _ = _revision_on(conn)
        return before, after or ""


def _inspect(database: Database) -> tuple[str | None, bool]:
    try:
        return schema_revision(database.engine)
    except SQLAlchemyError as exc:
        database.dispose()
        reason = getattr(exc, "orig", None) or exc
        raise DatabaseError(f"cannot open {database.display_url}: {reason}") from None


def _refuse_foreign(database: Database, revision: str | None, has_tables: bool) -> None:
    """Refuse a database that is not posledger's, or that a newer posledger wrote."""
    shown = database.display_url
    if revision is None and has_tables:
        database.dispose()
        raise SchemaError(
            f"{shown} holds tables but no posledger schema version; "
            "point --db at a posledger database or an empty one"
        )
    if revision is not None and revision != SCHEMA_REVISION:
        from .migrations import known_revisions

        if revision not in known_revisions():
            database.dispose()
            raise SchemaError(
                f"{shown} has schema revision {revision}, which this posledger "
                f"(revision {SCHEMA_REVISION}) does not know: it was written by a newer "
                "posledger"
            )


def _settle(database: Database) -> None:
    """Per-file settings, made once the database is known to be posledger's."""
    if database.dialect == "sqlite" and database.url.database not in (None, "", ":memory:"):
        raw = database.engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA journal_mode=WAL")  # type: ignore[union-attr]
        finally:
            raw.close()


def open_database(url: str | URL, *, create: bool = True, durable: bool = True) -> Database:
    """Open ``url``; create the schema in an empty database, refuse a mismatched one.

    ``durable=False`` (SQLite only) is for a scratch database nothing depends on: commits
    are not synced to disk."""
    database = Database(*make_engine(url, durable=durable))
    revision, _ = _inspect(database)
    if revision != SCHEMA_REVISION:
        try:
            with _schema_lock(database) as conn:
                # Again under the lock: another process may be creating the schema.
                revision, has_tables = _revision_on(conn)
                conn.rollback()
                if revision != SCHEMA_REVISION:
                    _refuse_foreign(database, revision, has_tables)
                    if revision is not None:
                        raise SchemaError(
                            f"{database.display_url} has schema revision {revision}, older "
                            f"than this posledger's {SCHEMA_REVISION}: run "
                            "`posledger --db ... migrate` to upgrade it"
                        )
                    if not create:
                        raise SchemaError(
                            f"{database.display_url} has no posledger schema; "
                            "run `posledger migrate`"
                        )
                    try:
                        _upgrade(conn)
                    except SQLAlchemyError:
                        # SQLite: another process created the schema while we waited
                        # for its write lock.
                        if _revision_on(conn)[0] != SCHEMA_REVISION:
                            raise
        except BaseException:
            database.dispose()
            raise
    if durable:
        _settle(database)
    return database


def upgrade_database(url: str | URL) -> tuple[str | None, str]:
    """Create or upgrade the schema at ``url``: (revision before, revision after)."""
    database = Database(*make_engine(url))
    try:
        _inspect(database)
        result = migrate(database)
        _settle(database)
        return result
    finally:
        database.dispose()
