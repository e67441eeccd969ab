"""Faults of a real database server while a writer is busy.

* The writer's connection is killed again and again in the middle of an ingest
  (``pg_terminate_backend`` on PostgreSQL, ``KILL`` on MariaDB): the ingest reconnects and
  finishes, or fails with :class:`posledger.DatabaseError`; every acknowledged fill is
  stored, none twice, the journal has no gap, ``verify`` passes, and ingesting the same
  input again to completion gives exactly what an uninterrupted run gives.
* A fault that outlasts the retries (the writer waits for a lock another connection holds
  and is killed every time it waits) makes ``apply_fill`` / ``ingest`` raise
  ``DatabaseError`` saying so within seconds, with nothing half-applied; the same ledger
  works again once the fault is gone.
* A fault no retry cures (the schema dropped under the writer) is raised at once as a
  ``DatabaseError``, not as a driver traceback.
* Opt-in (it restarts the shared PostgreSQL server): ``POSLEDGER_TEST_RESTART_SERVER=1``
  restarts PostgreSQL in the middle of an ingest (``pg_ctlcluster ... main restart``, or
  the shell command in ``POSLEDGER_TEST_RESTART_COMMAND``).

Reproduce a failure with ``POSLEDGER_FAULT_SEED=<seed printed by the test>``.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import OperationalError

from posledger import DatabaseError, Ledger, open_ledger
from tests import databases
from tests.databases import SERVERS, fresh_database, require, server_url
from tests.e2e.concurrency_data import (
    ACCOUNT,
    INSTRUMENT,
    reference_lines,
    shared_fill,
    strategy_inputs,
)

FILLS_PER_STRATEGY = 1_000
STREAM = f"instrument:{INSTRUMENT}"
GIVE_UP_SECONDS = 20


def _seed() -> int:
    seed = int(os.environ.get("POSLEDGER_FAULT_SEED") or random.SystemRandom().randrange(10**9))
    print(f"fault test seed: {seed} (rerun with POSLEDGER_FAULT_SEED={seed})")
    return seed


def fault_lines(seed: int, fills: int = FILLS_PER_STRATEGY) -> list[str]:
    """Reference data, then two strategies' orders and fills interleaved (each in its own
    order), a few ``shared`` fills, and some lines sent again."""
    rng = random.Random(seed)
    queues = [strategy_inputs(f"s{k}", fills, rng, overshoot=False) for k in range(2)]
    body: list[str] = []
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        body.append(queue.pop(0))
        if rng.random() < 0.02:
            body.append(shared_fill(f"sh-{len(body):05d}"))
        if rng.random() < 0.03:
            body.append(rng.choice(body))
    return reference_lines(2) + body


def distinct_fills(lines: list[str]) -> set[str]:
    return {json.loads(x)["exec_id"] for x in lines if json.loads(x)["type"] == "fill"}


# -- the database, seen without posledger ---------------------------------------------


def stack(thread: threading.Thread) -> str:
    """Where a thread is stuck, for the failure message."""
    frame = sys._current_frames().get(thread.ident or -1)
    return "".join(traceback.format_stack(frame)) if frame is not None else "(thread ended)"


def _admin(kind: str) -> Any:
    return create_engine(server_url(kind), isolation_level="AUTOCOMMIT")


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def journal(url: str) -> list[tuple[int, str, int, str, str]]:
    rows = _query(url, "SELECT seq, stream, version, kind, input FROM journal ORDER BY seq")
    return [(int(a), str(b), int(c), str(d), str(e)) for a, b, c, d, e in rows]


def stored_fills(url: str) -> dict[str, int]:
    return {str(e): int(s) for e, s in _query(url, "SELECT exec_id, seq FROM fills")}


def check_stored(url: str, acks: list[tuple[str, str, str | None, int | None]], label: str) -> None:
    """Every acknowledged input is stored (an applied fill with the acknowledged seq),
    nothing is journaled twice, every stream's versions run 1..n, and verify passes."""
    entries = journal(url)
    fills = stored_fills(url)
    by_seq = {seq: (kind, body) for seq, _, _, kind, body in entries}
    for status, kind, key, seq in acks:
        if kind != "fill" or status == "rejected":
            continue
        assert key in fills, f"{label}: acknowledged ({status}) fill {key} is not stored"
        if status == "applied":
            assert fills[key] == seq, (
                f"{label}: fill {key} acked with seq {seq}, stored {fills[key]}"
            )
            assert by_seq[seq][0] == "fill" and json.loads(by_seq[seq][1])["exec_id"] == key
    applied = Counter(
        key for status, kind, key, _ in acks if status == "applied" and kind == "fill"
    )
    twice = [key for key, n in applied.items() if n > 1]
    assert not twice, f"{label}: fills acknowledged as applied twice: {twice[:10]}"
    journaled = Counter(
        json.loads(body)["exec_id"] for _, _, _, kind, body in entries if kind == "fill"
    )
    assert set(journaled) == set(fills), f"{label}: fills and journal disagree"
    twice = [key for key, n in journaled.items() if n > 1]
    assert not twice, f"{label}: fills journaled twice: {twice[:10]}"
    versions: dict[str, list[int]] = defaultdict(list)
    for _, stream, version, _, _ in entries:
        versions[stream].append(version)
    for stream, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), f"{label}: {stream} versions {seen[:40]}"
    with open_ledger(url) as ledger:
        report = ledger.verify()
    assert report.ok, f"{label}: verify: {report.problems[:5]}"


def state(url: str) -> dict[str, Any]:
    """What a user sees, without ids that depend on retries (trade ids, journal seqs)."""
    with open_ledger(url) as ledger:
        return {
            "positions": [
                {k: v for k, v in p.items() if k != "trade_id"}
                for p in ledger.positions(include_flat=True)
            ],
            "trades": [
                {
                    **{k: v for k, v in t.items() if k not in ("trade_id", "fills")},
                    "fills": [{k: v for k, v in f.items() if k != "seq"} for f in t["fills"]],
                }
                for t in ledger.trades()
            ],
            "anomalies": [{k: v for k, v in a.items() if k != "seq"} for a in ledger.anomalies()],
            "rejected": sorted((r["raw"], r["reason"]) for r in ledger.rejected_inputs()),
            "journal": [entry[1:] for entry in journal(url)],
        }


# -- the writer, and who kills it -----------------------------------------------------


class Writer(threading.Thread):
    """``ledger.ingest`` in a thread, recording what it acknowledged."""

    def __init__(self, ledger: Ledger, lines: list[str], batch_size: int) -> None:
        super().__init__(daemon=True)
        self.ledger = ledger
        self.lines = lines
        self.batch_size = batch_size
        self.acks: list[tuple[str, str, str | None, int | None]] = []
        self.error: BaseException | None = None
        self.report: Any = None
        self.ended_at: float | None = None

    def run(self) -> None:
        def on_commit(batch: list[tuple[Any, Any]]) -> None:
            for _, outcome in batch:
                self.acks.append((outcome.status, outcome.kind, outcome.key, outcome.seq))

        try:
            self.report = self.ledger.ingest(
                self.lines, source="faults", batch_size=self.batch_size, on_commit=on_commit
            )
        except BaseException as exc:  # recorded and checked by the test
            self.error = exc
        finally:
            self.ended_at = time.monotonic()


def tagged(kind: str, url: str) -> tuple[str, str]:
    """The URL with an application name (PostgreSQL) by which the writer's connections
    are found, and that tag: the database name on MariaDB."""
    parsed = make_url(url)
    if kind == "postgresql":
        tag = f"pl_fault_{uuid.uuid4().hex[:10]}"
        return parsed.update_query_dict({"application_name": tag}).render_as_string(False), tag
    return url, str(parsed.database)


def kill(conn: Connection, kind: str, tag: str, only_waiting: bool = False) -> int:
    """Kill the connections of the ledger under test; how many were killed."""
    if kind == "postgresql":
        waiting = " AND wait_event_type = 'Lock'" if only_waiting else ""
        rows = conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                "datname = current_database() AND pid <> pg_backend_pid() AND "
                f"application_name = :tag{waiting}"
            ),
            {"tag": tag},
        ).fetchall()
        return sum(1 for (done,) in rows if done)
    if only_waiting:
        # (information_schema.innodb_trx does not reliably list a transaction in LOCK WAIT
        # on MariaDB 10.11; the statement it waits in does.)
        ids = conn.execute(
            text(
                "SELECT id FROM information_schema.processlist WHERE db = :tag AND "
                "id <> CONNECTION_ID() AND command = 'Query' AND (info LIKE "
                "'SELECT version FROM streams%' OR info LIKE "
                "'SELECT s.version, f.seq, f.digest FROM streams%' "
                "OR info LIKE 'INSERT IGNORE INTO streams%')"
            ),
            {"tag": tag},
        ).fetchall()
    else:
        ids = conn.execute(
            text(
                "SELECT id FROM information_schema.processlist "
                "WHERE db = :tag AND id <> CONNECTION_ID()"
            ),
            {"tag": tag},
        ).fetchall()
    killed = 0
    for (thread_id,) in ids:
        try:
            conn.execute(text(f"KILL {int(thread_id)}"))
            killed += 1
        except Exception as exc:  # it may have ended meanwhile
            if "Unknown thread" not in str(exc):
                raise
    return killed


@contextmanager
def stream_locked(url: str) -> Iterator[None]:
    """Another connection holds the instrument stream's row lock (as a stuck writer would)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(
                text("SELECT version FROM streams WHERE stream = :s FOR UPDATE"), {"s": STREAM}
            )
            try:
                yield
            finally:
                conn.rollback()
    finally:
        engine.dispose()


def acked_fills(acks: list[tuple[str, str, str | None, int | None]], status: str) -> set[str]:
    return {key for s, kind, key, _ in acks if s == status and kind == "fill" and key}


def uninterrupted(kind: str, lines: list[str]) -> tuple[dict[str, Any], int]:
    with fresh_database(kind) as url:
        with open_ledger(url) as ledger:
            report = ledger.ingest(lines, source="faults", batch_size=500)
        assert report.rejected == 0
        return state(url), report.applied


# -- tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 100])
@pytest.mark.parametrize("kind", SERVERS)
def test_connection_killed_mid_stream_loses_nothing(kind: str, batch_size: int) -> None:
    require(kind)
    seed = _seed()
    rng = random.Random(seed)
    lines = fault_lines(seed)
    expected, expected_applied = uninterrupted(kind, lines)
    with fresh_database(kind) as base, _admin(kind).connect() as admin:
        url, tag = tagged(kind, base)
        ledger = open_ledger(url)
        try:
            writer = Writer(ledger, lines, batch_size)
            writer.start()
            kills = 0
            while writer.is_alive():
                time.sleep(rng.uniform(0.02, 0.25))
                if len(writer.acks) > 20:  # let it get going first
                    kills += kill(admin, kind, tag)
            writer.join()
        finally:
            ledger.close()
        label = f"seed {seed}, {kind}, batch {batch_size}, {kills} kills"
        print(label, "->", repr(writer.error) if writer.error else writer.report)
        assert kills >= 5, f"{label}: the ingest ended before enough kills"
        if writer.error is not None:
            # Failing is allowed, but loudly and as posledger's error.
            assert isinstance(writer.error, DatabaseError), f"{label}: {writer.error!r}"
        else:
            assert writer.report.lines == len(lines)
            assert writer.report.rejected == 0
        check_stored(url, writer.acks, label)

        # Run it again, undisturbed: the same as one uninterrupted run.
        with open_ledger(url) as ledger:
            again = ledger.ingest(lines, source="faults", batch_size=batch_size)
        assert again.rejected == 0
        # Nothing was applied twice: what the two runs applied is at most what one run
        # applies (less only where a commit succeeded but its answer was lost with the
        # connection: the retry then finds the input stored and reports a duplicate).
        applied_first = sum(1 for status, *_ in writer.acks if status == "applied")
        unanswered = expected_applied - applied_first - again.applied
        print(f"{label}: commits whose answer was lost: {unanswered}")
        assert 0 <= unanswered <= kills * batch_size, label
        assert set(stored_fills(url)) == distinct_fills(lines), label
        check_stored(url, writer.acks, label + ", after the rerun")
        assert state(url) == expected, label


@pytest.mark.parametrize("kind", SERVERS)
def test_retries_give_up_loudly_and_the_ledger_recovers(kind: str) -> None:
    """A writer killed every time it waits for a lock that another connection holds."""
    require(kind)
    seed = _seed()
    lines = fault_lines(seed, fills=150)
    with fresh_database(kind) as base, _admin(kind).connect() as admin:
        url, tag = tagged(kind, base)
        with open_ledger(url) as ledger:
            first = ledger.ingest(lines, source="faults")
            assert first.rejected == 0
            fill = dict(
                exec_id="late-1",
                account=ACCOUNT,
                instrument=INSTRUMENT,
                side="BUY",
                quantity="2",
                price="101.25",
                ts="2026-03-03T10:00:00Z",
                strategy="s1",
                commission="1.24",
                commission_currency="USD",
            )
            before = state(url)
            with stream_locked(base):
                errors: list[BaseException] = []
                kills = 0

                def attempt() -> None:
                    try:
                        ledger.apply_fill(**fill)
                    except BaseException as exc:
                        errors.append(exc)

                thread = threading.Thread(target=attempt, daemon=True)
                started = time.monotonic()
                thread.start()
                while thread.is_alive() and time.monotonic() - started < 60:
                    kills += kill(admin, kind, tag, only_waiting=True)
                    time.sleep(0.02)
                elapsed = time.monotonic() - started
                assert not thread.is_alive(), (
                    f"{kind}: apply_fill still running after 60 s and {kills} kills:\n"
                    + stack(thread)
                )
            print(f"{kind}: gave up after {elapsed:.1f} s, {kills} kills: {errors}")
            assert len(errors) == 1 and isinstance(errors[0], DatabaseError), errors
            message = str(errors[0])
            assert "gave up after" in message, message
            assert elapsed < GIVE_UP_SECONDS, f"{kind}: gave up only after {elapsed:.1f} s"
            assert "late-1" not in stored_fills(url)
            assert state(url) == before
            check_stored(url, [], f"{kind}: after giving up")
            # The fault is gone: the same ledger reconnects and applies the fill.
            assert ledger.apply_fill(**fill).status == "applied"
            assert ledger.verify().ok


@pytest.mark.parametrize("kind", SERVERS)
def test_ingest_gives_up_loudly_keeping_what_it_acknowledged(kind: str) -> None:
    require(kind)
    seed = _seed()
    lines = fault_lines(seed, fills=600)
    with fresh_database(kind) as base, _admin(kind).connect() as admin:
        url, tag = tagged(kind, base)
        ledger = open_ledger(url)
        try:
            writer = Writer(ledger, lines, 1)
            writer.start()
            while len(writer.acks) < 300 and writer.is_alive():
                time.sleep(0.005)
            assert writer.is_alive(), "the ingest ended too soon"
            with stream_locked(base):
                locked_at = time.monotonic()
                while writer.is_alive() and time.monotonic() - locked_at < 60:
                    kill(admin, kind, tag, only_waiting=True)
                    time.sleep(0.02)
                assert not writer.is_alive(), f"{kind}: ingest still running after 60 s:\n" + stack(
                    writer
                )
        finally:
            ledger.close()
        assert writer.ended_at is not None
        elapsed = writer.ended_at - locked_at
        label = f"seed {seed}, {kind}"
        print(f"{label}: ingest gave up {elapsed:.1f} s after the lock was taken: {writer.error}")
        assert isinstance(writer.error, DatabaseError), f"{label}: {writer.error!r}"
        assert "gave up after" in str(writer.error)
        assert elapsed < GIVE_UP_SECONDS
        # Exactly what was acknowledged is stored: nothing lost, nothing half-applied.
        assert set(stored_fills(url)) == acked_fills(writer.acks, "applied") | acked_fills(
            writer.acks, "duplicate"
        )
        check_stored(url, writer.acks, label)


@pytest.mark.parametrize("kind", SERVERS)
def test_schema_dropped_under_the_writer_is_a_database_error(kind: str) -> None:
    require(kind)
    seed = _seed()
    lines = fault_lines(seed, fills=600)
    with fresh_database(kind) as url, _admin(kind).connect() as admin:
        name = make_url(url).database if kind == "mariadb" else None
        ledger = open_ledger(url)
        try:
            writer = Writer(ledger, lines, 1)
            writer.start()
            while len(writer.acks) < 100 and writer.is_alive():
                time.sleep(0.005)
            assert writer.is_alive(), "the ingest ended too soon"
            dropped_at = time.monotonic()
            if kind == "postgresql":
                schema = make_url(url).query["options"].split("=")[-1]
                drop = f"DROP SCHEMA {schema} CASCADE"
            else:
                drop = f"DROP DATABASE {name}"
            for attempt in range(5):
                # The drop locks every table while the writer holds some: the server may
                # pick the drop as a deadlock's victim. Then drop again.
                try:
                    admin.execute(text(drop))
                    break
                except OperationalError as exc:
                    if "deadlock" not in str(exc).lower() or attempt == 4:
                        raise
                    admin.rollback()
            writer.join(60)
            assert not writer.is_alive(), (
                f"{kind}: ingest still running 60 s after the drop:\n" + stack(writer)
            )
        finally:
            ledger.close()
        assert writer.ended_at is not None
        print(f"{kind}: {writer.ended_at - dropped_at:.1f} s after the drop: {writer.error!r}")
        assert isinstance(writer.error, DatabaseError), repr(writer.error)
        assert writer.ended_at - dropped_at < GIVE_UP_SECONDS
        assert "exist" in str(writer.error), str(writer.error)


RESTART = os.environ.get("POSLEDGER_TEST_RESTART_SERVER") == "1"


def _restart_command() -> str:
    command = os.environ.get("POSLEDGER_TEST_RESTART_COMMAND")
    if command:
        return command
    versions = sorted(Path("/etc/postgresql").iterdir()) if Path("/etc/postgresql").is_dir() else []
    if not versions:
        pytest.fail("POSLEDGER_TEST_RESTART_SERVER=1 but /etc/postgresql has no cluster")
    return f"pg_ctlcluster --skip-systemctl-redirect {versions[-1].name} main restart"


@pytest.mark.skipif(
    not RESTART,
    reason="restarts the PostgreSQL server: opt in with POSLEDGER_TEST_RESTART_SERVER=1",
)
def test_server_restarted_mid_stream_loses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    require("postgresql")
    # fresh_database drops the schema afterwards through a connection it opened before
    # the restart: let its engine replace a connection the restart closed.
    monkeypatch.setattr(databases, "create_engine", partial(create_engine, pool_pre_ping=True))
    seed = _seed()
    lines = fault_lines(seed)
    expected, _ = uninterrupted("postgresql", lines)
    with fresh_database("postgresql") as url:
        ledger = open_ledger(url)
        try:
            writer = Writer(ledger, lines, 1)
            writer.start()
            while len(writer.acks) < 500 and writer.is_alive():
                time.sleep(0.005)
            assert writer.is_alive(), "the ingest ended before the restart"
            # Output to a file, not a pipe: a server started by the command may keep a
            # pipe open for ever.
            with tempfile.TemporaryFile("w+") as output:
                restarted = subprocess.run(
                    _restart_command(),
                    shell=True,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=120,
                )
                output.seek(0)
                assert restarted.returncode == 0, output.read()
            writer.join(120)
            assert not writer.is_alive(), "ingest still running 120 s after the restart:\n" + stack(
                writer
            )
        finally:
            ledger.close()
        label = f"seed {seed}, restart"
        print(label, "->", repr(writer.error) if writer.error else writer.report)
        if writer.error is not None:
            assert isinstance(writer.error, DatabaseError), f"{label}: {writer.error!r}"
        check_stored(url, writer.acks, label)
        with open_ledger(url) as ledger:
            assert ledger.ingest(lines, source="faults").rejected == 0
        assert set(stored_fills(url)) == distinct_fills(lines)
        check_stored(url, writer.acks, label + ", after the rerun")
        assert state(url) == expected, label
