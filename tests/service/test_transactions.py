"""``Ledger._transact``: what is retried, and that nothing is applied twice.

The fake is the memory store's own unit of work with faults put in at commit, the way a
server connection fails: lost after the commit happened (the reply never came), lost
before, a unique key another writer took first, something that is no storage error at
all. It subclasses the real classes (``MemoryStore``, ``MemoryUnitOfWork``); nothing is
mocked. The ledger's back-off is recorded instead of slept.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from posledger import DatabaseError, Ledger
from posledger.ports import RECONNECT, UnitOfWork
from posledger.service.ledger import RETRIES
from posledger.store.memory import ConstraintError, MemoryStore, MemoryUnitOfWork
from tests.integration.helpers import entries, fill, setup

from .conftest import Clock


class LostConnection(Exception):
    """What a driver raises when the server went away."""


class Boom(Exception):
    """Not a storage error."""


AFTER = "lost after the commit"
BEFORE = "lost before the commit"
TAKEN = "a unique key another writer took first"
BOOM = "not a storage error"


class FlakyUnitOfWork(MemoryUnitOfWork):
    """A memory unit of work whose commits fail as the store's ``faults`` say, in turn."""

    store: FlakyStore

    def __init__(self, store: FlakyStore) -> None:
        super().__init__(store)
        self.began: list[str] = []
        self.asked: list[str] = []
        self.reconnects = 0

    def begin(self, txid: str) -> None:
        self.began.append(txid)
        super().begin(txid)

    def commit(self) -> list[int]:
        fault = self.store.faults.pop(0) if self.store.faults else None
        if fault == BEFORE:
            raise LostConnection("server closed the connection unexpectedly")
        if fault == TAKEN:
            raise ConstraintError("fills: ('ACC', 'e1') exists")
        if fault == BOOM:
            raise Boom("a bug")
        seqs = super().commit()
        if fault == AFTER:
            raise LostConnection("server closed the connection unexpectedly")
        return seqs

    def classify(self, exc: BaseException) -> str | None:
        return RECONNECT if isinstance(exc, LostConnection) else super().classify(exc)

    def reconnect(self) -> None:
        self.reconnects += 1
        super().reconnect()

    def committed(self, txid: str) -> list[int] | None:
        self.asked.append(txid)
        return super().committed(txid)


class FlakyStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__("flaky")
        self.faults: list[str] = []
        self.units: list[FlakyUnitOfWork] = []

    def unit_of_work(self) -> UnitOfWork:
        self.units.append(FlakyUnitOfWork(self))
        return self.units[-1]


@pytest.fixture
def naps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The ledger's back-off between attempts, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


@pytest.fixture
def store() -> FlakyStore:
    return FlakyStore()


@pytest.fixture
def flaky(store: FlakyStore, clock: Clock, naps: list[float]) -> Iterator[Ledger]:
    with Ledger(store, clock=clock) as ledger:
        setup(ledger)
        yield ledger


def uow(store: FlakyStore) -> FlakyUnitOfWork:
    (only,) = store.units
    return only


def fills(ledger: Ledger) -> list[str]:
    """The exec ids of the journal's fill entries, in order."""
    return [json.loads(entry[4])["exec_id"] for entry in entries(ledger) if entry[3] == "fill"]


def test_a_commit_whose_reply_was_lost_is_found_by_its_key_and_not_applied_again(
    flaky: Ledger, store: FlakyStore, naps: list[float]
) -> None:
    before = len(entries(flaky))
    store.faults.append(AFTER)
    out = fill(flaky, "e1", "BUY", "2", "100")
    assert out.applied and out.seq == before + 1  # numbered as committed
    tx = uow(store)
    assert tx.began[-1:] == tx.asked == [tx.began[-1]]  # one attempt; its key was asked
    assert tx.reconnects == 1 and len(naps) == 1
    assert fills(flaky) == ["e1"]
    (position,) = flaky.positions()
    assert position["quantity"] == "2"
    assert fill(flaky, "e1", "BUY", "2", "100").status == "duplicate"
    assert flaky.verify().ok


def test_a_batch_whose_reply_was_lost_is_applied_once(flaky: Ledger, store: FlakyStore) -> None:
    record = {"type": "fill", "account": "ACC", "instrument": "FUT", "side": "BUY",
              "quantity": "1", "price": "100", "ts": "2026-03-02T10:00:00Z",
              "strategy": "alpha"}  # fmt: skip
    lines = [json.dumps({**record, "exec_id": f"b{n}"}) for n in range(3)]
    before = len(entries(flaky))
    store.faults.append(AFTER)
    committed: list[list[int | None]] = []
    report = flaky.ingest(
        lines, batch_size=3, on_commit=lambda batch: committed.append([o.seq for _, o in batch])
    )
    assert (report.applied, report.duplicate, report.rejected) == (3, 0, 0)
    assert committed == [[before + 1, before + 2, before + 3]]
    assert fills(flaky) == ["b0", "b1", "b2"]
    assert flaky.positions()[0]["quantity"] == "3"


def test_a_commit_lost_before_it_happened_is_run_again_under_the_same_key(
    flaky: Ledger, store: FlakyStore
) -> None:
    before = len(entries(flaky))
    store.faults.extend([BEFORE, BEFORE])
    out = fill(flaky, "e1", "BUY", "2", "100")
    assert out.applied and out.seq == before + 1
    tx = uow(store)
    attempts = tx.began[-3:]
    assert len(set(attempts)) == 1  # the key is fixed before the first attempt
    assert tx.asked == attempts[:2] and tx.reconnects == 2
    assert fills(flaky) == ["e1"]


def test_lost_before_then_lost_after_is_still_applied_once(
    flaky: Ledger, store: FlakyStore
) -> None:
    store.faults.extend([BEFORE, AFTER])
    assert fill(flaky, "e1", "BUY", "2", "100").applied
    tx = uow(store)
    assert len(set(tx.began[-2:])) == 1 and tx.asked == tx.began[-2:]
    assert fills(flaky) == ["e1"]
    assert fill(flaky, "e2", "BUY", "1", "101", minute=1).applied
    assert fills(flaky) == ["e1", "e2"]


def test_a_key_another_writer_took_first_is_retried_without_reconnecting(
    flaky: Ledger, store: FlakyStore, naps: list[float]
) -> None:
    store.faults.append(TAKEN)
    assert fill(flaky, "e1", "BUY", "2", "100").applied
    tx = uow(store)
    assert len(set(tx.began[-2:])) == 1
    assert (tx.asked, tx.reconnects, len(naps)) == ([], 0, 1)
    assert fills(flaky) == ["e1"]


def test_a_transaction_that_keeps_failing_gives_up_loudly_and_applies_nothing(
    flaky: Ledger, store: FlakyStore, naps: list[float]
) -> None:
    before = entries(flaky)
    store.faults.extend([BEFORE] * RETRIES)
    with pytest.raises(DatabaseError, match=f"gave up after {RETRIES} attempts"):
        fill(flaky, "e1", "BUY", "2", "100")
    assert len(naps) == RETRIES - 1
    assert entries(flaky) == before
    assert fill(flaky, "e1", "BUY", "2", "100").applied  # the store is fine again


def test_an_error_that_is_not_the_storage_s_is_raised_at_once(
    flaky: Ledger, store: FlakyStore, naps: list[float]
) -> None:
    before = entries(flaky)
    store.faults.append(BOOM)
    with pytest.raises(Boom):
        fill(flaky, "e1", "BUY", "2", "100")
    assert naps == [] and uow(store).asked == []
    assert entries(flaky) == before and flaky.positions() == []
