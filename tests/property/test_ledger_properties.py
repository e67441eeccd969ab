"""Replay and exactly-once through the real ledger, on every database (docs/format.md,
JSON Lines input; docs/deployment.md, High availability).

One fresh database per test function and database kind; every Hypothesis example ingests
its stream into it under ids of its own (accounts, instruments, strategies, orders and
exec ids all carry the example's prefix), so the examples never share a slot, a book or
an exec id, and each is compared with a fresh pure-domain :class:`World`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings

from posledger import Ledger, open_ledger
from posledger.domain.numbers import D
from tests.databases import KINDS, fresh_database

from .world import World, render, streams

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

RENAMED = ("account", "instrument", "strategy", "exec_id", "client_order_id")
"""The id fields of a stream's records (docs/format.md, JSON Lines input) that the example
prefix goes on."""


@dataclass
class Shared:
    """One database, shared by the examples of one test function."""

    ledger: Ledger
    examples: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    last_trade_id: int = 0


@pytest.fixture(params=KINDS)
def shared(request: pytest.FixtureRequest) -> Iterator[Shared]:
    """A fresh database of each kind in turn: SQLite, PostgreSQL, MariaDB."""
    with fresh_database(request.param) as url, open_ledger(url) as ledger:
        yield Shared(ledger)


def disjoint(records: list[dict[str, object]], prefix: str) -> list[dict[str, object]]:
    """The stream with every id prefixed (the prefix ends with a separator no id has)."""
    return [
        {k: f"{prefix}{v}" if k in RENAMED and isinstance(v, str) else v for k, v in r.items()}
        for r in records
    ]


def domain_quantities(world: World) -> dict[tuple, object]:
    return {
        (k.account, k.instrument, k.strategy, k.position_side.value): slot.quantity
        for k, slot in world.slots().items()
    }


def ledger_quantities(positions: list[dict]) -> dict[tuple, object]:
    return {
        (p["account"], p["instrument"], p["strategy"], p["position_side"]): D(p["signed_quantity"])
        for p in positions
    }


@SETTINGS
@given(streams(max_steps=14))
def test_ingest_replays_to_the_stored_state_and_twice_is_once(shared: Shared, records):
    ledger = shared.ledger
    records = disjoint(records, f"x{next(shared.examples)}.")
    accounts = {r["account"] for r in records if r["type"] == "account"}
    lines = render(records)
    world = World()
    for record in records:
        world.apply(record)

    def mine(rows: list[dict]) -> list[dict]:
        return [row for row in rows if row["account"] in accounts]

    first = ledger.ingest(lines)
    assert first.rejected == world.rejected, first.rejections
    assert first.applied + first.duplicate + first.rejected == len(lines)

    # replaying the journal gives exactly the stored projections
    report = ledger.verify()
    assert report.ok, report

    # the ledger holds what the pure domain decided
    positions = mine(ledger.positions(include_flat=True))
    trades = mine(ledger.trades())
    assert ledger_quantities(positions) == domain_quantities(world)
    # trade ids are new (never one an earlier example used) and follow the domain's order
    ids = [t["trade_id"] for t in trades]
    assert len(ids) == len(world.trades)
    assert ids == sorted(set(ids))
    assert not ids or ids[0] > shared.last_trade_id
    assert [t["status"] == "open" for t in trades] == [
        world.trades[trade_id].is_open for trade_id in sorted(world.trades)
    ]
    shared.last_trade_id = max(ids, default=shared.last_trade_id)

    # the same stream again: every line already applied is a duplicate, nothing moves
    # (an order the pre-trade check refused stays refused: rejected again)
    second = ledger.ingest(lines)
    assert second.applied == 0
    assert second.duplicate == first.applied + first.duplicate
    assert second.rejected == first.rejected
    assert mine(ledger.positions(include_flat=True)) == positions
    assert mine(ledger.trades()) == trades
    assert ledger.verify().ok
