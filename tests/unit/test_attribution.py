"""Ownership by evidence (docs/accounting.md, Who owns a fill): order, else the fill's
strategy, else EXTERNAL.

Fills that contradict their order are refused."""

from __future__ import annotations

import pytest

from posledger.domain.enums import EXTERNAL, Intent, PositionSide
from posledger.domain.numbers import D

from .scenario import Scenario, future, perpetual


def test_registered_order_gives_its_strategy():
    book = Scenario()
    book.order("o1", "s2", "BUY 1")
    decision = book.fill("o1", "BUY 1 @ 100")
    assert decision.strategy == "s2"
    assert decision.intent is Intent.ENTRY
    assert book.slot("s2").quantity == D(1)
    assert book.slot("s1").quantity == D(0)
    assert book.external().quantity == D(0)


def test_fill_naming_the_same_strategy_as_its_order_is_accepted():
    book = Scenario()
    book.order("o1", "s2", "BUY 1")
    decision = book.fill("o1", "BUY 1 @ 100", strategy="s2")
    assert decision.strategy == "s2"


def test_without_order_the_fills_strategy_owns_it():
    book = Scenario()
    decision = book.fill("s1", "BUY 3 @ 100")
    assert decision.strategy == "s1"
    assert decision.intent is None
    assert book.slot("s1").quantity == D(3)


def test_unregistered_client_order_id_falls_back_to_the_fills_strategy():
    book = Scenario()
    decision = book.fill("s3", "SELL 1 @ 100", client_order_id="never-registered")
    assert decision.strategy == "s3"
    assert book.slot("s3").quantity == D(-1)


def test_fill_with_no_evidence_goes_to_external():
    book = Scenario()
    decision = book.fill(None, "BUY 1 @ 100")
    assert decision.strategy == EXTERNAL
    assert book.external().quantity == D(1)


def test_nothing_is_adopted_silently():
    # Problem 1 (position stealing): s1 is long 1; an unattributed SELL 1 (say, a manual
    # close at the broker) must not take s1's position: it is booked to EXTERNAL.
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    book.fill(None, "SELL 1 @ 101")
    assert book.slot("s1").quantity == D(1)
    assert book.trade("s1").is_open
    assert book.external().quantity == D(-1)


def test_two_strategies_on_one_instrument_keep_separate_slots():
    book = Scenario()
    book.order("a", "s1", "BUY 2")
    book.order("b", "s2", "SELL 1")
    book.fill("a", "BUY 2 @ 100")
    book.fill("b", "SELL 1 @ 101")
    assert book.slot("s1").quantity == D(2)
    assert book.slot("s2").quantity == D(-1)
    assert book.slot("s1").trade_id != book.slot("s2").trade_id


@pytest.mark.parametrize(
    ("order_kw", "fill_text", "fill_kw", "words"),
    [
        ({"account": "B"}, "BUY 1 @ 100", {}, ["order o1", "account B", "not A"]),
        ({"instrument": "NQ"}, "BUY 1 @ 100", {}, ["order o1", "instrument NQ", "not ES"]),
        ({}, "SELL 1 @ 100", {}, ["side SELL", "contradicts", "o1", "BUY"]),
        ({}, "BUY 1 @ 100", {"strategy": "s2"}, ["strategy s2", "o1", "belongs to s1"]),
    ],
    ids=["other-account", "other-instrument", "side", "strategy"],
)
def test_fill_contradicting_its_order_is_rejected(order_kw, fill_text, fill_kw, words):
    book = Scenario()
    book.order("o1", "s1", "BUY 1", **order_kw)
    reason = book.reject("o1", fill_text, **fill_kw)
    for word in words:
        assert word in reason


def test_fill_position_side_contradicting_its_order_is_rejected():
    book = Scenario(position_mode="hedge", instrument=perpetual())
    book.order("o1", "s1", "BUY 1 LONG")
    reason = book.reject("o1", "BUY 1 @ 100 SHORT")
    assert "position_side SHORT" in reason
    assert "contradicts order o1" in reason


def test_hedge_fill_without_position_side_takes_its_orders():
    book = Scenario(position_mode="hedge", instrument=perpetual())
    book.order("o1", "s1", "SELL 1 SHORT")
    decision = book.fill("o1", "SELL 1 @ 100")
    assert decision.position_side is PositionSide.SHORT
    assert book.slot("s1", "SHORT").quantity == D(-1)


def test_unknown_strategy_is_rejected():
    book = Scenario()
    reason = book.reject("ghost", "BUY 1 @ 100")
    assert "unknown strategy ghost" in reason


@pytest.mark.parametrize("position_side", ["LONG", "SHORT"])
def test_netting_account_refuses_long_short_position_side(position_side):
    book = Scenario(instrument=future())
    reason = book.reject("s1", f"BUY 1 @ 100 {position_side}")
    assert "netting mode" in reason
    assert position_side in reason


def test_netting_account_accepts_explicit_both():
    book = Scenario()
    decision = book.fill("s1", "BUY 1 @ 100 BOTH")
    assert decision.position_side is PositionSide.BOTH


@pytest.mark.parametrize("text", ["BUY 1 @ 100", "BUY 1 @ 100 BOTH"])
def test_hedge_account_requires_long_or_short(text):
    book = Scenario(position_mode="hedge", instrument=perpetual())
    reason = book.reject("s1", text)
    assert "hedge mode" in reason
    assert "LONG or SHORT" in reason


def test_hedge_order_without_position_side_and_fill_without_is_rejected():
    book = Scenario(position_mode="hedge", instrument=perpetual())
    book.order("o1", "s1", "BUY 1")
    assert "hedge mode" in book.reject("o1", "BUY 1 @ 100")
