"""Unrealized P&L at a mark, and MAE/MFE of trades (docs/accounting.md)."""

from __future__ import annotations

import pytest

from posledger.domain.decisions import Duplicate, MarkDecision, Rejection
from posledger.domain.enums import PositionSide
from posledger.domain.numbers import D, exact
from posledger.domain.positions import Slot, SlotKey, unrealized

from .scenario import Scenario, future, spot

KEY = SlotKey("A", "X", "s1", PositionSide.BOTH)


@pytest.mark.parametrize(
    ("quantity", "avg", "mark", "multiplier", "inverse", "expected"),
    [
        ("2", "100", "103", "5", False, "30"),  # (103 - 100) * 2 * 5
        ("-2", "100", "103", "5", False, "-30"),  # (103 - 100) * 2 * 5 * (-1)
        ("-0.5", "100", "90", "1", False, "5"),  # (90 - 100) * 0.5 * (-1)
        ("3", "-2", "1", "1", False, "9"),  # (1 - (-2)) * 3, negative prices are fine
        ("10", "50000", "40000", "100", True, "-0.005"),  # (1/50000 - 1/40000) * 1000
        ("-10", "50000", "40000", "100", True, "0.005"),
        # (1/30000 - 1/70000) * 100 = 4/2100 = 0.00190476190476190476... -> half-even
        ("1", "30000", "70000", "100", True, "0.001904761904761905"),
    ],
)
def test_unrealized(quantity, avg, mark, multiplier, inverse, expected):
    slot = Slot(KEY, D(quantity), D(avg))
    with exact():
        assert unrealized(slot, D(mark), D(multiplier), inverse) == D(expected)


def test_unrealized_of_a_flat_slot_is_zero():
    with exact():
        assert unrealized(Slot(KEY, D(0), D(100)), D(120), D(1), False) == D(0)
        assert unrealized(Slot(KEY), D(120), D(1), False) == D(0)


def test_mae_mfe_of_a_long_trade():
    book = Scenario(instrument=future("MES", multiplier="5"))
    book.fill("s1", "BUY 2 @ 100", at=120)
    # the fill's price is the first price seen: no excursion yet, but not unknown
    trade = book.trade("s1")
    assert (trade.mae, trade.mfe, trade.mae_price, trade.mfe_price) == (0, 0, 100, 100)

    # a mark timestamped before the trade opened does not count for it
    early = book.mark("90", at=90)
    assert isinstance(early, MarkDecision)
    assert early.trades == ()
    assert book.trade("s1").mae_price == D(100)

    # (98 - 100) * 2 * 5 = -20
    decision = book.mark("98", at=180)
    assert isinstance(decision, MarkDecision)
    assert [t.trade_id for t in decision.trades] == [book.trade("s1").trade_id]
    trade = book.trade("s1")
    assert (trade.mae, trade.mfe) == (D(-20), D(0))
    assert (trade.mae_price, trade.mfe_price) == (D(98), D(100))

    # (104 - 100) * 2 * 5 = 40
    book.mark("104", at=240)
    trade = book.trade("s1")
    assert (trade.mae, trade.mfe) == (D(-20), D(40))
    assert (trade.mae_price, trade.mfe_price) == (D(98), D(104))

    # inside the range: nothing changes
    quiet = book.mark("101", at=300)
    assert isinstance(quiet, MarkDecision)
    assert quiet.trades == ()

    # money is at the peak quantity and the average entry: an increase to 3 at
    # (200 + 103) / 3 = 101 values the same prices again:
    # MAE (98 - 101) * 3 * 5 = -45, MFE (104 - 101) * 3 * 5 = 45
    book.fill("s1", "BUY 1 @ 103", at=360)
    trade = book.trade("s1")
    assert (trade.mae, trade.mfe) == (D(-45), D(45))
    book.mark("99", at=420)  # inside [98, 104]
    assert book.trade("s1") == trade

    # a partial exit keeps the peak (3): nothing changes but what the fill sold
    book.fill("s1", "SELL 1 @ 102", at=450)
    assert (book.trade("s1").mae, book.trade("s1").mfe) == (D(-45), D(45))
    book.fill("s1", "SELL 2 @ 102", at=480)
    closed = book.trade("s1")
    after = book.mark("80", at=540)
    assert isinstance(after, MarkDecision)
    assert after.trades == ()
    assert book.trade("s1") == closed
    assert (closed.mae, closed.mfe, closed.mae_price, closed.mfe_price) == (-45, 45, 98, 104)


def test_a_mark_high_and_low_count_as_prices_seen():
    book = Scenario(instrument=future("MES", multiplier="5"))
    book.fill("s1", "BUY 2 @ 100", at=60)
    # a mark at 101 whose range since the last mark went from 97 to 106:
    # MAE (97 - 100) * 2 * 5 = -30, MFE (106 - 100) * 2 * 5 = 60
    book.mark("101", at=120, high="106", low="97")
    trade = book.trade("s1")
    assert (trade.mae, trade.mfe, trade.mae_price, trade.mfe_price) == (-30, 60, 97, 106)
    assert book.book.mark == D(101)


def test_a_trade_with_no_marks_has_mae_and_mfe_from_its_fills():
    # short 2 @ 50, add 2 @ 54 (average 52, peak 4), cover 4 @ 49: prices seen 49..54
    # MAE (54 - 52) * 4 * -1 = -8, MFE (49 - 52) * 4 * -1 = 12
    book = Scenario()
    book.fill("s1", "SELL 2 @ 50", at=60)
    book.fill("s1", "SELL 2 @ 54", at=120)
    book.fill("s1", "BUY 4 @ 49", at=180)
    trade = book.trade("s1")
    assert trade.closed_at is not None
    assert (trade.mae, trade.mfe, trade.mae_price, trade.mfe_price) == (-8, 12, 54, 49)


def test_mae_mfe_of_a_short_trade():
    book = Scenario()
    book.fill("s1", "SELL 1 @ 100", at=60)
    book.mark("103", at=120)
    trade = book.trade("s1")
    assert (trade.mae, trade.mfe) == (D(-3), D(0))
    assert trade.mae_price == D(103)
    book.mark("95", at=180)
    trade = book.trade("s1")
    assert (trade.mae, trade.mfe) == (D(-3), D(5))
    assert (trade.mae_price, trade.mfe_price) == (D(103), D(95))
    assert trade.mae <= 0 <= trade.mfe


def test_marks_must_move_forward_in_time():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100", at=60)
    assert isinstance(book.mark("101", at=120), MarkDecision)

    same = book.mark("101", at=120)
    assert isinstance(same, Duplicate)
    assert "already applied" in same.reason

    for price, at in (("90", 120), ("90", 100)):
        stale = book.mark(price, at=at)
        assert isinstance(stale, Duplicate)
        assert "stale" in stale.reason
    # a stale mark changed nothing
    assert book.book.mark == D(101)
    assert book.trade("s1").mfe == D(1)
    assert (book.trade("s1").mae_price, book.trade("s1").mfe_price) == (D(100), D(101))


def test_mark_refused_where_the_price_is_impossible():
    book = Scenario(instrument=spot())
    decision = book.mark("0", at=10)
    assert isinstance(decision, Rejection)
    assert "must be positive" in decision.reason
    assert book.book.mark is None


def test_negative_mark_allowed_on_a_future():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 1", at=60)
    decision = book.mark("-2", at=120)
    assert isinstance(decision, MarkDecision)
    assert book.trade("s1").mae == D(-3)  # (-2 - 1) * 1


def test_a_mark_far_ahead_of_the_clock_is_refused():
    """A typo such as year 2062 would make every later mark stale: a mark more than
    MARK_MAX_AHEAD_NS after the time it is received is refused, and later marks apply."""
    from posledger.domain.decide import MARK_MAX_AHEAD_NS, decide_mark
    from posledger.domain.inputs import Mark

    book = Scenario()
    book.fill("s1", "BUY 1 @ 100", at=60)
    now = book.now
    typo = Mark(book.instrument.instrument, D(101), now + 36 * 365 * 86_400 * 10**9)
    refused = decide_mark(typo, instrument=book.instrument, book=book.book, now=now)
    assert isinstance(refused, Rejection)
    assert "ahead of the ledger's clock" in refused.reason and "2062" in refused.reason
    near = Mark(book.instrument.instrument, D(101), now + MARK_MAX_AHEAD_NS)
    assert isinstance(
        decide_mark(near, instrument=book.instrument, book=book.book, now=now), MarkDecision
    )
    beyond = Mark(book.instrument.instrument, D(101), now + MARK_MAX_AHEAD_NS + 1)
    assert isinstance(
        decide_mark(beyond, instrument=book.instrument, book=book.book, now=now), Rejection
    )
