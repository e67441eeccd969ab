"""Eight ``posledger ingest`` processes writing one instrument of a server database at once.

The input (see :mod:`tests.e2e.concurrency_data`) is laid out so that the final state
does not depend on how the processes interleave, yet all of them append to the same
journal stream and contend for its lock; exact duplicates are sprinkled within and across
processes, and ``shared`` fills are sent by several processes at the same moment. The
result must equal one process ingesting the same files one after the other.

Reproduce a failure with ``POSLEDGER_CONCURRENCY_SEED=<seed printed by the test>``; the
input files stay in the test's temporary directory (printed too).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import time
from collections import Counter, defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from posledger import open_ledger
from tests.databases import SERVERS, fresh_database, require

from .concurrency_data import ACCOUNT, SHARED, Plan, make_plan
from .scenario import SCRIPT, clean_env, run, run_json

PROCESSES = 8
FILLS_PER_STRATEGY = 400
CONTESTED_PER_WAVE = 60
BATCH_SIZES = [1, 1, 1, 1, 1, 1, 7, 25]
"""Per process: most commit every line, two commit batches (which lock first)."""
TIMEOUT = 150
ACK = re.compile(r"^line (\d+): (applied|duplicate|rejected) (\w+) (\S+?)(?::| \(seq (\d+)\)$)")


def _seed() -> int:
    return int(
        os.environ.get("POSLEDGER_CONCURRENCY_SEED") or random.SystemRandom().randrange(10**9)
    )


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def _journal(url: str) -> list[tuple[int, str, int, str, str]]:
    rows = _query(url, "SELECT seq, stream, version, kind, input FROM journal ORDER BY seq")
    return [(int(a), str(b), int(c), str(d), str(e)) for a, b, c, d, e in rows]


class Acks:
    """What one ``ingest -v --json`` process printed: acknowledgements and the summary."""

    def __init__(self, stdout: str) -> None:
        self.lines: list[tuple[int, str, str, str, int | None]] = []
        rest: list[str] = []
        for line in stdout.splitlines():
            match = ACK.match(line)
            if match:
                number, status, kind, key, seq = match.groups()
                self.lines.append(
                    (int(number), status, kind, key, None if seq is None else int(seq))
                )
            else:
                rest.append(line)
        self.summary: dict[str, Any] = json.loads("\n".join(rest))

    def applied_fills(self) -> list[tuple[str, int]]:
        return [
            (key, seq)
            for _, status, kind, key, seq in self.lines
            if status == "applied" and kind == "fill" and seq is not None
        ]


def _run_wave(url: str, files: list[Path]) -> list[Acks]:
    procs = []
    for k, path in enumerate(files):
        argv = [str(SCRIPT), "--db", url, "ingest", "-v", "--json", "--quiet"]
        argv += ["--batch-size", str(BATCH_SIZES[k % len(BATCH_SIZES)]), str(path)]
        procs.append(
            subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(), text=True
            )
        )
    results = []
    failures = []
    for k, proc in enumerate(procs):
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            pytest.fail(f"process {k} ({files[k]}) did not finish in {TIMEOUT} s: a hang?")
        # 1: some lines were rejected (every file has bad lines); anything else is a failure.
        if proc.returncode != 1:
            failures.append(f"process {k} ({files[k]}) exited {proc.returncode}:\n{err[-3000:]}")
            continue
        results.append(Acks(out))
    assert not failures, "\n".join(failures)
    return results


def _reference(url: str, paths: list[list[Path]]) -> list[list[dict[str, int]]]:
    """Ingest every file, wave 1 in order then wave 2, with one process (this one)."""
    reports = []
    with open_ledger(url) as ledger:
        for wave in paths:
            reports.append([])
            for path in wave:
                with path.open("rb") as handle:
                    report = ledger.ingest(handle, source=str(path), batch_size=200)
                reports[-1].append(
                    {
                        "lines": report.lines,
                        "applied": report.applied,
                        "duplicate": report.duplicate,
                        "rejected": report.rejected,
                    }
                )
    return reports


def _trades_by_strategy(url: str) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for trade in run_json("trades", db=url):
        trade = {k: v for k, v in trade.items() if k != "trade_id"}
        # Journal numbers depend on how the writers interleaved; what the fills are does not.
        trade["fills"] = [{k: v for k, v in f.items() if k != "seq"} for f in trade["fills"]]
        if trade["strategy"] == SHARED:
            # Every shared fill is the same BUY 1 @ 100: which one came first (role
            # "open") depends on the interleaving; the set of fills does not.
            fills = trade.pop("fills")
            roles = Counter(fill["role"] for fill in fills)
            trade["roles"] = dict(roles)
            trade["fills"] = sorted(
                json.dumps({k: v for k, v in f.items() if k != "role"}, sort_keys=True)
                for f in fills
            )
        grouped[trade["strategy"]].append(trade)
    return dict(grouped)


def _positions(url: str) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in row.items() if k != "trade_id"}
        for row in run_json("positions", "--all", db=url)
    ]


def _anomalies(url: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "seq"} for row in run_json("anomalies", db=url)]


def _owner(entry_input: str) -> str | None:
    record = json.loads(entry_input)
    if "strategy" in record:
        return str(record["strategy"])
    coid = record.get("client_order_id")
    return None if coid is None else str(coid).split("-")[0]


def _journal_problems(entries: list[tuple[int, str, int, str, str]], label: str) -> list[str]:
    """In sequence order, each stream's versions must be 1..n: no gap, no interleaving."""
    versions: dict[str, list[int]] = defaultdict(list)
    for _, stream, version, _, _ in entries:
        versions[stream].append(version)
    return [
        f"{label}: stream {stream} versions in seq order: {seen[:40]}"
        for stream, seen in versions.items()
        if seen != list(range(1, len(seen) + 1))
    ]


@pytest.mark.slow
@pytest.mark.parametrize("kind", SERVERS)
def test_eight_processes_on_one_instrument_equal_one_process(kind: str, tmp_path: Path) -> None:
    require(kind)
    seed = _seed()
    print(f"concurrency test seed: {seed} (rerun with POSLEDGER_CONCURRENCY_SEED={seed})")
    print(f"input files in {tmp_path}")
    plan: Plan = make_plan(seed, PROCESSES, FILLS_PER_STRATEGY, CONTESTED_PER_WAVE)
    paths = plan.write(tmp_path)
    started = time.monotonic()
    with fresh_database(kind) as concurrent, fresh_database(kind) as single:
        # The schema first, so that the processes start on a ready database.
        assert run("migrate", db=concurrent).returncode == 0
        waves = []
        for number, files in enumerate(paths, start=1):
            began = time.monotonic()
            waves.append(_run_wave(concurrent, files))
            print(f"{kind}: wave {number}: {time.monotonic() - began:.1f} s")
        began = time.monotonic()
        expected = _reference(single, paths)
        print(f"{kind}: reference run: {time.monotonic() - began:.1f} s")

        problems = _compare(kind, plan, paths, waves, expected, concurrent, single)
    print(f"{kind}: {time.monotonic() - started:.1f} s in all")
    if problems:
        pytest.fail(
            f"seed {seed}, {kind}, files in {tmp_path}:\n"
            + "\n".join(f"- {problem}" for problem in problems),
            pytrace=False,
        )


def _compare(
    kind: str,
    plan: Plan,
    paths: list[list[Path]],
    waves: list[list[Acks]],
    expected: list[list[dict[str, int]]],
    concurrent: str,
    single: str,
) -> list[str]:
    """Everything that differs from a single process's run, or breaks an invariant."""
    problems: list[str] = []

    def check(ok: bool, problem: str) -> None:
        if not ok:
            problems.append(problem)

    # Every process accounted for every line of its file.
    for w, (wave, reports) in enumerate(zip(waves, expected, strict=True), start=1):
        for k, (acks, path) in enumerate(zip(wave, paths[w - 1], strict=True)):
            summary = acks.summary
            lines = len(path.read_text().splitlines())
            counted = summary["applied"] + summary["duplicate"] + summary["rejected"]
            check(summary["lines"] == lines == counted, f"{path.name}: {summary} of {lines}")
            check(summary["rejected"] == reports[k]["rejected"], f"{path.name}: rejected")
            check(len(acks.lines) == lines, f"{path.name}: {len(acks.lines)} acks, {lines} lines")
        applied = [acks.summary["applied"] for acks in wave]
        print(f"{kind}: wave {w}: applied per process {applied}")
        reference = sum(r["applied"] for r in reports)
        check(
            sum(applied) == reference, f"wave {w}: applied {sum(applied)}, one process {reference}"
        )

    # Exactly once: every fill stored and journaled once, the shared ones included.
    fills = {str(e): int(s) for e, s in _query(concurrent, "SELECT exec_id, seq FROM fills")}
    check(set(fills) == plan.exec_ids, "the fills table does not hold exactly the exec ids sent")
    entries = _journal(concurrent)
    reference_entries = _journal(single)
    problems += _journal_problems(entries, "concurrent") + _journal_problems(
        reference_entries, "single"
    )
    journaled = Counter(json.loads(e[4])["exec_id"] for e in entries if e[3] == "fill")
    twice = {exec_id: n for exec_id, n in journaled.items() if n != 1}
    check(not twice, f"fills journaled more than once: {twice}")
    check(set(journaled) == plan.exec_ids, "the journal does not hold exactly the fills sent")
    check(all(journaled[x] == 1 for x in plan.shared), "a shared fill is not journaled once")
    # The same inputs were journaled, each strategy's in the same order.
    check(
        Counter((s, k, i) for _, s, _, k, i in entries)
        == Counter((s, k, i) for _, s, _, k, i in reference_entries),
        "the journal's inputs differ from one process's",
    )
    for strategy in [f"s{k}" for k in range(plan.processes)]:
        mine = [i for *_, i in entries if _owner(i) == strategy]
        theirs = [i for *_, i in reference_entries if _owner(i) == strategy]
        check(mine == theirs, f"{strategy}'s inputs are journaled in another order")

    # Every acknowledged fill is stored with the sequence number it was acked with, and
    # each fill was acknowledged as applied by exactly one process.
    by_seq = {seq: (kind_, json.loads(body)) for seq, _, _, kind_, body in entries}
    acked: Counter[str] = Counter()
    for wave in waves:
        for acks in wave:
            for exec_id, seq in acks.applied_fills():
                acked[exec_id] += 1
                stored = by_seq.get(seq, ("missing", {}))
                check(
                    fills.get(exec_id) == seq
                    and stored[0] == "fill"
                    and stored[1].get("exec_id") == exec_id
                    and stored[1].get("account") == ACCOUNT,
                    f"fill {exec_id} acknowledged with seq {seq}: stored {fills.get(exec_id)}",
                )
    wrong = {x: n for x, n in (acked | Counter(plan.exec_ids)).items() if acked[x] != 1}
    check(not wrong, f"fills not acknowledged as applied exactly once: {wrong}")

    # Same state as the single process.
    check(_positions(concurrent) == _positions(single), "positions --all differ")
    trades = _trades_by_strategy(concurrent)
    reference_trades = _trades_by_strategy(single)
    for strategy in sorted(set(trades) | set(reference_trades)):
        check(
            trades.get(strategy) == reference_trades.get(strategy),
            f"{strategy}'s trades differ: {_first_difference(trades, reference_trades, strategy)}",
        )
    roles = [trade["roles"] for trade in trades.get(SHARED, [])]
    check(roles == [{"open": 1, "increase": len(plan.shared) - 1}], f"shared trade: {roles}")
    anomalies, reference_anomalies = _anomalies(concurrent), _anomalies(single)
    check(bool(reference_anomalies), "the data should produce exit overshoots")
    differ = [(a, b) for a, b in zip(anomalies, reference_anomalies, strict=False) if a != b]
    check(
        not differ,
        f"{len(differ)} of {len(reference_anomalies)} anomalies differ, e.g.\n    "
        + "\n    one process: ".join(str(x) for x in differ[0])
        if differ
        else "",
    )
    check(len(anomalies) == len(reference_anomalies), "not as many anomalies")
    rejected = "SELECT raw, reason FROM rejected_inputs"
    check(
        sorted(_query(concurrent, rejected)) == sorted(_query(single, rejected)),
        "rejected inputs differ",
    )

    # docs/format.md, JSON output: trades --json lists the trades in the order they were
    # opened.
    opened = dict(
        _query(concurrent, "SELECT trade_id, min(seq) FROM trade_fills GROUP BY trade_id")
    )
    listed = [trade["trade_id"] for trade in run_json("trades", db=concurrent)]
    by_opening = sorted(listed, key=lambda trade_id: opened[trade_id])
    check(
        listed == by_opening,
        "trades --json is not in the order the trades were opened (journal seq of the "
        f"opening fill): {_inversions(listed, opened)}",
    )

    result = run("verify", db=concurrent, timeout=TIMEOUT)
    check(result.returncode == 0, f"verify exited {result.returncode}: {result.stdout[:1500]}")
    return problems


def _first_difference(
    got: dict[str, list[dict[str, Any]]], want: dict[str, list[dict[str, Any]]], strategy: str
) -> str:
    mine, theirs = got.get(strategy, []), want.get(strategy, [])
    for index, (a, b) in enumerate(zip(mine, theirs, strict=False)):
        if a != b:
            fields = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            return f"trade {index}: " + ", ".join(
                f"{k} {a.get(k)!r} != {b.get(k)!r}" for k in fields
            )
    return f"{len(mine)} trades, one process {len(theirs)}"


def _inversions(listed: list[int], opened: dict[int, int]) -> str:
    pairs = [
        f"trade {a} (opened at seq {opened[a]}) before trade {b} (seq {opened[b]})"
        for a, b in pairwise(listed)
        if opened[b] < opened[a]
    ]
    return f"{len(pairs)} inversions, e.g. " + "; ".join(pairs[:3])
