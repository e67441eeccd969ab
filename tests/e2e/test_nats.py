"""``posledger consume`` and ``posledger publish`` against a real NATS server with
JetStream (tests/natsserver.py), run as the real console script.

* consume: fills published with duplicates (the same exec_id in two messages, the same
  message twice), a consumer killed between its commit and its acknowledgements, and the
  messages delivered again: the books equal one ``posledger ingest`` of the same lines.
* consume at scale: 100,000 fills from three publishers, two consumer processes sharing
  one durable on PostgreSQL, one killed (SIGKILL) mid-stream and started again: the books
  equal one ``ingest``, and no exec_id is in the journal twice.
* a database that refuses writes: nothing is acknowledged, the batch comes again, and
  after ``--max-failures`` the command stops with exit status 3.
* publish: each journal entry once, in order; again: nothing new; a publisher killed
  half-way and run again: still each entry once, in order.

Every wait is for a condition (the consumer's pending count, the journal's size, a
child's exit), bounded by a stall limit (tests/progress.py).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from sqlalchemy import create_engine, text

import posledger
from tests import natsserver
from tests.databases import fresh_database
from tests.natsserver import Jet
from tests.progress import cpu_seconds, run_to_end, wait_until

from .generate import generate
from .scenario import BAD_LINES, OVERSHOOT, SCRIPT, SESSION, clean_env, run, run_json, url

SCALE_FILLS = int(os.environ.get("POSLEDGER_NATS_SCALE_FILLS") or 100_000)


@pytest.fixture(scope="module")
def jet() -> Iterator[Jet]:
    connection = Jet(natsserver.require())
    yield connection
    connection.close()


@pytest.fixture(scope="module", autouse=True)
def _children_import_this_worktree() -> None:
    """The console script the tests start runs the code under test (PYTHONPATH), not
    another checkout installed in the same environment."""
    found = subprocess.run(
        [sys.executable, "-c", "import posledger; print(posledger.__file__)"],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert found == posledger.__file__, (found, posledger.__file__)


class Proc:
    """A ``posledger`` process, its output in files that may be read while it runs."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.argv = [str(SCRIPT), *args]
        self._out: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in close)
        self._err: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv,
            stdout=self._out,
            stderr=self._err,
            stdin=subprocess.DEVNULL,
            env=env or clean_env(),
            text=True,
        )

    def done(self) -> bool:
        return self.proc.poll() is not None

    def progress(self) -> tuple[int, int, float | None]:
        return (
            os.fstat(self._out.fileno()).st_size,
            os.fstat(self._err.fileno()).st_size,
            None if self.done() else cpu_seconds(self.proc.pid),
        )

    def stderr(self) -> str:
        self._err.flush()
        return os.pread(self._err.fileno(), 1 << 24, 0).decode()

    def stdout(self) -> str:
        return os.pread(self._out.fileno(), 1 << 24, 0).decode()

    def alive(self) -> bool:
        """Whether it still runs; an unexpected end fails the test with its output."""
        if self.done():
            raise AssertionError(
                f"{' '.join(self.argv)} ended, status {self.proc.returncode}:\n"
                f"{self.stdout()[-2000:]}\n{self.stderr()[-4000:]}"
            )
        return True

    def wait(self, what: str) -> int:
        wait_until(self.done, self.progress, what)
        return int(self.proc.returncode)

    def stop(self) -> int:
        """SIGTERM, and its exit status once it has ended."""
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(f"{' '.join(self.argv)} stopping")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def close(self) -> None:
        self.kill()
        self._out.close()
        self._err.close()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    """The processes a test starts: any still running at its end is killed."""
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.close()


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"))


def consume_args(db: str, stream: str, subject: str, *extra: str) -> list[str]:
    """``posledger --db DB consume URL --stream S --subject SUBJ --durable ledger ...``"""
    return [
        "--db",
        db,
        "consume",
        natsserver.nats_url(),
        "--stream",
        stream,
        "--subject",
        subject,
        "--durable",
        "ledger",
        "--json",
        *extra,
    ]


def drained(jet: Jet, stream: str, consumers: list[Proc]) -> None:
    """Wait until the durable consumer ``ledger`` has every message acknowledged (each
    consumer process still running)."""

    def done() -> bool:
        for proc in consumers:
            proc.alive()
        info = jet.consumer(stream, "ledger")
        return info.num_pending == 0 and info.num_ack_pending == 0

    def progress() -> object:
        info = jet.consumer(stream, "ledger")
        return (
            info.ack_floor.stream_seq if info.ack_floor else 0,
            info.delivered.stream_seq if info.delivered else 0,
            info.num_ack_pending,
            info.num_redelivered,
            tuple(proc.progress() for proc in consumers),
        )

    wait_until(done, progress, f"the consumer of {stream} acknowledging every message")


def _query(db: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(db)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def _without(key: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != key} for row in rows]


def _books(db: str) -> list[dict[str, Any]]:
    """Every slot, without its trade id."""
    return _without("trade_id", run_json("positions", "--all", db=db))


def _trades(db: str) -> list[dict[str, Any]]:
    """Every trade, without its id and its fills' journal numbers."""
    trades = _without("trade_id", run_json("trades", db=db))
    return [{**trade, "fills": _without("seq", trade["fills"])} for trade in trades]


def _journal(db: str) -> list[tuple[str, Any]]:
    rows = _query(db, "SELECT kind, input FROM journal ORDER BY seq")
    return [(str(kind), json.loads(str(record))) for kind, record in rows]


# -- consume ----------------------------------------------------------------------------


def _session_messages() -> list[bytes]:
    """The hand-checked session as messages: reference data in one, an order and its
    fill in one, the rest one a message; a fill again inside a later message (the same
    exec_id, a duplicate), the overshoot pair, bad lines, a body that is not UTF-8."""
    lines = [_line(record) for record in SESSION]
    messages = ["\n".join(lines[:7]), "\n".join(lines[7:9]) + "\n"]
    messages += lines[9:]
    messages.append("\n".join([lines[8], _line(OVERSHOOT[0])]))  # x-1 again, then b-2
    messages.append(_line(OVERSHOOT[1]))
    messages.append("\n".join(bad for bad, _ in BAD_LINES))
    bodies = [m.encode() for m in messages]
    bodies.insert(12, bodies[10])  # one message published twice
    bodies.append(b'{"type":"mark","instrument":"FUT.X","price":"1\xff"}')
    return bodies


@pytest.mark.parametrize("kind", ["sqlite", "mariadb"])
def test_consume_applies_each_line_once_though_messages_come_again(
    jet: Jet, tmp_path: Path, procs: list[Proc], kind: str
) -> None:
    """A consumer killed after its commit and before its acknowledgements: the messages
    come again, their lines are duplicates, and the books equal one ingest (SQLite and
    MariaDB here; PostgreSQL in the tests below)."""
    bodies = _session_messages()
    with fresh_database(kind) as db, jet.fresh_stream() as (stream, prefix):
        for body in bodies:
            jet.publish(f"{prefix}.fills", body)
        args = consume_args(db, stream, f"{prefix}.>", "--batch", "3", "--ack-wait", "2")

        crashed = Proc(*args, env=clean_env(POSLEDGER_NATS_CRASH="after-commit"))
        procs.append(crashed)
        assert crashed.wait("consume killing itself after its first commit") == -signal.SIGKILL
        info = jet.consumer(stream, "ledger")
        assert info.num_ack_pending == 3, info  # delivered, committed, never acknowledged
        assert info.ack_floor.stream_seq == 0, info
        committed = _journal(db)
        assert len(committed) == 10, committed  # the first three messages' lines

        consumer = Proc(*args)
        procs.append(consumer)
        drained(jet, stream, [consumer])
        assert consumer.stop() == 0, consumer.stderr()
        summary = json.loads(consumer.stdout())
        assert summary["messages"] >= len(bodies), summary  # the three again
        assert summary["duplicate"] >= 10 + 2, summary  # those lines, x-1, the one twice

        reference = tmp_path / "reference.jsonl"
        reference.write_bytes(b"\n".join(bodies) + b"\n")
        ingested = url(tmp_path / "ingested.db")
        result = run("ingest", str(reference), "--batch-size", "1", db=ingested)
        assert result.returncode == 1, result.stderr  # the bad lines

        assert _books(db) == _books(ingested)
        assert _trades(db) == _trades(ingested)
        assert run_json("anomalies", db=db) == run_json("anomalies", db=ingested)
        assert _journal(db) == _journal(ingested)
        fills = [record["exec_id"] for kind, record in _journal(db) if kind == "fill"]
        assert sorted(fills) == sorted(set(fills))

        rejected = run_json("rejected", db=db)
        reasons = {row["reason"] for row in run_json("rejected", db=ingested)}
        assert {row["reason"] for row in rejected} == reasons
        assert len(rejected) == len(run_json("rejected", db=ingested)) == len(BAD_LINES) + 2
        assert all(row["source"].startswith(f"nats {stream}/") for row in rejected), rejected
        assert "not valid UTF-8" in consumer.stderr()


def test_a_database_error_acknowledges_nothing(jet: Jet, tmp_path: Path, procs: list[Proc]) -> None:
    """While the journal refuses writes, the batch is not acknowledged and is tried again
    after a pause; once it takes them, the lines are applied once. When it keeps refusing,
    consume stops after --max-failures with exit status 3, and a new consumer applies what
    was left."""
    lines = [_line(record) for record in SESSION]
    with fresh_database("postgresql") as db, jet.fresh_stream() as (stream, prefix):
        setup = tmp_path / "setup.jsonl"
        setup.write_text("\n".join(lines[:7]) + "\n")
        assert run("ingest", str(setup), db=db).returncode == 0
        engine = create_engine(db, isolation_level="AUTOCOMMIT")

        def refuse(on: bool) -> None:
            with engine.connect() as conn:
                conn.execute(text("SET lock_timeout = '30s'"))
                if on:
                    conn.execute(
                        text(
                            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                            "$$ BEGIN RAISE EXCEPTION 'the test refuses journal writes'; END $$"
                        )
                    )
                    conn.execute(
                        text(
                            "CREATE TRIGGER refuse BEFORE INSERT ON journal "
                            "FOR EACH STATEMENT EXECUTE FUNCTION refuse()"
                        )
                    )
                else:
                    conn.execute(text("DROP TRIGGER IF EXISTS refuse ON journal"))
                    conn.execute(text("DROP FUNCTION IF EXISTS refuse()"))

        try:
            args = consume_args(db, stream, f"{prefix}.>", "--ack-wait", "30")
            consumer = Proc(*args, "--max-failures", "6")
            procs.append(consumer)
            wait_until(
                lambda: consumer.alive() and "consuming" in consumer.stderr(),
                consumer.progress,
                "consume starting",
            )
            refuse(True)
            for line in lines[7:13]:
                jet.publish(f"{prefix}.fills", line.encode())
            wait_until(
                lambda: consumer.alive() and "database error (1 of 6" in consumer.stderr(),
                consumer.progress,
                "consume meeting the refusal",
            )
            assert jet.consumer(stream, "ledger").ack_floor.stream_seq == 0
            refuse(False)
            drained(jet, stream, [consumer])
            assert consumer.stop() == 0, consumer.stderr()
            summary = json.loads(consumer.stdout())
            assert summary["failures"] >= 1, summary
            assert (summary["applied"], summary["rejected"]) == (6, 0), summary
            assert "trying again in 1 s" in consumer.stderr()

            refuse(True)
            for line in lines[13:]:
                jet.publish(f"{prefix}.fills", line.encode())
            giving_up = Proc(*consume_args(db, stream, f"{prefix}.>", "--max-failures", "2"))
            procs.append(giving_up)
            assert giving_up.wait("consume giving up") == 3, giving_up.stderr()
            assert "the database failed 2 times in a row" in giving_up.stderr()
            assert "the test refuses journal writes" in giving_up.stderr()
            assert jet.consumer(stream, "ledger").ack_floor.stream_seq == 6  # none of these
        finally:
            refuse(False)
            engine.dispose()

        last = Proc(*args)
        procs.append(last)
        drained(jet, stream, [last])
        assert last.stop() == 0, last.stderr()
        reference = tmp_path / "session.jsonl"
        reference.write_text("\n".join(lines) + "\n")
        ingested = url(tmp_path / "ingested.db")
        assert run("ingest", str(reference), db=ingested).returncode == 0
        # PostgreSQL numbers trades and journal entries from sequences, and the failed
        # transactions drew some: the numbers differ, not what they number, nor the order.
        assert _books(db) == _books(ingested)
        assert _trades(db) == _trades(ingested)
        assert _journal(db) == _journal(ingested)


# -- consume at scale ------------------------------------------------------------------

ACCOUNTS = ("ACC-A", "ACC-B")
INSTRUMENTS = tuple(f"F{k}" for k in range(8))
STRATEGIES = tuple(f"s{k}" for k in range(6))
PUBLISHERS = 3


def _scale_reference() -> list[str]:
    records: list[dict[str, Any]] = [
        {"type": "account", "account": a, "venue": "CME", "mode": "SIM", "position_mode": "netting"}
        for a in ACCOUNTS
    ]
    records += [
        {
            "type": "instrument",
            "instrument": name,
            "kind": "future",
            "multiplier": "5",
            "tick_size": "0.25",
            "lot_size": "1",
            "quote_currency": "USD",
            "settlement_currency": "USD",
        }
        for name in INSTRUMENTS
    ]
    records += [{"type": "strategy", "strategy": name} for name in STRATEGIES]
    return [_line(record) for record in records]


def _scale_fill(i: int) -> str:
    """Fill ``i``. Each slot is traded one way at one price (its instrument's), so that
    the books do not depend on the order the fills are applied in: quantities and
    commissions add up, the average entry stays the price."""
    k = (i // 16) % len(STRATEGIES)
    instrument = (i // 2) % len(INSTRUMENTS)
    ms = i % 1000
    second = (i // 1000) % 60
    minute = i // 60_000
    return _line(
        {
            "type": "fill",
            "exec_id": f"e{i:07d}",
            "account": ACCOUNTS[i % 2],
            "instrument": INSTRUMENTS[instrument],
            "strategy": STRATEGIES[k],
            "side": "BUY" if k % 2 == 0 else "SELL",
            "quantity": str(1 + i % 3),
            "price": f"{100 + instrument}.25",
            "commission": f"0.{1 + i % 7:02d}",
            "ts": f"2026-03-02T{10 + minute // 60:02d}:{minute % 60:02d}:{second:02d}.{ms:03d}Z",
        }
    )


def _scale_messages(fills: int, seed: int) -> list[list[bytes]]:
    """Each publisher's messages: its share of the fills, one to four a message; one fill
    in 40 also sent by the next publisher, one message in 50 published twice."""
    rng = random.Random(seed)
    shares: list[list[str]] = [[] for _ in range(PUBLISHERS)]
    for i in range(fills):
        shares[i % PUBLISHERS].append(_scale_fill(i))
        if i % 40 == 0:
            shares[(i + 1) % PUBLISHERS].append(_scale_fill(i))
    messages: list[list[bytes]] = []
    for share in shares:
        out: list[bytes] = []
        at = 0
        while at < len(share):
            size = rng.randint(1, 4)
            out.append("\n".join(share[at : at + size]).encode())
            if rng.random() < 0.02:
                out.append(out[-1])
            at += size
        messages.append(out)
    return messages


def _fills_in_journal(db: str) -> int:
    return int(_query(db, "SELECT count(*) FROM journal WHERE kind = 'fill'")[0][0])


@pytest.mark.slow
def test_two_consumers_and_a_kill_apply_every_fill_once_at_scale(
    jet: Jet, tmp_path: Path, procs: list[Proc]
) -> None:
    """100,000 fills (``POSLEDGER_NATS_SCALE_FILLS``) from three publishers with
    duplicates; two consumer processes share one durable on PostgreSQL; one is killed
    (SIGKILL) once the journal holds a fifth of the fills, and started again."""
    seed = int(os.environ.get("POSLEDGER_NATS_SEED") or random.SystemRandom().randrange(10**9))
    print(f"POSLEDGER_NATS_SEED={seed} POSLEDGER_NATS_SCALE_FILLS={SCALE_FILLS}")
    messages = _scale_messages(SCALE_FILLS, seed)
    started = time.monotonic()
    reference_db = url(tmp_path / "reference.db")  # one process: SQLite is the quickest
    with fresh_database("postgresql") as db, jet.fresh_stream() as (stream, prefix):
        setup = tmp_path / "reference-data.jsonl"
        setup.write_text("\n".join(_scale_reference()) + "\n")
        assert run("ingest", str(setup), db=db).returncode == 0

        args = consume_args(db, stream, f"{prefix}.>", "--batch", "200", "--ack-wait", "5")
        consumers = [Proc(*args, "--quiet") for _ in range(2)]
        procs.extend(consumers)

        sent = [0] * PUBLISHERS
        failed: list[BaseException] = []

        def publisher(k: int) -> None:
            try:
                own = Jet(natsserver.nats_url())
                try:
                    for body in messages[k]:
                        own.publish(f"{prefix}.fills.p{k}", body)
                        sent[k] += 1
                finally:
                    own.close()
            except BaseException as exc:
                failed.append(exc)

        threads = [threading.Thread(target=publisher, args=(k,)) for k in range(PUBLISHERS)]
        for thread in threads:
            thread.start()

        def progress() -> object:
            return (sum(sent), _fills_in_journal(db), tuple(p.progress() for p in consumers))

        wait_until(
            lambda: all(p.alive() for p in consumers) and _fills_in_journal(db) > SCALE_FILLS // 5,
            progress,
            "the consumers applying a fifth of the fills",
        )
        consumers[0].kill()
        assert _fills_in_journal(db) < SCALE_FILLS, "the kill came after the last fill"
        restarted = Proc(*args, "--quiet")
        procs.append(restarted)
        running = [consumers[1], restarted]
        wait_until(
            lambda: not failed and not any(t.is_alive() for t in threads),
            progress,
            "the publishers",
        )
        assert not failed, failed
        for thread in threads:
            thread.join()
        published = time.monotonic() - started
        drained(jet, stream, running)
        for proc in running:
            assert proc.stop() == 0, proc.stderr()
        consumed = time.monotonic() - started

        reference = tmp_path / "reference.jsonl"
        with reference.open("wb") as out:
            out.write(setup.read_bytes())
            for share in messages:
                for body in share:
                    out.write(body + b"\n")
        argv = [str(SCRIPT), "--db", reference_db, "ingest", str(reference), "--quiet"]
        result = run_to_end([*argv, "--batch-size", "2000"], clean_env())
        assert result.returncode == 0, result.stderr
        ingested = time.monotonic() - started

        assert _books(db) == _books(reference_db)  # which trade opened first may differ
        rows = _query(db, "SELECT input FROM journal WHERE kind = 'fill'")
        exec_ids = [json.loads(str(row[0]))["exec_id"] for row in rows]
        assert len(exec_ids) == len(set(exec_ids)) == SCALE_FILLS
        print(
            f"{SCALE_FILLS:,} fills: published after {published:.0f} s, consumed after "
            f"{consumed:.0f} s, the reference ingested after {ingested:.0f} s"
        )


# -- publish ------------------------------------------------------------------------------


def publish_args(db: str, stream: str, subject: str, *extra: str) -> list[str]:
    return [
        "--db",
        db,
        "publish",
        natsserver.nats_url(),
        "--stream",
        stream,
        "--subject",
        subject,
        "--json",
        *extra,
    ]


def _published(jet: Jet, stream: str, subject: str) -> list[tuple[int, dict[str, Any]]]:
    return [
        (int(msg.headers["Posledger-Seq"]), json.loads(msg.data))
        for msg in jet.read_all(stream, subject)
    ]


def _journal_end(db: str) -> int:
    return int(_query(db, "SELECT coalesce(max(seq), 0) FROM journal")[0][0])


def test_publish_sends_each_journal_entry_once_in_order(
    jet: Jet, tmp_path: Path, procs: list[Proc]
) -> None:
    db = url(tmp_path / "ledger.db")
    session = tmp_path / "session.jsonl"
    session.write_text("".join(_line(r) + "\n" for r in SESSION))
    assert run("ingest", str(session), db=db).returncode == 0
    with jet.fresh_stream(create=False) as (stream, prefix):
        subject = f"{prefix}.journal"
        first = run(*publish_args(db, stream, subject, "--once"))
        assert first.returncode == 5, first.stderr
        assert f"no JetStream stream {stream}" in first.stderr
        assert "--create-stream" in first.stderr

        created = run(*publish_args(db, stream, subject, "--once", "--create-stream"))
        assert created.returncode == 0, created.stderr
        end = _journal_end(db)
        assert json.loads(created.stdout)["published"] == end
        sent = _published(jet, stream, subject)
        assert [seq for seq, _ in sent] == list(range(1, end + 1))
        entries = run_json("journal", "--limit", "1000", db=db)
        assert [{k: v for k, v in body.items() if k != "changes"} for _, body in sent] == entries
        assert all(set(body["changes"]) >= {"strategies", "slots"} for _, body in sent)

        smaller = tmp_path / "smaller.jsonl"
        smaller.write_text("".join(_line(r) + "\n" for r in SESSION[:3]))
        assert run("ingest", str(smaller), db=url(tmp_path / "small.db")).returncode == 0
        refused = run(*publish_args(url(tmp_path / "small.db"), stream, subject, "--once"))
        assert refused.returncode == 5, refused.stderr
        assert f"holds journal entry {end} on {subject}, but this journal ends at 3" in (
            refused.stderr
        )
        elsewhere = run(*publish_args(db, stream, f"{prefix}x.journal", "--once"))
        assert elsewhere.returncode == 5, elsewhere.stderr
        assert f"does not take the subject {prefix}x.journal" in elsewhere.stderr

        again = run(*publish_args(db, stream, subject, "--once"))
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["published"] == 0
        assert json.loads(again.stdout)["started_after"] == end
        assert jet.messages(stream) == end

        more = tmp_path / "more.jsonl"
        more.write_text("".join(_line(r) + "\n" for r in OVERSHOOT))
        assert run("ingest", str(more), db=db).returncode == 1  # b-2 refused, journaled
        later = run(*publish_args(db, stream, subject, "--once"))
        assert later.returncode == 0, later.stderr
        summary = json.loads(later.stdout)
        assert (summary["first_seq"], summary["last_seq"]) == (end + 1, _journal_end(db))
        assert [seq for seq, _ in _published(jet, stream, subject)] == list(
            range(1, _journal_end(db) + 1)
        )

        # A journal of thousands of entries; the publisher killed half-way, then again.
        large = tmp_path / "large.jsonl"
        generate(large, 6000, seed=7)
        assert run("ingest", str(large), "--batch-size", "1000", "--quiet", db=db).returncode == 1
        before, end = jet.messages(stream), _journal_end(db)
        assert end - before > 5000
        killed = Proc(*publish_args(db, stream, subject, "--once"))
        procs.append(killed)
        wait_until(
            lambda: killed.alive() and jet.messages(stream) >= before + 1000,
            lambda: (jet.messages(stream), killed.progress()),
            "publish sending a thousand entries",
        )
        killed.kill()
        at_kill = jet.messages(stream)
        assert at_kill < end, "publish had sent everything before it was killed"
        resumed = run(*publish_args(db, stream, subject, "--once"))
        assert resumed.returncode == 0, resumed.stderr
        assert json.loads(resumed.stdout)["started_after"] == at_kill
        sent = _published(jet, stream, subject)
        assert [seq for seq, _ in sent] == list(range(1, end + 1))


def test_publish_follows_the_journal_until_stopped(
    jet: Jet, tmp_path: Path, procs: list[Proc]
) -> None:
    """Without --once it publishes entries as they are written, and SIGTERM stops it."""
    db = url(tmp_path / "ledger.db")
    session = tmp_path / "session.jsonl"
    session.write_text("".join(_line(r) + "\n" for r in SESSION[:7]))
    assert run("ingest", str(session), db=db).returncode == 0
    with jet.fresh_stream() as (stream, prefix):
        subject = f"{prefix}.journal"
        follower = Proc(*publish_args(db, stream, subject, "--poll", "0.05"))
        procs.append(follower)
        wait_until(
            lambda: follower.alive() and jet.messages(stream) == 7,
            lambda: (jet.messages(stream), follower.progress()),
            "publish sending the first entries",
        )
        rest = tmp_path / "rest.jsonl"
        rest.write_text("".join(_line(r) + "\n" for r in SESSION[7:]))
        assert run("ingest", str(rest), db=db).returncode == 0
        end = _journal_end(db)
        wait_until(
            lambda: follower.alive() and jet.messages(stream) == end,
            lambda: (jet.messages(stream), follower.progress()),
            "publish following the journal",
        )
        assert follower.stop() == 0, follower.stderr()
        assert json.loads(follower.stdout())["last_seq"] == end
        assert [seq for seq, _ in _published(jet, stream, subject)] == list(range(1, end + 1))


# -- help and refusals ---------------------------------------------------------------------


def test_help_shows_an_example(tmp_path: Path) -> None:
    for command, words in (
        ("consume", ["--durable", "--batch", "acknowledged", "--create-stream", "Example"]),
        ("publish", ["--once", "Posledger-Seq", "Nats-Msg-Id", "--create-stream", "Example"]),
    ):
        result = run(command, "--help")
        assert result.returncode == 0, result.stderr
        missing = [word for word in words if word not in result.stdout]
        assert not missing, (command, missing)


def test_a_missing_stream_and_an_unreachable_server_are_named(jet: Jet, tmp_path: Path) -> None:
    db = url(tmp_path / "ledger.db")
    with jet.fresh_stream(create=False) as (stream, prefix):
        result = run(*consume_args(db, stream, f"{prefix}.>"))
        assert result.returncode == 5, result.stderr
        assert f"no JetStream stream {stream}" in result.stderr
        assert "--create-stream" in result.stderr and "nats stream add" in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
    nowhere = ["nats://127.0.0.1:1", "--stream", "S", "--subject", "s.>"]
    unreachable = run("--db", db, "consume", *nowhere)
    assert unreachable.returncode == 5, unreachable.stderr
    assert "cannot reach NATS at nats://127.0.0.1:1" in unreachable.stderr
    bad = run("--db", db, "publish", *nowhere)
    assert bad.returncode == 2, bad.stderr
    assert "without wildcards" in bad.stderr


def test_without_nats_py_the_commands_say_what_to_install(tmp_path: Path) -> None:
    """A ``nats`` module that cannot be imported stands for nats-py not being installed."""
    shadow = tmp_path / "shadow" / "nats"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named nats')\n")
    env = clean_env()
    env["PYTHONPATH"] = os.pathsep.join([str(shadow.parent), env.get("PYTHONPATH", "")])
    db = url(tmp_path / "ledger.db")
    for command in ("consume", "publish"):
        result = run(
            "--db",
            db,
            command,
            "nats://127.0.0.1:4222",
            "--stream",
            "S",
            "--subject",
            "s.x",
            env=env,
        )
        assert result.returncode == 1, result.stderr
        assert "pip install 'posledger[nats]'" in result.stderr, result.stderr


def test_subject_patterns() -> None:
    from posledger.entrypoints.jetstream import covers

    assert covers("journal", "journal")
    assert covers("ledger.>", "ledger.journal") and covers("ledger.>", "ledger.a.b")
    assert covers("ledger.*", "ledger.journal") and not covers("ledger.*", "ledger.a.b")
    assert not covers("ledger.>", "ledger") and not covers("journal", "journal.x")
    assert covers("*.journal", "desk.journal") and not covers("*.journal", "desk.fills")
