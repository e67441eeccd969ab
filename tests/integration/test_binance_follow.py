"""The Binance connector against a fake Binance on loopback (tests/fake_binance.py): fills
from the stream applied as they come; a connection that drops mid-stream, then the gap
filled from the fill history on reconnecting, nothing doubled; old messages sent again
and fills out of order; a position closed while away reported, then booked as the
account's policy says (docs/venues/binance.md, Following an account).

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
from posledger.venues.binance_follow import BinanceFollower, Settings
from posledger.venues.follow import LedgerSink
from tests.fake_binance import KEY, SECRET, FakeBinance
from tests.progress import wait_until

T0 = 1_772_445_600_000  # 2026-03-02T10:00:00Z, in ms
NOW = T0 + 3_600_000


def _setup(ledger: Ledger, policy: str = "report") -> None:
    outcomes = [
        ledger.register_account(
            account="BIN-1",
            venue="BINANCE",
            mode="LIVE",
            position_mode="netting",
            reconcile_policy=policy,
        ),
        ledger.register_instrument(
            instrument="BTC-PERP",
            kind="perpetual",
            multiplier="1",
            base_currency="BTC",
            quote_currency="USDT",
            settlement_currency="USDT",
        ),
        ledger.register_strategy(strategy="alpha"),
    ]
    assert all(o.status == "applied" for o in outcomes), outcomes
    ledger.map_symbol("binance", "BIN-1", "BTCUSDT", "BTC-PERP")


class Following:
    """The connector running on a loop of its own thread, over its own ledger."""

    def __init__(self, url: str, fake: FakeBinance, execute: bool = False) -> None:
        self.ledger = open_ledger(url)
        self.sink = LedgerSink(self.ledger)
        self.said: list[str] = []
        settings = Settings(
            rest_url=fake.rest_url,
            ws_url=fake.ws_url,
            api_key=KEY,
            api_secret=SECRET,
            reconnect_seconds=(0.05, 0.2),
            execute_commands=execute,
        )
        self.follower = BinanceFollower(
            self.sink,
            account="BIN-1",
            symbols=self.ledger.symbol_map("binance"),
            settings=settings,
            strategy_of=lambda cid: cid.split("-")[0] if cid.startswith("alpha-") else None,
            log=self.said.append,
            clock_ms=lambda: NOW,
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
def fake() -> Iterator[FakeBinance]:
    server = FakeBinance().start()
    try:
        yield server
    finally:
        server.stop()
        assert server.refused == []


def _fills(url: str) -> list[str]:
    with open_ledger(url) as ledger:
        return [
            row["input"]["exec_id"]
            for row in ledger.journal_json(after_seq=0, limit=10_000)
            if row["kind"] == "fill"
        ]


def _position(url: str) -> list[tuple[str, str, str]]:
    with open_ledger(url) as ledger:
        return sorted((s["strategy"], s["side"], s["quantity"]) for s in ledger.positions())


def _last_check(url: str) -> dict[str, Any]:
    with open_ledger(url) as ledger:
        (check,) = ledger.reconciliations(account="BIN-1")
        return check


def test_a_dropped_stream_is_caught_up_from_history_and_nothing_doubles(
    tmp_path: Path, fake: FakeBinance
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with open_ledger(url) as ledger:
        _setup(ledger)
    t1 = fake.trade("BUY", "0.010", "65000.5", T0 + 1000)
    t2 = fake.trade("BUY", "0.005", "65010", T0 + 2000)
    following = Following(url, fake)
    try:
        following.wait_session(1)  # history before the stream: t1 and t2 come from there
        assert sorted(_fills(url)) == ["BTCUSDT:1001", "BTCUSDT:1002"]
        assert _last_check(url)["kind"] == "agree"
        fake.push(t1.event(), t2.event())  # the stream sends them too: duplicates
        t3 = fake.trade("SELL", "0.003", "65100", T0 + 3000)
        fake.push(t3.event())
        wait_until(lambda: len(_fills(url)) == 3, lambda: _fills(url), "t3 from the stream")
        # The connection drops; meanwhile t4 and t5 happen and never reach the stream.
        fake.trade("SELL", "0.002", "65200", T0 + 4000)  # t4
        fake.trade("BUY", "0.001", "65150", T0 + 5000)  # t5
        fake.drop()
        following.wait_session(2)
        assert sorted(_fills(url)) == [f"BTCUSDT:100{n}" for n in range(1, 6)]
        assert _last_check(url)["kind"] == "agree"  # the books agree with positionRisk
        # After the reconnect: an old message again, and two fills out of order.
        t6 = fake.trade("BUY", "0.004", "65300", T0 + 6000)
        t7 = fake.trade("SELL", "0.001", "65350", T0 + 7000)
        fake.push(t3.event(), t7.event(), t6.event())
        wait_until(lambda: len(_fills(url)) == 7, lambda: _fills(url), "t6 and t7")
        fake.drop()  # one more session: it reconciles what the stream brought
        following.wait_session(3)
        assert _last_check(url)["kind"] == "agree"
    finally:
        following.close()
    fills = _fills(url)
    assert sorted(fills) == [f"BTCUSDT:100{n}" for n in range(1, 8)]  # each once
    # 0.010 + 0.005 - 0.003 - 0.002 + 0.001 + 0.004 - 0.001 = 0.014
    assert _position(url) == [("alpha", "LONG", "0.014")]
    with open_ledger(url) as ledger:
        assert ledger.rejected_inputs() == []
    assert following.sink.counts.applied == 7
    assert following.follower.sessions == 3 and len(fake.listen_keys) == 3


def test_a_position_closed_while_away_is_reported_then_adopted(
    tmp_path: Path, fake: FakeBinance
) -> None:
    """The broker closed the position while the connector was away, and the history does
    not have the closing fill (it is gone from it): the reconciliation on reconnecting
    finds the difference and, the account's policy being ``adopt``, books it to
    ``EXTERNAL``, so the books agree with the broker again."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with open_ledger(url) as ledger:
        _setup(ledger, policy="adopt")
    fake.trade("BUY", "0.010", "65000", T0 + 1000)
    following = Following(url, fake)
    try:
        following.wait_session(1)
        assert _position(url) == [("alpha", "LONG", "0.01")]
        fake.trade("SELL", "0.010", "64000", T0 + 2000, in_history=False)
        fake.drop()
        following.wait_session(2)
    finally:
        following.close()
    check = _last_check(url)
    assert (check["kind"], check["difference"], check["action"]) == (
        "stale_position",
        "-0.01",
        "adopted",
    ), check
    assert _position(url) == [("EXTERNAL", "SHORT", "0.01"), ("alpha", "LONG", "0.01")]
    assert any("differ from the broker" in line for line in following.said)


def test_a_bracket_is_carried_out_on_binance(tmp_path: Path, fake: FakeBinance) -> None:
    """``execute_commands``: the bracket's legs are placed with their command ids as client
    order ids; the take-profit fills at the broker, so the ledger cancels the stop-loss,
    and the connector cancels it at the broker; every command is acked."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with open_ledger(url) as ledger:
        _setup(ledger)
    following = Following(url, fake, execute=True)
    try:
        following.wait_session(1)
        entry = fake.trade("BUY", "0.01", "65000", T0 + 1000)
        fake.push(entry.event())
        wait_until(lambda: len(_fills(url)) == 1, lambda: _fills(url), "the entry fill")
        with open_ledger(url) as ledger:
            done = ledger.set_bracket(
                account="BIN-1",
                instrument="BTC-PERP",
                strategy="alpha",
                take_profit="66000",
                stop_loss="64000",
            )
            assert done.applied, done
        wait_until(lambda: _legs(url) == {"live"}, lambda: (_legs(url), fake.orders), "legs live")
        placed = {o["type"]: o for o in fake.orders.values()}
        with open_ledger(url) as ledger:
            ids = {c["payload"]["intent"]: c["command_id"] for c in ledger.commands(status=None)}
        tp, sl = placed["LIMIT"], placed["STOP_MARKET"]
        assert (tp["clientOrderId"], sl["clientOrderId"]) == (ids["take_profit"], ids["stop_loss"])
        assert (tp["side"], tp["origQty"], tp["price"], tp["reduceOnly"]) == (
            "SELL",
            "0.01",
            "66000",
            True,
        )
        assert (sl["side"], sl["origQty"], sl["stopPrice"]) == ("SELL", "0.01", "64000")
        # The take-profit fills at the broker: the stop-loss is cancelled there.
        fake.push(fake.fill_order(tp["clientOrderId"], "66000", T0 + 5000).event())
        wait_until(
            lambda: sl["status"] == "CANCELED" and _legs(url) == set(),
            lambda: (sl["status"], _legs(url)),
            "the stop-loss cancelled",
        )
        wait_until(lambda: _unsettled(url) == [], lambda: _unsettled(url), "every command acked")
    finally:
        following.close()
    assert _position(url) == []
    with open_ledger(url) as ledger:
        (trade,) = ledger.trades()
        # (66000 - 65000) x 0.01, less 0.01 USDT commission on each fill
        assert trade["close_reason"] == "take_profit" and trade["realized_pnl"] == "9.98"
        assert {c["broker_order_id"] for c in ledger.commands(status=None)} >= {
            str(tp["orderId"]),
            str(sl["orderId"]),
        }


def _legs(url: str) -> set[str]:
    with open_ledger(url) as ledger:
        return {o["state"] for o in ledger.exit_orders()}


def _unsettled(url: str) -> list[str]:
    with open_ledger(url) as ledger:
        return [c["status"] for c in ledger.commands(status=None) if c["status"] != "acked"]
