"""Ingestion benchmarks: prints the numbers and writes them to docs/benchmarks.md.

Run from the repository root::

    .venv/bin/python bench/ingest.py            # or: make bench
    .venv/bin/python bench/ingest.py --quick    # small sizes, seconds (used by the smoke test)

One run measures, interleaved so that every repetition sees the same machine conditions:

1. the pure domain on one slot (``decide_fill`` + ``Book.apply`` on prebuilt ``Fill`` values);
2. durable per-fill ingestion on SQLite (``Ledger.ingest(..., batch_size=1)``, and one
   ``Ledger.apply_fill`` call per fill), with per-fill latency percentiles;
3. a bare sqlite3 transaction (BEGIN IMMEDIATE, INSERT, UPSERT, COMMIT) on the same disk
   with the same pragmas: the floor durable ingestion is compared with;
4. batched JSONL ingestion through the CLI (a subprocess, start-up included) and in process;
5. peak RSS of the CLI ingest process and the size of the database it writes.

Timings are wall-clock (``time.perf_counter``) with the garbage collector left on, as in
production. Numbers in the report come only from this script; nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import random
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy

import posledger
from posledger.domain.book import Book
from posledger.domain.decide import decide_fill
from posledger.domain.enums import Kind, Mode, PositionMode, Side
from posledger.domain.events import Rejection
from posledger.domain.inputs import Fill
from posledger.domain.numbers import exact
from posledger.domain.refdata import Account, Instrument

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO / "docs" / "benchmarks.md"

# Goals from the issue. The report evaluates each against the median of the repetitions.
GOAL_DOMAIN_FPS = 100_000
GOAL_DURABLE_RATIO = 0.5
GOAL_DURABLE_P99_MS = 2.0
GOAL_BATCHED_FPS = 30_000


@dataclass(frozen=True)
class Sizes:
    domain: int
    durable: int
    bare: int
    batched: int
    repeat: int


FULL = Sizes(domain=200_000, durable=5_000, bare=5_000, batched=50_000, repeat=3)
QUICK = Sizes(domain=5_000, durable=200, bare=200, batched=2_000, repeat=1)


# -- small helpers ------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


_START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
_START_NS = int(_START.timestamp()) * 1_000_000_000


def iso(ns: int) -> str:
    """ISO 8601 UTC text with milliseconds for nanoseconds since the epoch (ms-aligned)."""
    when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def dec(value: Decimal) -> str:
    return format(value, "f")


def jsonl(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"))


# -- workloads ----------------------------------------------------------------------------

ACCOUNT = "SIM-4821"
INSTRUMENT = "MESH6.CME"
SLOT_STRATEGY = "mes-orb-01"
TICK = Decimal("0.25")
MES_COMMISSION = Decimal("0.62")

REFDATA_ONE_SLOT: list[dict[str, Any]] = [
    {
        "type": "account",
        "account": ACCOUNT,
        "venue": "CME",
        "mode": "SIM",
        "position_mode": "netting",
    },
    {
        "type": "instrument",
        "instrument": INSTRUMENT,
        "kind": "future",
        "multiplier": "5",
        "tick_size": "0.25",
        "lot_size": "1",
        "quote_currency": "USD",
        "settlement_currency": "USD",
    },
    {"type": "strategy", "strategy": SLOT_STRATEGY},
]


@dataclass(frozen=True, slots=True)
class SlotFill:
    """One fill of the one-slot workload, before it becomes a Fill, a JSONL line or kwargs."""

    exec_id: str
    side: Side
    quantity: int
    price: Decimal
    ts: int

    @property
    def commission(self) -> Decimal:
        return MES_COMMISSION * self.quantity


def one_slot_fills(count: int, seed: int, prefix: str) -> list[SlotFill]:
    """Fills for one netting slot of a future (multiplier 5).

    Each fill moves the slot to a random target position in -5..5 other than where it is:
    on the same side or flat four times in five, anywhere (a flip when the sign changes)
    otherwise. So the slot opens, increases, reduces, closes and sometimes flips, and buys
    and sells mostly alternate. Prices walk in ticks of 0.25 around 6850.
    """
    rng = random.Random(seed)
    targets = range(-5, 6)
    held = 0
    ticks = 27_400
    ts = _START_NS
    out: list[SlotFill] = []
    for n in range(count):
        same_side = held and rng.random() < 0.8
        target = rng.choice([t for t in targets if t != held and (not same_side or t * held >= 0)])
        side = Side.BUY if target > held else Side.SELL
        quantity = abs(target - held)
        held = target
        ticks = max(4, ticks + rng.randint(-4, 4))
        ts += rng.randint(1, 2_000) * 1_000_000
        out.append(SlotFill(f"{prefix}-{n}", side, quantity, ticks * TICK, ts))
    return out


def as_fill(f: SlotFill) -> Fill:
    return Fill(
        exec_id=f.exec_id,
        account=ACCOUNT,
        instrument=INSTRUMENT,
        side=f.side,
        quantity=Decimal(f.quantity),
        price=f.price,
        ts=f.ts,
        strategy=SLOT_STRATEGY,
        commission=f.commission,
        commission_currency="USD",
    )


def as_fields(f: SlotFill) -> dict[str, Any]:
    return {
        "exec_id": f.exec_id,
        "account": ACCOUNT,
        "instrument": INSTRUMENT,
        "side": str(f.side),
        "quantity": str(f.quantity),
        "price": dec(f.price),
        "ts": iso(f.ts),
        "strategy": SLOT_STRATEGY,
        "commission": dec(f.commission),
        "commission_currency": "USD",
    }


def as_line(f: SlotFill) -> str:
    return jsonl({"type": "fill", **as_fields(f)})


@dataclass
class _Instr:
    name: str
    venue_prefix: str
    account: str
    tick: Decimal
    lot: Decimal
    lots: tuple[int, int]
    price: Decimal
    currency: str
    per_contract: Decimal | None  # futures: flat per contract; else a rate of notional
    rate: Decimal = Decimal("0.0004")


@dataclass
class _Strat:
    name: str
    instr: _Instr
    hedge_side: str | None  # LONG/SHORT on the hedge account, None on the netting one
    held: Decimal = Decimal(0)


@dataclass
class Session:
    lines: list[str]
    fills: int
    orders: int
    marks: int
    refdata: int
    strategies: int


def realistic_session(fills: int, seed: int) -> Session:
    """A JSONL trading session: two accounts (netting CME, hedge Binance), three instruments,
    six strategies; every fill belongs to a registered order with an intent (entry, exit,
    take_profit, stop_loss), orders fill in one to three parts, commissions on every fill,
    a mark every 50 fills. Slots open, increase, reduce, close and (netting) flip."""
    rng = random.Random(seed)
    refdata: list[dict[str, Any]] = [
        REFDATA_ONE_SLOT[0],
        {
            "type": "account",
            "account": "BN-UM-01",
            "venue": "BINANCE",
            "mode": "LIVE",
            "position_mode": "hedge",
        },
        REFDATA_ONE_SLOT[1],
        {
            "type": "instrument",
            "instrument": "MNQH6.CME",
            "kind": "future",
            "multiplier": "2",
            "tick_size": "0.25",
            "lot_size": "1",
            "quote_currency": "USD",
            "settlement_currency": "USD",
        },
        {
            "type": "instrument",
            "instrument": "BTCUSDT-PERP.BINANCE",
            "kind": "perpetual",
            "multiplier": "1",
            "tick_size": "0.10",
            "lot_size": "0.001",
            "base_currency": "BTC",
            "quote_currency": "USDT",
            "settlement_currency": "USDT",
        },
    ]
    mes = _Instr(
        INSTRUMENT, "cme", ACCOUNT, TICK, Decimal(1), (1, 4), Decimal("6850"), "USD", MES_COMMISSION
    )
    mnq = _Instr(
        "MNQH6.CME",
        "cme",
        ACCOUNT,
        TICK,
        Decimal(1),
        (1, 6),
        Decimal("24100"),
        "USD",
        Decimal("0.62"),
    )
    btc = _Instr(
        "BTCUSDT-PERP.BINANCE",
        "bn",
        "BN-UM-01",
        Decimal("0.1"),
        Decimal("0.001"),
        (1, 50),
        Decimal("91250"),
        "USDT",
        None,
    )
    strategies = [
        _Strat("mes-orb-01", mes, None),
        _Strat("mes-mr-02", mes, None),
        _Strat("mnq-trend-01", mnq, None),
        _Strat("btc-trend", btc, "LONG"),
        _Strat("btc-fade", btc, "SHORT"),
        _Strat("btc-scalp", btc, "LONG"),
    ]
    for st in strategies:
        refdata.append({"type": "strategy", "strategy": st.name})
    lines = [jsonl(r) for r in refdata]
    ts = _START_NS
    counts = Counter[str]()
    exits = ("exit", "take_profit", "stop_loss")

    def lots(instr: _Instr) -> Decimal:
        return rng.randint(*instr.lots) * instr.lot

    while counts["fill"] < fills:
        st = rng.choice(strategies)
        instr = st.instr
        held = st.held
        long_side = "BUY" if st.hedge_side in (None, "LONG") else "SELL"
        if not held:
            side = long_side if st.hedge_side else rng.choice(("BUY", "SELL"))
            quantity, intent = lots(instr), "entry"
        else:
            grow = "BUY" if held > 0 else "SELL"
            shrink = "SELL" if held > 0 else "BUY"
            r = rng.random()
            if r < 0.25:
                side, quantity, intent = grow, lots(instr), "entry"
            elif r < 0.35 and st.hedge_side is None:
                side, quantity, intent = shrink, abs(held) + lots(instr), "entry"  # flip
            elif r < 0.55 and abs(held) > instr.lot:
                part = rng.randint(1, int(abs(held) / instr.lot) - 1) * instr.lot
                side, quantity, intent = shrink, part, rng.choice(exits)
            else:
                side, quantity, intent = shrink, abs(held), rng.choice(exits)
        counts["order"] += 1
        cid = f"{st.name}-{counts['order']}"
        ts += rng.randint(1, 3_000) * 1_000_000
        order: dict[str, Any] = {
            "type": "order",
            "client_order_id": cid,
            "account": instr.account,
            "strategy": st.name,
            "instrument": instr.name,
            "side": side,
            "quantity": dec(quantity),
            "intent": intent,
        }
        if st.hedge_side:
            order["position_side"] = st.hedge_side
        order["ts"] = iso(ts)
        lines.append(jsonl(order))
        parts = min(rng.randint(1, 3), int(quantity / instr.lot))
        cuts = sorted(rng.sample(range(1, int(quantity / instr.lot)), parts - 1))
        bounds = [0, *cuts, int(quantity / instr.lot)]
        for low, high in itertools.pairwise(bounds):
            size = (high - low) * instr.lot
            instr.price = max(instr.tick, instr.price + rng.randint(-6, 6) * instr.tick)
            ts += rng.randint(1, 900) * 1_000_000
            if instr.per_contract is not None:
                commission = instr.per_contract * size
            else:
                commission = (instr.price * size * instr.rate).quantize(Decimal("0.00000001"))
            counts["fill"] += 1
            lines.append(
                jsonl(
                    {
                        "type": "fill",
                        "exec_id": f"{instr.venue_prefix}-{counts['fill']}",
                        "account": instr.account,
                        "instrument": instr.name,
                        "side": side,
                        "quantity": dec(size),
                        "price": dec(instr.price),
                        "ts": iso(ts),
                        "client_order_id": cid,
                        "commission": dec(commission),
                        "commission_currency": instr.currency,
                    }
                )
            )
            st.held += size if side == "BUY" else -size
            if counts["fill"] % 50 == 0:
                counts["mark"] += 1
                marked = rng.choice((mes, mnq, btc))
                lines.append(
                    jsonl(
                        {
                            "type": "mark",
                            "instrument": marked.name,
                            "price": dec(marked.price),
                            "ts": iso(ts),
                        }
                    )
                )
            if counts["fill"] >= fills:
                break
    return Session(
        lines, counts["fill"], counts["order"], counts["mark"], len(refdata), len(strategies)
    )


# -- measurements -------------------------------------------------------------------------


@dataclass
class Latency:
    rate: float
    p50_ms: float
    p99_ms: float
    max_ms: float


def latency_of(count: int, total_s: float, samples_ns: list[int]) -> Latency:
    ordered = sorted(samples_ns)
    return Latency(
        count / total_s,
        percentile(ordered, 50) / 1e6,
        percentile(ordered, 99) / 1e6,
        ordered[-1] / 1e6 if ordered else math.nan,
    )


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
    ledger = open_fresh(path)
    samples: list[int] = []
    clock = time.perf_counter_ns
    last = 0

    def on_commit(_batch: object) -> None:
        nonlocal last
        now = clock()
        samples.append(now - last)
        last = now

    try:
        start = time.perf_counter()
        last = clock()
        report = ledger.ingest(lines, batch_size=1, on_commit=on_commit)
        elapsed = time.perf_counter() - start
    finally:
        ledger.close()
    remove_db(path)
    if report.applied != len(lines):
        raise SystemExit(f"durable benchmark: {report.rejected} rejected: {report.rejections[:3]}")
    return latency_of(len(lines), elapsed, samples)


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


def console_script() -> list[str]:
    script = Path(sys.executable).parent / "posledger"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from posledger.entrypoints.cli import main; main()"]


@dataclass
class CliRun:
    seconds: float
    max_rss_bytes: int
    db_bytes: int
    summary: dict[str, Any]


# Spawns the CLI and reports its wall time and peak RSS. It runs as a separate small process
# because a forked child's ru_maxrss starts from its parent's RSS at fork time (Linux keeps
# the pre-exec high-water mark): spawned straight from this benchmark, which holds the
# workloads in memory, the CLI would be charged for them.
LAUNCHER = """
import json, os, subprocess, sys, time
a = json.loads(sys.argv[1])
with open(a["out"], "wb") as out, open(a["err"], "wb") as err:
    start = time.perf_counter()
    proc = subprocess.Popen(a["cmd"], stdout=out, stderr=err, env=a["env"], cwd=a["cwd"])
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
proc.returncode = code = os.waitstatus_to_exitcode(status)
print(json.dumps({"seconds": seconds, "code": code, "maxrss": usage.ru_maxrss}))
"""


def run_child(args: list[str], workdir: Path) -> tuple[float, int, str]:
    """Run the posledger CLI with ``args``: (seconds from spawn to exit, peak RSS in bytes
    from os.wait4's rusage of that very child, stdout). Exits on a non-zero status."""
    cmd = [*console_script(), *args]
    env = {k: v for k, v in os.environ.items() if k != "POSLEDGER_DB"}
    out_path, err_path = workdir / "cli.out", workdir / "cli.err"
    spec = {"cmd": cmd, "env": env, "cwd": str(workdir), "out": str(out_path)}
    spec["err"] = str(err_path)
    launched = subprocess.run(
        [sys.executable, "-I", "-S", "-c", LAUNCHER, json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if launched.returncode != 0:
        raise SystemExit(f"launcher failed: {launched.stderr[-4000:]}")
    result = json.loads(launched.stdout)
    output = out_path.read_text()
    if result["code"] != 0:
        errors = err_path.read_text()
        raise SystemExit(f"{shlex.join(cmd)} exited {result['code']}: {output}{errors}"[-4000:])
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return float(result["seconds"]), int(result["maxrss"]) * scale, output


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


def filesystem(path: Path) -> str:
    """The file system type and device of the mount holding ``path`` (Linux)."""
    real = str(path.resolve())
    best = ("", "unknown", "unknown")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, fstype, *_ = line.split()
            inside = real == mount or real.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) > len(best[0]):
                best = (mount, fstype, device)
    except OSError:
        return "unknown"
    return f"{best[1]} on {best[2]} (mounted at {best[0]})"


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


def run(sizes: Sizes, workdir: Path) -> tuple[Results, dict[str, Any]]:
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
    return results, workload


# -- the report ---------------------------------------------------------------------------


def n0(value: float) -> str:
    return f"{value:,.0f}"


def ms(value: float) -> str:
    return f"{value:.3f} ms"


def mib(value: float) -> str:
    return f"{value / 1024 / 1024:,.1f} MiB"


def secs(value: float) -> str:
    return f"{value:.2f} s"


def pct(value: float) -> str:
    return f"{value:.0%}"


def met(ok: bool) -> str:
    return "yes" if ok else "**no**"


@dataclass
class Stat:
    """The values of the repetitions; ``high`` says whether bigger is better."""

    values: list[float]
    high: bool = True

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def best(self) -> float:
        return max(self.values) if self.high else min(self.values)


def stat(values: Iterator[float] | list[float], high: bool = True) -> Stat:
    return Stat(list(values), high)


def row(
    label: str, s: Stat, show: Callable[[float], str], goal: str = "", ok: bool | None = None
) -> list[str]:
    """A table row: label, median, best, every run, goal, whether the median meets it."""
    each = " / ".join(show(v) for v in s.values)
    return [label, show(s.median), show(s.best), each, goal, "" if ok is None else met(ok)]


def table(rows: list[list[str]], header: list[str]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cells) + " |" for cells in rows]
    return out


def report(
    results: Results,
    workload: dict[str, Any],
    sizes: Sizes,
    context: dict[str, Any],
    command: str,
    elapsed: float,
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
                    "Durable per-fill ingestion / bare sqlite3 transaction",
                    pct(ratio.median),
                    f"≥ {pct(GOAL_DURABLE_RATIO)}",
                    met(ratio_ok),
                ],
                ["Durable per-fill ingestion p99 latency", ms(p99.median), p99_goal, met(p99_ok)],
                [
                    "Batched JSONL ingestion through the CLI",
                    f"{n0(cli.median)} fills/s",
                    f"≥ {n0(GOAL_BATCHED_FPS)} fills/s",
                    met(batched_ok),
                ],
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
        sizes = Sizes(sizes.domain, sizes.durable, sizes.bare, sizes.batched, args.repeat)
    started = time.perf_counter()
    with bench_directory(args.dir, args.keep) as workdir:
        say(f"benchmark directory: {workdir}")
        context = machine_context(workdir)
        context["calibration"] = [calibrate(workdir, args.quick)]
        results, workload = run(sizes, workdir)
        context["load"] += f" / {os.getloadavg()[0]:.2f}"
        context["calibration"].append(calibrate(workdir, args.quick))
    elapsed = time.perf_counter() - started
    text = report(results, workload, sizes, context, command_line(argv), elapsed)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    say(f"wrote {args.output} ({elapsed:,.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
