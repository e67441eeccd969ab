"""Listings read a page at a time give what the list methods give, on every store: the same
objects, windowed, in the order asked (absent values last, amounts by value), with each
trade's fills (docs/cli.md#listings---limit---since---until---sort)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from posledger import open_ledger
from posledger.errors import NotFound, UsageError

ACCOUNT = {"account": "A-1", "venue": "CME", "mode": "SIM", "position_mode": "netting"}


def _fill(n: int, strategy: str, side: str, qty: str, price: str, minute: int) -> dict[str, Any]:
    return {
        "exec_id": f"x-{n}",
        "account": "A-1",
        "instrument": "FUT.X",
        "strategy": strategy,
        "side": side,
        "quantity": qty,
        "price": price,
        "ts": f"2026-03-02T10:{minute:02d}:00Z",
        "commission": "0.5",
    }


FILLS = [
    _fill(1, "alpha", "BUY", "2", "100.25", 1),  # trade 1: alpha long, closed at minute 5
    _fill(2, "beta", "SELL", "1", "99.5", 2),  # trade 2: beta short, open
    _fill(3, "gamma", "BUY", "3", "1000", 3),  # trade 3: gamma long, closed at minute 4
    _fill(4, "gamma", "SELL", "3", "999", 4),
    _fill(5, "alpha", "SELL", "2", "102.75", 5),
    _fill(6, "alpha", "BUY", "1", "9.5", 6),  # trade 4: alpha long, open
]


@pytest.fixture
def ledger(db_url: str) -> Any:
    with open_ledger(db_url) as opened:
        opened.register_account(**ACCOUNT)
        opened.register_instrument(
            instrument="FUT.X",
            kind="future",
            multiplier="5",
            quote_currency="USD",
            settlement_currency="USD",
        )
        for name in ("alpha", "beta", "gamma"):
            opened.register_strategy(strategy=name)
        for fill in FILLS:
            assert opened.apply_fill(**fill).status == "applied"
        yield opened


def _ids(rows: Any) -> list[int]:
    return [row["trade_id"] for row in rows]


def test_a_listing_is_the_list_it_replaces(ledger: Any) -> None:
    trades = ledger.trades()
    assert list(ledger.listing("trades", with_fills=True)) == trades
    assert list(ledger.listing("trades")) == ledger.trades(with_fills=False)
    assert list(ledger.listing("positions")) == ledger.positions()
    assert list(ledger.listing("positions", include_flat=True)) == ledger.positions(
        include_flat=True
    )
    assert all(len(t["fills"]) >= 1 for t in trades)


AT_10_03 = int(datetime(2026, 3, 2, 10, 3, tzinfo=UTC).timestamp()) * 10**9


@pytest.mark.parametrize(
    "options",
    [
        {"sort": ["-closed_at"]},
        {"sort": ["avg_entry_price"]},
        {"sort": ["-realized_pnl", "trade_id"]},
        {"sort": ["strategy,-opened_at"]},
        {"limit": 2},
        {"since": AT_10_03},  # opened at or after 10:03
        {"until": AT_10_03},
        {"status": "open", "sort": ["-trade_id"]},
    ],
)
def test_windows_and_orders_agree_with_python(ledger: Any, options: dict[str, Any]) -> None:
    """The database's order and window are Python's over the same objects."""
    every = ledger.trades()
    rows = every
    if "status" in options:
        rows = [r for r in rows if r["status"] == options["status"]]
    if "since" in options:
        rows = [r for r in rows if r["opened_at"] >= "2026-03-02T10:03:00Z"]
    if "until" in options:
        rows = [r for r in rows if r["opened_at"] < "2026-03-02T10:03:00Z"]
    for spec in reversed([part for text in options.get("sort", []) for part in text.split(",")]):
        name = spec.lstrip("-")
        present = [r for r in rows if r[name] is not None]
        absent = [r for r in rows if r[name] is None]
        amount = name in ("avg_entry_price", "realized_pnl")
        present.sort(
            key=lambda r: Decimal(r[name]) if amount else r[name],
            reverse=spec.startswith("-"),
        )
        rows = present + absent
    if "limit" in options:
        rows = rows[: options["limit"]]
    got = list(ledger.listing("trades", with_fills=True, **options))
    assert _ids(got) == _ids(rows)
    assert got == rows


def test_amounts_sort_by_value(ledger: Any) -> None:
    prices = [
        Decimal(r["avg_entry_price"]) for r in ledger.listing("trades", sort=["avg_entry_price"])
    ]
    assert prices == sorted(prices) and prices[0] == Decimal("9.5")  # not text order


def test_closed_at_absent_sorts_last_both_ways(ledger: Any) -> None:
    first, _, third, _ = _ids(ledger.trades())  # alpha's first trade, gamma's
    up = list(ledger.listing("trades", sort=["closed_at"]))
    down = list(ledger.listing("trades", sort=["-closed_at"]))
    assert [r["closed_at"] is None for r in up] == [False, False, True, True]
    assert [r["closed_at"] is None for r in down] == [False, False, True, True]
    assert _ids(up)[:2] == [third, first] and _ids(down)[:2] == [first, third]


def test_a_listing_stopped_early_leaves_the_ledger_usable(ledger: Any) -> None:
    rows = ledger.listing("trades", with_fills=True)
    first = next(rows)
    rows.close()
    assert first == ledger.trades()[0]
    assert ledger.apply_fill(**_fill(7, "beta", "BUY", "1", "99", 7)).status == "applied"
    assert len(ledger.trades()) == 4


def test_unknown_names_and_fields_are_refused(ledger: Any) -> None:
    with pytest.raises(
        NotFound, match=r"no strategy 'delta' in this ledger \(known: alpha, beta, gamma\)"
    ):
        ledger.listing("trades", strategy="delta")
    with pytest.raises(UsageError, match="cannot be sorted by 'colour'"):
        ledger.listing("trades", sort=["colour"])
    with pytest.raises(UsageError, match="limit must be at least 1"):
        ledger.listing("trades", limit=0)
    assert list(ledger.listing("trades", strategy="EXTERNAL")) == []
