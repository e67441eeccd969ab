"""The outbox through the Ledger API (docs/brackets.md, Commands and their life cycle):
listing, claiming under a 30 s lease, handing out again once a lease ran out, acking and
failing.

The outbox stays empty until a feature sends commands; here they are written as one would
be: in the write set of the input that causes them, committed by a unit of work.
"""

from __future__ import annotations

import itertools

import pytest

from posledger import Ledger, NotFound, UsageError
from posledger.adapters.records import parse_record
from posledger.domain.timestamps import format_ts
from posledger.domain.writeset import Command
from posledger.service.handlers import handle
from posledger.service.ledger import LEASE_NS

from .conftest import SECOND, T0, Clock

PAYLOAD = {"side": "SELL", "quantity": "1", "type": "limit", "price": "101"}
_minutes = itertools.count(1)


def send(ledger: Ledger, clock: Clock, *ids: str, strategy: str = "alpha") -> int:
    """Commit a mark whose write set also sends ``strategy``'s commands ``ids`` (oldest
    first by journal number, then id); the mark's journal number."""
    uow = ledger.store.unit_of_work()
    try:
        uow.begin("send")
        mark = {"type": "mark", "instrument": "FUT", "price": "100",
                "ts": f"2026-03-02T09:{next(_minutes):02d}:00Z"}  # fmt: skip
        outcome, write_set = handle(uow, parse_record(mark, api=True), clock)
        assert write_set is not None, outcome
        payload = '{"side":"SELL","quantity":"1","type":"limit","price":"101"}'
        commands = tuple(Command(i, "place", "ACC", "FUT", strategy, payload) for i in ids)
        uow.add(write_set._replace(commands=commands))
        (seq,) = uow.commit()
    finally:
        uow.close()
    return seq


def ids(rows: list[dict[str, object]]) -> list[object]:
    return [row["command_id"] for row in rows]


def test_commands_are_listed_oldest_first(ledger: Ledger, clock: Clock) -> None:
    assert ledger.commands() == []  # nothing sends commands yet
    first = send(ledger, clock, "c2", "c1")
    second = send(ledger, clock, "c0")
    pending = ledger.commands()
    assert ids(pending) == ["c1", "c2", "c0"]
    assert pending[0] == {
        "command_id": "c1",
        "kind": "place",
        "status": "pending",
        "account": "ACC",
        "instrument": "FUT",
        "strategy": "alpha",
        "payload": PAYLOAD,
        "seq": first,
        "created_at": format_ts(T0),
        "updated_at": format_ts(T0),
        "worker": None,
        "lease_until": None,
        "attempts": 0,
        "broker_order_id": None,
        "reason": None,
    }
    assert [row["seq"] for row in pending] == [first, first, second]
    assert ids(ledger.commands(limit=2)) == ["c1", "c2"]
    assert ledger.commands(status="claimed") == []
    assert ids(ledger.commands(status=None)) == ["c1", "c2", "c0"]


def test_a_claim_leases_for_30_seconds_then_the_command_is_handed_out_again(
    ledger: Ledger, clock: Clock
) -> None:
    assert LEASE_NS == 30 * SECOND
    send(ledger, clock, "c1", "c2")
    send(ledger, clock, "c3")
    claimed = ledger.commands(claim="w1", limit=2)
    assert ids(claimed) == ["c1", "c2"]
    for row in claimed:
        assert (row["status"], row["worker"], row["attempts"]) == ("claimed", "w1", 1)
        assert row["lease_until"] == format_ts(T0 + 30 * SECOND)
        assert row["updated_at"] == format_ts(T0)
    assert ids(ledger.commands()) == ["c3"]  # still pending
    assert ids(ledger.commands(status="claimed")) == ["c1", "c2"]

    clock.advance(30 * SECOND - 1)  # w1's lease has 1 ns to run
    assert ids(ledger.commands(claim="w2")) == ["c3"]  # nobody else gets w1's
    assert ledger.commands(claim="w2") == []
    clock.advance(1)  # w1's lease ran out: its commands go to whoever claims next
    again = ledger.commands(claim="w2")
    assert ids(again) == ["c1", "c2"]
    assert {(row["worker"], row["attempts"], row["lease_until"]) for row in again} == {
        ("w2", 2, format_ts(T0 + 60 * SECOND))
    }
    assert ledger.commands(claim="w3") == []  # c3's lease (w2, from T0 + 30 s - 1) runs
    clock.advance(30 * SECOND)
    assert ids(ledger.commands(claim="w3", limit=1)) == ["c1"]  # oldest first


def test_a_claim_for_a_lease_of_its_own(ledger: Ledger, clock: Clock) -> None:
    send(ledger, clock, "c1")
    (row,) = ledger.commands(claim="w1", lease_ns=5 * SECOND)
    assert row["lease_until"] == format_ts(T0 + 5 * SECOND)
    clock.advance(5 * SECOND)
    (row,) = ledger.commands(claim="w2")
    assert (row["worker"], row["attempts"]) == ("w2", 2)


def test_a_claim_of_some_accounts_and_strategies(ledger: Ledger, clock: Clock) -> None:
    send(ledger, clock, "a1")
    send(ledger, clock, "b1", "b2", strategy="beta")
    assert ledger.commands(claim="w1", strategies=iter(["gamma"])) == []
    assert ledger.commands(claim="w1", accounts=["HDG"], strategies=["beta"]) == []
    assert ids(ledger.commands(claim="w1", strategies=(s for s in ["beta"]))) == ["b1", "b2"]
    both = ledger.commands(claim="w2", accounts=["ACC"], strategies=["alpha", "beta"])
    assert ids(both) == ["a1"]
    assert ledger.commands() == []


def test_acked_and_failed_commands_are_final(ledger: Ledger, clock: Clock) -> None:
    send(ledger, clock, "c1", "c2")
    assert ids(ledger.commands(claim="w1")) == ["c1", "c2"]
    clock.advance(SECOND)
    acked = ledger.ack("c1", broker_order_id="B-1")
    assert (acked["status"], acked["broker_order_id"], acked["lease_until"]) == (
        "acked",
        "B-1",
        None,
    )
    assert acked["updated_at"] == format_ts(T0 + SECOND)
    clock.advance(SECOND)
    assert ledger.ack("c1", broker_order_id="B-1") == acked  # again: nothing changes
    with pytest.raises(UsageError, match="already acked"):
        ledger.fail("c1", reason="too late")
    failed = ledger.fail("c2", reason="rejected: price out of band")
    assert (failed["status"], failed["reason"]) == ("failed", "rejected: price out of band")
    assert ledger.fail("c2", reason="rejected: price out of band") == failed
    with pytest.raises(UsageError, match="already failed"):
        ledger.ack("c2")
    clock.advance(3600 * SECOND)  # every lease long over: neither is handed out again
    assert ledger.commands(claim="w2") == []
    assert ledger.commands() == []
    assert {row["command_id"]: row["status"] for row in ledger.commands(status=None)} == {
        "c1": "acked",
        "c2": "failed",
    }


def test_what_the_outbox_api_refuses(ledger: Ledger, clock: Clock) -> None:
    send(ledger, clock, "c1")
    with pytest.raises(NotFound, match="no outbox command nope"):
        ledger.ack("nope")
    with pytest.raises(UsageError, match="say why"):
        ledger.fail("c1", reason="  ")
    with pytest.raises(UsageError, match="limit"):
        ledger.commands(limit=0)
    with pytest.raises(UsageError, match="limit"):
        ledger.commands(claim="w1", limit=0)
    with pytest.raises(UsageError, match="worker"):
        ledger.commands(claim=" w1")
    with pytest.raises(UsageError, match="worker"):
        ledger.commands(claim="")
    assert ids(ledger.commands()) == ["c1"]  # none of it claimed or settled anything
