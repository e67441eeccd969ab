"""``positions``, ``trades``, ``anomalies``: the JSON contract of docs/format.md (JSON output)
and the tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import Ingested
from .scenario import (
    OPEN_SLOTS,
    OVERSHOOT,
    POSITION_FIELDS,
    SESSION,
    TRADE_FIELDS,
    invoke_json,
    run,
    run_json,
    write,
)

DECIMAL_POSITION_FIELDS = (
    "quantity",
    "signed_quantity",
    "avg_entry_price",
    "realized_pnl",
    "unrealized_pnl",
    "last_price",
)
DECIMAL_TRADE_FIELDS = (
    "quantity",
    "peak_quantity",
    "avg_entry_price",
    "avg_exit_price",
    "realized_pnl",
    "gross_realized_pnl",
    "realized_return",
    "duration_seconds",
    "mae",
    "mfe",
)


def _no_floats(value: Any) -> None:
    """docs/format.md, JSON output: all decimals in output are strings."""
    assert not isinstance(value, float), value
    if isinstance(value, dict):
        for item in value.values():
            _no_floats(item)
    elif isinstance(value, list):
        for item in value:
            _no_floats(item)


def _key(row: dict[str, Any]) -> tuple[str, str, str, str]:
    return (row["account"], row["instrument"], row["strategy"], row["position_side"])


def _pick(row: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    return {name: row[name] for name in fields}


# -- positions -------------------------------------------------------------------------


EXPECTED_OPEN = {
    ("ACC-1", "FUT.X", "alpha", "BOTH"): {
        "side": "LONG",
        "quantity": "1",
        "signed_quantity": "1",
        "avg_entry_price": "99.5",
        "realized_pnl": "-0.5",
        "unrealized_pnl": "5",
        "commissions": {"USD": "0.5"},
        "pnl_currency": "USD",
        "trade_id": 4,
        "last_price": "99.5",
    },
    ("ACC-1", "FUT.X", "beta", "BOTH"): {
        "side": "SHORT",
        "quantity": "1",
        "signed_quantity": "-1",
        "avg_entry_price": "101",
        "realized_pnl": "-0.5",
        "unrealized_pnl": "2.5",
        "commissions": {"USD": "0.5"},
        "pnl_currency": "USD",
        "trade_id": 2,
        "last_price": "101",
    },
    ("HDG-1", "PERP.Y", "alpha", "LONG"): {
        "side": "LONG",
        "quantity": "0.75",
        "signed_quantity": "0.75",
        "avg_entry_price": "60006.733333333333333333",
        "realized_pnl": "-0.3",
        "unrealized_pnl": None,
        "commissions": {"USDT": "0.3"},
        "pnl_currency": "USDT",
        "trade_id": 5,
        "last_price": "60020",
    },
    ("HDG-1", "PERP.Y", "beta", "SHORT"): {
        "side": "SHORT",
        "quantity": "0.25",
        "signed_quantity": "-0.25",
        "avg_entry_price": "60010",
        "realized_pnl": "-0.15",
        "unrealized_pnl": None,
        "commissions": {"USDT": "0.15"},
        "pnl_currency": "USDT",
        "trade_id": 6,
        "last_price": "60010",
    },
}


def test_positions_json_fields_and_exact_decimals(ingested: Ingested) -> None:
    rows = ingested.positions
    _no_floats(rows)
    assert [_key(row) for row in rows] == OPEN_SLOTS
    for row in rows:
        assert set(row) >= POSITION_FIELDS, POSITION_FIELDS - set(row)
        for name in DECIMAL_POSITION_FIELDS:
            assert row[name] is None or isinstance(row[name], str), (name, row[name])
        assert _pick(row, list(EXPECTED_OPEN[_key(row)])) == EXPECTED_OPEN[_key(row)]


def test_positions_all_includes_flat_slots(ingested: Ingested) -> None:
    rows = ingested.positions_all
    keys = [_key(row) for row in rows]
    flat = ("ACC-1", "FUT.X", "gamma", "BOTH")
    assert sorted(keys) == sorted([*OPEN_SLOTS, flat])
    gamma = rows[keys.index(flat)]
    assert gamma["side"] == "FLAT"
    assert (gamma["quantity"], gamma["signed_quantity"]) == ("0", "0")
    # The realized P&L and trade of its last trade (gross -2.5, commissions 0.5).
    assert gamma["realized_pnl"] == "-3"
    assert gamma["trade_id"] == 3
    assert gamma["commissions"] == {"USD": "0.5"}
    assert [row for row in rows if row["side"] != "FLAT"] == ingested.positions


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--strategy", "alpha"], [OPEN_SLOTS[0], OPEN_SLOTS[2]]),
        (["--account", "HDG-1"], OPEN_SLOTS[2:]),
        (["--instrument", "FUT.X"], OPEN_SLOTS[:2]),
        (
            ["--instrument", "FUT.X", "--all"],
            [*OPEN_SLOTS[:2], ("ACC-1", "FUT.X", "gamma", "BOTH")],
        ),
        (["--strategy", "beta", "--account", "ACC-1"], [OPEN_SLOTS[1]]),
        (["--strategy", "beta", "--account", "HDG-1", "--mode", "SIM"], []),
    ],
)
def test_positions_filters(
    ingested: Ingested, args: list[str], expected: list[tuple[str, ...]]
) -> None:
    rows = invoke_json("positions", *args, db=ingested.db)
    assert [_key(row) for row in rows] == expected
    by_key = {_key(row): row for row in ingested.positions_all}
    assert rows == [by_key[key] for key in expected]


def test_positions_table_for_humans(ingested: Ingested) -> None:
    result = run("positions", db=ingested.db)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    # Two accounts and two instruments do not fit 80 columns boxed: the table is compact,
    # with short headers (docs/cli.md#tables-80-columns-nothing-cut).
    for header in ("acct", "instr", "strategy", "avg entry", "realized", "unrealized"):
        assert header in text
    lines = [line for line in text.splitlines() if "ACC-1" in line or "HDG-1" in line]
    assert len(lines) == len(OPEN_SLOTS), text
    assert "gamma" not in text, "flat slots only with --all"
    # A table rounds to 6 decimals for people; JSON keeps every digit.
    assert "60006.733333" in text
    assert "60006.733333333333333333" not in text
    alpha = next(line for line in lines if "FUT.X" in line and "alpha" in line)
    assert "99.5" in alpha and "-0.5" in alpha and "USD" in alpha
    everything = run("positions", "--all", "--strategy", "gamma", db=ingested.db)
    assert everything.returncode == 0
    assert "gamma" in everything.stdout and "alpha" not in everything.stdout


# -- trades ----------------------------------------------------------------------------


def test_trades_json_fields_in_opening_order(ingested: Ingested) -> None:
    rows = ingested.trades
    _no_floats(rows)
    assert [row["trade_id"] for row in rows] == [1, 2, 3, 4, 5, 6]
    assert [row["opened_at"] for row in rows] == sorted(row["opened_at"] for row in rows)
    for row in rows:
        assert set(row) >= TRADE_FIELDS, TRADE_FIELDS - set(row)
        for name in DECIMAL_TRADE_FIELDS:
            assert row[name] is None or isinstance(row[name], str), (name, row[name])
    first = rows[0]
    assert _pick(first, list(EXPECTED_TRADE_1)) == EXPECTED_TRADE_1
    assert [(f["exec_id"], f["role"], f["quantity"]) for f in first["fills"]] == [
        ("x-1", "open", "2"),
        ("x-3", "close", "2"),
    ]
    gamma = rows[2]
    assert _pick(gamma, ["strategy", "status", "realized_pnl", "gross_realized_pnl"]) == {
        "strategy": "gamma",
        "status": "closed",
        "realized_pnl": "-3",
        "gross_realized_pnl": "-2.5",
    }
    assert (gamma["close_reason"], gamma["duration_seconds"]) == ("exit", "540")
    beta = rows[1]
    assert _pick(beta, list(EXPECTED_TRADE_2)) == EXPECTED_TRADE_2
    hedge = rows[4]
    assert (hedge["position_side"], hedge["side"], hedge["quantity"]) == ("LONG", "LONG", "0.75")
    assert hedge["avg_entry_price"] == "60006.733333333333333333"
    assert [(f["exec_id"], f["role"]) for f in hedge["fills"]] == [
        ("y-1", "open"),
        ("y-3", "increase"),
    ]


EXPECTED_TRADE_1 = {
    "account": "ACC-1",
    "instrument": "FUT.X",
    "strategy": "alpha",
    "position_side": "BOTH",
    "side": "LONG",
    "status": "closed",
    "quantity": "0",
    "peak_quantity": "2",
    "avg_entry_price": "100.25",
    "avg_exit_price": "102.75",
    "realized_pnl": "23",
    "gross_realized_pnl": "25",
    "commissions": {"USD": "2"},
    "pnl_currency": "USD",
    "opened_at": "2026-03-02T10:00:01Z",
    "closed_at": "2026-03-02T10:30:00Z",
    "duration_seconds": "1799",
    "close_reason": "take_profit",
}

EXPECTED_TRADE_2 = {
    "strategy": "beta",
    "side": "SHORT",
    "status": "open",
    "quantity": "1",
    "peak_quantity": "1",
    "avg_entry_price": "101",
    "avg_exit_price": None,
    "realized_pnl": "-0.5",
    "closed_at": None,
    "duration_seconds": None,
    "close_reason": None,
    "opened_at": "2026-03-02T10:01:00.500Z",
}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--open"], [2, 4, 5, 6]),
        (["--closed"], [1, 3]),
        (["--strategy", "alpha"], [1, 4, 5]),
        (["--account", "HDG-1"], [5, 6]),
        (["--instrument", "FUT.X"], [1, 2, 3, 4]),
        (["--instrument", "FUT.X", "--open", "--strategy", "alpha"], [4]),
        (["--account", "ACC-1", "--instrument", "PERP.Y"], []),
    ],
)
def test_trades_filters(ingested: Ingested, args: list[str], expected: list[int]) -> None:
    rows = invoke_json("trades", *args, db=ingested.db)
    assert [row["trade_id"] for row in rows] == expected
    by_id = {row["trade_id"]: row for row in ingested.trades}
    assert rows == [by_id[trade_id] for trade_id in expected]


def test_trades_table_for_humans(ingested: Ingested) -> None:
    result = run("trades", "--closed", db=ingested.db)
    assert result.returncode == 0, result.stderr
    # Both closed trades are on ACC-1 and FUT.X, in USD: the title says so, once.
    assert result.stdout.startswith("Trades (ACC-1, FUT.X, P&L in USD)")
    lines = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert len(lines) == 2
    assert "take_profit" in lines[0] and "23" in lines[0] and "102.75" in lines[0]
    assert "gamma" in lines[1] and "exit" in lines[1]


# -- anomalies -------------------------------------------------------------------------


def test_anomalies_after_an_overshooting_exit(tmp_path: Path) -> None:
    source = write(tmp_path / "overshoot.jsonl", SESSION + OVERSHOOT)
    db = tmp_path / "ledger.db"
    # The pre-trade check refuses the oversized exit (exit status 1); the broker fills it
    # anyway, and what beta did not hold is booked to EXTERNAL.
    ingested = run("ingest", str(source), db=db)
    assert ingested.returncode == 1
    assert "refused pre-trade: exit order" in ingested.stdout
    rows = run_json("anomalies", db=db)
    assert len(rows) == 1
    anomaly = rows[0]
    _no_floats(anomaly)
    assert _pick(
        anomaly, ["kind", "account", "instrument", "strategy", "position_side", "exec_id"]
    ) == {
        "kind": "exit_overshoot",
        "account": "ACC-1",
        "instrument": "FUT.X",
        "strategy": "beta",
        "position_side": "BOTH",
        "exec_id": "x-7",
    }
    assert anomaly["quantity"] == "2"
    assert "EXTERNAL" in anomaly["detail"]
    # The excess is another strategy's quantity: booked to EXTERNAL, not to beta.
    external = run_json("positions", "--strategy", "EXTERNAL", db=db)
    assert len(external) == 1
    assert _pick(external[0], ["side", "signed_quantity", "avg_entry_price"]) == {
        "side": "LONG",
        "signed_quantity": "2",
        "avg_entry_price": "100.75",
    }
    beta_trades = run_json("trades", "--strategy", "beta", "--account", "ACC-1", db=db)
    assert [(t["status"], t["close_reason"], t["side"]) for t in beta_trades] == [
        ("closed", "exit", "SHORT")
    ]
    assert run_json("positions", "--strategy", "beta", "--account", "ACC-1", db=db) == []
    assert run_json("anomalies", "--strategy", "alpha", db=db) == []
    table = run("anomalies", db=db)
    assert table.returncode == 0
    assert "x-7" in table.stdout and "exit_overshoot" in table.stdout
    assert run("verify", db=db).returncode == 0


def test_anomalies_empty_when_none(ingested: Ingested) -> None:
    assert run_json("anomalies", db=ingested.db) == []


def test_queries_on_an_empty_database(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    assert run("migrate", db=db).returncode == 0
    assert run_json("positions", "--all", db=db) == []
    assert run_json("trades", db=db) == []
    assert run_json("rejected", db=db) == []


def test_queries_on_a_database_that_does_not_exist_refuse_and_create_nothing(
    tmp_path: Path,
) -> None:
    """A typo in --db must not look like a flat ledger."""
    db = tmp_path / "typo.db"
    for command in ("positions", "trades", "rejected", "verify", "doctor"):
        result = run(command, db=db)
        assert result.returncode == 3, (command, result.stdout, result.stderr)
        assert "no database at" in result.stderr and str(db) in result.stderr
    assert not db.exists()
