"""Listings: --limit, --since/--until, --sort, and --json/--jsonl/--csv written as rows come.

On the hand-checked session (tests/e2e/scenario.py): six trades opened at 10:00:01,
10:01, 10:31, 10:45, 11:00 and 11:01 on 2026-03-02; trades 1 and 3 closed.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import Ingested
from .scenario import SESSION, run, write


def _out(*args: str, db: Path) -> str:
    result = run(*args, db=db)
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout


def _ids(rows: list[dict[str, Any]]) -> list[int]:
    return [row["trade_id"] for row in rows]


def trades(*args: str, db: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(_out("trades", "--json", *args, db=db))
    return rows


def test_json_is_the_same_document_as_before_written_row_by_row(ingested: Ingested) -> None:
    """--json prints one array laid out as json.dumps(rows, indent=2), however it is
    written."""
    text = _out("trades", "--json", db=ingested.db)
    assert text == json.dumps(json.loads(text), indent=2) + "\n"
    assert json.loads(text) == ingested.trades
    empty = _out("trades", "--json", "--strategy", "gamma", "--open", db=ingested.db)
    assert empty == "[]\n"


def test_jsonl_is_one_object_per_line(ingested: Ingested) -> None:
    text = _out("trades", "--jsonl", db=ingested.db)
    rows = [json.loads(line) for line in text.splitlines()]
    assert rows == ingested.trades  # fills included, as --json
    positions = [
        json.loads(line) for line in _out("positions", "--jsonl", db=ingested.db).splitlines()
    ]
    assert positions == ingested.positions


def test_csv_has_a_header_and_one_line_per_row(ingested: Ingested) -> None:
    text = _out("trades", "--csv", db=ingested.db)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["trade_id"]) for r in rows] == _ids(ingested.trades)
    assert "fills" not in rows[0]  # one line per trade: its fills are in --json
    for got, want in zip(rows, ingested.trades, strict=True):
        assert got["avg_entry_price"] == want["avg_entry_price"]
        assert got["closed_at"] == (want["closed_at"] or "")
        assert json.loads(got["commissions"]) == want["commissions"]
    positions = list(csv.DictReader(io.StringIO(_out("positions", "--csv", db=ingested.db))))
    assert [p["signed_quantity"] for p in positions] == [
        p["signed_quantity"] for p in ingested.positions
    ]


def test_one_format_at_a_time(ingested: Ingested) -> None:
    result = run("trades", "--json", "--csv", db=ingested.db)
    assert result.returncode == 2
    assert "exclude each other" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--limit", "2"], [1, 2]),
        (["--since", "2026-03-02T10:31:00Z"], [3, 4, 5, 6]),
        (["--until", "2026-03-02T10:31:00Z"], [1, 2]),  # until is exclusive
        (["--since", "2026-03-02T11:30:00+01:00", "--until", "2026-03-02T11:00:00Z"], [3, 4]),
        (["--since", "2026-03-02"], [1, 2, 3, 4, 5, 6]),  # a date: its midnight UTC
        (["--since", "2026-03-03"], []),
        (["--sort", "-trade_id"], [6, 5, 4, 3, 2, 1]),
        (["--sort", "-realized_pnl", "--limit", "1"], [1]),
        (["--sort", "realized_pnl"], [3, 2, 4, 5, 6, 1]),
        (["--sort", "-closed_at"], [3, 1, 2, 4, 5, 6]),  # absent values last
        (["--sort", "closed_at"], [1, 3, 2, 4, 5, 6]),
        (["--sort", "strategy,-opened_at"], [5, 4, 1, 6, 2, 3]),
        (["--sort", "account", "--sort", "-trade_id"], [4, 3, 2, 1, 6, 5]),
        (["--closed", "--sort", "-opened_at"], [3, 1]),
    ],
)
def test_trades_window_and_order(ingested: Ingested, args: list[str], expected: list[int]) -> None:
    assert _ids(trades(*args, db=ingested.db)) == expected
    by_id = {row["trade_id"]: row for row in ingested.trades}
    assert trades(*args, db=ingested.db) == [by_id[i] for i in expected]


def test_sort_on_amounts_is_by_value_not_text(ingested: Ingested) -> None:
    """Amounts are text on SQLite; sorting compares their values (100.25 < 99.5 as text)."""
    rows = trades("--sort", "avg_entry_price", db=ingested.db)
    prices = [float(row["avg_entry_price"]) for row in rows]
    assert prices == sorted(prices)
    positions = json.loads(
        _out("positions", "--json", "--sort", "-signed_quantity", db=ingested.db)
    )
    quantities = [float(p["signed_quantity"]) for p in positions]
    assert quantities == sorted(quantities, reverse=True)


def test_bad_window_options_are_usage_errors(ingested: Ingested) -> None:
    cases = [
        (["trades", "--sort", "colour"], "cannot be sorted by 'colour'"),
        (["trades", "--since", "yesterday"], "--since"),
        (["trades", "--until", "2026-03-02T10:00:00"], "offset"),
        (["trades", "--limit", "0"], "--limit"),
        (["positions", "--since", "2026-03-02"], "No such option"),
    ]
    for args, words in cases:
        result = run(*args, db=ingested.db)
        assert result.returncode == 2, (args, result.stdout)
        assert words in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_other_listings_take_the_same_options(tmp_path: Path) -> None:
    bad = ['{"type":"fill"}', "not json", '{"type":"mark","instrument":"FUT.X"}']
    source = write(tmp_path / "session.jsonl", SESSION, extra=bad)
    db = tmp_path / "ledger.db"
    assert run("ingest", str(source), db=db).returncode == 1
    rejected = json.loads(_out("rejected", "--json", db=db))
    assert len(rejected) == 3
    newest = json.loads(_out("rejected", "--json", "--sort", "-id", "--limit", "2", db=db))
    assert [r["id"] for r in newest] == [rejected[2]["id"], rejected[1]["id"]]
    lines = _out("rejected", "--jsonl", "--sort", "line", db=db).splitlines()
    assert [json.loads(line)["line"] for line in lines] == sorted(r["line"] for r in rejected)
    later = json.loads(_out("rejected", "--json", "--since", "2261-01-01", db=db))
    assert later == []
    assert len(json.loads(_out("positions", "--json", "--limit", "1", db=db))) == 1
    assert json.loads(_out("transfers", "--json", "--since", "2026-03-02", db=db)) == []
    assert json.loads(_out("anomalies", "--json", "--limit", "3", db=db)) == []


def test_positions_sort(ingested: Ingested) -> None:
    rows = json.loads(_out("positions", "--json", "--sort", "-strategy", db=ingested.db))
    assert [r["strategy"] for r in rows] == sorted((r["strategy"] for r in rows), reverse=True)
    assert sorted(map(json.dumps, rows)) == sorted(map(json.dumps, ingested.positions))


# -- a filter naming what the ledger does not know -----------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["positions", "--account", "NET-9"],
            "no account 'NET-9' in this ledger (known: ACC-1, HDG-1)",
        ),
        (
            ["trades", "--strategy", "delta"],
            "no strategy 'delta' in this ledger (known: alpha, beta, gamma)",
        ),
        (
            ["anomalies", "--instrument", "FUT.Z"],
            "no instrument 'FUT.Z' in this ledger (known: FUT.X, PERP.Y)",
        ),
        (["transfers", "--account", "acc-1"], "no account 'acc-1'"),
        (["reconciliations", "--account", "X"], "no account 'X'"),
        (["bracket", "list", "--strategy", "delta"], "no strategy 'delta'"),
        (["exits", "--instrument", "FUT.Z"], "no instrument 'FUT.Z'"),
    ],
)
def test_an_unknown_name_in_a_filter_is_an_error(
    ingested: Ingested, args: list[str], words: str
) -> None:
    for extra in ([], ["--json"]):
        result = run(*args, *extra, db=ingested.db)
        assert result.returncode == 1, (args, result.stdout)
        assert words in result.stderr, result.stderr
        assert result.stdout == ""


def test_external_is_always_a_strategy(ingested: Ingested) -> None:
    result = run("positions", "--strategy", "EXTERNAL", "--json", db=ingested.db)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_reads_of_a_database_that_does_not_exist_fail_and_create_nothing(tmp_path: Path) -> None:
    db = tmp_path / "typo.db"
    for args in (["positions"], ["trades", "--json"], ["account", "list"]):
        result = run(*args, db=db)
        assert result.returncode == 3, (args, result.stdout)
        assert f"no database at {db}" in result.stderr
        assert "ingest" in result.stderr  # the hint: how one is made
        assert not db.exists()
