"""``posledger pnl`` and ``stats`` through the console script: JSON, CSV and tables of the
hand-checked session of tests/pnl_session.py (docs/pnl.md)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.pnl_session import DAILY_CHICAGO, RECORDS, TOTALS

from .scenario import clean_env, run, write

CHICAGO = ["--tz", "America/Chicago", "--session-start", "17:00"]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("pnl")
    path = base / "pnl.db"
    result = run("ingest", str(write(base / "session.jsonl", RECORDS)), db=path)
    assert result.returncode == 0, result.stdout + result.stderr
    return path


def test_pnl_json_by_chicago_trading_day(db: Path) -> None:
    result = run("pnl", "--period", "day", *CHICAGO, "--json", db=db)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == DAILY_CHICAGO


def test_pnl_csv_carries_the_same_rows(db: Path) -> None:
    result = run("pnl", "--period", "day", *CHICAGO, "--csv", db=db)
    assert result.returncode == 0, result.stderr
    reader = csv.DictReader(io.StringIO(result.stdout))
    assert reader.fieldnames == [
        "strategy",
        "currency",
        "period",
        "period_start",
        "gross_realized",
        "commissions",
        "realized",
        "unrealized",
        "cash_flows",
        "total",
        "cumulative",
    ]
    assert list(reader) == DAILY_CHICAGO


def test_pnl_without_a_period_and_filters(db: Path) -> None:
    result = run("pnl", "--json", db=db)
    assert json.loads(result.stdout) == TOTALS
    result = run("pnl", "--json", "--strategy", "beta", "--instrument", "ESM6", db=db)
    assert [(r["strategy"], r["currency"], r["total"]) for r in json.loads(result.stdout)] == [
        ("beta", "USD", "498.75")
    ]
    result = run("pnl", "--csv", "--by", "account,mode", "--account", "F-1", db=db)
    assert result.stdout.splitlines() == [
        "account,mode,currency,gross_realized,commissions,realized,unrealized,cash_flows,"
        "total,cumulative",
        "F-1,LIVE,USD,0,6.25,-6.25,500,0,493.75,493.75",
    ]


def test_pnl_tables_one_per_currency(db: Path) -> None:
    result = run("pnl", "--period", "day", *CHICAGO, db=db)
    assert result.returncode == 0, result.stderr
    titles = [line.strip() for line in result.stdout.splitlines() if line.startswith("P&L in")]
    assert titles == ["P&L in BNB", "P&L in USD", "P&L in USDT"]
    assert "-501.25" in result.stdout and "cumulative" in result.stdout


def test_pnl_usage_errors_exit_2(db: Path) -> None:
    for args in (
        ["--by", "desk"],
        ["--tz", "Mars/Olympus"],
        ["--session-start", "5pm"],
        ["--since", "someday"],
        ["--json", "--csv"],
    ):
        result = run("pnl", *args, db=db)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr


def test_open_positions_without_a_mark_are_named(tmp_path: Path) -> None:
    records = [r for r in RECORDS if r["type"] != "mark"]
    path = tmp_path / "nomark.db"
    assert run("ingest", str(write(tmp_path / "s.jsonl", records)), db=path).returncode == 0
    result = run("pnl", "--json", db=path)
    assert result.returncode == 0
    assert "2 open position(s) have no mark" in result.stderr
    assert {r["unrealized"] for r in json.loads(result.stdout)} == {"0"}


def test_stats_json_and_table(db: Path) -> None:
    result = run("stats", "--json", db=db)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["strategy"], r["currency"], r["trades"], r["net_pnl"]) for r in rows] == [
        ("alpha", "USD", 1, "-5"),
        ("alpha", "USDT", 1, "-102"),
    ]
    assert rows[0]["profit_factor"] == "0" and rows[0]["max_drawdown_pct"] is None
    table = run("stats", db=db)
    assert table.returncode == 0
    assert "win rate" in table.stdout and "0.00%" in table.stdout
    empty = run("stats", "--strategy", "beta", db=db)
    assert empty.stdout.strip() == "no closed trades in this window"
    assert json.loads(run("stats", "--strategy", "beta", "--json", db=db).stdout) == []


def test_pnl_on_an_empty_ledger(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    assert run("migrate", db=path).returncode == 0
    assert run("pnl", db=path).stdout.strip() == "no P&L in this window"
    assert json.loads(run("pnl", "--json", db=path).stdout) == []
    assert run("pnl", "--csv", db=path).stdout.startswith("strategy,currency,")


def test_pnl_stats_and_report_open_the_database_the_configuration_file_names(
    db: Path, tmp_path: Path
) -> None:
    """No --db and no $POSLEDGER_DB: the database is posledger.toml's, as for every other
    command (docs/cli.md, Which database)."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "posledger.toml").write_text(f'db = "sqlite:///{db}"\n')
    env = clean_env(XDG_CONFIG_HOME=str(tmp_path / "no-config"))
    result = run("pnl", "--json", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == TOTALS
    result = run("stats", "--json", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    assert [row["strategy"] for row in json.loads(result.stdout)] == ["alpha", "alpha"]
    result = run("report", "--out", str(work / "r.html"), cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    assert not (work / "posledger.db").exists()
