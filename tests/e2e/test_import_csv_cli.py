"""``posledger import csv FILE --mapping M`` as a user runs it (docs/venues/csv.md): a dry
run that applies nothing, then the file applied, each fill once however often it is
imported, and a row that cannot be booked refused and kept."""

from __future__ import annotations

import shutil
from pathlib import Path

from .scenario import run, run_json, write

CSV = Path(__file__).parents[1] / "fixtures" / "venues" / "csv"
SETUP = [
    {"type": "account", "account": "DEGIRO-1", "venue": "DEGIRO", "mode": "LIVE",
     "position_mode": "netting"},
    {"type": "instrument", "instrument": "US0378331005", "kind": "equity", "multiplier": "1",
     "quote_currency": "USD", "settlement_currency": "USD"},
]  # fmt: skip


def test_a_dry_run_then_the_file_applied_once(tmp_path: Path) -> None:
    export = shutil.copy(CSV / "degiro_transactions.csv", tmp_path / "export.csv")
    mapping = shutil.copy(CSV / "degiro_transactions.toml", tmp_path / "degiro.toml")
    db = tmp_path / "ledger.db"
    dry = run("import", "csv", str(export), "--mapping", str(mapping), "--dry-run", db=db)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("dry run: 4 rows: 4 fills, 0 refused, 0 skipped")
    assert not db.exists()  # nothing applied, nothing created
    assert run("ingest", str(write(tmp_path / "setup.jsonl", SETUP)), db=db).returncode == 0
    first = run_json_exit("import", "csv", str(export), "--mapping", str(mapping), db=db)
    assert (first["applied"], first["duplicate"], first["rejected"]) == (3, 0, 1)
    assert first["rejections"] == ["fill 4: unknown instrument IE00B3RBWM25: register it first"]
    again = run_json_exit("import", "csv", str(export), "--mapping", str(mapping), db=db)
    assert (again["applied"], again["duplicate"]) == (0, 3)
    assert run_json("positions", db=db) == []  # bought 12 + 3, sold 15
    (trade,) = run_json("trades", db=db)
    # (173.15 - avg) * 15 with avg = (12 * 170.73 + 3 * 170.74) / 15 = 170.732
    assert trade["status"] == "closed" and trade["gross_realized_pnl"] == "36.27"
    assert trade["commissions"] == {"EUR": "4", "USD": "0"}  # paid in EUR, kept in EUR
    bad = tmp_path / "bad.toml"
    bad.write_text(mapping.read_text().replace("[columns]", "[columns]\ncomission = 'x'"))
    refused = run("import", "csv", str(export), "--mapping", str(bad), "--dry-run", db=db)
    assert refused.returncode == 2 and "comission" in refused.stderr


def run_json_exit(*args: str, db: Path) -> dict[str, object]:
    """``args --json``, whatever its exit status (1 when a row was refused)."""
    import json

    done = run(*args, "--json", db=db)
    assert done.returncode in (0, 1), done.stderr
    found: dict[str, object] = json.loads(done.stdout)
    return found
