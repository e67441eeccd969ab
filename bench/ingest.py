"""Ingestion benchmarks: prints the numbers and writes them to docs/benchmarks.md.

Run from the repository root::

    .venv/bin/python bench/ingest.py                  # or: make bench
    .venv/bin/python bench/ingest.py --quick          # small sizes (used by the smoke test)
    .venv/bin/python bench/ingest.py --skip-servers   # SQLite only

One run measures, interleaved so that every repetition sees the same machine conditions:

1. the pure domain on one slot (``decide_fill`` + ``Book.apply`` on prebuilt ``Fill`` values);
2. durable per-fill ingestion on SQLite (``Ledger.ingest(..., batch_size=1)``, and one
   ``Ledger.apply_fill`` call per fill), with per-fill latency percentiles;
3. a bare sqlite3 transaction (BEGIN IMMEDIATE, INSERT, UPSERT, COMMIT) on the same disk
   with the same pragmas: the floor durable ingestion is compared with;
4. batched JSONL ingestion through the CLI (a subprocess, start-up included) and in process;
5. peak RSS of the CLI ingest process and the size of the database it writes;
6. to 9. the same on PostgreSQL and MariaDB when they answer (bench/servers.py): durable
   per-fill ingestion beside a bare driver-level transaction of the same shape, batched
   ingestion in process and through the CLI, and 1, 2 and 8 concurrent ``posledger
   ingest`` writers on distinct instruments and on one; with the servers' settings and
   the requests each path sends (bench/servers_report.py writes those sections).

Modules: bench/workloads.py (the inputs), bench/common.py (measurement and formatting
helpers, sizes), bench/servers.py, bench/servers_report.py and bench/writers.py (the helper
process that starts concurrent writers).

Timings are wall-clock (``time.perf_counter``) with the garbage collector left on, as in
production. Numbers in the report come only from this script; nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import platform
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import timeit
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy

import posledger
import servers
import servers_report
from common import (
    FULL,
    QUICK,
    CliRun,
    Latency,
    Sizes,
    filesystem,
    latency_of,
    met,
    mib,
    ms,
    n0,
    pct,
    row,
    run_child,
    say,
    secs,
    stat,
    table,
    timed_durable_ingest,
)
from posledger.domain.book import Book
from posledger.domain.decide import decide_fill
from posledger.domain.decisions import Rejection
from posledger.domain.enums import Kind, Mode, PositionMode, Side
from posledger.domain.inputs import Fill
from posledger.domain.numbers import exact
from posledger.domain.refdata import Account, Instrument
from workloads import (
    ACCOUNT,
    INSTRUMENT,
    REFDATA_ONE_SLOT,
    SLOT_STRATEGY,
    TICK,
    Session,
    SlotFill,
    as_fields,
    as_fill,
    as_line,
    dec,
    jsonl,
    one_slot_fills,
    realistic_session,
)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "docs" / "benchmarks.md"

# Goals from the issue. The report evaluates each against the median of the repetitions.
# (The servers' goals are in bench/servers.py.)
GOAL_DOMAIN_FPS = 100_000
GOAL_DURABLE_RATIO = 0.5
GOAL_DURABLE_P99_MS = 2.0
GOAL_BATCHED_FPS = 30_000


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# -- measurements -------------------------------------------------------------------------


def slot_refdata() -> tuple[Account, Instrument]:
    """The domain values of REFDATA_ONE_SLOT's account and instrument."""
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
    return account, instrument


def domain_run(fills: Sequence[Fill]) -> float:
    """Fills/s of decide_fill + Book.apply on one slot, all inside one exact() block."""
    account, instrument = slot_refdata()
    book = Book(INSTRUMENT)
    known = {SLOT_STRATEGY}.__contains__
    new_trade_id = itertools.count(1).__next__
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
            book.apply(decision)
    elapsed = time.perf_counter() - start
    expected = sum(f.quantity if f.side is Side.BUY else -f.quantity for f in fills)
    (slot,) = book.slots.values()
    if slot.quantity != expected:
        raise SystemExit(f"domain benchmark: slot ends at {slot.quantity}, expected {expected}")
    return len(fills) / elapsed


def domain_roles(fills: Sequence[Fill]) -> Counter[str]:
    """The mix of leg roles the domain workload produces (an untimed pass)."""
    account, instrument = slot_refdata()
    book = Book(INSTRUMENT)
    new_trade_id = itertools.count(1).__next__
    roles = Counter[str]()
    for fill in fills:
        decision = decide_fill(
            fill,
            account=account,
            instrument=instrument,
            order=None,
            strategy_known={SLOT_STRATEGY}.__contains__,
            book=book,
            new_trade_id=new_trade_id,
        )
        if isinstance(decision, Rejection):
            raise SystemExit(f"domain benchmark: fill rejected: {decision.reason}")
        # A flip is one fill with two legs (close + open); count the fill once.
        kinds = [str(leg.role) for leg in decision.legs]
        roles["flip" if "flip" in kinds else kinds[0]] += 1
        book.apply(decision)
    return roles


def open_fresh(path: Path) -> posledger.Ledger:
    remove_db(path)
    ledger = posledger.open_ledger(f"sqlite:///{path}")
    report = ledger.ingest(jsonl(r) for r in REFDATA_ONE_SLOT)
    if report.applied != len(REFDATA_ONE_SLOT):
        raise SystemExit(f"could not register reference data: {report.rejections}")
    return ledger


def durable_ingest_run(path: Path, lines: list[str]) -> Latency:
    """ledger.ingest(lines, batch_size=1): each fill its own transaction; the latency of a
    fill is the time from the previous commit (or the start) to its own commit."""
    latency = timed_durable_ingest(open_fresh(path), lines, "durable benchmark")
    remove_db(path)
    return latency


def durable_api_run(path: Path, calls: list[dict[str, Any]]) -> Latency:
    """One ledger.apply_fill(**fields) call (one transaction) per fill, each call timed."""
    ledger = open_fresh(path)
    samples: list[int] = []
    clock = time.perf_counter_ns
    apply_fill = ledger.apply_fill
    bad = 0
    try:
        start = time.perf_counter()
        for fields in calls:
            t0 = clock()
            outcome = apply_fill(**fields)
            samples.append(clock() - t0)
            if outcome.status != "applied":
                bad += 1
        elapsed = time.perf_counter() - start
    finally:
        ledger.close()
    remove_db(path)
    if bad:
        raise SystemExit(f"durable API benchmark: {bad} fills not applied")
    return latency_of(len(calls), elapsed, samples)


BARE_SCHEMA = """
CREATE TABLE fills (
    account TEXT NOT NULL, exec_id TEXT NOT NULL, instrument TEXT NOT NULL,
    side TEXT NOT NULL, quantity TEXT NOT NULL, price TEXT NOT NULL, ts INTEGER NOT NULL,
    strategy TEXT NOT NULL, commission TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (account, exec_id)
);
CREATE TABLE positions (
    account TEXT NOT NULL, instrument TEXT NOT NULL, strategy TEXT NOT NULL,
    position_side TEXT NOT NULL, quantity TEXT NOT NULL, avg_entry TEXT, seq INTEGER NOT NULL,
    PRIMARY KEY (account, instrument, strategy, position_side)
);
"""
BARE_INSERT = "INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
BARE_UPSERT = (
    "INSERT INTO positions VALUES (?, ?, ?, 'BOTH', ?, ?, ?) "
    "ON CONFLICT (account, instrument, strategy, position_side) DO UPDATE SET "
    "quantity = excluded.quantity, avg_entry = excluded.avg_entry, seq = excluded.seq"
)


def bare_run(path: Path, fills: Sequence[SlotFill]) -> Latency:
    """Per transaction: BEGIN IMMEDIATE; INSERT a fill row; UPSERT a position row; COMMIT.
    Same pragmas as posledger's SQLite engine (WAL, synchronous=FULL)."""
    remove_db(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.executescript(BARE_SCHEMA)
        rows = []
        held = 0
        for seq, f in enumerate(fills, start=1):
            held += f.quantity if f.side is Side.BUY else -f.quantity
            fill_row = (
                ACCOUNT,
                f.exec_id,
                INSTRUMENT,
                str(f.side),
                str(f.quantity),
                dec(f.price),
                f.ts,
                SLOT_STRATEGY,
                dec(f.commission),
                seq,
            )
            rows.append(
                (fill_row, (ACCOUNT, INSTRUMENT, SLOT_STRATEGY, str(held), dec(f.price), seq))
            )
        cur = conn.cursor()
        execute = cur.execute
        clock = time.perf_counter_ns
        samples: list[int] = []
        start = time.perf_counter()
        for fill_row, position_row in rows:
            t0 = clock()
            execute("BEGIN IMMEDIATE")
            execute(BARE_INSERT, fill_row)
            execute(BARE_UPSERT, position_row)
            execute("COMMIT")
            samples.append(clock() - t0)
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    remove_db(path)
    return latency_of(len(fills), elapsed, samples)


def cli_help(workdir: Path) -> CliRun:
    """`posledger --help`: interpreter start-up and imports, no database."""
    seconds, rss, _ = run_child(["--help"], workdir)
    return CliRun(seconds, rss, 0, {})


def cli_ingest(db: Path, source: Path, expect_lines: int, workdir: Path) -> CliRun:
    """`posledger --db sqlite:///DB ingest FILE --batch-size 1000 --quiet --json` as a
    subprocess on a fresh database, timed from spawn to exit."""
    remove_db(db)
    seconds, rss, output = run_child(
        [
            "--db",
            f"sqlite:///{db}",
            "ingest",
            str(source),
            "--batch-size",
            "1000",
            "--quiet",
            "--json",
        ],
        workdir,
    )
    summary = json.loads(output)
    if summary["applied"] != expect_lines:
        raise SystemExit(f"CLI ingest applied {summary['applied']} of {expect_lines} lines")
    db_bytes = sum(
        Path(f"{db}{s}").stat().st_size for s in ("", "-wal") if Path(f"{db}{s}").exists()
    )
    remove_db(db)
    return CliRun(seconds, rss, db_bytes, summary)


def inprocess_batched(db: Path, source: Path, expect_lines: int) -> float:
    """ledger.ingest(open(FILE), batch_size=1000) on an already opened fresh database."""
    remove_db(db)
    ledger = posledger.open_ledger(f"sqlite:///{db}")
    try:
        with source.open(encoding="utf-8") as lines:
            start = time.perf_counter()
            report = ledger.ingest(lines, batch_size=1000)
            seconds = time.perf_counter() - start
    finally:
        ledger.close()
    remove_db(db)
    if report.applied != expect_lines:
        raise SystemExit(f"in-process ingest: {report.rejected} rejected: {report.rejections[:3]}")
    return seconds


# -- machine context ----------------------------------------------------------------------


def cpu_model() -> tuple[str, bool]:
    model, hypervisor = platform.processor() or platform.machine(), False
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return model, hypervisor
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
            model = value.strip()
        if key.strip() == "flags" and "hypervisor" in value.split():
            hypervisor = True
    return model, hypervisor


def mem_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "src"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}" + (" with uncommitted changes under src/" if dirty else " (src/ clean)")


def calibrate_loop() -> float:
    """Million iterations/s of a fixed pure-Python loop (best of 5)."""

    def loop() -> int:
        total = 0
        for i in range(1_000_000):
            total += i * i % 7
        return total

    best = min(timeit.repeat(loop, number=1, repeat=5))
    return 1.0 / best


def calibrate_decimal() -> float:
    """Thousand Decimal average-price updates/s (best of 5), the domain's typical arithmetic."""
    avg, qty, price, add = Decimal("6852.25"), Decimal(3), Decimal("6860.75"), Decimal(2)
    q = Decimal(1).scaleb(-18)

    def loop() -> None:
        with exact():
            for _ in range(100_000):
                ((avg * qty + price * add) / (qty + add)).quantize(q)

    best = min(timeit.repeat(loop, number=1, repeat=5))
    return 100_000 / best / 1000


@dataclass
class Calibration:
    loop: float
    decimal: float
    fsync: Latency


def calibrate(workdir: Path, quick: bool) -> Calibration:
    """Fixed CPU and disk work, run at the start and at the end of the benchmark: how fast
    the machine was while it ran, for scaling to other machines and for spotting drift."""
    say("calibrating ...")
    return Calibration(
        calibrate_loop(), calibrate_decimal(), calibrate_fsync(workdir, 100 if quick else 500)
    )


def calibrate_fsync(directory: Path, count: int) -> Latency:
    """Append 128 bytes + fsync, ``count`` times, in the benchmark directory."""
    path = directory / "fsync.probe"
    samples: list[int] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        start = time.perf_counter()
        for _ in range(count):
            t0 = time.perf_counter_ns()
            os.write(fd, b"x" * 128)
            os.fsync(fd)
            samples.append(time.perf_counter_ns() - t0)
        elapsed = time.perf_counter() - start
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return latency_of(count, elapsed, samples)


# -- the run ------------------------------------------------------------------------------


@dataclass
class Results:
    domain: list[float] = field(default_factory=list)
    bare: list[Latency] = field(default_factory=list)
    durable: list[Latency] = field(default_factory=list)
    api: list[Latency] = field(default_factory=list)
    cli: list[CliRun] = field(default_factory=list)
    inproc: list[float] = field(default_factory=list)
    startup: list[CliRun] = field(default_factory=list)
    help: list[CliRun] = field(default_factory=list)


def run(sizes: Sizes, workdir: Path, bench: servers.ServerBench) -> tuple[Results, dict[str, Any]]:
    say("building workloads ...")
    slot = one_slot_fills(sizes.domain, seed=1, prefix="d")
    domain_fills = [as_fill(f) for f in slot]
    roles = domain_roles(domain_fills[: min(len(domain_fills), 20_000)])
    durable = one_slot_fills(sizes.durable, seed=2, prefix="p")
    durable_lines = [as_line(f) for f in durable]
    durable_calls = [as_fields(f) for f in durable]
    bare = one_slot_fills(sizes.bare, seed=3, prefix="b")
    session = realistic_session(sizes.batched, seed=4)
    source = workdir / "session.jsonl"
    source.write_text("\n".join(session.lines) + "\n", encoding="utf-8")
    refdata_only = workdir / "refdata.jsonl"
    refdata_only.write_text("\n".join(session.lines[: session.refdata]) + "\n", encoding="utf-8")
    workload = {
        "roles": roles,
        "roles_sample": min(len(domain_fills), 20_000),
        "session": session,
        "session_bytes": source.stat().st_size,
    }
    bench.prepare(session)
    results = Results()
    for r in range(1, sizes.repeat + 1):
        tag = f"[{r}/{sizes.repeat}]"
        results.domain.append(domain_run(domain_fills))
        say(f"{tag} pure domain: {results.domain[-1]:,.0f} fills/s")
        results.bare.append(bare_run(workdir / f"bare-{r}.db", bare))
        say(f"{tag} bare sqlite3 tx: {results.bare[-1].rate:,.0f} tx/s")
        results.durable.append(durable_ingest_run(workdir / f"durable-{r}.db", durable_lines))
        d = results.durable[-1]
        say(f"{tag} durable ingest: {d.rate:,.0f} fills/s, p99 {d.p99_ms:.3f} ms")
        results.api.append(durable_api_run(workdir / f"api-{r}.db", durable_calls))
        say(f"{tag} durable apply_fill: {results.api[-1].rate:,.0f} fills/s")
        results.help.append(cli_help(workdir))
        say(f"{tag} CLI --help: {results.help[-1].seconds:.2f} s")
        results.startup.append(
            cli_ingest(workdir / f"start-{r}.db", refdata_only, session.refdata, workdir)
        )
        say(f"{tag} CLI start-up: {results.startup[-1].seconds:.2f} s")
        results.cli.append(cli_ingest(workdir / f"cli-{r}.db", source, len(session.lines), workdir))
        say(f"{tag} CLI batched: {session.fills / results.cli[-1].seconds:,.0f} fills/s")
        results.inproc.append(
            inprocess_batched(workdir / f"inproc-{r}.db", source, len(session.lines))
        )
        say(f"{tag} in-process batched: {session.fills / results.inproc[-1]:,.0f} fills/s")
        bench.repetition(source, refdata_only, tag)
    return results, workload


# -- the report ---------------------------------------------------------------------------


def report(
    results: Results,
    workload: dict[str, Any],
    sizes: Sizes,
    context: dict[str, Any],
    command: str,
    elapsed: float,
    bench: servers.ServerBench,
) -> str:
    session: Session = workload["session"]
    fills, lines = session.fills, len(session.lines)

    domain = stat(results.domain)
    us_per_fill = stat((1e6 / v for v in results.domain), high=False)
    bare = results.bare
    durable = results.durable
    api = results.api
    ratio = stat(d.rate / b.rate for d, b in zip(durable, bare, strict=True))
    api_ratio = stat(d.rate / b.rate for d, b in zip(api, bare, strict=True))
    p99 = stat((x.p99_ms for x in durable), high=False)
    cli = stat(fills / c.seconds for c in results.cli)
    db_size = results.cli[0].db_bytes

    domain_ok = domain.median >= GOAL_DOMAIN_FPS
    ratio_ok = ratio.median >= GOAL_DURABLE_RATIO
    p99_ok = p99.median <= GOAL_DURABLE_P99_MS
    batched_ok = cli.median >= GOAL_BATCHED_FPS
    ratio_goal = f"≥ {pct(GOAL_DURABLE_RATIO)} of bare"
    p99_goal = f"≤ {GOAL_DURABLE_P99_MS:g} ms"

    def latency_rows(name: str, runs: list[Latency], goal: bool) -> list[list[str]]:
        return [
            row(f"{name} latency p50", stat((x.p50_ms for x in runs), False), ms),
            row(
                f"{name} latency p99",
                stat((x.p99_ms for x in runs), False),
                ms,
                p99_goal if goal else "",
                p99_ok if goal else None,
            ),
            row(f"{name} latency max", stat((x.max_ms for x in runs), False), ms),
        ]

    hdr = ["", "median", "best", f"each run ({sizes.repeat})", "goal", "met"]
    roles: Counter[str] = workload["roles"]
    role_total = sum(roles.values())
    role_mix = ", ".join(
        f"{name} {roles[name] / role_total:.0%}"
        for name in ("open", "increase", "reduce", "close", "flip")
    )
    start, end = context["calibration"]
    loop = f"{start.loop:.2f} / {end.loop:.2f} M iterations/s (`total += i * i % 7`, best of 5)"
    decimal = f"{start.decimal:,.0f} / {end.decimal:,.0f} k/s (`q18((a*q + p*f) / (q + f))`)"
    fsync = " / ".join(
        f"{n0(c.fsync.rate)}/s (p50 {ms(c.fsync.p50_ms)}, p99 {ms(c.fsync.p99_ms)})"
        for c in (start, end)
    )

    out = [
        "# Benchmarks",
        "",
        "<!-- Generated by bench/ingest.py: do not edit by hand; rerun the script. -->",
        "",
        f"Generated by `{command}` on {context['date']}, in {elapsed:,.0f} s. Every number "
        "below comes from that one run; none is typed in by hand. Rates are the **median** "
        f"and the **best** of {sizes.repeat} repetition(s), and every run is listed; the "
        "repetitions interleave all measurements so that each sees the same machine "
        "conditions. A goal is met when the median meets it.",
        "",
        "## Machine",
        "",
        *table(
            [
                ["CPU", context["cpu"]],
                ["Cores", context["cores"]],
                ["Memory", context["memory"]],
                ["Virtualization", context["virt"]],
                ["1-minute load average at start / end", context["load"]],
                ["Python", context["python"]],
                ["SQLite library", context["sqlite"]],
                ["SQLAlchemy", context["sqlalchemy"]],
                ["posledger", context["posledger"]],
                ["Benchmark directory", context["fs"]],
                ["Disk free there", context["disk_free"]],
                ["CPU calibration at start / end: pure-Python loop", loop],
                ["CPU calibration at start / end: Decimal average-price update", decimal],
                ["Disk calibration at start / end: 128-byte append + fsync", fsync],
            ],
            ["", ""],
        ),
        "",
        context["noise"],
        "To scale these numbers to another machine, run the same calibration loops "
        "(`calibrate_loop`, `calibrate_decimal`, `calibrate_fsync` in `bench/ingest.py`) "
        "there: the domain and the batched paths are CPU-bound, the durable per-fill path "
        "is bound by CPU and fsync latency together. A large difference between the start "
        "and end calibrations means the machine's speed changed during the run.",
        "",
        "## Summary",
        "",
        *table(
            [
                [
                    "Pure domain, one slot",
                    f"{n0(domain.median)} fills/s",
                    f"≥ {n0(GOAL_DOMAIN_FPS)} fills/s",
                    met(domain_ok),
                ],
                [
                    "SQLite: durable per-fill ingestion / bare sqlite3 transaction",
                    pct(ratio.median),
                    f"≥ {pct(GOAL_DURABLE_RATIO)}",
                    met(ratio_ok),
                ],
                [
                    "SQLite: durable per-fill ingestion p99 latency",
                    ms(p99.median),
                    p99_goal,
                    met(p99_ok),
                ],
                [
                    "SQLite: batched JSONL ingestion through the CLI",
                    f"{n0(cli.median)} fills/s",
                    f"≥ {n0(GOAL_BATCHED_FPS)} fills/s",
                    met(batched_ok),
                ],
                *servers_report.summary_rows(bench),
            ],
            ["Measurement", "Median", "Goal", "Met"],
        ),
        "",
        "## 1. Pure domain, one slot",
        "",
        f"{n0(sizes.domain)} prebuilt `Fill` values for one account, instrument and strategy "
        "(netting account, future with multiplier 5, commission on every fill), each "
        "`decide_fill(...)` followed by `book.apply(decision)`, all inside one `with exact():` "
        "block; no I/O, no parsing. Each fill moves the slot to a random target position "
        f"in -5..5, so the fills are: {role_mix} (of the first "
        f"{n0(workload['roles_sample'])}; a flip closes a trade and opens the next in one "
        "fill).",
        "",
        *table(
            [
                row("fills/s", domain, n0, f"≥ {n0(GOAL_DOMAIN_FPS)}", domain_ok),
                row(
                    "µs per fill",
                    us_per_fill,
                    lambda v: f"{v:.1f}",
                    f"≤ {1e6 / GOAL_DOMAIN_FPS:.1f}",
                    domain_ok,
                ),
            ],
            hdr,
        ),
        "",
        "## 2. Durable per-fill ingestion on SQLite",
        "",
        "A fresh database file per repetition; account, instrument and strategy registered; "
        f"then {n0(sizes.durable)} fills of one slot (the workload of section 1, as JSONL "
        "lines naming their strategy), each in its own transaction (journal_mode=WAL, "
        "synchronous=FULL: every commit is fsynced). "
        "`ledger.ingest(lines, batch_size=1, on_commit=...)`: a fill's latency is the time "
        "from the previous commit to its own commit, as seen by the `on_commit` callback "
        "(read, parse, decide, write, COMMIT). `ledger.apply_fill(**fields)`: one call per "
        "fill, each call timed. Percentiles are nearest-rank over all fills of a repetition.",
        "",
        *table(
            [
                row(
                    "`ingest(batch_size=1)` fills/s",
                    stat(x.rate for x in durable),
                    n0,
                    ratio_goal + " (section 3)",
                    ratio_ok,
                ),
                *latency_rows("`ingest(batch_size=1)`", durable, goal=True),
                row("`apply_fill()` fills/s", stat(x.rate for x in api), n0, "(no goal)"),
                *latency_rows("`apply_fill()`", api, goal=False),
            ],
            hdr,
        ),
        "",
        "## 3. Bare sqlite3 transaction on the same disk",
        "",
        f"The floor for section 2: {n0(sizes.bare)} transactions with the standard library "
        "`sqlite3` module in the same directory, with the same pragmas (journal_mode=WAL, "
        "synchronous=FULL). Each transaction is `BEGIN IMMEDIATE`, an `INSERT` of one row "
        "into a fills-like table (primary key account, exec_id), an `INSERT ... ON CONFLICT "
        "DO UPDATE` of one row of a positions-like table, and `COMMIT`; parameters are "
        "prepared beforehand and each transaction is timed. The ratios pair each "
        "repetition's durable rate with the bare rate measured just before it. When the "
        "disk is slow or contended (see the disk calibration), fsync dominates both rates "
        "and the ratio drifts towards 100%: judge it on a run with a quiet disk.",
        "",
        *table(
            [
                row("transactions/s", stat(x.rate for x in bare), n0),
                *latency_rows("transaction", bare, goal=False),
                row(
                    "durable `ingest(batch_size=1)` / bare",
                    ratio,
                    pct,
                    f"≥ {pct(GOAL_DURABLE_RATIO)}",
                    ratio_ok,
                ),
                row("durable `apply_fill()` / bare", api_ratio, pct, "(no goal)"),
            ],
            hdr,
        ),
        "",
        "## 4. Batched JSONL ingestion through the CLI",
        "",
        f"A JSONL session of {n0(lines)} lines ({mib(workload['session_bytes'])}): "
        f"{n0(fills)} fills, {n0(session.orders)} orders, {n0(session.marks)} marks and "
        f"{session.refdata} reference-data records (2 accounts, one netting and one hedge; 3 "
        f"instruments; {session.strategies} strategies). Every fill belongs to a registered "
        "order with an intent (entry, exit, take_profit, stop_loss), orders fill in one to "
        "three parts, every fill pays commission. `posledger --db sqlite:///... ingest FILE "
        "--batch-size 1000 --quiet --json` (the console script next to `sys.executable`) runs "
        "as a subprocess on a fresh database, timed from spawn to exit, so interpreter "
        "start-up, imports and schema creation are included; fills/s counts fills only, "
        "lines/s every line. In process: `ledger.ingest(open(FILE), batch_size=1000)` on a "
        "freshly opened database, timing only the ingest call. Start-up: `posledger --help` "
        "(interpreter and imports), and the ingest command on a fresh database with a file "
        "holding only the reference data (adds opening the database and creating the schema).",
        "",
        *table(
            [
                row(
                    "CLI fills/s (end to end)",
                    cli,
                    n0,
                    f"≥ {n0(GOAL_BATCHED_FPS)}",
                    batched_ok,
                ),
                row("CLI lines/s", stat(lines / c.seconds for c in results.cli), n0),
                row("CLI wall time", stat((c.seconds for c in results.cli), False), secs),
                row(
                    "in-process fills/s",
                    stat(fills / s for s in results.inproc),
                    n0,
                    "(reference)",
                ),
                row("in-process lines/s", stat(lines / s for s in results.inproc), n0),
                row("in-process ingest time", stat(results.inproc, False), secs),
                row(
                    "CLI start-up: `posledger --help`",
                    stat((c.seconds for c in results.help), False),
                    secs,
                ),
                row(
                    "CLI start-up + schema creation + reference data",
                    stat((c.seconds for c in results.startup), False),
                    secs,
                ),
            ],
            hdr,
        ),
        "",
        "## 5. Memory and size",
        "",
        "Peak resident set size of each CLI process (`ru_maxrss` from `os.wait4` of that "
        "child, spawned by a small launcher process so that the benchmark's own memory is "
        "not counted), and the size of the database the session leaves (main file plus WAL).",
        "",
        *table(
            [
                row(
                    "peak RSS, CLI ingest of the session",
                    stat((float(c.max_rss_bytes) for c in results.cli), False),
                    mib,
                ),
                row(
                    "peak RSS, CLI ingest of the reference data only",
                    stat((float(c.max_rss_bytes) for c in results.startup), False),
                    mib,
                ),
                row(
                    "peak RSS, `posledger --help`",
                    stat((float(c.max_rss_bytes) for c in results.help), False),
                    mib,
                ),
                ["database size after the session", mib(db_size), "", "", "", ""],
                ["database bytes per fill", n0(db_size / fills), "", "", "", ""],
            ],
            hdr,
        ),
        "",
        *servers_report.report_sections(bench, hdr),
    ]
    return "\n".join(out)


def machine_context(workdir: Path) -> dict[str, Any]:
    model, hypervisor = cpu_model()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cores = f"{os.cpu_count()} logical" + (
        f" ({affinity} usable by this process)" if affinity not in (None, os.cpu_count()) else ""
    )
    if hypervisor:
        virt = "virtual machine (the CPU reports the `hypervisor` flag)"
        noise = (
            "**Timing noise:** this is a virtual machine on shared hardware: other tenants, "
            "CPU steal and a virtual disk make timings noisy from run to run; read the spread "
            "between the median, the best and the individual runs before comparing numbers."
        )
    else:
        virt = "no `hypervisor` flag reported"
        noise = (
            "Timings are wall-clock on a machine that may be running other work: read the "
            "spread between the median, the best and the individual runs."
        )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model,
        "cores": cores,
        "memory": mem_total(),
        "virt": virt,
        "noise": noise,
        "load": f"{os.getloadavg()[0]:.2f}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "posledger": f"{posledger.__version__}, git {git_revision()}",
        "fs": filesystem(workdir),
        "disk_free": f"{shutil.disk_usage(workdir).free / 1024**3:,.1f} GiB",
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/ingest.py",
        description="Measure posledger ingestion; print the report and write it to a file.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and one repetition (seconds)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="where to write the Markdown report (default: docs/benchmarks.md)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help=(
            "directory under which the database files go (a fresh subdirectory is created and "
            "removed). Default: the repository's own directory, i.e. its disk: /tmp may be a "
            "RAM-backed tmpfs where fsync is free and durable numbers would mean nothing"
        ),
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help=f"repetitions; the report gives median and best (default {FULL.repeat}, quick 1)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark directory")
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--skip-servers",
        action="store_true",
        help="SQLite only: leave out PostgreSQL and MariaDB (sections 6-9)",
    )
    group.add_argument(
        "--require-servers",
        action="store_true",
        help="fail when PostgreSQL or MariaDB does not answer (default: skip it with a note)",
    )
    for kind, flag in (("postgresql", "--postgres-url"), ("mariadb", "--mariadb-url")):
        parser.add_argument(
            flag,
            metavar="URL",
            default=None,
            help=(
                f"the {servers.LABEL[kind]} server and database beside which fresh "
                f"{'schemas' if kind == 'postgresql' else 'databases'} are made "
                f"(default: ${servers.URL_ENV[kind]}, else {servers.DEFAULT_URLS[kind]})"
            ),
        )
    args = parser.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def command_line(argv: Sequence[str] | None) -> str:
    args = list(sys.argv[1:] if argv is None else argv)
    return shlex.join([".venv/bin/python", "bench/ingest.py", *args])


@contextmanager
def bench_directory(parent: Path | None, keep: bool) -> Iterator[Path]:
    """A fresh directory for the database files, on the repository's disk by default."""
    base = (parent or REPO).resolve()
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=".bench-tmp-", dir=base))
    try:
        yield path
    finally:
        if keep:
            say(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.repeat is not None:
        sizes = dataclasses.replace(sizes, repeat=args.repeat)
    started = time.perf_counter()
    candidates = servers.servers_from(args)
    skipped = servers.probe_servers(candidates, args.skip_servers, args.require_servers)
    with bench_directory(args.dir, args.keep) as workdir:
        say(f"benchmark directory: {workdir}")
        context = machine_context(workdir)
        context["calibration"] = [calibrate(workdir, args.quick)]
        bench = servers.ServerBench(candidates, skipped, sizes, workdir)
        try:
            results, workload = run(sizes, workdir, bench)
        finally:
            bench.close()
        context["load"] += f" / {os.getloadavg()[0]:.2f}"
        context["calibration"].append(calibrate(workdir, args.quick))
    elapsed = time.perf_counter() - started
    text = report(results, workload, sizes, context, command_line(argv), elapsed, bench)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    say(f"wrote {args.output} ({elapsed:,.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
