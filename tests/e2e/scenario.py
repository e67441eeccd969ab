"""A small, hand-checked trading session and helpers to run the real ``posledger`` script.

The session (every expected number below is worked out by hand in the comments):

* ACC-1, a netting futures account; FUT.X, multiplier 5, settled in USD.
  - alpha buys 2 @ 100.25 (commission 1) and takes profit selling 2 @ 102.75 (commission 1):
    trade 1, gross (102.75 - 100.25) * 2 * 5 = 25, net 25 - 2 = 23, close_reason take_profit.
  - beta sells 1 @ 101 (commission 0.5): trade 2, open SHORT 1.
  - gamma buys 1 @ 100 (0.25) and exits selling 1 @ 99.5 (0.25): trade 3,
    gross (99.5 - 100) * 5 = -2.5, net -3, close_reason exit. gamma's slot is flat.
  - alpha buys 1 @ 99.5 (0.5): trade 4, open LONG 1, realized -0.5.
  - mark 100.5: alpha unrealized (100.5 - 99.5) * 5 = 5; beta (100.5 - 101) * 5 * -1 = 2.5.
* HDG-1, a hedge-mode account; PERP.Y, multiplier 1, settled in USDT, never marked.
  - alpha LONG buys 0.500 @ 60000.10 (0.3 USDT): trade 5; then 0.25 @ 60020 by a fill that
    carries only ``strategy`` (no order): avg (30000.05 + 15005) / 0.75
    = 60006.7333... -> 60006.733333333333333333 (18 digits, half-even).
  - beta SHORT sells 0.25 @ 60010 (0.15 USDT): trade 6.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SCRIPT = Path(sys.executable).with_name("posledger")

ACC = {"type": "account", "account": "ACC-1", "venue": "CME", "mode": "SIM"}
HDG = {"type": "account", "account": "HDG-1", "venue": "BINANCE", "mode": "LIVE"}


def _order(
    coid: str,
    account: str,
    strategy: str,
    instrument: str,
    side: str,
    qty: str,
    intent: str,
    ts: str,
    position_side: str | None = None,
) -> dict[str, Any]:
    rec = {
        "type": "order",
        "client_order_id": coid,
        "account": account,
        "strategy": strategy,
        "instrument": instrument,
        "side": side,
        "quantity": qty,
        "intent": intent,
        "ts": ts,
    }
    if position_side:
        rec["position_side"] = position_side
    return rec


def _fill(
    exec_id: str,
    account: str,
    instrument: str,
    side: str,
    qty: str,
    price: str,
    ts: str,
    commission: str,
    ccy: str,
    **extra: str,
) -> dict[str, Any]:
    return {
        "type": "fill",
        "exec_id": exec_id,
        "account": account,
        "instrument": instrument,
        "side": side,
        "quantity": qty,
        "price": price,
        "ts": ts,
        **extra,
        "commission": commission,
        "commission_currency": ccy,
    }


T = "2026-03-02T"

SESSION: list[dict[str, Any]] = [
    {**ACC, "position_mode": "netting"},
    {**HDG, "position_mode": "hedge"},
    {
        "type": "instrument",
        "instrument": "FUT.X",
        "kind": "future",
        "multiplier": "5",
        "tick_size": "0.25",
        "lot_size": "1",
        "quote_currency": "USD",
        "settlement_currency": "USD",
    },
    {
        "type": "instrument",
        "instrument": "PERP.Y",
        "kind": "perpetual",
        "multiplier": "1",
        "base_currency": "BTC",
        "quote_currency": "USDT",
        "settlement_currency": "USDT",
    },
    {"type": "strategy", "strategy": "alpha"},
    {"type": "strategy", "strategy": "beta"},
    {"type": "strategy", "strategy": "gamma"},
    _order("a-1", "ACC-1", "alpha", "FUT.X", "BUY", "2", "entry", T + "10:00:00Z"),
    _fill(
        "x-1",
        "ACC-1",
        "FUT.X",
        "BUY",
        "2",
        "100.25",
        T + "10:00:01Z",
        "1.00",
        "USD",
        client_order_id="a-1",
    ),
    _order("b-1", "ACC-1", "beta", "FUT.X", "SELL", "1", "entry", T + "10:01:00Z"),
    _fill(
        "x-2",
        "ACC-1",
        "FUT.X",
        "SELL",
        "1",
        "101.00",
        T + "10:01:00.5Z",
        "0.50",
        "USD",
        client_order_id="b-1",
    ),
    _order("a-2", "ACC-1", "alpha", "FUT.X", "SELL", "2", "take_profit", T + "10:00:02Z"),
    _fill(
        "x-3",
        "ACC-1",
        "FUT.X",
        "SELL",
        "2",
        "102.75",
        T + "10:30:00Z",
        "1.00",
        "USD",
        client_order_id="a-2",
    ),
    _order("g-1", "ACC-1", "gamma", "FUT.X", "BUY", "1", "entry", T + "10:31:00Z"),
    _fill(
        "x-4",
        "ACC-1",
        "FUT.X",
        "BUY",
        "1",
        "100",
        T + "10:31:00Z",
        "0.25",
        "USD",
        client_order_id="g-1",
    ),
    _order("g-2", "ACC-1", "gamma", "FUT.X", "SELL", "1", "exit", T + "10:40:00Z"),
    _fill(
        "x-5",
        "ACC-1",
        "FUT.X",
        "SELL",
        "1",
        "99.5",
        T + "10:40:00Z",
        "0.25",
        "USD",
        client_order_id="g-2",
    ),
    _order("a-3", "ACC-1", "alpha", "FUT.X", "BUY", "1", "entry", T + "10:45:00Z"),
    _fill(
        "x-6",
        "ACC-1",
        "FUT.X",
        "BUY",
        "1",
        "99.5",
        T + "10:45:00Z",
        "0.5",
        "USD",
        client_order_id="a-3",
    ),
    {"type": "mark", "instrument": "FUT.X", "price": "100.5", "ts": T + "10:50:00Z"},
    _order("h-1", "HDG-1", "alpha", "PERP.Y", "BUY", "0.5", "entry", T + "11:00:00Z", "LONG"),
    _fill(
        "y-1",
        "HDG-1",
        "PERP.Y",
        "BUY",
        "0.500",
        "60000.10",
        T + "11:00:00Z",
        "0.3",
        "USDT",
        client_order_id="h-1",
        position_side="LONG",
    ),
    _order("h-2", "HDG-1", "beta", "PERP.Y", "SELL", "0.25", "entry", T + "11:01:00Z", "SHORT"),
    _fill(
        "y-2",
        "HDG-1",
        "PERP.Y",
        "SELL",
        "0.25",
        "60010",
        T + "11:01:00Z",
        "0.15",
        "USDT",
        client_order_id="h-2",
        position_side="SHORT",
    ),
    _fill(
        "y-3",
        "HDG-1",
        "PERP.Y",
        "BUY",
        "0.25",
        "60020",
        T + "11:02:00Z",
        "0",
        "USDT",
        strategy="alpha",
        position_side="LONG",
    ),
]

# An exit order of beta for 3 while beta is short 1: 1 closes beta's trade 2, the other 2
# are another strategy's quantity and land on EXTERNAL as an anomaly
# (docs/accounting.md, An exit never opens).
OVERSHOOT: list[dict[str, Any]] = [
    _order("b-2", "ACC-1", "beta", "FUT.X", "BUY", "3", "exit", T + "12:00:00Z"),
    _fill(
        "x-7",
        "ACC-1",
        "FUT.X",
        "BUY",
        "3",
        "100.75",
        T + "12:00:01Z",
        "1.5",
        "USD",
        client_order_id="b-2",
    ),
]

# Lines that must be refused whole, each with the words its reason must contain.
BAD_LINES: list[tuple[str, list[str]]] = [
    (
        json.dumps(_fill("bad-1", "NOPE", "FUT.X", "BUY", "1", "100", T + "13:00:00Z", "0", "USD")),
        ["unknown account", "NOPE"],
    ),
    ('{"type":"fill","exec_id":"bad-2","account":"ACC-1","instrument"', ["malformed JSON"]),
    (
        json.dumps(
            {
                **_fill("bad-3", "ACC-1", "FUT.X", "BUY", "1", "100", T + "13:00:00Z", "0", "USD"),
                "quantity": 1,
            }
        ),
        ["quantity", "decimal string"],
    ),
]

OPEN_SLOTS = [
    ("ACC-1", "FUT.X", "alpha", "BOTH"),
    ("ACC-1", "FUT.X", "beta", "BOTH"),
    ("HDG-1", "PERP.Y", "alpha", "LONG"),
    ("HDG-1", "PERP.Y", "beta", "SHORT"),
]

POSITION_FIELDS = {
    "account",
    "instrument",
    "strategy",
    "position_side",
    "side",
    "quantity",
    "signed_quantity",
    "avg_entry_price",
    "realized_pnl",
    "unrealized_pnl",
    "commissions",
    "pnl_currency",
    "trade_id",
    "last_price",
}

TRADE_FIELDS = {
    "trade_id",
    "account",
    "instrument",
    "strategy",
    "position_side",
    "side",
    "status",
    "quantity",
    "peak_quantity",
    "avg_entry_price",
    "avg_exit_price",
    "realized_pnl",
    "gross_realized_pnl",
    "commissions",
    "pnl_currency",
    "realized_return",
    "opened_at",
    "closed_at",
    "duration_seconds",
    "close_reason",
    "mae",
    "mfe",
}


def jsonl(records: list[dict[str, Any]], extra: Sequence[str] = ()) -> str:
    return "".join(json.dumps(r) + "\n" for r in records) + "".join(x + "\n" for x in extra)


def write(path: Path, records: list[dict[str, Any]], extra: Sequence[str] = ()) -> Path:
    path.write_text(jsonl(records, extra), encoding="utf-8")
    return path


def url(path: Path) -> str:
    return f"sqlite:///{path}"


NO_CONFIG = str(Path(tempfile.gettempdir()) / "posledger-tests-no-config")
"""A configuration directory that holds no posledger.toml: a user's own file stays out."""


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: no POSLEDGER_DB unless given, and no user
    configuration file (docs/cli.md#the-configuration-file)."""
    env = {k: v for k, v in os.environ.items() if k != "POSLEDGER_DB"}
    env["XDG_CONFIG_HOME"] = NO_CONFIG
    if env.get("PYTHONPATH"):  # the same modules whatever the working directory
        env["PYTHONPATH"] = os.pathsep.join(
            os.path.abspath(part) for part in env["PYTHONPATH"].split(os.pathsep) if part
        )
    env.update(extra)
    return env


def run(
    *args: str,
    db: Path | str | None = None,
    cwd: Path | None = None,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script; ``db`` becomes ``--db``."""
    argv = [str(SCRIPT)]
    if db is not None:
        argv += ["--db", db if isinstance(db, str) else url(db)]
    argv += list(args)
    return subprocess.run(
        argv,
        cwd=cwd,
        input=input,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_json(*args: str, db: Path | str | None = None, **kw: Any) -> Any:
    result = run(*args, "--json", db=db, **kw)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def sql(path: Path, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read a database file with plain sqlite3 (not through posledger)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def execute(path: Path, statement: str, params: tuple[Any, ...] = ()) -> int:
    conn = sqlite3.connect(path)
    try:
        with conn:
            return conn.execute(statement, params).rowcount
    finally:
        conn.close()


def journal(path: Path) -> list[tuple[Any, ...]]:
    """The journal without recorded_at (wall-clock time of the write)."""
    return sql(path, "SELECT seq, stream, version, kind, input, effects FROM journal ORDER BY seq")


def invoke(*args: str, db: Path | None = None, input: str | None = None) -> Any:
    """Run the CLI in this process through click's CliRunner (fast; same code path)."""
    from click.testing import CliRunner

    from posledger.entrypoints.cli import cli

    argv = (["--db", url(db)] if db is not None else []) + list(args)
    return CliRunner().invoke(cli, argv, input=input, env={"POSLEDGER_DB": None})


def invoke_json(*args: str, db: Path | None = None) -> Any:
    result = invoke(*args, "--json", db=db)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)
