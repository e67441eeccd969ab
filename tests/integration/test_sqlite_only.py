"""SQLite only: connection settings that exist on SQLite alone (journal_mode=WAL and
synchronous=FULL). Everything else about storage is in the contract suite and runs on
every database."""

from __future__ import annotations

from pathlib import Path

import pytest

from posledger import Ledger

from .helpers import db_path, rows, setup


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: this module is not run on the servers."""
    return f"sqlite:///{tmp_path / 'ledger.db'}"


def test_wal_and_synchronous_full_on_the_writer_connection(ledger: Ledger, db_url: str) -> None:
    setup(ledger)
    writer = ledger._uow.cursor  # type: ignore[attr-defined]  # every write goes through it
    assert writer.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert writer.execute("PRAGMA synchronous").fetchone() == (2,)  # 2 = FULL
    with ledger.store.database.engine.connect() as conn:  # type: ignore[attr-defined]
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    # WAL is a property of the file: any other connection sees it too.
    assert rows(db_url, "PRAGMA journal_mode") == [("wal",)]
    assert db_path(db_url).with_name(db_path(db_url).name + "-wal").exists()
