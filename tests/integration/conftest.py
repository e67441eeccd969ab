"""The integration folder is the contract suite: written once, run on every store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.databases import KINDS, fresh_database

SQL_ONLY_MODULES = {
    "test_migrations": "memory: no schema to create or migrate (Alembic runs on SQL databases)",
    "test_migrate_kills": "memory: no schema to create or migrate, nothing to kill half-way",
    "test_opening": "memory: no database file or server to open (memory URLs: test_opening's "
    "own in-memory tests)",
    "test_checkpoints": "memory: keeps no checkpoints (as of a time replays its whole "
    "journal there; test_as_of runs on it)",
    "test_damage": "memory: no storage to damage, so no damage mark (doctor's checks on a "
    "memory ledger are in test_damage's own memory test)",
}
"""Modules whose every test is about the SQL databases alone, and why."""


@pytest.fixture(params=KINDS)
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty store of each kind in turn: memory, SQLite, PostgreSQL, MariaDB."""
    if request.param == "memory":
        why = SQL_ONLY_MODULES.get(request.module.__name__.rpartition(".")[2])
        if why is not None:
            pytest.skip(why)
    with fresh_database(request.param) as url:
        yield url
