"""``posledger follow kotak`` as a user runs it, against a fake Kotak Neo on loopback
(tests/fake_kotak.py): the trade report polled, a new fill applied, SIGTERM ending it
cleanly with what it did.

Every wait is for a condition, bounded by a stall limit (tests/progress.py)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_kotak import ACCESS, SESSION, SID, FakeKotak
from tests.progress import wait_until

from .scenario import SCRIPT, clean_env, run, run_json, url, write

SETUP = [
    {"type": "account", "account": "KOTAK-1", "venue": "KOTAK_NEO", "mode": "LIVE",
     "position_mode": "netting"},
    {"type": "instrument", "instrument": "AXISBANK", "kind": "equity", "multiplier": "1",
     "quote_currency": "INR", "settlement_currency": "INR"},
]  # fmt: skip
TOKENS = {"KOTAK_ACCESS_TOKEN": ACCESS, "KOTAK_SESSION_TOKEN": SESSION, "KOTAK_SID": SID}


@pytest.fixture
def fake() -> Iterator[FakeKotak]:
    server = FakeKotak().start()
    try:
        yield server
    finally:
        server.stop()
        assert server.refused == []


def _fills(db: Path) -> list[str]:
    return sorted(e["input"]["exec_id"] for e in run_json("journal", db=db) if e["kind"] == "fill")


def test_follow_kotak_until_sigterm(tmp_path: Path, fake: FakeKotak) -> None:
    db = tmp_path / "ledger.db"
    assert run("ingest", str(write(tmp_path / "setup.jsonl", SETUP)), db=db).returncode == 0
    refused = run("follow", "kotak", "--account", "KOTAK-1", db=db, env=clean_env())
    assert refused.returncode == 2 and "KOTAK_ACCESS_TOKEN" in refused.stderr
    unmapped = run("follow", "kotak", "--account", "KOTAK-1", db=db, env=clean_env(**TOKENS))
    assert unmapped.returncode == 2 and "posledger symbols add kotak_neo" in unmapped.stderr
    mapped = run("symbols", "add", "kotak_neo", "KOTAK-1", "nse_cm:AXISBANK-EQ", "AXISBANK", db=db)
    assert mapped.returncode == 0
    first = fake.trade("B", 10, "658.70", "10:00:00")
    log = (tmp_path / "follow.log").open("w")
    follower = subprocess.Popen(
        [str(SCRIPT), "--db", url(db), "follow", "kotak", "--account", "KOTAK-1",
         "--base-url", fake.base_url, "--poll-seconds", "0.1", "--positions-every", "3"],
        stdout=subprocess.PIPE, stderr=log, text=True, env=clean_env(**TOKENS),
    )  # fmt: skip
    try:
        wait_until(lambda: _fills(db) == [first], lambda: fake.requests, "the first poll")
        second = fake.trade("S", 4, "660.00", "11:00:00")
        wait_until(lambda: second in _fills(db), lambda: fake.requests, "the new fill")
        done = fake.requests[fake.POSITIONS] + 2
        wait_until(lambda: fake.requests[fake.POSITIONS] >= done, lambda: fake.requests, "books")
        follower.send_signal(signal.SIGTERM)
        out, _ = follower.communicate(timeout=120)
    finally:
        if follower.poll() is None:
            follower.kill()
        log.close()
    said = (tmp_path / "follow.log").read_text()
    assert follower.returncode == 0, said
    assert out.startswith("kotak KOTAK-1: 2 applied, "), out
    (slot,) = run_json("positions", db=db)
    assert (slot["strategy"], slot["side"], slot["quantity"]) == ("EXTERNAL", "LONG", "6")
    assert run_json("rejected", db=db) == []
    (check,) = run_json("reconciliations", "--account", "KOTAK-1", db=db)
    assert check["kind"] == "agree", check
