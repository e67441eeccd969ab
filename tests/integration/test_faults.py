"""Faults of a real database server while a writer is busy.

* The writer's connection is killed again and again in the middle of an ingest
  (``pg_terminate_backend`` on PostgreSQL, ``KILL`` on MariaDB): the ingest reconnects and
  finishes, or fails with :class:`posledger.DatabaseError`; every acknowledged fill is
  stored, none twice, the journal has no gap, ``verify`` passes, and ingesting the same
  input again to completion gives exactly what an uninterrupted run gives.
* A fault that outlasts the retries (the writer waits for a lock another connection holds
  and is killed every time it waits) makes ``apply_fill`` / ``ingest`` raise
  ``DatabaseError`` saying so after a bounded number of attempts, with nothing
  half-applied; the same ledger works again once the fault is gone.
* A fault no retry cures (the schema dropped under the writer) is raised at once as a
  ``DatabaseError``, not as a driver traceback.
* Opt-in (it restarts the shared PostgreSQL server; ``.ci/run`` opts in):
  ``POSLEDGER_TEST_RESTART_SERVER=1`` restarts PostgreSQL in the middle of an ingest,
  with this machine's own command (``pg_ctlcluster --skip-systemctl-redirect VERSION
  CLUSTER restart``, the cluster found by ``pg_lsclusters`` on the server's port), or the
  shell command in ``POSLEDGER_TEST_RESTART_COMMAND``; waits until the server answers
  again, and leaves it running whatever happens (``POSLEDGER_TEST_START_COMMAND``, or
  ``pg_ctlcluster ... start``, if it is down).

Every wait is for a condition (acknowledgements, a thread's end, the server answering),
failing only on a stall (``tests/progress.py``), never because this machine is slow.

Reproduce a failure with ``POSLEDGER_FAULT_SEED=<seed printed by the test>``.
"""

from __future__ import annotations

import json
import os
import random
import re
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
from tests.progress import STALL_SECONDS, Stalled, wait_until

FILLS_PER_STRATEGY = 1_000
STREAM = f"instrument:{INSTRUMENT}"
KILLS = 30
"""Connection kills during one ingest, at random acknowledgement counts."""
MOST_ATTEMPTS = 20
"""posledger gives up on a transaction after a bounded number of attempts (8 today)."""


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


def until_acknowledged(writer: Writer, count: int, what: str) -> None:
    """Until the writer has acknowledged ``count`` inputs, or has ended; fails only on a
    stall (no acknowledgement for a long time)."""
    wait_until(
        lambda: len(writer.acks) >= count or not writer.is_alive(),
        lambda: len(writer.acks),
        what,
    )


def until_ended(writer: Writer, what: str) -> None:
    """Until the writer has ended, as long as it acknowledges inputs; on a stall, where
    it is stuck."""
    try:
        wait_until(lambda: not writer.is_alive(), lambda: len(writer.acks), what)
    except Stalled as exc:
        raise Stalled(f"{exc}\n{stack(writer)}") from None


def killed_while_waiting(
    admin: Connection, kind: str, tag: str, thread: threading.Thread, what: str
) -> int:
    """Kill the ledger's connection every time it waits for a lock, until ``thread``
    ends: how many kills it took. Fails if it is still retrying after far more attempts
    than posledger makes, or if nothing happens for a long time (a stall)."""
    kills = 0

    def kill_waiting() -> int:
        nonlocal kills
        kills += kill(admin, kind, tag, only_waiting=True)
        return kills

    try:
        wait_until(
            lambda: not thread.is_alive() or kills > 2 * MOST_ATTEMPTS,
            kill_waiting,
            what,
            poll=0.02,
        )
    except Stalled as exc:
        raise Stalled(f"{exc}\n{stack(thread)}") from None
    assert not thread.is_alive(), f"{what}: still retrying after {kills} kills:\n" + stack(thread)
    return kills


def gave_up_after(error: BaseException | None, label: str) -> int:
    """The attempts a ``DatabaseError`` says posledger made before giving up."""
    assert isinstance(error, DatabaseError), f"{label}: {error!r}"
    found = re.search(r"gave up after (\d+) attempts", str(error))
    assert found, f"{label}: {error}"
    attempts = int(found.group(1))
    assert 2 <= attempts <= MOST_ATTEMPTS, f"{label}: {error}"
    return attempts


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
            # Kill points by progress (acknowledgements, after distinct commits), not by
            # time: as many kills on a fast machine as on a slow one. Each a random moment
            # after its point, so between transactions or inside one.
            # The last point leaves a tenth of the file, so that the ingest is still running
            # when the last kill comes however fast the machine is.
            commits = range(20 // batch_size + 1, len(lines) * 90 // 100 // batch_size)
            targets = sorted(rng.sample(commits, min(KILLS, len(commits))))
            for commit in targets:
                target = commit * batch_size
                until_acknowledged(writer, target, f"kill at acknowledgement {target}")
                if commit != targets[-1]:
                    time.sleep(rng.uniform(0, 0.05))
                # (between a kill and the reconnection the writer has no connection: try
                # again until one is killed)
                wait_until(
                    lambda: kill(admin, kind, tag) > 0 or not writer.is_alive(),
                    lambda: len(writer.acks),
                    f"kill at acknowledgement {target}",
                    poll=0.02,
                )
                if not writer.is_alive():
                    break
                kills += 1
            until_ended(writer, "the writer after its last kill")
        finally:
            ledger.close()
        label = f"seed {seed}, {kind}, batch {batch_size}, {kills} kills"
        print(label, "->", repr(writer.error) if writer.error else writer.report)
        if writer.error is not None:
            # Failing is allowed, but loudly and as posledger's error.
            assert isinstance(writer.error, DatabaseError), f"{label}: {writer.error!r}"
        else:
            assert kills == len(targets), f"{label}: the ingest ended before its kills"
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
                kills = killed_while_waiting(admin, kind, tag, thread, f"{kind}: apply_fill")
                elapsed = time.monotonic() - started
            print(f"{kind}: gave up after {elapsed:.1f} s, {kills} kills: {errors}")
            assert len(errors) == 1, errors
            # Bounded by attempts (each one killed), not by how fast this machine is.
            attempts = gave_up_after(errors[0], kind)
            assert kills >= attempts - 1, f"{kind}: {attempts} attempts, {kills} kills"
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
            until_acknowledged(writer, 300, "the writer's first 300 acknowledgements")
            assert writer.is_alive(), "the ingest ended too soon"
            with stream_locked(base):
                locked_at = time.monotonic()
                kills = killed_while_waiting(admin, kind, tag, writer, f"{kind}: ingest")
        finally:
            ledger.close()
        assert writer.ended_at is not None
        elapsed = writer.ended_at - locked_at
        label = f"seed {seed}, {kind}"
        print(f"{label}: ingest gave up {elapsed:.1f} s after the lock was taken: {writer.error}")
        attempts = gave_up_after(writer.error, label)
        assert kills >= attempts - 1, f"{label}: {attempts} attempts, {kills} kills"
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
            until_acknowledged(writer, 100, "the writer's first 100 acknowledgements")
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
            until_ended(writer, f"{kind}: the writer after the drop")
        finally:
            ledger.close()
        assert writer.ended_at is not None
        print(f"{kind}: {writer.ended_at - dropped_at:.1f} s after the drop: {writer.error!r}")
        assert isinstance(writer.error, DatabaseError), repr(writer.error)
        # Raised at once: no retry cures a missing schema (so none was made).
        assert "gave up after" not in str(writer.error), str(writer.error)
        assert "exist" in str(writer.error), str(writer.error)


RESTART = os.environ.get("POSLEDGER_TEST_RESTART_SERVER") == "1"


def _cluster() -> tuple[str, str]:
    """The version and name of the local PostgreSQL cluster on the test server's port
    (``pg_lsclusters``), else the newest version under ``/etc/postgresql`` with a ``main``
    cluster."""
    port = server_url("postgresql").port or 5432
    try:
        listed = subprocess.run(
            ["pg_lsclusters", "--no-header"],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=STALL_SECONDS,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        listed = ""
    for fields in (line.split() for line in listed.splitlines()):
        if len(fields) >= 3 and fields[2] == str(port):
            return fields[0], fields[1]
    base = Path("/etc/postgresql")
    mains = sorted(
        (p.parent.name for p in base.glob("*/main")) if base.is_dir() else [],
        key=lambda version: [int(x) if x.isdigit() else 0 for x in version.split(".")],
    )
    if not mains:
        pytest.fail(f"POSLEDGER_TEST_RESTART_SERVER=1 but no PostgreSQL cluster on port {port}")
    return mains[-1], "main"


def _cluster_command(action: str) -> str:
    """This machine's own command to ``restart`` or ``start`` the local PostgreSQL, or the
    shell command in POSLEDGER_TEST_RESTART_COMMAND / POSLEDGER_TEST_START_COMMAND."""
    command = os.environ.get(f"POSLEDGER_TEST_{action.upper()}_COMMAND")
    if command:
        return command
    version, name = _cluster()
    return f"pg_ctlcluster --skip-systemctl-redirect {version} {name} {action}"


def _server_start_time() -> Any:
    """When the PostgreSQL server started; raises while it does not answer."""
    engine = create_engine(server_url("postgresql"), connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT pg_postmaster_start_time()")).scalar_one()
    finally:
        engine.dispose()


def _answers() -> bool:
    try:
        _server_start_time()
    except Exception:  # any driver or network error: not (yet) answering
        return False
    return True


def _wait_until_it_answers(what: str) -> None:
    """Poll until the server answers (it only counts as a stall after STALL_SECONDS)."""
    wait_until(_answers, lambda: None, what, poll=0.2)


def _cluster_do(action: str) -> None:
    # Output to a file, not a pipe: a server started by the command may keep a pipe open
    # for ever.
    with tempfile.TemporaryFile("w+") as output:
        done = subprocess.run(
            _cluster_command(action),
            shell=True,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=STALL_SECONDS,
        )
        output.seek(0)
        assert done.returncode == 0, f"{_cluster_command(action)}: {output.read()}"


def restart_postgres() -> None:
    """Restart the local PostgreSQL server, and wait until it answers again. Whatever
    happens, the server is left running: started again if the restart left it down."""
    try:
        _cluster_do("restart")
        _wait_until_it_answers("PostgreSQL answering again after the restart")
    finally:
        if not _answers():
            try:
                _cluster_do("start")
            finally:
                _wait_until_it_answers("PostgreSQL answering after starting it again")


@pytest.mark.exclusive
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
            until_acknowledged(writer, 500, "the writer's first 500 acknowledgements")
            assert writer.is_alive(), f"the ingest ended before the restart: {writer.error!r}"
            started_before = _server_start_time()
            acked_before = len(writer.acks)
            restart_postgres()
            assert _server_start_time() > started_before, "the server was not restarted"
            until_ended(writer, "the writer after the restart")
        finally:
            ledger.close()
        label = f"seed {seed}, restart after {acked_before} acknowledgements"
        print(label, "->", repr(writer.error) if writer.error else writer.report)
        if writer.error is not None:
            assert isinstance(writer.error, DatabaseError), f"{label}: {writer.error!r}"
        else:
            # It went on through the restart: reconnected, and finished the file.
            assert writer.report.lines == len(lines), label
            assert writer.report.rejected == 0, label
            assert len(writer.acks) > acked_before, label
        check_stored(url, writer.acks, label)
        with open_ledger(url) as ledger:
            assert ledger.ingest(lines, source="faults").rejected == 0
        assert set(stored_fills(url)) == distinct_fills(lines)
        check_stored(url, writer.acks, label + ", after the rerun")
        assert state(url) == expected, label
