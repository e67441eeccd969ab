"""Scenarios written as JSONL, through the real Python API, checked against docs/format.md
(JSON Lines input, JSON output)."""

from __future__ import annotations

import json
from decimal import Decimal

from posledger import Ledger

ACCOUNT = {
    "type": "account",
    "account": "A",
    "venue": "CME",
    "mode": "SIM",
    "position_mode": "netting",
}
MES = {
    "type": "instrument",
    "instrument": "MES",
    "kind": "future",
    "multiplier": "5",
    "tick_size": "0.25",
    "quote_currency": "USD",
    "settlement_currency": "USD",
}
NQ = {**MES, "instrument": "NQ", "multiplier": "20"}


def order(cid: str, instrument: str, side: str, quantity: str, intent: str = "entry") -> dict:
    return {
        "type": "order",
        "client_order_id": cid,
        "account": "A",
        "strategy": "s1",
        "instrument": instrument,
        "side": side,
        "quantity": quantity,
        "intent": intent,
    }


def fill(exec_id: str, instrument: str, side: str, quantity: str, price: str, ts: str, **kw):
    return {
        "type": "fill",
        "exec_id": exec_id,
        "account": "A",
        "instrument": instrument,
        "side": side,
        "quantity": quantity,
        "price": price,
        "ts": ts,
        **kw,
    }


SESSION = [
    ACCOUNT,
    MES,
    NQ,
    {"type": "strategy", "strategy": "s1"},
    order("o1", "MES", "BUY", "2"),
    fill("e1", "MES", "BUY", "2", "5000.00", "2026-03-02T14:45:02.117Z",
         client_order_id="o1", commission="1.24", commission_currency="USD"),
    {"type": "mark", "instrument": "MES", "price": "5002.50", "ts": "2026-03-02T14:50:00Z"},
    order("o2", "MES", "SELL", "1", "take_profit"),
    fill("e2", "MES", "SELL", "1", "5010", "2026-03-02T15:00:00Z",
         client_order_id="o2", commission="0.62"),
    # nobody's: EXTERNAL goes short 1
    fill("e3", "MES", "SELL", "1", "5004", "2026-03-02T15:01:00Z"),
    order("o3", "NQ", "BUY", "1"),
    fill("e4", "NQ", "BUY", "1", "18000.5", "2026-03-02T15:02:00Z", client_order_id="o3"),
    order("o4", "NQ", "SELL", "1", "stop_loss"),
    fill("e5", "NQ", "SELL", "1", "17990.25", "2026-03-02T15:03:30.5Z",
         client_order_id="o4", commission="2"),
    fill("e6", "NQ", "BUY", "2", "18010", "2026-03-02T15:04:00Z", strategy="s1"),
]  # fmt: skip


def lines(records: list[dict]) -> list[str]:
    return [json.dumps(record) for record in records]


def only_strings_and_nulls(value: object, path: str = "") -> list[str]:
    """Paths of values that are neither str, None, bool, int ids (trade ids, journal seqs)
    nor containers of those."""
    bad = []
    is_number = isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)
    if isinstance(value, dict):
        for k, v in value.items():
            bad += only_strings_and_nulls(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            bad += only_strings_and_nulls(v, f"{path}[{i}]")
    elif is_number and not (isinstance(value, int) and path.endswith(("trade_id", ".seq"))):
        bad.append(path)
    return bad


def test_session_positions(ledger: Ledger):
    report = ledger.ingest(lines(SESSION))
    assert (report.applied, report.duplicate, report.rejected) == (len(SESSION), 0, 0)

    positions = ledger.positions(include_flat=True)
    assert only_strings_and_nulls(positions) == []
    by_slot = {(p["instrument"], p["strategy"]): p for p in positions}
    # ordered by account, instrument, strategy, position_side
    assert list(by_slot) == [("MES", "EXTERNAL"), ("MES", "s1"), ("NQ", "s1")]

    s1 = by_slot[("MES", "s1")]
    assert s1 == {
        **s1,
        "account": "A",
        "position_side": "BOTH",
        "side": "LONG",
        "quantity": "1",
        "signed_quantity": "1",
        "avg_entry_price": "5000",
        # gross (5010 - 5000) * 1 * 5 = 50 ; commissions 1.24 + 0.62 = 1.86 ; net 48.14
        "realized_pnl": "48.14",
        # mark 5002.50: (5002.5 - 5000) * 1 * 5 = 12.5
        "unrealized_pnl": "12.5",
        "commissions": {"USD": "1.86"},
        "pnl_currency": "USD",
        "last_price": "5010",
    }
    assert s1["trade_id"] == 1

    ext = by_slot[("MES", "EXTERNAL")]
    # (5002.5 - 5004) * 1 * 5 * (-1) = 7.5
    assert (ext["side"], ext["quantity"], ext["signed_quantity"]) == ("SHORT", "1", "-1")
    assert ext["unrealized_pnl"] == "7.5"
    assert ext["realized_pnl"] == "0"

    nq = by_slot[("NQ", "s1")]
    assert (nq["side"], nq["quantity"], nq["avg_entry_price"]) == ("LONG", "2", "18010")
    assert nq["unrealized_pnl"] is None  # no mark on NQ: null, not zero
    assert nq["realized_pnl"] == "0"

    open_only = ledger.positions()
    assert len(open_only) == 3  # all three are open
    assert [p["strategy"] for p in ledger.positions(instrument="NQ")] == ["s1"]


def test_session_trades(ledger: Ledger):
    ledger.ingest(lines(SESSION))
    trades = ledger.trades()
    assert only_strings_and_nulls(trades) == []
    # in opening order
    assert [(t["trade_id"], t["instrument"], t["strategy"]) for t in trades] == [
        (1, "MES", "s1"),
        (2, "MES", "EXTERNAL"),
        (3, "NQ", "s1"),
        (4, "NQ", "s1"),
    ]
    opened = [t["opened_at"] for t in trades]
    assert opened == sorted(opened)

    mes = trades[0]
    assert mes == {
        **mes,
        "account": "A",
        "position_side": "BOTH",
        "side": "LONG",
        "status": "open",
        "quantity": "1",
        "peak_quantity": "2",
        "avg_entry_price": "5000",
        "avg_exit_price": "5010",
        "realized_pnl": "48.14",
        "gross_realized_pnl": "50",
        "commissions": {"USD": "1.86"},
        "pnl_currency": "USD",
        # (5010 - 5000) / 5000 = 0.002
        "realized_return": "0.002",
        "opened_at": "2026-03-02T14:45:02.117Z",
        "closed_at": None,
        "duration_seconds": None,
        "close_reason": None,
        # prices seen: 5000 (e1), the mark at 5002.50, 5010 (e2); valued at the peak (2):
        # the best (5010 - 5000) * 2 * 5 = 100, the worst 5000: 0
        "mae": "0",
        "mfe": "100",
    }
    assert [(f["exec_id"], f["role"], f["quantity"], f["price"]) for f in mes["fills"]] == [
        ("e1", "open", "2", "5000"),
        ("e2", "reduce", "1", "5010"),
    ]
    assert mes["fills"][1]["realized_pnl"] == "50"
    assert mes["fills"][0]["commission"] == "1.24"
    assert mes["fills"][0]["ts"] == "2026-03-02T14:45:02.117Z"

    external = trades[1]
    assert (external["side"], external["status"], external["avg_exit_price"]) == (
        "SHORT",
        "open",
        None,
    )
    # opened after the only mark: its one price seen is the fill's own, 5004
    assert (external["mae"], external["mfe"]) == ("0", "0")
    assert external["realized_return"] is None

    stopped = trades[2]
    # (17990.25 - 18000.5) * 1 * 20 = -205 ; net -207
    assert stopped == {
        **stopped,
        "status": "closed",
        "quantity": "0",
        "gross_realized_pnl": "-205",
        "realized_pnl": "-207",
        "avg_exit_price": "17990.25",
        "close_reason": "stop_loss",
        "opened_at": "2026-03-02T15:02:00Z",
        "closed_at": "2026-03-02T15:03:30.500Z",
        "duration_seconds": "90.5",
    }
    assert [f["role"] for f in stopped["fills"]] == ["open", "close"]

    assert [t["trade_id"] for t in ledger.trades(status="closed")] == [3]
    assert [t["trade_id"] for t in ledger.trades(strategy="EXTERNAL")] == [2]


def test_flip_through_the_api_shows_flip_roles(ledger: Ledger):
    records = [
        ACCOUNT,
        MES,
        {"type": "strategy", "strategy": "s1"},
        fill("f1", "MES", "BUY", "1", "100", "2026-03-02T14:00:00Z", strategy="s1"),
        fill("f2", "MES", "SELL", "3", "101", "2026-03-02T14:01:00Z", strategy="s1",
             commission="3"),
    ]  # fmt: skip
    assert ledger.ingest(lines(records)).ok
    old, new = ledger.trades()
    assert (old["close_reason"], old["side"], new["side"]) == ("flip", "LONG", "SHORT")
    # (101 - 100) * 1 * 5 = 5 ; commission 3 * 1/3 = 1 ; net 4
    assert (old["gross_realized_pnl"], old["realized_pnl"]) == ("5", "4")
    assert [(f["exec_id"], f["role"], f["quantity"]) for f in old["fills"]] == [
        ("f1", "open", "1"),
        ("f2", "flip", "1"),
    ]
    assert [(f["role"], f["quantity"], f["commission"]) for f in new["fills"]] == [
        ("flip", "2", "2"),
    ]
    assert new["commissions"] == {"USD": "2"}


def test_hedge_and_spot_through_the_api(ledger: Ledger):
    records = [
        {**ACCOUNT, "account": "H", "venue": "BINANCE", "position_mode": "hedge"},
        {
            "type": "instrument",
            "instrument": "BTCUSDT",
            "kind": "spot",
            "multiplier": "1",
            "base_currency": "BTC",
            "quote_currency": "USDT",
            "settlement_currency": "USDT",
        },
        {"type": "strategy", "strategy": "s1"},
        {**fill("h1", "BTCUSDT", "BUY", "1.0", "100", "2026-03-02T14:00:00Z", strategy="s1",
                commission="0.001", commission_currency="BTC", position_side="LONG"),
         "account": "H"},
        {**fill("h2", "BTCUSDT", "SELL", "0.5", "110", "2026-03-02T14:01:00Z", strategy="s1",
                position_side="SHORT"), "account": "H"},
    ]  # fmt: skip
    assert ledger.ingest(lines(records)).ok
    positions = ledger.positions()
    assert [(p["position_side"], p["signed_quantity"]) for p in positions] == [
        ("LONG", "0.999"),
        ("SHORT", "-0.5"),
    ]
    long_trade = ledger.trades()[0]
    assert long_trade["commissions"] == {"BTC": "0.001"}
    assert long_trade["realized_pnl"] == "0"  # a BTC commission is not USDT P&L
    assert [
        (f["role"], f["quantity"], f.get("adjustment", False)) for f in long_trade["fills"]
    ] == [
        ("open", "1", False),
        ("reduce", "0.001", True),
    ]


def test_rejected_and_duplicate_lines(ledger: Ledger):
    records = [
        ACCOUNT,
        MES,
        fill("e1", "MES", "BUY", "1", "100", "2026-03-02T14:00:00Z"),
        fill("e1", "MES", "BUY", "1", "100", "2026-03-02T14:00:00Z"),  # same again
        fill("e1", "MES", "BUY", "2", "100", "2026-03-02T14:00:00Z"),  # conflict
        fill("e2", "MES", "BUY", "1", "100", "2026-03-02T14:00:00Z", strategy="ghost"),
        fill("e3", "XX", "BUY", "1", "100", "2026-03-02T14:00:00Z"),
    ]
    text = [*lines(records), '{"type": "fill", "quantity": 1}']
    report = ledger.ingest(text)
    assert (report.applied, report.duplicate, report.rejected) == (3, 1, 4)
    reasons = dict(report.rejections)
    assert "conflict" in reasons[5]
    assert "quantity 1 != 2" in reasons[5]
    assert "unknown strategy ghost" in reasons[6]
    assert "unknown instrument XX" in reasons[7]
    assert "missing field 'exec_id'" in reasons[8]
    stored = ledger.rejected_inputs()
    assert len(stored) == 4
    assert stored[-1]["raw"] == '{"type": "fill", "quantity": 1}'
    # nothing of the rejected lines was applied
    assert [p["signed_quantity"] for p in ledger.positions()] == ["1"]
    assert ledger.verify().ok
