"""Schema revisions and Alembic migrations, on every database.

A realistic revision-0001 database is made by building one at head, ingesting a session
and downgrading it to 0001 (what posledger 0001 would have left behind: the same tables,
rows and journal, without 0002's ``streams`` table and server sequences).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from posledger import SchemaError, open_ledger
from posledger.store import schema
from posledger.store.database import make_engine, upgrade_database
from posledger.store.migrations import alembic_config, head_revision

from .helpers import T, connect, execute, fill, journal, rows, setup, snapshot

SCRIPT = os.path.join(os.path.dirname(sys.executable), "posledger")
FUTURE = "zz99_from_the_future"


def posledger(*args: str, db: str) -> subprocess.CompletedProcess[str]:
    """The real console script, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if k != "POSLEDGER_DB"}
    return subprocess.run(
        [SCRIPT, "--db", db, *args], capture_output=True, text=True, timeout=300, env=env
    )


@contextmanager
def alembic(db_url: str) -> Iterator[Config]:
    """An Alembic config on a connection to ``db_url`` (committed on exit)."""
    _, engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            yield alembic_config(conn)
    finally:
        engine.dispose()


def stored_revision(db_url: str) -> list[tuple[Any, ...]]:
    return rows(db_url, "SELECT version_num FROM alembic_version")


def tables(db_url: str) -> set[str]:
    with connect(db_url) as conn:
        return set(inspect(conn).get_table_names())


def differences(db_url: str) -> list[Any]:
    """What differs between the database's schema and posledger's metadata (server-side
    sequences, which the metadata does not declare, left out)."""
    with connect(db_url) as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        found = compare_metadata(context, schema.metadata)
    return [diff for diff in found if not _about_a_sequence(diff)]


def _about_a_sequence(diff: Any) -> bool:
    if isinstance(diff, tuple) and len(diff) > 1 and diff[0] in ("add_table", "remove_table"):
        return getattr(diff[1], "name", None) in schema.SEQUENCES
    return False


def ingest_session(db_url: str) -> tuple[Any, ...]:
    """Open trades, a closed trade, a hedge position, a mark and a rejected input."""
    with open_ledger(db_url) as ledger:
        setup(ledger)
        assert fill(ledger, "e1", "BUY", "2", "100.25", minute=1).applied
        assert fill(ledger, "e2", "SELL", "1", "101", strategy="beta", minute=2).applied
        assert fill(ledger, "e3", "BUY", "1", "99.5", strategy="beta", minute=3).applied
        assert fill(ledger, "e4", "SELL", "1", "100.75", strategy="beta", minute=4).applied
        hedge = {"account": "HDG", "instrument": "PERP", "position_side": "LONG"}
        assert fill(ledger, "p1", "BUY", "0.5", "60000.1", minute=5, **hedge).applied
        assert ledger.apply_mark(instrument="FUT", price="102", ts=f"{T}10:10:00Z").applied
        assert fill(ledger, "x1", "BUY", "1", "100", account="NOPE").status == "rejected"
        assert ledger.verify().ok
        return snapshot(ledger)


# -- revisions -----------------------------------------------------------------------------


def test_schema_revision_is_the_alembic_head(ledger: Any, db_url: str) -> None:
    assert head_revision() == schema.SCHEMA_REVISION
    assert stored_revision(db_url) == [(schema.SCHEMA_REVISION,)]


def test_created_schema_matches_the_metadata(ledger: Any, db_url: str) -> None:
    assert differences(db_url) == []


# -- an older database ---------------------------------------------------------------------


def test_a_0001_database_is_refused_then_migrated_in_place(db_url: str) -> None:
    before = ingest_session(db_url)
    journal_before = journal(db_url)
    with alembic(db_url) as config:
        command.downgrade(config, "0001")
    assert stored_revision(db_url) == [("0001",)]
    assert "streams" not in tables(db_url)
    at_0001 = tables(db_url)

    # opening it says it is older and what to do, and changes nothing
    with pytest.raises(SchemaError) as refused:
        open_ledger(db_url)
    message = str(refused.value)
    assert "0001" in message and "older" in message, message
    assert "posledger" in message and "migrate" in message, message
    assert stored_revision(db_url) == [("0001",)]
    assert tables(db_url) == at_0001
    assert journal(db_url) == journal_before

    # `posledger migrate` upgrades it in place
    result = posledger("migrate", db=db_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0001" in result.stdout and schema.SCHEMA_REVISION in result.stdout, result.stdout
    assert stored_revision(db_url) == [(schema.SCHEMA_REVISION,)]
    assert differences(db_url) == []
    result = posledger("verify", db=db_url)
    assert result.returncode == 0, result.stdout + result.stderr
    # and a second run has nothing left to do
    assert upgrade_database(db_url) == (schema.SCHEMA_REVISION, schema.SCHEMA_REVISION)

    old_seqs = [entry[0] for entry in journal_before]
    old_versions: dict[str, int] = defaultdict(int)
    for _seq, stream, version, *_ in journal_before:
        old_versions[stream] = max(old_versions[stream], version)
    old_trades = {t["trade_id"]: t for t in before[1]}

    with open_ledger(db_url) as ledger:
        # the data is intact
        assert snapshot(ledger) == before
        assert journal(db_url) == journal_before
        assert ledger.verify().ok
        # exactly once still holds across the migration
        assert fill(ledger, "e1", "BUY", "2", "100.25", minute=1).status == "duplicate"
        # alpha's open trade goes on and closes
        (alpha_open,) = [t for t in before[1] if (t["strategy"], t["account"]) == ("alpha", "ACC")]
        out = fill(ledger, "e5", "SELL", "2", "103", minute=20)
        assert out.applied
        assert out.seq is not None and out.seq > max(old_seqs)
        closed = {t["trade_id"]: t for t in ledger.trades()}[alpha_open["trade_id"]]
        assert closed["status"] == "closed"
        assert [f["exec_id"] for f in closed["fills"]] == ["e1", "e5"]
        assert closed["gross_realized_pnl"] == "27.5"  # (103 - 100.25) * 2 * 5
        # a new trade on each instrument gets an id never used before
        assert fill(ledger, "e6", "BUY", "1", "104", minute=21).applied
        hedge = {"account": "HDG", "instrument": "PERP", "position_side": "SHORT"}
        assert fill(ledger, "p2", "SELL", "0.1", "60100", minute=22, **hedge).applied
        new_trades = [t for t in ledger.trades() if t["trade_id"] not in old_trades]
        assert len(new_trades) == 2
        assert min(t["trade_id"] for t in new_trades) > max(old_trades)
        assert ledger.verify().ok

    after = journal(db_url)
    assert after[: len(journal_before)] == journal_before
    added = after[len(journal_before) :]
    assert added and min(entry[0] for entry in added) > max(old_seqs)
    # every stream's versions go on from where revision 0001 left them
    seen: dict[str, list[int]] = defaultdict(list)
    for _seq, stream, version, *_ in added:
        seen[stream].append(version)
    assert "instrument:FUT" in seen and "instrument:PERP" in seen
    for stream, versions in seen.items():
        start = old_versions.get(stream, 0) + 1
        assert versions == list(range(start, start + len(versions))), stream


def test_an_empty_0001_database_migrates_and_works(db_url: str) -> None:
    with alembic(db_url) as config:
        command.upgrade(config, "0001")
    with pytest.raises(SchemaError, match="older"):
        open_ledger(db_url)
    assert upgrade_database(db_url) == ("0001", schema.SCHEMA_REVISION)
    assert differences(db_url) == []
    with open_ledger(db_url) as ledger:
        setup(ledger)
        assert fill(ledger, "e1", "BUY", "1", "100").applied
        assert [t["trade_id"] for t in ledger.trades()] == [1]
        assert ledger.verify().ok
    assert [entry[0] for entry in journal(db_url)] == list(range(1, 8))


# -- a newer database ----------------------------------------------------------------------


def test_unknown_newer_schema_revision_is_refused(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
    execute(db_url, "UPDATE alembic_version SET version_num = :v", v=FUTURE)
    with pytest.raises(SchemaError, match="newer") as refused:
        open_ledger(db_url)
    assert FUTURE in str(refused.value)
    # `posledger migrate` refuses it too: exit 3, a message, no traceback
    result = posledger("migrate", db=db_url)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert FUTURE in result.stderr and "newer" in result.stderr, result.stderr
    # nothing was changed by the refusals
    assert stored_revision(db_url) == [(FUTURE,)]
    assert rows(db_url, "SELECT count(*) FROM accounts") == [(2,)]


# -- a revision cut short --------------------------------------------------------------------

REVISIONS = ("0001", "0002", "0003", "0004", "0005")


def run_steps_unstamped(db_url: str, revision: str) -> None:
    """Run ``revision``'s upgrade without moving the version stamp: what a ``migrate``
    killed on MariaDB after the revision's last step, before the commit that carries its
    stamp, leaves behind (every step of the revision done, the stamp one behind)."""
    from alembic.operations import Operations
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    assert script is not None
    _, engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            context = MigrationContext.configure(
                conn, opts={"render_as_batch": conn.dialect.name == "sqlite"}
            )
            with Operations.context(context):
                script.module.upgrade()
    finally:
        engine.dispose()


def _next_value(db_url: str, sequence: str) -> int:
    kind = make_engine(db_url)[0].get_backend_name()
    sql = f"SELECT nextval('{sequence}')" if kind == "postgresql" else f"SELECT NEXTVAL({sequence})"
    with connect(db_url) as conn:
        value = int(conn.execute(text(sql)).scalar_one())
        conn.commit()
    return value


@pytest.mark.parametrize("revision", REVISIONS)
def test_a_revision_whose_stamp_did_not_move_is_run_again(db_url: str, revision: str) -> None:
    """Every step of every revision finds what it would create already there, and
    ``migrate`` finishes the job; data steps whose rows were lost with the kill are
    redone, and sequences are never restarted."""
    before = ingest_session(db_url)
    reconciled = revision in ("0004", "0005")  # (older revisions had no reconciliation)
    if reconciled:
        with open_ledger(db_url) as ledger:
            position = {"type": "broker_position", "account": "ACC", "instrument": "FUT"}
            ledger.reconcile([json.dumps({**position, "quantity": "1"})], run="morning")
    journal_before = journal(db_url)
    previous = None if revision == "0001" else REVISIONS[REVISIONS.index(revision) - 1]
    with alembic(db_url) as config:
        command.downgrade(config, previous or "base")
    assert stored_revision(db_url) == ([] if previous is None else [(previous,)])

    run_steps_unstamped(db_url, revision)
    # what was in the killed transaction is lost: rows inserted since the last DDL
    if revision == "0002":
        execute(db_url, "DELETE FROM streams")
    if revision == "0005":
        execute(db_url, "DELETE FROM reconciliation_runs")
    servers = make_engine(db_url)[0].get_backend_name() != "sqlite"
    handed_out = 0
    if revision == "0002" and servers:
        for _ in range(3):  # numbers the sequence handed out must never come again
            handed_out = _next_value(db_url, "journal_seq")
    assert stored_revision(db_url) == ([] if previous is None else [(previous,)])

    assert upgrade_database(db_url) == (previous, schema.SCHEMA_REVISION)
    assert stored_revision(db_url) == [(schema.SCHEMA_REVISION,)]
    assert differences(db_url) == []

    with open_ledger(db_url) as ledger:
        if revision == "0001":  # a creation: nothing of the data was there to keep
            setup(ledger)
        else:
            assert snapshot(ledger)[:2] == before[:2]
            assert journal(db_url)[: len(journal_before)] == journal_before
        if reconciled:
            assert [r["run"] for r in ledger.reconciliations(last=None)][:1] == ["morning"]
            assert rows(db_url, "SELECT run FROM reconciliation_runs") == [("morning",)]
        out = fill(ledger, "n1", "BUY", "1", "104", minute=30)
        assert out.applied and out.seq is not None
        kept = [] if revision == "0001" else [entry[0] for entry in journal_before]
        assert out.seq > max([0, handed_out, *kept])
        assert ledger.verify().ok
