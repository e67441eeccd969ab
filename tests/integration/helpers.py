"""Reference data, public-API readers and backend-neutral SQL helpers for the contract
suite.

What a test asserts about behaviour goes through the public API, on every store: journal
entries through ``ledger.journal``, projection rows through ``ledger.store.reads()``
(:func:`journal`, :func:`table`). The SQL helpers (:func:`rows`, :func:`execute`,
:func:`engine`) read and write with SQLAlchemy (``create_engine(db_url)`` and ``text(...)``
or the tables of :mod:`posledger.store.schema`), bypassing posledger, so that one
storage-specific assertion runs on SQLite, PostgreSQL and MariaDB alike; a test that needs
them says so first with :func:`sql_only` (a memory store has no SQL database behind it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url

from posledger import Ledger
from tests.databases import MEMORY

T = "2026-03-02T"


def kind_of(db_url: str) -> str:
    """``memory``, ``sqlite``, ``postgresql`` or ``mariadb``: the kind of store ``db_url``
    names."""
    if db_url.startswith(MEMORY):
        return "memory"
    backend = make_url(db_url).get_backend_name()
    return "mariadb" if backend in ("mysql", "mariadb") else backend


def is_sql(db_url: str) -> bool:
    """Whether ``db_url`` names a SQL database (not an in-memory store)."""
    return kind_of(db_url) != "memory"


def sql_only(db_url: str, why: str) -> None:
    """Skip the current test on the memory store: it checks something only a SQL database
    has (``why`` says what, e.g. "no SQL constraint to bypass")."""
    if not is_sql(db_url):
        pytest.skip(f"memory: {why}")


def sqlite_only(db_url: str, why: str) -> None:
    """Skip the current test on the servers and in memory: it checks something only SQLite
    has."""
    if kind_of(db_url) != "sqlite":
        pytest.skip(f"SQLite only: {why}")


def db_path(db_url: str) -> Path:
    assert kind_of(db_url) == "sqlite", db_url
    return Path(db_url.removeprefix("sqlite:///"))


@contextmanager
def engine(db_url: str) -> Iterator[Engine]:
    """A plain SQLAlchemy engine on the ledger's database, bypassing posledger (its pooled
    connections are closed on exit, before the test database is dropped).

    A memory store has no database to connect to: a test that gets here on one was not
    marked :func:`sql_only`, and is skipped saying so."""
    sql_only(db_url, "no SQL database behind memory:// (this test reads rows through SQLAlchemy)")
    created = create_engine(db_url)
    try:
        yield created
    finally:
        created.dispose()


@contextmanager
def connect(db_url: str) -> Iterator[Connection]:
    """A plain connection (read, then rolled back unless the caller commits)."""
    with engine(db_url) as created, created.connect() as conn:
        yield conn


def rows(db_url: str, query: Any, **params: Any) -> list[tuple[Any, ...]]:
    """The rows of ``query`` (SQL text with ``:name`` parameters, or a Core select)."""
    statement = text(query) if isinstance(query, str) else query
    with connect(db_url) as conn:
        return [tuple(row) for row in conn.execute(statement, params)]


def execute(db_url: str, statement: Any, **params: Any) -> None:
    """Run one statement in its own committed transaction."""
    statement = text(statement) if isinstance(statement, str) else statement
    with engine(db_url) as created, created.begin() as conn:
        conn.execute(statement, params)


def setup(ledger: Ledger) -> None:
    """A netting futures account, a hedge perpetual account and two strategies."""
    applied = [
        ledger.register_account(account="ACC", venue="CME", mode="SIM", position_mode="netting"),
        ledger.register_account(account="HDG", venue="BINANCE", mode="LIVE", position_mode="hedge"),
        ledger.register_instrument(
            instrument="FUT",
            kind="future",
            multiplier="5",
            quote_currency="USD",
            settlement_currency="USD",
        ),
        ledger.register_instrument(
            instrument="PERP",
            kind="perpetual",
            multiplier="1",
            base_currency="BTC",
            quote_currency="USDT",
            settlement_currency="USDT",
        ),
        ledger.register_strategy(strategy="alpha"),
        ledger.register_strategy(strategy="beta"),
    ]
    assert all(outcome.status == "applied" for outcome in applied), applied


def fill_record(
    exec_id: str, side: str, quantity: str, price: str, minute: int, **extra: Any
) -> dict[str, Any]:
    """A ``fill`` input record on ACC/FUT at 10:MM on the day of :data:`T`, commission 0.5
    USD unless ``extra`` says otherwise (the HTTP API's tests send these)."""
    return {
        "type": "fill",
        "exec_id": exec_id,
        "account": "ACC",
        "instrument": "FUT",
        "side": side,
        "quantity": quantity,
        "price": price,
        "ts": f"{T}10:{minute:02d}:00Z",
        "commission": "0.5",
        "commission_currency": "USD",
        **extra,
    }


def fill(
    ledger: Ledger,
    exec_id: str,
    side: str,
    quantity: str,
    price: str,
    *,
    strategy: str = "alpha",
    account: str = "ACC",
    instrument: str = "FUT",
    minute: int = 0,
    **extra: Any,
) -> Any:
    return ledger.apply_fill(
        exec_id=exec_id,
        account=account,
        instrument=instrument,
        side=side,
        quantity=quantity,
        price=price,
        ts=f"{T}{10 + minute // 60:02d}:{minute % 60:02d}:00Z",
        strategy=strategy,
        commission="0.5",
        commission_currency="USD" if instrument == "FUT" else "USDT",
        **extra,
    )


def snapshot(ledger: Ledger) -> tuple[Any, ...]:
    return (
        ledger.positions(include_flat=True),
        ledger.trades(),
        ledger.anomalies(),
        ledger.rejected_inputs(),
    )


def journal(db_url: str) -> list[tuple[Any, ...]]:
    """The journal table as stored, through SQL (a SQL database only: see
    :func:`entries`)."""
    return rows(
        db_url, "SELECT seq, stream, version, kind, input, effects FROM journal ORDER BY seq"
    )


def entries(ledger: Ledger) -> list[tuple[Any, ...]]:
    """Every journal entry as (seq, stream, version, kind, input, effects), in order, read
    through the public API."""
    return [
        (e.seq, e.stream, e.version, e.kind, e.input, e.effects)
        for e in ledger.journal(after_seq=0, limit=None)
    ]


def table(ledger: Ledger, name: str) -> list[dict[str, Any]]:
    """Every row of a projection table in key order, typed (amounts as Decimals), on every
    store."""
    return list(ledger.store.reads().table(name))
