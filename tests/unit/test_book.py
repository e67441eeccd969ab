"""decide_fill / decide_mark are pure: the book changes only through Book.apply."""

from __future__ import annotations

import pytest

from posledger.domain.decide import decide_mark
from posledger.domain.decisions import FillDecision, MarkDecision
from posledger.domain.inputs import Mark
from posledger.domain.numbers import D

from .scenario import SECOND, T0, Scenario


def snapshot(book: Scenario):
    return (
        dict(book.book.slots),
        dict(book.book.open_trades),
        book.book.mark,
        book.book.mark_ts,
    )


@pytest.mark.parametrize(
    "text",
    ["BUY 1 @ 101 fee 1", "SELL 1 @ 101 fee 1", "SELL 2 @ 101 fee 1", "SELL 5 @ 101 fee 1"],
    ids=["increase", "reduce", "close", "flip"],
)
def test_deciding_a_fill_leaves_the_book_alone(text):
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100 fee 1")
    book.mark("100.5")
    before = snapshot(book)
    decision = book.decide(book.make_fill("s1", text))
    assert isinstance(decision, FillDecision)
    assert snapshot(book) == before
    book.apply(decision)
    assert snapshot(book) != before


def test_deciding_a_mark_leaves_the_book_alone():
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100", at=60)
    before = snapshot(book)
    decision = decide_mark(
        Mark(book.instrument.instrument, D(90), T0 + 120 * SECOND),
        instrument=book.instrument,
        book=book.book,
    )
    assert isinstance(decision, MarkDecision)
    assert snapshot(book) == before
    book.book.apply(decision)
    assert book.book.mark == D(90)
    assert book.book.open_trades[1].mae == D(-20)  # (90 - 100) * 2


def test_a_decision_not_applied_leaves_no_trace():
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100")
    book.decide(book.make_fill("s1", "SELL 3 @ 90"))  # decided, never applied
    assert book.slot("s1").quantity == D(2)
    assert book.trade("s1").is_open
    decision = book.fill("s1", "SELL 1 @ 90")
    assert decision.legs[0].realized == D(-10)  # (90 - 100) * 1 against the untouched book
