"""Trade statistics (docs/accounting.md, Trades): average exit, return on entry, peak
quantity, duration."""

from __future__ import annotations

from posledger.domain.numbers import D

from .scenario import SECOND, Scenario, future


def test_peak_is_the_largest_quantity_held_not_the_sum_of_entries():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    book.fill("s1", "BUY 2 @ 100")  # 3
    book.fill("s1", "SELL 2 @ 100")  # 1
    book.fill("s1", "BUY 1 @ 100")  # 2: peak stays 3
    assert book.trade("s1").peak_quantity == D(3)
    assert book.trade("s1").entry_quantity == D(4)  # 1 + 2 + 1
    book.fill("s1", "SELL 2 @ 100")
    trade = book.trade("s1")
    assert not trade.is_open
    assert trade.peak_quantity == D(3)


def test_average_exit_is_the_quantity_weighted_mean_of_exits():
    book = Scenario()
    book.fill("s1", "BUY 4 @ 100")
    book.fill("s1", "SELL 1 @ 104")
    book.fill("s1", "SELL 3 @ 108")
    # (104 * 1 + 108 * 3) / 4 = 428 / 4 = 107
    trade = book.trade("s1")
    assert trade.avg_exit == D(107)
    assert trade.exit_quantity == D(4)
    # (107 - 100) / 100 = 0.07
    assert trade.realized_return == D("0.07")


def test_return_of_a_short_is_sign_adjusted():
    book = Scenario()
    book.fill("s1", "SELL 2 @ 100")
    book.fill("s1", "BUY 2 @ 90")
    # (90 - 100) * (-1) / 100 = 0.1
    assert book.trade("s1").realized_return == D("0.1")


def test_losing_long_has_negative_return_and_the_multiplier_does_not_change_it():
    book = Scenario(instrument=future("MES", multiplier="5"))
    book.fill("s1", "BUY 1 @ 200")
    book.fill("s1", "SELL 1 @ 150")
    trade = book.trade("s1")
    assert trade.realized_return == D("-0.25")  # (150 - 200) / 200
    assert trade.gross_realized == D(-250)  # (150 - 200) * 5


def test_return_is_none_before_any_exit_and_when_entry_is_zero():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 0")
    assert book.trade("s1").realized_return is None
    assert book.trade("s1").avg_exit is None
    book.fill("s1", "SELL 1 @ 5")
    trade = book.trade("s1")
    assert trade.gross_realized == D(5)
    assert trade.realized_return is None  # a return on a zero notional does not exist


def test_duration_runs_from_the_opening_fill_to_the_closing_fill():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100", at=60)
    assert book.trade("s1").duration_ns is None
    book.fill("s1", "SELL 1 @ 100", at=3660)
    assert book.trade("s1").duration_ns == 3600 * SECOND
