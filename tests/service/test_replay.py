"""verify and rebuild on the memory store replay the journal a page (2000 entries) at a
time, flushing between pages, like the SQL stores."""

from __future__ import annotations

import json

from posledger import Ledger
from posledger.service.replay import PAGE


def test_verify_and_rebuild_replay_more_than_a_page(ledger: Ledger) -> None:
    record = {"type": "fill", "account": "ACC", "instrument": "FUT", "quantity": "1",
              "ts": "2026-03-02T10:00:00Z", "strategy": "alpha"}  # fmt: skip
    count = PAGE + 100
    lines = [
        json.dumps(
            {
                **record,
                "exec_id": f"e{n}",
                "side": "BUY" if n % 4 else "SELL",
                "price": str(100 + n % 9),
            }
        )
        for n in range(count)
    ]
    report = ledger.ingest(lines, batch_size=700)
    assert report.applied == count
    before = (ledger.positions(include_flat=True), ledger.trades())
    verified = ledger.verify()
    assert verified.ok, verified.problems
    assert verified.journal_entries == 6 + count
    rebuilt = ledger.rebuild()
    assert rebuilt.journal_entries == 6 + count and rebuilt.rows["fills"] == count
    assert (ledger.positions(include_flat=True), ledger.trades()) == before
    assert ledger.verify().ok
