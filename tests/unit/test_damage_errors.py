"""Driver errors that mean damaged storage are told apart from the others: never retried
(FATAL on every backend), whatever the driver, and also when SQLAlchemy wraps them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc

from posledger.ports import FATAL, RECONNECT, RETRY
from posledger.store.backends import Backend, MariaDbBackend, PostgresBackend, is_damage

psycopg = pytest.importorskip("psycopg")
pymysql = pytest.importorskip("pymysql")


def _sqlite_error(tmp_path: Path) -> sqlite3.DatabaseError:
    path = tmp_path / "not-a-database.db"
    path.write_bytes(b"this was a ledger once" * 400)
    conn = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.DatabaseError) as raised:
            conn.execute("SELECT * FROM sqlite_master").fetchall()
    finally:
        conn.close()
    return raised.value


def test_sqlite_damage_is_fatal(tmp_path: Path) -> None:
    error = _sqlite_error(tmp_path)
    assert "file is not a database" in str(error)
    assert is_damage(error)
    assert Backend(None).classify(error) == FATAL
    malformed = sqlite3.DatabaseError("database disk image is malformed")  # no error code
    assert is_damage(malformed)
    wrapped = sa_exc.DatabaseError("SELECT 1", {}, malformed)
    assert is_damage(wrapped)


def test_other_sqlite_errors_are_not_damage() -> None:
    locked = sqlite3.OperationalError("database is locked")
    assert not is_damage(locked)
    assert Backend(None).classify(locked) == RETRY
    assert not is_damage(sqlite3.IntegrityError("UNIQUE constraint failed: fills.exec_id"))
    assert not is_damage(ValueError("database disk image is malformed"))


def test_postgresql_data_and_index_corruption_are_fatal() -> None:
    backend = PostgresBackend(None)
    for error in (
        psycopg.errors.DataCorrupted("could not read block 7 in file base/16384/16385"),
        psycopg.errors.IndexCorrupted('index "pk_fills" contains unexpected zero page'),
    ):
        assert is_damage(error)
        assert backend.classify(error) == FATAL
    taken = psycopg.errors.UniqueViolation('duplicate key value violates "pk_fills"')
    assert not is_damage(taken) and backend.classify(taken) == RETRY
    gone = psycopg.OperationalError("server closed the connection unexpectedly")
    assert not is_damage(gone) and backend.classify(gone) == RECONNECT


def test_mariadb_crashed_or_corrupt_tables_are_fatal_not_a_reconnect() -> None:
    backend = MariaDbBackend(None)
    crashed = pymysql.err.OperationalError(
        1194, "Table 'journal' is marked as crashed and should be repaired"
    )
    assert is_damage(crashed)
    assert backend.classify(crashed) == FATAL  # an OperationalError, but no reconnect cures it
    corrupt = pymysql.err.InternalError(1712, "Index pk_fills is corrupted")
    assert is_damage(corrupt) and backend.classify(corrupt) == FATAL
    deadlock = pymysql.err.OperationalError(1213, "Deadlock found")
    assert not is_damage(deadlock) and backend.classify(deadlock) == RETRY
