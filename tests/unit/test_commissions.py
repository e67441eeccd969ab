"""Commissions (docs/accounting.md, Commissions and P&L): settlement-currency ones are netted;
others kept per currency; spot commissions in the base currency change the quantity held."""

from __future__ import annotations

from posledger.domain.enums import CloseReason, Role
from posledger.domain.numbers import D

from .scenario import Scenario, future, perpetual, spot


def test_settlement_commissions_are_subtracted_including_the_opening_one():
    book = Scenario(instrument=future("MES", multiplier="5"))
    decision = book.fill("s1", "BUY 1 @ 100 fee 1.25")
    assert decision.commission_currency == "USD"  # no currency given: settlement
    assert book.trade("s1").realized_pnl == D("-1.25")
    book.fill("s1", "SELL 1 @ 102 fee 1.25 USD")
    trade = book.trade("s1")
    # gross (102 - 100) * 1 * 5 = 10 ; net 10 - 2.5 = 7.5
    assert trade.gross_realized == D(10)
    assert trade.commissions == {"USD": D("2.50")}
    assert trade.settlement_commission == D("2.5")
    assert trade.realized_pnl == D("7.5")


def test_commissions_in_another_currency_are_kept_apart_and_not_subtracted():
    book = Scenario(instrument=perpetual("BTCUSDT-PERP"))
    book.fill("s1", "BUY 1 @ 100 fee 0.01 BNB")
    book.fill("s1", "SELL 1 @ 110 fee 0.5 USDT")
    trade = book.trade("s1")
    assert trade.pnl_currency == "USDT"
    assert trade.commissions == {"BNB": D("0.01"), "USDT": D("0.5")}
    # gross (110 - 100) * 1 = 10 ; only the USDT commission is netted: 9.5
    assert trade.gross_realized == D(10)
    assert trade.realized_pnl == D("9.5")


def test_base_currency_commission_on_a_perpetual_does_not_change_quantity():
    # Only *spot* instruments hold the base currency itself.
    book = Scenario(instrument=perpetual("BTCUSDT-PERP"))
    book.fill("s1", "BUY 1 @ 100 fee 0.001 BTC")
    assert book.slot("s1").quantity == D(1)
    assert book.trade("s1").commissions == {"BTC": D("0.001")}


def test_spot_buy_paying_base_commission_holds_less():
    book = Scenario(instrument=spot("BTCUSDT", base="BTC", quote="USDT"))
    decision = book.fill("s1", "BUY 1.0 @ 100 fee 0.001 BTC")
    # buy 1.0 paying 0.001 BTC -> long 0.999
    assert book.slot("s1").quantity == D("0.999")
    trade = book.trade("s1")
    assert trade.quantity == D("0.999")
    assert trade.avg_entry == D(100)
    assert book.slot("s1").avg_entry == D(100)
    assert trade.commissions == {"BTC": D("0.001")}
    # the BTC commission is not P&L in USDT
    assert trade.gross_realized == D(0)
    assert trade.realized_pnl == D(0)
    assert trade.avg_exit is None
    # the adjustment leg is marked as such and realizes nothing
    assert [(leg.adjustment, leg.delta, leg.realized) for leg in decision.legs] == [
        (False, D("1.0"), D(0)),
        (True, D("-0.001"), D(0)),
    ]


def test_spot_buy_paying_base_commission_peak_is_what_was_held():
    # The slot never holds 1.0: the fill delivers 0.999. The trade's peak is 0.999.
    book = Scenario(instrument=spot())
    book.fill("s1", "BUY 1.0 @ 100 fee 0.001 BTC")
    assert book.trade("s1").peak_quantity == D("0.999")
    # the same on an increase: 0.999 + 1.0 - 0.001 = 1.998 held, never 1.999
    book.fill("s1", "BUY 1.0 @ 100 fee 0.001 BTC")
    assert book.slot("s1").quantity == D("1.998")
    assert book.trade("s1").peak_quantity == D("1.998")


def test_spot_sell_paying_base_commission_reduces_by_quantity_plus_commission():
    book = Scenario(instrument=spot())
    book.fill("s1", "BUY 1.0 @ 100 fee 0.001 BTC")  # 0.999
    decision = book.fill("s1", "SELL 0.5 @ 110 fee 0.0005 BTC")
    # 0.999 - 0.5 - 0.0005 = 0.4985
    assert book.slot("s1").quantity == D("0.4985")
    trade = book.trade("s1")
    assert trade.quantity == D("0.4985")
    # only the 0.5 sold realizes: (110 - 100) * 0.5 = 5 ; BTC commissions not netted
    assert trade.gross_realized == D(5)
    assert trade.realized_pnl == D(5)
    assert trade.commissions == {"BTC": D("0.0015")}
    assert trade.avg_exit == D(110)  # the commission is not an exit at 110
    assert trade.realized_return == D("0.1")  # (110 - 100) / 100
    assert [(leg.role, leg.delta, leg.adjustment) for leg in decision.legs] == [
        (Role.REDUCE, D("-0.5"), False),
        (Role.REDUCE, D("-0.0005"), True),
    ]

    # close the rest, paying USDT: (120 - 100) * 0.4985 = 9.97 ; gross 14.97 ; net 14.47
    book.fill("s1", "SELL 0.4985 @ 120 fee 0.5 USDT")
    trade = book.trade("s1")
    assert not trade.is_open
    assert trade.close_reason is CloseReason.EXIT
    assert trade.gross_realized == D("14.97")
    assert trade.commissions == {"BTC": D("0.0015"), "USDT": D("0.5")}
    assert trade.realized_pnl == D("14.47")


def test_spot_commission_in_quote_currency_leaves_quantity_alone():
    book = Scenario(instrument=spot())
    book.fill("s1", "BUY 1 @ 100 fee 0.1 USDT")
    assert book.slot("s1").quantity == D(1)
    assert book.trade("s1").realized_pnl == D("-0.1")


def test_spot_buy_whose_base_commission_is_not_less_than_the_quantity_is_rejected():
    book = Scenario(instrument=spot())
    reason = book.reject("s1", "BUY 0.001 @ 100 fee 0.001 BTC")
    assert "commission 0.001 BTC" in reason
    assert "not less than the quantity" in reason
    reason = book.reject("s1", "BUY 0.001 @ 100 fee 0.002 BTC")
    assert "not less than the quantity" in reason


def test_spot_sell_whose_base_commission_is_not_less_than_the_quantity_is_rejected():
    """Selling 0.001 and paying 0.002 BTC would take 0.003 out of a holding of 0.001: a
    spot position cannot go short, so the sell side is guarded like the buy side."""
    book = Scenario(instrument=spot())
    book.fill("s1", "BUY 1 @ 100")
    for text in ("SELL 0.001 @ 100 fee 0.002 BTC", "SELL 0.001 @ 100 fee 0.001 BTC"):
        reason = book.reject("s1", text)
        assert "commission" in reason and "not less than the quantity sold" in reason
    assert book.slot("s1").quantity == D(1)
    # below the quantity it is a fill like any other: 0.5 + 0.001 leave
    book.fill("s1", "SELL 0.5 @ 100 fee 0.001 BTC")
    assert book.slot("s1").quantity == D("0.499")
