"""Reconciliation in the pure domain (issue 4): every check kind, every policy, orphans.

Per (account, instrument, position side) the ledger's quantity is the sum of every slot,
EXTERNAL included; ``decide_reconcile`` compares it with the broker's and applies the
policy: ``report`` changes nothing, ``adopt`` books the difference to EXTERNAL (and hands
EXTERNAL's quantity on a key that agrees to the one strategy there that adopts orphans),
``halt`` changes nothing in the books and halts the instrument on the account.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from posledger.domain.book import HaltState
from posledger.domain.decide import decide_fill
from posledger.domain.decisions import FillDecision, Leg, ReconcileDecision, Rejection
from posledger.domain.enums import (
    EXTERNAL,
    CheckKind,
    CloseReason,
    Direction,
    PositionSide,
    ReconcilePolicy,
    Role,
    Source,
)
from posledger.domain.inputs import Reconcile
from posledger.domain.numbers import D
from posledger.domain.reconcile import decide_reconcile, ledger_average, position_side_problem
from posledger.domain.refdata import InvalidInput

from .scenario import T0, Scenario, equity, future, perpetual

RUN_TS = T0 + 3600 * 1_000_000_000
"""The reconciliation runs an hour after the scenario started."""


# -- helpers -------------------------------------------------------------------------------


def reconcile_input(
    book: Scenario,
    quantity: str,
    *,
    side: str = "BOTH",
    policy: str = "report",
    avg_price: str | None = None,
    tolerance: str = "0.001",
    with_history: bool = False,
) -> Reconcile:
    return Reconcile(
        run="rec-1",
        account=book.account.account,
        instrument=book.instrument.instrument,
        position_side=PositionSide(side),
        quantity=D(quantity),
        policy=ReconcilePolicy(policy),
        price_tolerance=D(tolerance),
        ts=RUN_TS,
        avg_price=None if avg_price is None else D(avg_price),
        with_history=with_history,
    )


def state(book: Scenario) -> tuple[object, ...]:
    """Everything a decision must not change in the book it reads."""
    return (
        {k: (s.quantity, s.avg_entry, s.trade_id, s.lots) for k, s in book.book.slots.items()},
        {i: (t.quantity, t.closed_at, t.gross_realized) for i, t in book.book.open_trades.items()},
        dict(book.book.halts),
        book.book.mark,
    )


def decide(
    book: Scenario, quantity: str, *, adopters: tuple[str, ...] = (), **kw: object
) -> ReconcileDecision | Rejection:
    before = state(book)
    decision = decide_reconcile(
        reconcile_input(book, quantity, **kw),  # type: ignore[arg-type]
        account=book.account,
        instrument=book.instrument,
        book=book.book,
        adopts_orphans=set(adopters).__contains__,
        new_trade_id=book._new_trade_id,
    )
    assert state(book) == before, "deciding must not change the book"
    return decision


def check(
    book: Scenario, quantity: str, *, adopters: tuple[str, ...] = (), **kw: object
) -> ReconcileDecision:
    decision = decide(book, quantity, adopters=adopters, **kw)
    assert isinstance(decision, ReconcileDecision), decision
    return decision


def fold(book: Scenario, decision: ReconcileDecision) -> None:
    book.book.apply(decision)
    for trade in decision.trades:
        book.trades[trade.trade_id] = trade


def legs(decision: ReconcileDecision) -> list[tuple[str, Role, Decimal, Decimal, Decimal, Source]]:
    """(strategy, role, delta, price, realized, source) of every leg, in order."""
    return [_leg(leg) for leg in decision.legs]


def _leg(leg: Leg) -> tuple[str, Role, Decimal, Decimal, Decimal, Source]:
    return (leg.key.strategy, leg.role, leg.delta, leg.price, leg.realized, leg.source)


def unchanged(decision: ReconcileDecision) -> None:
    assert decision.legs == ()
    assert decision.slots == ()
    assert decision.trades == ()
    assert decision.opened == ()
    assert decision.adjustment is None
    assert decision.adjustment_price is None


# -- the kinds ------------------------------------------------------------------------------


def test_both_flat_agree():
    decision = check(Scenario(), "0")
    assert decision.check.kind is CheckKind.AGREE
    assert decision.check.agrees
    assert decision.check.ledger_quantity == D(0)
    assert decision.check.broker_quantity == D(0)
    assert decision.check.holders == ()
    assert decision.check.ledger_avg_price is None
    assert decision.check.action == "none"
    assert decision.check.detail == "ledger and broker are both flat"
    unchanged(decision)
    assert decision.orphan is None
    assert decision.halt is False


def test_slots_netting_to_zero_agree_with_a_flat_broker():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    book.fill("s2", "SELL 1 @ 101")
    decision = check(book, "0")
    assert decision.check.kind is CheckKind.AGREE
    assert decision.check.ledger_quantity == D(0)
    assert decision.check.holders == (("s1", D(1)), ("s2", D(-1)))
    assert decision.check.ledger_avg_price is None
    assert "net to zero" in decision.check.detail


def test_equal_quantities_agree_and_the_ledger_average_spans_every_slot_incl_external():
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100")
    book.fill(None, "BUY 1 @ 103")  # EXTERNAL
    decision = check(book, "3", avg_price="101.1")  # (200 + 103) / 3 = 101; 0.1 <= 0.1011
    assert decision.check.kind is CheckKind.AGREE
    assert decision.check.ledger_quantity == D(3)
    assert decision.check.ledger_avg_price == D(101)
    assert decision.check.broker_avg_price == D("101.1")
    assert decision.check.holders == ((EXTERNAL, D(1)), ("s1", D(2)))
    assert decision.check.detail.startswith("ledger and broker both hold 3")


def test_avg_price_drift_beyond_the_tolerance():
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100")
    book.fill("s2", "BUY 1 @ 103")
    decision = check(book, "3", avg_price="101.2")  # gap 0.2 > 0.001 * 101.2
    assert decision.check.kind is CheckKind.AVG_PRICE_DRIFT
    assert not decision.check.agrees
    assert decision.check.ledger_avg_price == D(101)
    assert decision.check.broker_avg_price == D("101.2")
    assert "differs from the broker's 101.2 by 0.2" in decision.check.detail


def test_the_tolerance_is_relative_and_its_boundary_agrees():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 101")
    # gap 1 against 1% of 100 = 1: not beyond the tolerance
    assert check(book, "1", avg_price="100", tolerance="0.01").check.kind is CheckKind.AGREE
    drift = check(book, "1", avg_price="100", tolerance="0.0099").check
    assert drift.kind is CheckKind.AVG_PRICE_DRIFT
    assert "(1%)" in drift.detail
    # zero tolerance: any difference is drift, equality agrees
    assert check(book, "1", avg_price="101", tolerance="0").check.kind is CheckKind.AGREE
    assert (
        check(book, "1", avg_price="101.000001", tolerance="0").check.kind
        is CheckKind.AVG_PRICE_DRIFT
    )


def test_short_positions_compare_averages_too():
    book = Scenario()
    book.fill("s1", "SELL 1 @ 100")
    book.fill("s2", "SELL 3 @ 104")
    decision = check(book, "-4", avg_price="103")  # (100 + 312) / 4 = 103
    assert decision.check.kind is CheckKind.AGREE
    assert decision.check.ledger_avg_price == D(103)
    assert check(book, "-4", avg_price="110").check.kind is CheckKind.AVG_PRICE_DRIFT


def test_average_not_compared_when_strategies_hold_both_sides():
    book = Scenario()
    book.fill("s1", "BUY 3 @ 100")
    book.fill("s2", "SELL 1 @ 110")
    decision = check(book, "2", avg_price="50")
    assert decision.check.kind is CheckKind.AGREE
    assert decision.check.ledger_avg_price is None
    assert "average prices not compared" in decision.check.detail


def test_without_a_broker_average_equal_quantities_agree():
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100")
    decision = check(book, "2")
    assert decision.check.kind is CheckKind.AGREE
    assert decision.check.ledger_avg_price == D(100)
    assert decision.check.broker_avg_price is None


@pytest.mark.parametrize(("held", "broker"), [("BUY 1", "3"), ("SELL 1", "-3")])
def test_missing_fills_same_sign_ledger_smaller(held: str, broker: str):
    book = Scenario()
    book.fill("s1", f"{held} @ 100")
    decision = check(book, broker)
    assert decision.check.kind is CheckKind.MISSING_FILLS
    assert decision.check.ledger_quantity == D(held.split()[1]) * (1 if "BUY" in held else -1)
    assert decision.check.broker_quantity == D(broker)
    assert "behind by" in decision.check.detail
    assert "reconcile --fills" in decision.check.detail
    unchanged(decision)


def test_stale_position_ledger_open_broker_flat():
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100")
    decision = check(book, "0")
    assert decision.check.kind is CheckKind.STALE_POSITION
    assert decision.check.ledger_quantity == D(2)
    assert decision.check.holders == (("s1", D(2)),)
    assert "(s1 2) but the broker is flat" in decision.check.detail
    unchanged(decision)


@pytest.mark.parametrize("broker", ["2", "-2"])
def test_unknown_position_ledger_flat_broker_holds(broker: str):
    decision = check(Scenario(), broker)
    assert decision.check.kind is CheckKind.UNKNOWN_POSITION
    assert decision.check.ledger_quantity == D(0)
    assert decision.check.holders == ()
    unchanged(decision)


def test_unknown_position_when_the_slots_net_to_zero():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    book.fill("s2", "SELL 1 @ 100")
    decision = check(book, "1")
    assert decision.check.kind is CheckKind.UNKNOWN_POSITION
    assert decision.check.holders == (("s1", D(1)), ("s2", D(-1)))


@pytest.mark.parametrize(
    ("held", "broker"),
    [
        ("BUY 3", "1"),  # same sign, ledger larger
        ("SELL 3", "-1"),
        ("BUY 1", "-1"),  # opposite signs
        ("SELL 2", "5"),
    ],
)
def test_quantity_mismatch(held: str, broker: str):
    book = Scenario()
    book.fill("s1", f"{held} @ 100")
    decision = check(book, broker)
    assert decision.check.kind is CheckKind.QUANTITY_MISMATCH
    ledger = decision.check.ledger_quantity
    assert f"(difference {D(broker) - ledger})" in decision.check.detail
    unchanged(decision)


def test_detail_says_when_the_fill_history_was_applied_first():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    decision = check(book, "2", with_history=True)
    assert decision.check.kind is CheckKind.MISSING_FILLS
    assert "fill history was applied first and does not explain it" in decision.check.detail


def test_only_the_checked_position_side_is_summed_on_a_hedge_account():
    book = Scenario(position_mode="hedge", instrument=perpetual())
    book.fill("s1", "BUY 2 @ 100 LONG")
    book.fill("s2", "SELL 1 @ 100 SHORT")
    long = check(book, "2", side="LONG").check
    short = check(book, "-1", side="SHORT").check
    assert (long.kind, long.ledger_quantity, long.holders) == (
        CheckKind.AGREE,
        D(2),
        (("s1", D(2)),),
    )
    assert (short.kind, short.ledger_quantity, short.holders) == (
        CheckKind.AGREE,
        D(-1),
        (("s2", D(-1)),),
    )
    assert check(book, "0", side="SHORT").check.kind is CheckKind.STALE_POSITION


def test_other_accounts_on_the_same_instrument_are_not_counted():
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100")
    # the instrument's book also holds account B's slot
    account_b = replace(book.account, account="B")
    decision = decide_fill(
        replace(book.make_fill("s1", "BUY 5 @ 100"), account="B"),
        account=account_b,
        instrument=book.instrument,
        order=None,
        strategy_known=book.strategies.__contains__,
        book=book.book,
        new_trade_id=book._new_trade_id,
    )
    assert isinstance(decision, FillDecision)
    book.book.apply(decision)
    result = check(book, "2").check
    assert (result.kind, result.ledger_quantity) == (CheckKind.AGREE, D(2))


# -- position mode problems -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "side", "quantity", "words"),
    [
        ("hedge", "BOTH", "1", "position mode mismatch: account A is in hedge mode"),
        ("hedge", "BOTH", "0", "broker reports a one-way (BOTH) position"),
        ("hedge", "LONG", "-1", "a LONG position cannot point the other way"),
        ("hedge", "SHORT", "1", "a SHORT position cannot point the other way"),
        ("netting", "LONG", "1", "position mode mismatch: account A is in netting mode"),
        ("netting", "SHORT", "-1", "broker reports a SHORT (hedge) position"),
    ],
)
@pytest.mark.parametrize("policy", ["report", "adopt", "halt"])
def test_position_mode_problems_are_rejections(
    mode: str, side: str, quantity: str, words: str, policy: str
):
    book = Scenario(position_mode=mode, instrument=perpetual())
    book.mark("100")
    decision = decide(book, quantity, side=side, policy=policy)
    assert isinstance(decision, Rejection)
    assert words in decision.reason


@pytest.mark.parametrize(
    ("mode", "side", "quantity"),
    [
        ("hedge", "LONG", "1"),
        ("hedge", "LONG", "0"),
        ("hedge", "SHORT", "-1"),
        ("hedge", "SHORT", "0"),
        ("netting", "BOTH", "1"),
        ("netting", "BOTH", "-1"),
    ],
)
def test_positions_the_account_can_hold_are_compared(mode: str, side: str, quantity: str):
    book = Scenario(position_mode=mode, instrument=perpetual())
    assert position_side_problem(book.account, PositionSide(side), D(quantity)) is None
    assert isinstance(decide(book, quantity, side=side), ReconcileDecision)


def test_a_check_of_another_account_or_instrument_is_a_programming_error():
    book = Scenario()
    other = Scenario(account="B")
    with pytest.raises(ValueError, match="own account and instrument"):
        decide_reconcile(
            reconcile_input(other, "1"),
            account=book.account,
            instrument=book.instrument,
            book=book.book,
            adopts_orphans=lambda _: False,
            new_trade_id=book._new_trade_id,
        )


def test_a_negative_tolerance_is_invalid_input():
    with pytest.raises(InvalidInput, match="price_tolerance"):
        reconcile_input(Scenario(), "1", tolerance="-0.1")


# -- ledger_average -----------------------------------------------------------------------------


def test_ledger_average_is_quantized_to_18_digits_and_ignores_flat_slots():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    book.fill("s2", "BUY 2 @ 101")
    book.fill("s3", "BUY 1 @ 90")
    book.fill("s3", "SELL 1 @ 95")  # flat, its avg_entry 90 is kept but must not count
    slots = list(book.book.slots.values())
    assert ledger_average(slots) == D("100.666666666666666667")  # 302 / 3
    assert ledger_average([]) is None
    assert ledger_average([book.slot("s3")]) is None


# -- report policy ------------------------------------------------------------------------------


@pytest.mark.parametrize("broker", ["0", "1", "5", "-2"])
def test_report_changes_nothing(broker: str):
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100")
    book.fill(None, "BUY 1 @ 100")
    book.mark("105")
    decision = check(book, broker, policy="report", adopters=("s1",))
    unchanged(decision)
    assert decision.check.action == "none"
    assert decision.orphan is None
    assert decision.halt is False


# -- adopt policy -------------------------------------------------------------------------------


def test_adopt_opens_an_unknown_position_at_the_broker_entry_not_the_mark():
    book = Scenario(instrument=future("MES", multiplier="5"))
    book.mark("104")
    decision = check(book, "3", policy="adopt", avg_price="101.5")
    assert decision.check.kind is CheckKind.UNKNOWN_POSITION
    assert (decision.adjustment, decision.adjustment_price) == (D(3), D("101.5"))
    [slot] = decision.slots
    assert (slot.key.strategy, slot.quantity, slot.avg_entry) == (EXTERNAL, D(3), D("101.5"))


def test_adopt_reduces_external_at_the_mark_not_the_broker_entry():
    book = Scenario(instrument=future("MES", multiplier="5"))
    book.fill(EXTERNAL, "BUY 3 @ 100")
    book.mark("104")
    decision = check(book, "1", policy="adopt", avg_price="100")
    assert decision.check.kind is CheckKind.QUANTITY_MISMATCH
    assert (decision.adjustment, decision.adjustment_price) == (D(-2), D(104))
    # EXTERNAL sold 2 of its 3 at the market: (104 - 100) * 2 * 5
    assert [leg.realized for leg in decision.legs] == [D(40)]


def test_adopt_books_a_stale_position_to_external_at_the_mark():
    book = Scenario(instrument=future("MES", multiplier="5"))
    book.fill("s1", "BUY 2 @ 100")
    book.mark("104")
    decision = check(book, "0", policy="adopt", avg_price="99")
    assert decision.check.kind is CheckKind.STALE_POSITION
    assert decision.check.ledger_quantity == D(2)  # before the adjustment
    assert decision.check.action == "adopted"
    assert decision.adjustment == D(-2)
    # the broker is flat: whatever average price it sends beside that is no entry
    assert decision.adjustment_price == D(104)
    assert legs(decision) == [
        (EXTERNAL, Role.OPEN, D(-2), D(104), D(0), Source.RECONCILIATION),
    ]
    assert "-2 booked to EXTERNAL at 104" in decision.check.detail
    [slot] = decision.slots
    assert (slot.key.strategy, slot.quantity, slot.avg_entry) == (EXTERNAL, D(-2), D(104))
    [trade] = decision.trades
    assert trade.direction is Direction.SHORT
    assert trade.avg_entry == D(104)
    assert decision.opened == (trade.trade_id,)
    fold(book, decision)
    assert book.slot("s1").quantity == D(2)  # the strategy's own slot is untouched
    assert book.slot("s1").avg_entry == D(100)
    assert check(book, "0").check.kind is CheckKind.AGREE


def test_adopt_closing_an_external_trade_gives_close_reason_reconciliation():
    book = Scenario(instrument=future("MES", multiplier="5"))
    book.fill(None, "BUY 2 @ 100")
    book.mark("110")
    decision = check(book, "0", policy="adopt")
    assert decision.adjustment == D(-2)
    assert legs(decision) == [
        (EXTERNAL, Role.CLOSE, D(-2), D(110), D(100), Source.RECONCILIATION),
    ]  # (110 - 100) * 2 * 5
    [trade] = decision.trades
    assert trade.close_reason is CloseReason.RECONCILIATION
    assert trade.closed_at == RUN_TS
    assert trade.gross_realized == D(100)
    assert trade.avg_exit == D(110)
    assert decision.opened == ()
    assert decision.orphan is None  # EXTERNAL is flat afterwards


def test_adopt_partial_reduction_of_external_keeps_the_trade_open():
    book = Scenario()
    book.fill(None, "SELL 3 @ 100")
    book.mark("90")
    decision = check(book, "-1", policy="adopt")
    assert decision.check.kind is CheckKind.QUANTITY_MISMATCH
    assert legs(decision) == [
        (EXTERNAL, Role.REDUCE, D(2), D(90), D(20), Source.RECONCILIATION),
    ]  # (90 - 100) * 2 * -1
    [trade] = decision.trades
    assert trade.closed_at is None
    assert trade.close_reason is None
    assert trade.quantity == D(1)


def test_adopt_flipping_external_closes_with_reconciliation_and_opens_the_rest():
    book = Scenario()
    book.fill(None, "BUY 1 @ 100")
    book.mark("90")
    decision = check(book, "-1", policy="adopt")
    assert decision.check.kind is CheckKind.QUANTITY_MISMATCH
    assert decision.adjustment == D(-2)
    assert legs(decision) == [
        (EXTERNAL, Role.FLIP, D(-1), D(90), D(-10), Source.RECONCILIATION),
        (EXTERNAL, Role.FLIP, D(-1), D(90), D(0), Source.RECONCILIATION),
    ]
    closed, opened = decision.trades
    assert closed.close_reason is CloseReason.RECONCILIATION
    assert closed.gross_realized == D(-10)
    assert (opened.direction, opened.quantity, opened.avg_entry) == (Direction.SHORT, D(1), D(90))
    assert decision.opened == (opened.trade_id,)


def test_adopt_increases_an_open_external_trade_at_the_adoption_price():
    book = Scenario()
    book.fill(None, "BUY 1 @ 100")
    book.mark("106")
    decision = check(book, "3", policy="adopt")
    assert decision.check.kind is CheckKind.MISSING_FILLS
    assert legs(decision) == [
        (EXTERNAL, Role.INCREASE, D(2), D(106), D(0), Source.RECONCILIATION),
    ]
    [slot] = decision.slots
    assert (slot.quantity, slot.avg_entry) == (D(3), D(104))  # (100 + 212) / 3


def test_adopt_price_is_the_brokers_average_without_a_mark():
    book = Scenario()
    decision = check(book, "2", policy="adopt", avg_price="101.5")
    assert decision.check.kind is CheckKind.UNKNOWN_POSITION
    assert decision.adjustment == D(2)
    assert decision.adjustment_price == D("101.5")
    assert legs(decision) == [
        (EXTERNAL, Role.OPEN, D(2), D("101.5"), D(0), Source.RECONCILIATION),
    ]


def test_adopt_price_is_the_ledger_average_without_a_mark_or_broker_average():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    book.fill("s2", "BUY 1 @ 104")
    decision = check(book, "3", policy="adopt")
    assert decision.check.kind is CheckKind.MISSING_FILLS
    assert decision.check.ledger_avg_price == D(102)
    assert decision.adjustment == D(1)
    assert decision.adjustment_price == D(102)
    assert legs(decision) == [
        (EXTERNAL, Role.OPEN, D(1), D(102), D(0), Source.RECONCILIATION),
    ]


def test_adopt_price_is_externals_average_when_the_slots_point_both_ways():
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100")
    book.fill(None, "SELL 1 @ 107")
    decision = check(book, "0", policy="adopt")
    assert decision.check.kind is CheckKind.STALE_POSITION
    assert decision.check.ledger_avg_price is None
    assert decision.adjustment == D(-1)
    assert decision.adjustment_price == D(107)
    assert legs(decision) == [
        (EXTERNAL, Role.INCREASE, D(-1), D(107), D(0), Source.RECONCILIATION),
    ]
    [slot] = decision.slots
    assert (slot.key.strategy, slot.quantity, slot.avg_entry) == (EXTERNAL, D(-2), D(107))


def test_adopt_skips_a_price_the_instrument_cannot_trade_at():
    # a broker average of 0 on an equity is not a price: the ledger average is used
    book = Scenario(instrument=equity("AAPL"))
    book.fill("s1", "BUY 1 @ 180")
    decision = check(book, "2", policy="adopt", avg_price="0")
    assert decision.adjustment_price == D(180)
    assert legs(decision) == [
        (EXTERNAL, Role.OPEN, D(1), D(180), D(0), Source.RECONCILIATION),
    ]


def test_adopt_without_any_price_adopts_nothing():
    book = Scenario()
    decision = check(book, "2", policy="adopt", adopters=("s1",))
    assert decision.check.kind is CheckKind.UNKNOWN_POSITION
    assert decision.check.action == "none"
    assert "not adopted: there is no price to book it at" in decision.check.detail
    unchanged(decision)
    assert decision.orphan is None


def test_adopt_without_any_price_when_the_slots_point_both_ways_and_external_is_flat():
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100")
    book.fill("s2", "SELL 1 @ 100")
    decision = check(book, "0", policy="adopt")
    assert decision.check.kind is CheckKind.STALE_POSITION
    assert decision.check.action == "none"
    unchanged(decision)


def test_adopt_never_acts_on_avg_price_drift():
    book = Scenario()
    book.fill(None, "BUY 2 @ 100")
    book.mark("120")
    decision = check(book, "2", policy="adopt", avg_price="110")
    assert decision.check.kind is CheckKind.AVG_PRICE_DRIFT
    assert decision.check.action == "none"
    unchanged(decision)


def test_adopt_of_a_short_difference_on_a_hedge_short_side():
    book = Scenario(position_mode="hedge", instrument=perpetual())
    book.fill("s1", "SELL 1 @ 100 SHORT")
    book.mark("98")
    decision = check(book, "-3", side="SHORT", policy="adopt")
    assert decision.check.kind is CheckKind.MISSING_FILLS
    assert legs(decision) == [
        (EXTERNAL, Role.OPEN, D(-2), D(98), D(0), Source.RECONCILIATION),
    ]
    [slot] = decision.slots
    assert slot.key.position_side is PositionSide.SHORT
    assert book.slot("s1", "SHORT").quantity == D(-1)


# -- orphans (adopt policy) -------------------------------------------------------------------


def test_orphan_with_no_strategy_adopting():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    book.fill(None, "BUY 1 @ 100")
    decision = check(book, "2", policy="adopt")
    assert decision.check.kind is CheckKind.AGREE
    assert decision.check.action == "none"
    unchanged(decision)
    assert decision.orphan is not None
    assert (decision.orphan.quantity, decision.orphan.strategy, decision.orphan.price) == (
        D(1),
        None,
        None,
    )
    assert "no strategy there adopts orphans" in decision.orphan.detail


def test_orphan_is_not_adopted_by_a_strategy_without_a_slot_on_the_key():
    book = Scenario()
    book.fill(None, "BUY 1 @ 100")
    decision = check(book, "1", policy="adopt", adopters=("s3",))
    assert decision.orphan is not None
    assert decision.orphan.strategy is None
    unchanged(decision)


def test_orphan_adopted_by_the_one_strategy_there_that_adopts_orphans():
    book = Scenario(instrument=future("MES", multiplier="5"))
    book.fill("s1", "BUY 1 @ 100")
    book.fill("s2", "BUY 1 @ 100")
    book.fill(None, "BUY 2 @ 106")
    book.mark("120")  # the orphan moves at EXTERNAL's average, never at the mark
    decision = check(book, "4", policy="adopt", adopters=("s1",))
    assert decision.check.kind is CheckKind.AGREE
    assert decision.check.action == "none"
    assert decision.adjustment is None
    orphan = decision.orphan
    assert orphan is not None
    assert (orphan.quantity, orphan.strategy, orphan.price) == (D(2), "s1", D(106))
    assert "s1 adopted EXTERNAL's 2" in orphan.detail
    assert legs(decision) == [
        (EXTERNAL, Role.CLOSE, D(-2), D(106), D(0), Source.TRANSFER),
        ("s1", Role.INCREASE, D(2), D(106), D(0), Source.TRANSFER),
    ]
    slots = {slot.key.strategy: slot for slot in decision.slots}
    assert slots[EXTERNAL].quantity == D(0)
    assert (slots["s1"].quantity, slots["s1"].avg_entry) == (D(3), D(104))  # (100 + 212) / 3
    assert "s2" not in slots
    closed = next(t for t in decision.trades if t.key.strategy == EXTERNAL)
    assert closed.close_reason is CloseReason.TRANSFER
    assert closed.gross_realized == D(0)
    fold(book, decision)
    after = check(book, "4", policy="adopt", adopters=("s1",))
    assert after.check.kind is CheckKind.AGREE
    assert after.orphan is None
    assert after.legs == ()


def test_orphan_adopted_into_a_flat_slot_opens_a_new_trade():
    book = Scenario()
    book.fill("s1", "SELL 1 @ 100")
    book.fill("s1", "BUY 1 @ 95")  # s1 is flat but has a slot here
    book.fill(None, "SELL 2 @ 103")
    decision = check(book, "-2", policy="adopt", adopters=("s1",))
    assert decision.orphan is not None
    assert decision.orphan.strategy == "s1"
    assert legs(decision) == [
        (EXTERNAL, Role.CLOSE, D(2), D(103), D(0), Source.TRANSFER),
        ("s1", Role.OPEN, D(-2), D(103), D(0), Source.TRANSFER),
    ]
    opened = next(t for t in decision.trades if t.key.strategy == "s1")
    assert (opened.direction, opened.quantity, opened.avg_entry) == (Direction.SHORT, D(2), D(103))
    assert decision.opened == (opened.trade_id,)


def test_orphan_not_adopted_when_two_strategies_adopt_orphans():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    book.fill("s2", "BUY 1 @ 100")
    book.fill(None, "BUY 1 @ 100")
    decision = check(book, "3", policy="adopt", adopters=("s1", "s2"))
    assert decision.orphan is not None
    assert (decision.orphan.quantity, decision.orphan.strategy) == (D(1), None)
    assert "s1, s2 all adopt orphans" in decision.orphan.detail
    unchanged(decision)


def test_orphan_never_nets_against_an_opposite_strategy_position():
    book = Scenario()
    book.fill("s1", "SELL 1 @ 100")
    book.fill(None, "BUY 2 @ 100")
    decision = check(book, "1", policy="adopt", adopters=("s1",))
    assert decision.check.kind is CheckKind.AGREE
    assert decision.orphan is not None
    assert (decision.orphan.quantity, decision.orphan.strategy) == (D(2), None)
    assert "s1 is SHORT and adopting would net its position away" in decision.orphan.detail
    unchanged(decision)


def test_orphan_left_by_the_adjustment_is_adopted_in_the_same_check():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    book.mark("102")
    decision = check(book, "3", policy="adopt", adopters=("s1",))
    assert decision.check.kind is CheckKind.MISSING_FILLS
    assert decision.check.action == "adopted"
    assert decision.adjustment == D(2)
    assert decision.orphan is not None
    assert (decision.orphan.strategy, decision.orphan.quantity, decision.orphan.price) == (
        "s1",
        D(2),
        D(102),
    )
    assert legs(decision) == [
        (EXTERNAL, Role.OPEN, D(2), D(102), D(0), Source.RECONCILIATION),
        (EXTERNAL, Role.CLOSE, D(-2), D(102), D(0), Source.TRANSFER),
        ("s1", Role.INCREASE, D(2), D(102), D(0), Source.TRANSFER),
    ]
    slots = {slot.key.strategy: slot for slot in decision.slots}
    assert (slots["s1"].quantity, slots["s1"].avg_entry) == (
        D(3),
        D("101.333333333333333333"),
    )  # (100 + 204) / 3
    assert slots[EXTERNAL].quantity == D(0)
    external = next(t for t in decision.trades if t.key.strategy == EXTERNAL)
    assert external.close_reason is CloseReason.TRANSFER
    assert external.peak_quantity == D(2)


def test_orphans_are_not_handed_on_under_report_or_halt():
    for policy in ("report", "halt"):
        book = Scenario()
        book.fill("s1", "BUY 1 @ 100")
        book.fill(None, "BUY 1 @ 100")
        decision = check(book, "2", policy=policy, adopters=("s1",))
        assert decision.orphan is None
        unchanged(decision)


def test_orphans_are_not_handed_on_where_the_average_price_drifts():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    book.fill(None, "BUY 1 @ 100")
    decision = check(book, "2", policy="adopt", avg_price="150", adopters=("s1",))
    assert decision.check.kind is CheckKind.AVG_PRICE_DRIFT
    assert decision.check.action == "none"
    assert decision.orphan is None or decision.orphan.strategy is None
    unchanged(decision)


def test_orphan_on_a_hedge_side_is_adopted_by_the_slot_of_that_side():
    book = Scenario(position_mode="hedge", instrument=perpetual())
    book.fill("s1", "BUY 1 @ 100 LONG")
    book.fill("s1", "SELL 1 @ 100 LONG")  # flat LONG slot
    book.fill("s2", "SELL 1 @ 100 SHORT")
    book.fill(None, "BUY 2 @ 101 LONG")
    decision = check(book, "2", side="LONG", policy="adopt", adopters=("s1", "s2"))
    assert decision.orphan is not None
    assert decision.orphan.strategy == "s1"  # s2 has no LONG slot
    assert legs(decision) == [
        (EXTERNAL, Role.CLOSE, D(-2), D(101), D(0), Source.TRANSFER),
        ("s1", Role.OPEN, D(2), D(101), D(0), Source.TRANSFER),
    ]


def test_a_wrong_side_orphan_never_turns_a_hedge_slot_around():
    # EXTERNAL LONG is short 1 (an over-reduction of s2's LONG slot), s1 holds LONG 2: the
    # key agrees with the broker (1). s2's flat LONG slot adopts orphans; taking -1 would
    # make a hedge LONG slot short, which it never is
    # (docs/accounting.md, Hedge slots never change sign).
    book = Scenario(position_mode="hedge", instrument=perpetual())
    book.fill("s2", "BUY 1 @ 100 LONG")
    book.fill("s2", "SELL 2 @ 100 LONG")
    book.fill("s1", "BUY 2 @ 100 LONG")
    assert book.external("LONG").quantity == D(-1)
    decision = check(book, "1", side="LONG", policy="adopt", adopters=("s2",))
    assert decision.check.kind is CheckKind.AGREE
    assert decision.orphan is not None
    assert (decision.orphan.quantity, decision.orphan.strategy) == (D(-1), None)
    assert "a hedge LONG slot never points the other way" in decision.orphan.detail
    unchanged(decision)


# -- halt policy --------------------------------------------------------------------------------


@pytest.mark.parametrize("broker", ["0", "3", "-1"])
def test_halt_changes_nothing_in_the_books_and_halts(broker: str):
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    book.mark("101")
    decision = check(book, broker, policy="halt")
    assert decision.check.kind is not CheckKind.AGREE
    assert decision.check.action == "halted"
    assert decision.halt is True
    assert "is halted on A: entry orders are refused" in decision.check.detail
    unchanged(decision)
    assert decision.orphan is None
    fold(book, decision)
    assert book.book.halts == {}  # the service records the halt, not Book.apply


def test_halt_when_already_halted_does_not_halt_again():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    book.book.halts["A"] = HaltState(T0, "halted by hand")
    decision = check(book, "0", policy="halt")
    assert decision.check.kind is CheckKind.STALE_POSITION
    assert decision.check.action == "halted"
    assert decision.halt is False
    unchanged(decision)


def test_a_halt_on_another_account_does_not_count():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    book.book.halts["B"] = HaltState(T0, "halted by hand")
    assert check(book, "0", policy="halt").halt is True


@pytest.mark.parametrize(("broker", "avg"), [("1", None), ("1", "100"), ("1", "200")])
def test_halt_does_nothing_where_quantities_agree(broker: str, avg: str | None):
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    decision = check(book, broker, policy="halt", avg_price=avg)
    assert decision.check.kind in (CheckKind.AGREE, CheckKind.AVG_PRICE_DRIFT)
    assert decision.check.action == "none"
    assert decision.halt is False
    unchanged(decision)
