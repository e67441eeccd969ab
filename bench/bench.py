"""posledger's benchmark: prints every number as it goes and writes docs/benchmarks.md.

    .venv/bin/python bench/bench.py                  # the full run (make bench)
    .venv/bin/python bench/bench.py --quick          # small sizes, one repetition
    .venv/bin/python bench/bench.py --skip-servers   # SQLite only

Every measure sits beside a floor measured in the same run: the same work done by the bare
driver or a bare interpreter. A repetition runs every measure once, each floor just before
the measure it bounds, so both see the same machine; the report gives medians.

posledger's internals are being rewritten: this uses only its stable entry points, the
``posledger`` console script, ``posledger.open_ledger`` (``ingest``, ``apply_fill``) and, for
the pure domain, ``decide_fill`` and ``Book.apply``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import inspect
import itertools
import json
import math
import os
import platform
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy

import posledger
from posledger.domain.book import Book
from posledger.domain.decide import decide_fill
from posledger.domain.decisions import Rejection
from posledger.domain.enums import Kind, Mode, PositionMode
from posledger.domain.inputs import Fill, Mark
from posledger.domain.marks import MarkPolicy
from posledger.domain.numbers import exact
from posledger.domain.refdata import Account, Instrument
from posledger.domain.timestamps import format_ts
from workloads import (
    ACCOUNT,
    INSTRUMENT,
    MARK_SPACING_NS,
    REFDATA_ONE_SLOT,
    SLOT_STRATEGY,
    TICK,
    Session,
    SlotFill,
    as_fields,
    as_fill,
    as_line,
    bracket_workload,
    dec,
    jsonl,
    marks_workload,
    one_slot_fills,
    slot_mix,
    write_session,
)

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
POSLEDGER = str(Path(PYTHON).parent / "posledger")  # the console script

GOAL_DOMAIN_FPS = 100_000
GOAL_DURABLE_RATIO = 0.5  # of the bare driver's transactions/s
GOAL_DURABLE_P99 = 0.001  # s
GOAL_SQLITE_BATCHED_FPS = 12_000
GOAL_POSTGRES_BATCHED_FPS = 10_000
GOAL_HELP = 0.25  # s
GOAL_POSITIONS = 0.5  # s
GOAL_REPLAY_FPS = 50_000
GOAL_REPLAY_RSS = 300 * 2**20
GOAL_PNL_FPS = 50_000  # trade-fill legs/s, start-up included
GOAL_PNL_RSS = 300 * 2**20
GOAL_BRACKETS_RATIO = 0.7  # brackets cost at most 30% of throughput
GOAL_HTTP_CLIENTS_RATIO = 5.0  # 16 clients' fills/s over one client's, same guarantee
GOAL_HTTP_P99 = 0.020  # seconds, a request at 16 clients
GOAL_HTTP_BATCHED_RATIO = 0.7  # batched requests over direct batched ingest
GOAL_MARKS_FPS = 100_000  # marks applied per second (in memory, written by the policy)
GOAL_ASOF_FPS = 1_000_000  # as of a time: a 1M-fill journal in about 1 s

BATCH = 1_000  # --batch-size of the batched ingests
BIG_BATCH = 10_000  # --batch-size that builds the big database


@dataclass(frozen=True)
class Sizes:
    domain: int  # fills through decide_fill + Book.apply
    durable: int  # fills, one transaction each, on SQLite (and as many bare transactions)
    server_durable: int  # the same on each server
    session: int  # fills of the realistic session of the batched ingests
    big: int  # fills of the database of start-up, positions, verify and rebuild
    brackets: int  # fills of the bracket workload, with and without brackets
    marks: int  # marks over 1,000 open slots on 100 instruments
    http: int  # one-fill requests to posledger serve, shared by the clients
    venue: int  # Binance ORDER_TRADE_UPDATE messages through the connector
    repeat: int


FULL = Sizes(200_000, 5_000, 3_000, 50_000, 1_000_000, 20_000, 500_000, 2_000, 20_000, repeat=3)
QUICK = Sizes(2_000, 100, 50, 1_000, 5_000, 500, 20_000, 48, 500, repeat=1)

# -- measuring ----------------------------------------------------------------------------

results: defaultdict[str, list[float]] = defaultdict(list)
"""Every repetition's value of every measure, by key. The report reads only this."""


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def record(key: str, value: float) -> None:
    results[key].append(value)
    say(f"  {key}: {show(key, value)}")


def percentile(ordered: Sequence[int], q: float) -> int:
    return ordered[max(1, math.ceil(len(ordered) * q / 100)) - 1]  # nearest rank


def record_loop(key: str, count: int, elapsed: float, samples_ns: list[int]) -> None:
    """The rate of a timed loop, and the p50 and p99 of its samples."""
    ordered = sorted(samples_ns)
    results[f"{key} p50"].append(percentile(ordered, 50) / 1e9)
    results[f"{key} p99"].append(percentile(ordered, 99) / 1e9)
    record(key, count / elapsed)


# Child processes (the CLI, and the floors that include start-up) run under a small
# launcher process that times each from spawn to exit and reads its peak RSS from os.wait4:
# ru_maxrss of that one child. A child of this big process would inherit its high-water
# mark (Linux keeps it across exec), hence the launcher.
def launch(spec: str) -> None:
    import json
    import os
    import subprocess
    import time

    a = json.loads(spec)
    with open(a["log"], "wb") as log:
        start = time.perf_counter()
        child = subprocess.Popen(a["cmd"], stdout=log, stderr=subprocess.STDOUT, cwd=a["cwd"])
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    print(json.dumps({"seconds": seconds, "code": code, "rss": usage.ru_maxrss * 1024}))


def python_c(function: Callable[..., None], *flags: str) -> list[str]:
    """``python FLAGS -c`` running ``function(*sys.argv[1:])`` from its own source: the child
    imports nothing of this script or of posledger."""
    code = f"{inspect.getsource(function)}\nimport sys\n{function.__name__}(*sys.argv[1:])"
    return [PYTHON, *flags, "-c", code]


def run_child(key: str, cmd: list[str], workdir: Path, fills: int = 0) -> None:
    """Run ``cmd`` to completion; record its seconds, peak RSS and (given) fills/s."""
    log = workdir / "child.log"
    spec = json.dumps({"cmd": cmd, "cwd": str(workdir), "log": str(log)})
    out = subprocess.run([*python_c(launch, "-I", "-S"), spec], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"launcher failed: {out.stderr[-3000:]}")
    child = json.loads(out.stdout)
    if child["code"] != 0:
        failed = f"{shlex.join(cmd)[:300]} exited {child['code']}"
        raise SystemExit(f"{failed}:\n{log.read_text()[-3000:]}")
    results[f"{key} rss"].append(child["rss"])
    if fills:
        results[f"{key} s"].append(child["seconds"])
        record(f"{key} fps", fills / child["seconds"])
    else:
        record(f"{key} s", child["seconds"])


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# -- floors run as python -c (self-contained: see python_c) -------------------------------


def floor_ingest(spec: str) -> None:
    """Bare batched ingestion of a JSONL file with the driver alone: json.loads every line;
    per batch of lines, in one transaction, executemany a journal row for every line and a
    fill row (amounts parsed) for every fill."""
    import json
    from decimal import Decimal

    a = json.loads(spec)
    kind, amount, num = a["kind"], "NUMERIC(38, 18)", Decimal
    if kind == "sqlite":
        import sqlite3

        conn = sqlite3.connect(a["db"], isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        amount, num = "TEXT", str  # as posledger stores amounts on SQLite
    elif kind == "postgresql":
        import psycopg

        conn = psycopg.connect(**a["connect"], options=f"-csearch_path={a['schema']}")
    else:
        import pymysql

        conn = pymysql.connect(**a["connect"], database=a["schema"])
    cur = conn.cursor()
    cur.execute("CREATE TABLE journal (seq BIGINT PRIMARY KEY, kind VARCHAR(16), input TEXT)")
    cur.execute(
        "CREATE TABLE fills (account VARCHAR(64), exec_id VARCHAR(64), instrument VARCHAR(64), "
        f"side VARCHAR(8), quantity {amount}, price {amount}, ts VARCHAR(32), "
        f"client_order_id VARCHAR(64), commission {amount}, PRIMARY KEY (account, exec_id))"
    )
    mark = "?" if kind == "sqlite" else "%s"
    journal_sql = f"INSERT INTO journal VALUES ({', '.join([mark] * 3)})"
    fills_sql = f"INSERT INTO fills VALUES ({', '.join([mark] * 9)})"
    keys = ("account", "exec_id", "instrument", "side", "quantity", "price", "ts")

    def write(journal: list[tuple[object, ...]], fills: list[tuple[object, ...]]) -> None:
        if kind == "sqlite":
            cur.execute("BEGIN IMMEDIATE")
        cur.executemany(journal_sql, journal)
        if fills:
            cur.executemany(fills_sql, fills)
        cur.execute("COMMIT") if kind == "sqlite" else conn.commit()

    journal, fills = [], []
    with open(a["file"], encoding="utf-8") as lines:
        for seq, line in enumerate(lines, start=1):
            r = json.loads(line)
            journal.append((seq, r["type"], line))
            if r["type"] == "fill":
                row = [r[k] for k in keys] + [r.get("client_order_id"), r["commission"]]
                row[4], row[5], row[8] = num(row[4]), num(row[5]), num(row[8])
                fills.append(tuple(row))
            if len(journal) == a["batch"]:
                write(journal, fills)
                journal, fills = [], []
    if journal:
        write(journal, fills)
    conn.close()


def floor_query(db: str) -> None:
    """Open the database with sqlite3 and answer one small query."""
    import sqlite3

    sqlite3.connect(db).execute("SELECT count(*) FROM sqlite_master").fetchone()


def floor_scan(db: str) -> None:
    """Read every row of posledger's journal table with sqlite3."""
    import sqlite3

    if sum(1 for _ in sqlite3.connect(db).execute("SELECT * FROM journal")) == 0:
        raise SystemExit("the journal table is empty")


def floor_legs(db: str) -> None:
    """Read every trade-fill leg of posledger's database with sqlite3 and add up its
    realized P&L and commission as exact decimals (what `pnl` reads, without grouping)."""
    import sqlite3
    from decimal import Decimal

    realized = commission = Decimal(0)
    rows = 0
    for _ts, gain, paid in sqlite3.connect(db).execute(
        "SELECT ts, realized, commission FROM trade_fills"
    ):
        realized += Decimal(gain)
        commission += Decimal(paid)
        rows += 1
    if rows == 0:
        raise SystemExit("the trade_fills table is empty")


# -- the pure domain ----------------------------------------------------------------------


def domain_run(fills: Sequence[Fill]) -> None:
    """decide_fill + Book.apply on one slot, every decision object built, inside exact()."""
    account = Account(
        account=ACCOUNT, venue="CME", mode=Mode.SIM, position_mode=PositionMode.NETTING
    )
    instrument = Instrument(
        instrument=INSTRUMENT,
        kind=Kind.FUTURE,
        multiplier=Decimal(5),
        quote_currency="USD",
        settlement_currency="USD",
        tick_size=TICK,
        lot_size=Decimal(1),
    )
    book, new_trade_id = Book(INSTRUMENT), itertools.count(1).__next__
    known = {SLOT_STRATEGY}.__contains__
    start = time.perf_counter()
    with exact():
        for fill in fills:
            decision = decide_fill(
                fill,
                account=account,
                instrument=instrument,
                order=None,
                strategy_known=known,
                book=book,
                new_trade_id=new_trade_id,
            )
            if isinstance(decision, Rejection):
                raise SystemExit(f"pure domain: {fill.exec_id} rejected: {decision}")
            book.apply(decision)
    record("domain fps", len(fills) / (time.perf_counter() - start))


def decimal_floor(count: int) -> None:
    """The domain's floor: one Decimal average-price update per fill, nothing else."""
    avg, held, price, add = Decimal("6852.25"), Decimal(3), Decimal("6860.75"), Decimal(2)
    q18 = Decimal(1).scaleb(-18)
    start = time.perf_counter()
    with exact():
        for _ in range(count):
            ((avg * held + price * add) / (held + add)).quantize(q18)
    record("domain floor", count / (time.perf_counter() - start))


# -- brackets ----------------------------------------------------------------------------


def brackets_run(key: str, url: str, setup: list[str], fills: list[str]) -> None:
    """The set-up lines (with or without brackets), then the fills, timed, through
    ``ledger.ingest(fills, batch_size=BATCH)``: the commands each fill causes are written
    in its transaction."""
    with posledger.open_ledger(url) as ledger:
        done = ledger.ingest(setup)
        if done.rejected:
            raise SystemExit(f"{key}: set-up rejected: {done.rejections[:3]}")
        # The garbage collector as `posledger ingest` sets it (entrypoints/cli.py
        # _long_run): what this process built before is frozen out of its reach.
        gc.collect()
        gc.freeze()
        threshold = gc.get_threshold()
        gc.set_threshold(50_000, threshold[1], threshold[2])
        try:
            start = time.perf_counter()
            report = ledger.ingest(fills, batch_size=BATCH)
            elapsed = time.perf_counter() - start
        finally:
            gc.set_threshold(*threshold)
            gc.unfreeze()
        if report.applied != len(fills):
            raise SystemExit(f"{key}: {report.rejected} rejected: {report.rejections[:3]}")
        commands = len(ledger.commands(status=None, limit=10**9))
    results[f"{key} commands"].append(commands)
    record(key, len(fills) / elapsed)


# -- marks ----------------------------------------------------------------------------------

MARK_BATCH = 10_000


def marks_run(url: str, setup: list[str], marks: list[Mark]) -> None:
    """The set-up lines, then the marks (values: parsing excluded) through
    ``ledger.apply_marks`` in batches of :data:`MARK_BATCH`, under the default mark policy:
    each is applied in memory, and the windows the policy says are due are written in the
    batch's transaction. Also counted: the marks written, per second of mark time and of
    wall time."""
    with posledger.open_ledger(url, marks=MarkPolicy()) as ledger:
        done = ledger.ingest(setup, batch_size=BATCH)
        if done.rejected:
            raise SystemExit(f"marks: set-up rejected: {done.rejections[:3]}")
        gc.collect()
        written = 0
        start = time.perf_counter()
        for at in range(0, len(marks), MARK_BATCH):
            for outcome in ledger.apply_marks(marks[at : at + MARK_BATCH]):
                written += outcome.seq is not None
        elapsed = time.perf_counter() - start
    first, last = marks[0].ts, marks[-1].ts
    assert first is not None and last is not None
    record("marks mps", len(marks) / elapsed)
    results["marks written count"].append(written)
    results["mark writes per mark second"].append(written / ((last - first) / 1e9))
    results["mark writes per wall second"].append(written / elapsed)


def marks_floor(marks: list[Mark]) -> None:
    """The floor of keeping marks in memory: the latest price and time per instrument in a
    dict, nothing else."""
    latest: dict[str, tuple[Decimal, int | None]] = {}
    start = time.perf_counter()
    for mark in marks:
        latest[mark.instrument] = (mark.price, mark.ts)
    record("marks floor mps", len(marks) / (time.perf_counter() - start))


# -- durable per fill ---------------------------------------------------------------------


def open_slot_ledger(url: str) -> posledger.Ledger:
    ledger = posledger.open_ledger(url)
    report = ledger.ingest([jsonl(r) for r in REFDATA_ONE_SLOT])
    if report.applied != len(REFDATA_ONE_SLOT):
        raise SystemExit(f"could not register the reference data: {report.rejections}")
    return ledger


def durable_ingest(key: str, url: str, lines: list[str]) -> None:
    """ledger.ingest(lines, batch_size=1): a fill's latency runs from the previous commit
    (or the start) to its own commit, as the on_commit callback sees it."""
    ledger = open_slot_ledger(url)
    samples: list[int] = []
    last = 0

    def on_commit(_batch: object) -> None:
        nonlocal last
        now = time.perf_counter_ns()
        samples.append(now - last)
        last = now

    try:
        start, last = time.perf_counter(), time.perf_counter_ns()
        report = ledger.ingest(lines, batch_size=1, on_commit=on_commit)
        elapsed = time.perf_counter() - start
    finally:
        ledger.close()
    if report.applied != len(lines):
        raise SystemExit(f"{key}: {report.rejected} rejected: {report.rejections[:3]}")
    record_loop(key, len(lines), elapsed, samples)


def durable_apply_fill(key: str, url: str, calls: list[dict[str, Any]]) -> None:
    """One ledger.apply_fill(**fields) call (one transaction) per fill, each call timed."""
    ledger = open_slot_ledger(url)
    samples: list[int] = []
    try:
        start = time.perf_counter()
        for fields in calls:
            t0 = time.perf_counter_ns()
            outcome = ledger.apply_fill(**fields)
            samples.append(time.perf_counter_ns() - t0)
            if outcome.status != "applied":
                raise SystemExit(f"{key}: {outcome}")
        elapsed = time.perf_counter() - start
    finally:
        ledger.close()
    record_loop(key, len(calls), elapsed, samples)


BARE_DDL = [
    "CREATE TABLE fills (account VARCHAR(64), exec_id VARCHAR(64), instrument VARCHAR(64), "
    "side VARCHAR(8), quantity {0}, price {0}, ts BIGINT, strategy VARCHAR(64), "
    "commission {0}, seq BIGINT, PRIMARY KEY (account, exec_id))",
    "CREATE TABLE positions (account VARCHAR(64), instrument VARCHAR(64), strategy VARCHAR(64),"
    " position_side VARCHAR(8), quantity {0}, avg_entry {0}, seq BIGINT, "
    "PRIMARY KEY (account, instrument, strategy, position_side))",
]
BARE_INSERT = "INSERT INTO fills VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
BARE_UPSERT = "INSERT INTO positions VALUES (%s, %s, %s, 'BOTH', %s, %s, %s) "
ON_CONFLICT = {
    "sqlite": "ON CONFLICT (account, instrument, strategy, position_side) DO UPDATE SET "
    "quantity = excluded.quantity, avg_entry = excluded.avg_entry, seq = excluded.seq",
    "mariadb": "ON DUPLICATE KEY UPDATE quantity = VALUES(quantity), "
    "avg_entry = VALUES(avg_entry), seq = VALUES(seq)",
}
ON_CONFLICT["postgresql"] = ON_CONFLICT["sqlite"]


def bare_rows(fills: Sequence[SlotFill], num: Callable[[str], Any]) -> list[tuple[Any, ...]]:
    """Per transaction: a fill row and a position row, built before the clock starts."""
    rows = []
    for seq, f in enumerate(fills, start=1):
        amounts = num(str(f.quantity)), num(dec(f.price)), f.ts, SLOT_STRATEGY
        fill = (ACCOUNT, f.exec_id, INSTRUMENT, str(f.side), *amounts, num(dec(f.commission)), seq)
        position = (ACCOUNT, INSTRUMENT, SLOT_STRATEGY, num(str(f.held)), num(dec(f.price)), seq)
        rows.append((fill, position))
    return rows


def bare_tx(key: str, kind: str, conn: Any, rows: list[tuple[Any, ...]]) -> None:
    """Per transaction: BEGIN; INSERT a fill row; UPSERT a position row; COMMIT. The
    connection is set up as posledger sets up its own (see bare_sqlite and Server.connect)."""
    cur = conn.cursor()
    for ddl in BARE_DDL:
        cur.execute(ddl.format("TEXT" if kind == "sqlite" else "NUMERIC(38, 18)"))
    insert, upsert = BARE_INSERT, BARE_UPSERT + ON_CONFLICT[kind]
    if kind == "sqlite":
        insert, upsert = insert.replace("%s", "?"), upsert.replace("%s", "?")
        begin, commit = lambda: cur.execute("BEGIN IMMEDIATE"), lambda: cur.execute("COMMIT")
    else:
        conn.commit()
        # psycopg sends BEGIN itself before a transaction's first statement
        begin, commit = conn.begin if kind == "mariadb" else lambda: None, conn.commit
    samples: list[int] = []
    start = time.perf_counter()
    for fill, position in rows:
        t0 = time.perf_counter_ns()
        begin()
        cur.execute(insert, fill)
        cur.execute(upsert, position)
        commit()
        samples.append(time.perf_counter_ns() - t0)
    elapsed = time.perf_counter() - start
    conn.close()
    record_loop(key, len(rows), elapsed, samples)


def bare_sqlite(key: str, path: Path, rows: list[tuple[Any, ...]]) -> None:
    """posledger's pragmas (journal_mode=WAL, synchronous=FULL), in the same directory."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    bare_tx(key, "sqlite", conn, rows)
    remove_db(path)


# -- the servers --------------------------------------------------------------------------


@dataclass
class Server:
    kind: str  # postgresql or mariadb
    label: str
    driver: str
    url: sqlalchemy.URL
    skipped: str | None = None  # why it is not measured
    settings: str = ""

    def connect_args(self) -> dict[str, Any]:
        url, pg = self.url, self.kind == "postgresql"
        args = {"host": url.host or "127.0.0.1", "port": url.port or (5432 if pg else 3306)}
        args |= {"user": url.username, "password": url.password or "", "connect_timeout": 5}
        return args | ({"dbname": url.database} if pg else {})

    def connect(self, schema: str) -> Any:
        """A driver connection, autocommit off: psycopg starts a transaction with the first
        statement; PyMySQL at READ COMMITTED, as posledger's writer sets each up."""
        if self.kind == "postgresql":
            import psycopg

            return psycopg.connect(**self.connect_args(), options=f"-csearch_path={schema}")
        import pymysql

        conn = pymysql.connect(**self.connect_args(), database=schema)
        conn.cursor().execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        return conn

    def admin(self, *statements: str) -> list[Any]:
        """Run statements outside any transaction: the first row of each SELECT."""
        engine = sqlalchemy.create_engine(self.url, isolation_level="AUTOCOMMIT")
        answers = []
        try:
            with engine.connect() as conn:
                for statement in statements:
                    answer = conn.exec_driver_sql(statement)
                    answers.append(answer.first() if statement.startswith("SELECT") else None)
        finally:
            engine.dispose()
        return answers

    def probe(self) -> None:
        """Read the server's durability settings, or set ``skipped`` if it does not answer."""
        try:
            if self.kind == "postgresql":
                version, sync, fsync = self.admin(
                    "SELECT version()", "SELECT current_setting('synchronous_commit')",
                    "SELECT current_setting('fsync')",
                )  # fmt: skip
                self.settings = f"{version[0].split(' on ')[0]}, synchronous_commit={sync[0]}, "
                self.settings += f"fsync={fsync[0]}"
            else:
                version, flush = self.admin(
                    "SELECT VERSION()", "SELECT @@innodb_flush_log_at_trx_commit"
                )
                self.settings = f"MariaDB {version[0]}, innodb_flush_log_at_trx_commit={flush[0]}"
        except Exception as exc:  # any driver or network error: the server is not usable
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            self.skipped = f"{self.url.render_as_string()} does not answer: {first}"

    @contextmanager
    def fresh_url(self) -> Iterator[str]:
        with self.fresh() as (_, url):
            yield url

    @contextmanager
    def fresh(self) -> Iterator[tuple[str, str]]:
        """A fresh schema (PostgreSQL) or database (MariaDB), dropped afterwards: its name
        and posledger's URL for it."""
        name, pg = f"plbench_{uuid.uuid4().hex[:12]}", self.kind == "postgresql"
        self.admin(f"CREATE {'SCHEMA' if pg else 'DATABASE'} {name}")
        if pg:
            url = self.url.update_query_dict({"options": f"-csearch_path={name}"})
        else:
            url = self.url.set(database=name)
        try:
            yield name, url.render_as_string(hide_password=False)
        finally:
            self.admin(f"DROP SCHEMA {name} CASCADE" if pg else f"DROP DATABASE {name}")


def server_repetition(
    server: Server, rows: list[tuple[Any, ...]], lines: list[str], session: Session, workdir: Path
) -> None:
    name = server.label
    with server.fresh() as (schema, _):
        bare_tx(f"{name} bare tx", server.kind, server.connect(schema), rows)
    with server.fresh() as (_, url):
        durable_ingest(f"{name} durable fps", url, lines)
    with server.fresh() as (schema, _):
        spec = {"kind": server.kind, "connect": server.connect_args(), "schema": schema}
        floor_batched(f"{name} batched floor", spec, session, workdir)
    with server.fresh() as (_, url):
        cli_ingest(f"{name} batched", url, session, workdir)


# -- the HTTP API: posledger serve under 1, 4 and 16 clients --------------------------------

HTTP_CLIENTS = (1, 4, 16)
HTTP_ACCOUNT = REFDATA_ONE_SLOT[0]["account"]
HTTP_INSTRUMENT = REFDATA_ONE_SLOT[1]["instrument"]


def http_clients(spec: str) -> None:
    """Clients of ``posledger serve``: one asyncio task and keep-alive connection each,
    speaking HTTP/1.1 on the bare socket, so that the client's own cost (tens of
    microseconds a request) leaves the two cores to the server. Each sends its fills,
    ``batch`` per request, and times every request. Prints the wall time and the
    latencies."""
    import asyncio
    import json
    import time

    a = json.loads(spec)
    host, _, port = a["base"].removeprefix("http://").partition(":")
    head = (
        f"POST /v1/ingest HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {a['key']}\r\nContent-Type: application/x-ndjson\r\n"
    )
    latencies: list[int] = []
    failures: list[str] = []

    def line(n: int, k: int) -> str:
        side = "BUY" if k % 2 == 0 else "SELL"
        return json.dumps({
            "type": "fill", "exec_id": f"{a['prefix']}-{n}-{k}", "account": a["account"],
            "instrument": a["instrument"], "side": side, "quantity": "1",
            "price": str(6800 + k % 7), "ts": "2026-03-02T10:00:00Z", "strategy": a["strategy"],
            "commission": "0.62", "commission_currency": "USD",
        })  # fmt: skip

    async def client(n: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        mine: list[int] = []
        for first in range(0, a["fills"], a["batch"]):
            body = "\n".join(line(n, k) for k in range(first, first + a["batch"])).encode()
            request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
            t0 = time.perf_counter_ns()
            writer.write(request)
            headers = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(h[15:]) for h in headers.split(b"\r\n") if h[:15].lower() == b"content-length:"
            )
            reply = await reader.readexactly(length)
            mine.append(time.perf_counter_ns() - t0)
            if headers[9:12] != b"200" or json.loads(reply)["applied"] != a["batch"]:
                failures.append(reply[:300].decode())
                break
        writer.close()
        latencies.extend(mine)

    async def clients() -> None:
        await asyncio.gather(*(client(n) for n in range(a["clients"])))

    start = time.perf_counter()
    asyncio.run(clients())
    print(json.dumps({"seconds": time.perf_counter() - start, "latencies": latencies,
                      "failures": failures}))  # fmt: skip


@contextmanager
def serving(url: str, workdir: Path) -> Iterator[tuple[str, str]]:
    """``posledger serve`` on a free loopback port over ``url`` (the one-slot reference
    data registered, an admin key made): its base URL and the key."""
    import socket

    import httpx

    setup = workdir / "http-setup.jsonl"
    setup.write_text("".join(jsonl(r) + "\n" for r in REFDATA_ONE_SLOT))
    env = {k: v for k, v in os.environ.items() if k != "POSLEDGER_DB"}
    subprocess.run(
        [POSLEDGER, "--db", url, "ingest", str(setup), "--quiet"],
        check=True, capture_output=True, env=env,
    )  # fmt: skip
    made = subprocess.run(
        [POSLEDGER, "--db", url, "keys", "create", "--admin", "--json"],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    key = json.loads(made.stdout)["key"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (workdir / "serve.log").open("w")
    server = subprocess.Popen(
        [POSLEDGER, "--db", url, "serve", "--port", str(port), "--rate", "1000000"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"posledger serve exited: {(workdir / 'serve.log').read_text()}")
            try:
                if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield base, key
    finally:
        server.terminate()
        server.wait()
        log.close()


def http_repetition(name: str, fresh: Callable[[], Any], fills: int, workdir: Path) -> None:
    """One-fill requests from 1, 4 and 16 clients at once (each client its own strategy's
    fills on one instrument), then batched requests from one client, each on a fresh
    database behind a fresh server."""
    for clients in HTTP_CLIENTS:
        with fresh() as url, serving(url, workdir) as (base, key):
            spec = {"base": base, "key": key, "clients": clients, "batch": 1, "prefix": "h"}
            spec |= {"fills": max(1, fills // clients), "account": HTTP_ACCOUNT}
            spec |= {"instrument": HTTP_INSTRUMENT, "strategy": SLOT_STRATEGY}
            http_child(f"{name} http {clients} fps", spec, workdir)
    with fresh() as url, serving(url, workdir) as (base, key):
        spec = {"base": base, "key": key, "clients": 1, "batch": BATCH, "prefix": "b"}
        spec |= {"fills": BATCH * max(1, fills // BATCH * 5), "account": HTTP_ACCOUNT}
        spec |= {"instrument": HTTP_INSTRUMENT, "strategy": SLOT_STRATEGY}
        http_child(f"{name} http batched fps", spec, workdir)
    with fresh() as url:
        lines = [direct_line(k) for k in range(BATCH * max(1, fills // BATCH * 5))]
        ledger = open_slot_ledger(url)
        try:
            start = time.perf_counter()
            done = ledger.ingest(lines, batch_size=BATCH)
            elapsed = time.perf_counter() - start
        finally:
            ledger.close()
        if done.applied != len(lines):
            raise SystemExit(f"direct batched: {done.rejections[:3]}")
        record(f"{name} direct batched fps", len(lines) / elapsed)


def direct_line(k: int) -> str:
    """The line ``http_clients`` sends as fill ``k`` (exec id ``d-k``)."""
    record = {"type": "fill", "exec_id": f"d-{k}", "account": HTTP_ACCOUNT}
    record |= {"instrument": HTTP_INSTRUMENT, "side": "BUY" if k % 2 == 0 else "SELL"}
    record |= {"quantity": "1", "price": str(6800 + k % 7), "ts": "2026-03-02T10:00:00Z"}
    record |= {"strategy": SLOT_STRATEGY, "commission": "0.62", "commission_currency": "USD"}
    return json.dumps(record)


@contextmanager
def sqlite_file(db: Path) -> Iterator[str]:
    """A fresh SQLite file's URL, removed afterwards."""
    remove_db(db)
    try:
        yield f"sqlite:///{db}"
    finally:
        remove_db(db)


def http_child(key: str, spec: dict[str, Any], workdir: Path) -> None:
    out = subprocess.run(
        [*python_c(http_clients), json.dumps(spec)], capture_output=True, text=True, cwd=workdir
    )
    if out.returncode != 0:
        raise SystemExit(f"{key}: clients failed: {out.stderr[-3000:]}")
    answer = json.loads(out.stdout)
    if answer["failures"]:
        raise SystemExit(f"{key}: {answer['failures'][:3]}")
    total = spec["clients"] * spec["fills"]
    samples = [int(v) for v in answer["latencies"]]
    record_loop(key, total, answer["seconds"], samples)


# -- a venue: Binance ORDER_TRADE_UPDATE messages through the connector ------------------


def binance_events(n: int) -> list[dict[str, Any]]:
    """``n`` ORDER_TRADE_UPDATE fills of one symbol, alternately buying and selling 1 (the
    account ends flat): the fake Binance's and the connector's child make the same."""
    from tests.fake_binance import Trade

    t0 = 1_772_445_600_000
    return [
        Trade("BTCUSDT", 1_000 + k, 5_000 + k, f"alpha-{k}", "BUY" if k % 2 == 0 else "SELL",
              "1", str(65_000 + k % 7), t0 + k).event()
        for k in range(n)
    ]  # fmt: skip


def fake_binance_child(spec: str) -> None:
    """A fake Binance (tests/fake_binance.py) in a process of its own, sending its events
    to the first stream that opens; it prints its URLs and runs until stdin closes."""
    import json
    import sys

    a = json.loads(spec)
    sys.path[:0] = [a["repo"], a["repo"] + "/bench"]
    from tests.fake_binance import FakeBinance

    from bench import binance_events

    fake = FakeBinance(preload=binance_events(a["fills"])).start()
    print(json.dumps({"rest": fake.rest_url, "ws": fake.ws_url}), flush=True)
    sys.stdin.read()
    fake.stop()


def binance_follow_child(spec: str) -> None:
    """The connector over a fresh SQLite database, from its start until every event the
    fake sends is applied; then the same fills, as JSON Lines, through ``ledger.ingest``
    into another fresh database (the floor). Prints both times."""
    import asyncio
    import json
    import sys
    import threading
    import time

    a = json.loads(spec)
    sys.path[:0] = [a["repo"], a["repo"] + "/bench"]
    from bench import binance_events
    from posledger import open_ledger
    from posledger.venues.binance import parse_user_event
    from posledger.venues.binance_follow import BinanceFollower, Settings
    from posledger.venues.follow import LedgerSink

    def fresh(url: str) -> object:
        ledger = open_ledger(url)
        for record in a["refdata"]:
            ledger.ingest([json.dumps(record)])
        ledger.map_symbol("binance", a["account"], "BTCUSDT", a["instrument"])
        return ledger

    ledger = fresh(a["follow_url"])
    sink = LedgerSink(ledger)  # type: ignore[arg-type]
    settings = Settings(rest_url=a["rest"], ws_url=a["ws"], api_key="fake-api-key",
                        api_secret="fake-api-secret", history_days=1)  # fmt: skip
    follower = BinanceFollower(sink, account=a["account"], symbols=ledger.symbol_map("binance"),
                               settings=settings, strategy_of=lambda _: a["strategy"],
                               )  # type: ignore[attr-defined]  # fmt: skip
    loop, stop = asyncio.new_event_loop(), asyncio.Event()
    thread = threading.Thread(target=lambda: loop.run_until_complete(follower.run(stop)))
    start = time.perf_counter()
    thread.start()
    while sink.counts.applied + sink.counts.duplicate < a["fills"]:
        time.sleep(0.005)
    follow_seconds = time.perf_counter() - start
    loop.call_soon_threadsafe(stop.set)
    thread.join()
    sink.close()
    ledger.close()  # type: ignore[attr-defined]
    lines = [
        json.dumps(record)
        for event in binance_events(a["fills"])
        for record in parse_user_event(event, account=a["account"], symbols=follower.symbols,
                                       strategy_of=lambda _: a["strategy"]).fills
    ]  # fmt: skip
    floor = fresh(a["ingest_url"])
    start = time.perf_counter()
    done = floor.ingest(lines, batch_size=1000)  # type: ignore[attr-defined]
    ingest_seconds = time.perf_counter() - start
    floor.close()  # type: ignore[attr-defined]
    print(json.dumps({"follow": follow_seconds, "ingest": ingest_seconds,
                      "applied": sink.counts.applied, "ingested": done.applied}))  # fmt: skip


def venue_repetition(fills: int, workdir: Path) -> None:
    """Binance ORDER_TRADE_UPDATE messages parsed and applied per second, from a fake
    Binance (its own process) through the connector, beside JSONL ingest of the same
    fills, both on SQLite."""
    follow_db, ingest_db = workdir / "follow.db", workdir / "follow-ingest.db"
    for db in (follow_db, ingest_db):
        remove_db(db)
    spec = {"repo": str(REPO), "fills": fills}
    fake = subprocess.Popen(
        [*python_c(fake_binance_child), json.dumps(spec)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=workdir,
    )  # fmt: skip
    try:
        assert fake.stdout is not None and fake.stdin is not None
        urls = json.loads(fake.stdout.readline())
        spec |= {"rest": urls["rest"], "ws": urls["ws"], "account": ACCOUNT}
        spec |= {"instrument": INSTRUMENT, "refdata": list(REFDATA_ONE_SLOT)}
        spec |= {"strategy": SLOT_STRATEGY}
        spec |= {"follow_url": f"sqlite:///{follow_db}", "ingest_url": f"sqlite:///{ingest_db}"}
        out = subprocess.run(
            [*python_c(binance_follow_child), json.dumps(spec)],
            capture_output=True, text=True, cwd=workdir,
        )  # fmt: skip
    finally:
        if fake.stdin is not None:
            fake.stdin.close()
        fake.wait()
        for db in (follow_db, ingest_db):
            remove_db(db)
    if out.returncode != 0:
        raise SystemExit(f"binance follow: {out.stderr[-3000:]}")
    answer = json.loads(out.stdout)
    if answer["applied"] != fills or answer["ingested"] != fills:
        raise SystemExit(f"binance follow: {answer}")
    record("binance follow fps", fills / answer["follow"])
    record("binance jsonl ingest fps", fills / answer["ingest"])


# -- child processes: batched ingest and the big database ---------------------------------


def cli_ingest(key: str, url: str, session: Session, workdir: Path, batch: int = BATCH) -> None:
    """``posledger --db URL ingest FILE --batch-size N --quiet``, start-up included."""
    args = ["--db", url, "ingest", str(session.path), "--batch-size", str(batch), "--quiet"]
    run_child(key, [POSLEDGER, *args], workdir, session.fills)


def floor_batched(key: str, spec: dict[str, Any], session: Session, workdir: Path) -> None:
    spec |= {"file": str(session.path), "batch": BATCH}
    run_child(key, [*python_c(floor_ingest), json.dumps(spec)], workdir, session.fills)


def big_repetition(db: Path, big: Session, workdir: Path) -> None:
    url = f"sqlite:///{db}"
    run_child("python -c pass", [PYTHON, "-c", "pass"], workdir)
    run_child("python -c 'import sqlite3'", [PYTHON, "-c", "import sqlite3"], workdir)
    run_child("help", [POSLEDGER, "--help"], workdir)
    run_child("query floor", [*python_c(floor_query), str(db)], workdir)
    run_child("positions", [POSLEDGER, "--db", url, "positions"], workdir)
    run_child("scan floor", [*python_c(floor_scan), str(db)], workdir, big.fills)
    run_child("verify", [POSLEDGER, "--db", url, "verify"], workdir, big.fills)
    run_child("rebuild", [POSLEDGER, "--db", url, "rebuild"], workdir, big.fills)
    run_child("legs floor", [*python_c(floor_legs), str(db)], workdir, big.fills)
    pnl = ["pnl", "--period", "day", "--by", "strategy,instrument", "--tz", "America/Chicago"]
    pnl += ["--session-start", "17:00", "--json"]
    run_child("pnl", [POSLEDGER, "--db", url, *pnl], workdir, big.fills)
    page = str(workdir / "report.html")
    run_child("report", [POSLEDGER, "--db", url, "report", "--out", page], workdir, big.fills)
    when, fills = as_of_cut(db, 1)
    run_child("asof", [POSLEDGER, "--db", url, "positions", "--as-of", when], workdir, fills)
    when, fills = as_of_cut(db, 2)
    trades = ["trades", "--as-of", when, "--limit", "10", "--json"]
    run_child("asof trades", [POSLEDGER, "--db", url, *trades], workdir, fills)


def as_of_cut(db: Path, share: int) -> tuple[str, int]:
    """The recorded time of the journal entry ``1/share`` of the way in, and how many
    fills the journal holds up to it."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        (last,) = conn.execute("SELECT max(seq) FROM journal").fetchone()
        cut = last // share
        (at,) = conn.execute("SELECT recorded_at FROM journal WHERE seq = ?", (cut,)).fetchone()
        (upto,) = conn.execute(
            "SELECT max(seq) FROM journal WHERE recorded_at <= ?", (at,)
        ).fetchone()
        (fills,) = conn.execute(
            "SELECT count(*) FROM journal WHERE seq <= ? AND kind = 'fill'", (upto,)
        ).fetchone()
    return format_ts(int(at)), int(fills)


# -- machine context ----------------------------------------------------------------------


def calibrate(workdir: Path) -> None:
    """Fixed CPU and disk work at the start and the end: how fast the machine was."""
    start, total = time.perf_counter(), 0
    for i in range(1_000_000):
        total += i * i % 7
    results["calibration loop"].append(1e6 / (time.perf_counter() - start))
    fd = os.open(workdir / "fsync.probe", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    samples = []
    for _ in range(200):
        t0 = time.perf_counter_ns()
        os.write(fd, b"x" * 128)
        os.fsync(fd)
        samples.append(time.perf_counter_ns() - t0)
    os.close(fd)
    results["calibration fsync p50"].append(percentile(sorted(samples), 50) / 1e9)
    results["calibration load"].append(os.getloadavg()[0])


def machine(workdir: Path, servers: list[Server]) -> list[list[str]]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    cpu = next((x.split(":")[1].strip() for x in cpuinfo.splitlines() if "model name" in x), "?")
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    git = ["git", "describe", "--always", "--dirty"]
    git_rev = subprocess.run(git, cwd=REPO, capture_output=True, text=True).stdout.strip()
    mounts = [m.split() for m in Path("/proc/mounts").read_text().splitlines()]
    mount = max(mounts, key=lambda m: len(m[1]) if str(workdir).startswith(m[1]) else -1)
    software = f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
    software += f"SQLAlchemy {sqlalchemy.__version__}, posledger {posledger.__version__} "
    virtual = ", virtual machine" if "hypervisor" in cpuinfo else ""
    return [
        ["CPU", f"{cpu}, {os.cpu_count()} logical cores{virtual}; {memory:.1f} GiB memory"],
        ["Software", f"{software}(git {git_rev})"],
        ["Database files", f"{mount[2]} on {mount[0]} (mounted at {mount[1]})"],
        *([s.label, s.skipped or s.settings] for s in servers),
    ]


# -- the report ---------------------------------------------------------------------------


def mib(v: float) -> str:
    return f"{v / 2**20:,.0f} MiB"


def secs(v: float) -> str:
    return f"{v:.3f} s" if v < 10 else f"{v:,.1f} s"


FORMATS: list[tuple[str, Callable[[float], str]]] = [
    # by how a key ends: how its values read
    (" fps", lambda v: f"{v:,.0f} fills/s"),
    (" p50", lambda v: f"{v * 1e3:.3f} ms"),
    (" p99", lambda v: f"{v * 1e3:.3f} ms"),
    (" rss", mib),
    (" s", secs),
    (" ratio", lambda v: f"{v:.0%}"),
    (" load", lambda v: f"{v:.2f}"),
    (" commands", lambda v: f"{v:,.0f}"),
    (" count", lambda v: f"{v:,.0f}"),
    (" mps", lambda v: f"{v:,.0f} marks/s"),
    ("", lambda v: f"{v:,.0f}/s"),
]


def show(key: str, value: float) -> str:
    return next(fmt(value) for end, fmt in FORMATS if key.endswith(end))


def pair_ratios(key: str, floor: str) -> None:
    """Each repetition's rate over its floor's, measured just before it."""
    results[f"{key} ratio"] = [m / f for m, f in zip(results[key], results[floor], strict=True)]


def median(key: str) -> float | None:
    return statistics.median(results[key]) if results.get(key) else None


class Row(NamedTuple):
    """A row of the summary: a measure beside its floor, and its goal."""

    measure: str
    key: str
    floor: str
    goal: float | None
    higher: bool = True  # bigger is better
    on_ratio: bool = False  # the goal is on the ratio to the floor, not on the value

    def cells(self) -> list[str]:
        value, goal = median(self.key), self.goal
        goal_text = "(no goal)"
        if goal is not None:
            goal_text = ("≥ " if self.higher else "≤ ") + show(self.unit, goal)
        if value is None:
            return [self.measure, "not measured", "", "", goal_text, ""]
        # the median of each repetition's ratio to the floor measured just before it
        paired = zip(results[self.key], results[self.floor], strict=True)
        ratio = statistics.median(m / f if self.higher else f / m for m, f in paired)
        verdict = ""
        if goal is not None:
            judged = ratio if self.on_ratio else value
            factor = judged / goal if self.higher else goal / judged
            verdict = f"met (×{factor:.2f})" if factor >= 1 else f"**not met** (×{factor:.2f})"
        floor = show(self.floor, median(self.floor) or math.nan)
        return [self.measure, show(self.key, value), floor, f"{ratio:.0%}", goal_text, verdict]

    @property
    def unit(self) -> str:
        return " ratio" if self.on_ratio else self.key


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def section(title: str, text: str, rows: dict[str, str]) -> list[str]:
    """A section: what was run, then each measure's median and every repetition's value."""
    shown = []
    for label, key in rows.items():
        if values := results.get(key):
            each = " / ".join(show(key, v) for v in values)
            shown.append([label, show(key, statistics.median(values)), each])
    return [f"## {title}", "", text, "", *table(["", "median", "each repetition"], shown), ""]


def summary_rows(servers: list[Server], big_name: str) -> list[Row]:
    pg, maria = (s.label for s in servers)
    # fmt: off
    return [
        Row("Pure domain, one slot", "domain fps", "domain floor", GOAL_DOMAIN_FPS),
        Row("SQLite durable per fill / bare sqlite3 tx",
            "sqlite durable fps", "sqlite bare tx", GOAL_DURABLE_RATIO, on_ratio=True),
        Row("SQLite durable per fill, p99 latency",
            "sqlite durable fps p99", "sqlite bare tx p99", GOAL_DURABLE_P99, higher=False),
        Row("SQLite batched CLI ingest",
            "sqlite batched fps", "sqlite batched floor fps", GOAL_SQLITE_BATCHED_FPS),
        Row(f"{pg} durable per fill / bare psycopg tx",
            f"{pg} durable fps", f"{pg} bare tx", GOAL_DURABLE_RATIO, on_ratio=True),
        Row(f"{pg} batched CLI ingest",
            f"{pg} batched fps", f"{pg} batched floor fps", GOAL_POSTGRES_BATCHED_FPS),
        Row(f"{maria} durable per fill / bare PyMySQL tx",
            f"{maria} durable fps", f"{maria} bare tx", None, on_ratio=True),
        Row(f"{maria} batched CLI ingest",
            f"{maria} batched fps", f"{maria} batched floor fps", None),
        Row("`posledger --help`", "help s", "python -c pass s", GOAL_HELP, higher=False),
        Row(f"`positions`, {big_name} database",
            "positions s", "query floor s", GOAL_POSITIONS, higher=False),
        Row(f"`verify`, {big_name} journal", "verify fps", "scan floor fps", GOAL_REPLAY_FPS),
        Row("`verify` peak RSS", "verify rss", "scan floor rss", GOAL_REPLAY_RSS, higher=False),
        Row(f"`rebuild`, {big_name} journal", "rebuild fps", "scan floor fps", GOAL_REPLAY_FPS),
        Row("`rebuild` peak RSS", "rebuild rss", "scan floor rss", GOAL_REPLAY_RSS, higher=False),
        Row(f"`pnl --period day`, {big_name} database", "pnl fps", "legs floor fps", GOAL_PNL_FPS),
        Row("`pnl` peak RSS", "pnl rss", "legs floor rss", GOAL_PNL_RSS, higher=False),
        Row(f"`report`, {big_name} database", "report fps", "legs floor fps", GOAL_PNL_FPS),
        Row("`report` peak RSS", "report rss", "legs floor rss", GOAL_PNL_RSS, higher=False),
        Row("Brackets on every slot / none, SQLite batched",
            "brackets fps", "no brackets fps", GOAL_BRACKETS_RATIO, on_ratio=True),
        Row(f"`positions --as-of`, the whole {big_name} journal",
            "asof fps", "scan floor fps", GOAL_ASOF_FPS),
        Row("Marks on 1,000 open slots, applied in memory",
            "marks mps", "marks floor mps", GOAL_MARKS_FPS),
        Row("HTTP, 16 clients / 1 client, SQLite",
            "sqlite http 16 fps", "sqlite http 1 fps", GOAL_HTTP_CLIENTS_RATIO, on_ratio=True),
        Row("HTTP, 16 clients, p99 latency, SQLite",
            "sqlite http 16 fps p99", "sqlite http 1 fps p99", GOAL_HTTP_P99, higher=False),
        Row("HTTP batched requests / direct batched, SQLite", "sqlite http batched fps",
            "sqlite direct batched fps", GOAL_HTTP_BATCHED_RATIO, on_ratio=True),
        Row("Binance events through the connector / JSONL ingest, SQLite",
            "binance follow fps", "binance jsonl ingest fps", None),
    ]
    # fmt: on


def report(
    args: argparse.Namespace, sizes: Sizes, servers: list[Server], facts: dict[str, Any]
) -> str:
    session, big = facts["session"], facts["big"]
    big_name = f"{big.fills:,}-fill"
    calibration = "; ".join(
        f"{what} {' / '.join(show(key, v) for v in results[key])}"
        for what, key in [
            ("CPU loop", "calibration loop"),
            ("fsync p50", "calibration fsync p50"),
            ("load", "calibration load"),
        ]
    )
    out = [
        "# Benchmarks",
        "",
        "<!-- Generated by bench/bench.py: do not edit by hand; rerun the script. -->",
        "",
        f"Generated by `{facts['command']}` on {facts['date']} in {facts['elapsed']:,.0f} s; "
        "every number below comes from that run. Each figure is the **median** of "
        f"{sizes.repeat} repetition(s); a repetition runs every measure once, its *floor* "
        "(the same work done by the bare driver or interpreter) just before it. *Ratio*: the "
        "measure's speed as a share of its floor's (for times and memory: floor ÷ measure), "
        "the median of each repetition's ratio. *Met (×F)*: F is the median over the goal "
        "(the goal over the median when lower is better): F ≥ 1 meets it.",
        "",
    ]
    if args.quick:
        out += [
            f"**Quick mode**: small sizes ({sizes.domain:,} domain fills, {sizes.durable:,} "
            f"durable fills, a {sizes.session:,}-fill session, a {big.fills:,}-fill database "
            "instead of 1,000,000). These numbers show that the benchmark runs, not whether "
            "the goals are met.",
            "",
        ]
    out += [
        "## Machine",
        "",
        *table(["", ""], [*facts["machine"], ["Calibration, start / end", calibration]]),
        "",
        "Timings are wall-clock on a shared virtual machine: other work on its cores makes them "
        "noisy; read each section's repetitions before trusting a median.",
        "",
        "## Summary",
        "",
        *table(
            ["measure", "median", "floor", "ratio", "goal", "met"],
            [row.cells() for row in summary_rows(servers, big_name)],
        ),
        "",
        *section(
            "1. Pure domain, one slot",
            f"{sizes.domain:,} prebuilt `Fill` values of one netting slot of a future "
            f"(multiplier 5, commission on every fill; {facts['mix']}), each "
            "`decide_fill(...)` then `book.apply(decision)`, inside one `with exact():`; no "
            "I/O. Floor: one `Decimal` average-price update per fill "
            "(`((avg*q + p*f) / (q + f)).quantize(q18)`) in the same context, nothing else.",
            {"decide + apply": "domain fps", "Decimal update (floor)": "domain floor"},
        ),
        *section(
            "2. SQLite durable per fill",
            f"A fresh database file with the slot's reference data, then {sizes.durable:,} "
            "fills of the section-1 workload, one transaction each (journal_mode=WAL, "
            "synchronous=FULL: every commit is fsynced), through `ledger.ingest(lines, "
            "batch_size=1)` (a fill's latency: from the previous commit to its own, as "
            "`on_commit` sees it) and `ledger.apply_fill(**fields)` (each call timed). Floor: "
            "as many bare `sqlite3` transactions in the same directory with the same pragmas: "
            "`BEGIN IMMEDIATE`, `INSERT` a fill-like row, `INSERT … ON CONFLICT DO UPDATE` a "
            "position-like row, `COMMIT`.",
            {
                "`ingest(batch_size=1)`": "sqlite durable fps",
                "`ingest` p50 latency": "sqlite durable fps p50",
                "`ingest` p99 latency": "sqlite durable fps p99",
                "`apply_fill()`": "sqlite apply_fill fps",
                "`apply_fill` p99 latency": "sqlite apply_fill fps p99",
                "bare sqlite3 tx (floor)": "sqlite bare tx",
                "bare tx p99 latency": "sqlite bare tx p99",
                "`ingest` / bare": "sqlite durable fps ratio",
                "`apply_fill` / bare": "sqlite apply_fill fps ratio",
            },
        ),
        *section(
            "3. SQLite batched CLI ingest",
            f"A realistic session of {session.lines:,} JSONL lines "
            f"({session.size / 2**20:.1f} MiB): {session.fills:,} fills, {session.orders:,} "
            f"orders, {session.marks:,} marks, {session.refdata} reference-data records (2 "
            "accounts, netting and hedge; 3 instruments; 6 strategies; every fill of a "
            "registered order, orders filled in 1-3 parts). `posledger --db sqlite:///… ingest "
            f"FILE --batch-size {BATCH} --quiet` on a fresh database, timed from spawn to exit "
            "(start-up, imports and schema creation included). Floor, also a process timed "
            "from spawn to exit: `json.loads` of every line and, per "
            f"{BATCH} lines in one transaction, `executemany` of a journal row per line and a "
            "fill row per fill (amounts parsed), with bare `sqlite3` and the same pragmas.",
            {
                "CLI ingest": "sqlite batched fps",
                "CLI wall time": "sqlite batched s",
                "CLI peak RSS": "sqlite batched rss",
                "bare batched ingestion (floor)": "sqlite batched floor fps",
            },
        ),
    ]
    for n, s in enumerate(servers, start=4):
        if s.skipped:
            out += [f"## {n}. {s.label}", "", f"**Not measured:** {s.skipped}", ""]
            continue
        pg = s.kind == "postgresql"
        out += section(
            f"{n}. {s.label}",
            f"Each measure on a fresh {'schema' if pg else 'database'}, dropped afterwards; "
            "the server shares the machine's cores with the client. Durable: section 2's "
            f"`ingest(batch_size=1)` with {sizes.server_durable:,} fills. Its floor: the same "
            f"bare transaction with {s.driver} alone (`BEGIN`, `INSERT`, "
            + ("`INSERT … ON CONFLICT DO UPDATE`" if pg else "`INSERT … ON DUPLICATE KEY UPDATE`")
            + ", `COMMIT`; amounts `NUMERIC(38, 18)` passed as `Decimal`; "
            + ("psycopg sends `BEGIN` itself" if pg else "READ COMMITTED, `conn.begin()`")
            + ", as posledger's writer does). Batched: section 3's session and CLI command "
            f"with `--db URL`; its floor, section 3's bare batched ingestion with {s.driver}.",
            {
                "durable `ingest(batch_size=1)`": f"{s.label} durable fps",
                "durable p50 latency": f"{s.label} durable fps p50",
                "durable p99 latency": f"{s.label} durable fps p99",
                f"bare {s.driver} tx (floor)": f"{s.label} bare tx",
                f"bare {s.driver} tx p99 latency": f"{s.label} bare tx p99",
                "durable / bare": f"{s.label} durable fps ratio",
                "batched CLI ingest": f"{s.label} batched fps",
                "batched CLI wall time": f"{s.label} batched s",
                "bare batched ingestion (floor)": f"{s.label} batched floor fps",
            },
        )
    out += [
        *section(
            f"6. Start-up and `positions` on the {big_name} database",
            f"The script builds the database once: a {big.fills:,}-fill session like section "
            f"3's ({big.lines:,} lines, {big.size / 2**20:,.0f} MiB) through `posledger ingest "
            f"--batch-size {BIG_BATCH} --quiet`, which took {secs(facts['build s'])} "
            f"({big.fills / facts['build s']:,.0f} fills/s, peak RSS "
            f"{mib(facts['build rss'])}); the database takes "
            f"{mib(facts['db size'])} on disk. Each command is a process timed from "
            "spawn to exit. Floors: `python -c pass` for `--help`; for `positions`, a "
            "`python -c` that opens the database with `sqlite3` and answers one small query.",
            {
                "`posledger --help`": "help s",
                "`python -c pass` (floor)": "python -c pass s",
                "`python -c 'import sqlite3'`": "python -c 'import sqlite3' s",
                "`posledger positions`": "positions s",
                "sqlite3 open + query (floor)": "query floor s",
            },
        ),
        *section(
            f"7. `verify` and `rebuild` of the {big_name} journal",
            f"`posledger --db sqlite:///… verify`, then `rebuild`, on the database of section 6 "
            f"({big.lines:,} journal entries, {big.fills:,} of them fills); fills/s is fills "
            "over the wall time, start-up included. Floor: a `python -c` reading every row of "
            "the `journal` table with bare `sqlite3` (`SELECT * FROM journal`). Peak RSS: "
            "`ru_maxrss` of each process alone, from `os.wait4` in a small launcher process "
            "(a child of the benchmark itself would inherit the benchmark's high-water mark).",
            {
                "`verify`": "verify fps",
                "`verify` wall time": "verify s",
                "`verify` peak RSS": "verify rss",
                "`rebuild`": "rebuild fps",
                "`rebuild` wall time": "rebuild s",
                "`rebuild` peak RSS": "rebuild rss",
                "journal scan (floor)": "scan floor fps",
                "journal scan peak RSS": "scan floor rss",
            },
        ),
        *section(
            "8. Brackets on every slot",
            f"Four strategies on one MES contract, each holding 3 to 9 lots; "
            f"{sizes.brackets:,} fills move one of them by 1 or 2 lots (never flat), through "
            f"`ledger.ingest(fills, batch_size={BATCH})` on a fresh SQLite file. With a bracket "
            "on every slot each fill resizes both its legs: two `amend` commands, written "
            "with the fill, and the watched legs updated. The same fills without brackets, "
            "on another fresh file, are the floor. Both in this process, with the garbage "
            "collector set as `posledger ingest` sets it.",
            {
                "with brackets": "brackets fps",
                "commands written": "brackets fps commands",
                "without brackets (floor)": "no brackets fps",
            },
        ),
        *section(
            f"9. `pnl`, `report` and `positions --as-of` on the {big_name} database",
            f"On the database of section 6 ({facts['legs']:,} trade-fill legs): `posledger "
            "--db sqlite:///… pnl --period day --by strategy,instrument --tz America/Chicago "
            "--session-start 17:00 --json`, which streams every leg and adds it up by group "
            "and trading day, and `posledger report --out report.html` (statistics with "
            "equity curves, P&L by day, the latest 500 trades; plotly's JavaScript written "
            "into the page). Each a process timed from spawn to exit; fills/s is the "
            "session's fills over the wall time; peak RSS as in section 7. Floor: a "
            "`python -c` reading every row of `trade_fills` with bare `sqlite3` and adding "
            "up its realized P&L and commission as `Decimal`s. Then `posledger positions "
            "--as-of TS`, TS the recorded time of the journal's last entry: the newest "
            "checkpoint before it restored into a scratch database and the entries after it "
            "replayed (docs/format.md, As of a time); and `posledger trades --as-of TS "
            "--limit 10 --json`, TS the recorded time of the entry half-way, which also "
            "copies the fills, legs and closed trades up to the checkpoint. fills/s is the "
            "fills of the journal up to TS over the wall time.",
            {
                "`pnl`": "pnl fps",
                "`pnl` wall time": "pnl s",
                "`pnl` peak RSS": "pnl rss",
                "`report`": "report fps",
                "`report` wall time": "report s",
                "`report` peak RSS": "report rss",
                "`positions --as-of` the whole journal": "asof fps",
                "`positions --as-of` wall time": "asof s",
                "`positions --as-of` peak RSS": "asof rss",
                "`trades --as-of` half-way": "asof trades fps",
                "`trades --as-of` wall time": "asof trades s",
                "`trades --as-of` peak RSS": "asof trades rss",
                "trade-fill scan (floor)": "legs floor fps",
                "trade-fill scan peak RSS": "legs floor rss",
            },
        ),
        *section(
            "10. Marks on 1,000 open slots",
            f"1,000 open slots (10 strategies on each of 100 instruments) on a fresh SQLite "
            f"file; {sizes.marks:,} marks, round-robin over the instruments and "
            f"{MARK_SPACING_NS // 1000} µs of mark time apart (100,000 a second of mark "
            "time), already parsed, through `ledger.apply_marks` in batches of "
            f"{MARK_BATCH:,} under the default mark policy (docs/accounting.md, Marks: a "
            "mark a second per instrument, a new extreme every 100 ms). Each is applied in "
            "memory; the marks the policy writes go into the batch's transaction, and their "
            "time is in the figure. Floor: the latest price and time per instrument put in a "
            "dict, nothing else.",
            {
                "marks applied": "marks mps",
                "marks written count": "marks written count",
                "written per second of mark time": "mark writes per mark second",
                "written per second of wall time": "mark writes per wall second",
                "dict update per mark (floor)": "marks floor mps",
            },
        ),
        *section(
            "11. The HTTP API",
            f"`posledger serve` (one worker) over a fresh database, started for each run; "
            "clients in one separate process, each an asyncio task with a keep-alive "
            "connection speaking HTTP/1.1 on the bare socket (so a client costs tens of "
            "microseconds a request, and the two cores go to the server), "
            f"sending one-fill requests to `/v1/ingest` with an admin key: {sizes.http:,} "
            f"fills shared by {', '.join(map(str, HTTP_CLIENTS))} clients at once, so the "
            "server's group commit (docs/service.md) puts concurrent requests in one "
            "transaction. Latency: each request, sent to answered (after its fill is "
            f"durable). Then one client sending {BATCH:,}-fill requests, beside the same fills "
            f"through `ledger.ingest(lines, batch_size={BATCH})` in this process (the direct "
            "batched floor). On SQLite and on PostgreSQL.",
            {
                **{
                    f"{name}, {n} client{'s' if n > 1 else ''}": f"{key} http {n} fps"
                    for key, name in http_labels(servers)
                    for n in HTTP_CLIENTS
                },
                **{
                    f"{name}, {n} client{'s' if n > 1 else ''}, p99": f"{key} http {n} fps p99"
                    for key, name in http_labels(servers)
                    for n in HTTP_CLIENTS
                },
                **{
                    f"{name}, batched requests": f"{key} http batched fps"
                    for key, name in http_labels(servers)
                },
                **{
                    f"{name}, direct batched (floor)": f"{key} direct batched fps"
                    for key, name in http_labels(servers)
                },
            },
        ),
        *section(
            "12. A venue: Binance through the connector",
            f"{sizes.venue:,} `ORDER_TRADE_UPDATE` fill events of one symbol, sent at once by a "
            "fake Binance (tests/fake_binance.py, a process of its own) on the user data "
            "stream, through `BinanceFollower` (listen key, an empty history, position mode "
            "and positions, then the stream: every event waiting applied in one "
            "transaction), from its start to the last fill applied, on a fresh SQLite "
            "database. Floor: the same fills, as the parser makes them, through "
            f"`ledger.ingest(lines, batch_size={BATCH})` on another fresh database, in the "
            "same child process.",
            {
                "connector": "binance follow fps",
                "JSONL ingest of the same fills (floor)": "binance jsonl ingest fps",
            },
        ),
    ]
    return "\n".join(out)


def http_labels(servers: list[Server]) -> list[tuple[str, str]]:
    """(key prefix, name) of the databases the HTTP API is measured on."""
    return [("sqlite", "SQLite")] + [(s.label, s.label) for s in servers if s.kind == "postgresql"]


# -- the run ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    parser.add_argument("--skip-servers", action="store_true", help="SQLite only")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--repeat", type=int, help="repetitions (default 3, quick 1)")
    parser.add_argument(
        "--dir",
        type=Path,
        default=REPO,
        help="where the database files go (default: the repository's disk; /tmp may be a RAM "
        "disk, where fsync costs nothing)",
    )
    for kind, default in [
        ("postgres", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        ("mariadb", "mysql+pymysql://root@127.0.0.1:3306/test"),
    ]:
        env = f"POSLEDGER_BENCH_{kind.upper()}_URL"
        parser.add_argument(f"--{kind}-url", default=os.environ.get(env, default), help=f"${env}")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    sizes = replace(sizes, repeat=args.repeat or sizes.repeat)
    started = time.perf_counter()
    os.environ.pop("POSLEDGER_DB", None)

    servers = [
        Server("postgresql", "PostgreSQL", "psycopg", sqlalchemy.make_url(args.postgres_url)),
        Server("mariadb", "MariaDB", "PyMySQL", sqlalchemy.make_url(args.mariadb_url)),
    ]
    for server in servers:
        if args.skip_servers:
            server.skipped = "skipped with `--skip-servers`."
        else:
            server.probe()
        if server.skipped:
            say(f"{server.label} not measured: {server.skipped}")
    active = [s for s in servers if not s.skipped]

    args.dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".bench-tmp-", dir=args.dir)).resolve()
    try:
        say(f"working in {workdir}; calibrating ...")
        calibrate(workdir)
        say("building the workloads ...")
        slot = one_slot_fills(sizes.domain, seed=1, prefix="d")
        domain_fills = [as_fill(f) for f in slot]
        durable = one_slot_fills(sizes.durable, seed=2, prefix="p")
        durable_lines, durable_calls = [as_line(f) for f in durable], list(map(as_fields, durable))
        bare = one_slot_fills(sizes.durable, seed=3, prefix="b")
        sqlite_rows = bare_rows(bare, str)
        server_rows = bare_rows(bare[: sizes.server_durable], Decimal)
        server_lines = durable_lines[: sizes.server_durable]
        session = write_session(workdir / "session.jsonl", sizes.session, seed=4)
        plain, bracket_lines, bracket_fills = bracket_workload(sizes.brackets, seed=6)
        mark_setup, marks = marks_workload(sizes.marks, seed=7)
        big = write_session(workdir / "big.jsonl", sizes.big, seed=5)

        say(f"building the {big.fills:,}-fill database ...")
        big_db = workdir / "big.db"
        cli_ingest("build", f"sqlite:///{big_db}", big, workdir, batch=BIG_BATCH)
        db_size = sum(p.stat().st_size for p in workdir.glob("big.db*"))
        with sqlite3.connect(big_db) as conn:
            legs = conn.execute("SELECT count(*) FROM trade_fills").fetchone()[0]

        for r in range(1, sizes.repeat + 1):
            say(f"repetition {r} of {sizes.repeat}")
            decimal_floor(len(domain_fills))
            domain_run(domain_fills)
            db = workdir / "durable.db"
            bare_sqlite("sqlite bare tx", db, sqlite_rows)
            durable_ingest("sqlite durable fps", f"sqlite:///{db}", durable_lines)
            remove_db(db)
            durable_apply_fill("sqlite apply_fill fps", f"sqlite:///{db}", durable_calls)
            remove_db(db)
            spec = {"kind": "sqlite", "db": str(db)}
            floor_batched("sqlite batched floor", spec, session, workdir)
            remove_db(db)
            cli_ingest("sqlite batched", f"sqlite:///{db}", session, workdir)
            remove_db(db)
            brackets_run("no brackets fps", f"sqlite:///{db}", plain, bracket_fills)
            remove_db(db)
            brackets_run("brackets fps", f"sqlite:///{db}", plain + bracket_lines, bracket_fills)
            remove_db(db)
            marks_floor(marks)
            marks_run(f"sqlite:///{db}", mark_setup, marks)
            remove_db(db)
            http_repetition("sqlite", functools.partial(sqlite_file, db), sizes.http, workdir)
            venue_repetition(sizes.venue, workdir)
            for server in active:
                server_repetition(server, server_rows, server_lines, session, workdir)
                if server.kind == "postgresql":
                    http_repetition(server.label, server.fresh_url, sizes.http, workdir)
            big_repetition(big_db, big, workdir)
        calibrate(workdir)
        context = machine(workdir, servers)
        pair_ratios("sqlite durable fps", "sqlite bare tx")
        pair_ratios("sqlite apply_fill fps", "sqlite bare tx")
        for server in active:
            pair_ratios(f"{server.label} durable fps", f"{server.label} bare tx")
        pair_ratios("brackets fps", "no brackets fps")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    elapsed = time.perf_counter() - started
    facts = {
        "session": session,
        "big": big,
        "mix": slot_mix(slot),
        "build s": results["build s"][0],
        "build rss": results["build rss"][0],
        "db size": db_size,
        "legs": legs,
        "machine": context,
        "command": shlex.join([".venv/bin/python", "bench/bench.py", *sys.argv[1:]]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "elapsed": elapsed,
    }
    text = report(args, sizes, servers, facts)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text + "\n", encoding="utf-8")
    say(f"wrote {args.output} in {elapsed:,.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
