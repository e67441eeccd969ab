"""A crash between marks loses no more than docs/accounting.md (Marks) says.

A real process applies a random walk of marks, one at a time, to a long position under a
tight mark policy, and prints each outcome once ``apply_marks`` has returned; it is killed
with SIGKILL after a few hundred. Then:

- every mark it reported as written (with a journal seq) is in the database, and the
  newest of them is the instrument's stored mark;
- the marks it applied but did not write are all dated less than ``persist_ms`` after
  that one, and the new extremes among them less than ``extreme_ms`` after it;
- the trade's worst and best prices are exactly the extremes of its fill and of every
  mark up to that stored one, and ``verify`` passes.

The kill comes after a number of acknowledged marks, not after a time.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from posledger import open_ledger
from posledger.domain.timestamps import parse_ts
from tests.progress import wait_until

from .scenario import clean_env, url

PERSIST_MS, EXTREME_MS, STEP_MS = 200, 50, 7
T = parse_ts("2026-03-02T15:00:00Z")
MS = 1_000_000

CHILD = r"""
import random, sys
from decimal import Decimal
from posledger import open_ledger
from posledger.domain.inputs import Mark

url, seed, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ledger = open_ledger(url, clock=lambda: start)
ledger.register_account(account="A", venue="CME", mode="SIM", position_mode="netting")
ledger.register_instrument(instrument="MES", kind="future", multiplier="5",
                           quote_currency="USD", settlement_currency="USD", tick_size="0.25")
ledger.register_strategy(strategy="s1")
ledger.apply_fill(exec_id="e1", account="A", instrument="MES", side="BUY", quantity="2",
                  price="100", ts="2026-03-02T14:00:00Z", strategy="s1")
print("ready", flush=True)
rng = random.Random(seed)
price = Decimal(100)
k = 0
while True:
    price += Decimal(rng.choice((-3, -2, -1, 1, 2, 3))) / 4
    ts = start + k * STEP
    [outcome] = ledger.apply_marks([Mark("MES", price, ts)])
    print(ts, price, outcome.status, outcome.seq if outcome.seq is not None else "-", flush=True)
    k += 1
""".replace("STEP", str(STEP_MS * MS))


def test_a_crash_between_marks_loses_at_most_the_documented_bound(tmp_path: Path) -> None:
    seed = int(os.environ.get("POSLEDGER_CRASH_SEED") or random.randrange(1 << 30))
    database = url(tmp_path / "marks.db")
    out_path = tmp_path / "out.txt"
    kill_after = random.Random(seed).randrange(150, 450)
    env = clean_env(
        POSLEDGER_MARK_PERSIST_MS=str(PERSIST_MS), POSLEDGER_MARK_EXTREME_MS=str(EXTREME_MS)
    )
    with out_path.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, database, str(seed), str(T)],
            stdout=out,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        try:

            def lines() -> list[str]:
                return out_path.read_text().splitlines()

            def enough() -> bool:
                if child.poll() is not None:
                    assert child.stderr is not None
                    raise AssertionError(f"the child ended: {child.stderr.read()}")
                return len(lines()) > kill_after

            wait_until(enough, lambda: len(lines()), f"{kill_after} marks (seed {seed})")
            child.send_signal(signal.SIGKILL)
            child.wait()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    acknowledged = []
    for line in out_path.read_text().splitlines()[1:]:
        parts = line.split()
        if len(parts) != 4:  # the last line, cut by the kill
            continue
        ts, price, status, seq = parts
        assert status == "applied", line
        acknowledged.append((int(ts), Decimal(price), seq != "-"))
    written = [a for a in acknowledged if a[2]]
    assert written, f"seed {seed}: no mark was written in {len(acknowledged)}"
    assert len(written) < len(acknowledged) / 3, f"seed {seed}: the policy kept none in memory"

    with open_ledger(database) as ledger:
        [position] = ledger.positions()
        stored_ts = parse_ts(position["mark_ts"])
        # every mark reported written is durable; at most the one being reported when the
        # kill came is newer
        assert stored_ts >= written[-1][0], f"seed {seed}"
        assert stored_ts in {a[0] for a in acknowledged} | {acknowledged[-1][0] + STEP_MS * MS}, (
            f"seed {seed}"
        )
        lost = [a for a in acknowledged if a[0] > stored_ts]
        assert all(ts - stored_ts < PERSIST_MS * MS for ts, _, _ in lost), f"seed {seed}"
        kept = [price for ts, price, _ in acknowledged if ts <= stored_ts]
        # the child's next mark may have been written but not reported: it is within the
        # walk's next step of the last reported price, and it is the stored mark
        if stored_ts not in {a[0] for a in acknowledged}:
            kept.append(Decimal(position["mark_price"]))
        seen = [Decimal(100), *kept]
        running_low, running_high = min(seen), max(seen)
        for ts, price, _ in lost:
            if price < running_low or price > running_high:
                assert ts - stored_ts < EXTREME_MS * MS, f"seed {seed}: extreme at {ts} lost"
            running_low, running_high = min(running_low, price), max(running_high, price)
        [trade] = ledger.trades()
        assert Decimal(trade["mae_price"]) == min(seen), f"seed {seed}"
        assert Decimal(trade["mfe_price"]) == max(seen), f"seed {seed}"
        assert ledger.verify().ok
        journal_marks = [row for row in ledger.journal(limit=None) if row.kind == "mark"]
        assert len(journal_marks) >= len(written)
        assert json.loads(journal_marks[-1].input)["ts"] == position["mark_ts"]
