"""Flip on a netting slot (docs/accounting.md, Slots): close the trade, open a new one at the
fill price."""

from __future__ import annotations

from posledger.domain.enums import CloseReason, Direction, Role
from posledger.domain.numbers import D

from .scenario import SECOND, T0, Scenario, future


def test_flip_without_order_splits_quantity_and_commission():
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100 fee 1", at=60)
    decision = book.fill("s1", "SELL 3 @ 110 fee 0.9", at=120)

    old, new = book.trades_of("s1")
    # closing part: 2 of 3; commission share 0.9 * 2/3 = 0.6, the new trade gets 0.3
    assert [(leg.role, leg.trade_id, leg.quantity, leg.delta) for leg in decision.legs] == [
        (Role.FLIP, old.trade_id, D(2), D(-2)),
        (Role.FLIP, new.trade_id, D(1), D(-1)),
    ]
    assert [leg.commission for leg in decision.legs] == [D("0.6"), D("0.3")]
    assert decision.opened == (new.trade_id,)

    # old trade: gross (110 - 100) * 2 = 20; commissions 1 + 0.6 = 1.6; net 18.4
    assert not old.is_open
    assert old.close_reason is CloseReason.FLIP
    assert old.closed_at == T0 + 120 * SECOND
    assert old.gross_realized == D(20)
    assert old.commissions == {"USD": D("1.6")}
    assert old.realized_pnl == D("18.4")
    assert old.avg_exit == D(110)

    # new trade: short 1 at the fill price, only its commission share so far
    assert new.is_open
    assert new.direction is Direction.SHORT
    assert (new.quantity, new.peak_quantity, new.avg_entry) == (D(1), D(1), D(110))
    assert new.opened_at == T0 + 120 * SECOND
    assert new.commissions == {"USD": D("0.3")}
    assert new.realized_pnl == D("-0.3")

    slot = book.slot("s1")
    assert (slot.quantity, slot.avg_entry, slot.trade_id) == (D(-1), D(110), new.trade_id)


def test_flip_commission_share_is_quantized_and_the_remainder_goes_to_the_new_trade():
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100")
    decision = book.fill("s1", "SELL 3 @ 100 fee 1")
    # 1 * 2/3 = 0.666...  -> 0.666666666666666667 ; remainder 1 - that = 0.333333333333333333
    assert [leg.commission for leg in decision.legs] == [
        D("0.666666666666666667"),
        D("0.333333333333333333"),
    ]
    old, new = book.trades_of("s1")
    assert old.commissions["USD"] + new.commissions["USD"] == D(1)


def test_flip_through_an_entry_order_on_mes():
    book = Scenario(instrument=future("MES", multiplier="5"))
    book.order("o1", "s1", "SELL 1")
    book.fill("o1", "SELL 1 @ 5000")
    book.order("o2", "s1", "BUY 4")
    decision = book.fill("o2", "BUY 4 @ 4990 fee 2")
    old, new = book.trades_of("s1")
    # closing 1: (4990 - 5000) * 1 * 5 * (-1) = 50 ; commission 2 * 1/4 = 0.5
    assert old.close_reason is CloseReason.FLIP
    assert old.gross_realized == D(50)
    assert old.realized_pnl == D("49.5")
    # opening 3 long at 4990 with 1.5 commission
    assert new.direction is Direction.LONG
    assert (new.quantity, new.avg_entry) == (D(3), D(4990))
    assert new.commissions == {"USD": D("1.5")}
    assert [leg.role for leg in decision.legs] == [Role.FLIP, Role.FLIP]
    assert book.slot("s1").quantity == D(3)


def test_exact_close_is_not_a_flip():
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100")
    decision = book.fill("s1", "SELL 2 @ 101")
    assert [leg.role for leg in decision.legs] == [Role.CLOSE]
    assert decision.opened == ()
    assert book.trade("s1").close_reason is CloseReason.EXIT
    assert len(book.trades_of("s1")) == 1


def test_external_slot_flips_too():
    book = Scenario()
    book.fill(None, "SELL 1 @ 100")
    book.fill(None, "BUY 3 @ 98")
    old, new = book.trades_of("EXTERNAL")
    assert old.close_reason is CloseReason.FLIP
    assert old.gross_realized == D(2)  # (98 - 100) * 1 * (-1)
    assert (new.direction, new.quantity, new.avg_entry) == (Direction.LONG, D(2), D(98))
