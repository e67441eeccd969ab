"""Lot methods (docs/accounting.md, Lot methods): FIFO/LIFO change only how a partial exit is
matched to entries."""

from __future__ import annotations

import pytest

from posledger.domain.numbers import D

from .scenario import Scenario, future


@pytest.mark.parametrize(
    ("lot_method", "first_exit", "remaining_avg"),
    [
        # avg 105: (120 - 105) = 15, remaining at 105
        ("average", "15", "105"),
        # FIFO matches the 100 lot: (120 - 100) = 20, the 110 lot remains
        ("fifo", "20", "110"),
        # LIFO matches the 110 lot: (120 - 110) = 10, the 100 lot remains
        ("lifo", "10", "100"),
    ],
)
def test_partial_exit_differs_total_does_not(lot_method, first_exit, remaining_avg):
    book = Scenario(lot_method=lot_method)
    book.fill("s1", "BUY 1 @ 100")
    book.fill("s1", "BUY 1 @ 110")
    decision = book.fill("s1", "SELL 1 @ 120")
    assert decision.legs[0].realized == D(first_exit)
    assert book.slot("s1").avg_entry == D(remaining_avg)
    assert book.slot("s1").quantity == D(1)
    # the trade's average entry is the mean of its entries whatever the lot method
    assert book.trade("s1").avg_entry == D(105)
    book.fill("s1", "SELL 1 @ 130")
    # total: (120 + 130) - (100 + 110) = 40 under every method
    assert book.trade("s1").gross_realized == D(40)
    assert not book.trade("s1").is_open


@pytest.mark.parametrize(
    ("lot_method", "last_exit", "remaining_avg"),
    [
        # average: avg after BUY 1@120 is (100 + 120) / 2 = 110 -> (130 - 110) * 5 = 100
        ("average", "100", "110"),
        # FIFO lots [100, 120] -> (130 - 100) * 5 = 150, 120 remains
        ("fifo", "150", "120"),
        # LIFO -> (130 - 120) * 5 = 50, 100 remains
        ("lifo", "50", "100"),
    ],
)
def test_increase_after_a_partial_exit(lot_method, last_exit, remaining_avg):
    book = Scenario(lot_method=lot_method, instrument=future("MES", multiplier="5"))
    book.fill("s1", "BUY 2 @ 100")
    first = book.fill("s1", "SELL 1 @ 110")
    assert first.legs[0].realized == D(50)  # (110 - 100) * 5, one entry price only
    book.fill("s1", "BUY 1 @ 120")
    assert book.slot("s1").avg_entry == D(110)  # lots [100, 120] average 110 too
    decision = book.fill("s1", "SELL 1 @ 130")
    assert decision.legs[0].realized == D(last_exit)
    assert book.slot("s1").avg_entry == D(remaining_avg)
    book.fill("s1", "SELL 1 @ 130")
    # entries 100*2 + 120 = 320; exits 110 + 130 + 130 = 370; (370 - 320) * 5 = 250
    assert book.trade("s1").gross_realized == D(250)


@pytest.mark.parametrize(
    ("lot_method", "realized"),
    [("average", "15"), ("fifo", "20"), ("lifo", "10")],
)
def test_short_lots(lot_method, realized):
    book = Scenario(lot_method=lot_method)
    book.fill("s1", "SELL 1 @ 100")
    book.fill("s1", "SELL 1 @ 90")
    # average 95: (80 - 95) * (-1) = 15 ; FIFO 100 lot: 20 ; LIFO 90 lot: 10
    decision = book.fill("s1", "BUY 1 @ 80")
    assert decision.legs[0].realized == D(realized)


@pytest.mark.parametrize("lot_method", ["fifo", "lifo"])
def test_lot_partly_consumed(lot_method):
    book = Scenario(lot_method=lot_method)
    book.fill("s1", "BUY 2 @ 100")
    book.fill("s1", "BUY 2 @ 200")
    # 3 out: FIFO 2@100 + 1@200 ; LIFO 2@200 + 1@100 ; exit at 300
    decision = book.fill("s1", "SELL 3 @ 300")
    expected = {"fifo": 2 * 200 + 1 * 100, "lifo": 2 * 100 + 1 * 200}[lot_method]
    assert decision.legs[0].realized == D(expected)
    remaining = {"fifo": 200, "lifo": 100}[lot_method]
    assert book.slot("s1").avg_entry == D(remaining)
    assert [(lot.quantity, lot.price) for lot in book.slot("s1").lots] == [(D(1), D(remaining))]


@pytest.mark.parametrize("lot_method", ["fifo", "lifo"])
def test_flip_starts_fresh_lots(lot_method):
    book = Scenario(lot_method=lot_method)
    book.fill("s1", "BUY 1 @ 100")
    book.fill("s1", "BUY 1 @ 110")
    book.fill("s1", "SELL 3 @ 120")
    # closes both lots: (120 - 100) + (120 - 110) = 30 ; opens short 1 at 120
    old, new = book.trades_of("s1")
    assert old.gross_realized == D(30)
    slot = book.slot("s1")
    assert (slot.quantity, slot.avg_entry) == (D(-1), D(120))
    assert [(lot.quantity, lot.price) for lot in slot.lots] == [(D(1), D(120))]
    assert new.avg_entry == D(120)
