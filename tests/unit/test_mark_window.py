"""Marks kept in memory: a window per instrument and the policy that writes it
(docs/accounting.md, Marks). No database: the window starts from a book."""

from __future__ import annotations

import pytest

from posledger.domain.inputs import Mark
from posledger.domain.marks import MarkPolicy, Window
from posledger.domain.numbers import D

from .scenario import SECOND, T0, Scenario

MS = 1_000_000
LATER = T0 + 3600 * SECOND
"""An hour after the scenarios start: later than any of their marks."""


def _mark(price: str, ms: int, high: str | None = None, low: str | None = None) -> Mark:
    """A mark ``ms`` milliseconds after :data:`LATER`."""
    return Mark(
        "X",
        D(price),
        LATER + ms * MS,
        None if high is None else D(high),
        None if low is None else D(low),
    )


def _long_and_short() -> Scenario:
    """s1 long from 100 (has seen 100..104), s2 short from 102 (has seen 99..102)."""
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100", at=1)
    book.fill("s2", "SELL 1 @ 102", at=2)
    book.mark("104", at=3)
    book.mark("99", at=4)
    return book


def test_the_envelope_is_the_narrowest_range_an_open_trade_has_seen() -> None:
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100", at=1)
    book.mark("104", at=3)  # s1 has seen 100..104
    book.fill("s2", "SELL 1 @ 102", at=5)  # s2 only 102
    window = Window("X", book.book)
    assert (window.envelope_low, window.envelope_high) == (D(102), D(102))
    assert window.written_ts == window.ts == book.book.mark_ts  # the book's last mark
    empty = Window("X", Scenario().book)
    assert (empty.envelope_low, empty.envelope_high, empty.written_ts) == (None, None, None)


def test_offer_keeps_the_range_and_says_what_is_a_duplicate() -> None:
    window = Window("X", _long_and_short().book)
    assert window.offer(_mark("101", 10)) is None
    assert window.offer(_mark("101", 10)) == "mark already applied"
    assert "stale" in (window.offer(_mark("90", 9)) or "")
    assert window.offer(_mark("100.5", 11, high="101.5", low="100")) is None
    assert (window.low, window.high, window.price, window.count) == (
        D(100),
        D("101.5"),
        D("100.5"),
        2,
    )
    assert not window.extreme  # both trades have seen 99..102 at least
    assert window.offer(_mark("98", 12)) is None
    assert window.extreme and window.envelope_low == D(98)


def test_due_by_time_and_sooner_for_a_new_extreme() -> None:
    policy = MarkPolicy(persist_ms=1000, extreme_ms=100)
    window = Window("X", Scenario().book)
    assert not window.due(policy)  # nothing to write
    window.offer(_mark("100", 0))
    assert window.due(policy)  # nothing was ever written: at once
    window.take()

    book = _long_and_short().book
    window = Window("X", book)
    assert book.mark_ts is not None
    start = (book.mark_ts - LATER) // MS  # in _mark's milliseconds
    window.offer(_mark("101", start + 50))
    assert not window.due(policy)
    window.offer(_mark("101.25", start + 999))
    assert not window.due(policy)  # quiet for less than persist_ms
    window.offer(_mark("101", start + 1000))
    assert window.due(policy)

    window = Window("X", book)
    window.offer(_mark("105", start + 60))  # a new high, too soon
    assert window.extreme and not window.due(policy)
    window.offer(_mark("101", start + 100))
    assert window.due(policy)  # the extreme waits for extreme_ms only


def test_take_writes_the_range_and_starts_again() -> None:
    window = Window("X", _long_and_short().book)
    for price, ms in (("101", 10), ("97", 11), ("103", 12), ("100", 13)):
        window.offer(_mark(price, ms))
    mark = window.take()
    assert mark == Mark("X", D(100), LATER + 13 * MS, D(103), D(97))
    assert (window.count, window.high, window.low, window.extreme) == (0, None, None, False)
    assert window.written_ts == LATER + 13 * MS
    window.offer(_mark("100.5", 14))
    assert window.take() == Mark("X", D("100.5"), LATER + 14 * MS)  # no range beyond it


def test_a_copy_is_independent() -> None:
    window = Window("X", _long_and_short().book)
    window.offer(_mark("101", 10))
    twin = window.copy()
    twin.offer(_mark("90", 11))
    assert (window.count, window.low) == (1, D(101))
    assert (twin.count, twin.low) == (2, D(90))


@pytest.mark.parametrize(
    ("persist", "extreme"), [(-1, 0), (100, 1000)], ids=["negative", "extreme-longer"]
)
def test_a_policy_that_makes_no_sense_is_refused(persist: int, extreme: int) -> None:
    with pytest.raises(ValueError):
        MarkPolicy(persist_ms=persist, extreme_ms=extreme)
