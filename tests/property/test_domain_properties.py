"""Accounting invariants of the pure domain over random streams (docs/accounting.md,
Invariants and Lot methods)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from posledger.domain.decisions import FillDecision
from posledger.domain.enums import EXTERNAL, PositionSide
from posledger.domain.numbers import ZERO, exact
from posledger.domain.positions import SlotKey, unrealized

from .world import World, split_fill, streams

TOLERANCE = Decimal("1e-12")
"""Averages and inverse P&L are quantized to 18 digits at every step (docs/accounting.md,
Numbers), so two ways of reaching the same state may differ in the last digits; never by
more than this."""

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def close(a: Decimal | None, b: Decimal | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= TOLERANCE


@SETTINGS
@given(streams(max_steps=30))
def test_conservation_and_invariants_hold_after_every_step(records):
    world = World()
    for record in records:
        before = {key: slot.quantity for key, slot in world.slots().items()}
        decision = world.apply(record)
        assert world.problems() == []

        # conservation, summed here rather than trusted to check_invariants
        held: dict[tuple, Decimal] = defaultdict(lambda: ZERO)
        for key, slot in world.slots().items():
            held[(key.account, key.instrument, key.position_side)] += slot.quantity
        for where in set(held) | set(world.fill_net):
            assert held[where] == world.fill_net[where], where

        for key, slot in world.slots().items():
            if key.strategy == EXTERNAL or not world.accounts[key.account].hedge:
                continue
            # a hedge slot never changes sign
            if key.position_side is PositionSide.LONG:
                assert slot.quantity >= 0
            else:
                assert slot.quantity <= 0

        if isinstance(decision, FillDecision) and decision.intent and decision.intent.is_exit:
            # an exit never opens: its slot only shrinks towards zero
            fill = decision.fill
            key = SlotKey(fill.account, fill.instrument, decision.strategy, decision.position_side)
            was = before.get(key, ZERO)
            now = world.slots()[key].quantity if key in world.slots() else ZERO
            assert abs(now) <= abs(was)
            assert now * was >= 0
            assert all(world.trades[t].key.strategy == EXTERNAL for t in decision.opened)
            if fill.quantity > abs(was) - abs(now):
                # what the slot could not take went to EXTERNAL, and it says so
                assert any(a.kind == "exit_overshoot" for a in decision.anomalies)

    for trade in world.trades.values():
        if trade.mae is not None:
            assert trade.mae <= 0 <= trade.mfe
        if not trade.is_open:
            assert trade.quantity == 0
            assert trade.closed_at >= trade.opened_at
        assert trade.peak_quantity >= trade.quantity
        assert trade.realized_pnl == trade.gross_realized - trade.commissions.get(
            trade.pnl_currency, ZERO
        )


def _slot_totals(world: World):
    gross: dict[tuple, Decimal] = defaultdict(lambda: ZERO)
    net: dict[tuple, Decimal] = defaultdict(lambda: ZERO)
    commissions: dict[tuple, Decimal] = defaultdict(lambda: ZERO)
    for trade in world.trades.values():
        gross[trade.key] += trade.gross_realized
        net[trade.key] += trade.realized_pnl
        for currency, amount in trade.commissions.items():
            key = trade.key
            commissions[(key.account, key.instrument, key.position_side, currency)] += amount
    return gross, net, commissions


@SETTINGS
@given(st.data())
def test_splitting_a_fill_into_partial_fills_changes_nothing(data):
    # Spot base-currency commissions are left out: there the commission of each part
    # changes the quantity between the parts, so a split is not the same fact.
    records = data.draw(streams(base_commissions=False, invalid=False, max_steps=20))
    splittable = [
        i
        for i, r in enumerate(records)
        if r["type"] == "fill" and Decimal(str(r["quantity"])) * 100 >= 2
    ]
    assume(splittable)
    index = data.draw(st.sampled_from(splittable))
    hundredths = int(Decimal(str(records[index]["quantity"])) * 100)
    cuts = data.draw(st.lists(st.integers(1, hundredths - 1), min_size=1, max_size=3))
    split = split_fill(records, index, cuts)
    assert len(split) > len(records)

    whole, parts = World(), World()
    for record in records:
        whole.apply(record)
    for record in split:
        parts.apply(record)
    assert parts.problems() == []

    assert whole.quantities() == parts.quantities()
    whole_slots, part_slots = whole.slots(), parts.slots()
    for key in whole.quantities():
        assert close(whole_slots[key].avg_entry, part_slots[key].avg_entry), key
    gross_a, net_a, fees_a = _slot_totals(whole)
    gross_b, net_b, fees_b = _slot_totals(parts)
    for key in set(gross_a) | set(gross_b):
        assert close(gross_a[key], gross_b[key]), key
        assert close(net_a[key], net_b[key]), key
    # commissions end up in the same (account, instrument, position side) to the digit
    assert {k: v for k, v in fees_a.items() if v} == {k: v for k, v in fees_b.items() if v}


@SETTINGS
@given(streams(instruments=("FUT", "PERP", "SPOT"), base_commissions=False, max_steps=25))
def test_lot_methods_agree_on_quantities_and_round_trip_pnl(records):
    # Linear instruments only: on an inverse one the average of prices is not the average
    # of 1/price, so FIFO and average cost really do realize different totals.
    worlds = {}
    for method in ("average", "fifo", "lifo"):
        world = World()
        for record in records:
            if record["type"] == "account":
                record = {**record, "lot_method": method}
            world.apply(record)
        assert world.problems() == []
        worlds[method] = world

    average = worlds["average"]
    for method in ("fifo", "lifo"):
        other = worlds[method]
        # lot methods change how P&L is matched, never quantities, trades or anomalies
        assert other.quantities() == average.quantities()
        assert set(other.trades) == set(average.trades)
        for trade_id, trade in average.trades.items():
            twin = other.trades[trade_id]
            assert (twin.key, twin.direction, twin.quantity, twin.closed_at, twin.close_reason) == (
                trade.key,
                trade.direction,
                trade.quantity,
                trade.closed_at,
                trade.close_reason,
            )
            assert twin.commissions == trade.commissions
            assert twin.peak_quantity == trade.peak_quantity
            if not trade.is_open:
                # a whole round trip realizes exits minus entries under every method
                assert close(twin.gross_realized, trade.gross_realized), trade_id
            else:
                # open: realized + unrealized at any price is the same total
                instrument = average.instruments[trade.key.instrument]
                for price in (Decimal(95), Decimal("104.5")):
                    with exact():
                        mine = trade.gross_realized + unrealized(
                            average.slots()[trade.key], price, instrument.multiplier, False
                        )
                        theirs = twin.gross_realized + unrealized(
                            other.slots()[trade.key], price, instrument.multiplier, False
                        )
                    assert close(mine, theirs), trade_id
