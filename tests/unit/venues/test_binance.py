"""The Binance USD-M parser (posledger.venues.binance) on every recorded payload in
tests/fixtures/venues/binance/ (SOURCES.md), and its records fed to a real ledger."""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from posledger import Ledger, open_ledger
from posledger.errors import ReconcileError
from posledger.venues.base import Funding, Parsed, Rejection, SymbolMap, VenueError
from posledger.venues.binance import (
    parse_income,
    parse_position_mode,
    parse_position_risk,
    parse_user_event,
    parse_user_trades,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "venues" / "binance"

HEDGE, NETTING = "BN-HEDGE", "BN-ONEWAY"
SYMBOLS = SymbolMap(
    "binance",
    {
        (HEDGE, "BTCUSDT"): "BTC-PERP",
        (NETTING, "BTCUSDT"): "BTC-PERP",
        (NETTING, "ETHUSDT"): "ETH-PERP",
        (NETTING, "ADAUSDT"): "ADA-PERP",
        (NETTING, "MOVEUSDT"): "MOVE-PERP",
    },
)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def strategy_of(client_order_id: str) -> str | None:
    """The test's client-order-id convention: the doc examples' order ``TEST`` is alpha's."""
    return "alpha" if client_order_id == "TEST" else None


def event(name: str) -> Parsed:
    return parse_user_event(load(name), account=HEDGE, symbols=SYMBOLS, strategy_of=strategy_of)


def inner_fill_event() -> dict[str, Any]:
    """The ccxt-captured ``o`` object in an event envelope (E and T: its own trade time)."""
    order = load("usdm_ws_order_trade_update_fill_inner.json")
    return {"e": "ORDER_TRADE_UPDATE", "E": order["T"], "T": order["T"], "o": order}


# -- ORDER_TRADE_UPDATE -----------------------------------------------------------------------

PARTIAL_FILL = {
    "type": "fill",
    "exec_id": "BTCUSDT:12345678",
    "account": HEDGE,
    "instrument": "BTC-PERP",
    "side": "BUY",
    "quantity": "0.001",
    "price": "7100.5",
    "ts": "2019-09-19T07:51:05.651Z",  # T 1568879465651
    "client_order_id": "TEST",
    "strategy": "alpha",
    "commission": "0.01",
    "commission_currency": "USDT",
    "position_side": "LONG",
}

LIQUIDATION = {
    "type": "fill",
    "exec_id": "BTCUSDT:1122334455",
    "account": HEDGE,
    "instrument": "BTC-PERP",
    "side": "SELL",
    "quantity": "0.1",
    "price": "50000",
    "ts": "2025-10-01T19:42:43.167Z",  # T 1759347763167
    "client_order_id": "autoclose-1234567890123456",
    "commission": "5",
    "commission_currency": "USDT",
    "position_side": "LONG",
    "liquidation": True,
}

BNB_FILL = {
    "type": "fill",
    "exec_id": "BTCUSDT:458032604",
    "account": NETTING,
    "instrument": "BTC-PERP",
    "side": "SELL",
    "quantity": "0.001",
    "price": "33468.46",
    "ts": "2021-01-31T12:12:45.362Z",  # T 1612095165362
    "client_order_id": "pb2jD6ZQHpfzSdUac8VqMK",
    "commission": "0.00027086",
    "commission_currency": "BNB",
    "position_side": "BOTH",
}


def test_a_partial_fill_in_hedge_mode_is_a_long_fill_of_its_strategy() -> None:
    parsed = event("usdm_ws_order_trade_update_partial_fill.json")
    assert parsed.fills == (PARTIAL_FILL,)
    assert (parsed.positions, parsed.funding, parsed.rejections, parsed.ignored) == (
        (),
        (),
        (),
        None,
    )
    assert parsed.extra == {
        "event": "ORDER_TRADE_UPDATE",
        "symbol": "BTCUSDT",
        "order_id": "8886774",
        "client_order_id": "TEST",
        "execution_type": "TRADE",
        "order_status": "PARTIALLY_FILLED",
    }


def test_without_a_convention_the_fill_carries_no_strategy() -> None:
    message = load("usdm_ws_order_trade_update_partial_fill.json")
    parsed = parse_user_event(message, account=HEDGE, symbols=SYMBOLS)
    assert parsed.fills == ({k: v for k, v in PARTIAL_FILL.items() if k != "strategy"},)


def test_a_liquidation_in_the_combined_stream_envelope_is_flagged() -> None:
    parsed = event("usdm_ws_order_trade_update_liquidation.json")
    assert parsed.fills == (LIQUIDATION,)
    assert parsed.extra["execution_type"] == "CALCULATED"
    assert parsed.extra["order_id"] == "9876543210"


def test_a_commission_in_bnb_stays_in_bnb() -> None:
    parsed = parse_user_event(inner_fill_event(), account=NETTING, symbols=SYMBOLS)
    assert parsed.fills == (BNB_FILL,)
    assert parsed.rejections == ()


def test_an_event_may_come_as_text() -> None:
    text = (FIXTURES / "usdm_ws_order_trade_update_partial_fill.json").read_text()
    parsed = parse_user_event(text, account=HEDGE, symbols=SYMBOLS, strategy_of=strategy_of)
    assert parsed.fills == (PARTIAL_FILL,)
    as_bytes = parse_user_event(text.encode(), account=HEDGE, symbols=SYMBOLS)
    assert as_bytes.fills[0]["exec_id"] == "BTCUSDT:12345678"


def test_a_new_order_is_ignored() -> None:
    parsed = event("usdm_ws_order_trade_update_doc_new.json")
    assert parsed.fills == ()
    assert parsed.rejections == ()
    assert parsed.ignored == (
        "ORDER_TRADE_UPDATE NEW of order 8886774 on BTCUSDT: an order event, not a fill"
    )
    assert parsed.extra == {
        "event": "ORDER_TRADE_UPDATE",
        "symbol": "BTCUSDT",
        "order_id": "8886774",
        "client_order_id": "TEST",
        "execution_type": "NEW",
        "order_status": "NEW",
    }


@pytest.mark.parametrize("execution", ["CANCELED", "EXPIRED", "AMENDMENT", "SOMETHING_NEW"])
def test_no_execution_but_trade_or_calculated_is_a_fill(execution: str) -> None:
    # Even with a last filled quantity: only TRADE and CALCULATED carry a fill.
    message = load("usdm_ws_order_trade_update_partial_fill.json")
    message["o"]["x"] = execution
    parsed = parse_user_event(message, account=HEDGE, symbols=SYMBOLS)
    assert parsed.fills == ()
    assert parsed.rejections == ()
    assert parsed.ignored is not None and parsed.ignored.startswith(
        f"ORDER_TRADE_UPDATE {execution} of order 8886774"
    )


def test_a_missing_commission_is_omitted_and_half_a_commission_refused() -> None:
    message = load("usdm_ws_order_trade_update_partial_fill.json")
    del message["o"]["n"], message["o"]["N"]
    fill = parse_user_event(message, account=HEDGE, symbols=SYMBOLS).fills[0]
    assert "commission" not in fill and "commission_currency" not in fill

    message = load("usdm_ws_order_trade_update_partial_fill.json")
    del message["o"]["N"]
    parsed = parse_user_event(message, account=HEDGE, symbols=SYMBOLS)
    assert parsed.fills == ()
    assert [r.reason for r in parsed.rejections] == [
        "Binance ORDER_TRADE_UPDATE: o.n (commission) is given without o.N (commission asset)"
    ]


def test_a_trade_on_an_unmapped_symbol_is_rejected_with_the_command_that_maps_it() -> None:
    message = load("usdm_ws_order_trade_update_partial_fill.json")
    parsed = parse_user_event(message, account="OTHER", symbols=SYMBOLS)
    assert parsed.fills == ()
    assert parsed.rejections == (
        Rejection(SYMBOLS.missing("OTHER", "BTCUSDT"), json.dumps(message, separators=(",", ":"))),
    )
    assert "posledger symbols add binance OTHER BTCUSDT INSTRUMENT" in parsed.rejections[0].reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda o: o.update(l=0.001),
            "o.l (last filled quantity) 0.001 is not a decimal string",
        ),
        (lambda o: o.update(L=7100.5), "o.L (last filled price) 7100.5 is not a decimal string"),
        (lambda o: o.pop("t"), "missing field o.t (trade id)"),
        (lambda o: o.update(t=None), "missing field o.t (trade id)"),
        (lambda o: o.update(t="12a"), "o.t (trade id) '12a' is not a positive integer id"),
        (lambda o: o.pop("T"), "missing field o.T (trade time)"),
        (lambda o: o.update(S="HOLD"), "o.S (side) must be one of BUY, SELL, got 'HOLD'"),
        (lambda o: o.pop("ps"), "missing field o.ps (position side)"),
        (
            lambda o: o.update(l="0"),
            "o.l (last filled quantity) is 0 on a TRADE execution: "
            "a fill must have a positive quantity",
        ),
        (lambda o: o.update(c=""), "o.c (client order id) '' is empty or has surrounding spaces"),
    ],
)
def test_a_malformed_fill_is_rejected_with_a_precise_reason(change: Any, reason: str) -> None:
    message = load("usdm_ws_order_trade_update_partial_fill.json")
    change(message["o"])
    parsed = parse_user_event(message, account=HEDGE, symbols=SYMBOLS)
    assert parsed.fills == ()
    assert [r.reason for r in parsed.rejections] == [f"Binance ORDER_TRADE_UPDATE: {reason}"]
    assert json.loads(parsed.rejections[0].raw) == message


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("{not json", "Binance event: malformed JSON: "),
        ([1, 2], "Binance event: an event is a JSON object, got array"),
        ({"E": 1}, "Binance event: missing field e (event type)"),
        ({"e": "ORDER_TRADE_UPDATE", "o": []}, "Binance ORDER_TRADE_UPDATE: o (the order) must"),
        ({"stream": "k", "data": None}, "Binance event: an event is a JSON object, got null"),
    ],
)
def test_what_is_not_an_event_is_rejected(message: Any, reason: str) -> None:
    parsed = parse_user_event(message, account=HEDGE, symbols=SYMBOLS)
    assert len(parsed.rejections) == 1
    assert parsed.rejections[0].reason.startswith(reason)


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("TRADE_LITE", "the same trade comes whole in ORDER_TRADE_UPDATE"),
        ("listenKeyExpired", "the listen key expired"),
        ("MARGIN_CALL", "a margin warning"),
        ("STRATEGY_UPDATE", "not a fill, position or funding event"),
    ],
)
def test_other_events_are_ignored(kind: str, why: str) -> None:
    parsed = parse_user_event({"e": kind, "E": 1721895408092}, account=HEDGE, symbols=SYMBOLS)
    assert (parsed.fills, parsed.positions, parsed.rejections) == ((), (), ())
    assert parsed.ignored is not None and parsed.ignored.startswith(f"{kind}: ")
    assert why in parsed.ignored
    assert parsed.extra == {"event": kind}


# -- ACCOUNT_UPDATE ---------------------------------------------------------------------------


def test_a_hedge_account_update_gives_the_long_and_short_legs_and_drops_the_flat_both() -> None:
    parsed = event("usdm_ws_account_update_doc_hedge.json")
    ts = "2019-08-02T11:36:38.939Z"  # T 1564745798939
    assert parsed.positions == (
        {
            "type": "broker_position",
            "account": HEDGE,
            "instrument": "BTC-PERP",
            "position_side": "LONG",
            "quantity": "20",
            "avg_price": "6563.6",
            "ts": ts,
        },
        {
            "type": "broker_position",
            "account": HEDGE,
            "instrument": "BTC-PERP",
            "position_side": "SHORT",
            "quantity": "-10",
            "avg_price": "6563.8",
            "ts": ts,
        },
    )
    assert parsed.rejections == ()
    assert parsed.ignored is None
    assert parsed.extra == {
        "event": "ACCOUNT_UPDATE",
        "reason": "ORDER",
        "complete": False,
        "balances": (
            {
                "asset": "USDT",
                "wallet_balance": "122624.12345678",
                "cross_wallet_balance": "100.12345678",
                "balance_change": "50.12345678",
            },
        ),
    }


def test_the_position_mode_given_is_written_on_every_position() -> None:
    message = load("usdm_ws_account_update_doc_hedge.json")
    parsed = parse_user_event(message, account=HEDGE, symbols=SYMBOLS, position_mode="hedge")
    assert [(p["position_side"], p["position_mode"]) for p in parsed.positions] == [
        ("LONG", "hedge"),
        ("SHORT", "hedge"),
    ]
    with pytest.raises(ValueError, match="position_mode must be hedge or netting"):
        parse_user_event(message, account=HEDGE, symbols=SYMBOLS, position_mode="dual")


def test_a_one_way_account_update() -> None:
    parsed = parse_user_event(load("usdm_ws_account_update.json"), account=NETTING, symbols=SYMBOLS)
    assert parsed.positions == (
        {
            "type": "broker_position",
            "account": NETTING,
            "instrument": "BTC-PERP",
            "position_side": "BOTH",
            "quantity": "-0.089",
            "avg_price": "19700.03933",
            "ts": "2022-11-08T04:22:33.112Z",  # T 1667881353112
        },
    )
    assert parsed.extra["reason"] == "ORDER"
    assert parsed.extra["complete"] is False
    assert parsed.extra["balances"] == (
        {
            "asset": "USDT",
            "wallet_balance": "1127.95750089",
            "cross_wallet_balance": "1040.82091149",
            "balance_change": "0",
        },
    )


def test_a_crossed_funding_fee_update_has_balances_only() -> None:
    # Constructed from the doc's description: a crossed position's funding fee pushes B only.
    message = {
        "e": "ACCOUNT_UPDATE",
        "E": 1746576000100,
        "T": 1746576000000,
        "a": {"m": "FUNDING_FEE", "B": [{"a": "USDT", "wb": "10.5", "cw": "10.5", "bc": "-0.07"}]},
    }
    parsed = parse_user_event(message, account=HEDGE, symbols=SYMBOLS)
    assert (parsed.fills, parsed.positions, parsed.funding, parsed.rejections) == ((), (), (), ())
    assert parsed.ignored == (
        "ACCOUNT_UPDATE FUNDING_FEE: balances only, no position listed; "
        "the payments per symbol come from GET /fapi/v1/income"
    )
    assert parsed.extra["balances"][0]["balance_change"] == "-0.07"


def test_an_update_of_a_position_on_an_unmapped_symbol_is_rejected_unless_flat() -> None:
    message = load("usdm_ws_account_update_doc_hedge.json")
    message["a"]["P"].append({"s": "XRPUSDT", "pa": "5", "ep": "0.5", "ps": "LONG"})
    message["a"]["P"].append({"s": "DOGEUSDT", "pa": "0", "ep": "0", "ps": "SHORT"})
    parsed = parse_user_event(message, account=HEDGE, symbols=SYMBOLS)
    assert [p["position_side"] for p in parsed.positions] == ["LONG", "SHORT"]
    assert [r.reason for r in parsed.rejections] == [SYMBOLS.missing(HEDGE, "XRPUSDT")]


def test_a_malformed_account_update_is_rejected() -> None:
    message = load("usdm_ws_account_update_doc_hedge.json")
    message["a"]["P"][1]["pa"] = 20.0
    parsed = parse_user_event(message, account=HEDGE, symbols=SYMBOLS)
    assert parsed.positions == ()
    assert [r.reason for r in parsed.rejections] == [
        "Binance ACCOUNT_UPDATE: a.P[1].pa (position amount) 20.0 is not a decimal string"
    ]


# -- userTrades -------------------------------------------------------------------------------

ETH_OPEN = {
    "type": "fill",
    "exec_id": "ETHUSDT:82357626",
    "account": NETTING,
    "instrument": "ETH-PERP",
    "side": "SELL",
    "quantity": "0.005",
    "price": "2778.35",
    "ts": "2022-02-27T02:52:02.371Z",  # time 1645930322371
    "commission": "0.0055567",
    "commission_currency": "USDT",
    "position_side": "BOTH",
}
ETH_CLOSE = {
    "type": "fill",
    "exec_id": "ETHUSDT:82357629",
    "account": NETTING,
    "instrument": "ETH-PERP",
    "side": "BUY",
    "quantity": "0.005",
    "price": "2779",
    "ts": "2022-02-27T02:52:13.910Z",  # time 1645930333910
    "commission": "0.005558",
    "commission_currency": "USDT",
    "position_side": "BOTH",
}


def test_user_trades_are_fills_without_a_client_order_id() -> None:
    parsed = parse_user_trades(load("usdm_rest_user_trades.json"), account=NETTING, symbols=SYMBOLS)
    assert parsed.fills == (ETH_OPEN, ETH_CLOSE)
    assert (parsed.rejections, parsed.ignored) == ((), None)


def test_user_trades_agree_with_ccxt_on_its_golden_row() -> None:
    golden = load("ccxt_golden_binanceusdm.json")["fetchMyTrades_swap"]
    parsed = parse_user_trades(golden["httpResponse"], account=NETTING, symbols=SYMBOLS)
    unified = golden["parsedResponse"][0]
    assert parsed.fills == (
        {
            "type": "fill",
            "exec_id": "BTCUSDT:272536245",  # id and time come as strings here
            "account": NETTING,
            "instrument": "BTC-PERP",
            "side": "BUY",
            "quantity": "0.01",
            "price": "36567.1",
            "ts": unified["datetime"],
            "commission": "0.1462684",
            "commission_currency": "USDT",
            "position_side": "BOTH",
        },
    )


def test_a_stream_fill_and_its_history_row_are_one_record() -> None:
    stream = event("usdm_ws_order_trade_update_partial_fill.json")
    history = parse_user_trades(
        load("usdm_rest_user_trades_partial_fill.json"),
        account=HEDGE,
        symbols=SYMBOLS,
        strategy_of=strategy_of,
        client_order_ids={stream.extra["order_id"]: stream.extra["client_order_id"]},
    )
    assert history.fills == stream.fills == (PARTIAL_FILL,)


def test_a_liquidation_in_the_history_is_flagged_by_its_client_order_id() -> None:
    row = {
        "symbol": "BTCUSDT",
        "id": 1122334455,
        "orderId": 9876543210,
        "side": "SELL",
        "price": "50000.00",
        "qty": "0.100",
        "commission": "5.00000000",
        "commissionAsset": "USDT",
        "time": 1759347763167,
        "positionSide": "LONG",
    }
    known = {"9876543210": "autoclose-1234567890123456"}
    parsed = parse_user_trades([row], account=HEDGE, symbols=SYMBOLS, client_order_ids=known)
    assert parsed.fills == event("usdm_ws_order_trade_update_liquidation.json").fills


def test_bad_history_rows_are_rejected_one_by_one() -> None:
    rows = load("usdm_rest_user_trades.json")
    rows[0]["qty"] = 0.005
    del rows[1]["time"]
    rows.append({"symbol": "SOLUSDT", **{k: v for k, v in rows[1].items() if k != "symbol"}})
    rows[2]["time"] = 1645930333911
    rows.append("trade")
    parsed = parse_user_trades(rows, account=NETTING, symbols=SYMBOLS)
    assert parsed.fills == ()
    assert [r.reason for r in parsed.rejections] == [
        "Binance userTrades row 0: qty 0.005 is not a decimal string",
        "Binance userTrades row 1: missing field time",
        SYMBOLS.missing(NETTING, "SOLUSDT"),
        "Binance userTrades row 3: a row is a JSON object, got string",
    ]
    assert json.loads(parsed.rejections[0].raw) == rows[0]
    not_a_list = parse_user_trades({"code": -1021}, account=NETTING, symbols=SYMBOLS)
    assert [r.reason for r in not_a_list.rejections] == [
        "Binance userTrades: the reply is a JSON array of trades, got object"
    ]
    assert (
        parse_user_trades([], account=NETTING, symbols=SYMBOLS).ignored == "userTrades: no trades"
    )


# -- positionRisk and the position mode -------------------------------------------------------


def test_position_risk_v2_in_hedge_mode() -> None:
    rows = load("usdm_rest_position_risk_v2_hedge.json")
    parsed = parse_position_risk(rows, account=HEDGE, symbols=SYMBOLS, position_mode="hedge")
    assert parsed.positions == (
        {
            "type": "broker_position",
            "account": HEDGE,
            "instrument": "BTC-PERP",
            "position_side": "LONG",
            "quantity": "20",
            "avg_price": "6563.665",
            "ts": "2021-07-05T08:38:24.765Z",  # updateTime 1625474304765
            "position_mode": "hedge",
        },
        # entryPrice 0.00000 is no entry price; updateTime 0 is no time.
        {
            "type": "broker_position",
            "account": HEDGE,
            "instrument": "BTC-PERP",
            "position_side": "SHORT",
            "quantity": "-10",
            "position_mode": "hedge",
        },
    )
    assert (parsed.rejections, parsed.extra) == ((), {"complete": True})


def test_position_risk_v3() -> None:
    parsed = parse_position_risk(
        load("usdm_rest_position_risk_v3.json"), account=NETTING, symbols=SYMBOLS
    )
    assert parsed.positions == (
        {
            "type": "broker_position",
            "account": NETTING,
            "instrument": "ADA-PERP",
            "position_side": "BOTH",
            "quantity": "30",
            "avg_price": "0.385",
            "ts": "2024-07-11T22:20:17.660Z",  # updateTime 1720736417660
        },
    )
    assert parsed.extra == {"complete": True}
    golden = load("ccxt_golden_binanceusdm.json")["fetchPositions_linear_positionRisk_v3"]
    parsed = parse_position_risk(golden["httpResponse"], account=NETTING, symbols=SYMBOLS)
    unified = golden["parsedResponse"][0]
    assert [(p["quantity"], p["avg_price"], p["ts"]) for p in parsed.positions] == [
        ("0.009", "67445.9", unified["datetime"])
    ]


def test_flat_rows_of_unmapped_symbols_and_of_the_other_mode_say_nothing() -> None:
    rows = load("usdm_rest_position_risk_v2_hedge.json")
    both = dict(rows[0], positionSide="BOTH", positionAmt="0.000", entryPrice="0.0")
    unmapped_flat = dict(rows[0], symbol="LTCUSDT", positionAmt="0.000")
    unmapped_held = dict(rows[0], symbol="XRPUSDT", positionAmt="-3")
    flat_long = dict(rows[0], positionAmt="0.000")
    parsed = parse_position_risk(
        [both, unmapped_flat, unmapped_held, flat_long], account=HEDGE, symbols=SYMBOLS
    )
    # The LONG leg says the account is in hedge mode: the flat BOTH is noise; the flat LONG
    # is kept (the broker holds nothing there) and has no average price.
    assert parsed.positions == (
        {
            "type": "broker_position",
            "account": HEDGE,
            "instrument": "BTC-PERP",
            "position_side": "LONG",
            "quantity": "0",
            "ts": "2021-07-05T08:38:24.765Z",
        },
    )
    assert [r.reason for r in parsed.rejections] == [SYMBOLS.missing(HEDGE, "XRPUSDT")]
    assert parsed.extra == {"complete": False}


def test_a_bad_position_row_makes_the_snapshot_incomplete() -> None:
    rows = load("usdm_rest_position_risk_v3.json")
    rows[0]["positionAmt"] = 30
    rows[0]["entryPrice"] = 0.385
    parsed = parse_position_risk(rows, account=NETTING, symbols=SYMBOLS)
    assert parsed.positions == ()
    assert [r.reason for r in parsed.rejections] == [
        "Binance positionRisk row 0: entryPrice 0.385 is not a decimal string"
    ]
    assert parsed.extra == {"complete": False}


def test_the_position_mode() -> None:
    assert parse_position_mode(load("usdm_rest_position_side_dual.json")) == "hedge"
    assert parse_position_mode({"dualSidePosition": False}) == "netting"
    for body, reason in [
        ({"dualSidePosition": "true"}, "dualSidePosition must be true or false, got 'true'"),
        ({}, "missing field dualSidePosition"),
        ([], "a JSON object, got array"),
    ]:
        with pytest.raises(VenueError, match=reason):
            parse_position_mode(body)


# -- income (funding) -------------------------------------------------------------------------


def test_funding_fees_from_the_income_history() -> None:
    parsed = parse_income(load("usdm_rest_income.json"), account=NETTING, symbols=SYMBOLS)
    assert parsed.funding == (
        Funding(
            payment_id="722866445480881770",
            account=NETTING,
            instrument="BTC-PERP",
            position_side=None,
            amount="-0.07427429",
            currency="USDT",
            ts="2025-05-07T00:00:00.000Z",
        ),
        Funding(
            payment_id="724074405368424950",
            account=NETTING,
            instrument="BTC-PERP",
            position_side=None,
            amount="0.00152694",
            currency="USDT",
            ts="2025-05-07T08:00:00.000Z",
        ),
        Funding(
            payment_id="767561098101965730",
            account=NETTING,
            instrument="MOVE-PERP",
            position_side=None,
            amount="0.07945043",
            currency="BNFCR",
            ts="2025-05-19T08:00:05.000Z",
        ),
    )
    # DOTUSDT is not mapped on the account: its payment is kept for review.
    assert [r.reason for r in parsed.rejections] == [SYMBOLS.missing(NETTING, "DOTUSDT")]
    assert '"tranId":427980082597228605' in parsed.rejections[0].raw
    assert parsed.extra == {"other_income": {"TRANSFER": 1, "COMMISSION": 1}}
    assert parsed.fills == parsed.positions == ()


def test_income_without_funding_is_ignored_and_bad_rows_are_rejected() -> None:
    rows = load("usdm_rest_income.json")
    parsed = parse_income(rows[:2], account=NETTING, symbols=SYMBOLS)
    assert parsed.ignored == "income: no FUNDING_FEE rows"
    bad = copy.deepcopy(rows[2:4])
    bad[0]["income"] = -0.07427429
    bad[1]["tranId"] = 7.24074405368424950e17
    parsed = parse_income(bad, account=NETTING, symbols=SYMBOLS)
    assert [r.reason for r in parsed.rejections] == [
        "Binance income row 0: income -0.07427429 is not a decimal string",
        "Binance income row 1: tranId 7.24074405368425e+17 is not an integer id",
    ]


# -- the records are ledger inputs ------------------------------------------------------------


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    # A memory store lives as long as the process: a new name for each test.
    with open_ledger(f"memory://binance-test-{uuid.uuid4().hex}") as opened:
        for name, mode in ((HEDGE, "hedge"), (NETTING, "netting")):
            assert (
                opened.register_account(
                    account=name, venue="binance", mode="LIVE", position_mode=mode
                ).status
                == "applied"
            )
        for instrument in ("BTC-PERP", "ETH-PERP", "ADA-PERP"):
            assert (
                opened.register_instrument(
                    instrument=instrument,
                    kind="perpetual",
                    multiplier="1",
                    quote_currency="USDT",
                    settlement_currency="USDT",
                ).status
                == "applied"
            )
        assert opened.register_strategy(strategy="alpha").status == "applied"
        yield opened


def lines(records: Any) -> list[str]:
    return [json.dumps(record) for record in records]


def slots(ledger: Ledger) -> list[tuple[str, str, str, str, str, str]]:
    return sorted(
        (
            p["account"],
            p["instrument"],
            p["strategy"],
            p["position_side"],
            p["signed_quantity"],
            p["avg_entry_price"],
        )
        for p in ledger.positions()
    )


def test_stream_fills_are_applied_once(ledger: Ledger) -> None:
    fills = [
        *event("usdm_ws_order_trade_update_partial_fill.json").fills,
        *parse_user_event(inner_fill_event(), account=NETTING, symbols=SYMBOLS).fills,
    ]
    first = ledger.ingest(lines(fills))
    assert (first.applied, first.rejected) == (2, 0), first.rejections
    assert slots(ledger) == [
        # BUY 0.001 LONG @ 7100.5 for alpha (its strategy by the convention)
        (HEDGE, "BTC-PERP", "alpha", "LONG", "0.001", "7100.5"),
        # SELL 0.001 @ 33468.46 of an order nobody registered: EXTERNAL's
        (NETTING, "BTC-PERP", "EXTERNAL", "BOTH", "-0.001", "33468.46"),
    ]
    by_slot = {(p["account"], p["strategy"]): p for p in ledger.positions()}
    assert by_slot[(HEDGE, "alpha")]["commissions"] == {"USDT": "0.01"}
    assert by_slot[(NETTING, "EXTERNAL")]["commissions"]["BNB"] == "0.00027086"

    again = ledger.ingest(lines(fills))
    assert (again.applied, again.duplicate, again.rejected) == (0, 2, 0)


def test_the_history_of_a_fill_the_stream_gave_is_a_duplicate(ledger: Ledger) -> None:
    stream = event("usdm_ws_order_trade_update_partial_fill.json")
    assert ledger.ingest(lines(stream.fills)).applied == 1
    rows = load("usdm_rest_user_trades_partial_fill.json")
    known = {stream.extra["order_id"]: stream.extra["client_order_id"]}
    history = parse_user_trades(
        rows, account=HEDGE, symbols=SYMBOLS, strategy_of=strategy_of, client_order_ids=known
    )
    report = ledger.ingest(lines(history.fills))
    assert (report.applied, report.duplicate, report.rejected) == (0, 1, 0)

    # Without the order's client order id, the history's record differs from the stream's:
    # the ledger refuses it as a conflict (and counts the trade once).
    bare = parse_user_trades(rows, account=HEDGE, symbols=SYMBOLS)
    report = ledger.ingest(lines(bare.fills))
    assert report.rejected == 1
    [(line, reason)] = report.rejections
    assert line == 1
    assert re.fullmatch(
        r"conflict: exec_id BTCUSDT:12345678 on account BN-HEDGE was applied before "
        r"\(journal seq \d+\) with different content: client_order_id TEST != \(none\), "
        r"strategy alpha != \(none\)",
        reason,
    ), reason
    assert slots(ledger) == [(HEDGE, "BTC-PERP", "alpha", "LONG", "0.001", "7100.5")]


def test_the_user_trades_round_trip_and_the_liquidation_close_their_trades(
    ledger: Ledger,
) -> None:
    history = parse_user_trades(
        load("usdm_rest_user_trades.json"), account=NETTING, symbols=SYMBOLS
    )
    # An EXTERNAL LONG of 0.1 @ 51000 (hand-written), for the liquidation to close.
    opening = dict(
        LIQUIDATION,
        exec_id="BTCUSDT:1122334400",
        side="BUY",
        price="51000",
        ts="2025-10-01T19:00:00.000Z",
    )
    for name in ("client_order_id", "commission", "commission_currency", "liquidation"):
        del opening[name]
    liquidation = event("usdm_ws_order_trade_update_liquidation.json").fills
    report = ledger.ingest(lines([*history.fills, opening, *liquidation]))
    assert (report.applied, report.rejected) == (4, 0), report.rejections
    assert ledger.positions() == []
    again = ledger.ingest(lines([*history.fills, opening, *liquidation]))
    assert (again.applied, again.duplicate, again.rejected) == (0, 4, 0)

    trades = {t["instrument"]: t for t in ledger.trades(with_fills=False)}
    eth, btc = trades["ETH-PERP"], trades["BTC-PERP"]
    # SELL 0.005 @ 2778.35, BUY 0.005 @ 2779: (2778.35 - 2779) * 0.005 = -0.00325 (Binance's
    # realizedPnl); net of 0.0055567 + 0.005558 of commission: -0.0143647
    assert (eth["side"], eth["status"], eth["gross_realized_pnl"], eth["realized_pnl"]) == (
        "SHORT",
        "closed",
        "-0.00325",
        "-0.0143647",
    )
    # BUY 0.1 @ 51000 then the liquidation SELL 0.1 @ 50000: -100 (Binance's rp), -105 net
    assert (btc["close_reason"], btc["gross_realized_pnl"], btc["realized_pnl"]) == (
        "liquidation",
        "-100",
        "-105",
    )


def test_broker_positions_are_reconciliation_input(ledger: Ledger) -> None:
    # One-way: the ledger holds what positionRisk v3 says, at its entry price.
    bought = {
        "type": "fill",
        "exec_id": "ADAUSDT:1",
        "account": NETTING,
        "instrument": "ADA-PERP",
        "side": "BUY",
        "quantity": "30",
        "price": "0.385",
        "ts": "2024-07-11T22:00:00Z",
    }
    assert ledger.ingest(lines([bought])).applied == 1
    v3 = parse_position_risk(
        load("usdm_rest_position_risk_v3.json"),
        account=NETTING,
        symbols=SYMBOLS,
        position_mode="netting",
    )
    report = ledger.reconcile(lines(v3.positions))
    assert [(c["instrument"], c["kind"]) for c in report.checks] == [("ADA-PERP", "agree")]

    # Hedge: the ledger holds nothing, the broker a LONG and a SHORT leg.
    v2 = parse_position_risk(
        load("usdm_rest_position_risk_v2_hedge.json"),
        account=HEDGE,
        symbols=SYMBOLS,
        position_mode="hedge",
    )
    report = ledger.reconcile(lines(v2.positions))
    assert [(c["position_side"], c["kind"], c["broker_quantity"]) for c in report.checks] == [
        ("LONG", "unknown_position", "20"),
        ("SHORT", "unknown_position", "-10"),
    ]

    # The same legs said of the one-way account: the modes differ, nothing is compared.
    wrong = parse_position_risk(
        load("usdm_rest_position_risk_v2_hedge.json"),
        account=NETTING,
        symbols=SYMBOLS,
        position_mode="hedge",
    )
    with pytest.raises(ReconcileError) as refused:
        ledger.reconcile(lines(wrong.positions))
    assert refused.value.mode_mismatch
    assert "the broker says account BN-ONEWAY is in hedge mode" in str(refused.value)
