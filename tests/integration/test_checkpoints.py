"""Checkpoints (docs/format.md, As of a time): the ledger as of any journal entry is the
same from the newest checkpoint before it as from the start of the journal, through
brackets, cancels and amended legs; a checkpoint a late commit made stale is never used;
``rebuild`` deletes them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from posledger import Ledger, open_ledger
from posledger.errors import UsageError
from posledger.ports import Store
from posledger.service import replay
from posledger.store.sqlstore import SqlStore

from . import test_brackets
from .helpers import fill, setup


def _books(ledger: Ledger) -> tuple[Any, ...]:
    return (
        ledger.positions(include_flat=True),
        ledger.trades(),
        ledger.brackets(),
        ledger.exit_orders(),
        ledger.pnl(by="strategy"),
    )


def _every_entry_both_ways(url: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """Compare, at every journal entry, the ledger as of it from checkpoints and from the
    start of the journal; how many of them started from a checkpoint."""
    from_checkpoint = 0
    with open_ledger(url) as ledger:
        last = ledger.journal(limit=None)[-1].seq
        assert ledger.store.last_checkpoint()
        for seq in range(1, last + 1):
            past = ledger.store.past(seq)
            from_checkpoint += past.after > 0
            past.store.close()
            with ledger.as_of(seq=seq) as quick:
                seen = _books(quick)
            with monkeypatch.context() as m:
                m.setattr(SqlStore, "past", Store.past)
                with ledger.as_of(seq=seq) as slow:
                    expected = _books(slow)
            assert seen == expected, f"as of entry {seq}"
    return from_checkpoint


_brackets = test_brackets
SCENARIOS: dict[str, Callable[[str], None]] = {
    "fills-and-acks": _brackets.test_each_strategy_keeps_its_own_bracket_through_fills_and_acks,
    "stuck-cancel": _brackets.test_a_stuck_cancel_is_an_anomaly_until_a_sweep,
    "adoption": (
        _brackets.test_an_adoption_at_reconciliation_resizes_the_legs_and_acks_come_as_lines
    ),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_as_of_from_a_checkpoint_equals_a_replay_from_the_start(
    db_url: str, monkeypatch: pytest.MonkeyPatch, scenario: str
) -> None:
    monkeypatch.setenv("POSLEDGER_CHECKPOINT_EVERY", "3")
    # The scenario's own verify and rebuild at its end (rebuild deletes the checkpoints).
    monkeypatch.setattr(test_brackets, "replays", lambda ledger: None)
    SCENARIOS[scenario](db_url)
    assert _every_entry_both_ways(db_url, monkeypatch) > 0


def _fills(ledger: Ledger, first: int, count: int) -> None:
    for n in range(first, first + count):
        side = "BUY" if n % 3 else "SELL"
        assert fill(
            ledger, f"x{n}", side, "1", str(100 + n % 7), strategy="alpha", minute=n
        ).applied


def test_a_stale_checkpoint_is_not_used_and_the_next_one_replaces_it(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        ledger.checkpoint_every = 4
        setup(ledger)
        _fills(ledger, 1, 12)
        store = ledger.store
        newest = store.last_checkpoint()
        assert newest
        with ledger.as_of(seq=newest) as past:
            expected = _books(past)
        # As if an entry below the newest checkpoint had committed after it was taken.
        assert isinstance(store, SqlStore)
        with store.database.engine.begin() as conn:
            conn.execute(text("UPDATE checkpoints SET entries = entries - 1 WHERE seq = :s"),
                         {"s": newest})  # fmt: skip
        start = store.past(newest)
        start.store.close()
        assert 0 < start.after < newest
        with ledger.as_of(seq=newest) as past:
            assert _books(past) == expected
        _fills(ledger, 13, 4)
        with store.database.engine.connect() as conn:
            kept = [seq for (seq,) in conn.execute(text("SELECT seq FROM checkpoints"))]
        assert newest not in kept and max(kept) > newest


def _checkpoints(ledger: Ledger) -> list[tuple[int, int]]:
    store = ledger.store
    assert isinstance(store, SqlStore)
    with store.database.engine.connect() as conn:
        query = text("SELECT seq, entries FROM checkpoints ORDER BY seq")
        return [(int(seq), int(entries)) for seq, entries in conn.execute(query)]


def test_rebuild_replaces_the_checkpoints_with_its_own(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The projections a rebuild rewrites may differ from those the old checkpoints were
    taken from: it deletes them and takes its own as it replays (here every 4 entries)."""
    with open_ledger(db_url) as ledger:
        ledger.checkpoint_every = 5
        setup(ledger)
        _fills(ledger, 1, 12)
        before = _checkpoints(ledger)
        assert before
        store = ledger.store
        assert isinstance(store, SqlStore)
        with store.database.engine.begin() as conn:  # a checkpoint no rebuild would write
            conn.execute(text("UPDATE checkpoints SET state = 'wrong'"))
        monkeypatch.setattr(replay, "PAGE", 4)
        ledger.rebuild()
        after = _checkpoints(ledger)
        last = ledger.journal(limit=None)[-1].seq
        assert after == [(seq, seq) for seq in range(4, last + 1, 4)]
        assert ledger.verify().ok
    assert _every_entry_both_ways(db_url, monkeypatch) > 0


def test_an_order_changed_after_the_checkpoint_is_looked_up_as_it_stood_then(
    db_url: str,
) -> None:
    """An order registered before the checkpoint and cancelled after the entry asked for:
    its stored row is the cancelled one, so the replay after the checkpoint must find it
    as it was then (open, beta's) to give its fill to beta."""
    with open_ledger(db_url) as ledger:
        ledger.checkpoint_every = 1
        setup(ledger)
        order = ledger.register_order(
            client_order_id="O-1", account="ACC", strategy="beta", instrument="FUT",
            side="BUY", quantity="3", intent="entry", ts="2026-03-02T10:00:00Z",
        )  # fmt: skip
        assert order.applied
        filled = fill(ledger, "f1", "BUY", "1", "100", strategy=None, client_order_id="O-1",
                      minute=1)  # fmt: skip
        assert filled.applied, filled
        assert ledger.cancel_order(client_order_id="O-1", ts="2026-03-02T10:02:00Z").applied
        store = ledger.store
        assert isinstance(store, SqlStore)
        with store.database.engine.begin() as conn:
            conn.execute(text("DELETE FROM checkpoints WHERE seq > :s"), {"s": order.seq})
        start = store.past(filled.seq)
        start.store.close()
        assert start.after == order.seq
        with ledger.as_of(seq=filled.seq) as past:
            (slot,) = past.positions()
        assert (slot["strategy"], slot["quantity"]) == ("beta", "1")


def test_the_interval_comes_from_the_environment(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSLEDGER_CHECKPOINT_EVERY", "0")
    with open_ledger(db_url) as ledger:
        assert ledger.checkpoint_every == 0
        setup(ledger)
        _fills(ledger, 1, 5)
        assert ledger.store.last_checkpoint() == 0
    monkeypatch.setenv("POSLEDGER_CHECKPOINT_EVERY", "2")
    with open_ledger(db_url) as ledger:
        _fills(ledger, 6, 3)
        assert ledger.store.last_checkpoint() == ledger.journal(limit=None)[-1].seq
    for bad in ("-1", "often"):
        monkeypatch.setenv("POSLEDGER_CHECKPOINT_EVERY", bad)
        with pytest.raises(UsageError, match="POSLEDGER_CHECKPOINT_EVERY"):
            open_ledger(db_url)


def test_a_checkpoint_the_database_refuses_for_a_passing_reason_is_tried_again(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost connection while a checkpoint is taken (after the commit) does not fail the
    input that was committed: the next commit that is due takes it. A mistake in the SQL
    is not passed over."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from posledger.store import checkpoints

    with open_ledger(db_url) as ledger:
        ledger.checkpoint_every = 2
        setup(ledger)
        real = checkpoints.take
        lost = OperationalError("SELECT", {}, Exception("the connection is lost"))

        def gone(*args: object) -> None:
            raise lost

        monkeypatch.setattr(checkpoints, "take", gone)
        _fills(ledger, 1, 3)  # due twice, refused twice: still applied
        before = ledger.store.last_checkpoint()
        monkeypatch.setattr(checkpoints, "take", real)
        _fills(ledger, 4, 2)
        assert before < ledger.store.last_checkpoint() <= ledger.journal(limit=None)[-1].seq
        mistake = ProgrammingError("SELECT", {}, Exception("syntax error"))

        def wrong(*args: object) -> None:
            raise mistake

        monkeypatch.setattr(checkpoints, "take", wrong)
        with pytest.raises(ProgrammingError):
            _fills(ledger, 6, 2)
