"""Transfers between strategies in the pure domain (docs/reconciliation.md, Transfers;
docs/accounting.md, Transfers and reconciliation adjustments).

A transfer moves quantity from a slot that holds at least that much to another strategy's
slot, at the giving slot's average entry unless a price is given; the receiver's P&L
starts from that price, trades it closes get close reason ``transfer``, and a hedge slot
never changes sign.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from posledger.domain.decisions import Rejection, TransferDecision
from posledger.domain.enums import EXTERNAL, CloseReason, Direction, PositionSide, Role, Source
from posledger.domain.inputs import Transfer
from posledger.domain.numbers import D
from posledger.domain.reconcile import decide_transfer
from posledger.domain.refdata import InvalidInput

from .scenario import Scenario, equity, future, perpetual

# -- helpers -------------------------------------------------------------------------------


def make(
    book: Scenario,
    giver: str,
    taker: str,
    quantity: str,
    *,
    price: str | None = None,
    side: str | None = None,
) -> Transfer:
    return Transfer(
        account=book.account.account,
        instrument=book.instrument.instrument,
        from_strategy=giver,
        to_strategy=taker,
        quantity=D(quantity),
        position_side=None if side is None else PositionSide(side),
        price=None if price is None else D(price),
        ts=book._tick(None),
    )


def state(book: Scenario) -> tuple[object, ...]:
    return (
        {k: (s.quantity, s.avg_entry, s.trade_id, s.lots) for k, s in book.book.slots.items()},
        {i: (t.quantity, t.closed_at, t.gross_realized) for i, t in book.book.open_trades.items()},
    )


def decide(
    book: Scenario, giver: str, taker: str, quantity: str, **kw: str | None
) -> TransferDecision | Rejection:
    before = state(book)
    decision = decide_transfer(
        make(book, giver, taker, quantity, **kw),
        account=book.account,
        instrument=book.instrument,
        strategy_known=book.strategies.__contains__,
        book=book.book,
        new_trade_id=book._new_trade_id,
    )
    assert state(book) == before, "deciding must not change the book"
    return decision


def transfer(
    book: Scenario, giver: str, taker: str, quantity: str, **kw: str | None
) -> TransferDecision:
    """Decide and apply a transfer that must be accepted; the invariants must still hold."""
    decision = decide(book, giver, taker, quantity, **kw)
    assert isinstance(decision, TransferDecision), decision
    book.book.apply(decision)
    for trade in decision.trades:
        book.trades[trade.trade_id] = trade
    assert not book.problems(), book.problems()
    return decision


def refused(book: Scenario, giver: str, taker: str, quantity: str, **kw: str | None) -> str:
    decision = decide(book, giver, taker, quantity, **kw)
    assert isinstance(decision, Rejection), decision
    return decision.reason


def legs(decision: TransferDecision) -> list[tuple[str, Role, Decimal, Decimal, Decimal]]:
    """(strategy, role, delta, price, realized) of every leg; each must come from a transfer."""
    assert all(leg.source is Source.TRANSFER for leg in decision.legs)
    assert all(leg.commission == D(0) for leg in decision.legs)
    return [
        (leg.key.strategy, leg.role, leg.delta, leg.price, leg.realized) for leg in decision.legs
    ]


# -- moving quantity -------------------------------------------------------------------------


def test_full_transfer_closes_the_givers_trade_and_opens_the_receivers():
    book = Scenario(instrument=future("MES", multiplier="5"))
    book.fill("s1", "BUY 2 @ 100 fee 1")
    decision = transfer(book, "s1", "s2", "2")
    assert decision.price == D(100)
    assert decision.position_side is PositionSide.BOTH
    assert decision.transfer.ts == book.now
    assert legs(decision) == [
        ("s1", Role.CLOSE, D(-2), D(100), D(0)),
        ("s2", Role.OPEN, D(2), D(100), D(0)),
    ]
    given = book.trade("s1")
    assert given.closed_at == book.now
    assert given.close_reason is CloseReason.TRANSFER
    assert given.gross_realized == D(0)
    assert given.realized_pnl == D(-1)  # the commission of the fill that opened it
    assert given.avg_exit == D(100)
    assert book.slot("s1").quantity == D(0)
    taken = book.trade("s2")
    assert (taken.direction, taken.quantity, taken.avg_entry) == (Direction.LONG, D(2), D(100))
    assert taken.opened_at == book.now
    assert taken.commissions == {"USD": D(0)}
    assert decision.opened == (taken.trade_id,)
    assert (book.slot("s2").quantity, book.slot("s2").avg_entry) == (D(2), D(100))


def test_partial_transfer_reduces_the_giver_at_its_average():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    book.fill("s1", "BUY 2 @ 103")  # avg 102
    decision = transfer(book, "s1", "s2", "1")
    assert decision.price == D(102)
    assert legs(decision) == [
        ("s1", Role.REDUCE, D(-1), D(102), D(0)),
        ("s2", Role.OPEN, D(1), D(102), D(0)),
    ]
    assert (book.slot("s1").quantity, book.slot("s1").avg_entry) == (D(2), D(102))
    assert book.trade("s1").closed_at is None
    assert book.trade("s1").quantity == D(2)
    assert (book.slot("s2").quantity, book.slot("s2").avg_entry) == (D(1), D(102))


def test_a_transfer_at_a_price_realizes_the_difference_on_the_giver():
    book = Scenario(instrument=future("MES", multiplier="5"))
    book.fill("s1", "BUY 2 @ 100")
    decision = transfer(book, "s1", "s2", "1", price="110")
    assert decision.price == D(110)
    assert legs(decision) == [
        ("s1", Role.REDUCE, D(-1), D(110), D(50)),  # (110 - 100) * 1 * 5
        ("s2", Role.OPEN, D(1), D(110), D(0)),
    ]
    assert book.trade("s1").gross_realized == D(50)
    assert book.trade("s1").avg_exit == D(110)
    assert book.slot("s1").avg_entry == D(100)
    # the receiver's P&L starts from the transfer price
    assert book.slot("s2").avg_entry == D(110)
    book.order("x2", "s2", "SELL 1", intent="exit")
    book.fill("x2", "SELL 1 @ 120")
    assert book.trade("s2").gross_realized == D(50)  # (120 - 110) * 1 * 5
    assert book.trade("s2").close_reason is CloseReason.EXIT


def test_a_short_transfer_at_a_price():
    book = Scenario(instrument=future("MES", multiplier="5"))
    book.fill("s1", "SELL 2 @ 100")
    decision = transfer(book, "s1", "s2", "2", price="90")
    assert legs(decision) == [
        ("s1", Role.CLOSE, D(2), D(90), D(100)),  # (90 - 100) * 2 * 5 * -1
        ("s2", Role.OPEN, D(-2), D(90), D(0)),
    ]
    assert book.trade("s1").close_reason is CloseReason.TRANSFER
    assert book.trade("s1").gross_realized == D(100)
    taken = book.trade("s2")
    assert (taken.direction, taken.quantity, taken.avg_entry) == (Direction.SHORT, D(2), D(90))
    assert book.slot("s2").quantity == D(-2)


def test_a_transfer_may_be_priced_at_or_below_zero_where_the_instrument_allows_it():
    book = Scenario()  # a future: negative prices allowed
    book.fill("s1", "BUY 1 @ 5")
    decision = transfer(book, "s1", "s2", "1", price="-3")
    assert legs(decision) == [
        ("s1", Role.CLOSE, D(-1), D(-3), D(-8)),
        ("s2", Role.OPEN, D(1), D(-3), D(0)),
    ]


def test_transfer_to_external():
    book = Scenario()
    book.fill("s1", "BUY 3 @ 100")
    decision = transfer(book, "s1", EXTERNAL, "1")
    assert legs(decision) == [
        ("s1", Role.REDUCE, D(-1), D(100), D(0)),
        (EXTERNAL, Role.OPEN, D(1), D(100), D(0)),
    ]
    assert book.external().quantity == D(1)
    assert book.slot("s1").quantity == D(2)


def test_transfer_from_external():
    book = Scenario()
    book.fill(None, "SELL 2 @ 100")
    decision = transfer(book, EXTERNAL, "s1", "2")
    assert legs(decision) == [
        (EXTERNAL, Role.CLOSE, D(2), D(100), D(0)),
        ("s1", Role.OPEN, D(-2), D(100), D(0)),
    ]
    assert book.trade(EXTERNAL).close_reason is CloseReason.TRANSFER
    assert book.external().quantity == D(0)
    assert book.slot("s1").quantity == D(-2)


def test_receiver_holding_the_same_way_averages_in_the_transfer_price():
    book = Scenario()
    book.fill("s2", "BUY 1 @ 90")
    book.fill("s1", "BUY 1 @ 100")
    decision = transfer(book, "s1", "s2", "1")
    assert legs(decision)[1] == ("s2", Role.INCREASE, D(1), D(100), D(0))
    assert (book.slot("s2").quantity, book.slot("s2").avg_entry) == (D(2), D(95))
    assert book.trade("s2").avg_entry == D(95)
    assert book.trade("s2").entry_quantity == D(2)


def test_receiver_holding_the_other_way_is_reduced_at_the_transfer_price():
    book = Scenario()
    book.fill("s2", "SELL 3 @ 95")
    book.fill("s1", "BUY 1 @ 100")
    decision = transfer(book, "s1", "s2", "1")
    assert legs(decision) == [
        ("s1", Role.CLOSE, D(-1), D(100), D(0)),
        ("s2", Role.REDUCE, D(1), D(100), D(-5)),  # (100 - 95) * 1 * -1
    ]
    assert book.slot("s2").quantity == D(-2)


def test_netting_receiver_flips_and_the_trade_it_closes_says_transfer():
    book = Scenario()
    book.fill("s2", "SELL 1 @ 95")
    book.fill(None, "BUY 3 @ 100")
    decision = transfer(book, EXTERNAL, "s2", "3")
    assert legs(decision) == [
        (EXTERNAL, Role.CLOSE, D(-3), D(100), D(0)),
        ("s2", Role.FLIP, D(1), D(100), D(-5)),
        ("s2", Role.FLIP, D(2), D(100), D(0)),
    ]
    closed, opened = book.trades_of("s2")
    assert closed.close_reason is CloseReason.TRANSFER
    assert closed.gross_realized == D(-5)
    assert (opened.direction, opened.quantity, opened.avg_entry) == (Direction.LONG, D(2), D(100))
    assert opened.closed_at is None
    assert (book.slot("s2").quantity, book.slot("s2").trade_id) == (D(2), opened.trade_id)
    assert decision.opened == (opened.trade_id,)


# -- hedge accounts ----------------------------------------------------------------------------


def hedge() -> Scenario:
    return Scenario(position_mode="hedge", instrument=perpetual())


def test_hedge_transfer_stays_on_its_side():
    book = hedge()
    book.fill("s1", "BUY 2 @ 100 LONG")
    book.fill("s1", "SELL 3 @ 100 SHORT")
    long = transfer(book, "s1", "s2", "1", side="LONG")
    assert long.position_side is PositionSide.LONG
    assert legs(long) == [
        ("s1", Role.REDUCE, D(-1), D(100), D(0)),
        ("s2", Role.OPEN, D(1), D(100), D(0)),
    ]
    short = transfer(book, "s1", "s2", "3", side="SHORT", price="98")
    assert legs(short) == [
        ("s1", Role.CLOSE, D(3), D(98), D(6)),  # (98 - 100) * 3 * -1
        ("s2", Role.OPEN, D(-3), D(98), D(0)),
    ]
    assert book.slot("s2", "LONG").quantity == D(1)
    assert book.slot("s2", "SHORT").quantity == D(-3)
    assert book.slot("s1", "LONG").quantity == D(1)
    assert book.slot("s1", "SHORT").quantity == D(0)


def test_hedge_receiver_never_changes_sign():
    book = hedge()
    book.fill("s2", "BUY 1 @ 100 LONG")
    book.fill("s2", "SELL 2 @ 100 LONG")  # over-reduction: EXTERNAL LONG is short 1
    assert book.external("LONG").quantity == D(-1)
    reason = refused(book, EXTERNAL, "s1", "1", side="LONG")
    assert reason == (
        "s1's LONG slot on A/BTCUSDT-PERP/LONG cannot take -1: a hedge slot never changes sign"
    )
    # a receiver holding less than the transfer would go past zero: refused whole
    book.fill("s1", "BUY 0.5 @ 100 LONG")
    assert "a hedge slot never changes sign" in refused(book, EXTERNAL, "s1", "1", side="LONG")
    assert book.slot("s1", "LONG").quantity == D("0.5")
    # but it may take what brings it to flat
    decision = transfer(book, EXTERNAL, "s1", "0.5", side="LONG")
    assert legs(decision)[1] == ("s1", Role.CLOSE, D("-0.5"), D(100), D(0))
    assert book.trade("s1", "LONG").close_reason is CloseReason.TRANSFER


def test_hedge_transfer_needs_a_position_side():
    book = hedge()
    book.fill("s1", "BUY 2 @ 100 LONG")
    assert "position_side must be LONG or SHORT" in refused(book, "s1", "s2", "1")
    assert "position_side must be LONG or SHORT" in refused(book, "s1", "s2", "1", side="BOTH")


def test_netting_transfer_refuses_a_hedge_position_side():
    book = Scenario()
    book.fill("s1", "BUY 2 @ 100")
    assert "netting mode" in refused(book, "s1", "s2", "1", side="LONG")


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(("fill", "held"), [("BUY 1 @ 100", "1"), ("SELL 1 @ 100", "1")])
def test_more_than_held_is_refused(fill: str, held: str):
    book = Scenario()
    book.fill("s1", fill)
    reason = refused(book, "s1", "s2", "1.5")
    assert reason == f"s1 holds {held} on A/ES/BOTH, less than the 1.5 to transfer"


def test_nothing_held_is_refused():
    book = Scenario()
    assert refused(book, "s1", "s2", "1") == "s1 holds nothing on A/ES/BOTH to transfer"
    book.fill("s1", "BUY 1 @ 100")
    book.fill("s1", "SELL 1 @ 101")  # a flat slot
    assert refused(book, "s1", "s2", "1") == "s1 holds nothing on A/ES/BOTH to transfer"
    assert refused(book, EXTERNAL, "s2", "1") == "EXTERNAL holds nothing on A/ES/BOTH to transfer"


@pytest.mark.parametrize(("giver", "taker"), [("s1", "ghost"), ("ghost", "s1")])
def test_unknown_strategy_is_refused(giver: str, taker: str):
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    assert refused(book, giver, taker, "1") == "unknown strategy ghost: register it first"


def test_a_price_the_instrument_cannot_trade_at_is_refused():
    book = Scenario(instrument=equity("AAPL"))
    book.fill("s1", "BUY 1 @ 180")
    assert "price must be positive" in refused(book, "s1", "s2", "1", price="0")


def test_a_transfer_must_be_timestamped():
    book = Scenario()
    book.fill("s1", "BUY 1 @ 100")
    unstamped = Transfer("A", "ES", "s1", "s2", D(1))
    with pytest.raises(ValueError, match="timestamped"):
        decide_transfer(
            unstamped,
            account=book.account,
            instrument=book.instrument,
            strategy_known=book.strategies.__contains__,
            book=book.book,
            new_trade_id=book._new_trade_id,
        )


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"to_strategy": "s1"}, "two different strategies"),
        ({"quantity": D(0)}, "quantity must be positive"),
        ({"quantity": D(-1)}, "quantity must be positive"),
    ],
)
def test_malformed_transfers_are_invalid_input(fields: dict[str, object], words: str):
    base: dict[str, object] = {
        "account": "A",
        "instrument": "ES",
        "from_strategy": "s1",
        "to_strategy": "s2",
        "quantity": D(1),
    }
    with pytest.raises(InvalidInput, match=words):
        Transfer(**{**base, **fields})  # type: ignore[arg-type]


def test_a_transfer_dated_before_the_trade_it_moves_is_refused():
    book = Scenario(instrument=future("MES", multiplier="5"))
    book.fill("s1", "BUY 2 @ 100")
    (trade,) = book.book.open_trades.values()
    early = replace(make(book, "s1", "s2", "1"), ts=trade.opened_at - 1)
    refused = decide_transfer(
        early,
        account=book.account,
        instrument=book.instrument,
        strategy_known=book.strategies.__contains__,
        book=book.book,
        new_trade_id=book._new_trade_id,
    )
    assert isinstance(refused, Rejection)
    assert f"is before s1's trade {trade.trade_id} opened" in refused.reason
