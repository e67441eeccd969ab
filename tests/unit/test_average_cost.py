"""Average cost (docs/accounting.md, Slots and Trades): open, increase, reduce, close;
multiplier; close reasons; roles."""

from __future__ import annotations

import pytest

from posledger.domain.enums import CloseReason, Direction, Role
from posledger.domain.numbers import D

from .scenario import SECOND, T0, Scenario, future


def roles(decision):
    return [leg.role for leg in decision.legs]


def test_scale_in_and_out_on_mes_with_multiplier_five():
    book = Scenario(instrument=future("MES", multiplier="5"))

    opened = book.fill("s1", "BUY 2 @ 100 fee 1", at=60)
    assert roles(opened) == [Role.OPEN]
    slot = book.slot("s1")
    assert (slot.quantity, slot.avg_entry) == (D(2), D(100))
    trade = book.trade("s1")
    assert trade.direction is Direction.LONG
    assert (trade.quantity, trade.peak_quantity) == (D(2), D(2))
    # The opening commission is in the trade from the start: net = 0 - 1.
    assert trade.realized_pnl == D(-1)

    # avg = (100*2 + 103*1) / 3 = 303 / 3 = 101
    increased = book.fill("s1", "BUY 1 @ 103 fee 0.5", at=120)
    assert roles(increased) == [Role.INCREASE]
    assert book.slot("s1").avg_entry == D(101)
    assert book.trade("s1").avg_entry == D(101)
    assert book.trade("s1").peak_quantity == D(3)

    # Reduce 1 at 110 through a take-profit order: (110 - 101) * 1 * 5 * (+1) = 45
    book.order("tp1", "s1", "SELL 1", intent="take_profit")
    reduced = book.fill("tp1", "SELL 1 @ 110 fee 0.5", at=180)
    assert roles(reduced) == [Role.REDUCE]
    assert reduced.legs[0].realized == D(45)
    slot = book.slot("s1")
    assert (slot.quantity, slot.avg_entry) == (D(2), D(101))  # reduce keeps avg
    trade = book.trade("s1")
    assert trade.is_open
    assert trade.gross_realized == D(45)
    assert trade.avg_exit == D(110)
    # net = 45 - (1 + 0.5 + 0.5) = 43
    assert trade.realized_pnl == D(43)

    # Two partial fills of one order close the rest:
    # (112 - 101) * 1 * 5 = 55 ; (114 - 101) * 1 * 5 = 65 ; gross 45 + 55 + 65 = 165
    book.order("tp2", "s1", "SELL 2", intent="take_profit")
    book.fill("tp2", "SELL 1 @ 112 fee 0.5", at=240)
    assert book.trade("s1").avg_exit == D(111)  # (110*1 + 112*1) / 2
    closed = book.fill("tp2", "SELL 1 @ 114 fee 0.5", at=300)
    assert roles(closed) == [Role.CLOSE]
    assert closed.legs[0].realized == D(65)

    assert book.slot("s1").quantity == D(0)
    assert not book.book.open_trades
    trade = book.trade("s1")
    assert not trade.is_open
    assert trade.close_reason is CloseReason.TAKE_PROFIT
    assert trade.gross_realized == D(165)
    assert trade.commissions == {"USD": D("3.0")}  # 1 + 4 * 0.5
    assert trade.realized_pnl == D(162)  # 165 - 3
    assert trade.avg_exit == D(112)  # (110 + 112 + 114) / 3
    assert trade.peak_quantity == D(3)
    assert trade.quantity == D(0)
    # (112 - 101) / 101 = 0.10891089108910891089... -> 18 digits, half-even
    assert trade.realized_return == D("0.108910891089108911")
    assert trade.opened_at == T0 + 60 * SECOND
    assert trade.closed_at == T0 + 300 * SECOND
    assert trade.duration_ns == 240 * SECOND


def test_short_trade_realized_is_sign_adjusted():
    book = Scenario(instrument=future("MES", multiplier="5"))
    book.fill("s1", "SELL 2 @ 100")
    assert book.slot("s1").quantity == D(-2)
    assert book.trade("s1").direction is Direction.SHORT
    # (90 - 100) * 1 * 5 * (-1) = +50
    decision = book.fill("s1", "BUY 1 @ 90")
    assert decision.legs[0].realized == D(50)
    # (105 - 100) * 1 * 5 * (-1) = -25
    decision = book.fill("s1", "BUY 1 @ 105")
    assert decision.legs[0].realized == D(-25)
    trade = book.trade("s1")
    assert trade.gross_realized == D(25)
    # avg exit 97.5; return = (97.5 - 100) * (-1) / 100 = 0.025
    assert trade.avg_exit == D("97.5")
    assert trade.realized_return == D("0.025")


def test_average_is_quantized_to_18_digits_and_later_steps_use_the_quantized_value():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    # (100*1 + 101*2) / 3 = 100.6666...  -> 100.666666666666666667 (half-even)
    book.fill("s1", "BUY 2 @ 101")
    assert book.slot("s1").avg_entry == D("100.666666666666666667")
    # (101 - 100.666666666666666667) * 3 = 0.333333333333333333 * 3 = 0.999999999999999999
    # (with the exact average it would be 1: the stored, quantized average is used)
    decision = book.fill("s1", "SELL 3 @ 101")
    assert decision.legs[0].realized == D("0.999999999999999999")


@pytest.mark.parametrize(
    ("second", "average"),
    [
        # (1.000000000000000001 + 1) / 2 = 1.0000000000000000005 -> tie, to even: ...000
        ("1.000000000000000001", "1.000000000000000000"),
        # (1.000000000000000003 + 1) / 2 = 1.0000000000000000015 -> tie, to even: ...002
        ("1.000000000000000003", "1.000000000000000002"),
    ],
)
def test_average_rounds_half_even(second, average):
    book = Scenario()
    book.fill("s1", "BUY 1 @ 1")
    book.fill("s1", f"BUY 1 @ {second}")
    assert book.slot("s1").avg_entry == D(average)


def test_fractional_quantities():
    book = Scenario(instrument=future("BTC", multiplier="0.1"))
    book.fill("s1", "BUY 0.5 @ 20000")
    # avg = (20000*0.5 + 21000*0.25) / 0.75 = (10000 + 5250) / 0.75 = 20333.333...
    book.fill("s1", "BUY 0.25 @ 21000")
    assert book.slot("s1").avg_entry == D("20333.333333333333333333")
    assert book.slot("s1").quantity == D("0.75")
    # (22000 - 20333.333333333333333333) * 0.3 * 0.1 = 1666.666666666666666667 * 0.03
    #   = 50.00000000000000000001 -> 18 digits: 50.000000000000000000
    decision = book.fill("s1", "SELL 0.3 @ 22000")
    assert decision.legs[0].realized == D("50.000000000000000000")
    assert book.slot("s1").quantity == D("0.45")


@pytest.mark.parametrize(
    ("intent", "reason"),
    [
        ("exit", CloseReason.EXIT),
        ("take_profit", CloseReason.TAKE_PROFIT),
        ("stop_loss", CloseReason.STOP_LOSS),
    ],
)
def test_close_reason_is_the_intent_of_the_closing_order(intent, reason):
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100")
    book.order("x", "s1", "SELL 2", intent=intent)
    book.fill("x", "SELL 2 @ 99")
    assert book.trade("s1").close_reason is reason


def test_close_without_order_is_exit():
    book = Scenario()
    book.fill("s1", "SELL 2 @ 100")
    book.fill("s1", "BUY 2 @ 99")
    assert book.trade("s1").close_reason is CloseReason.EXIT


def test_liquidation_flag_wins_over_the_orders_intent():
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100")
    book.order("sl", "s1", "SELL 2", intent="stop_loss")
    book.fill("sl", "SELL 2 @ 80 liquidation")
    trade = book.trade("s1")
    assert trade.close_reason is CloseReason.LIQUIDATION
    assert trade.gross_realized == D(-40)  # (80 - 100) * 2


def test_liquidation_without_order():
    book = Scenario()
    book.fill(None, "SELL 1 @ 100")
    book.fill(None, "BUY 1 @ 130 liquidation")
    trade = book.trade("EXTERNAL")
    assert trade.close_reason is CloseReason.LIQUIDATION
    assert trade.gross_realized == D(-30)


def test_second_round_trip_is_a_new_trade():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    book.fill("s1", "SELL 1 @ 101")
    opened = book.fill("s1", "BUY 1 @ 102")
    first, second = book.trades_of("s1")
    assert opened.opened == (second.trade_id,)
    assert second.trade_id != first.trade_id
    assert not first.is_open
    assert second.is_open
    assert second.avg_entry == D(102)
    assert second.gross_realized == D(0)
    assert book.slot("s1").trade_id == second.trade_id


def test_flat_slot_keeps_its_last_trade_and_average():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    book.fill("s1", "SELL 1 @ 101")
    slot = book.slot("s1")
    assert slot.quantity == D(0)
    assert slot.trade_id == book.trade("s1").trade_id
    assert slot.avg_entry == D(100)
    assert slot.last_price == D(101)


def test_a_trade_never_closes_before_it_opened():
    """Fills can arrive out of order: a closing fill stamped before the trade's opening
    fill closes it at its opening time, so a trade's duration is never negative."""
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100", at=600)
    closed = book.fill("s1", "SELL 1 @ 101", at=300)
    trade = book.trade("s1")
    assert not trade.is_open
    assert trade.opened_at == T0 + 600 * SECOND
    assert trade.closed_at == trade.opened_at
    assert trade.duration_ns == 0
    # the fill keeps its own time: only the trade's close is held at its open
    assert closed.fill.ts == T0 + 300 * SECOND
