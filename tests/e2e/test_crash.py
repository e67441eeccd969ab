"""Crash safety: a real ``posledger ingest`` killed with SIGKILL at random moments.

Run A ingests a large session (one transaction per input) without interruption. Run B
ingests the same file but is killed with SIGKILL several times: once early (while the
schema is created, or as one of the first fills is applied), then at random points of
the file, alternately the instant an applied fill is acknowledged (where acknowledging
before the commit would lose it) and a random moment later (anywhere inside a
transaction). After every kill everything it had acknowledged (``-v`` prints a line once
the input is committed) must be in the database, and at most the one input being
acknowledged at the moment of the kill may be committed without an acknowledgement. B is
then run to completion, and A and B must hold the same positions, trades and journal;
``verify`` must pass on B.

Every wait is for a condition (so many acknowledgements, a child's exit), bounded only by
a stall limit (``tests/progress.py``): on a busy machine the test takes longer, it does
not fail. The kill points are lines of the file, each past the previous one, so a slow
machine kills at the same places as a fast one (only the random delays after the database
file appears or after an acknowledgement cover less work there).

Reproduce a failure with ``POSLEDGER_CRASH_SEED=<seed printed by the test>``;
``POSLEDGER_CRASH_FILLS`` and ``POSLEDGER_CRASH_KILLS`` make a longer ordeal.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.progress import Child, finish, wait_until

from .generate import generate
from .scenario import SCRIPT, clean_env, url

FILLS = int(os.environ.get("POSLEDGER_CRASH_FILLS") or 20_000)
KILLS_AT_ACKNOWLEDGEMENTS = int(os.environ.get("POSLEDGER_CRASH_KILLS") or 8)
QUERIES = (["positions", "--all", "--json"], ["trades", "--json"], ["anomalies", "--json"])
ACK = re.compile(r"line (\d+): (applied|duplicate|rejected) (\w+) (\S+?)(?::| \(seq \d+\)$)")
SUMMARY = re.compile(r": (\d+) lines: (\d+) applied, (\d+) duplicate, (\d+) rejected$")


_STARTED: list[subprocess.Popen[str]] = []
"""Every child this module started: any still running when a test ends is killed."""


@pytest.fixture(autouse=True)
def _no_child_left_behind() -> Iterator[None]:
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Ingest:
    """``posledger ingest -v`` as a child process whose acknowledgements are read live.

    Its progress is the number of acknowledgements read: every wait on it lasts as long
    as acknowledgements keep coming, and fails only on a stall.
    """

    def __init__(
        self,
        name: str,
        db: Path,
        source: Path,
        stderr: IO[str],
        kill_at: int | None = None,
        kill_now: bool = True,
    ) -> None:
        """``kill_at``: once a fill at or after this line is acknowledged as applied,
        SIGKILL it at once (``kill_now``), or let :meth:`kill_after` do it later."""
        self.name = name
        self.proc = subprocess.Popen(
            [str(SCRIPT), "--db", url(db), "ingest", "-v", "--quiet", str(source)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            env=clean_env(),
            text=True,
        )
        _STARTED.append(self.proc)
        self.max_line = 0
        self.acks: list[tuple[int, str, str, str]] = []
        self.other: list[str] = []
        self.kill_at = kill_at
        self.kill_now = kill_now
        self.reached = threading.Event()
        self.killed_by_us = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for text in self.proc.stdout:
            match = ACK.match(text)
            if match is None:
                self.other.append(text.rstrip("\n"))
                continue
            number = int(match.group(1))
            self.acks.append((number, match.group(2), match.group(3), match.group(4)))
            self.max_line = max(self.max_line, number)
            if (
                self.kill_at is not None
                and not self.reached.is_set()
                and number >= self.kill_at
                and match.group(2, 3) == ("applied", "fill")
            ):
                if self.kill_now:
                    # Right after an acknowledgement: where an early ack would lose a fill.
                    self._sigkill()
                self.reached.set()

    def _sigkill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.killed_by_us = True

    def progress(self) -> int:
        return len(self.acks)

    def ended(self) -> bool:
        return self.proc.poll() is not None

    def wait_until_reached(self) -> None:
        """Until the kill line is acknowledged, or the run has ended without reaching it."""
        wait_until(
            lambda: self.reached.is_set() or self.ended(),
            self.progress,
            f"{self.name}: waiting for an applied fill at line {self.kill_at} or after",
        )

    def kill_after(self, delay: float) -> None:
        """SIGKILL ``delay`` seconds after the kill line is acknowledged."""
        self.wait_until_reached()
        time.sleep(delay)
        self._sigkill()

    def finish(self) -> int:
        """Until it has ended and its output is read: its exit status."""
        wait_until(
            lambda: self.ended() and not self._reader.is_alive(),
            self.progress,
            f"{self.name}: waiting for it to end (acknowledged up to line {self.max_line})",
        )
        return self.proc.returncode

    def summary(self) -> re.Match[str]:
        found = next((m for m in map(SUMMARY.search, self.other) if m), None)
        assert found, f"{self.name}: no summary in {self.other[-20:]}"
        return found


def _stored_exec_ids(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        if "fills" not in tables:  # killed before the schema was committed
            return set()
        return {exec_id for (exec_id,) in conn.execute("SELECT exec_id FROM fills")}
    finally:
        conn.close()


def _same_journal(a: Path, b: Path) -> int:
    """Compare two journals row by row (without recorded_at); return the row count."""
    query = "SELECT seq, stream, version, kind, input, effects FROM journal ORDER BY seq"
    ca, cb = sqlite3.connect(a), sqlite3.connect(b)
    try:
        count = 0
        rows_a, rows_b = ca.execute(query), cb.execute(query)
        while True:
            one, two = rows_a.fetchmany(5000), rows_b.fetchmany(5000)
            for x, y in zip(one, two, strict=False):
                assert x == y, f"journals differ at seq {x[0]}:\n  A: {x}\n  B: {y}"
            assert len(one) == len(two), "journals differ in length"
            count += len(one)
            if not one:
                return count
    finally:
        ca.close()
        cb.close()


def _targets(rng: random.Random, lines: int, kills: int) -> list[int]:
    """One kill line in each of ``kills`` equal segments of the file (5% to 85%), away
    from the segments' edges."""
    start, width = lines // 20, lines * 80 // 100 // kills
    return [start + width * k + int(width * rng.uniform(0.1, 0.9)) for k in range(kills)]


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[tuple[IO[str], IO[str]]]:
    """stderr of runs A and B, kept in files (a pipe nobody reads could block them);
    appended to, so that reading them never moves where the children write."""
    with (tmp_path / "a.err").open("a+") as a, (tmp_path / "b.err").open("a+") as b:
        yield a, b


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_and_doubles_nothing(
    tmp_path: Path, logs: tuple[IO[str], IO[str]]
) -> None:
    seed = int(os.environ.get("POSLEDGER_CRASH_SEED") or random.SystemRandom().randrange(10**9))
    print(f"crash test seed: {seed} (rerun with POSLEDGER_CRASH_SEED={seed})")
    rng = random.Random(seed)
    t0 = time.monotonic()

    def phase(name: str) -> None:
        print(f"{time.monotonic() - t0:7.1f}s {name}")

    session = generate(tmp_path / "session.jsonl", FILLS, seed)
    assert session.exec_ids == FILLS and session.duplicates > 0
    db_a, db_b = tmp_path / "a.db", tmp_path / "b.db"
    log_a, log_b = logs

    def tail(log: IO[str]) -> str:
        log.seek(0, os.SEEK_END)
        log.seek(max(0, log.tell() - 3000))
        return log.read()

    # A: uninterrupted, in parallel with B's ordeal.
    run_a = Ingest("run A", db_a, session.path, log_a)

    acked: set[str] = set()  # exec_ids of fills acknowledged as applied or duplicate
    kill_points: list[int] = []

    def after_kill(ingest: Ingest) -> None:
        label = f"seed {seed}, {ingest.name} (acknowledged up to line {ingest.max_line})"
        # Only orders are refused: the pre-trade check refuses the session's overshooting
        # exits (kept as refused: their fills still belong to their strategy).
        refused = [a for a in ingest.acks if a[1] == "rejected"]
        assert all(a[2] == "order" for a in refused), f"{label}: {refused[:5]}"
        acked.update(a[3] for a in ingest.acks if a[2] == "fill")
        stored = _stored_exec_ids(db_b)
        lost = acked - stored
        assert not lost, f"{label}: acknowledged fills lost: {sorted(lost)[:10]}"
        unacknowledged = stored - acked
        assert len(unacknowledged) <= 1, (
            f"{label}: committed but never acknowledged: {sorted(unacknowledged)}"
        )

    # 1. A kill in the first moments: a random moment after the database file appears
    # (while the schema is created), or the instant one of the first fills is applied.
    if rng.random() < 0.5:
        early = Ingest("early kill while creating the schema", db_b, session.path, log_b)
        wait_until(
            lambda: db_b.exists() or early.ended(),
            early.progress,
            f"{early.name}: waiting for the database file",
        )
        time.sleep(rng.uniform(0, 0.3))
        early._sigkill()
    else:
        line = rng.randint(1, 200)
        early = Ingest(f"early kill at line {line}", db_b, session.path, log_b, kill_at=line)
    status = early.finish()
    assert early.killed_by_us and status == -signal.SIGKILL, (
        f"seed {seed}: {early.name}: ended with {status}: {tail(log_b)}"
    )
    kill_points.append(early.max_line)
    if db_b.exists():
        after_kill(early)
    phase(f"{early.name}: killed after line {early.max_line}")

    # 2. Kills at random points of the file, each past the last one: alternately the
    # instant an applied fill is acknowledged, and a random moment after one.
    for number, target in enumerate(
        _targets(rng, session.lines, KILLS_AT_ACKNOWLEDGEMENTS), start=1
    ):
        target = max(target, kill_points[-1] + 1)
        instant = number % 2 == 1
        ingest = Ingest(
            f"kill {number} at line {target}" + ("" if instant else " and later"),
            db_b,
            session.path,
            log_b,
            kill_at=target,
            kill_now=instant,
        )
        if not instant:
            ingest.kill_after(rng.uniform(0, 0.2))
        status = ingest.finish()
        assert ingest.killed_by_us and status == -signal.SIGKILL, (
            f"seed {seed}: {ingest.name}: ended with {status} before its kill: {tail(log_b)}"
        )
        assert ingest.max_line > kill_points[-1], f"{ingest.name}: {ingest.max_line}"
        kill_points.append(ingest.max_line)
        after_kill(ingest)
        phase(f"{ingest.name}: killed after line {ingest.max_line}")
    phase(f"killed at lines {kill_points} of {session.lines}")
    assert len([p for p in kill_points if p > 0]) >= KILLS_AT_ACKNOWLEDGEMENTS

    # 3. B to completion.
    final = Ingest("final run", db_b, session.path, log_b)
    status = final.finish()
    after_kill(final)
    summary = final.summary()
    refused = int(summary.group(4))
    # ingest exits 1 when lines were rejected: here only the orders refused pre-trade
    assert status == (1 if refused else 0), f"seed {seed}: {final.other[-20:]} {tail(log_b)}"
    assert int(summary.group(1)) == session.lines
    assert len({a[0] for a in final.acks}) == session.lines
    phase("B complete")

    status_a = run_a.finish()
    assert status_a == (1 if refused else 0), f"seed {seed}: run A: {tail(log_a)}"
    phase("A complete")
    summary_a = run_a.summary()
    assert int(summary_a.group(1)) == session.lines, summary_a.string
    assert int(summary_a.group(4)) == refused, summary_a.string  # the same orders refused
    # Besides the fills sent twice, a cancel of an order refused pre-trade is a duplicate
    # (there is nothing to cancel): at most one per refused order.
    duplicates_a = int(summary_a.group(3))
    assert 0 <= duplicates_a - session.duplicates <= refused, summary_a.string

    # 4. B equals A: both read at once, and verify on B, as long as they make progress.
    env = clean_env()
    children = {
        (db, args[0]): Child([str(SCRIPT), "--db", url(db), *args], env)
        for db in (db_a, db_b)
        for args in QUERIES
    }
    verify_b = Child([str(SCRIPT), "--db", url(db_b), "verify", "--json"], env)
    entries = _same_journal(db_a, db_b)
    phase("journals equal")
    # every line is journaled once, but the duplicates (refused orders are journaled too)
    assert entries == session.lines - duplicates_a
    for db in (db_a, db_b):
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("SELECT count(*) FROM fills").fetchone() == (session.exec_ids,)
            assert conn.execute("SELECT count(*) FROM journal WHERE kind = 'fill'").fetchone() == (
                session.exec_ids,
            )
        finally:
            conn.close()
    finish([*children.values(), verify_b], "queries on A and B, verify on B")
    for args in QUERIES:
        out_a, out_b = children[db_a, args[0]].result(), children[db_b, args[0]].result()
        assert out_a.returncode == out_b.returncode == 0, out_a.stderr + out_b.stderr
        assert json.loads(out_a.stdout) == json.loads(out_b.stdout), f"seed {seed}: {args}"
    phase("positions, trades, anomalies equal")
    verified = verify_b.result()
    assert verified.returncode == 0, f"seed {seed}: {verified.stdout[-3000:]} {verified.stderr}"
    report = json.loads(verified.stdout)
    assert report["ok"] is True and report["journal_entries"] == entries, report
    phase("verify done")
