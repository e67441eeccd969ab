"""A ``posledger migrate`` killed with SIGKILL at any instant is finished by the next one.

MariaDB commits every DDL statement on its own: a kill leaves a half-built schema, which
the next ``migrate`` must finish (every migration step checks what exists first, and the
version stamp moves only after a revision's last step). SQLite and PostgreSQL run the
whole upgrade in one transaction: a kill must leave nothing, or everything.

Kill points are chosen by progress, never by a sleep that assumes a speed:

* MariaDB: the test watches the schema grow (tables, columns, indexes, tables converted to
  the binary collation, the version stamp) and kills the process as soon as it changed
  something. The next process resumes from there and is killed in turn, until one
  finishes: nearly every step of every revision becomes a kill point (one or two more
  steps may complete between the look and the kill, or the step under way may be cut).
* SQLite and PostgreSQL, whose work is invisible until it commits: the test waits until
  the upgrade is under way (SQLite's rollback journal exists; the process holds the
  schema lock), then kills after a delay drawn from one slice of the duration measured
  for a whole upgrade on this machine, the slices spanning all of it.

While no revision is stamped yet, every other process is ``posledger ingest`` rather than
``migrate``: the schema a first write creates must be restartable too.

Then ``posledger migrate`` must succeed, leave the schema the metadata describes, and the
ledger must work (registrations, fills, trades, ``verify``).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, text

from posledger import open_ledger
from posledger.store import schema
from posledger.store.migrations import known_revisions
from tests.databases import fresh_database

from .helpers import db_path, fill, journal, kind_of, setup
from .test_migrations import differences, stored_revision

SCRIPT = os.path.join(os.path.dirname(sys.executable), "posledger")
REVISIONS = tuple(sorted(known_revisions()))
"""Every revision, in order (each must see a kill in its middle on MariaDB)."""
APP = "posledger-kill-test"
"""The PostgreSQL application_name of the processes under test (the servers are shared
with other tests, whose schema locks must not be taken for ours)."""

TRANSACTIONAL_KILLS = 6
"""Kills inside the upgrade on SQLite and PostgreSQL (each leaves nothing, so one database
takes them all; one that comes after the commit moves on to a fresh database)."""
MAX_RUNS = 150
POLL = 0.002
"""Seconds between two looks at the database (leaving the CPU to the process under test)."""
DEADLINE = 60.0
"""Seconds one process may take to make progress, or to finish, before the test fails."""

REGISTRATION = (
    '{"type":"account","account":"K1","venue":"X","mode":"SIM","position_mode":"netting"}\n'
)


@dataclass
class Kills:
    """What the test did to one database."""

    kind: str
    points: list[tuple[str, str | None, str]] = field(default_factory=list)
    """(command, stamped revision after the kill, what the database held (MariaDB) or
    when the kill came, as a share of the upgrade's duration)."""
    finished_by: str = ""
    late: list[str] = field(default_factory=list)
    """SQLite and PostgreSQL: processes killed after their commit, or that ended first."""

    def in_progress(self) -> Counter[str]:
        """How many kills fell inside each revision (the one after the stamped one)."""
        counted: Counter[str] = Counter()
        for _command, stamp, _held in self.points:
            following = REVISIONS[0] if stamp is None else _next(stamp)
            if following is not None:
                counted[following] += 1
        return counted

    def report(self) -> str:
        if self.kind == "mariadb":
            counted = self.in_progress()
            inside = ", ".join(f"{rev}: {counted.get(rev, 0)}" for rev in REVISIONS)
            where = f"inside revision {inside}"
        else:
            where = "at " + ", ".join(held for _c, _s, held in self.points)
        finished = self.finished_by or "the final migrate"
        late = f"; too late: {', '.join(self.late)}" if self.late else ""
        return f"{self.kind}: {len(self.points)} kills {where}; finished by {finished}{late}"


def _next(revision: str) -> str | None:
    index = REVISIONS.index(revision)
    return REVISIONS[index + 1] if index + 1 < len(REVISIONS) else None


def _spawn(db_url: str, command: str, source: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "POSLEDGER_DB"}
    env["PGAPPNAME"] = APP
    args = [SCRIPT, "--db", db_url, command] + ([str(source)] if command == "ingest" else [])
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _kill(process: subprocess.Popen[str]) -> bool:
    """SIGKILL; False if the process had already ended on its own."""
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=DEADLINE)
    return process.returncode == -signal.SIGKILL


def _ended_well(process: subprocess.Popen[str], command: str) -> None:
    out, err = process.communicate(timeout=DEADLINE)
    assert process.returncode == 0, f"{command} exited {process.returncode}: {out}{err}"


# -- watching a database ---------------------------------------------------------------


class Watch:
    """A connection of the test's own to the database under test."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.kind = kind_of(db_url)
        # (none on SQLite: it would create the file, and hold it open)
        self.engine = None if self.kind == "sqlite" else create_engine(db_url)
        self._conn: Connection | None = None
        self.stale_journal: tuple[int, int, int] | None = None
        """SQLite: the rollback journal a killed process left (no longer hot once read),
        which only a new write transaction rewrites."""

    def before_run(self) -> None:
        if self.kind == "sqlite":
            self.stale_journal = _journal_stat(self.db_url)

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            assert self.engine is not None
            self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self.engine is not None:
            self.engine.dispose()

    def scalar(self, sql: str, **params: Any) -> Any:
        return self.conn.execute(text(sql), params).scalar()

    def stamp(self) -> str | None:
        if self.kind == "mariadb":
            present = self.scalar(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = 'alembic_version'"
            )
            if not present:
                return None
        elif self.kind == "postgresql":
            if self.scalar("SELECT to_regclass('alembic_version')") is None:
                return None
        else:
            return _sqlite_stamp(self.db_url)
        value = self.scalar("SELECT max(version_num) FROM alembic_version")
        return None if value is None else str(value)

    def progress(self) -> tuple[Any, ...]:
        """MariaDB: what the schema holds so far, as counts (and the stamp)."""
        assert self.kind == "mariadb"
        row = self.conn.execute(
            text(
                "SELECT "
                "(SELECT count(*) FROM information_schema.tables t "
                " WHERE t.table_schema = DATABASE()), "
                "(SELECT count(*) FROM information_schema.tables t "
                " WHERE t.table_schema = DATABASE() AND t.table_collation = 'utf8mb4_bin'), "
                "(SELECT count(*) FROM information_schema.columns c "
                " WHERE c.table_schema = DATABASE()), "
                "(SELECT count(DISTINCT s.table_name, s.index_name) "
                " FROM information_schema.statistics s WHERE s.table_schema = DATABASE())"
            )
        ).one()
        return (*row, self.stamp())

    def held(self) -> str:
        """A short description of the schema for the report."""
        if self.kind == "mariadb":
            tables, binary, columns, indexes, _stamp = self.progress()
            return f"{tables} tables ({binary} utf8mb4_bin), {columns} columns, {indexes} indexes"
        return f"{len(_tables(self.db_url))} tables"

    def under_way(self) -> bool:
        """SQLite and PostgreSQL: whether an upgrade by a process under test is running."""
        if self.kind == "sqlite":
            found = _journal_stat(self.db_url)
            return found is not None and found != self.stale_journal
        return bool(
            self.scalar(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE a.application_name = :app AND l.locktype = 'advisory' AND l.granted",
                app=APP,
            )
        )

    def settle(self) -> None:
        """Wait until the server has ended the killed process's sessions (a statement it
        was running may complete after the kill; its locks go with its session)."""
        if self.kind == "sqlite":
            return
        if self.kind == "mariadb":
            sql = (
                "SELECT count(*) FROM information_schema.processlist "
                "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
            )
        else:
            sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = :app"
        deadline = time.monotonic() + DEADLINE
        while self.scalar(sql, app=APP):
            assert time.monotonic() < deadline, "the killed process's session lingers"
            time.sleep(0.005)


def _journal_stat(db_url: str) -> tuple[int, int, int] | None:
    try:
        found = Path(f"{db_path(db_url)}-journal").stat()
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size


def _sqlite_stamp(db_url: str) -> str | None:
    if "alembic_version" not in _tables(db_url):
        return None
    found = stored_revision(db_url)
    return str(found[0][0]) if found else None


def _tables(db_url: str) -> set[str]:
    from .test_migrations import tables

    return tables(db_url)


@contextmanager
def watching(db_url: str) -> Iterator[Watch]:
    watch = Watch(db_url)
    try:
        yield watch
    finally:
        watch.close()


# -- the kill chains ---------------------------------------------------------------------


def _command(run: int, stamp: str | None) -> str:
    return "ingest" if stamp is None and run % 2 == 1 else "migrate"


def kill_mariadb(db_url: str, source: Path) -> Kills:
    kills = Kills("mariadb")
    with watching(db_url) as watch:
        for run in range(MAX_RUNS):
            before = watch.progress()
            command = _command(run, before[-1])
            process = _spawn(db_url, command, source)
            deadline = time.monotonic() + DEADLINE
            while watch.progress() == before and process.poll() is None:
                assert time.monotonic() < deadline, f"{command} made no progress"
                time.sleep(POLL)
            if not _kill(process):
                _ended_well(process, command)
                kills.finished_by = command
                return kills
            watch.settle()
            kills.points.append((command, watch.stamp(), watch.held()))
    raise AssertionError(f"not finished after {MAX_RUNS} runs: {kills.report()}")


def _upgrade_duration(kind: str, source: Path) -> float:
    """Seconds an upgrade is seen under way (SQLite's journal exists, the schema lock is
    held), on a database of its own."""
    with fresh_database(kind) as db_url, watching(db_url) as watch:
        process = _spawn(db_url, "migrate", source)
        deadline = time.monotonic() + DEADLINE
        while not watch.under_way() and process.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(POLL)
        started = time.monotonic()
        while watch.under_way():
            assert time.monotonic() < deadline
            time.sleep(POLL)
        elapsed = time.monotonic() - started
        _ended_well(process, "migrate")
        watch.settle()
        return elapsed


def kill_transactional(
    db_url: str, source: Path, rng: random.Random, spare: ExitStack
) -> tuple[Kills, list[str]]:
    """Kills on SQLite or PostgreSQL, and the databases they were made on (a kill that
    came after the commit leaves a complete schema: the next kill needs another one)."""
    kind = kind_of(db_url)
    kills = Kills(kind)
    duration = _upgrade_duration(kind, source)
    used = [db_url]
    for run in range(2 * TRANSACTIONAL_KILLS):
        if len(kills.points) == TRANSACTIONAL_KILLS:
            break
        # a delay inside the next of TRANSACTIONAL_KILLS slices of the upgrade's duration
        share = (len(kills.points) + rng.random()) / TRANSACTIONAL_KILLS
        command = _command(run, None)
        with watching(used[-1]) as watch:
            watch.before_run()
            process = _spawn(used[-1], command, source)
            deadline = time.monotonic() + DEADLINE
            while not watch.under_way() and process.poll() is None:
                assert time.monotonic() < deadline, f"{command} never started upgrading"
                time.sleep(POLL)
            wake = time.monotonic() + share * duration
            while time.monotonic() < wake and process.poll() is None:
                time.sleep(0.001)
            killed = _kill(process)
            if not killed:
                _ended_well(process, command)
            watch.settle()
            stamp, held = watch.stamp(), _tables(used[-1])
        # all or nothing: a kill before the commit leaves no table at all
        assert (stamp, held) == (None, set()) or stamp == schema.SCHEMA_REVISION, (
            kind,
            stamp,
            held,
        )
        if stamp is None:
            kills.points.append((command, stamp, f"{share:.0%}"))
        else:  # too late: this machine upgrades faster than measured
            kills.late.append(f"{command} at {share:.0%}" if killed else f"{command} ended")
            duration *= 0.8
            used.append(spare.enter_context(fresh_database(kind)))
    return kills, used


# -- the test ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_migrate_killed_at_any_point_is_finished_by_the_next(db_url: str, tmp_path: Path) -> None:
    kind = kind_of(db_url)
    source = tmp_path / "registration.jsonl"
    source.write_text(REGISTRATION)
    rng = random.Random()
    with ExitStack() as spare:
        if kind == "mariadb":
            kills, used = kill_mariadb(db_url, source), [db_url]
        else:
            kills, used = kill_transactional(db_url, source, rng, spare)
        print(kills.report())
        for point in kills.points:
            print("  killed", *point)

        for database in used:
            result = subprocess.run(
                [SCRIPT, "--db", database, "migrate"], capture_output=True, text=True, timeout=300
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert stored_revision(database) == [(schema.SCHEMA_REVISION,)]
            assert differences(database) == []
            _check_ledger_works(database)

    if kind == "mariadb":
        # a kill inside every revision (the stamp lags behind by one revision)
        counted = kills.in_progress()
        assert set(REVISIONS) <= set(counted), kills.report()
    else:
        assert len(kills.points) == TRANSACTIONAL_KILLS, kills.report()


def _check_ledger_works(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        assert fill(ledger, "e1", "BUY", "2", "100", minute=1).applied
        assert fill(ledger, "e2", "SELL", "2", "101", minute=2).applied
        assert fill(ledger, "e3", "BUY", "1", "102", minute=3).applied
        assert fill(ledger, "e1", "BUY", "2", "100", minute=1).status == "duplicate"
        trades = ledger.trades()
        assert [t["trade_id"] for t in trades] == [1, 2]
        assert trades[0]["status"] == "closed" and trades[1]["status"] == "open"
        assert ledger.verify().ok
    seqs = [entry[0] for entry in journal(db_url)]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
