"""``verify`` and ``rebuild``: replay equals the stored state; tampering is caught and repaired."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import Ingested
from .scenario import SESSION, execute, journal, run, run_json, sql

N = len(SESSION)


def test_verify_ok(ingested: Ingested) -> None:
    result = run("verify", db=ingested.db)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"ok: {N} journal entries replayed")
    assert "invariants hold" in result.stdout
    report = run_json("verify", db=ingested.db)
    assert report["ok"] is True
    assert report["journal_entries"] == N
    assert report["problems"] == []
    assert report["rows_compared"] > N


def test_tampered_slot_quantity_fails_verify_until_rebuild(
    tmp_path: Path, ingested: Ingested
) -> None:
    db = ingested.copy(tmp_path / "tampered.db")
    changed = execute(
        db,
        "UPDATE slots SET quantity = '7' WHERE account = 'ACC-1' AND strategy = 'alpha'",
    )
    assert changed == 1
    result = run("verify", db=db)
    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith("FAILED")
    problems = result.stdout.splitlines()[1:]
    named = [p for p in problems if "slots" in p and "alpha" in p and "quantity" in p]
    assert named, result.stdout
    # Conservation no longer holds either: the slots no longer sum to the fills.
    assert any("invariant" in p for p in problems), result.stdout

    report = json.loads(run("verify", "--json", db=db).stdout)
    assert report["ok"] is False
    assert any("slots" in p and "quantity" in p for p in report["problems"])

    journal_before = journal(db)
    rebuilt = run("rebuild", db=db)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert rebuilt.stdout.startswith(f"rebuilt from {N} journal entries")
    assert "slots" in rebuilt.stdout and "trades" in rebuilt.stdout
    assert run("verify", db=db).returncode == 0
    assert run_json("positions", "--all", db=db) == ingested.positions_all
    assert run_json("trades", db=db) == ingested.trades
    assert journal(db) == journal_before, "rebuild never touches the journal"


def test_tampered_trade_and_deleted_fill_are_named(tmp_path: Path, ingested: Ingested) -> None:
    db = ingested.copy(tmp_path / "tampered.db")
    assert execute(db, "UPDATE trades SET realized_pnl = '1000' WHERE trade_id = 1") == 1
    assert execute(db, "DELETE FROM fills WHERE exec_id = 'y-3'") == 1
    report = json.loads(run("verify", "--json", db=db).stdout)
    assert report["ok"] is False
    problems = "\n".join(report["problems"])
    assert "trades (1,)" in problems and "realized_pnl" in problems
    assert "y-3" in problems
    assert run("rebuild", db=db).returncode == 0
    assert sql(db, "SELECT count(*) FROM fills WHERE exec_id = 'y-3'") == [(1,)]
    assert sql(db, "SELECT realized_pnl FROM trades WHERE trade_id = 1") == [("23",)]
    assert run("verify", db=db).returncode == 0


def test_rebuild_refuses_a_journal_that_does_not_replay(tmp_path: Path, ingested: Ingested) -> None:
    db = ingested.copy(tmp_path / "broken-journal.db")
    # Make the journal say something the handlers would not decide now.
    changed = execute(
        db,
        "UPDATE journal SET input = replace(input, '\"100.25\"', '\"90\"') WHERE kind = 'fill'"
        " AND input LIKE '%\"x-1\"%'",
    )
    assert changed == 1
    slots_before = sql(db, "SELECT * FROM slots ORDER BY 1, 2, 3, 4")
    result = run("rebuild", db=db)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "nothing was rewritten" in result.stderr
    assert sql(db, "SELECT * FROM slots ORDER BY 1, 2, 3, 4") == slots_before
    assert run("verify", db=db).returncode == 1


def test_rebuild_on_a_healthy_database_changes_nothing(tmp_path: Path, ingested: Ingested) -> None:
    db = ingested.copy(tmp_path / "healthy.db")
    tables = ("slots", "trades", "trade_fills", "fills", "orders", "marks")
    before = {t: sorted(sql(db, f"SELECT * FROM {t}")) for t in tables}
    assert run("rebuild", db=db).returncode == 0
    after = {t: sorted(sql(db, f"SELECT * FROM {t}")) for t in tables}
    assert after == before
