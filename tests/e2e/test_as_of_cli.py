"""``positions``, ``trades`` and ``pnl`` with ``--as-of``, through the console script: what
a database holding only what was applied by then prints (docs/format.md, As of a time)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from posledger.domain.timestamps import format_ts
from tests.pnl_session import RECORDS

from .scenario import run, write

QUERIES = (
    ["positions", "--all", "--json"],
    ["trades", "--json"],
    ["pnl", "--period", "day", "--json"],
)


def test_as_of_a_moment_between_two_ingests(tmp_path: Path) -> None:
    half = len(RECORDS) // 2
    first = write(tmp_path / "first.jsonl", RECORDS[:half])
    rest = write(tmp_path / "rest.jsonl", RECORDS[half:])
    both, alone = tmp_path / "both.db", tmp_path / "alone.db"
    assert run("ingest", str(first), db=both).returncode == 0
    between = format_ts(time.time_ns())
    assert run("ingest", str(rest), db=both).returncode == 0
    assert run("ingest", str(first), db=alone).returncode == 0
    for query in QUERIES:
        then = run(*query, "--as-of", between, db=both)
        assert then.returncode == 0, then.stderr
        expected = run(*query, db=alone)
        now = run(*query, db=both)
        assert json.loads(then.stdout) == json.loads(expected.stdout), query
        assert json.loads(then.stdout) != json.loads(now.stdout), query
    table = run("trades", "--as-of", between, db=both)
    assert table.returncode == 0 and "Trades" in table.stdout
    bad = run("positions", "--as-of", "tomorrow", db=both)
    assert bad.returncode == 2 and "as of" in bad.stderr
