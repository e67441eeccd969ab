"""Two Ledger objects (two connections) on one database take turns writing.

On SQLite each writer learns of the other's commits from ``PRAGMA data_version``; on the
servers from the stream versions it reads under the stream's row lock; two ledgers on one
``memory://NAME`` share its store, like two processes on one SQLite file, and learn from
the store's commit count. Either way the contract is the same, so these run on every
store.
"""

from __future__ import annotations

import random

from posledger import open_ledger
from tests.databases import fresh_database

from .helpers import entries, fill, kind_of, setup, snapshot, table


def test_each_writer_sees_the_others_commits(db_url: str) -> None:
    with open_ledger(db_url) as one, open_ledger(db_url) as two:
        # Both are open (and have read the empty database) before anything is written.
        assert one.positions() == two.positions() == []
        setup(one)
        # two must see the reference data one registered
        assert fill(two, "e1", "BUY", "1", "100", minute=1).applied
        # one must see two's slot and open trade, and continue it
        assert fill(one, "e2", "BUY", "2", "103", minute=2).applied
        (position,) = two.positions()
        assert (position["signed_quantity"], position["avg_entry_price"]) == ("3", "102")
        # neither applies the other's fill a second time
        assert fill(one, "e1", "BUY", "1", "100", minute=1).status == "duplicate"
        assert fill(two, "e2", "BUY", "2", "103", minute=2).status == "duplicate"
        # the registrations are duplicates for both, too
        assert two.register_strategy(strategy="alpha").status == "duplicate"
        assert fill(two, "e3", "SELL", "3", "104", minute=3).applied
        for ledger in (one, two):
            (trade,) = ledger.trades()
            assert trade["status"] == "closed"
            assert [f["exec_id"] for f in trade["fills"]] == ["e1", "e2", "e3"]
            assert trade["gross_realized_pnl"] == "30"  # (104 - 102) * 3 * 5
            assert ledger.positions() == []
        # a new trade after the other writer's close gets a fresh id
        assert fill(one, "e4", "SELL", "1", "105", minute=4).applied
        assert [t["trade_id"] for t in two.trades()] == [1, 2]
        assert one.verify().ok and two.verify().ok
    with open_ledger(db_url) as reopened:
        seqs = [entry[0] for entry in entries(reopened)]
    assert seqs == list(range(1, len(seqs) + 1))


def test_alternating_writers_equal_a_single_writer(db_url: str) -> None:
    seed = 20260302
    print(f"seed {seed}")
    rng = random.Random(seed)
    plan = []
    for i in range(120):
        strategy = rng.choice(["alpha", "beta"])
        side = rng.choice(["BUY", "SELL"])
        quantity = str(rng.randint(1, 3))
        price = f"{100 + rng.randint(-20, 20) / 4}"
        plan.append((f"e{i}", side, quantity, price, strategy, i))
        if rng.random() < 0.2:  # resend an earlier fill
            plan.append(plan[rng.randrange(len(plan))])

    shared = db_url
    with (
        fresh_database(kind_of(db_url)) as single,
        open_ledger(shared) as one,
        open_ledger(shared) as two,
        open_ledger(single) as alone,
    ):
        setup(one)
        setup(alone)
        writers = [one, two]
        outcomes_shared, outcomes_alone = [], []
        for exec_id, side, quantity, price, strategy, minute in plan:
            writer = writers[rng.randrange(2)]
            args = (exec_id, side, quantity, price)
            outcomes_shared.append(fill(writer, *args, strategy=strategy, minute=minute).status)
            outcomes_alone.append(fill(alone, *args, strategy=strategy, minute=minute).status)
        assert outcomes_shared == outcomes_alone
        assert snapshot(one)[:3] == snapshot(two)[:3] == snapshot(alone)[:3]
        assert one.verify().ok
        assert entries(one) == entries(two) == entries(alone)
        distinct = len({step[0] for step in plan})
        assert len(table(one, "fills")) == distinct
