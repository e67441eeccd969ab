"""PostgreSQL's pipeline: a statement that fails mid-transaction is reported as itself,
and the connection is left usable, wherever in the pipeline the failure is read.

The server skips everything after a failed statement up to the next sync, the COMMIT or
ROLLBACK included. Which call reads the failure depends on how the replies arrive; these
tests put the failing statement at many places so that every path is taken."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from posledger.ports import RETRY
from posledger.store.backends import PostgresBackend
from tests.databases import require, server_url

psycopg = pytest.importorskip("psycopg")

BEFORE = (0, 1, 50, 5000)
AFTER = (0, 1, 100, 10000)
"""Statements before and after the failing one: few enough that every reply has arrived
when COMMIT is read, many enough that the replies arrive in several reads."""


@pytest.fixture
def connection() -> Iterator[psycopg.Connection]:
    require("postgresql")
    url = server_url("postgresql")
    conn = psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password or None,
        dbname=url.database or "test",
    )
    conn.execute("CREATE TEMP TABLE taken (k int PRIMARY KEY)")
    conn.execute("INSERT INTO taken VALUES (1)")
    conn.commit()
    try:
        yield conn
    finally:
        conn.close()


def _fail_in_pipeline(backend: PostgresBackend, before: int, after: int, nested: bool) -> None:
    conn = backend.connection
    cursor = conn.cursor()
    backend.begin(cursor)
    with conn.pipeline() if nested else contextlib.nullcontext():
        cursor.executemany("INSERT INTO taken VALUES (%s)", [(k,) for k in range(2, 2 + before)])
        cursor.execute("INSERT INTO taken VALUES (1)")  # the key is taken
        rest = range(100_000, 100_000 + after)
        cursor.executemany("INSERT INTO taken VALUES (%s)", [(k,) for k in rest])
        backend.commit(cursor)


@pytest.mark.parametrize("nested", [False, True], ids=["pipeline", "nested"])
def test_a_taken_key_is_a_retry_and_the_rollback_ends_the_transaction(
    connection: psycopg.Connection, nested: bool
) -> None:
    backend = PostgresBackend(connection)
    for before in BEFORE:
        for after in AFTER:
            with pytest.raises(psycopg.Error) as failed:
                _fail_in_pipeline(backend, before, after, nested)
            where = f"{before} statements before, {after} after"
            assert isinstance(failed.value, psycopg.errors.UniqueViolation), (where, failed.value)
            assert backend.classify(failed.value) == RETRY, where
            backend.rollback(connection.cursor())  # as the unit of work does: must not raise
            # The transaction is over: the next statement runs (not "current transaction
            # is aborted") and sees nothing of the failed one.
            assert connection.execute("SELECT count(*) FROM taken").fetchone() == (1,), where
            connection.rollback()


def test_pipeline_aborted_is_classified_by_the_failure_behind_it() -> None:
    backend = PostgresBackend(None)
    taken = psycopg.errors.UniqueViolation("duplicate key value violates unique constraint")
    try:
        try:
            raise taken
        except psycopg.Error:
            raise psycopg.errors.PipelineAborted("pipeline aborted") from None
    except psycopg.errors.PipelineAborted as aborted:
        assert aborted.__context__ is taken
        assert backend.classify(aborted) == RETRY
    gone = psycopg.OperationalError("server closed the connection unexpectedly")
    try:
        try:
            raise gone
        except psycopg.Error:
            raise psycopg.errors.PipelineAborted("pipeline aborted")  # noqa: B904
    except psycopg.errors.PipelineAborted as aborted:
        assert backend.classify(aborted) != RETRY  # the lost connection decides
