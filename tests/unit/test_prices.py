"""Prices (docs/accounting.md, Prices): zero/negative by kind, allow_negative_prices, no
granularity checks."""

from __future__ import annotations

import pytest

from posledger.domain.numbers import D

from .scenario import Scenario, equity, future, option, perpetual, spot


@pytest.mark.parametrize("make", [future, perpetual, option], ids=["future", "perpetual", "option"])
@pytest.mark.parametrize("price", ["0", "-5"])
def test_zero_and_negative_prices_allowed_on_derivatives(make, price):
    book = Scenario(instrument=make())
    book.fill("s1", f"BUY 1 @ {price}")
    assert book.slot("s1").avg_entry == D(price)


def test_negative_price_pnl_on_a_future():
    book = Scenario()
    book.fill("s1", "BUY 2 @ -5")
    book.fill("s1", "BUY 2 @ -3")  # avg (-10 - 6) / 4 = -4
    assert book.slot("s1").avg_entry == D(-4)
    book.fill("s1", "SELL 4 @ 0")  # (0 - (-4)) * 4 = 16
    assert book.trade("s1").gross_realized == D(16)


@pytest.mark.parametrize("make", [spot, equity], ids=["spot", "equity"])
@pytest.mark.parametrize("price", ["0", "-0.01"])
def test_zero_and_negative_prices_refused_on_spot_and_equity(make, price):
    book = Scenario(instrument=make())
    reason = book.reject("s1", f"BUY 1 @ {price}")
    assert "price must be positive" in reason
    assert "allow_negative_prices" in reason


@pytest.mark.parametrize("make", [spot, equity], ids=["spot", "equity"])
def test_allow_negative_prices_overrides_the_default_of_the_kind(make):
    book = Scenario(instrument=make(allow_negative_prices=True))
    book.fill("s1", "BUY 1 @ -1")
    assert book.slot("s1").quantity == D(1)


def test_allow_negative_prices_false_on_a_future():
    book = Scenario(instrument=future(allow_negative_prices=False))
    assert "price must be positive" in book.reject("s1", "BUY 1 @ 0")


def test_a_fill_is_never_refused_for_tick_or_lot_size():
    book = Scenario(instrument=future("MES", multiplier="5", tick_size=D("0.25"), lot_size=D(1)))
    # 100.13 is not a multiple of 0.25; 1.3 is not a multiple of 1
    book.fill("s1", "BUY 1.3 @ 100.13")
    assert book.slot("s1").quantity == D("1.3")
    assert book.slot("s1").avg_entry == D("100.13")


def test_spot_off_grid_fill_is_applied():
    book = Scenario(instrument=spot(tick_size=D("0.01"), lot_size=D("0.001")))
    book.fill("s1", "BUY 0.0005 @ 100.005")
    assert book.slot("s1").quantity == D("0.0005")
