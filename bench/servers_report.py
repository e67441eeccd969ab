"""The report's server sections (6-9) and summary rows, from bench/servers.py's results."""

from __future__ import annotations

import statistics
from collections.abc import Callable

from common import Latency, Stat, met, mib, ms, n0, pct, row, secs, stat, table
from servers import (
    BATCHED_SIZE,
    COUNTED_FILLS,
    DEFAULT_URLS,
    DRIVER,
    GOAL_SERVER_BATCHED_FPS,
    GOAL_SERVER_RATIO,
    OPEN_KEY,
    PLACEMENTS,
    WRITER_BATCHES,
    Requests,
    ServerBench,
    ServerResults,
)

LOOPBACK = (None, "", "127.0.0.1", "localhost", "::1")
HEADINGS = (
    "## 7. Durable per-fill ingestion on the servers",
    "## 8. Batched ingestion on the servers",
    "## 9. Concurrent writers on the servers",
)

# -- the report ---------------------------------------------------------------------------


def _ratio(result: ServerResults) -> Stat:
    return stat(d.rate / b.rate for d, b in zip(result.durable, result.bare, strict=True))


def _cli(result: ServerResults, fills: int) -> Stat:
    return stat(fills / c.seconds for c in result.cli)


def summary_rows(bench: ServerBench) -> list[list[str]]:
    """Rows of the report's summary table: the servers' goals."""
    rows = []
    for result in bench.results:
        driver = DRIVER[result.kind]
        ratio_label = f"{result.label}: durable per-fill ingestion / bare {driver} transaction"
        batched_label = f"{result.label}: batched ingestion through the CLI"
        goal = GOAL_SERVER_BATCHED_FPS.get(result.kind)
        batched_goal = f"≥ {n0(goal)} fills/s" if goal else "(no goal)"
        ratio_goal = f"≥ {pct(GOAL_SERVER_RATIO)}"
        if result.skipped is not None:
            rows.append([ratio_label, "skipped (section 6)", ratio_goal, "n/a"])
            rows.append([batched_label, "skipped (section 6)", batched_goal, "n/a" if goal else ""])
            continue
        ratio = _ratio(result)
        cli = _cli(result, bench.session.fills)
        rows.append(
            [ratio_label, pct(ratio.median), ratio_goal, met(ratio.median >= GOAL_SERVER_RATIO)]
        )
        rows.append(
            [
                batched_label,
                f"{n0(cli.median)} fills/s",
                batched_goal,
                met(cli.median >= goal) if goal else "",
            ]
        )
    return rows


def _latency_rows(name: str, runs: list[Latency]) -> list[list[str]]:
    return [
        row(f"{name} latency p50", stat((x.p50_ms for x in runs), False), ms),
        row(f"{name} latency p99", stat((x.p99_ms for x in runs), False), ms),
        row(f"{name} latency max", stat((x.max_ms for x in runs), False), ms),
    ]


def _skipped(bench: ServerBench) -> list[str]:
    out = []
    for result in bench.results:
        if result.skipped is not None:
            out += [f"**{result.label}: not measured.** {result.skipped}.", ""]
    return out


def _requests_table(
    bench: ServerBench, columns: list[tuple[str, Callable[[Requests], dict[str, float]]]]
) -> list[str]:
    """Statements by label (rows) for each server and path (columns)."""
    measured = [r for r in bench.results if r.requests is not None]
    if not measured:
        return []
    labels: list[str] = []
    header = ["statement"]
    cells: list[dict[str, float]] = []
    for result in measured:
        assert result.requests is not None
        for title, pick in columns:
            counts = pick(result.requests)
            header.append(f"{result.label}: {title}")
            cells.append(counts)
            labels += [name for name in counts if name not in labels]

    def show(value: float | None) -> str:
        return "" if not value else f"{value:.2f}".rstrip("0").rstrip(".")

    rows = [[f"`{name}`", *(show(c.get(name)) for c in cells)] for name in labels]
    rows.append(["**total**", *(f"**{show(sum(c.values())) or '0'}**" for c in cells)])
    return table(rows, header)


def settings_section(bench: ServerBench) -> list[str]:
    local = all(r.server.url.host in LOOPBACK for r in bench.active)
    where = (
        "on this machine: the server processes share its cores and disk with the benchmark "
        "and with the posledger processes it starts, so on a small machine client and server "
        "CPU time add up"
        if local
        else "(at least one of them on another host: see the URLs below)"
    )
    out = [
        "## 6. Database servers",
        "",
        "posledger on PostgreSQL (psycopg 3) and MariaDB (PyMySQL), on servers reached over "
        f"TCP {where}. Every measurement runs in a fresh PostgreSQL schema or "
        "MariaDB database (`plbench_…`), dropped afterwards. Server URLs come from "
        "`--postgres-url` / `--mariadb-url`, else `$POSLEDGER_BENCH_POSTGRES_URL` / "
        "`$POSLEDGER_BENCH_MARIADB_URL`, else the local defaults "
        f"`{DEFAULT_URLS['postgresql']}` and `{DEFAULT_URLS['mariadb']}`. A server that does "
        "not answer is skipped with the reason below (`--require-servers` makes that an "
        "error; `--skip-servers` skips both).",
        "",
        *_skipped(bench),
    ]
    for result in bench.results:
        if result.skipped is not None:
            continue
        out += [
            f"### {result.label} at `{result.server.shown}`",
            "",
            *table(result.settings, ["setting", "value", "meaning here"]),
            "",
        ]
        out += [f"**Warning:** {w}" for w in result.warnings]
        if result.warnings:
            out.append("")
    return out


def durable_section(bench: ServerBench, hdr: list[str]) -> list[str]:
    sizes = bench.sizes
    out = [
        HEADINGS[0],
        "",
        f"As section 2 on each server: a fresh schema/database per repetition, the one-slot "
        f"reference data registered, then {n0(sizes.server_durable)} fills of the one-slot "
        "workload, each in its own transaction: `ledger.ingest(lines, batch_size=1, "
        "on_commit=...)`, a fill's latency being the time from the previous commit to its "
        "own. Afterwards `SELECT count(*) FROM fills` must equal the number of fills.",
        "",
        f"The bare transaction, measured in the same repetition on the same server: "
        f"{n0(sizes.server_durable)} transactions with the driver alone (psycopg, "
        "`autocommit=False`, so psycopg sends `BEGIN` before the first statement; PyMySQL "
        "with `autocommit(False)`, `conn.begin()`, session isolation READ COMMITTED: the "
        "way posledger's writer drives each driver) on four tables shaped like posledger's "
        "(`streams`, `journal` with a unique (stream, version), `fills` with primary key "
        "(account, exec_id), `positions` with primary key (account, instrument, strategy, "
        "position_side); amounts `NUMERIC(38, 18)` passed as `Decimal`). Each transaction: "
        "`BEGIN`; `SELECT version FROM streams WHERE stream = %s FOR UPDATE`; `INSERT` one "
        "journal row (the fill's JSONL line as input, a JSON effects text shaped like "
        "posledger's, sequence = version + 1); `INSERT` one fills row; upsert one positions "
        "row (PostgreSQL `INSERT ... ON CONFLICT (...) DO UPDATE`, MariaDB `INSERT ... ON "
        "DUPLICATE KEY UPDATE`); `UPDATE streams SET version = %s`; `COMMIT`. Parameters "
        "are built before the clock starts, each transaction is timed. The ratio pairs each "
        "repetition's posledger rate with the bare rate measured just before it.",
        "",
        *_skipped(bench),
    ]
    for result in bench.results:
        if result.skipped is not None:
            continue
        ratio = _ratio(result)
        ok = ratio.median >= GOAL_SERVER_RATIO
        driver = DRIVER[result.kind]
        out += [
            f"### {result.label}",
            "",
            *table(
                [
                    row(
                        "`ingest(batch_size=1)` fills/s",
                        stat(x.rate for x in result.durable),
                        n0,
                        f"≥ {pct(GOAL_SERVER_RATIO)} of bare",
                        ok,
                    ),
                    *_latency_rows("`ingest(batch_size=1)`", result.durable),
                    row(f"bare {driver} transactions/s", stat(x.rate for x in result.bare), n0),
                    *_latency_rows(f"bare {driver} transaction", result.bare),
                    row(
                        f"durable `ingest(batch_size=1)` / bare {driver}",
                        ratio,
                        pct,
                        f"≥ {pct(GOAL_SERVER_RATIO)}",
                        ok,
                    ),
                ],
                hdr,
            ),
            "",
        ]
    counted = [r for r in bench.results if r.requests is not None]
    if counted:
        sizes_text = "; ".join(
            f"{r.label} {r.requests.journal_bytes[0]:.0f} and {r.requests.journal_bytes[1]:.0f}"
            for r in counted
            if r.requests is not None
        )
        out += [
            "### Requests per fill",
            "",
            f"Counted in an untimed pass on a fresh schema/database: {COUNTED_FILLS} fills "
            "after 10 of warm-up (caches filled, statements prepared), and "
            f"{COUNTED_FILLS} bare transactions. A request is one statement, `BEGIN` or "
            "`COMMIT` sent by the driver, counted in this process by wrapping psycopg's "
            "`Cursor.execute`/`executemany` and `Connection.commit`/`rollback` (plus the "
            "`BEGIN` psycopg sends before a transaction's first statement) and PyMySQL's "
            "`Connection._execute_command`; each one waits for the server's answer. "
            "Fractions are statements that only some fills need (a trade opening or "
            "closing). posledger's journal rows average (input, effects) bytes: "
            f"{sizes_text}.",
            "",
            *_requests_table(
                bench,
                [("posledger per fill", lambda q: q.durable), ("bare per tx", lambda q: q.bare)],
            ),
            "",
        ]
    return out


def batched_section(bench: ServerBench, hdr: list[str]) -> list[str]:
    session = bench.session
    fills, lines = session.fills, len(session.lines)
    out = [
        HEADINGS[1],
        "",
        f"The session of section 4 ({n0(lines)} lines, {n0(fills)} fills) on each server. "
        f"CLI: `posledger --db URL ingest FILE --batch-size {BATCHED_SIZE} --quiet --json` as "
        "a subprocess on an empty schema/database, timed from spawn to exit (interpreter "
        "start-up, imports and schema creation included, as in section 4). In process: "
        f"`ledger.ingest(open(FILE), batch_size={BATCHED_SIZE})` on a freshly opened empty "
        "schema, timing only the ingest call. Start-up: the same CLI command on a file "
        "holding only the reference data (start-up, schema creation on the server, "
        f"{session.refdata} records). After each run `SELECT count(*) FROM fills` must "
        "equal the session's fills.",
        "",
        *_skipped(bench),
    ]
    for result in bench.results:
        if result.skipped is not None:
            continue
        goal = GOAL_SERVER_BATCHED_FPS.get(result.kind)
        cli = _cli(result, fills)
        out += [
            f"### {result.label}",
            "",
            *table(
                [
                    row(
                        "CLI fills/s (end to end)",
                        cli,
                        n0,
                        f"≥ {n0(goal)}" if goal else "(no goal)",
                        (cli.median >= goal) if goal else None,
                    ),
                    row("CLI lines/s", stat(lines / c.seconds for c in result.cli), n0),
                    row("CLI wall time", stat((c.seconds for c in result.cli), False), secs),
                    row(
                        "in-process fills/s",
                        stat(fills / s for s in result.inproc),
                        n0,
                        "(reference)",
                    ),
                    row("in-process ingest time", stat(result.inproc, False), secs),
                    startup_row(result),
                    row(
                        "peak RSS, CLI ingest of the session",
                        stat((float(c.max_rss_bytes) for c in result.cli), False),
                        mib,
                    ),
                ],
                hdr,
            ),
            "",
        ]
    counted = [r.requests for r in bench.results if r.requests is not None]
    if counted:
        first = counted[0]
        out += [
            f"### Requests per batch of {n0(BATCHED_SIZE)} lines",
            "",
            f"Counted as in section 7, in process: the session's first {n0(BATCHED_SIZE)} "
            "lines (reference data, first orders and fills) are ingested uncounted, then the "
            f"next {n0(first.batched_lines)} lines ({n0(first.batched_fills)} fills, "
            f"{first.batches} transaction(s) of `ingest(batch_size={BATCHED_SIZE})`) are "
            "counted, here per transaction. psycopg sends the rows of one `executemany` in "
            "one pipelined round trip; PyMySQL sends an `INSERT` executemany as multi-row "
            "INSERTs but any other executemany (the `UPDATE`s) as one statement per row, each "
            "counted here.",
            "",
            *_requests_table(bench, [("per batch", lambda q: q.batched)]),
            "",
        ]
    return out


def startup_row(result: ServerResults) -> list[str]:
    name = "CLI start-up + schema creation + reference data"
    if not result.startup:
        return [name, "not measured in quick mode", "", "", "", ""]
    return row(name, stat((c.seconds for c in result.startup), False), secs)


def writers_section(bench: ServerBench, hdr: list[str]) -> list[str]:
    sizes = bench.sizes
    out = [
        HEADINGS[2],
        "",
        f"{counts(sizes.writers)} `posledger ingest` processes at once on one "
        "schema/database, with "
        f"per-fill transactions (`--batch-size 1`, {n0(sizes.writer_single)} fills per "
        f"writer) and with batches (`--batch-size 100`, {n0(sizes.writer_batched)} fills per "
        "writer), each writer on its own instrument or all writers on one instrument (one "
        "account, a strategy per writer: each writer moves its own slot, so the data is "
        "valid either way; writers on one instrument take turns on its stream lock). Each "
        "configuration uses instruments of its own on the same schema, registered "
        "beforehand. Each writer is a fresh process forked by a helper (`bench/writers.py`) "
        "that has imported posledger's CLI, running the CLI's `main()` with argv `--db URL "
        "ingest FILE --batch-size N --quiet --json`, which is what the `posledger` console "
        "script runs; the writers wait on one pipe and start together, so interpreter "
        "start-up (section 4) is left out and opening the database is in. Total fills/s: "
        "all writers' fills over the time from the start signal to the last writer's exit. "
        "Per writer: each writer's fills over its own run, the median and the slowest of "
        "a run's writers (median over repetitions). Every writer must exit 0 having applied "
        "all its fills, and `SELECT count(*) FROM fills` must then equal every fill written "
        "so far.",
        "",
        *_skipped(bench),
    ]
    hdr = [
        "transactions",
        "writers",
        "instruments",
        "total fills/s, median",
        "best",
        hdr[3],
        "per writer, median",
        "slowest writer, median",
    ]
    for result in bench.results:
        if result.skipped is not None:
            continue
        rows = []
        for batch in WRITER_BATCHES:
            for placement in PLACEMENTS:
                for n in bench.sizes.writers:
                    runs = result.writers.get((batch, placement, n), [])
                    if not runs:
                        continue
                    total = stat(r.rate for r in runs)
                    each = " / ".join(n0(r.rate) for r in runs)
                    per = stat(statistics.median(r.per_process) for r in runs)
                    slowest = stat(min(r.per_process) for r in runs)
                    rows.append(
                        [
                            f"`--batch-size {batch}`",
                            str(n),
                            "one" if placement == "shared" else "one each",
                            n0(total.median),
                            n0(total.best),
                            each,
                            n0(per.median),
                            n0(slowest.median),
                        ]
                    )
        opens = result.writers.get(OPEN_KEY, [])
        out += [f"### {result.label}", "", *table(rows, hdr), ""]
        if opens:
            cost = stat((r.seconds for r in opens), False)
            out += [
                "One writer on an empty file (the CLI opening the database, checking its "
                f"schema and closing, no fills): {secs(cost.median)} (median; each run: "
                f"{' / '.join(secs(v) for v in cost.values)}). Every writer above pays it "
                "inside its time.",
                "",
            ]
    return out


def counts(values: tuple[int, ...]) -> str:
    """1, 2 and 8."""
    shown = [str(v) for v in values]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def report_sections(bench: ServerBench, hdr: list[str]) -> list[str]:
    if not bench.active:
        out = settings_section(bench)
        for heading in HEADINGS:
            out += [heading, "", "Not measured: no database server (section 6).", ""]
        return out
    return [
        *settings_section(bench),
        *durable_section(bench, hdr),
        *batched_section(bench, hdr),
        *writers_section(bench, hdr),
    ]
