"""``posledger demo``: a realistic session, ingested into a fresh database and shown."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from importlib import resources
from pathlib import Path

from rich.console import Console

from ..adapters.jsonl import parse_line
from ..adapters.records import encode, to_record
from ..bootstrap import open_ledger
from ..errors import UsageError
from ..service.ledger import Ledger
from . import render

SESSION = "session.jsonl"
BROKER_POSITIONS = "broker_positions.jsonl"
BROKER_FILLS = "broker_fills.jsonl"
PAPER_SESSION = "paper_session.jsonl"
"""A PAPER account: two strategies enter MES with brackets on their entry orders."""
PAPER_BARS = "mes_bars.csv"
"""Five-minute MES bars the paper venue fills the brackets against: the fade's stop is
hit first, then the breakout's target."""


def demo_lines(name: str) -> list[str]:
    text = resources.files("posledger.demo").joinpath(name).read_text(encoding="utf-8")
    return text.splitlines()


def session_lines() -> list[str]:
    return demo_lines(SESSION)


def _first_record() -> str:
    """The journal's first input in a database the demo made."""
    return encode(to_record(parse_line(next(line for line in session_lines() if line.strip()))))


def _is_demo(path: Path) -> bool:
    """Whether ``path`` is a database an earlier demo made (its journal starts with the
    demo session), the only kind of file the demo overwrites."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT input FROM journal ORDER BY seq LIMIT 1").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return row is not None and row[0] == _first_record()


def demo_target(path: Path | None, url: str | None) -> str:
    """The database the demo writes to: ``url`` if given (it must be empty), else the
    SQLite file ``path`` (default ``posledger-demo.db``), made anew. An existing file is
    replaced only if an earlier demo made it."""
    if url is not None:
        if path is not None:
            raise UsageError("give the demo --db or --file, not both")
        return url
    path = path or Path("posledger-demo.db")
    if path.exists() and not _is_demo(path):
        raise UsageError(
            f"{path} exists and is not a posledger demo database: it is left alone "
            "(name another file with --file)"
        )
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def _paper_session(ledger: Ledger, console: Console) -> None:
    """Brackets carried out by the paper venue (docs/brackets.md): each strategy's entry
    order carries its take-profit and stop-loss; the venue places the legs, fills one of
    each bracket against the bars, and the ledger cancels the sibling."""
    from ..paper.engine import CommissionModel
    from ..paper.prices import read_prices
    from ..paper.runner import PaperRun

    report = ledger.ingest(demo_lines(PAPER_SESSION), source=f"demo/{PAPER_SESSION}")
    console.print(render.summary_text(report, f"demo/{PAPER_SESSION}"))
    bars = resources.files("posledger.demo").joinpath(PAPER_BARS)
    with resources.as_file(bars) as path:
        run = PaperRun(
            ledger,
            accounts=["PAPER-1"],
            commission=CommissionModel(per_unit=Decimal("0.62")),
        )
        paper = run.run(read_prices(path))
    console.print(
        f"paper venue, demo/{PAPER_BARS}: {paper.events} bars, {paper.commands} commands "
        f"carried out, {paper.fills} fills sent back"
    )
    console.print(render.commands_table(ledger.commands(status=None, limit=1000)))
    console.print()
    trades = ledger.trades(account="PAPER-1", with_fills=False)
    console.print(render.trades_table(trades, "Paper trades (closed by their brackets)"))
    console.print()


def run_demo(url: str, console: Console) -> int:
    with open_ledger(url) as ledger:
        if ledger.journal(limit=1):
            raise UsageError(
                f"{ledger.store.display_url} is not empty: the demo needs a new database "
                "(or run it without --db: it writes posledger-demo.db)"
            )
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
        _paper_session(ledger, console)
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
    console.print(f"\nThe demo database is {url}; explore it with, for example:")
    console.print(f"  posledger --db {url} trades --json")
    return 0
