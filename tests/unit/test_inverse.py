"""Inverse instruments (docs/accounting.md, Slots): P&L = (1/avg - 1/p) * closed * m * sign,
in base currency."""

from __future__ import annotations

import pytest

from posledger.domain.numbers import D

from .scenario import Scenario, inverse_perpetual


def inverse() -> Scenario:
    # BTCUSD perpetual: 100 USD per contract, settled in BTC
    return Scenario(instrument=inverse_perpetual("BTCUSD-PERP", multiplier="100"))


def test_long_round_trip_realizes_in_btc():
    book = inverse()
    book.fill("s1", "BUY 10 @ 50000")
    book.fill("s1", "SELL 10 @ 60000")
    trade = book.trade("s1")
    assert trade.pnl_currency == "BTC"
    # (1/50000 - 1/60000) * 10 * 100 = 1000 * 10000 / 3e9 = 1/300 = 0.0033333...
    assert trade.gross_realized == D("0.003333333333333333")


def test_short_round_trip():
    book = inverse()
    book.fill("s1", "SELL 10 @ 50000")
    book.fill("s1", "BUY 10 @ 40000")
    # (1/50000 - 1/40000) * 10 * 100 * (-1) = (0.00002 - 0.000025) * 1000 * (-1) = 0.005
    assert book.trade("s1").gross_realized == D("0.005")


def test_partial_exits_are_quantized_each_and_summed():
    book = inverse()
    book.fill("s1", "BUY 10 @ 50000")
    # (1/50000 - 1/60000) * 3 * 100 = 300 / 300000 = 0.001
    first = book.fill("s1", "SELL 3 @ 60000")
    assert first.legs[0].realized == D("0.001")
    # (1/50000 - 1/70000) * 1 * 100 = 100 * 20000 / 3.5e9 = 0.000571428571428571428...
    second = book.fill("s1", "SELL 1 @ 70000")
    assert second.legs[0].realized == D("0.000571428571428571")
    assert book.trade("s1").gross_realized == D("0.001571428571428571")
    assert book.slot("s1").quantity == D(6)


def test_btc_commission_is_subtracted_on_an_inverse_instrument():
    book = inverse()
    book.fill("s1", "SELL 10 @ 50000 fee 0.0001 BTC")
    book.fill("s1", "BUY 10 @ 40000 fee 0.0001")  # no currency given: settlement, BTC
    trade = book.trade("s1")
    assert trade.commissions == {"BTC": D("0.0002")}
    assert trade.realized_pnl == D("0.0048")  # 0.005 - 0.0002


def test_inverse_average_entry_is_the_quantity_weighted_price():
    book = inverse()
    book.fill("s1", "BUY 1 @ 40000")
    book.fill("s1", "BUY 3 @ 60000")
    # (40000 * 1 + 60000 * 3) / 4 = 55000
    assert book.slot("s1").avg_entry == D(55000)


@pytest.mark.parametrize("price", ["0", "-1"])
def test_inverse_price_must_be_positive(price):
    book = inverse()
    reason = book.reject("s1", f"BUY 1 @ {price}")
    assert "must be positive" in reason
    assert "inverse" in reason
