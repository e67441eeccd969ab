"""The ccxt parser (posledger.venues.ccxt) on ccxt's unified output for recorded Binance
replies (tests/fixtures/venues/binance/ccxt_golden_binanceusdm.json), against the Binance
parser on the same replies, and its records fed to a real ledger."""

from __future__ import annotations

import copy
import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from posledger import open_ledger
from posledger.venues.base import SymbolMap, VenueError
from posledger.venues.binance import parse_position_risk, parse_user_trades
from posledger.venues.ccxt import exact_text, parse_positions, parse_trades

GOLDEN = (
    Path(__file__).resolve().parents[2]
    / "fixtures"
    / "venues"
    / "binance"
    / "ccxt_golden_binanceusdm.json"
)
ACCOUNT = "BN-1"
UNIFIED = SymbolMap("binanceusdm", {(ACCOUNT, "BTC/USDT:USDT"): "BTC-PERP"})
NATIVE = SymbolMap("binance", {(ACCOUNT, "BTCUSDT"): "BTC-PERP"})

TRADE = {
    "type": "fill",
    "exec_id": "BTCUSDT:272536245",
    "account": ACCOUNT,
    "instrument": "BTC-PERP",
    "side": "BUY",
    "quantity": "0.01",
    "price": "36567.1",
    "ts": "2023-11-14T14:40:36.419Z",
    "commission": "0.1462684",
    "commission_currency": "USDT",
    "position_side": "BOTH",
}
POSITION = {
    "type": "broker_position",
    "account": ACCOUNT,
    "instrument": "BTC-PERP",
    "position_side": "BOTH",
    "quantity": "0.009",
    "avg_price": "67445.9",
    "ts": "2024-07-28T10:06:06.529Z",
}


def golden(name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(raw Binance rows, ccxt's unified dicts with ``info`` put back, as ccxt gives it)."""
    pair = json.loads(GOLDEN.read_text())[name]
    raw, unified = pair["httpResponse"], copy.deepcopy(pair["parsedResponse"])
    for row, item in zip(raw, unified, strict=True):
        item["info"] = row
    return raw, unified


def trades(**changes: Any) -> list[dict[str, Any]]:
    _, unified = golden("fetchMyTrades_swap")
    unified[0].update(changes)
    return unified


def positions(**changes: Any) -> list[dict[str, Any]]:
    _, unified = golden("fetchPositions_linear_positionRisk_v3")
    unified[0].update(changes)
    return unified


def test_a_unified_trade_is_the_fill_the_binance_parser_gives() -> None:
    raw, unified = golden("fetchMyTrades_swap")
    parsed = parse_trades(unified, venue="binanceusdm", account=ACCOUNT, symbols=UNIFIED)
    assert parsed.rejections == ()
    assert parsed.fills == (TRADE,)
    native = parse_user_trades(raw, account=ACCOUNT, symbols=NATIVE)
    assert native.fills == parsed.fills


def test_a_unified_position_is_the_one_the_binance_parser_gives() -> None:
    raw, unified = golden("fetchPositions_linear_positionRisk_v3")
    parsed = parse_positions(unified, venue="binanceusdm", account=ACCOUNT, symbols=UNIFIED)
    assert (parsed.positions, parsed.rejections) == ((POSITION,), ())
    assert parsed.extra == {"complete": True}
    native = parse_position_risk(raw, account=ACCOUNT, symbols=NATIVE)
    assert native.positions == parsed.positions


def test_strings_are_kept_and_long_floats_refused() -> None:
    # exchange.number = str: the exchange's own strings.
    exact = trades(
        amount="0.010", price="36567.10", fees=[{"cost": "0.14626840", "currency": "USDT"}]
    )
    parsed = parse_trades(exact, venue="binanceusdm", account=ACCOUNT, symbols=UNIFIED)
    assert parsed.fills == (TRADE,)
    assert exact_text(Decimal("0.0100"), "x") == "0.01"
    with pytest.raises(VenueError, match="17 significant digits"):
        exact_text(0.1 + 0.2, "amount")
    computed = trades(price=36567.1 / 3)
    parsed = parse_trades(computed, venue="binanceusdm", account=ACCOUNT, symbols=UNIFIED)
    assert parsed.fills == ()
    [rejection] = parsed.rejections
    assert rejection.reason == (
        "ccxt binanceusdm trade 0: price 12189.033333333333 has 17 significant digits "
        "(at most 15 round-trip exactly): create the exchange with exchange.number = str"
    )
    short = positions(contracts=0.009, side="short")
    parsed = parse_positions(short, venue="binanceusdm", account=ACCOUNT, symbols=UNIFIED)
    assert parsed.positions[0]["quantity"] == "-0.009"


def test_an_unmapped_symbol_is_rejected_with_the_command() -> None:
    parsed = parse_trades(
        trades(symbol="ETH/USDT:USDT"), venue="binanceusdm", account=ACCOUNT, symbols=UNIFIED
    )
    [rejection] = parsed.rejections
    assert rejection.reason == (
        "binanceusdm symbol ETH/USDT:USDT of account BN-1 is not mapped to an instrument: "
        "posledger symbols add binanceusdm BN-1 ETH/USDT:USDT INSTRUMENT"
    )
    held = parse_positions(
        positions(symbol="ETH/USDT:USDT"), venue="binanceusdm", account=ACCOUNT, symbols=UNIFIED
    )
    assert [r.reason for r in held.rejections] == [UNIFIED.missing(ACCOUNT, "ETH/USDT:USDT")]
    assert held.extra == {"complete": False}


def test_client_order_id_liquidation_and_hedge_from_info() -> None:
    info = {"s": "BTCUSDT", "c": "autoclose-1", "x": "CALCULATED", "ps": "LONG"}
    stream = trades(info=info, fee={"cost": None, "currency": None}, fees=[], side="sell")
    parsed = parse_trades(
        stream,
        venue="binanceusdm",
        account=ACCOUNT,
        symbols=UNIFIED,
        strategy_of=lambda c: "alpha" if c.startswith("alpha.") else None,
    )
    [fill] = parsed.fills
    assert {
        k: fill.get(k)
        for k in (
            "exec_id",
            "side",
            "client_order_id",
            "position_side",
            "liquidation",
            "commission",
        )
    } == {
        "exec_id": "BTCUSDT:272536245",
        "side": "SELL",
        "client_order_id": "autoclose-1",
        "position_side": "LONG",
        "liquidation": True,
        "commission": None,
    }
    # Another exchange: Binance's info keys are not read, and the market id must be given.
    other = trades(info={"c": "x", "ps": "LONG"})
    parsed = parse_trades(other, venue="okx", account=ACCOUNT, symbols=UNIFIED)
    assert parsed.rejections[0].reason.startswith("ccxt okx trade 0: info has no market id")
    parsed = parse_trades(
        other, venue="okx", account=ACCOUNT, symbols=UNIFIED, market_id=lambda s: "BTC-USDT-SWAP"
    )
    [fill] = parsed.fills
    assert fill["exec_id"] == "BTC-USDT-SWAP:272536245"
    assert "position_side" not in fill and "client_order_id" not in fill
    hedged = positions(info={}, hedged=True, side="short", contracts="2")
    parsed = parse_positions(hedged, venue="okx", account=ACCOUNT, symbols=UNIFIED)
    assert [(p["position_side"], p["quantity"]) for p in parsed.positions] == [("SHORT", "-2")]


def test_fees_in_two_currencies_are_refused() -> None:
    two = trades(fees=[{"cost": "1", "currency": "USDT"}, {"cost": "0.1", "currency": "BNB"}])
    parsed = parse_trades(two, venue="binanceusdm", account=ACCOUNT, symbols=UNIFIED)
    assert parsed.rejections[0].reason == (
        "ccxt binanceusdm trade 0: fees in 2 currencies (USDT, BNB): a fill has one"
    )


def test_the_fills_are_ledger_inputs_applied_once() -> None:
    with open_ledger(f"memory://ccxt-test-{uuid.uuid4().hex}") as ledger:
        assert (
            ledger.register_account(
                account=ACCOUNT, venue="binanceusdm", mode="LIVE", position_mode="netting"
            ).status
            == "applied"
        )
        assert (
            ledger.register_instrument(
                instrument="BTC-PERP",
                kind="perpetual",
                multiplier="1",
                quote_currency="USDT",
                settlement_currency="USDT",
            ).status
            == "applied"
        )
        ledger.map_symbol("binanceusdm", ACCOUNT, "BTC/USDT:USDT", "BTC-PERP")
        symbols = ledger.symbol_map("binanceusdm")
        parsed = parse_trades(trades(), venue="binanceusdm", account=ACCOUNT, symbols=symbols)
        lines = [json.dumps(r) for r in parsed.fills]
        first = ledger.ingest(lines)
        assert (first.applied, first.rejected) == (1, 0), first.rejections
        [held] = ledger.positions()
        assert (
            held["instrument"],
            held["strategy"],
            held["signed_quantity"],
            held["avg_entry_price"],
        ) == (
            "BTC-PERP",
            "EXTERNAL",
            "0.01",
            "36567.1",
        )
        again = ledger.ingest(lines)
        assert (again.applied, again.duplicate, again.rejected) == (0, 1, 0)
        # The same trade read by the Binance parser is the same fill: a duplicate.
        raw, _ = golden("fetchMyTrades_swap")
        native = parse_user_trades(raw, account=ACCOUNT, symbols=NATIVE)
        report = ledger.ingest([json.dumps(r) for r in native.fills])
        assert (report.applied, report.duplicate) == (0, 1)
        snapshot = parse_positions(
            positions(), venue="binanceusdm", account=ACCOUNT, symbols=symbols
        )
        checks = ledger.reconcile([json.dumps(r) for r in snapshot.positions]).checks
        assert [(c["kind"], c["broker_quantity"]) for c in checks] == [
            ("quantity_mismatch", "0.009")
        ]


def test_ccxt_itself_gives_these_dicts() -> None:
    ccxt = pytest.importorskip("ccxt", reason="the ccxt extra is not installed")
    raw, _ = golden("fetchMyTrades_swap")
    exchange = ccxt.binanceusdm()
    exchange.number = str
    trade = exchange.parse_trade(raw[0])
    trade["symbol"] = "BTC/USDT:USDT"  # markets are not loaded offline
    parsed = parse_trades([trade], venue="binanceusdm", account=ACCOUNT, symbols=UNIFIED)
    assert parsed.fills == (TRADE,)
    assert trade["amount"] == "0.010"
