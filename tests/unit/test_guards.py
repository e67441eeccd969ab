"""Pre-trade guards in the pure domain (docs/reconciliation.md, Pre-trade checks): would this
order be allowed?

An exit-intent order may only reduce its own strategy's slot (that is what stops one
strategy from closing another's position); entries are refused on a halted instrument and
beyond the strategy's ``max_open_slots``; a hedge-mode order needs a position side.
"""

from __future__ import annotations

import pytest

from posledger.domain.book import HaltState
from posledger.domain.guards import check_order
from posledger.domain.numbers import D
from posledger.domain.refdata import InvalidInput, Order, Strategy

from .scenario import T0, Scenario, perpetual

EXITS = ("exit", "take_profit", "stop_loss")


def verdict(
    book: Scenario,
    order: Order,
    *,
    strategy: Strategy | None = None,
    open_slots: int | None = None,
    bracket_pending: str = "0",
) -> list[str]:
    return check_order(
        order,
        account=book.account,
        strategy=strategy if strategy is not None else Strategy(order.strategy),
        book=book.book,
        open_slots=open_slots,
        bracket_pending=D(bracket_pending),
    )


def halted(book: Scenario, account: str = "A") -> None:
    book.book.halts[account] = HaltState(T0, "reconciliation rec-1: stale_position")


# -- exits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("intent", EXITS)
def test_exit_with_nothing_to_exit_is_refused(intent: str):
    book = Scenario()
    book.fill("s2", "BUY 3 @ 100")  # another strategy's position does not count
    order = book.order("o1", "s1", "SELL 1", intent=intent)
    assert verdict(book, order) == [f"{intent} order o1: s1 holds no position on A/ES/BOTH to exit"]


@pytest.mark.parametrize("intent", EXITS)
def test_exit_larger_than_the_strategys_own_slot_is_refused(intent: str):
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    book.fill("s2", "BUY 5 @ 100")
    order = book.order("o1", "s1", "SELL 2", intent=intent)
    assert verdict(book, order) == [
        f"{intent} order o1 for 2 is larger than s1's position of 1 on A/ES/BOTH: "
        "the rest would close another strategy's position"
    ]


@pytest.mark.parametrize(
    ("held", "adding", "direction"), [("BUY", "BUY", "LONG"), ("SELL", "SELL", "SHORT")]
)
def test_exit_adding_to_the_position_is_refused(held: str, adding: str, direction: str):
    book = Scenario()
    book.fill("s1", f"{held} 2 @ 100")
    order = book.order("o1", "s1", f"{adding} 1", intent="exit")
    assert verdict(book, order) == [
        f"exit order o1: {adding} would add to s1's {direction} position on A/ES/BOTH; "
        "an exit must reduce it"
    ]


@pytest.mark.parametrize("intent", EXITS)
@pytest.mark.parametrize(
    ("held", "exit_text"),
    [("BUY 2", "SELL 2"), ("BUY 2", "SELL 0.5"), ("SELL 3", "BUY 3"), ("SELL 3", "BUY 1")],
)
def test_exit_within_the_strategys_own_slot_is_allowed(intent: str, held: str, exit_text: str):
    book = Scenario()
    book.fill("s1", f"{held} @ 100")
    assert verdict(book, book.order("o1", "s1", exit_text, intent=intent)) == []


def test_exit_is_allowed_on_a_halted_instrument():
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100")
    halted(book)
    assert verdict(book, book.order("o1", "s1", "SELL 2", intent="stop_loss")) == []


def test_exit_is_not_counted_against_max_open_slots():
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100")
    order = book.order("o1", "s1", "SELL 1", intent="exit")
    assert verdict(book, order, strategy=Strategy("s1", max_open_slots=1), open_slots=5) == []


def test_a_pending_bracket_entry_extends_an_exits_room():
    book = Scenario()
    take_profit = book.order("tp", "s1", "SELL 1", intent="take_profit")
    # flat, but the bracket's entry will buy 1: the take-profit may cover it
    assert verdict(book, take_profit, bracket_pending="1") == []
    too_big = book.order("tp2", "s1", "SELL 2", intent="take_profit")
    assert verdict(book, too_big, bracket_pending="1") == [
        "take_profit order tp2 for 2 is larger than s1's position of 1 (with 1 pending in "
        "its bracket) on A/ES/BOTH: the rest would close another strategy's position"
    ]
    # what is held and what is pending add up
    book.fill("s1", "BUY 1 @ 100")
    assert verdict(book, too_big, bracket_pending="1") == []
    # a short bracket: pending SELL entries count negative
    stop = book.order("sl", "s2", "BUY 2", intent="stop_loss")
    assert verdict(book, stop, bracket_pending="-2") == []
    assert verdict(book, stop) == ["stop_loss order sl: s2 holds no position on A/ES/BOTH to exit"]


def test_a_pending_bracket_entry_the_other_way_does_not_help():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    order = book.order("o1", "s1", "SELL 1", intent="exit")
    # pending SELL 1 entry cancels out the long: nothing left to exit
    assert verdict(book, order, bracket_pending="-1") == [
        "exit order o1: s1 holds no position on A/ES/BOTH to exit"
    ]


# -- entries ----------------------------------------------------------------------------------


def test_entry_is_allowed_by_default():
    book = Scenario()
    book.fill("s2", "BUY 1 @ 100")
    assert verdict(book, book.order("o1", "s1", "SELL 5")) == []


def test_entry_on_a_halted_instrument_is_refused():
    book = Scenario()
    halted(book)
    [reason] = verdict(book, book.order("o1", "s1", "BUY 1"))
    assert reason == (
        "ES is halted on account A since 2026-03-02T14:00:00Z (reconciliation rec-1: "
        "stale_position): entry orders are refused until `posledger resume` lifts the halt"
    )


def test_a_halt_on_another_account_does_not_refuse_entries_here():
    book = Scenario()
    halted(book, account="B")
    assert verdict(book, book.order("o1", "s1", "BUY 1")) == []


def test_entry_that_would_open_a_slot_beyond_max_open_slots_is_refused():
    book = Scenario()
    strategy = Strategy("s1", max_open_slots=2)
    order = book.order("o1", "s1", "BUY 1")
    assert verdict(book, order, strategy=strategy, open_slots=2) == [
        "entry order o1 would open a new position for s1, which already holds 2 open "
        "(max_open_slots 2)"
    ]
    assert verdict(book, order, strategy=strategy, open_slots=3) != []
    assert verdict(book, order, strategy=strategy, open_slots=1) == []
    assert verdict(book, order, strategy=strategy, open_slots=None) == []


@pytest.mark.parametrize("text", ["BUY 1", "SELL 1", "SELL 5"])
def test_entry_on_a_slot_already_open_is_not_a_new_slot(text: str):
    # adding to, reducing or flipping an open slot does not open another one
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100")
    order = book.order("o1", "s1", text)
    assert verdict(book, order, strategy=Strategy("s1", max_open_slots=1), open_slots=1) == []


def test_a_flat_slot_counts_as_a_new_one():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    book.fill("s1", "SELL 1 @ 101")
    order = book.order("o1", "s1", "BUY 1")
    assert verdict(book, order, strategy=Strategy("s1", max_open_slots=1), open_slots=1) != []


def test_without_max_open_slots_any_number_of_slots_is_allowed():
    book = Scenario()
    assert verdict(book, book.order("o1", "s1", "BUY 1"), open_slots=1000) == []


def test_halted_and_beyond_max_open_slots_gives_both_reasons():
    book = Scenario()
    halted(book)
    reasons = verdict(
        book,
        book.order("o1", "s1", "BUY 1"),
        strategy=Strategy("s1", max_open_slots=1),
        open_slots=1,
    )
    assert len(reasons) == 2
    assert "is halted on account A" in reasons[0]
    assert "max_open_slots 1" in reasons[1]


# -- hedge accounts ---------------------------------------------------------------------------


def hedge() -> Scenario:
    return Scenario(position_mode="hedge", instrument=perpetual())


def test_hedge_exit_is_checked_against_its_own_side():
    book = hedge()
    book.fill("s1", "BUY 2 @ 100 LONG")
    assert verdict(book, book.order("o1", "s1", "SELL 2 LONG", intent="exit")) == []
    assert verdict(book, book.order("o2", "s1", "BUY 1 SHORT", intent="exit")) == [
        "exit order o2: s1 holds no position on A/BTCUSDT-PERP/SHORT to exit"
    ]
    assert verdict(book, book.order("o3", "s1", "SELL 3 LONG", intent="take_profit")) == [
        "take_profit order o3 for 3 is larger than s1's position of 2 on "
        "A/BTCUSDT-PERP/LONG: the rest would close another strategy's position"
    ]


def test_hedge_entry_on_the_other_side_opens_a_new_slot():
    book = hedge()
    book.fill("s1", "BUY 2 @ 100 LONG")
    strategy = Strategy("s1", max_open_slots=1)
    assert (
        verdict(book, book.order("o1", "s1", "BUY 1 LONG"), strategy=strategy, open_slots=1) == []
    )
    assert (
        verdict(book, book.order("o2", "s1", "SELL 1 SHORT"), strategy=strategy, open_slots=1) != []
    )


@pytest.mark.parametrize("intent", ["entry", *EXITS])
@pytest.mark.parametrize("text", ["BUY 1", "BUY 1 BOTH"])
def test_hedge_order_without_a_position_side_is_invalid_input(intent: str, text: str):
    book = hedge()
    book.fill("s1", "BUY 2 @ 100 LONG")
    with pytest.raises(InvalidInput, match="hedge mode: position_side must be LONG or SHORT"):
        verdict(book, book.order("o1", "s1", text, intent=intent))


def test_netting_order_with_a_hedge_position_side_is_invalid_input():
    book = Scenario()
    with pytest.raises(InvalidInput, match="netting mode"):
        verdict(book, book.order("o1", "s1", "BUY 1 LONG"))


def test_check_order_changes_nothing():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    halted(book)
    before = ({k: s.quantity for k, s in book.book.slots.items()}, dict(book.book.halts))
    verdict(book, book.order("o1", "s1", "SELL 5", intent="exit"))
    verdict(book, book.order("o2", "s1", "BUY 5"))
    assert ({k: s.quantity for k, s in book.book.slots.items()}, dict(book.book.halts)) == before
