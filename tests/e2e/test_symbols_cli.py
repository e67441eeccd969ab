"""``posledger symbols add|list|remove`` as a user runs them (docs/venues/README.md)."""

from __future__ import annotations

from pathlib import Path

from .scenario import run, run_json, write

SETUP = [
    {"type": "account", "account": "BIN-1", "venue": "BINANCE", "mode": "LIVE",
     "position_mode": "hedge"},
    {"type": "instrument", "instrument": "BTC-PERP", "kind": "perpetual", "multiplier": "1",
     "quote_currency": "USDT", "settlement_currency": "USDT", "base_currency": "BTC"},
    {"type": "instrument", "instrument": "ETH-PERP", "kind": "perpetual", "multiplier": "1",
     "quote_currency": "USDT", "settlement_currency": "USDT", "base_currency": "ETH"},
]  # fmt: skip


def test_map_list_and_remove_a_symbol(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    assert run("ingest", str(write(tmp_path / "setup.jsonl", SETUP)), db=db).returncode == 0
    added = run("symbols", "add", "Binance", "BIN-1", "BTCUSDT", "BTC-PERP", db=db)
    assert added.returncode == 0, added.stderr
    assert added.stdout == "mapped: binance BTCUSDT on BIN-1 is BTC-PERP\n"
    again = run("symbols", "add", "binance", "BIN-1", "BTCUSDT", "BTC-PERP", db=db)
    assert again.stdout.startswith("already mapped:")
    other = run("symbols", "add", "binance", "BIN-1", "BTCUSDT", "ETH-PERP", db=db)
    assert other.returncode == 2  # a usage error: remove it first
    assert "is mapped to BTC-PERP: remove it first" in other.stderr
    unknown = run("symbols", "add", "binance", "BIN-9", "BTCUSDT", "BTC-PERP", db=db)
    assert unknown.returncode == 1 and "no account 'BIN-9'" in unknown.stderr
    (row,) = run_json("symbols", "list", db=db)
    assert {k: row[k] for k in ("venue", "account", "symbol", "instrument")} == {
        "venue": "binance",
        "account": "BIN-1",
        "symbol": "BTCUSDT",
        "instrument": "BTC-PERP",
    }
    shown = run("symbols", "list", "--venue", "binance", db=db).stdout
    assert "BTCUSDT" in shown and "BTC-PERP" in shown
    assert run_json("symbols", "list", "--venue", "dtc", db=db) == []
    removed = run("symbols", "remove", "binance", "BIN-1", "BTCUSDT", db=db)
    assert removed.stdout == "removed: binance BTCUSDT on BIN-1 (was BTC-PERP)\n"
    gone = run("symbols", "remove", "binance", "BIN-1", "BTCUSDT", db=db)
    assert gone.returncode == 1 and "is not mapped" in gone.stderr
    assert run_json("symbols", "list", db=db) == []
