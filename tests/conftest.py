"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from posledger import Ledger, open_ledger


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite database file in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    with open_ledger(db_url) as opened:
        yield opened
