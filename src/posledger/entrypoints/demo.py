"""``posledger demo``: a realistic session, ingested into a fresh database and shown."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from rich.console import Console

from ..bootstrap import open_ledger
from . import render

SESSION = "session.jsonl"


def session_lines() -> list[str]:
    text = resources.files("posledger.demo").joinpath(SESSION).read_text(encoding="utf-8")
    return text.splitlines()


def run_demo(path: Path, console: Console) -> int:

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    with open_ledger(url) as ledger:
        report = ledger.ingest(session_lines(), source=f"demo/{SESSION}")
        console.print(render.summary_text(report, f"demo/{SESSION}"))
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
