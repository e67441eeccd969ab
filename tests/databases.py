"""The stores the suite runs against: in-memory ledgers (``memory://NAME``), SQLite files,
and fresh PostgreSQL and MariaDB databases on the servers named by environment variables.

``POSLEDGER_TEST_POSTGRES_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``)
and ``POSLEDGER_TEST_MARIADB_URL`` (default ``mysql+pymysql://root@127.0.0.1:3306/test``)
name a server and a database the tests may create schemas or databases beside. A test
asking for a server that does not answer is skipped with the reason, unless ``CI=true``,
where a missing server fails the run. Every test gets its own PostgreSQL schema or
MariaDB database, dropped afterwards; every memory test its own ``memory://<unique name>``,
forgotten afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

KINDS = ("memory", "sqlite", "postgresql", "mariadb")
"""Every kind of store: the contract suite runs on each."""
DATABASES = ("sqlite", "postgresql", "mariadb")
"""The SQL databases (SQLAlchemy Core): what is checked through SQL runs on these."""
SERVERS = ("postgresql", "mariadb")
MEMORY = "memory://"

DEFAULTS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
}
ENV = {
    "postgresql": "POSLEDGER_TEST_POSTGRES_URL",
    "mariadb": "POSLEDGER_TEST_MARIADB_URL",
}


def server_url(kind: str) -> URL:
    url = make_url(os.environ.get(ENV[kind]) or DEFAULTS[kind])
    if url.host not in (None, "127.0.0.1", "localhost", "::1"):
        raise RuntimeError(f"{ENV[kind]} must point at this machine (loopback), not {url.host}")
    return url


@cache
def unavailable(kind: str) -> str | None:
    """Why the server cannot be used, or None when it answers."""
    url = server_url(kind)
    try:
        engine = create_engine(url, connect_args=_timeout(kind))
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any driver or network error: the server is not usable
        return f"{kind} at {url.render_as_string(hide_password=True)} is unavailable: {exc}"
    return None


def require(kind: str) -> None:
    """Skip (or, under CI=true, fail) the current test when the server is missing."""
    if kind in ("memory", "sqlite"):
        return
    reason = unavailable(kind)
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def _timeout(kind: str) -> dict[str, int]:
    return {"connect_timeout": 3}


@contextmanager
def fresh_database(kind: str, tmp_path: object = None) -> Iterator[str]:
    """A URL of an empty database of this kind; it is dropped afterwards."""
    if kind == "memory":
        from posledger.store.memory import MemoryStore

        name = f"test-{uuid.uuid4().hex[:12]}"
        try:
            yield MEMORY + name
        finally:
            MemoryStore.forget(name)
        return
    if kind == "sqlite":
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{Path(directory) / 'ledger.db'}"
        return
    require(kind)
    name = f"pl_{uuid.uuid4().hex[:12]}"
    base = server_url(kind)
    admin = create_engine(base, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        if kind == "postgresql":
            conn.execute(text(f"CREATE SCHEMA {name}"))
        else:
            conn.execute(text(f"CREATE DATABASE {name}"))
    if kind == "postgresql":
        url = base.update_query_dict({"options": f"-csearch_path={name}"})
    else:
        url = base.set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            # A connection the test left inside a transaction would make the drop wait
            # for ever: fail the teardown visibly instead.
            if kind == "postgresql":
                conn.execute(text("SET lock_timeout = '30s'"))
            else:
                conn.execute(text("SET SESSION lock_wait_timeout = 30"))
            if kind == "postgresql":
                conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()
