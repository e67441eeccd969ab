"""The Interactive Brokers parser (posledger.venues.ib) on ib_async's own objects."""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from ib_async import (
    IB,
    CommissionReport,
    Contract,
    Execution,
    Fill,
    Future,
    Option,
    Position,
    Stock,
)
from ib_async.decoder import Decoder

from posledger import Ledger, open_ledger
from posledger.venues.base import Parsed, SymbolMap, VenueError
from posledger.venues.ib import (
    Joiner,
    exact_decimal,
    iso_time,
    parse_executions,
    parse_fill,
    parse_positions,
    split_exec_id,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "venues" / "ib"

ACCOUNTS = {"DU1234567": "IB-PAPER"}
MES = Future(
    symbol="MES",
    lastTradeDateOrContractMonth="20260320",
    exchange="CME",
    localSymbol="MESH6",
    multiplier="5",
    currency="USD",
    conId=730283085,
    tradingClass="MES",
)
ES = Future(
    symbol="ES",
    lastTradeDateOrContractMonth="20260320",
    exchange="CME",
    localSymbol="ESH6",
    multiplier="50",
    currency="USD",
    conId=649180695,
    tradingClass="ES",
)
AAPL = Stock(
    symbol="AAPL",
    exchange="NASDAQ",
    currency="USD",
    conId=265598,
    localSymbol="AAPL",
    tradingClass="NMS",
)
SYMBOLS = SymbolMap(
    "ib",
    {
        ("IB-PAPER", "730283085"): "MESH6",
        ("IB-PAPER", "649180695"): "ESH6",
        ("IB-PAPER", "265598"): "AAPL",
    },
)
AT = dt.datetime(2026, 3, 2, 14, 45, 2, tzinfo=dt.UTC)
BASE = "0000e0d5.6564cf53.01"


def execution(
    exec_id: str = f"{BASE}.01",
    *,
    side: str = "BOT",
    shares: Any = 3.0,
    price: float = 6850.25,
    account: str = "DU1234567",
    time: Any = AT,
    perm_id: int = 1439752814,
    order_ref: str = "orb-01",
    liquidation: int = 0,
) -> Execution:
    return Execution(
        execId=exec_id,
        time=time,
        acctNumber=account,
        exchange="CME",
        side=side,
        shares=shares,
        price=price,
        permId=perm_id,
        clientId=1,
        orderId=57,
        liquidation=liquidation,
        cumQty=shares,
        avgPrice=price,
        orderRef=order_ref,
        lastLiquidity=1,
    )


def report(exec_id: str = f"{BASE}.01", commission: float = 1.86) -> CommissionReport:
    return CommissionReport(execId=exec_id, commission=commission, currency="USD", realizedPNL=0.0)


def fill(
    ex: Execution | None = None,
    rep: CommissionReport | None = None,
    contract: Contract = MES,
) -> Fill:
    ex = execution() if ex is None else ex
    rep = report(ex.execId) if rep is None else rep
    return Fill(contract, ex, rep, AT + dt.timedelta(milliseconds=40))


def empty(ex: Execution, contract: Contract = MES) -> Fill:
    """A fill as ib_async first hands it on: its commission report not yet there."""
    return Fill(contract, ex, CommissionReport(), AT)


def parse(f: Fill, **kwargs: Any) -> Parsed:
    return parse_fill(f, accounts=ACCOUNTS, symbols=SYMBOLS, **kwargs)


def joiner() -> Joiner:
    return Joiner(accounts=ACCOUNTS, symbols=SYMBOLS)


MES_FILL = {
    "type": "fill",
    "exec_id": "0000e0d5.6564cf53.01.01",
    "account": "IB-PAPER",
    "instrument": "MESH6",
    "side": "BUY",
    "quantity": "3",
    "price": "6850.25",
    "ts": "2026-03-02T14:45:02Z",
    "client_order_id": "1439752814",
    "strategy": "orb-01",
    "commission": "1.86",
    "commission_currency": "USD",
}


# --- one fill ------------------------------------------------------------------------------


def test_a_fill_gives_the_exact_record() -> None:
    parsed = parse(fill())
    assert parsed.fills == (MES_FILL,)
    assert parsed.rejections == ()
    assert parsed.ignored is None


def test_floats_are_read_as_the_decimals_ib_sent() -> None:
    ex = execution("0000e0d5.6564cf60.01.01", shares=3.0, price=4512.25)
    parsed = parse(fill(ex, report(ex.execId, 2.25), contract=ES))
    (record,) = parsed.fills
    assert (record["quantity"], record["price"], record["commission"]) == ("3", "4512.25", "2.25")
    assert record["instrument"] == "ESH6"
    # A newer ib_async may give sizes as Decimal: the same record.
    ex = execution("0000e0d5.6564cf60.01.01", shares=Decimal("3"), price=4512.25)
    assert parse(fill(ex, report(ex.execId, 2.25), contract=ES)).fills == (record,)


def test_every_short_decimal_survives_the_float_ib_async_made_of_it() -> None:
    rng = random.Random(20260302)
    for _ in range(20_000):
        digits = rng.randint(1, 15)
        text = str(rng.randrange(10 ** (digits - 1), 10**digits))
        point = rng.randint(0, digits + 3)
        number = Decimal(text).scaleb(-point)
        assert exact_decimal(float(str(number)), "x") == number, number


def test_a_float_that_is_not_a_short_decimal_is_refused() -> None:
    for bad in (0.1 + 0.2, sys.float_info.max, float("nan"), float("inf"), True, None):
        with pytest.raises(VenueError):
            exact_decimal(bad, "price")
    with pytest.raises(VenueError, match="IB's unset value"):
        exact_decimal(sys.float_info.max, "price")
    parsed = parse(fill(execution(price=0.1 + 0.2)))
    assert parsed.fills == ()
    (rejection,) = parsed.rejections
    assert "price of 0000e0d5.6564cf53.01.01 0.30000000000000004" in rejection.reason
    assert "Execution(" in rejection.raw


def test_times_are_utc_with_their_fraction_and_need_a_zone() -> None:
    chicago = dt.datetime(2026, 3, 2, 8, 45, 2, 117000, tzinfo=ZoneInfo("America/Chicago"))
    assert iso_time(chicago) == "2026-03-02T14:45:02.117000Z"
    assert iso_time(AT) == "2026-03-02T14:45:02Z"
    parsed = parse(fill(execution(time=chicago)))
    assert parsed.fills[0]["ts"] == "2026-03-02T14:45:02.117000Z"
    for bad in (dt.datetime(2026, 3, 2, 14, 45, 2), dt.datetime(1970, 1, 1, tzinfo=dt.UTC)):
        (rejection,) = parse(fill(execution(time=bad))).rejections
        assert "time of 0000e0d5.6564cf53.01.01" in rejection.reason


def test_a_sale_by_liquidation_without_an_order_of_ib() -> None:
    ex = execution(side="SLD", shares=1.0, price=6861.5, perm_id=0, order_ref="", liquidation=1)
    (record,) = parse(fill(ex, report(commission=0.62))).fills
    assert record["side"] == "SELL"
    assert record["liquidation"] is True
    assert "client_order_id" not in record
    assert "strategy" not in record


def test_the_order_ref_goes_through_strategy_of() -> None:
    tags = {"orb-01": "mes-orb-01"}
    (record,) = parse(fill(), strategy_of=tags.get).fills
    assert record["strategy"] == "mes-orb-01"
    (record,) = parse(fill(execution(order_ref="manual")), strategy_of=tags.get).fills
    assert "strategy" not in record
    (rejection,) = parse(fill(execution(order_ref=" orb"))).rejections
    assert "orderRef" in rejection.reason


def test_an_unmapped_account_or_contract_is_refused_with_what_to_do() -> None:
    (rejection,) = parse(fill(execution(account="U7654321"))).rejections
    assert "IB account U7654321 is not mapped to a posledger account" in rejection.reason
    unknown = Future(symbol="MNQ", localSymbol="MNQH6", exchange="CME", conId=730283097)
    (rejection,) = parse(fill(contract=unknown)).rejections
    assert "posledger symbols add ib IB-PAPER 730283097 INSTRUMENT" in rejection.reason
    assert "MNQH6" in rejection.reason
    (rejection,) = parse(fill(contract=Future(symbol="MES", localSymbol="MESH6"))).rejections
    assert "has no conId" in rejection.reason


def test_an_unreadable_execution_is_refused_before_its_report() -> None:
    j = joiner()
    (rejection,) = j.execution(empty(execution(account="U7654321"))).rejections
    assert "U7654321" in rejection.reason
    assert j.pending == ()


def test_bad_sides_and_quantities_are_refused() -> None:
    assert "not BOT or SLD" in parse(fill(execution(side="BUY"))).rejections[0].reason
    assert "not positive" in parse(fill(execution(shares=0.0))).rejections[0].reason


def test_a_combo_execution_is_left_to_its_legs() -> None:
    bag = Contract(secType="BAG", symbol="MES", conId=28812380, exchange="CME")
    parsed = parse(fill(contract=bag))
    assert parsed.fills == () and parsed.rejections == ()
    assert parsed.ignored is not None and "combo (BAG)" in parsed.ignored


def test_exec_ids_split_into_base_and_correction() -> None:
    assert split_exec_id("0000e0d5.6564cf53.01.02") == ("0000e0d5.6564cf53.01", 2)
    assert split_exec_id("0000e0d5.6564cf53.01.01") == ("0000e0d5.6564cf53.01", 1)
    assert split_exec_id("abc") == ("abc", None)
    assert split_exec_id("abc.x1") == ("abc.x1", None)


# --- commissions joined --------------------------------------------------------------------


def test_a_fill_waits_for_its_commission_report() -> None:
    parsed = parse(empty(execution()))
    assert parsed.fills == ()
    assert parsed.extra["awaiting_commission"] == ("0000e0d5.6564cf53.01.01",)


def test_the_report_after_the_execution() -> None:
    j = joiner()
    held = j.execution(empty(execution()))
    assert held.fills == () and j.pending == (f"{BASE}.01",)
    assert j.report(report()).fills == (MES_FILL,)
    assert j.pending == ()
    # ib_async's events again (or the same execution from a catch-up): nothing new.
    assert j.execution(fill()).fills == ()
    assert j.report(report()).fills == () and j.report(report()).rejections == ()


def test_the_report_before_the_execution() -> None:
    j = joiner()
    assert j.report(report()).fills == ()
    assert j.execution(empty(execution())).fills == (MES_FILL,)
    assert j.pending == ()


def test_a_report_ib_async_put_in_the_fill_is_used() -> None:
    j = joiner()
    held = empty(execution())
    j.execution(held)
    held.commissionReport.execId = f"{BASE}.01"  # ib_async updates the fill's report in place
    held.commissionReport.commission = 1.86
    held.commissionReport.currency = "USD"
    assert j.flush().fills == (MES_FILL,)


def test_flushed_without_commission_and_never_sent_again() -> None:
    j = joiner()
    j.execution(empty(execution()))
    (record,) = j.flush().fills
    assert record == {k: v for k, v in MES_FILL.items() if not k.startswith("commission")}
    late = j.report(report())
    assert late.fills == ()
    (rejection,) = late.rejections
    assert "came after the fill was passed on without a commission" in rejection.reason
    assert "1.86 USD" in rejection.reason
    # The same execution again with its report (a catch-up): refused once, not each time.
    assert j.execution(fill()).fills == ()
    again = j.execution(fill(rep=report(commission=1.87)))
    assert "came after the fill" in again.rejections[0].reason
    assert j.execution(fill(rep=report(commission=1.87))).rejections == ()
    assert j.report(report()).rejections == ()


def test_an_unreadable_commission_books_the_fill_without_it() -> None:
    parsed = parse(fill(rep=report(commission=sys.float_info.max)))
    (record,) = parsed.fills
    assert "commission" not in record
    (rejection,) = parsed.rejections
    assert "unset" in rejection.reason and "booked without a commission" in rejection.reason


def test_a_changed_report_after_booking_is_refused() -> None:
    j = joiner()
    j.execution(fill())
    (rejection,) = j.report(report(commission=2.0)).rejections
    assert "differs from the one booked" in rejection.reason


# --- corrections -------------------------------------------------------------------------


def correction(version: int, **kwargs: Any) -> Execution:
    return execution(f"{BASE}.{version:02d}", **kwargs)


def test_a_larger_quantity_is_booked_as_the_difference() -> None:
    j = joiner()
    assert j.execution(fill()).fills == (MES_FILL,)
    ex = correction(2, shares=4.0)
    (difference,) = j.execution(fill(ex, report(ex.execId, 2.48))).fills
    assert difference == {
        **MES_FILL,
        "exec_id": "0000e0d5.6564cf53.01.02",
        "quantity": "1",
        "commission": "0.62",
    }


def test_a_correction_that_cannot_be_a_difference_is_refused_for_review() -> None:
    j = joiner()
    j.execution(fill())
    for ex in (
        correction(2, price=6850.5),
        correction(2, shares=2.0),
        correction(2, side="SLD"),
        correction(2, order_ref="other"),
    ):
        parsed = joiner_after_original().execution(fill(ex, report(ex.execId)))
        assert parsed.fills == ()
        (rejection,) = parsed.rejections
        assert "IB corrected execution 0000e0d5.6564cf53.01.01 (BUY 3 @ 6850.25" in rejection.reason
        assert "booked) by 0000e0d5.6564cf53.01.02" in rejection.reason
        assert "not booked" in rejection.reason
    # The ledger still holds .01: a later correction is measured against it.
    ex = correction(2, price=6850.5)
    assert j.execution(fill(ex, report(ex.execId))).rejections
    ex = correction(3, shares=5.0)
    (difference,) = j.execution(fill(ex, report(ex.execId, 3.1))).fills
    assert (difference["exec_id"], difference["quantity"]) == (f"{BASE}.03", "2")
    assert difference["commission"] == "1.24"


def joiner_after_original() -> Joiner:
    j = joiner()
    j.execution(fill())
    return j


def test_a_correction_that_changes_nothing_is_ignored() -> None:
    j = joiner_after_original()
    ex = correction(2, time=AT + dt.timedelta(minutes=3))
    parsed = j.execution(fill(ex, report(ex.execId)))
    assert parsed.fills == () and parsed.rejections == ()
    assert parsed.ignored is not None and "changes nothing booked" in parsed.ignored


def test_a_correction_of_an_execution_not_passed_on_is_refused() -> None:
    ex = correction(2, shares=4.0)
    for parsed in (
        parse(fill(ex, report(ex.execId))),
        joiner().execution(fill(ex, report(ex.execId))),
    ):
        assert parsed.fills == ()
        (rejection,) = parsed.rejections
        assert "no earlier version was passed on here" in rejection.reason
        assert "if the ledger holds no fill of 0000e0d5.6564cf53.01" in rejection.reason


def test_a_correction_supersedes_an_execution_still_held() -> None:
    j = joiner()
    j.execution(empty(execution()))
    ex = correction(2, shares=4.0)
    parsed = j.execution(fill(ex, report(ex.execId)))
    assert parsed.fills == ()
    assert j.pending == ()
    assert "superseded" in " ".join(parsed.extra["ignored"])
    (rejection,) = parsed.rejections
    assert "no earlier version was passed on here" in rejection.reason
    # Its report, and the execution itself again, come too late: nothing is booked.
    assert j.report(report()).fills == ()
    assert j.execution(fill()).fills == ()


def test_an_execution_after_its_correction_is_superseded() -> None:
    j = joiner()
    ex = correction(2, shares=4.0)
    j.execution(fill(ex, report(ex.execId)))
    parsed = j.execution(fill())
    assert parsed.fills == () and parsed.rejections == ()
    assert parsed.ignored is not None and "superseded by its correction" in parsed.ignored


# --- catch-up ------------------------------------------------------------------------------


def test_catch_up_gives_the_live_records() -> None:
    second = execution("0000e0d5.6564d0a1.01.01", side="SLD", shares=1.0, price=6861.5)
    fills = [fill(), fill(second, report(second.execId, 0.62))]
    parsed = parse_executions(fills, accounts=ACCOUNTS, symbols=SYMBOLS)
    live = [parse(f).fills[0] for f in fills]
    assert list(parsed.fills) == live
    ex = correction(2, shares=4.0)
    third = empty(execution("0000e0d5.6564d1b2.01.01"))
    parsed = parse_executions(
        [*fills, fill(ex, report(ex.execId, 2.48)), third], accounts=ACCOUNTS, symbols=SYMBOLS
    )
    assert [r["exec_id"] for r in parsed.fills] == [
        f"{BASE}.01",
        "0000e0d5.6564d0a1.01.01",
        f"{BASE}.02",
    ]
    assert parsed.extra["awaiting_commission"] == ("0000e0d5.6564d1b2.01.01",)


# --- positions -----------------------------------------------------------------------------


def test_positions_are_signed_with_the_price_of_their_average_cost() -> None:
    spx_put = Option(
        symbol="SPX",
        lastTradeDateOrContractMonth="20260320",
        strike=6800.0,
        right="P",
        exchange="CBOE",
        multiplier="100",
        currency="USD",
        conId=812345678,
        localSymbol="SPX   260320P06800000",
    )
    symbols = SymbolMap("ib", {**SYMBOLS.entries, ("IB-PAPER", "812345678"): "SPX-P6800"})
    parsed = parse_positions(
        [
            Position("DU1234567", MES, 2.0, 34251.87),
            Position("DU1234567", AAPL, -100.0, 187.35508),
            Position("DU1234567", spx_put, -1.0, 4212.3456),
            Position("DU1234567", ES, 0.0, 0.0),
        ],
        accounts=ACCOUNTS,
        symbols=symbols,
    )
    assert parsed.rejections == ()
    assert parsed.positions == (
        {
            "type": "broker_position",
            "account": "IB-PAPER",
            "instrument": "MESH6",
            "quantity": "2",
            "avg_price": "6850.374",
            "position_mode": "netting",
        },
        {
            "type": "broker_position",
            "account": "IB-PAPER",
            "instrument": "AAPL",
            "quantity": "-100",
            "avg_price": "187.35508",
            "position_mode": "netting",
        },
        {
            "type": "broker_position",
            "account": "IB-PAPER",
            "instrument": "SPX-P6800",
            "quantity": "-1",
            "avg_price": "42.123456",
            "position_mode": "netting",
        },
        {
            "type": "broker_position",
            "account": "IB-PAPER",
            "instrument": "ESH6",
            "quantity": "0",
            "position_mode": "netting",
        },
    )


def test_a_position_without_multiplier_or_mapping() -> None:
    bare = Future(symbol="MES", localSymbol="MESH6", exchange="CME", conId=730283085)
    bond = Contract(secType="BOND", conId=555000111, localSymbol="T 4 1/4 02/15/54")
    symbols = SymbolMap("ib", {**SYMBOLS.entries, ("IB-PAPER", "555000111"): "UST-2054"})
    parsed = parse_positions(
        [
            Position("DU1234567", bare, 1.0, 34251.87),
            Position("DU1234567", bond, 10000.0, 98.765),
            Position("U7654321", MES, 1.0, 34251.87),
            Position("DU1234567", AAPL, 1.0 / 3, 187.0),
        ],
        accounts=ACCOUNTS,
        symbols=symbols,
    )
    assert parsed.positions == (
        {
            "type": "broker_position",
            "account": "IB-PAPER",
            "instrument": "MESH6",
            "quantity": "1",
            "position_mode": "netting",
        },
        {
            "type": "broker_position",
            "account": "IB-PAPER",
            "instrument": "UST-2054",
            "quantity": "10000",
            "position_mode": "netting",
        },
    )
    reasons = [r.reason for r in parsed.rejections]
    assert "IB account U7654321 is not mapped" in reasons[0]
    assert "position of IB-PAPER AAPL 0.3333333333333333" in reasons[1]


# --- through ib_async's decoder, into a ledger ----------------------------------------------


def decoded() -> tuple[list[Fill], list[Position]]:
    """The wire session of the fixture, read by ib_async's own decoder."""
    session = json.loads((FIXTURES / "wire_session.json").read_text())
    ib = IB()
    decoder = Decoder(ib.wrapper, session["server_version"])
    handlers = {"11": decoder.execDetails, "59": decoder.commissionReport}
    handlers["61"] = decoder.position
    for message in session["messages"]:
        handlers[message[0]](message)
    return ib.fills(), ib.positions()


def setup(ledger: Ledger) -> None:
    outcomes = [
        ledger.register_account(
            account="IB-PAPER", venue="IB", mode="PAPER", position_mode="netting"
        ),
        ledger.register_instrument(
            instrument="MESH6",
            kind="future",
            multiplier="5",
            quote_currency="USD",
            settlement_currency="USD",
            tick_size="0.25",
        ),
        ledger.register_strategy(strategy="orb-01"),
    ]
    assert [o.status for o in outcomes] == ["applied"] * 3


def test_decoded_wire_messages_give_exact_records() -> None:
    fills, positions = decoded()
    parsed = parse_executions(fills, accounts=ACCOUNTS, symbols=SYMBOLS)
    assert parsed.rejections == ()
    assert parsed.fills == (
        MES_FILL,
        {
            "type": "fill",
            "exec_id": "0000e0d5.6564d0a1.01.01",
            "account": "IB-PAPER",
            "instrument": "MESH6",
            "side": "SELL",
            "quantity": "1",
            "price": "6861.5",
            "ts": "2026-03-02T15:12:47Z",
            "client_order_id": "1439752815",
            "strategy": "orb-01",
            "commission": "0.62",
            "commission_currency": "USD",
        },
    )
    (position,) = parse_positions(positions, accounts=ACCOUNTS, symbols=SYMBOLS).positions
    assert position["quantity"] == "2" and position["avg_price"] == "6850.374"


def test_the_records_are_ledger_inputs_applied_once() -> None:
    fills, positions = decoded()
    parsed = parse_executions(fills, accounts=ACCOUNTS, symbols=SYMBOLS)
    lines = [json.dumps(r) for r in parsed.fills]
    with open_ledger(f"memory://ib-test-{uuid.uuid4().hex}") as ledger:
        setup(ledger)
        report_ = ledger.ingest(lines)
        assert (report_.applied, report_.rejected) == (2, 0), report_.rejections
        (slot,) = ledger.positions()
        assert (slot["strategy"], slot["signed_quantity"]) == ("orb-01", "2")
        assert slot["avg_entry_price"] == "6850.25"
        # 1 x (6861.5 - 6850.25) x 5 = 56.25, less 1.86 + 0.62 of commission
        assert Decimal(slot["realized_pnl"]) == Decimal("53.77")
        # Sent again, live or by a catch-up: duplicates.
        again = ledger.ingest([json.dumps(parse(f).fills[0]) for f in fills])
        assert (again.applied, again.duplicate, again.rejected) == (0, 2, 0)
        # The broker agrees (avgCost holds the commission: within the tolerance).
        snapshot = parse_positions(positions, accounts=ACCOUNTS, symbols=SYMBOLS)
        run = ledger.reconcile([json.dumps(r) for r in snapshot.positions])
        assert run.agreed, run.checks


def test_a_difference_is_applied_and_a_second_version_would_conflict() -> None:
    j = joiner()
    first = j.execution(fill()).fills
    ex = correction(2, shares=4.0)
    difference = j.execution(fill(ex, report(ex.execId, 2.48))).fills
    with open_ledger(f"memory://ib-test-{uuid.uuid4().hex}") as ledger:
        setup(ledger)
        done = ledger.ingest([json.dumps(r) for r in (*first, *difference)])
        assert (done.applied, done.rejected) == (2, 0), done.rejections
        (slot,) = ledger.positions()
        assert slot["signed_quantity"] == "4"
        assert slot["avg_entry_price"] == "6850.25"
        assert slot["commissions"] == {"USD": "2.48"}
        # Why a fill passed on without commission is never sent again with it.
        bare = {k: v for k, v in MES_FILL.items() if not k.startswith("commission")}
        other = ledger.ingest([json.dumps({**bare, "exec_id": "0000e0d5.6564d2c3.01.01"})])
        assert other.applied == 1
        conflict = ledger.ingest([json.dumps({**MES_FILL, "exec_id": "0000e0d5.6564d2c3.01.01"})])
        assert conflict.rejected == 1
        assert "conflict" in conflict.rejections[0][1]
