"""The demo session runs end to end and verifies."""

from __future__ import annotations

from posledger import Ledger
from posledger.entrypoints.demo import session_lines


def test_demo_session_verifies(ledger: Ledger) -> None:
    report = ledger.ingest(session_lines())
    assert (report.applied, report.duplicate, report.rejected) == (38, 1, 2)
    assert ledger.verify().ok
