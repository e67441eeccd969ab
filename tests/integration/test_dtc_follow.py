"""The DTC connector against a fake Sierra Chart DTC server on loopback
(tests/fake_dtc.py): live fills applied; a connection dropped mid-stream, the fills made
while away caught up from the fill history, nothing doubled; a position the broker closed
while away found flat after the reconnect; a restated filled order never booked; SIM and
LIVE trade accounts kept apart (docs/venues/dtc.md, Following an account).

Every wait is for a condition, bounded by a stall limit (tests/progress.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from posledger import open_ledger
from posledger.service.ledger import Ledger
from posledger.venues.dtc_follow import DtcFollower, LogonRefused, Settings
from posledger.venues.follow import LedgerSink
from tests.fake_dtc import PASSWORD, USERNAME, FakeDtc
from tests.progress import wait_until

NOW = int(time.time())
T0 = NOW - 3600
ES = "ESH26_FUT_CME"
ACCOUNTS = {"Sim1": "SIM-1", "LIVE-77": "LIVE-1"}


def _setup(ledger: Ledger) -> None:
    outcomes = [
        ledger.register_account(account="SIM-1", venue="SIERRA", mode="SIM",
                                position_mode="netting"),
        ledger.register_account(account="LIVE-1", venue="SIERRA", mode="LIVE",
                                position_mode="netting"),
        ledger.register_instrument(
            instrument="ES", kind="future", multiplier="50", quote_currency="USD",
            settlement_currency="USD",
        ),
        ledger.register_strategy(strategy="alpha"),
    ]  # fmt: skip
    assert all(o.status == "applied" for o in outcomes), outcomes
    ledger.map_symbol("dtc", "SIM-1", ES, "ES")
    ledger.map_symbol("dtc", "LIVE-1", ES, "ES")


class Following:
    """The connector running on a loop of its own thread, over its own ledger."""

    def __init__(self, url: str, fake: FakeDtc, password: str = PASSWORD) -> None:
        self.ledger = open_ledger(url)
        self.sink = LedgerSink(self.ledger)
        self.said: list[str] = []
        self.follower = DtcFollower(
            self.sink,
            host="127.0.0.1",
            port=fake.port,
            username=USERNAME,
            password=password,
            accounts=ACCOUNTS,
            symbols=self.ledger.symbol_map("dtc"),
            strategy_of=lambda cid: cid.split("-")[0] if cid.startswith("alpha-") else None,
            settings=Settings(heartbeat_seconds=1, reconnect_seconds=(0.05, 0.2)),
            log=self.said.append,
        )
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.failed: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="follower")
        self.thread.start()

    def _run(self) -> None:
        try:
            self.loop.run_until_complete(self.follower.run(self.stop))
        except BaseException as exc:  # shown by the test that waits for it
            self.failed.append(exc)

    def wait_session(self, n: int) -> None:
        """Until the ``n``-th session has caught up and reconciled."""
        wait_until(
            lambda: self.follower.sessions >= n and self.follower.caught_up.is_set(),
            lambda: (self.follower.sessions, self.sink.counts.line(), self.failed),
            f"session {n} to catch up",
        )
        assert not self.failed, self.failed

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join()
        self.sink.close()
        self.ledger.close()
        assert not self.failed, self.failed


@pytest.fixture
def fake() -> Iterator[FakeDtc]:
    server = FakeDtc().start()
    try:
        yield server
    finally:
        server.stop()
        assert server.refused == []


def _fills(url: str) -> list[str]:
    with open_ledger(url) as ledger:
        return sorted(
            row["input"]["exec_id"]
            for row in ledger.journal_json(after_seq=0, limit=10_000)
            if row["kind"] == "fill"
        )


def _positions(url: str) -> list[tuple[str, str, str, str]]:
    with open_ledger(url) as ledger:
        return sorted(
            (s["account"], s["strategy"], s["side"], s["quantity"]) for s in ledger.positions()
        )


def _last_check(url: str, account: str) -> dict[str, Any]:
    with open_ledger(url) as ledger:
        checks = ledger.reconciliations(account=account)
        assert checks, f"no reconciliation of {account}"
        return checks[0]


def _url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with open_ledger(url) as ledger:
        _setup(ledger)
    return url


def test_a_dropped_connection_is_caught_up_from_history_and_nothing_doubles(
    tmp_path: Path, fake: FakeDtc
) -> None:
    url = _url(tmp_path)
    f1 = fake.trade("Sim1", ES, "BUY", "2", "6850.25", T0 + 1)
    following = Following(url, fake)
    try:
        following.wait_session(1)  # f1 from history
        assert _fills(url) == [f1.exec_id]
        assert _last_check(url, "SIM-1")["kind"] == "agree"
        f2 = fake.trade("Sim1", ES, "BUY", "1", "6851", T0 + 2)
        fake.push(f1.order_update(), f2.order_update())  # f1 again: a duplicate
        wait_until(lambda: len(_fills(url)) == 2, lambda: _fills(url), "f2 live")
        # The connection drops; meanwhile f3 and f4 happen and are never pushed.
        f3 = fake.trade("Sim1", ES, "SELL", "1", "6852", T0 + 3)
        f4 = fake.trade("Sim1", ES, "BUY", "1", "6853", T0 + 4)
        fake.drop()
        following.wait_session(2)
        assert _fills(url) == sorted(f.exec_id for f in (f1, f2, f3, f4))
        assert _last_check(url, "SIM-1")["kind"] == "agree"
    finally:
        following.close()
    assert following.sink.counts.applied == 4
    assert _positions(url) == [("SIM-1", "alpha", "LONG", "3")]
    with open_ledger(url) as ledger:
        assert ledger.rejected_inputs() == []
        assert ledger.store.venue_state("dtc:SIM-1") is not None
    # The second session asked for history from the cursor, not the whole period.
    histories = [r for r in fake.requests if r["Type"] == 303 and r["TradeAccount"] == "Sim1"]
    assert histories[0]["NumberOfDays"] == 7 and histories[0]["StartDateTime"] == 0
    assert histories[1]["StartDateTime"] == T0 + 2 - 60


def test_a_position_closed_while_away_is_flat_after_the_reconnect(
    tmp_path: Path, fake: FakeDtc
) -> None:
    """The broker exited while the connector was away: the history has the exit fill, so
    after the reconnect the books are flat, and the reconciliation agrees."""
    url = _url(tmp_path)
    entry = fake.trade("Sim1", ES, "BUY", "2", "6850", T0 + 1)
    following = Following(url, fake)
    try:
        following.wait_session(1)
        assert _positions(url) == [("SIM-1", "alpha", "LONG", "2")]
        fake.drop()
        exit_fill = fake.trade("Sim1", ES, "SELL", "2", "6860", T0 + 5)
        following.wait_session(2)
    finally:
        following.close()
    assert _fills(url) == sorted([entry.exec_id, exit_fill.exec_id])
    assert _positions(url) == []
    check = _last_check(url, "SIM-1")
    assert check["kind"] == "agree", check
    with open_ledger(url) as ledger:
        (trade,) = ledger.trades()
        assert trade["realized_pnl"] == "1000"  # (6860 - 6850) x 2 x 50


def test_a_restated_filled_order_is_never_booked(tmp_path: Path, fake: FakeDtc) -> None:
    """A filled order restated by the open-orders answer and pushed with a RequestID is
    not a fill: its execution is in neither the history nor the positions, and it never
    reaches the ledger."""
    url = _url(tmp_path)
    f1 = fake.trade("Sim1", ES, "BUY", "1", "6850", T0 + 1)
    ghost = fake.trade("Sim1", ES, "BUY", "5", "6800", T0 + 2)
    fake.fills.remove(ghost)
    fake.restate(ghost)
    following = Following(url, fake)
    try:
        following.wait_session(1)
        fake.push(ghost.order_update(request_id=9), f1.order_update())
        fake.drop()
        following.wait_session(2)
    finally:
        following.close()
    assert _fills(url) == [f1.exec_id]
    assert _positions(url) == [("SIM-1", "alpha", "LONG", "1")]
    assert _last_check(url, "SIM-1")["kind"] == "agree"


def test_sim_and_live_trade_accounts_stay_apart(tmp_path: Path, fake: FakeDtc) -> None:
    url = _url(tmp_path)
    sim = fake.trade("Sim1", ES, "BUY", "2", "6850", T0 + 1)
    live = fake.trade("LIVE-77", ES, "SELL", "1", "6855", T0 + 2, client_order_id="beta-1")
    following = Following(url, fake)
    try:
        following.wait_session(1)
        pushed = fake.trade("LIVE-77", ES, "SELL", "1", "6856", T0 + 3)
        fake.push(pushed.order_update())
        wait_until(lambda: len(_fills(url)) == 3, lambda: _fills(url), "the live fill")
    finally:
        following.close()
    assert _fills(url) == sorted([sim.exec_id, live.exec_id, pushed.exec_id])
    assert _positions(url) == [
        ("LIVE-1", "EXTERNAL", "SHORT", "1"),
        ("LIVE-1", "alpha", "SHORT", "1"),
        ("SIM-1", "alpha", "LONG", "2"),
    ]
    assert _last_check(url, "SIM-1")["kind"] == "agree"
    assert _last_check(url, "LIVE-1")["kind"] == "agree"


def test_a_refused_logon_stops_without_retrying(tmp_path: Path, fake: FakeDtc) -> None:
    url = _url(tmp_path)
    following = Following(url, fake, password="wrong")
    following.thread.join()
    following.sink.close()
    following.ledger.close()
    (failure,) = following.failed
    assert isinstance(failure, LogonRefused) and "Invalid username" in str(failure)
    assert following.follower.sessions == 1 and fake.logons == 0
