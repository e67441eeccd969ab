"""The integration folder is the contract suite: written once, run on every database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.databases import KINDS, fresh_database


@pytest.fixture(params=KINDS)
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database of each kind in turn: SQLite, PostgreSQL, MariaDB."""
    with fresh_database(request.param) as url:
        yield url
