"""Fast tests of the ledger service (``posledger.service``) on the in-memory store: no
database, an injected clock, nothing sleeps. What the stores must agree on is the
contract suite's (``tests/integration``); here, what the service does with a store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from posledger import Ledger, open_ledger
from posledger.domain.timestamps import parse_ts
from tests.databases import fresh_database
from tests.integration.helpers import setup

T0 = parse_ts("2026-03-02T10:00:00Z")
SECOND = 1_000_000_000


class Clock:
    """A clock the test moves by hand (nanoseconds since the epoch)."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_url() -> Iterator[str]:
    """A fresh ``memory://`` ledger of its own."""
    with fresh_database("memory") as url:
        yield url


@pytest.fixture
def ledger(db_url: str, clock: Clock) -> Iterator[Ledger]:
    """A ledger with a netting futures account, a hedge perpetual account and two
    strategies (``tests.integration.helpers.setup``)."""
    with open_ledger(db_url, clock=clock) as opened:
        setup(opened)
        yield opened
