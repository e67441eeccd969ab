"""A ledger file damaged underneath SQLite, as a disk damages it: ``posledger doctor`` says so
and marks the database, ``verify`` fails, and ``ingest`` writes nothing more (exit 3) until
the damage is repaired and the mark lifted (docs/doctor.md).

Everything goes through the real console script, as an operator would run it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.corruption import damage_table

from .scenario import run, sql, write

FILLS = 240
"""Enough for the journal to span a few dozen pages."""


def _records(first: int, count: int, *, reference: bool) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    if reference:
        records += [
            {
                "type": "account",
                "account": "ACC-1",
                "venue": "CME",
                "mode": "SIM",
                "position_mode": "netting",
            },
            {
                "type": "instrument",
                "instrument": "FUT.X",
                "kind": "future",
                "multiplier": "5",
                "quote_currency": "USD",
                "settlement_currency": "USD",
            },
            {"type": "strategy", "strategy": "alpha"},
        ]
    for n in range(first, first + count):
        records.append(
            {
                "type": "fill",
                "exec_id": f"x-{n}",
                "account": "ACC-1",
                "instrument": "FUT.X",
                "side": "BUY" if n % 2 == 0 else "SELL",
                "quantity": "1",
                "price": str(100 + n % 7),
                "ts": f"2026-03-02T{10 + n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z",
                "strategy": "alpha",
                "commission": "0.62",
                "commission_currency": "USD",
            }
        )
    return records


@pytest.fixture
def ledger_file(tmp_path: Path) -> Path:
    db = tmp_path / "ledger.db"
    source = write(tmp_path / "session.jsonl", _records(0, FILLS, reference=True))
    result = run("ingest", str(source), "--batch-size", "20", db=db)
    assert result.returncode == 0, result.stdout + result.stderr
    return db


@pytest.fixture
def new_fills(tmp_path: Path) -> Path:
    return write(tmp_path / "new.jsonl", _records(10_000, 3, reference=False))


def _state(db: Path) -> tuple[str, int]:
    """The file's digest, and how many bytes its WAL holds (none: nothing was written)."""
    wal = Path(f"{db}-wal")
    return hashlib.sha256(db.read_bytes()).hexdigest(), wal.stat().st_size if wal.exists() else 0


def _storage(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["check"] == "storage"]


def test_damaged_journal_pages_are_found_and_stop_every_writer(
    ledger_file: Path, new_fills: Path
) -> None:
    db = ledger_file
    healthy = run("doctor", db=db)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    # a bad sector in the middle of the journal
    damage_table(db, "journal")

    doctor = run("doctor", db=db)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert "Traceback" not in doctor.stderr
    assert "ERROR   storage: database" in doctor.stdout
    assert "storage is damaged" in doctor.stdout
    assert "doctor: PROBLEMS FOUND" in doctor.stdout

    report = json.loads(run("doctor", "--json", db=db).stdout)
    assert report["ok"] is False
    assert report["checks_run"][0] == "storage"
    (storage,) = _storage(report)
    assert report["findings"][0] == storage  # listed first
    assert storage["severity"] == "error"
    assert storage["data"]["marked"] is True
    assert storage["data"]["found_by"] == "doctor"
    assert storage["data"]["problems"]
    assert "--clear-damage" in storage["detail"] and "backup" in storage["detail"]

    verify = run("verify", db=db)
    assert verify.returncode in (1, 3), verify.stdout + verify.stderr
    assert "Traceback" not in verify.stderr
    assert "ok:" not in verify.stdout

    before = _state(db)
    ingest = run("ingest", str(new_fills), db=db)
    assert ingest.returncode == 3, ingest.stdout + ingest.stderr
    assert "Traceback" not in ingest.stderr
    assert "is marked damaged: posledger doctor found at" in ingest.stderr
    assert "backup" in ingest.stderr and "posledger doctor --clear-damage" in ingest.stderr
    assert _state(db) == before  # not a byte written

    # lifting the mark while the damage is still there: found, and marked, again
    again = run("doctor", "--clear-damage", "--json", db=db)
    assert again.returncode == 1
    cleared, damaged = _storage(json.loads(again.stdout))
    assert (cleared["severity"], damaged["severity"]) == ("info", "error")
    assert damaged["data"]["marked"] is True
    assert run("ingest", str(new_fills), db=db).returncode == 3


def test_bytes_overwritten_in_the_middle_of_journal_pages(
    ledger_file: Path, new_fills: Path
) -> None:
    """What the adversarial tester did: garbage in the middle of every journal page (the
    cells, not the page headers). Before, doctor said ok and ingest kept writing."""
    db = ledger_file
    damage_table(db, "journal", every_page=True, at=1024, length=1024)
    doctor = run("doctor", db=db)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert "ERROR   storage: database" in doctor.stdout
    assert run("verify", db=db).returncode != 0
    before = _state(db)
    ingest = run("ingest", str(new_fills), db=db)
    assert ingest.returncode == 3, ingest.stdout + ingest.stderr
    assert "marked damaged" in ingest.stderr
    assert _state(db) == before


def test_a_writer_that_meets_damage_stops_and_marks_the_database(
    ledger_file: Path, new_fills: Path
) -> None:
    """No doctor run: the writer's own read of the damaged fills table fails. It is not
    retried, nothing of the batch is written, and every later writer refuses at once."""
    db = ledger_file
    top = sql(db, "SELECT max(seq) FROM journal")
    damage_table(db, "fills", every_page=True)

    first = run("ingest", str(new_fills), db=db)
    assert first.returncode == 3, first.stdout + first.stderr
    assert "Traceback" not in first.stderr
    assert "storage is damaged (database disk image is malformed)" in first.stderr
    assert "now marked damaged" in first.stderr
    assert sql(db, "SELECT max(seq) FROM journal") == top
    ((found_by, detail),) = sql(db, "SELECT found_by, detail FROM storage_damage")
    assert (found_by, detail) == ("writer", "database disk image is malformed")

    # an input that touches none of the damaged pages is refused too: the mark stops it
    beta = write(db.with_name("beta.jsonl"), [{"type": "strategy", "strategy": "beta"}])
    second = run("ingest", str(beta), db=db)
    assert second.returncode == 3, second.stdout + second.stderr
    assert "is marked damaged: a writer found at" in second.stderr
    assert sql(db, "SELECT max(seq) FROM journal") == top
    assert sql(db, "SELECT strategy FROM strategies") == [("alpha",)]

    report = json.loads(run("doctor", "--json", db=db).stdout)
    (storage,) = _storage(report)
    assert storage["severity"] == "error" and storage["data"]["found_by"] == "writer"
