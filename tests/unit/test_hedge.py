"""Hedge mode (docs/accounting.md, Slots; Hedge slots never change sign): LONG and SHORT
slots at once; a hedge slot never changes sign."""

from __future__ import annotations

from posledger.domain.enums import EXTERNAL, CloseReason, Direction, Role
from posledger.domain.numbers import D

from .scenario import Scenario, perpetual


def hedge() -> Scenario:
    return Scenario(position_mode="hedge", instrument=perpetual("BTCUSDT-PERP"))


def test_long_and_short_slots_live_side_by_side():
    book = hedge()
    book.fill("s1", "BUY 1 @ 100 LONG")
    book.fill("s1", "SELL 2 @ 101 SHORT")
    assert book.slot("s1", "LONG").quantity == D(1)
    assert book.slot("s1", "SHORT").quantity == D(-2)
    assert len(book.book.open_trades) == 2
    assert book.trade("s1", "LONG").direction is Direction.LONG
    assert book.trade("s1", "SHORT").direction is Direction.SHORT

    # SELL on LONG reduces: (110 - 100) * 0.5 = 5
    decision = book.fill("s1", "SELL 0.5 @ 110 LONG")
    assert [leg.role for leg in decision.legs] == [Role.REDUCE]
    assert book.trade("s1", "LONG").gross_realized == D(5)
    # BUY on SHORT reduces: (95 - 101) * 1 * (-1) = 6
    book.fill("s1", "BUY 1 @ 95 SHORT")
    assert book.trade("s1", "SHORT").gross_realized == D(6)
    assert book.slot("s1", "LONG").quantity == D("0.5")
    assert book.slot("s1", "SHORT").quantity == D(-1)
    assert book.external("LONG").quantity == D(0)
    assert book.external("SHORT").quantity == D(0)


def test_over_reduction_of_a_long_slot_goes_to_external_as_hedge_overshoot():
    book = hedge()
    book.fill("s1", "BUY 0.5 @ 100 LONG")
    decision = book.fill("s1", "SELL 2 @ 120 fee 1 LONG")

    # s1 LONG closes its 0.5: (120 - 100) * 0.5 = 10 ; commission 1 * 0.5/2 = 0.25
    assert book.slot("s1", "LONG").quantity == D(0)
    trade = book.trade("s1", "LONG")
    assert trade.close_reason is CloseReason.EXIT
    assert trade.gross_realized == D(10)
    assert trade.realized_pnl == D("9.75")
    assert len(book.trades_of("s1", "LONG")) == 1  # the slot never turned short
    # the other 1.5 (and 0.75 of commission) are EXTERNAL's, on the LONG side
    assert book.external("LONG").quantity == D("-1.5")
    assert book.trade(EXTERNAL, "LONG").commissions == {"USDT": D("0.75")}
    assert [(a.kind, a.key.strategy, a.quantity) for a in decision.anomalies] == [
        ("hedge_overshoot", "s1", D("1.5")),
        ("external_wrong_side", EXTERNAL, D("1.5")),
    ]


def test_over_reduction_of_a_short_slot():
    book = hedge()
    book.fill("s2", "SELL 1 @ 100 SHORT")
    decision = book.fill("s2", "BUY 3 @ 90 SHORT")
    assert book.slot("s2", "SHORT").quantity == D(0)
    assert book.trade("s2", "SHORT").gross_realized == D(10)  # (90 - 100) * 1 * (-1)
    assert book.external("SHORT").quantity == D(2)
    assert [a.kind for a in decision.anomalies] == ["hedge_overshoot", "external_wrong_side"]


def test_buy_on_a_flat_short_slot_never_opens_it_long():
    book = hedge()
    decision = book.fill("s1", "BUY 1 @ 100 SHORT")
    assert book.slot("s1", "SHORT").quantity == D(0)
    assert book.trades_of("s1", "SHORT") == []
    assert book.external("SHORT").quantity == D(1)
    assert [a.kind for a in decision.anomalies] == ["hedge_overshoot", "external_wrong_side"]


def test_exit_order_overshoot_on_hedge_is_exit_overshoot():
    book = hedge()
    book.fill("s1", "BUY 1 @ 100 LONG")
    book.order("tp", "s1", "SELL 3 LONG", intent="take_profit")
    decision = book.fill("tp", "SELL 3 @ 110")
    assert book.trade("s1", "LONG").close_reason is CloseReason.TAKE_PROFIT
    assert book.external("LONG").quantity == D(-2)
    kinds = [a.kind for a in decision.anomalies]
    assert kinds == ["exit_overshoot", "external_wrong_side"]


def test_entry_order_reducing_a_hedge_slot():
    book = hedge()
    book.order("o1", "s1", "SELL 2 SHORT")
    book.fill("o1", "SELL 2 @ 100")
    book.order("o2", "s1", "BUY 1 SHORT", intent="entry")
    decision = book.fill("o2", "BUY 1 @ 99")
    assert [leg.role for leg in decision.legs] == [Role.REDUCE]
    assert decision.anomalies == ()
    assert book.slot("s1", "SHORT").quantity == D(-1)


def test_external_hedge_slot_pushed_to_the_wrong_sign():
    book = hedge()
    decision = book.fill(None, "SELL 1 @ 100 LONG")
    # EXTERNAL may hold anything (the ledger is missing fills), but it is flagged
    assert book.external("LONG").quantity == D(-1)
    assert [(a.kind, a.key.strategy, a.quantity) for a in decision.anomalies] == [
        ("external_wrong_side", EXTERNAL, D(1))
    ]


def test_external_hedge_slot_on_the_right_side_is_not_flagged():
    book = hedge()
    decision = book.fill(None, "BUY 1 @ 100 LONG")
    assert decision.anomalies == ()
    decision = book.fill(None, "SELL 1 @ 100 SHORT")
    assert decision.anomalies == ()
    assert book.external("LONG").quantity == D(1)
    assert book.external("SHORT").quantity == D(-1)
