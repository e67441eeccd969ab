"""Sections 6-9 of the benchmark: posledger on PostgreSQL (psycopg 3) and MariaDB (PyMySQL).

For each server that answers (see ``probe``), every repetition measures:

* durable per-fill ingestion (``ledger.ingest(lines, batch_size=1)``) in a fresh schema
  (PostgreSQL) or database (MariaDB), beside a bare driver-level transaction of the same
  shape on the same server (``bare_run``);
* batched ingestion of the session of section 4, in process and through the CLI;
* 1, 2 and 8 concurrent ``posledger ingest`` writers, each on its own instrument and all
  on one instrument, with per-fill transactions and with batches of 100.

Once per server, an untimed pass counts the requests each path sends to the server
(``counting``), and the server's version and durability settings are read.

Every schema or database the benchmark creates is named ``plbench_<random>`` and dropped
when the measurement ends.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

import posledger
from common import (
    CliRun,
    Latency,
    Sizes,
    filesystem,
    latency_of,
    mib,
    n0,
    run_child,
    say,
    timed_durable_ingest,
)
from posledger.domain.enums import Side
from workloads import (
    ACCOUNT,
    INSTRUMENT,
    REFDATA_ONE_SLOT,
    SLOT_STRATEGY,
    Session,
    SlotFill,
    as_line,
    future_refdata,
    jsonl,
    one_slot_fills,
    writer_lines,
)

BENCH = Path(__file__).resolve().parent

KINDS = ("postgresql", "mariadb")
LABEL = {"postgresql": "PostgreSQL", "mariadb": "MariaDB"}
DRIVER = {"postgresql": "psycopg", "mariadb": "PyMySQL"}
DEFAULT_URLS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/test",
}
URL_ENV = {
    "postgresql": "POSLEDGER_BENCH_POSTGRES_URL",
    "mariadb": "POSLEDGER_BENCH_MARIADB_URL",
}

# Goals from the issue, evaluated against the median of the repetitions.
GOAL_SERVER_RATIO = 0.5
GOAL_SERVER_BATCHED_FPS = {"postgresql": 20_000}

WRITER_BATCHES = (1, 100)
PLACEMENTS = ("distinct", "shared")
BATCHED_SIZE = 1000
OPEN_KEY = (0, "", 0)
"""The key of the run of one writer on an empty file: the CLI's cost with no fills."""
COUNTED_FILLS = 50
"""Fills (after a warm-up of 10) whose requests the untimed pass counts."""


# -- servers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fresh:
    """A fresh PostgreSQL schema or MariaDB database: its name and posledger's URL for it."""

    name: str
    url: str


@dataclass
class Server:
    kind: str
    url: URL

    @property
    def label(self) -> str:
        return LABEL[self.kind]

    @property
    def shown(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def connect(self, database: str | None = None, *, autocommit: bool = False) -> Any:
        """A driver connection, set up the way posledger's writer sets up its own (see
        posledger.store.backends): psycopg opens a transaction with the first statement
        of each at READ COMMITTED; PyMySQL runs READ COMMITTED with autocommit off."""
        url = self.url
        if self.kind == "postgresql":
            import psycopg

            options = {} if database is None else {"options": f"-csearch_path={database}"}
            return psycopg.connect(
                host=url.host or "127.0.0.1",
                port=url.port or 5432,
                user=url.username,
                password=url.password,
                dbname=url.database,
                autocommit=autocommit,
                connect_timeout=5,
                **options,
            )
        import pymysql

        conn = pymysql.connect(
            host=url.host or "127.0.0.1",
            port=url.port or 3306,
            user=url.username,
            password=url.password or "",
            database=database or url.database,
            charset="utf8mb4",
            autocommit=autocommit,
            connect_timeout=5,
        )
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        return conn

    def probe(self) -> str | None:
        """Why the server cannot be used, or None when it answers."""
        try:
            conn = self.connect(autocommit=True)
            try:
                cur = conn.cursor()
                cur.execute("SELECT 1")
                cur.fetchall()
                if self.kind == "mariadb":
                    cur.execute("SELECT VERSION()")
                    if "mariadb" not in str(cur.fetchone()[0]).lower():
                        return f"{self.shown} is MySQL, not MariaDB (posledger needs MariaDB)"
            finally:
                conn.close()
        except Exception as exc:  # any driver or network error: the server is not usable
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return f"{self.label} at {self.shown} is unreachable: {first}"
        return None

    def admin(self, statement: str) -> None:
        conn = self.connect(autocommit=True)
        try:
            cur = conn.cursor()
            # A connection left inside a transaction would make a DROP wait for ever.
            if self.kind == "postgresql":
                cur.execute("SET lock_timeout = '30s'")
            else:
                cur.execute("SET SESSION lock_wait_timeout = 30")
            cur.execute(statement)
        finally:
            conn.close()

    @contextmanager
    def fresh(self) -> Iterator[Fresh]:
        """A fresh schema (PostgreSQL) or database (MariaDB), dropped afterwards."""
        name = f"plbench_{uuid.uuid4().hex[:12]}"
        if self.kind == "postgresql":
            self.admin(f"CREATE SCHEMA {name}")
            url = self.url.update_query_dict({"options": f"-csearch_path={name}"})
        else:
            self.admin(f"CREATE DATABASE {name}")
            url = self.url.set(database=name)
        try:
            yield Fresh(name, url.render_as_string(hide_password=False))
        finally:
            drop = "SCHEMA" if self.kind == "postgresql" else "DATABASE"
            cascade = " CASCADE" if self.kind == "postgresql" else ""
            try:
                self.admin(f"DROP {drop} IF EXISTS {name}{cascade}")
            except Exception as exc:  # report, but do not hide the measurement's own error
                say(f"could not drop {drop.lower()} {name} on {self.label}: {exc}")

    def count_fills(self, fresh: Fresh) -> int:
        """``SELECT count(*) FROM fills`` on a fresh schema/database."""
        conn = self.connect(fresh.name, autocommit=True)
        try:
            cur = conn.cursor()
            cur.execute("SELECT count(*) FROM fills")
            return int(cur.fetchone()[0])
        finally:
            conn.close()

    def settings(self) -> tuple[list[list[str]], list[str]]:
        """Rows (setting, value, what it means here) and warnings about durability."""
        conn = self.connect(autocommit=True)
        try:
            cur = conn.cursor()
            if self.kind == "postgresql":
                return _postgres_settings(cur)
            return _mariadb_settings(cur)
        finally:
            conn.close()


def _postgres_settings(cur: Any) -> tuple[list[list[str]], list[str]]:
    def show(name: str) -> str:
        cur.execute(f"SHOW {name}")
        return str(cur.fetchone()[0])

    cur.execute("SELECT version()")
    version = str(cur.fetchone()[0]).split(" on ")[0]
    values = {
        name: show(name)
        for name in (
            "synchronous_commit",
            "fsync",
            "wal_sync_method",
            "full_page_writes",
            "commit_delay",
            "shared_buffers",
            "max_connections",
        )
    }
    try:
        data = show("data_directory")
        data = f"{data} ({filesystem(Path(data))})"
    except Exception:  # not a superuser: the directory is not shown
        data = "(not readable by this user)"
    rows = [
        ["version", version, ""],
        [
            "synchronous_commit",
            values["synchronous_commit"],
            "COMMIT returns once the WAL is flushed"
            if values["synchronous_commit"] == "on"
            else "COMMIT may return before the WAL is flushed: **not durable**",
        ],
        [
            "fsync",
            values["fsync"],
            "WAL flushes reach the disk"
            if values["fsync"] == "on"
            else "**no fsync: not durable**",
        ],
        ["wal_sync_method", values["wal_sync_method"], "how the WAL is flushed"],
        ["full_page_writes", values["full_page_writes"], ""],
        ["commit_delay", values["commit_delay"], "group-commit wait (0: none)"],
        ["shared_buffers", values["shared_buffers"], "the server's page cache"],
        ["max_connections", values["max_connections"], ""],
        ["data directory", data, ""],
    ]
    warnings = []
    if values["fsync"] != "on" or values["synchronous_commit"] in ("off", "local"):
        warnings.append(
            "PostgreSQL does not make every commit durable here (fsync or synchronous_commit): "
            "its per-fill numbers are not comparable with a durable set-up."
        )
    return rows, warnings


def _mariadb_settings(cur: Any) -> tuple[list[list[str]], list[str]]:
    cur.execute("SELECT VERSION()")
    version = str(cur.fetchone()[0])
    names = (
        "innodb_flush_log_at_trx_commit",
        "sync_binlog",
        "log_bin",
        "innodb_buffer_pool_size",
        "innodb_flush_method",
        "innodb_doublewrite",
        "max_connections",
        "datadir",
    )
    marks = ", ".join("%s" for _ in names)
    cur.execute(f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({marks})", names)
    values = {str(k).lower(): str(v) for k, v in cur.fetchall()}
    flush = values.get("innodb_flush_log_at_trx_commit", "?")
    log_bin = values.get("log_bin", "?")
    pool = values.get("innodb_buffer_pool_size", "")
    datadir = values.get("datadir", "?")
    rows = [
        ["version", version, ""],
        [
            "innodb_flush_log_at_trx_commit",
            flush,
            "the redo log is flushed at every COMMIT"
            if flush == "1"
            else "COMMIT does not flush the redo log: **not durable**",
        ],
        [
            "sync_binlog",
            values.get("sync_binlog", "?"),
            "binary log off: no effect" if log_bin == "OFF" else "binary log fsync period",
        ],
        ["log_bin", log_bin, ""],
        [
            "innodb_buffer_pool_size",
            mib(float(pool)) if pool.isdigit() else pool,
            "the server's page cache",
        ],
        ["innodb_flush_method", values.get("innodb_flush_method", "?"), ""],
        ["innodb_doublewrite", values.get("innodb_doublewrite", "?"), ""],
        ["max_connections", values.get("max_connections", "?"), ""],
        ["data directory", f"{datadir} ({filesystem(Path(datadir))})", ""],
    ]
    warnings = []
    if flush != "1":
        warnings.append(
            "MariaDB does not flush its redo log at every commit "
            "(innodb_flush_log_at_trx_commit ≠ 1): its per-fill numbers are not comparable "
            "with a durable set-up."
        )
    return rows, warnings


def servers_from(args: Any) -> list[Server]:
    urls = {"postgresql": args.postgres_url, "mariadb": args.mariadb_url}
    out = []
    for kind in KINDS:
        url = make_url(urls[kind] or os.environ.get(URL_ENV[kind]) or DEFAULT_URLS[kind])
        out.append(Server(kind, url))
    return out


# -- counting requests --------------------------------------------------------------------

_INSERT = re.compile(r"INSERT\s+(IGNORE\s+)?INTO\s+[`\"]?(\w+)", re.IGNORECASE)
_NEXTVAL = re.compile(r"NEXTVAL\(\W*(\w+)", re.IGNORECASE)
_FROM = re.compile(r"\sFROM\s+[`\"]?(\w+)", re.IGNORECASE)
_UPDATE = re.compile(r"UPDATE\s+[`\"]?(\w+)", re.IGNORECASE)


def _text(sql: object) -> str:
    if isinstance(sql, bytes | bytearray):
        return bytes(sql).decode(errors="replace")
    return str(sql)


def label(sql: object) -> str:
    """A short name for a statement: its verb and table."""
    text = " ".join(_text(sql).split())
    upper = text.upper()
    word = upper.split(" ", 1)[0] if upper else "?"
    if match := _INSERT.match(text):
        table_name = match.group(2).lower()
        if match.group(1) or "ON CONFLICT DO NOTHING" in upper:
            return f"INSERT {table_name} (if absent)"
        if "ON CONFLICT" in upper or "ON DUPLICATE KEY" in upper:
            return f"UPSERT {table_name}"
        if re.search(r"\)\s*,\s*\(", text):
            return f"INSERT {table_name} (multi-row)"
        return f"INSERT {table_name}"
    if word == "SELECT":
        if match := _NEXTVAL.search(text):
            return f"SELECT nextval({match.group(1).lower()})"
        found = _FROM.search(text)
        name = found.group(1).lower() if found else "?"
        return f"SELECT {name}" + (" FOR UPDATE" if upper.endswith("FOR UPDATE") else "")
    if word == "UPDATE" and (match := _UPDATE.match(text)):
        return f"UPDATE {match.group(1).lower()}"
    return word


@contextmanager
def counting(kind: str) -> Iterator[Counter[str]]:
    """Count, in this process, the requests the driver sends, by statement.

    psycopg: each ``execute``, each ``executemany`` (psycopg pipelines the rows of one
    executemany into one round trip), ``commit`` and ``rollback``, and the ``BEGIN``
    psycopg sends before the first statement of a transaction. PyMySQL: every command
    it sends (``BEGIN``, each statement, ``COMMIT``; an INSERT ``executemany`` is sent as
    multi-row INSERTs, any other ``executemany`` as one statement per row).
    """
    counts: Counter[str] = Counter()
    if kind == "postgresql":
        import psycopg
        from psycopg.pq import TransactionStatus

        cursor, connection = psycopg.Cursor, psycopg.Connection
        saved = (cursor.execute, cursor.executemany, connection.commit, connection.rollback)
        run, run_many, commit, rollback = saved

        def begins(conn: Any) -> None:
            if not conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
                counts["BEGIN"] += 1

        def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            begins(self.connection)
            counts[label(query)] += 1
            return run(self, query, *args, **kwargs)

        def executemany(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            begins(self.connection)
            counts[label(query) + " (executemany)"] += 1
            return run_many(self, query, *args, **kwargs)

        def do_commit(self: Any) -> Any:
            counts["COMMIT"] += 1
            return commit(self)

        def do_rollback(self: Any) -> Any:
            counts["ROLLBACK"] += 1
            return rollback(self)

        patches: list[tuple[Any, str, Any, Any]] = [
            (cursor, "execute", run, execute),
            (cursor, "executemany", run_many, executemany),
            (connection, "commit", commit, do_commit),
            (connection, "rollback", rollback, do_rollback),
        ]
    else:
        import pymysql.connections

        connection = pymysql.connections.Connection
        send = connection._execute_command

        def execute_command(self: Any, command: int, sql: Any) -> Any:
            counts[label(sql)] += 1
            return send(self, command, sql)

        patches = [(connection, "_execute_command", send, execute_command)]
    for owner, name, _, patched in patches:
        setattr(owner, name, patched)
    try:
        yield counts
    finally:
        for owner, name, original, _ in patches:
            setattr(owner, name, original)


@dataclass
class Requests:
    """Requests per unit of work, by statement label, from the untimed counting pass."""

    durable: dict[str, float]
    bare: dict[str, float]
    batched: dict[str, float]
    """Per transaction of ``ingest(batch_size=1000)``."""
    batches: int
    batched_lines: int
    batched_fills: int
    journal_bytes: tuple[float, float]
    """posledger's average journal input and effects sizes for a fill, in bytes."""


# -- the bare transaction -----------------------------------------------------------------

BARE_STREAM = f"instrument:{INSTRUMENT}"


def bare_ddl(kind: str) -> list[str]:
    long_text = "TEXT" if kind == "postgresql" else "LONGTEXT"
    amount = "NUMERIC(38, 18)"
    return [
        "CREATE TABLE streams (stream VARCHAR(256) PRIMARY KEY, version INTEGER NOT NULL)",
        "CREATE TABLE journal (seq BIGINT PRIMARY KEY, stream VARCHAR(256) NOT NULL, "
        "version INTEGER NOT NULL, kind VARCHAR(16) NOT NULL, recorded_at BIGINT NOT NULL, "
        f"input {long_text} NOT NULL, effects {long_text} NOT NULL, UNIQUE (stream, version))",
        "CREATE TABLE fills (account VARCHAR(128) NOT NULL, exec_id VARCHAR(128) NOT NULL, "
        "instrument VARCHAR(128) NOT NULL, side VARCHAR(16) NOT NULL, "
        f"quantity {amount} NOT NULL, price {amount} NOT NULL, ts BIGINT NOT NULL, "
        f"strategy VARCHAR(128) NOT NULL, commission {amount} NOT NULL, seq BIGINT NOT NULL, "
        "PRIMARY KEY (account, exec_id))",
        "CREATE TABLE positions (account VARCHAR(128) NOT NULL, "
        "instrument VARCHAR(128) NOT NULL, strategy VARCHAR(128) NOT NULL, "
        f"position_side VARCHAR(16) NOT NULL, quantity {amount} NOT NULL, avg_entry {amount}, "
        "seq BIGINT NOT NULL, PRIMARY KEY (account, instrument, strategy, position_side))",
        f"INSERT INTO streams VALUES ('{BARE_STREAM}', 0)",
    ]


BARE_LOCK = "SELECT version FROM streams WHERE stream = %s FOR UPDATE"
BARE_JOURNAL = "INSERT INTO journal VALUES (%s, %s, %s, 'fill', %s, %s, %s)"
BARE_FILL = "INSERT INTO fills VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
BARE_UPSERT = {
    "postgresql": "INSERT INTO positions VALUES (%s, %s, %s, 'BOTH', %s, %s, %s) "
    "ON CONFLICT (account, instrument, strategy, position_side) DO UPDATE SET "
    "quantity = excluded.quantity, avg_entry = excluded.avg_entry, seq = excluded.seq",
    "mariadb": "INSERT INTO positions VALUES (%s, %s, %s, 'BOTH', %s, %s, %s) "
    "ON DUPLICATE KEY UPDATE quantity = VALUES(quantity), avg_entry = VALUES(avg_entry), "
    "seq = VALUES(seq)",
}
BARE_STREAM_UPDATE = "UPDATE streams SET version = %s WHERE stream = %s"


def bare_rows(fills: Sequence[SlotFill], lines: Sequence[str]) -> list[tuple[Any, ...]]:
    """Per transaction: (journal input, journal effects, fill row, position row), built
    before the clock starts. The effects text is shaped like posledger's."""
    rows = []
    held = 0
    for f, line in zip(fills, lines, strict=True):
        delta = f.quantity if f.side is Side.BUY else -f.quantity
        held += delta
        effects = jsonl(
            {
                "strategy": SLOT_STRATEGY,
                "position_side": "BOTH",
                "intent": None,
                "legs": [
                    {
                        "strategy": SLOT_STRATEGY,
                        "position_side": "BOTH",
                        "role": "fill",
                        "delta": str(delta),
                        "commission": str(f.commission),
                        "commission_currency": "USD",
                        "realized": "0",
                    }
                ],
            }
        )
        fill_row = (
            ACCOUNT,
            f.exec_id,
            INSTRUMENT,
            str(f.side),
            Decimal(f.quantity),
            f.price,
            f.ts,
            SLOT_STRATEGY,
            f.commission,
        )
        position = (ACCOUNT, INSTRUMENT, SLOT_STRATEGY, Decimal(held), f.price)
        rows.append((line, effects, fill_row, position))
    return rows


def bare_transactions(
    server: Server,
    fresh: Fresh,
    rows: Sequence[tuple[Any, ...]],
    scope: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> Latency:
    """Run the bare transactions on a fresh schema/database, the loop inside ``scope()``
    (the counting pass passes one that counts requests)."""
    conn = server.connect(fresh.name, autocommit=True)
    try:
        cur = conn.cursor()
        for statement in bare_ddl(server.kind):
            cur.execute(statement)
        if server.kind == "postgresql":
            conn.autocommit = False
            begin: Callable[[], None] | None = None
        else:
            conn.autocommit(False)
            begin = conn.begin
        with scope():
            commit = conn.commit
            execute = cur.execute
            fetchone = cur.fetchone
            upsert = BARE_UPSERT[server.kind]
            clock = time.perf_counter_ns
            stream = BARE_STREAM
            samples: list[int] = []
            start = time.perf_counter()
            for line, effects, fill_row, position in rows:
                t0 = clock()
                if begin is not None:
                    begin()
                execute(BARE_LOCK, (stream,))
                seq = fetchone()[0] + 1
                execute(BARE_JOURNAL, (seq, stream, seq, time.time_ns(), line, effects))
                execute(BARE_FILL, (*fill_row, seq))
                execute(upsert, (*position, seq))
                execute(BARE_STREAM_UPDATE, (seq, stream))
                commit()
                samples.append(clock() - t0)
            elapsed = time.perf_counter() - start
    finally:
        conn.close()
    stored = server.count_fills(fresh)
    if stored != len(rows):
        raise SystemExit(f"bare {server.label} run: {stored} fill rows, expected {len(rows)}")
    return latency_of(len(rows), elapsed, samples)


def bare_run(server: Server, rows: Sequence[tuple[Any, ...]]) -> Latency:
    with server.fresh() as fresh:
        return bare_transactions(server, fresh, rows)


# -- posledger on a server ----------------------------------------------------------------


def open_with_refdata(fresh: Fresh, refdata: Sequence[str]) -> posledger.Ledger:
    ledger = posledger.open_ledger(fresh.url)
    report = ledger.ingest(refdata, batch_size=BATCHED_SIZE)
    if report.applied != len(refdata):
        ledger.close()
        raise SystemExit(f"could not register reference data: {report.rejections[:3]}")
    return ledger


def slot_refdata_lines() -> list[str]:
    return [jsonl(r) for r in REFDATA_ONE_SLOT]


def durable_run(server: Server, lines: list[str]) -> Latency:
    """ledger.ingest(lines, batch_size=1) on a fresh schema/database: as section 2."""
    with server.fresh() as fresh:
        ledger = open_with_refdata(fresh, slot_refdata_lines())
        latency = timed_durable_ingest(ledger, lines, f"durable {server.label} run")
        stored = server.count_fills(fresh)
        if stored != len(lines):
            raise SystemExit(f"durable {server.label} run: {stored} fills stored of {len(lines)}")
    return latency


def inprocess_run(server: Server, source: Path, session: Session) -> float:
    """ledger.ingest(open(FILE), batch_size=1000) on a freshly opened, empty schema."""
    with server.fresh() as fresh:
        ledger = posledger.open_ledger(fresh.url)
        try:
            with source.open(encoding="utf-8") as lines:
                start = time.perf_counter()
                report = ledger.ingest(lines, batch_size=BATCHED_SIZE)
                seconds = time.perf_counter() - start
        finally:
            ledger.close()
        if report.applied != len(session.lines):
            raise SystemExit(
                f"in-process {server.label} ingest: {report.rejected} rejected: "
                f"{report.rejections[:3]}"
            )
        stored = server.count_fills(fresh)
        if stored != session.fills:
            raise SystemExit(f"in-process {server.label}: {stored} fills of {session.fills}")
    return seconds


def cli_run(server: Server, source: Path, lines: int, fills: int, workdir: Path) -> CliRun:
    """`posledger --db URL ingest FILE --batch-size 1000 --quiet --json` on an empty
    schema/database, timed from spawn to exit (start-up and schema creation included)."""
    with server.fresh() as fresh:
        args = ["--db", fresh.url, "ingest", str(source), "--batch-size", str(BATCHED_SIZE)]
        seconds, rss, output = run_child([*args, "--quiet", "--json"], workdir)
        summary = json.loads(output)
        if summary["applied"] != lines:
            raise SystemExit(f"{server.label} CLI ingest applied {summary['applied']} of {lines}")
        stored = server.count_fills(fresh)
        if stored != fills:
            raise SystemExit(f"{server.label} CLI ingest: {stored} fills stored of {fills}")
    return CliRun(seconds, rss, 0, summary)


def count_requests(
    server: Server,
    lines: list[str],
    bare: Sequence[tuple[Any, ...]],
    session: Session,
    batches: int,
) -> Requests:
    """The untimed pass: requests per durable fill, per bare transaction, per batched line."""
    warm = 10
    counted = lines[warm : warm + COUNTED_FILLS]
    with server.fresh() as fresh:
        ledger = open_with_refdata(fresh, slot_refdata_lines())
        try:
            ledger.ingest(lines[:warm], batch_size=1)
            with counting(server.kind) as durable:
                report = ledger.ingest(counted, batch_size=1)
        finally:
            ledger.close()
        if report.applied != len(counted):
            raise SystemExit(f"counting pass on {server.label}: {report.rejections[:3]}")
        conn = server.connect(fresh.name, autocommit=True)
        try:
            cur = conn.cursor()
            cur.execute(
                "SELECT avg(length(input)), avg(length(effects)) FROM journal WHERE kind = 'fill'"
            )
            size_in, size_effects = cur.fetchone()
        finally:
            conn.close()
    bare_counted = bare[:COUNTED_FILLS]
    found: list[Counter[str]] = []

    @contextmanager
    def scope() -> Iterator[None]:
        with counting(server.kind) as counts:
            found.append(counts)
            yield

    with server.fresh() as fresh:
        bare_transactions(server, fresh, bare_counted, scope)
    # The first batch (reference data and the first orders) is left out: warm-up.
    first = session.lines[:BATCHED_SIZE]
    batch = session.lines[BATCHED_SIZE : (1 + batches) * BATCHED_SIZE]
    batches_counted = max(1, -(-len(batch) // BATCHED_SIZE))
    with server.fresh() as fresh:
        ledger = posledger.open_ledger(fresh.url)
        try:
            ledger.ingest(first, batch_size=BATCHED_SIZE)
            with counting(server.kind) as batched:
                ledger.ingest(batch, batch_size=BATCHED_SIZE)
        finally:
            ledger.close()
    return Requests(
        durable={k: v / len(counted) for k, v in durable.items()},
        bare={k: v / len(bare_counted) for k, v in found[0].items()},
        batched={k: v / batches_counted for k, v in batched.items()},
        batches=batches_counted,
        batched_lines=len(batch),
        batched_fills=sum(1 for line in batch if line.startswith('{"type":"fill"')),
        journal_bytes=(float(size_in or 0), float(size_effects or 0)),
    )


# -- concurrent writers -------------------------------------------------------------------


class WriterPool:
    """The helper process of bench/writers.py: it has imported posledger's CLI and forks
    one fresh process per writer for each run, all started together."""

    def __init__(self, workdir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "POSLEDGER_DB"}
        self.workdir = workdir
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "writers.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=workdir,
        )
        self.runs = 0

    def run(self, jobs: list[list[str]]) -> tuple[int, list[dict[str, Any]]]:
        """Run one CLI invocation per job at once: (start ns, each writer's result)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.runs += 1
        specs = []
        for k, argv in enumerate(jobs):
            base = self.workdir / f"writer-{self.runs}-{k}"
            specs.append(
                {
                    "argv": argv,
                    "out": f"{base}.out",
                    "err": f"{base}.err",
                    "result": f"{base}.json",
                }
            )
        self.proc.stdin.write(json.dumps({"jobs": specs}) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise SystemExit(f"bench/writers.py exited with status {self.proc.wait()}")
        go = int(json.loads(answer)["go"])
        results = []
        for spec in specs:
            result_path = Path(spec["result"])
            result = json.loads(result_path.read_text()) if result_path.exists() else {}
            for key, name in (("out", "stdout"), ("err", "stderr")):
                path = Path(spec[key])
                result[name] = path.read_text() if path.exists() else ""
            for key in ("out", "err", "result"):
                Path(spec[key]).unlink(missing_ok=True)
            results.append(result)
        return go, results

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass(frozen=True)
class WriterConfig:
    index: int
    batch: int
    placement: str
    writers: int
    per_writer: int
    files: tuple[Path, ...]

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.batch, self.placement, self.writers)


@dataclass
class WriterRun:
    fills: int
    seconds: float
    """From the start signal to the last writer's exit."""
    per_process: list[float]
    """Each writer's fills/s over its own run (CLI open to exit)."""
    stored: int
    """``SELECT count(*) FROM fills`` after the run (all runs so far on the schema)."""

    @property
    def rate(self) -> float:
        return self.fills / self.seconds


def writer_instrument(config: int, writer: int, placement: str) -> str:
    if placement == "shared":
        return f"MES-C{config}.CME"
    return f"MES-C{config}W{writer}.CME"


def writer_configs(sizes: Sizes, workdir: Path) -> tuple[list[WriterConfig], list[str]]:
    """Every configuration, its writers' files (written once, used by every server and
    repetition) and the reference data they need (registered before the runs)."""
    configs = []
    instruments: list[str] = []
    index = 0
    for batch in WRITER_BATCHES:
        per_writer = sizes.writer_single if batch == 1 else sizes.writer_batched
        for placement in PLACEMENTS:
            for writers in sizes.writers:
                files = []
                for k in range(writers):
                    instrument = writer_instrument(index, k, placement)
                    if instrument not in instruments:
                        instruments.append(instrument)
                    path = workdir / f"writer-c{index}-w{k}.jsonl"
                    lines = writer_lines(
                        per_writer, 1000 + 10 * index + k, f"c{index}w{k}", instrument, f"w{k}"
                    )
                    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
                    files.append(path)
                configs.append(
                    WriterConfig(index, batch, placement, writers, per_writer, tuple(files))
                )
                index += 1
    refdata = [jsonl(REFDATA_ONE_SLOT[0])]
    refdata += [jsonl({"type": "strategy", "strategy": f"w{k}"}) for k in range(max(sizes.writers))]
    refdata += [jsonl(future_refdata(name)) for name in instruments]
    return configs, refdata


def writers_run(
    server: Server, pool: WriterPool, configs: list[WriterConfig], refdata: list[str]
) -> dict[tuple[int, str, int], WriterRun]:
    """Every configuration in turn on one fresh schema/database (each configuration on
    instruments of its own), checking the stored fill count after each."""
    out: dict[tuple[int, str, int], WriterRun] = {}
    with server.fresh() as fresh:
        open_with_refdata(fresh, refdata).close()
        expected = 0
        empty = WriterConfig(-1, 1, "distinct", 1, 0, (configs[0].files[0].with_name("empty"),))
        empty.files[0].write_text("", encoding="utf-8")
        for config in [empty, *configs]:
            jobs = [
                [
                    "--db",
                    fresh.url,
                    "ingest",
                    str(path),
                    "--batch-size",
                    str(config.batch),
                    "--quiet",
                    "--json",
                ]
                for path in config.files
            ]
            go, results = pool.run(jobs)
            per_process = []
            last = go
            for k, result in enumerate(results):
                if result.get("code") != 0:
                    raise SystemExit(
                        f"{server.label} writer {k} of {config.writers} exited "
                        f"{result.get('code')}: {result['stdout']}{result['stderr']}"[-4000:]
                    )
                summary = json.loads(result["stdout"])
                if summary["applied"] != config.per_writer or summary["rejected"]:
                    raise SystemExit(
                        f"{server.label} writer {k}: applied {summary['applied']} of "
                        f"{config.per_writer}, rejected {summary['rejected']}"
                    )
                seconds = (result["end"] - result["start"]) / 1e9
                per_process.append(config.per_writer / seconds if config.per_writer else seconds)
                last = max(last, int(result["end"]))
            expected += config.writers * config.per_writer
            if config is empty:
                out[OPEN_KEY] = WriterRun(0, (last - go) / 1e9, per_process, expected)
                continue
            stored = server.count_fills(fresh)
            if stored != expected:
                raise SystemExit(
                    f"{server.label} writers {config.key}: {stored} fills stored, "
                    f"expected {expected}"
                )
            out[config.key] = WriterRun(
                config.writers * config.per_writer, (last - go) / 1e9, per_process, stored
            )
    return out


# -- one run over every server ------------------------------------------------------------


@dataclass
class ServerResults:
    server: Server
    skipped: str | None = None
    settings: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bare: list[Latency] = field(default_factory=list)
    durable: list[Latency] = field(default_factory=list)
    inproc: list[float] = field(default_factory=list)
    cli: list[CliRun] = field(default_factory=list)
    startup: list[CliRun] = field(default_factory=list)
    writers: dict[tuple[int, str, int], list[WriterRun]] = field(default_factory=dict)
    requests: Requests | None = None

    @property
    def kind(self) -> str:
        return self.server.kind

    @property
    def label(self) -> str:
        return self.server.label


def probe_servers(servers: list[Server], skip: bool, require: bool) -> dict[str, str]:
    """Why each unusable server is skipped (kind -> reason); exits under ``require``."""
    if skip:
        return {s.kind: "skipped with `--skip-servers`" for s in servers}
    out = {}
    for server in servers:
        reason = server.probe()
        if reason is not None:
            if require:
                raise SystemExit(f"--require-servers: {reason}")
            say(f"skipping {server.label}: {reason}")
            out[server.kind] = reason
    return out


class ServerBench:
    """The server half of the benchmark: ``repetition`` runs after each SQLite repetition,
    so that both see the same machine conditions."""

    def __init__(
        self, servers: list[Server], skipped: dict[str, str], sizes: Sizes, workdir: Path
    ) -> None:
        self.sizes = sizes
        self.workdir = workdir
        self.results = [ServerResults(s, skipped.get(s.kind)) for s in servers]
        self.active = [r for r in self.results if r.skipped is None]
        self.pool: WriterPool | None = None

    def prepare(self, session: Session) -> None:
        """Workloads (the one-slot fills of sections 2 and 3, sized for the servers), the
        untimed counting pass, and the servers' settings."""
        self.session = session
        if not self.active:
            return
        count = self.sizes.server_durable
        self.durable_lines = [as_line(f) for f in one_slot_fills(count, seed=2, prefix="p")]
        bare = one_slot_fills(count, seed=3, prefix="b")
        self.bare_rows = bare_rows(bare, [as_line(f) for f in bare])
        self.configs, self.refdata = writer_configs(self.sizes, self.workdir)
        for result in self.active:
            result.settings, result.warnings = result.server.settings()
            say(f"counting {result.label} requests (untimed) ...")
            result.requests = count_requests(
                result.server,
                self.durable_lines,
                self.bare_rows,
                session,
                self.sizes.counted_batches,
            )

    def repetition(self, source: Path, refdata_only: Path, tag: str) -> None:
        if not self.active:
            return
        session = self.session
        if self.pool is None:
            self.pool = WriterPool(self.workdir)
        for result in self.active:
            server, name = result.server, result.label
            result.bare.append(bare_run(server, self.bare_rows))
            say(f"{tag} {name} bare {DRIVER[result.kind]} tx: {result.bare[-1].rate:,.0f} tx/s")
            result.durable.append(durable_run(server, self.durable_lines))
            d = result.durable[-1]
            say(f"{tag} {name} durable ingest: {d.rate:,.0f} fills/s, p99 {d.p99_ms:.3f} ms")
            result.inproc.append(inprocess_run(server, source, session))
            rate = session.fills / result.inproc[-1]
            say(f"{tag} {name} in-process batched: {rate:,.0f} fills/s")
            if self.sizes.server_startup:
                startup = cli_run(server, refdata_only, session.refdata, 0, self.workdir)
                result.startup.append(startup)
                say(f"{tag} {name} CLI start-up: {startup.seconds:.2f} s")
            result.cli.append(
                cli_run(server, source, len(session.lines), session.fills, self.workdir)
            )
            say(f"{tag} {name} CLI batched: {session.fills / result.cli[-1].seconds:,.0f} fills/s")
            runs = writers_run(server, self.pool, self.configs, self.refdata)
            for key, run in runs.items():
                result.writers.setdefault(key, []).append(run)
            for batch in WRITER_BATCHES:
                for placement in PLACEMENTS:
                    shown = ", ".join(
                        f"{n}: {n0(runs[(batch, placement, n)].rate)}" for n in self.sizes.writers
                    )
                    where = "own instrument" if placement == "distinct" else "one instrument"
                    say(
                        f"{tag} {name} writers, --batch-size {batch}, {where}, "
                        f"total fills/s by writers: {shown}"
                    )

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
