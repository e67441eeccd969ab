"""``posledger follow binance`` as a user runs it, against a fake Binance on loopback
(tests/fake_binance.py): the history read on connecting, the stream's fills applied as
they come, a dropped connection caught up, and SIGTERM ending it cleanly with what it did.

Every wait is for a condition, bounded by a stall limit (tests/progress.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_binance import KEY, SECRET, FakeBinance
from tests.progress import wait_until

from .scenario import SCRIPT, clean_env, run, run_json, url, write

SETUP = [
    {"type": "account", "account": "BIN-1", "venue": "BINANCE", "mode": "LIVE",
     "position_mode": "netting"},
    {"type": "instrument", "instrument": "BTC-PERP", "kind": "perpetual", "multiplier": "1",
     "quote_currency": "USDT", "settlement_currency": "USDT", "base_currency": "BTC"},
    {"type": "strategy", "strategy": "alpha"},
]  # fmt: skip


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    server = FakeBinance().start()
    try:
        yield server
    finally:
        server.stop()
        assert server.refused == []


def _fills(db: Path) -> list[str]:
    entries = run_json("journal", db=db)
    return sorted(e["input"]["exec_id"] for e in entries if e["kind"] == "fill")


def test_follow_binance_until_sigterm(tmp_path: Path, fake: FakeBinance) -> None:
    db = tmp_path / "ledger.db"
    assert run("ingest", str(write(tmp_path / "setup.jsonl", SETUP)), db=db).returncode == 0
    refused = run("follow", "binance", "--account", "BIN-1", db=db, env=clean_env())
    assert refused.returncode == 2 and "BINANCE_API_KEY" in refused.stderr
    unmapped = run(
        "follow", "binance", "--account", "BIN-1", db=db,
        env=clean_env(BINANCE_API_KEY=KEY, BINANCE_API_SECRET=SECRET),
    )  # fmt: skip
    assert unmapped.returncode == 2 and "posledger symbols add binance BIN-1" in unmapped.stderr
    assert run("symbols", "add", "binance", "BIN-1", "BTCUSDT", "BTC-PERP", db=db).returncode == 0
    now = time.time_ns() // 1_000_000
    fake.trade("BUY", "0.02", "65000", now - 60_000, client_order_id="alpha.1")
    log = (tmp_path / "follow.log").open("w")
    follower = subprocess.Popen(
        [str(SCRIPT), "--db", url(db), "follow", "binance", "--account", "BIN-1",
         "--rest-url", fake.rest_url, "--ws-url", fake.ws_url, "--history-days", "1",
         "--strategy-pattern", r"^(?P<strategy>[^.]+)\."],
        stdout=subprocess.PIPE, stderr=log, text=True,
        env=clean_env(BINANCE_API_KEY=KEY, BINANCE_API_SECRET=SECRET),
    )  # fmt: skip
    try:
        wait_until(lambda: fake.streams == 1, lambda: fake.listen_keys, "the stream to open")
        wait_until(lambda: _fills(db) == ["BTCUSDT:1001"], lambda: _fills(db), "the history")
        t2 = fake.trade("SELL", "0.005", "65100", now - 30_000, client_order_id="alpha.2")
        fake.push(t2.event())
        wait_until(lambda: len(_fills(db)) == 2, lambda: _fills(db), "the stream's fill")
        fake.trade("SELL", "0.005", "65200", now - 20_000, client_order_id="alpha.3")
        fake.drop()  # the third fill never reaches the stream: history brings it
        wait_until(lambda: len(_fills(db)) == 3, lambda: _fills(db), "the catch-up")
        follower.send_signal(signal.SIGTERM)
        out, _ = follower.communicate(timeout=120)
    finally:
        if follower.poll() is None:
            follower.kill()
        log.close()
    said = (tmp_path / "follow.log").read_text()
    assert follower.returncode == 0, said
    assert out.startswith("binance BIN-1: 3 applied, ") and "disconnected" in said
    (slot,) = run_json("positions", db=db)
    assert (slot["strategy"], slot["side"], slot["quantity"]) == ("alpha", "LONG", "0.01")
    assert run_json("rejected", db=db) == []
    (check,) = run_json("reconciliations", "--account", "BIN-1", db=db)
    assert check["kind"] == "agree", json.dumps(check)


DTC_SETUP = [
    {"type": "account", "account": "SIM-1", "venue": "SIERRA", "mode": "SIM",
     "position_mode": "netting"},
    {"type": "instrument", "instrument": "ES", "kind": "future", "multiplier": "50",
     "quote_currency": "USD", "settlement_currency": "USD"},
    {"type": "strategy", "strategy": "alpha"},
]  # fmt: skip


def test_follow_dtc_until_sigterm(tmp_path: Path) -> None:
    from tests.fake_dtc import PASSWORD, USERNAME, FakeDtc

    fake = FakeDtc().start()
    db = tmp_path / "ledger.db"
    log = (tmp_path / "follow.log").open("w")
    follower: subprocess.Popen[str] | None = None
    try:
        assert run("ingest", str(write(tmp_path / "setup.jsonl", DTC_SETUP)), db=db).returncode == 0
        argv = ["follow", "dtc", "--port", str(fake.port), "--account-map", "Sim1=SIM-1"]
        refused = run(*argv, db=db, env=clean_env())
        assert refused.returncode == 2 and "DTC_USERNAME" in refused.stderr
        assert run("symbols", "add", "dtc", "SIM-1", "ESH26_FUT_CME", "ES", db=db).returncode == 0
        now = int(time.time())
        fake.trade("Sim1", "ESH26_FUT_CME", "BUY", "2", "6850", now - 60)
        follower = subprocess.Popen(
            [str(SCRIPT), "--db", url(db), *argv, "--history-days", "1",
             "--strategy-pattern", r"^(?P<strategy>[^-]+)-"],
            stdout=subprocess.PIPE, stderr=log, text=True,
            env=clean_env(DTC_USERNAME=USERNAME, DTC_PASSWORD=PASSWORD),
        )  # fmt: skip
        wait_until(lambda: len(_fills(db)) == 1, lambda: fake.logons, "the history")
        live = fake.trade("Sim1", "ESH26_FUT_CME", "SELL", "1", "6855", now - 30)
        fake.push(live.order_update())
        wait_until(lambda: len(_fills(db)) == 2, lambda: _fills(db), "the live fill")
        fake.trade("Sim1", "ESH26_FUT_CME", "SELL", "1", "6860", now - 20)
        fake.drop()  # the third fill never reaches the client live: history brings it
        wait_until(lambda: len(_fills(db)) == 3, lambda: _fills(db), "the catch-up")
        follower.send_signal(signal.SIGTERM)
        out, _ = follower.communicate(timeout=120)
    finally:
        if follower is not None and follower.poll() is None:
            follower.kill()
        log.close()
        fake.stop()
    said = (tmp_path / "follow.log").read_text()
    assert follower.returncode == 0, said
    assert out.startswith(f"dtc 127.0.0.1:{fake.port}: 3 applied, ") and "disconnected" in said
    assert run_json("positions", db=db) == []
    assert run_json("rejected", db=db) == []
    assert fake.refused == []
