"""An exit never opens (docs/accounting.md, An exit never opens): the excess of an
exit-intent fill goes to EXTERNAL."""

from __future__ import annotations

import pytest

from posledger.domain.enums import EXTERNAL, CloseReason, Direction
from posledger.domain.numbers import D

from .scenario import Scenario, future


@pytest.mark.parametrize("intent", ["exit", "take_profit", "stop_loss"])
def test_exit_overshoot_goes_to_external_with_its_commission_share(intent):
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100")
    book.order("x", "s1", "SELL 5", intent=intent)
    decision = book.fill("x", "SELL 5 @ 105 fee 2.5")

    # s1 closes its 2: (105 - 100) * 2 = 10 ; commission 2.5 * 2/5 = 1 ; net 9
    trade = book.trade("s1")
    assert not trade.is_open
    assert trade.close_reason.value == intent
    assert trade.gross_realized == D(10)
    assert trade.realized_pnl == D(9)
    assert book.slot("s1").quantity == D(0)
    assert len(book.trades_of("s1")) == 1  # never opened a short

    # the 3 left over are EXTERNAL's, short at 105, with the other 1.5 of commission
    assert book.external().quantity == D(-3)
    external = book.trade(EXTERNAL)
    assert (external.direction, external.avg_entry) == (Direction.SHORT, D(105))
    assert external.commissions == {"USD": D("1.5")}

    assert [(a.kind, a.key.strategy, a.quantity) for a in decision.anomalies] == [
        ("exit_overshoot", "s1", D(3))
    ]
    assert decision.strategy == "s1"


def test_exit_fill_on_a_flat_slot_goes_entirely_to_external():
    book = Scenario()
    book.order("sl", "s1", "SELL 1", intent="stop_loss")
    decision = book.fill("sl", "SELL 1 @ 100 fee 0.2")
    assert book.slot("s1").quantity == D(0)
    assert book.trades_of("s1") == []
    assert book.external().quantity == D(-1)
    assert book.trade(EXTERNAL).commissions == {"USD": D("0.2")}
    assert [(a.kind, a.quantity) for a in decision.anomalies] == [("exit_overshoot", D(1))]


def test_exit_fill_in_the_increasing_direction_goes_entirely_to_external():
    book = Scenario(instrument=future("MES", multiplier="5"))
    book.fill("s1", "BUY 1 @ 100")
    book.order("tp", "s1", "BUY 1", intent="take_profit")
    decision = book.fill("tp", "BUY 1 @ 110")
    slot = book.slot("s1")
    assert (slot.quantity, slot.avg_entry) == (D(1), D(100))
    assert book.trade("s1").peak_quantity == D(1)
    assert book.external().quantity == D(1)
    assert book.trade(EXTERNAL).avg_entry == D(110)
    assert [(a.kind, a.quantity) for a in decision.anomalies] == [("exit_overshoot", D(1))]


def test_exit_that_takes_another_strategys_quantity():
    # s1 and s2 are each long 1; s1's exit sells 2 at the broker. s1 is flat, s2 keeps its
    # 1 and EXTERNAL holds the -1 that makes the sum agree with the broker (1 + 1 - 2 = 0).
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    book.fill("s2", "BUY 1 @ 100")
    book.order("x", "s1", "SELL 2", intent="exit")
    book.fill("x", "SELL 2 @ 101")
    assert book.slot("s1").quantity == D(0)
    assert book.slot("s2").quantity == D(1)
    assert book.trade("s2").is_open
    assert book.external().quantity == D(-1)


def test_exit_overshoot_into_an_external_position_reduces_it():
    book = Scenario()
    book.fill(None, "BUY 2 @ 90")  # EXTERNAL long 2
    book.order("x", "s1", "SELL 1", intent="exit")
    decision = book.fill("x", "SELL 1 @ 100")
    # the whole fill is excess (s1 is flat) and reduces EXTERNAL: (100 - 90) * 1 = 10
    assert book.external().quantity == D(1)
    assert book.trade(EXTERNAL).gross_realized == D(10)
    assert [a.kind for a in decision.anomalies] == ["exit_overshoot"]


def test_exit_fill_that_fits_raises_no_anomaly():
    book = Scenario()
    book.fill("s1", "SELL 3 @ 100")
    book.order("x", "s1", "BUY 3", intent="exit")
    decision = book.fill("x", "BUY 3 @ 99")
    assert decision.anomalies == ()
    assert book.trade("s1").close_reason is CloseReason.EXIT
    assert book.external().quantity == D(0)
