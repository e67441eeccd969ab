"""Marks through the ledger: stamping, staleness, and what they do to open trades."""

from __future__ import annotations

import json

from posledger import open_ledger
from posledger.domain.timestamps import parse_ts

from .helpers import entries

T = parse_ts("2026-03-02T15:00:00Z")


def _setup(url: str, clock: list[int]):
    ledger = open_ledger(url, clock=lambda: clock[0])
    ledger.register_account(account="A", venue="CME", mode="SIM", position_mode="netting")
    ledger.register_instrument(
        instrument="MES",
        kind="future",
        multiplier="5",
        quote_currency="USD",
        settlement_currency="USD",
    )
    ledger.register_strategy(strategy="s1")
    ledger.apply_fill(
        exec_id="e1",
        account="A",
        instrument="MES",
        side="BUY",
        quantity="2",
        price="100",
        ts="2026-03-02T14:00:00Z",
        strategy="s1",
    )
    return ledger


def test_a_mark_without_ts_is_stamped_when_received_and_journaled_so(db_url: str) -> None:
    clock = [T]
    with _setup(db_url, clock) as ledger:
        first = ledger.apply_mark(instrument="MES", price="98")
        clock[0] = T + 1_000_000_000
        second = ledger.apply_mark(instrument="MES", price="103")
        assert (first.status, second.status) == ("applied", "applied")
        [position] = ledger.positions()
        # (103 - 100) * 2 * 5 = 30, at the second mark, stamped one second later
        assert position["unrealized_pnl"] == "30"
        assert position["mark_ts"] == "2026-03-02T15:00:01Z"
        [trade] = ledger.trades()
        # worst mark 98: (98 - 100) * 2 * 5 = -20; best 103: +30
        assert (trade["mae"], trade["mfe"]) == ("-20", "30")
        assert ledger.verify().ok
        marks = [entry[4] for entry in entries(ledger) if entry[3] == "mark"]
    assert [json.loads(text)["ts"] for text in marks] == [
        "2026-03-02T15:00:00Z",
        "2026-03-02T15:00:01Z",
    ]


def test_a_stale_mark_changes_nothing(db_url: str) -> None:
    with _setup(db_url, [T]) as ledger:
        assert ledger.apply_mark(instrument="MES", price="101", ts="2026-03-02T15:00:00Z").applied
        stale = ledger.apply_mark(instrument="MES", price="90", ts="2026-03-02T14:59:59Z")
        assert stale.status == "duplicate" and "stale" in (stale.reason or "")
        [trade] = ledger.trades()
        assert (trade["mae"], trade["mfe"]) == ("0", "10")
