"""Crash safety: a real ``posledger ingest`` killed with SIGKILL at random moments.

Run A ingests a large session (50,000 fills, one transaction per input) without
interruption. Run B ingests the same file but is killed with SIGKILL several times: once
shortly after start, then at random points of the file, alternately the instant an applied
fill is acknowledged (where acknowledging before the commit would lose it) and a random
moment later (anywhere inside a transaction); after every kill everything it had
acknowledged (``-v`` prints a line once the input is committed) must be in the database,
and at most the one input being acknowledged at the moment of the kill may be committed
without an acknowledgement. B is then run to completion, and A and B must hold the same
positions, trades and journal; ``verify`` must pass on B.

Reproduce a failure with ``POSLEDGER_CRASH_SEED=<seed printed by the test>``.
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

from .generate import generate
from .scenario import SCRIPT, clean_env, run, url

FILLS = 50_000
KILLS_AT_ACKNOWLEDGEMENTS = 5
QUERIES = (["positions", "--all", "--json"], ["trades", "--json"], ["anomalies", "--json"])
ACK = re.compile(r"line (\d+): (applied|duplicate|rejected) (\w+) (\S+?)(?::| \(seq \d+\)$)")


class Ingest:
    """``posledger ingest -v`` as a child process whose acknowledgements are read live."""

    def __init__(self, db: Path, source: Path, stderr: IO[str], kill_at: int | None = None) -> None:
        """``kill_at``: SIGKILL the moment a fill at or after this line is acknowledged."""
        self.proc = subprocess.Popen(
            [str(SCRIPT), "--db", url(db), "ingest", "-v", "--quiet", str(source)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=clean_env(),
            text=True,
        )
        self.max_line = 0
        self.acks: list[tuple[int, str, str, str]] = []
        self.other: list[str] = []
        self.kill_at = kill_at
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for text in self.proc.stdout:
            match = ACK.match(text)
            if match is None:
                self.other.append(text)
                continue
            number = int(match.group(1))
            self.acks.append((number, match.group(2), match.group(3), match.group(4)))
            self.max_line = max(self.max_line, number)
            if (
                self.kill_at is not None
                and number >= self.kill_at
                and match.group(2, 3) == ("applied", "fill")
            ):
                # Right after an acknowledgement: where an early ack would lose a fill.
                os.kill(self.proc.pid, signal.SIGKILL)
                self.kill_at = None

    def wait_for_line(self, target: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.max_line < target and self.proc.poll() is None:
            assert time.monotonic() < deadline, f"no acknowledgement of line {target} in time"
            time.sleep(0.002)

    def kill(self) -> bool:
        """SIGKILL; True if the process was still running (really killed)."""
        alive = self.proc.poll() is None
        if alive:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._reader.join(timeout=30)
        return alive and self.proc.returncode == -signal.SIGKILL

    def finish(self, timeout: float = 240) -> int:
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=30)
        return self.proc.returncode


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


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[tuple[IO[str], IO[str]]]:
    """Output of run A and stderr of run B, kept in files (a pipe nobody reads could block)."""
    with (tmp_path / "a.out").open("w+") as a, (tmp_path / "b.err").open("w+") as b:
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
    assert session.exec_ids >= 50_000 and session.duplicates > 0
    db_a, db_b = tmp_path / "a.db", tmp_path / "b.db"
    log_a, log_b = logs

    # A: uninterrupted, in parallel with B's ordeal.
    run_a = subprocess.Popen(
        [str(SCRIPT), "--db", url(db_a), "ingest", "--quiet", str(session.path)],
        stdout=log_a,
        stderr=subprocess.STDOUT,
        env=clean_env(),
        text=True,
    )

    # A's outputs are read as soon as A is done, while B is still being killed.
    outputs_a: dict[str, subprocess.CompletedProcess[str]] = {}

    def query_a() -> None:
        if run_a.wait(timeout=400) in (0, 1):  # 1: orders refused pre-trade
            for args in QUERIES:
                outputs_a[args[0]] = run(*args, db=db_a, timeout=240)

    reader_a = threading.Thread(target=query_a, daemon=True)
    reader_a.start()

    acked: set[str] = set()  # exec_ids of fills acknowledged as applied or duplicate
    kill_points: list[int] = []

    def after_kill(ingest: Ingest, label: str) -> None:
        # Only orders are refused: the pre-trade check refuses the session's overshooting
        # exits (kept as refused: their fills still belong to their strategy).
        refused = [a for a in ingest.acks if a[1] == "rejected"]
        assert all(a[2] == "order" for a in refused), f"seed {seed}: {label}: {refused[:5]}"
        acked.update(a[3] for a in ingest.acks if a[2] == "fill")
        stored = _stored_exec_ids(db_b)
        lost = acked - stored
        assert not lost, f"seed {seed}, {label}: acknowledged fills lost: {sorted(lost)[:10]}"
        unacknowledged = stored - acked
        assert len(unacknowledged) <= 1, (
            f"seed {seed}, {label}: committed but never acknowledged: {sorted(unacknowledged)}"
        )

    # 1. A kill in the first moments: start-up, schema creation or the first inputs.
    early = Ingest(db_b, session.path, log_b)
    time.sleep(rng.uniform(0.3, 1.5))
    if early.kill():
        kill_points.append(early.max_line)
    if db_b.exists():
        after_kill(early, "early kill")

    # 2. Kills at random points of the file: one target in each of equal segments of the
    # file (5% to 85%), away from the segments' edges so that the kill points differ.
    start, width = session.lines // 20, session.lines * 80 // 100 // KILLS_AT_ACKNOWLEDGEMENTS
    targets = [
        start + width * k + int(width * rng.uniform(0.1, 0.9))
        for k in range(KILLS_AT_ACKNOWLEDGEMENTS)
    ]
    for number, target in enumerate(targets, start=1):
        if number % 2:  # the instant an applied fill is acknowledged
            ingest = Ingest(db_b, session.path, log_b, kill_at=target)
            killed = ingest.finish() == -signal.SIGKILL
        else:  # a random moment after an acknowledgement
            ingest = Ingest(db_b, session.path, log_b)
            ingest.wait_for_line(target)
            time.sleep(rng.uniform(0, 0.2))
            killed = ingest.kill()
        log_b.seek(0)
        assert killed, f"seed {seed}: run {number} ended before its kill: {log_b.read()[-2000:]}"
        kill_points.append(ingest.max_line)
        after_kill(ingest, f"kill {number} after line {ingest.max_line}")
    assert len([p for p in kill_points if p > 0]) >= 3
    assert len(set(kill_points)) == len(kill_points), f"seed {seed}: kill points {kill_points}"

    phase(f"killed at lines {kill_points}")
    # 3. B to completion.
    final = Ingest(db_b, session.path, log_b)
    status = final.finish()
    after_kill(final, "final run")
    found = (
        re.search(r": (\d+) lines: (\d+) applied, (\d+) duplicate, (\d+) rejected$", line)
        for line in final.other
    )
    summary = next((match for match in found if match), None)
    assert summary, final.other
    refused = int(summary.group(4))
    # ingest exits 1 when lines were rejected: here only the orders refused pre-trade
    assert status == (1 if refused else 0), f"seed {seed}: {final.other} {log_b.name}"
    assert int(summary.group(1)) == session.lines
    assert len({a[0] for a in final.acks}) == session.lines

    phase("B complete")
    assert run_a.wait(timeout=300) == (1 if refused else 0)
    phase("A complete")
    log_a.seek(0)
    summary_a = log_a.read()
    assert f"{session.lines} lines: " in summary_a, summary_a
    assert f" {refused} rejected" in summary_a, summary_a  # the same orders refused
    counted = re.search(r"(\d+) duplicate, (\d+) rejected", summary_a)
    assert counted, summary_a
    # Besides the fills sent twice, a cancel of an order refused pre-trade is a duplicate
    # (there is nothing to cancel): at most one per refused order.
    cancels_of_refused = int(counted.group(1)) - session.duplicates
    assert 0 <= cancels_of_refused <= int(counted.group(2)), summary_a

    # 4. B equals A.
    verify_b = subprocess.Popen(
        [str(SCRIPT), "--db", url(db_b), "verify", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
        text=True,
    )
    reader_a.join(timeout=400)
    for args in QUERIES:
        out_a, out_b = outputs_a[args[0]], run(*args, db=db_b, timeout=240)
        assert out_a.returncode == out_b.returncode == 0, out_a.stderr + out_b.stderr
        assert json.loads(out_a.stdout) == json.loads(out_b.stdout), f"seed {seed}: {args}"
    phase("positions, trades, anomalies equal")
    entries = _same_journal(db_a, db_b)
    phase("journals equal")
    # every line is journaled once, but the duplicates (refused orders are journaled too)
    assert entries == session.lines - int(counted.group(1))
    for db in (db_a, db_b):
        conn = sqlite3.connect(db)
        try:
            assert conn.execute("SELECT count(*) FROM fills").fetchone() == (session.exec_ids,)
            assert conn.execute("SELECT count(*) FROM journal WHERE kind = 'fill'").fetchone() == (
                session.exec_ids,
            )
        finally:
            conn.close()
    out, err = verify_b.communicate(timeout=300)
    phase("verify done")
    assert verify_b.returncode == 0, f"seed {seed}: {out[-3000:]} {err[-3000:]}"
    assert json.loads(out)["ok"] is True
