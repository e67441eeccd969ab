"""``migrate``, ``demo``, ``--version``, where the database comes from, and the exit statuses.

``--help`` of every command is checked in ``test_help.py``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from posledger.store.schema import SCHEMA_REVISION

from .conftest import Ingested
from .scenario import SESSION, clean_env, execute, run, run_json, sql, url, write

COMMANDS = [
    "ingest",
    "positions",
    "trades",
    "anomalies",
    "rejected",
    "verify",
    "rebuild",
    "migrate",
    "demo",
]


def test_version(tmp_path: Path) -> None:
    result = run("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert "0.1.0" in result.stdout


# -- usage errors: exit 2 ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "no-such-file.jsonl"], "no-such-file.jsonl"),
        (["ingest"], "Missing argument"),
        (["ingest", "--batch-size", "0", "x.jsonl"], "--batch-size"),
        (["positions", "--bogus"], "--bogus"),
        (["trades", "--strategy"], "--strategy"),
        (["frobnicate"], "frobnicate"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    db = tmp_path / "ledger.db"
    result = run(*args, db=db, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Error:" in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# -- unusable databases: exit 3 ------------------------------------------------------------


def _foreign_sqlite(path: Path) -> Path:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers (name) VALUES ('Ada')")
    conn.close()
    return path


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "demo"])
def test_a_sqlite_file_that_is_not_a_posledger_database_exits_3(
    tmp_path: Path, command: str
) -> None:
    db = _foreign_sqlite(tmp_path / "customers.db")
    source = write(tmp_path / "session.jsonl", SESSION)
    args = [command, str(source)] if command == "ingest" else [command]
    result = run(*args, db=db)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stderr.startswith("error: ")
    assert "posledger" in result.stderr
    assert "Traceback" not in result.stderr
    assert sql(db, "SELECT name FROM sqlite_master WHERE type = 'table'") == [("customers",)]
    assert sql(db, "SELECT name FROM customers") == [("Ada",)]


def test_a_refused_database_is_not_modified(tmp_path: Path) -> None:
    """Refusing a SQLite file that is not ours must not convert it to WAL either."""
    db = _foreign_sqlite(tmp_path / "customers.db")
    assert sql(db, "PRAGMA journal_mode") == [("delete",)]
    result = run("positions", db=db)
    assert result.returncode == 3
    assert sql(db, "PRAGMA journal_mode") == [("delete",)]


@pytest.mark.parametrize(
    "content", [b"this is a text file, not a database\n" * 200, bytes(range(256)) * 32]
)
@pytest.mark.parametrize("command", ["positions", "migrate"])
def test_a_file_that_is_not_a_database_at_all_exits_3(
    tmp_path: Path, content: bytes, command: str
) -> None:
    db = tmp_path / "notes.db"
    db.write_bytes(content)
    before = db.read_bytes()
    result = run(command, db=db)
    assert result.returncode == 3, result.stdout + result.stderr[-2000:]
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    assert db.read_bytes() == before, "a file that is not ours is left alone"


@pytest.mark.parametrize(
    "bad_url",
    ["not a url", "sqlite:////nonexistent-dir-for-posledger/x.db", "nosuchdialect://host/db"],
)
def test_a_database_that_cannot_be_opened_exits_3(tmp_path: Path, bad_url: str) -> None:
    result = run("positions", db=bad_url, cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr


def test_a_database_of_an_unknown_schema_revision_exits_3(
    tmp_path: Path, ingested: Ingested
) -> None:
    db = ingested.copy(tmp_path / "future.db")
    assert execute(db, "UPDATE alembic_version SET version_num = '9999_future'") == 1
    for args in (["positions"], ["verify"], ["ingest", str(ingested.source)], ["migrate"]):
        result = run(*args, db=db)
        assert result.returncode == 3, (args, result.stdout, result.stderr)
        assert "9999_future" in result.stderr
        assert "Traceback" not in result.stderr
    assert sql(db, "SELECT version_num FROM alembic_version") == [("9999_future",)]


# -- migrate -------------------------------------------------------------------------------


def test_migrate_creates_the_schema_and_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    result = run("migrate", db=db)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"schema upgraded from nothing to revision {SCHEMA_REVISION}"
    assert sql(db, "SELECT version_num FROM alembic_version") == [(SCHEMA_REVISION,)]
    tables = {name for (name,) in sql(db, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "accounts",
        "instruments",
        "strategies",
        "orders",
        "fills",
        "journal",
        "slots",
        "trades",
        "trade_fills",
        "rejected_inputs",
    } <= tables
    again = run("migrate", db=db)
    assert again.returncode == 0
    assert again.stdout.strip() == f"schema is current (revision {SCHEMA_REVISION})"
    assert run_json("positions", "--all", db=db) == []


def test_migrate_on_an_existing_ledger_keeps_its_data(tmp_path: Path, ingested: Ingested) -> None:
    db = ingested.copy(tmp_path / "existing.db")
    result = run("migrate", db=db)
    assert result.returncode == 0
    assert "schema is current" in result.stdout
    assert run_json("positions", "--all", db=db) == ingested.positions_all


# -- demo ----------------------------------------------------------------------------------


def test_demo_creates_the_file_and_shows_the_session(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    result = run("demo", "--file", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert path.exists()
    assert "38 applied, 1 duplicate, 2 rejected" in out
    assert "rejected line 22: refused pre-trade" in out
    assert "rejected line 29" in out
    for word in ("Positions", "Trades", "Anomalies", "mes-orb-01", "EXTERNAL", "exit_overshoot"):
        assert word in out, word
    assert "verify: ok" in out
    assert "1 applied, 4 duplicate, 0 rejected" in out  # the broker's fill history
    assert "books agree: 2 positions compared" in out
    assert url(path) in out
    trades = run_json("trades", db=path)
    assert len(trades) == 8
    # The paper session: two strategies with brackets, one closed by its target, one by
    # its stop, each sibling leg cancelled (docs/brackets.md).
    assert "6 bars, 6 commands carried out, 2 fills sent back" in out
    paper = {t["strategy"]: t for t in trades if t["account"] == "PAPER-1"}
    assert {s: (t["status"], t["close_reason"]) for s, t in paper.items()} == {
        "orb-paper": ("closed", "take_profit"),
        "fade-paper": ("closed", "stop_loss"),
    }
    commands = run_json("commands", "--status", "all", db=path)
    assert sorted((c["kind"], c["status"]) for c in commands) == [
        ("cancel", "acked"),
        ("cancel", "acked"),
        *[("place", "acked")] * 4,
    ]
    assert run_json("exits", "--watched", db=path) == []
    assert run("verify", db=path).returncode == 0
    # Running it again starts from a fresh file rather than adding to the old one.
    again = run("demo", "--file", str(path))
    assert again.returncode == 0
    assert "38 applied, 1 duplicate, 2 rejected" in again.stdout
    # 42 entries of the session, 21 of the paper session: its 7 lines, the venue's 2
    # fills, a mark per bar (6), and the 6 acks that moved a leg on (4 places, 2 cancels).
    assert sql(path, "SELECT count(*), max(seq) FROM journal") == [(63, 63)]


def test_demo_default_file_is_in_the_working_directory(tmp_path: Path) -> None:
    result = run("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "posledger-demo.db").exists()
    assert "verify: ok" in result.stdout


# -- where the database is -----------------------------------------------------------------


def test_posledger_db_environment_variable(tmp_path: Path, ingested: Ingested) -> None:
    db = tmp_path / "from-env.db"
    env = clean_env(POSLEDGER_DB=url(db))
    result = run("ingest", str(ingested.source), env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert db.exists()
    assert not (tmp_path / "posledger.db").exists()
    assert run_json("positions", "--all", db=db) == ingested.positions_all
    assert run_json("positions", "--all", env=env) == ingested.positions_all


def test_db_option_wins_over_the_environment(tmp_path: Path, ingested: Ingested) -> None:
    from_env = tmp_path / "env.db"
    from_option = tmp_path / "option.db"
    env = clean_env(POSLEDGER_DB=url(from_env))
    result = run("ingest", str(ingested.source), db=from_option, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert from_option.exists()
    assert not from_env.exists()


def test_default_database_is_posledger_db_in_the_working_directory(
    tmp_path: Path, ingested: Ingested
) -> None:
    result = run("ingest", str(ingested.source), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "posledger.db").exists()
    assert run_json("trades", cwd=tmp_path) == ingested.trades
    assert run_json("trades", db=tmp_path / "posledger.db") == ingested.trades
