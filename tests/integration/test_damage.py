"""The storage damage mark on every database: while a database is marked damaged every
writer refuses (``DamagedDatabase``, exit 3) and nothing is written; reads go on; doctor
reports the mark; ``doctor --clear-damage`` lifts it. PostgreSQL and MariaDB have no
page-level check posledger can run, so there the mark is set directly, as a writer whose
driver reports damage (or an operator) sets it. SQLite's own check: tests/e2e/test_damage.py.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from posledger import Ledger, open_ledger
from posledger.entrypoints.cli import cli
from posledger.errors import DamagedDatabase
from posledger.service.doctor import CHECKS
from posledger.store import schema, unit_of_work
from posledger.store.inspection import SqlInspection
from tests.corruption import damage_table

from .helpers import db_path, execute, fill, kind_of, rows, setup, sqlite_only

FOUND = "pages 7 to 9 of the journal do not read back"


def journal_size(db_url: str) -> int:
    ((count,),) = rows(db_url, select(func.count()).select_from(schema.journal))
    return int(count)


def storage(report: Any) -> list[Any]:
    return [f for f in report.findings if f.check == "storage"]


def test_a_marked_database_refuses_every_writer_until_the_mark_is_lifted(
    ledger: Ledger, db_url: str
) -> None:
    setup(ledger)
    assert fill(ledger, "e1", "BUY", "1", "100").applied
    report = ledger.doctor()
    assert report.ok and storage(report) == []
    assert ledger.store.mark_damaged("doctor", FOUND) is True
    size = journal_size(db_url)

    # another process's writer
    with open_ledger(db_url) as other:
        with pytest.raises(DamagedDatabase) as refused:
            fill(other, "e2", "BUY", "1", "100", minute=1)
        message = str(refused.value)
        assert "is marked damaged: posledger doctor found at" in message
        assert FOUND in message
        assert "backup" in message and "posledger rebuild" in message
        assert "posledger doctor --clear-damage" in message
        with pytest.raises(DamagedDatabase):
            other.register_strategy(strategy="gamma")
        with pytest.raises(DamagedDatabase):
            other.rebuild()
        # reading goes on
        assert [p["strategy"] for p in other.positions()] == ["alpha"]
    # the CLI: exit 3, the same message, nothing written
    result = CliRunner().invoke(
        cli, ["--db", db_url, "ingest", "-"], input='{"type":"strategy","strategy":"delta"}\n'
    )
    assert result.exit_code == 3, result.output
    assert "marked damaged" in result.stderr and FOUND in result.stderr
    assert journal_size(db_url) == size

    report = ledger.doctor()  # also drops this ledger's cached view of the mark
    assert not report.ok
    assert report.checks_run == list(CHECKS)
    (finding,) = storage(report)
    assert (finding.severity, finding.subject) == ("error", "database")
    assert finding.data["found_by"] == "doctor" and finding.data["detail"] == FOUND
    assert "--clear-damage" in finding.detail
    with pytest.raises(DamagedDatabase):
        fill(ledger, "e2", "BUY", "1", "100", minute=1)
    assert journal_size(db_url) == size

    # a second detection keeps the first mark
    assert ledger.store.mark_damaged("writer", "something else") is True
    (finding,) = storage(ledger.doctor())
    assert finding.data["detail"] == FOUND

    # repaired: lifted, and writers write again
    report = ledger.doctor(clear_damage=True)
    assert report.ok, report.as_dict()
    (lifted,) = storage(report)
    assert (lifted.severity, lifted.data["detail"]) == ("info", FOUND)
    assert fill(ledger, "e2", "BUY", "1", "100", minute=1).applied
    with open_ledger(db_url) as other:
        assert fill(other, "e3", "BUY", "1", "100", minute=2).applied
    assert ledger.doctor().ok
    assert ledger.store.clear_damage() is None  # nothing left to lift


def test_a_running_writer_notices_a_mark_another_process_set(
    ledger: Ledger, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: at once (``PRAGMA data_version`` moved). A server writer reads the mark
    again once a second; here at every transaction."""
    monkeypatch.setattr(unit_of_work, "DAMAGE_RECHECK_NS", 0)
    setup(ledger)
    assert fill(ledger, "e1", "BUY", "1", "100").applied
    with open_ledger(db_url) as other:
        assert other.store.mark_damaged("writer", FOUND)
    with pytest.raises(DamagedDatabase, match="a writer found at"):
        fill(ledger, "e2", "BUY", "1", "100", minute=1)
    assert ledger.store.clear_damage() is not None
    assert fill(ledger, "e2", "BUY", "1", "100", minute=1).applied


def test_the_mark_is_read_again_only_when_another_connection_committed(
    ledger: Ledger, db_url: str
) -> None:
    """The check at begin costs nothing while this writer is the only one."""
    sqlite_only(db_url, "PRAGMA data_version")
    setup(ledger)
    statements: list[str] = []
    connection = ledger._uow._fairy.driver_connection  # type: ignore[attr-defined]
    connection.set_trace_callback(statements.append)

    def reads() -> int:
        return sum("storage_damage" in statement for statement in statements)

    for n in range(5):
        assert fill(ledger, f"e{n}", "BUY", "1", "100", minute=n).applied
    assert reads() == 0
    with open_ledger(db_url) as other:
        assert fill(other, "x1", "SELL", "1", "100", strategy="beta").applied
    assert fill(ledger, "e9", "BUY", "1", "100", minute=9).applied
    assert reads() == 1


def test_a_refused_read_is_a_storage_finding(
    ledger: Ledger, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where no page-level check runs (as on a server), damage shows as a read the
    database refuses: a storage error naming the check that could not complete (the
    others still run), and the database is marked."""
    sqlite_only(db_url, "the file is damaged underneath SQLite")
    setup(ledger)
    for n in range(60):
        assert fill(ledger, f"e{n}", "BUY", "1", "100", minute=n).applied
    ledger.close()
    damage_table(db_path(db_url), "trade_fills", every_page=True)
    monkeypatch.setattr(SqlInspection, "storage_problems", lambda self: None)
    with open_ledger(db_url) as reopened:
        report = reopened.doctor()
        assert not report.ok
        assert report.checks_run == [c for c in CHECKS if c != "slot_fills_mismatch"]
        (finding,) = storage(report)
        assert finding.severity == "error"
        assert finding.data["problems"] == [
            "the slot_fills_mismatch check's read failed: database disk image is malformed"
        ]
        assert finding.data["not_run"] == ["slot_fills_mismatch"]
        assert finding.data["marked"] is True
        assert [f.check for f in report.findings] == ["storage"]  # the rest reads fine
        with pytest.raises(DamagedDatabase, match="marked damaged"):
            reopened.register_strategy(strategy="gamma")


DAMAGE_SQL = {
    "postgresql": (
        "DO $$ BEGIN RAISE EXCEPTION 'could not read block 7 in file base/1/2' "
        "USING ERRCODE = 'data_corrupted'; END $$"
    ),
    "mariadb": (
        "SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1712, "
        "MESSAGE_TEXT = 'Index pk_fills is corrupted'"
    ),
}

SAID = {"postgresql": "could not read block 7", "mariadb": "Index pk_fills is corrupted"}


def test_a_server_read_refused_as_damaged_is_a_storage_finding(
    ledger: Ledger, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server raises its own damage errors (here on purpose): the checks that read
    through it fail, the others still run in the same read transaction."""
    kind = kind_of(db_url)
    if kind == "sqlite":
        pytest.skip("SQLite's own damage: test_a_refused_read_is_a_storage_finding")
    setup(ledger)
    assert fill(ledger, "e1", "BUY", "1", "100").applied
    assert fill(ledger, "e2", "SELL", "1", "100", strategy="beta").applied

    def refused(self: SqlInspection, *args: Any, **kwargs: Any) -> Any:
        self.conn.exec_driver_sql(DAMAGE_SQL[kind])

    monkeypatch.setattr(SqlInspection, "_sums", refused)  # the exact sums of amounts
    report = ledger.doctor()
    summed = ["slot_fills_mismatch", "fill_order_other_strategy", "order_overfilled"]
    assert report.checks_run == [c for c in CHECKS if c not in summed]
    (finding,) = storage(report)
    assert finding.data["not_run"] == summed
    assert len(finding.data["problems"]) == 3
    assert all(SAID[kind] in problem for problem in finding.data["problems"])
    assert [f.check for f in report.findings] == ["storage", "shared_instrument"]
    with pytest.raises(DamagedDatabase, match="marked damaged"):
        fill(ledger, "e3", "BUY", "1", "100", minute=1)


TRIGGER_SQL = {
    "postgresql": [
        "CREATE FUNCTION refuse_fill() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION "
        "'could not read block 7 in file base/1/2' USING ERRCODE = 'data_corrupted'; "
        "END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_fill BEFORE INSERT ON fills "
        "FOR EACH ROW EXECUTE FUNCTION refuse_fill()",
    ],
    "mariadb": [
        "CREATE TRIGGER refuse_fill BEFORE INSERT ON fills FOR EACH ROW "
        "SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1712, "
        "MESSAGE_TEXT = 'Index pk_fills is corrupted'"
    ],
}


def test_a_server_writer_meeting_damage_stops_and_marks_the_database(
    ledger: Ledger, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A damage error from the server while committing: not retried, the database marked,
    and every writer refuses from then on, also where the damage is not in its way."""
    kind = kind_of(db_url)
    if kind == "sqlite":
        pytest.skip("SQLite's own damage: tests/e2e/test_damage.py")
    setup(ledger)
    assert fill(ledger, "e1", "BUY", "1", "100").applied
    for statement in TRIGGER_SQL[kind]:
        execute(db_url, statement)
    size = journal_size(db_url)
    slept: list[float] = []
    monkeypatch.setattr("posledger.service.ledger.time.sleep", slept.append)
    with pytest.raises(DamagedDatabase, match="now marked damaged") as raised:
        fill(ledger, "e2", "BUY", "1", "100", minute=1)
    assert SAID[kind] in str(raised.value)
    assert slept == []
    assert journal_size(db_url) == size
    with pytest.raises(DamagedDatabase, match="is marked damaged: a writer found at"):
        ledger.register_strategy(strategy="gamma")  # no fill: the trigger is not in its way
    with open_ledger(db_url) as other, pytest.raises(DamagedDatabase):
        other.register_strategy(strategy="gamma")
    (finding,) = storage(ledger.doctor())
    assert finding.data["found_by"] == "writer" and SAID[kind] in finding.data["detail"]


def test_damage_errors_are_never_retried(
    ledger: Ledger, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_only(db_url, "the file is damaged underneath SQLite")
    setup(ledger)
    for n in range(60):
        assert fill(ledger, f"e{n}", "BUY", "1", "100", minute=n).applied
    ledger.close()
    damage_table(db_path(db_url), "fills", every_page=True)
    slept: list[float] = []
    monkeypatch.setattr("posledger.service.ledger.time.sleep", slept.append)
    with (
        open_ledger(db_url) as reopened,
        pytest.raises(DamagedDatabase, match="now marked damaged") as raised,
    ):
        fill(reopened, "new", "BUY", "1", "100")
    assert slept == []
    cause = raised.value.__cause__
    assert isinstance(cause, sqlite3.DatabaseError) and "malformed" in str(cause)


def test_a_memory_ledger_runs_the_same_checks() -> None:
    with open_ledger("memory://") as ledger:
        setup(ledger)
        assert fill(ledger, "e1", "BUY", "1", "100").applied
        report = ledger.doctor()
        assert report.ok and report.checks_run == list(CHECKS)
        assert storage(report) == []
        assert ledger.store.mark_damaged("doctor", FOUND) is False  # nothing to mark
