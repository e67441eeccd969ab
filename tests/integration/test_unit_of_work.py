"""The store's contract (``posledger.ports``), driven through the ``UnitOfWork`` interface
directly, on every store: memory, SQLite, PostgreSQL and MariaDB.

Write sets come from the real handlers (``posledger.service.handlers``) deciding real
inputs; only what no handler would ever produce (a second open trade in one slot, an
outbox command before a feature sends any) is put together by hand. What is stored is read
back through the same interface, through ``Store.reads()``, and through a store opened
again on the same URL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from posledger.adapters.records import parse_record
from posledger.bootstrap import open_store
from posledger.domain.enums import OrderStatus, PositionSide, ReconcilePolicy
from posledger.domain.inputs import Reconcile
from posledger.domain.positions import SlotKey
from posledger.domain.timestamps import parse_ts
from posledger.domain.writeset import AddFill, AddTransfer, Command, WriteSet
from posledger.ports import RETRY, CommandRow, Seen, Store, UnitOfWork
from posledger.service.handlers import Outcome, handle, reconcile

from .helpers import kind_of

T0 = parse_ts("2026-03-02T10:00:00Z")
SECOND = 1_000_000_000
LEASE = 30 * SECOND


def clock() -> int:
    return T0


REFDATA: list[dict[str, Any]] = [
    {"type": "account", "account": "ACC", "venue": "CME", "mode": "SIM",
     "position_mode": "netting"},
    *(
        {"type": "instrument", "instrument": name, "kind": "future", "multiplier": "5",
         "quote_currency": "USD", "settlement_currency": "USD"}
        for name in ("FUT", "FUT2")
    ),
    {"type": "strategy", "strategy": "alpha"},
    {"type": "strategy", "strategy": "beta"},
]  # fmt: skip


def fill(exec_id: str, side: str, quantity: str, price: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "fill",
        "exec_id": exec_id,
        "account": "ACC",
        "instrument": "FUT",
        "side": side,
        "quantity": quantity,
        "price": price,
        "ts": "2026-03-02T10:00:00Z",
        "strategy": "alpha",
        **extra,
    }


def transfer(transfer_id: str, instrument: str = "FUT") -> dict[str, Any]:
    return {
        "type": "transfer",
        "account": "ACC",
        "instrument": instrument,
        "from_strategy": "alpha",
        "to_strategy": "beta",
        "quantity": "1",
        "transfer_id": transfer_id,
        "ts": "2026-03-02T11:00:00Z",
    }


def check(run: str, instrument: str = "FUT") -> Reconcile:
    """One check of a reconciliation run (as ``plan`` makes them): the broker holds 2."""
    return Reconcile(
        run=run,
        account="ACC",
        instrument=instrument,
        position_side=PositionSide.BOTH,
        quantity=Decimal(2),
        policy=ReconcilePolicy.REPORT,
        price_tolerance=Decimal("0.001"),
        ts=T0 + 3600 * SECOND,
    )


def decided(uow: UnitOfWork, record: dict[str, Any] | Reconcile) -> tuple[Outcome, WriteSet | None]:
    """What the real handler decides, with the write set it returns (if any)."""
    if isinstance(record, Reconcile):
        return reconcile(uow, record, clock)
    return handle(uow, parse_record(record, api=True), clock)


def decide(uow: UnitOfWork, record: dict[str, Any] | Reconcile) -> tuple[Outcome, WriteSet]:
    """What the real handler decides, with the write set it returns (one is expected)."""
    outcome, write_set = decided(uow, record)
    assert write_set is not None, outcome
    return outcome, write_set


def status(uow: UnitOfWork, client_order_id: str) -> OrderStatus | None:
    found = uow.order(client_order_id)
    return None if found is None else found[1]


def apply(uow: UnitOfWork, *records: dict[str, Any] | Reconcile) -> list[WriteSet]:
    """Decide each record and stage its write set (the caller commits)."""
    added = []
    for record in records:
        outcome, write_set = decide(uow, record)
        assert outcome.applied, outcome
        uow.add(write_set)
        added.append(write_set)
    return added


def digest_of(write_set: WriteSet) -> str:
    (added,) = [c for c in write_set.changes if isinstance(c, AddFill | AddTransfer)]
    assert added.digest is not None
    return added.digest


ALPHA = SlotKey("ACC", "FUT", "alpha", PositionSide.BOTH)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.close()


@pytest.fixture
def units(store: Store) -> Iterator[Callable[[], UnitOfWork]]:
    """New units of work on the store, each on a connection of its own (closed at the end,
    before the test database is dropped)."""
    made: list[UnitOfWork] = []

    def unit() -> UnitOfWork:
        made.append(store.unit_of_work())
        return made[-1]

    yield unit
    for uow in made:
        uow.close()


def commit(uow: UnitOfWork, *records: dict[str, Any] | Reconcile, txid: str = "tx") -> list[int]:
    uow.begin(txid)
    apply(uow, *records)
    return uow.commit()


# -- commit, reopen, rollback -----------------------------------------------------------


def test_a_committed_write_set_is_there_after_commit_and_after_reopening(
    db_url: str, store: Store, units: Callable[[], UnitOfWork]
) -> None:
    writer = units()
    writer.begin("first")
    *_, bought = apply(writer, *REFDATA, fill("e1", "BUY", "2", "100"))
    command = Command("cmd-1", "place", "ACC", "FUT", "alpha", '{"side":"SELL"}')
    writer.add(
        decide(writer, {"type": "mark", "instrument": "FUT", "price": "101"})[1]._replace(
            commands=(command,)
        )
    )
    seqs = writer.commit()
    assert seqs == list(range(1, len(REFDATA) + 3))

    def sees_it(uow: UnitOfWork) -> None:
        uow.begin("look")
        try:
            assert uow.account("ACC") is not None
            assert uow.instrument("FUT2") is not None
            assert uow.strategy("beta") is not None
            assert uow.fill_seen("ACC", "e1") == Seen(seqs[-2], digest_of(bought))
            book = uow.book("FUT")
            assert book.version == 3  # registered, filled, marked
            assert book.slots[ALPHA].quantity == 2
            (trade,) = book.open_trades.values()
            assert (trade.key, trade.quantity, trade.avg_entry) == (ALPHA, 2, 100)
            assert book.mark == 101
            assert uow.stream_version("strategy:alpha") == 1
            assert uow.open_slots("alpha") == 1
            assert uow.held("ACC") == [("FUT", PositionSide.BOTH)]
            assert uow.next_trade_id() > trade.trade_id
            stored = uow.command("cmd-1")
            assert stored is not None
            assert (stored.status, stored.seq, stored.payload) == (
                "pending",
                seqs[-1],
                '{"side":"SELL"}',
            )
        finally:
            uow.rollback()

    sees_it(writer)
    sees_it(units())
    journal = store.reads().journal()
    assert [entry.seq for entry in journal] == seqs
    assert [entry.kind for entry in journal][-2:] == ["fill", "mark"]

    again = open_store(db_url)  # what another process opening the URL finds
    try:
        reopened = again.unit_of_work()
        try:
            sees_it(reopened)
        finally:
            reopened.close()
        assert again.reads().journal() == journal
    finally:
        again.close()


def test_rollback_discards_the_write_sets_and_the_caches(
    store: Store, units: Callable[[], UnitOfWork]
) -> None:
    uow = units()
    before = commit(uow, *REFDATA)
    uow.begin("then-rolled-back")
    apply(
        uow,
        {"type": "strategy", "strategy": "gamma"},
        {"type": "order", "client_order_id": "o1", "account": "ACC", "strategy": "alpha",
         "instrument": "FUT", "side": "BUY", "quantity": "1", "intent": "entry"},
        fill("e1", "BUY", "1", "100", client_order_id="o1"),
    )  # fmt: skip
    # staged: every load sees it
    assert uow.strategy("gamma") is not None
    assert uow.order("o1") is not None
    assert uow.fill_seen("ACC", "e1") is not None
    assert uow.book("FUT").slots[ALPHA].quantity == 1
    assert uow.open_slots("alpha") == 1
    uow.rollback()

    def sees_none_of_it(uow: UnitOfWork) -> None:
        uow.begin("look")
        try:
            assert uow.strategy("gamma") is None
            assert uow.strategy("alpha") is not None  # committed before: still there
            assert uow.order("o1") is None
            assert uow.fill_seen("ACC", "e1") is None
            book = uow.book("FUT")
            assert (book.slots, book.open_trades, book.version) == ({}, {}, 1)
            assert uow.stream_version("instrument:FUT") == 1
            assert uow.stream_version("strategy:gamma") == 0
            assert uow.open_slots("alpha") == 0
            assert uow.held("ACC") == []
            assert uow.bracket("b1") == []
            assert uow.commit() == []
        finally:
            uow.rollback()

    sees_none_of_it(uow)  # its caches too
    sees_none_of_it(units())
    assert [entry.seq for entry in store.reads().journal()] == before
    # Decided again, the same inputs apply, numbered right after what was committed.
    assert commit(uow, fill("e1", "BUY", "1", "100")) == [before[-1] + 1]


def test_loads_see_the_write_sets_staged_in_the_transaction(
    store: Store, units: Callable[[], UnitOfWork]
) -> None:
    uow = units()
    uow.begin("one-transaction")
    apply(uow, *REFDATA)
    assert uow.account("ACC") is not None and uow.instrument("FUT") is not None
    assert uow.strategy("alpha") is not None and uow.has_strategy("beta")
    order = {"type": "order", "account": "ACC", "strategy": "alpha", "instrument": "FUT",
             "quantity": "2", "bracket_id": "b1"}  # fmt: skip
    apply(
        uow,
        {**order, "client_order_id": "in", "side": "BUY", "intent": "entry"},
        {**order, "client_order_id": "tp", "side": "SELL", "intent": "take_profit"},
    )
    found = uow.order("in")
    assert found is not None and found[1] is OrderStatus.OPEN
    assert [(o.client_order_id, s, q) for o, s, q in uow.bracket("b1")] == [
        ("in", OrderStatus.OPEN, 0),
        ("tp", OrderStatus.OPEN, 0),
    ]
    # a fill
    (bought,) = apply(uow, fill("e1", "BUY", "1", "100", client_order_id="in"))
    seen = uow.fill_seen("ACC", "e1")
    assert seen is not None and (seen.seq, seen.digest) == (None, digest_of(bought))
    book = uow.book("FUT")
    assert book.slots[ALPHA].quantity == 1 and len(book.open_trades) == 1
    assert book.version == uow.stream_version("instrument:FUT") == 4
    assert uow.open_slots("alpha") == 1
    assert uow.held("ACC") == [("FUT", PositionSide.BOTH)]
    assert [q for _, _, q in uow.bracket("b1")] == [1, 0]
    again, nothing = decided(uow, fill("e1", "BUY", "1", "100", client_order_id="in"))
    assert (again.status, nothing) == ("duplicate", None)
    other, nothing = decided(uow, fill("e1", "BUY", "1", "99"))
    assert (other.status, nothing) == ("rejected", None)
    assert "conflict" in (other.reason or "")
    assert "earlier in the same batch" in (other.reason or "")
    # a cancel
    apply(uow, {"type": "cancel", "client_order_id": "tp"})
    assert status(uow, "tp") is OrderStatus.CANCELLED
    # a transfer with an id
    assert uow.transfer_seen("ACC", "t1") is None
    (moved,) = apply(uow, transfer("t1"))
    assert uow.transfer_seen("ACC", "t1") == Seen(None, digest_of(moved))
    assert uow.book("FUT").slots[ALPHA].quantity == 0
    assert uow.open_slots("alpha") == 0 and uow.open_slots("beta") == 1
    twice, nothing = decided(uow, transfer("t1"))
    assert (twice.status, nothing) == ("duplicate", None)
    # a reconciliation run's name
    assert not uow.run_seen("r1")
    apply(uow, check("r1"))
    assert uow.run_seen("r1")
    seqs = uow.commit()
    assert len(seqs) == len(REFDATA) + 6

    after = units()
    after.begin("look")
    try:
        fill_seen = after.fill_seen("ACC", "e1")
        assert fill_seen is not None and fill_seen.seq in seqs
        assert bought.entry is not None
        assert after.journal_record(fill_seen.seq) == bought.entry.input
        moved_seen = after.transfer_seen("ACC", "t1")
        assert moved_seen == Seen(seqs[-2], digest_of(moved))
        assert after.run_seen("r1")
        assert status(after, "in") is OrderStatus.OPEN
        assert status(after, "tp") is OrderStatus.CANCELLED
        assert [q for _, _, q in after.bracket("b1")] == [1, 0]
    finally:
        after.rollback()


# -- what the databases' unique keys guard ---------------------------------------------------


def _stale(units: Callable[[], UnitOfWork], record: dict[str, Any] | Reconcile) -> WriteSet:
    """A write set decided in a transaction that then ended: what a writer holds when
    another commits first."""
    loser = units()
    loser.begin("decided")
    write_set = decide(loser, record)[1]
    loser.rollback()
    return write_set


def _same_key(key: str, instrument: str) -> dict[str, Any] | Reconcile:
    """The key ``key`` taken by an input on ``instrument``: the loser decides it on FUT2,
    the winner on FUT (two streams: no stream lock orders them)."""
    if key == "fill":
        return fill("dup", "BUY", "1", "100", instrument=instrument)
    if key == "transfer":
        return transfer("t-dup", instrument=instrument)
    return check("r-dup", instrument=instrument)


@pytest.mark.parametrize("key", ["fill", "transfer", "run"])
def test_a_key_another_unit_of_work_committed_first_fails_the_commit_for_a_retry(
    db_url: str,
    key: str,
    store: Store,
    units: Callable[[], UnitOfWork],
    request: pytest.FixtureRequest,
) -> None:
    """One fill per (account, exec_id), a transfer id once per account, a run name once:
    a write set decided before another unit of work committed the same key fails its
    commit with an error ``classify`` calls RETRY and leaves nothing behind; run again,
    the transaction sees the winner's row."""
    bought = fill("e2", "BUY", "2", "100", instrument="FUT2")
    commit(units(), *REFDATA, fill("e1", "BUY", "2", "100"), bought)
    stale = _stale(units, _same_key(key, "FUT2"))
    won = commit(units(), _same_key(key, "FUT"), txid="winner")
    journal = store.reads().journal()
    assert journal[-1].seq == won[-1]

    loser = units()
    loser.begin("loser")
    loser.add(stale)
    with pytest.raises(Exception) as failed:
        loser.commit()
    loser.rollback()  # as the ledger does after any failure: harmless after a failed commit
    assert store.reads().journal() == journal  # nothing of it was written
    assert loser.classify(failed.value) == RETRY, repr(failed.value)

    # The retry decides again and sees the winner's row.
    loser.begin("retry")
    try:
        if key == "run":
            assert loser.run_seen("r-dup")
        else:
            outcome, nothing = decided(loser, _same_key(key, "FUT2"))
            assert (outcome.status, nothing) == ("rejected", None)
            assert "conflict" in (outcome.reason or ""), outcome
    finally:
        loser.rollback()


def test_one_open_trade_per_slot_is_kept_by_the_store(
    store: Store, units: Callable[[], UnitOfWork]
) -> None:
    """One open trade per slot (docs/accounting.md, Invariants): a second open trade in a
    slot fails the commit (a unique key on the databases, the commit's check in memory),
    whatever the code above it did."""
    commit(units(), *REFDATA, fill("e1", "BUY", "1", "100"))
    uow = units()
    uow.begin("second-open-trade")
    (trade,) = uow.book("FUT").open_trades.values()
    uow.add(WriteSet(None, (trade._replace(trade_id=uow.next_trade_id()),)))
    with pytest.raises(Exception) as failed:
        uow.commit()
    assert uow.classify(failed.value) is not None, repr(failed.value)  # a storage error
    uow.rollback()
    assert [t["trade_id"] for t in store.reads().trades({}, status="open")] == [trade.trade_id]


def test_a_write_set_decided_on_a_stream_version_another_moved_past_is_refused(
    store: Store, units: Callable[[], UnitOfWork]
) -> None:
    """One version per stream: a write set decided at version n of a stream that another
    unit of work has since taken to n + 1 cannot be added."""
    commit(units(), *REFDATA)
    stale = _stale(units, fill("e1", "BUY", "1", "100"))
    commit(units(), fill("e2", "BUY", "1", "100"))
    journal = store.reads().journal()
    uow = units()
    uow.begin("stale")
    with pytest.raises(RuntimeError, match="instrument:FUT: version 2 after 2"):
        uow.add(stale)
    uow.rollback()
    assert store.reads().journal() == journal
    uow.begin("look")
    assert uow.fill_seen("ACC", "e1") is None
    uow.rollback()


# -- journal numbers and transaction ids --------------------------------------------------


def test_commit_returns_the_journal_numbers_in_the_order_added(
    store: Store, units: Callable[[], UnitOfWork]
) -> None:
    uow = units()
    first = commit(uow, *reversed(REFDATA))
    assert first == sorted(first) and len(set(first)) == len(REFDATA)
    streams = [entry.stream for entry in store.reads().journal()]
    assert streams == ["strategy:beta", "strategy:alpha", "instrument:FUT2", "instrument:FUT",
                       "account:ACC"]  # fmt: skip
    added = [
        fill("e1", "BUY", "1", "100", instrument="FUT2"),
        {"type": "mark", "instrument": "FUT", "price": "100"},
        fill("e2", "BUY", "1", "100"),
        fill("e3", "SELL", "1", "101", instrument="FUT2"),
    ]
    second = commit(uow, *added)
    assert second == sorted(second) and second[0] > first[-1] and len(second) == len(added)
    later = store.reads().journal(after_seq=first[-1])
    assert [entry.seq for entry in later] == second
    assert [(entry.stream, entry.kind) for entry in later] == [
        ("instrument:FUT2", "fill"),
        ("instrument:FUT", "mark"),
        ("instrument:FUT", "fill"),
        ("instrument:FUT2", "fill"),
    ]
    # nothing journaled: no numbers
    uow.begin("nothing")
    outcome, nothing = decided(uow, fill("e1", "BUY", "1", "100", instrument="FUT2"))
    assert (outcome.status, nothing) == ("duplicate", None)
    assert uow.commit() == []


def test_committed_tells_whether_a_transaction_committed(
    db_url: str, units: Callable[[], UnitOfWork]
) -> None:
    """After a connection lost while committing, ``committed(txid)`` tells the unit of work
    that tried whether its commit happened: the journal holds the numbers its attempt drew,
    with its key. SQLite cannot lose a commit's reply (it is embedded): it stamps no
    transaction ids and always answers None."""
    tells = kind_of(db_url) != "sqlite"
    uow = units()
    done = commit(uow, *REFDATA, txid="a" * 32)
    assert uow.committed("a" * 32) == (done if tells else None)
    assert units().committed("a" * 32) is None  # another unit of work tried nothing
    assert uow.committed("0" * 32) is None  # not this key
    uow.begin("b" * 32)
    apply(uow, fill("e1", "BUY", "1", "100"))
    uow.rollback()
    assert uow.committed("b" * 32) is None  # rolled back
    uow.begin("c" * 32)
    assert uow.commit() == []
    assert uow.committed("c" * 32) is None  # committed no journal entry
    later = commit(uow, fill("e1", "BUY", "1", "100"), txid="d" * 32)
    assert uow.committed("d" * 32) == (later if tells else None)


# -- the outbox ---------------------------------------------------------------------------


def send(uow: UnitOfWork, *ids: str, minute: int, strategy: str = "alpha") -> int:
    """Commit a mark whose write set also sends ``strategy``'s commands ``ids``; its
    journal number."""
    uow.begin("send")
    mark = {
        "type": "mark",
        "instrument": "FUT",
        "price": "100",
        "ts": f"2026-03-02T09:{minute:02d}:00Z",
    }
    outcome, write_set = decide(uow, mark)
    assert outcome.applied, outcome
    payload = '{"side":"SELL","quantity":"1"}'
    commands = tuple(Command(i, "place", "ACC", "FUT", strategy, payload) for i in ids)
    uow.add(write_set._replace(commands=commands))
    (seq,) = uow.commit()
    return seq


def claim(
    uow: UnitOfWork, worker: str, now: int, limit: int = 10, **only: tuple[str, ...]
) -> list[CommandRow]:
    """Claim and commit; ``only``: ``accounts`` and ``strategies`` filters."""
    uow.begin("claim")
    claimed = uow.claim_commands(worker, limit, now, LEASE, **only)
    uow.commit()
    return claimed


def ids(rows: list[CommandRow]) -> list[str]:
    return [row.command_id for row in rows]


def test_claims_lease_commands_oldest_first_and_hand_them_out_again_when_it_runs_out(
    store: Store, units: Callable[[], UnitOfWork]
) -> None:
    uow = units()
    commit(uow, *REFDATA)
    first = send(uow, "c2", "c1", minute=1)
    second = send(uow, "c0", minute=2)
    pending = store.reads().commands(status="pending")
    assert ids(pending) == ["c1", "c2", "c0"]  # by the journal number of their cause
    assert [(c.status, c.seq, c.attempts, c.worker, c.created_at) for c in pending] == [
        ("pending", first, 0, None, T0),
        ("pending", first, 0, None, T0),
        ("pending", second, 0, None, T0),
    ]

    one = claim(uow, "w1", T0, limit=2)
    assert ids(one) == ["c1", "c2"]
    assert {(c.status, c.worker, c.lease_until, c.attempts, c.updated_at) for c in one} == {
        ("claimed", "w1", T0 + LEASE, 1, T0)
    }
    assert ids(claim(units(), "w2", T0 + SECOND)) == ["c0"]  # none w1 holds
    assert claim(units(), "w3", T0 + LEASE - 1) == []  # every lease still runs
    # w1's lease ran out: its commands go to the next worker that asks
    again = claim(units(), "w3", T0 + LEASE)
    assert ids(again) == ["c1", "c2"]
    assert {(c.worker, c.lease_until, c.attempts) for c in again} == {("w3", T0 + 2 * LEASE, 2)}
    stored = {c.command_id: c for c in store.reads().commands(status=None)}
    assert {i: (c.status, c.worker, c.attempts) for i, c in stored.items()} == {
        "c1": ("claimed", "w3", 2),
        "c2": ("claimed", "w3", 2),
        "c0": ("claimed", "w2", 1),
    }
    assert [stored["c1"], stored["c2"]] == again
    assert store.reads().commands(status="pending") == []


def test_a_claim_of_some_strategies_leaves_the_others_commands_to_other_workers(
    store: Store, units: Callable[[], UnitOfWork]
) -> None:
    uow = units()
    commit(uow, *REFDATA)
    send(uow, "a1", minute=1)
    send(uow, "b2", "b1", minute=2, strategy="beta")
    send(uow, "a2", minute=3)

    mine = claim(uow, "w1", T0, strategies=("alpha",))
    assert [(c.command_id, c.strategy, c.worker) for c in mine] == [
        ("a1", "alpha", "w1"),
        ("a2", "alpha", "w1"),
    ]
    pending = store.reads().commands(status="pending")
    assert [(c.command_id, c.strategy, c.worker, c.attempts) for c in pending] == [
        ("b1", "beta", None, 0),
        ("b2", "beta", None, 0),
    ]
    assert claim(units(), "w2", T0 + SECOND, strategies=("alpha",)) == []  # w1 holds them
    for nothing in ({"strategies": ()}, {"strategies": ("gamma",)},
                    {"accounts": ("ACC2",), "strategies": ("beta",)}):  # fmt: skip
        assert claim(units(), "w2", T0 + SECOND, **nothing) == [], nothing
    theirs = claim(units(), "w2", T0 + SECOND, accounts=("ACC",), strategies=("gamma", "beta"))
    assert [(c.command_id, c.worker, c.attempts) for c in theirs] == [
        ("b1", "w2", 1),
        ("b2", "w2", 1),
    ]
    assert claim(units(), "w3", T0 + SECOND) == []  # every command is held

    # Both leases ran out: a claim of beta's takes beta's alone, alpha's stay with w1.
    later = T0 + SECOND + LEASE
    assert ids(claim(units(), "w3", later, strategies=("beta",))) == ["b1", "b2"]
    stored = {
        c.command_id: (c.status, c.worker, c.attempts) for c in store.reads().commands(status=None)
    }
    assert stored == {
        "a1": ("claimed", "w1", 1),
        "a2": ("claimed", "w1", 1),
        "b1": ("claimed", "w3", 2),
        "b2": ("claimed", "w3", 2),
    }
    assert ids(claim(units(), "w3", later, strategies=("alpha",))) == ["a1", "a2"]


def test_a_claim_still_open_is_skipped_not_waited_for(
    db_url: str, store: Store, units: Callable[[], UnitOfWork]
) -> None:
    """On the servers a claim locks the rows it read (``FOR UPDATE SKIP LOCKED``) until it
    commits; another worker's claim meanwhile skips them instead of waiting. PostgreSQL
    locks only the rows the claim takes: a claim of another strategy, or of the same one,
    gets the rest at once. InnoDB keeps every pending or claimed row the claim read locked,
    whatever its strategy or the limit: the others get nothing until it commits. (SQLite
    and memory write one transaction at a time.)"""
    kind = kind_of(db_url)
    if kind not in ("postgresql", "mariadb"):
        pytest.skip("one writer at a time: no two claims run at once")
    uow = units()
    commit(uow, *REFDATA)
    send(uow, "a1", minute=1)
    send(uow, "b1", minute=2, strategy="beta")
    send(uow, "a2", minute=3)
    first = units()
    first.begin("claim")
    assert ids(first.claim_commands("w1", 1, T0, LEASE, strategies=("alpha",))) == ["a1"]
    meanwhile = [
        ids(claim(units(), "w2", T0, strategies=("beta",))),
        ids(claim(units(), "w3", T0, strategies=("alpha",))),
    ]
    assert meanwhile == ([["b1"], ["a2"]] if kind == "postgresql" else [[], []])
    first.commit()
    if kind == "mariadb":  # what was skipped is handed out next
        assert ids(claim(units(), "w2", T0, strategies=("beta",))) == ["b1"]
        assert ids(claim(units(), "w3", T0)) == ["a2"]
    assert claim(units(), "w4", T0) == []  # what was taken stays with its worker
    stored = {c.command_id: c.worker for c in store.reads().commands(status=None)}
    assert stored == {"a1": "w1", "b1": "w2", "a2": "w3"}


def test_a_claim_rolled_back_hands_nothing_out(
    store: Store, units: Callable[[], UnitOfWork]
) -> None:
    uow = units()
    commit(uow, *REFDATA)
    send(uow, "c1", minute=1)
    uow.begin("claim")
    assert ids(uow.claim_commands("w1", 10, T0, LEASE)) == ["c1"]
    uow.rollback()
    (pending,) = store.reads().commands(status="pending")
    assert (pending.command_id, pending.status, pending.attempts) == ("c1", "pending", 0)
    (claimed,) = claim(units(), "w2", T0)
    assert (claimed.worker, claimed.attempts) == ("w2", 1)


def test_settled_commands_are_final(store: Store, units: Callable[[], UnitOfWork]) -> None:
    uow = units()
    commit(uow, *REFDATA)
    send(uow, "c1", "c2", minute=1)
    assert ids(claim(uow, "w1", T0)) == ["c1", "c2"]

    uow.begin("ack")
    found = uow.command("c1")
    assert found is not None and (found.status, found.worker) == ("claimed", "w1")
    acked = uow.settle_command(found, "acked", T0 + SECOND, broker_order_id="B-1")
    assert (acked.status, acked.broker_order_id, acked.lease_until) == ("acked", "B-1", None)
    assert uow.command("nope") is None
    uow.commit()

    uow.begin("fail")
    found = uow.command("c2")
    assert found is not None
    failed = uow.settle_command(found, "failed", T0 + 2 * SECOND, reason="rejected by broker")
    uow.commit()
    assert (failed.status, failed.reason, failed.updated_at) == (
        "failed",
        "rejected by broker",
        T0 + 2 * SECOND,
    )

    # neither is handed out again, however long ago the leases ran out
    assert claim(units(), "w2", T0 + 100 * LEASE) == []
    stored = {c.command_id: c for c in store.reads().commands(status=None)}
    assert stored == {"c1": acked, "c2": failed}
    assert store.reads().commands(status="acked") == [acked]


# -- flushing and rebuilding ----------------------------------------------------------------


def test_a_flush_writes_what_is_staged_and_a_rollback_still_undoes_it(
    store: Store, units: Callable[[], UnitOfWork]
) -> None:
    uow = units()
    before = commit(uow, *REFDATA)
    uow.begin("flushed")
    apply(uow, fill("e1", "BUY", "2", "100"), {"type": "strategy", "strategy": "gamma"})
    uow.flush()
    apply(uow, fill("e2", "SELL", "1", "101"))
    # what was flushed is still this transaction's: loads see it, nobody else does
    assert uow.fill_seen("ACC", "e1") is not None and uow.strategy("gamma") is not None
    assert uow.book("FUT").slots[ALPHA].quantity == 1
    assert [entry.seq for entry in store.reads().journal()] == before
    uow.rollback()
    assert [entry.seq for entry in store.reads().journal()] == before
    assert store.reads().counts()["fills"] == 0
    uow.begin("look")
    assert uow.fill_seen("ACC", "e1") is None and uow.strategy("gamma") is None
    assert uow.book("FUT").slots == {}
    uow.rollback()

    uow.begin("flushed-committed")
    apply(uow, fill("e1", "BUY", "2", "100"))
    uow.flush()
    apply(uow, fill("e2", "SELL", "1", "101"))
    uow.flush()
    apply(uow, fill("e3", "SELL", "1", "102"))
    seqs = uow.commit()
    assert seqs == sorted(seqs) and seqs[0] > before[-1] and len(seqs) == 3
    assert [entry.seq for entry in store.reads().journal(after_seq=before[-1])] == seqs
    (trade,) = store.reads().trades({})
    assert (trade["status"], trade["exit_quantity"]) == ("closed", 2)


def test_a_refused_rebuild_changes_nothing(
    db_url: str, store: Store, units: Callable[[], UnitOfWork]
) -> None:
    """``rebuilding`` empties the projections inside its transaction: a rebuild refused
    because the journal does not replay leaves every projection as it was."""
    from posledger import Ledger, RebuildError

    uow = units()
    commit(uow, *REFDATA, fill("e1", "BUY", "2", "100"))
    uow.begin("tampered-effects")
    write_set = decide(uow, fill("e2", "BUY", "1", "101"))[1]
    assert write_set.entry is not None
    uow.add(write_set._replace(entry=write_set.entry._replace(effects='{"opened":[]}')))
    uow.commit()
    reads = store.reads()
    before = {name: list(reads.table(name)) for name in reads.projections()}
    ledger = Ledger(store)
    with pytest.raises(RebuildError):
        ledger.rebuild()
    ledger._uow.close()
    assert {name: list(reads.table(name)) for name in reads.projections()} == before
    assert sum(len(rows) for rows in before.values()) > 0
    fresh = units()  # nothing cached
    fresh.begin("after")
    assert fresh.book("FUT").slots[ALPHA].quantity == 3
    assert fresh.fill_seen("ACC", "e1") is not None and fresh.account("ACC") is not None
    fresh.rollback()
    # and once the store is written again, it holds what it held, and that
    commit(fresh, {"type": "strategy", "strategy": "gamma"})
    after = {name: list(reads.table(name)) for name in reads.projections()}
    assert [row["strategy"] for row in after.pop("strategies")] == ["alpha", "beta", "gamma"]
    assert after == {name: rows for name, rows in before.items() if name != "strategies"}
