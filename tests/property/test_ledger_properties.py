"""Replay and exactly-once through the real ledger on SQLite (DESIGN §3.4, §3.7)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from posledger import open_ledger
from posledger.domain.numbers import D

from .world import World, render, streams

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


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
def test_ingest_replays_to_the_stored_state_and_twice_is_once(records):
    lines = render(records)
    world = World()
    for record in records:
        world.apply(record)

    with (
        tempfile.TemporaryDirectory() as tmp,
        open_ledger(f"sqlite:///{Path(tmp) / 'x.db'}") as ledger,
    ):
        first = ledger.ingest(lines)
        assert first.rejected == world.rejected, first.rejections
        assert first.applied + first.duplicate + first.rejected == len(lines)

        # replaying the journal gives exactly the stored projections
        report = ledger.verify()
        assert report.ok, report

        # the ledger holds what the pure domain decided
        positions = ledger.positions(include_flat=True)
        trades = ledger.trades()
        assert ledger_quantities(positions) == domain_quantities(world)
        assert [t["trade_id"] for t in trades] == sorted(world.trades)
        assert [t["status"] == "open" for t in trades] == [
            world.trades[t["trade_id"]].is_open for t in trades
        ]

        # the same stream again: every line already applied is a duplicate, nothing moves
        second = ledger.ingest(lines)
        assert second.applied == 0
        assert second.duplicate == first.applied + first.duplicate
        assert second.rejected == first.rejected
        assert ledger.positions(include_flat=True) == positions
        assert ledger.trades() == trades
        assert ledger.verify().ok
