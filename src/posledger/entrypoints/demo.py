"""``posledger demo``: a realistic session, ingested into a fresh database and shown."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from rich.console import Console

from ..bootstrap import open_ledger
from . import render

SESSION = "session.jsonl"
BROKER_POSITIONS = "broker_positions.jsonl"
BROKER_FILLS = "broker_fills.jsonl"


def demo_lines(name: str) -> list[str]:
    text = resources.files("posledger.demo").joinpath(name).read_text(encoding="utf-8")
    return text.splitlines()


def session_lines() -> list[str]:
    return demo_lines(SESSION)


def run_demo(path: Path, console: Console) -> int:

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    with open_ledger(url) as ledger:
        report = ledger.ingest(session_lines(), source=f"demo/{SESSION}")
        console.print(render.summary_text(report, f"demo/{SESSION}"))
        console.print()
        # The broker's view at the end of the session. A dropped connection lost one
        # Binance fill; the broker's fill history brings it back before comparing.
        check_books = ledger.reconcile(
            demo_lines(BROKER_POSITIONS),
            fills=demo_lines(BROKER_FILLS),
            source=f"demo/{BROKER_POSITIONS}",
            fills_source=f"demo/{BROKER_FILLS}",
        )
        assert check_books.history is not None
        console.print(render.summary_text(check_books.history, f"demo/{BROKER_FILLS}"))
        console.print(
            render.reconcile_table(
                check_books.checks, f"Reconciliation with the broker ({check_books.run})"
            )
        )
        agreed = "agree" if check_books.agreed else "DIFFER"
        console.print(f"books {agreed}: {len(check_books.checks)} positions compared")
        console.print()
        positions = ledger.positions(include_flat=True)
        console.print(render.positions_table(positions, "Positions (all slots)"))
        console.print()
        console.print(render.trades_table(ledger.trades(with_fills=False)))
        console.print()
        console.print(render.anomalies_table(ledger.anomalies()))
        console.print()
        check = ledger.verify()
    if check.ok:
        console.print(
            f"verify: ok ({check.journal_entries} journal entries replayed, "
            f"{check.rows_compared} stored rows match, invariants hold)"
        )
    else:
        console.print("verify: FAILED")
        for problem in check.problems:
            console.print(f"  {problem}")
        return 1
    console.print(f"\nThe demo database is {path}; explore it with, for example:")
    console.print(f"  posledger --db {url} trades --json")
    return 0
