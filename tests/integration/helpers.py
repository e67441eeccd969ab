"""Reference data and raw-SQLite helpers for the integration tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from posledger import Ledger

T = "2026-03-02T"


def db_path(db_url: str) -> Path:
    assert db_url.startswith("sqlite:///")
    return Path(db_url.removeprefix("sqlite:///"))


@contextmanager
def raw(db_url: str) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to the ledger's file, bypassing posledger."""
    conn = sqlite3.connect(db_path(db_url))
    try:
        yield conn
    finally:
        conn.close()


def rows(db_url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with raw(db_url) as conn:
        return conn.execute(query, params).fetchall()


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
    return rows(
        db_url, "SELECT seq, stream, version, kind, input, effects FROM journal ORDER BY seq"
    )
