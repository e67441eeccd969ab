"""The Kotak Neo polling connector against a fake Kotak Neo on loopback
(tests/fake_kotak.py): the whole day's trade report read on every poll and each fill
applied once; a new fill applied on the next poll; server errors, then recovery with
nothing lost and nothing doubled; the position book reconciled and agreeing, also after
a fill closed the position (docs/venues/kotak.md, Following an account).

Every wait is for a condition, bounded by a stall limit (tests/progress.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from posledger import open_ledger
from posledger.service.ledger import Ledger
from posledger.venues.follow import LedgerSink
from posledger.venues.kotak_follow import KotakFollower, Settings
from tests.fake_kotak import ACCESS, SESSION, SID, FakeKotak
from tests.progress import wait_until


def _setup(ledger: Ledger) -> None:
    outcomes = [
        ledger.register_account(
            account="KOTAK-1", venue="KOTAK_NEO", mode="LIVE", position_mode="netting"
        ),
        ledger.register_instrument(
            instrument="AXISBANK",
            kind="equity",
            multiplier="1",
            quote_currency="INR",
            settlement_currency="INR",
        ),
    ]
    assert all(o.status == "applied" for o in outcomes), outcomes
    ledger.map_symbol("kotak_neo", "KOTAK-1", "nse_cm:AXISBANK-EQ", "AXISBANK")


class Following:
    """The connector running on a loop of its own thread, over its own ledger."""

    def __init__(self, url: str, fake: FakeKotak) -> None:
        self.ledger = open_ledger(url)
        self.sink = LedgerSink(self.ledger)
        self.said: list[str] = []
        settings = Settings(
            base_url=fake.base_url,
            access_token=ACCESS,
            session_token=SESSION,
            sid=SID,
            poll_seconds=0.01,
            positions_every=5,
            reconnect_seconds=(0.02, 0.1),
        )
        self.follower = KotakFollower(
            self.sink,
            account="KOTAK-1",
            symbols=self.ledger.symbol_map("kotak_neo"),
            settings=settings,
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

    def progress(self) -> object:
        return (self.follower.sessions, self.follower.polls, self.sink.counts.line(), self.failed)

    def wait_session(self, n: int) -> None:
        """Until the ``n``-th session has read the report and reconciled."""
        wait_until(
            lambda: self.follower.sessions >= n and self.follower.caught_up.is_set(),
            self.progress,
            f"session {n} to catch up",
        )
        assert not self.failed, self.failed

    def wait_reconciled(self) -> None:
        """Until a reconciliation has started and ended after now."""
        done = self.sink.counts.reconciliations + 2
        wait_until(
            lambda: self.sink.counts.reconciliations >= done, self.progress, "a reconciliation"
        )

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join()
        self.sink.close()
        self.ledger.close()
        assert not self.failed, self.failed


@pytest.fixture
def fake() -> Iterator[FakeKotak]:
    server = FakeKotak().start()
    try:
        yield server
    finally:
        server.stop()
        assert server.refused == []


@pytest.fixture
def url(tmp_path: Path) -> str:
    address = f"sqlite:///{tmp_path / 'ledger.db'}"
    with open_ledger(address) as ledger:
        _setup(ledger)
    return address


def _fills(url: str) -> list[str]:
    with open_ledger(url) as ledger:
        return sorted(
            row["input"]["exec_id"]
            for row in ledger.journal_json(after_seq=0, limit=10_000)
            if row["kind"] == "fill"
        )


def _position(url: str) -> list[tuple[str, str, str]]:
    with open_ledger(url) as ledger:
        return sorted(
            (s["strategy"], s["side"], s["quantity"])
            for s in ledger.positions()
            if s["quantity"] != "0"
        )


def _last_check(url: str) -> dict[str, Any]:
    with open_ledger(url) as ledger:
        (check,) = ledger.reconciliations(account="KOTAK-1")
        return check


def test_every_poll_reads_the_whole_report_and_each_fill_is_applied_once(
    url: str, fake: FakeKotak
) -> None:
    first = fake.trade("B", 10, "658.70", "10:00:00")
    second = fake.trade("B", 5, "659.10", "10:05:00")
    following = Following(url, fake)
    try:
        following.wait_session(1)
        assert _fills(url) == sorted([first, second])
        assert _last_check(url)["kind"] == "agree"
        polls = following.follower.polls
        wait_until(lambda: following.follower.polls >= polls + 10, following.progress, "polls")
        counts = following.sink.counts
        assert counts.applied == 2 and counts.duplicate >= 20  # read again, never doubled
        third = fake.trade("S", 3, "661.00", "11:00:00")
        wait_until(lambda: len(_fills(url)) == 3, following.progress, "the new fill")
        assert third in _fills(url)
        following.wait_reconciled()
        assert _last_check(url)["kind"] == "agree"
    finally:
        following.close()
    assert _position(url) == [("EXTERNAL", "LONG", "12")]
    assert following.sink.counts.applied == 3
    assert following.follower.sessions == 1
    with open_ledger(url) as ledger:
        assert ledger.rejected_inputs() == []


def test_server_errors_then_recovery_lose_nothing_and_double_nothing(
    url: str, fake: FakeKotak
) -> None:
    fake.trade("B", 10, "658.70", "10:00:00")
    following = Following(url, fake)
    try:
        following.wait_session(1)
        fake.fail(5)  # the next five requests fail; meanwhile two more fills happen
        fake.trade("S", 4, "660.00", "10:30:00")
        fake.trade("B", 1, "659.00", "10:31:00")
        wait_until(lambda: fake.failed == 5, following.progress, "the failures")
        following.wait_session(2)
        wait_until(lambda: len(_fills(url)) == 3, following.progress, "the fills missed")
        following.wait_reconciled()
        assert _last_check(url)["kind"] == "agree"
    finally:
        following.close()
    assert following.follower.sessions >= 2
    assert any("500" in line and "again in" in line for line in following.said)
    assert following.sink.counts.applied == 3 and len(_fills(url)) == 3
    assert _position(url) == [("EXTERNAL", "LONG", "7")]
    with open_ledger(url) as ledger:
        assert ledger.rejected_inputs() == []


def test_a_position_closed_by_a_fill_in_the_report_is_flat_and_agrees(
    url: str, fake: FakeKotak
) -> None:
    fake.trade("B", 10, "658.70", "10:00:00")
    following = Following(url, fake)
    try:
        following.wait_session(1)
        assert _position(url) == [("EXTERNAL", "LONG", "10")]
        assert _last_check(url)["kind"] == "agree"
        fake.trade("S", 10, "662.00", "14:00:00")  # the broker closed it
        wait_until(lambda: len(_fills(url)) == 2, following.progress, "the closing fill")
        following.wait_reconciled()
        check = _last_check(url)
        assert check["kind"] == "agree", check
    finally:
        following.close()
    assert _position(url) == []


def test_a_position_the_report_does_not_explain_is_reported(url: str, fake: FakeKotak) -> None:
    """A position carried from an earlier day, with no fill in today's report: the books
    do not hold it, and the reconciliation says so."""
    fake.hold("AXISBANK-EQ", 20)
    following = Following(url, fake)
    try:
        following.wait_session(1)
    finally:
        following.close()
    assert _last_check(url)["kind"] != "agree"
    assert following.sink.counts.differences >= 1
    assert any("differ from the broker" in line for line in following.said)
