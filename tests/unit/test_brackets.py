"""The bracket and exit-order rules (posledger.domain.brackets), without a database."""

from __future__ import annotations

import json
from decimal import Decimal

from posledger.domain.book import Book
from posledger.domain.brackets import Protect, Protection
from posledger.domain.enums import (
    Direction,
    ExitState,
    Intent,
    OrderStatus,
    OrderType,
    PositionSide,
    Side,
)
from posledger.domain.exits import Bracket, command_id
from posledger.domain.positions import Slot, SlotKey
from posledger.domain.refdata import BracketSpec, Order, OrderSpec

D = Decimal
INSTRUMENT = "MESH6.CME"
A = SlotKey("NET-1", INSTRUMENT, "orb", PositionSide.BOTH)
B = SlotKey("NET-1", INSTRUMENT, "fade", PositionSide.BOTH)
SPEC = BracketSpec(
    OrderSpec(OrderType.LIMIT, price=D("6875")), OrderSpec(OrderType.STOP, stop_price=D("6838.25"))
)


class Desk:
    """A book, and the protection each input gives it, applied as the store would."""

    def __init__(self) -> None:
        self.book = Book(INSTRUMENT)
        self.sent: list[tuple[str, dict[str, str]]] = []
        self.anomalies: list[str] = []
        self.orders: dict[str, tuple[Order, OrderStatus]] = {}

    def hold(self, key: SlotKey, quantity: str) -> Slot:
        return Slot(key, D(quantity), avg_entry=D("6850"))

    def step(self, *slots: Slot, sweep: bool = False, then=None) -> Protection:  # type: ignore[no-untyped-def]
        self.book.version += 1
        protect = Protect(self.book, self.book.version, slots)
        if then is not None:
            then(protect)
        out = protect.finish(sweep=sweep)
        for slot in slots:
            self.book.put_slot(slot)
        for cid, found in out.exits.items():
            self.book.put_exit(cid, found)
        for key, bracket in out.brackets.items():
            self.book.put_bracket(key, bracket)
        self.orders.update(out.orders)
        self.sent += [(c.kind, json.loads(c.payload)) for c in out.commands]
        self.anomalies += [a.kind for a in out.anomalies]
        return out

    def legs(self, key: SlotKey) -> dict[Intent, tuple[ExitState, Decimal]]:
        return {e.intent: (e.state, e.remaining) for e in self.book.exits.values() if e.key == key}

    def leg_id(self, key: SlotKey, intent: Intent) -> str:
        return next(
            e.client_order_id
            for e in self.book.exits.values()
            if e.key == key and e.intent is intent
        )

    def bracket(self, key: SlotKey, quantity: str, bracket_id: str = "br-1") -> None:
        slot = self.hold(key, quantity)
        self.book.put_slot(slot)
        self.step(then=lambda p: p.set_bracket(Bracket(bracket_id, key, SPEC, slot.direction)))

    def ack_all(self) -> None:
        """Every command sent so far carried out."""
        sent, self.sent = self.sent, []
        for kind, payload in sent:
            total = D(payload["quantity"]) if "quantity" in payload else None

            def settle(p: Protect, kind: str = kind, payload=payload, total=total) -> None:  # type: ignore[no-untyped-def]
                p.settled(kind, payload["client_order_id"], total, True, None)

            self.step(then=settle)


def test_a_bracket_places_both_legs_at_the_slots_size() -> None:
    desk = Desk()
    desk.bracket(A, "3")
    assert [(k, p["intent"], p["side"], p["quantity"], p["order_type"]) for k, p in desk.sent] == [
        ("place", "take_profit", "SELL", "3", "limit"),
        ("place", "stop_loss", "SELL", "3", "stop"),
    ]
    tp = desk.sent[0][1]
    assert tp["price"] == "6875" and desk.sent[1][1]["stop_price"] == "6838.25"
    # The leg's client order id is the id of the command that places it; both are orders.
    assert tp["client_order_id"] == command_id(INSTRUMENT, 1, 0)
    order, status = desk.orders[tp["client_order_id"]]
    assert (order.intent, order.quantity, order.strategy, status) == (
        Intent.TAKE_PROFIT,
        D(3),
        "orb",
        OrderStatus.OPEN,
    )
    assert desk.legs(A) == {
        Intent.TAKE_PROFIT: (ExitState.PLACING, D(3)),
        Intent.STOP_LOSS: (ExitState.PLACING, D(3)),
    }
    desk.ack_all()
    assert {state for state, _ in desk.legs(A).values()} == {ExitState.LIVE}


def test_two_strategies_each_keep_their_own_bracket() -> None:
    desk = Desk()
    desk.bracket(A, "3", "br-a")
    desk.bracket(B, "2", "br-b")
    desk.ack_all()
    tp = desk.leg_id(A, Intent.TAKE_PROFIT)
    sl = desk.leg_id(A, Intent.STOP_LOSS)
    # A's take-profit fills completely: only A's stop is cancelled.
    desk.step(desk.hold(A, "0"), then=lambda p: p.filled(tp, D(3)))
    assert desk.sent == [("cancel", {"client_order_id": sl})]
    assert desk.legs(B) == {
        Intent.TAKE_PROFIT: (ExitState.LIVE, D(2)),
        Intent.STOP_LOSS: (ExitState.LIVE, D(2)),
    }
    assert desk.legs(A) == {Intent.STOP_LOSS: (ExitState.CANCELLING, D(3))}
    assert A not in desk.book.brackets and B in desk.book.brackets
    desk.ack_all()
    assert desk.legs(A) == {}
    assert desk.orders[sl][1] is OrderStatus.CANCELLED


def test_a_partial_take_profit_amends_the_stop() -> None:
    desk = Desk()
    desk.bracket(A, "3")
    desk.ack_all()
    tp = desk.leg_id(A, Intent.TAKE_PROFIT)
    sl = desk.leg_id(A, Intent.STOP_LOSS)
    desk.step(desk.hold(A, "1"), then=lambda p: p.filled(tp, D(2)))
    assert desk.sent == [("amend", {"client_order_id": sl, "quantity": "1", "remaining": "1"})]
    assert desk.legs(A) == {
        Intent.TAKE_PROFIT: (ExitState.LIVE, D(1)),
        Intent.STOP_LOSS: (ExitState.LIVE, D(1)),
    }


def test_a_scale_in_resizes_both_legs_and_a_manual_exit_cancels_them() -> None:
    desk = Desk()
    desk.bracket(A, "3")
    desk.ack_all()
    desk.step(desk.hold(A, "5"))
    assert sorted((k, p["quantity"]) for k, p in desk.sent) == [("amend", "5"), ("amend", "5")]
    desk.ack_all()
    desk.step(desk.hold(A, "0"))  # a manual exit order filled
    assert sorted(k for k, _ in desk.sent) == ["cancel", "cancel"]
    assert A not in desk.book.brackets


def test_a_flip_cancels_and_the_new_sides_bracket_waits_for_the_cancels() -> None:
    desk = Desk()
    desk.bracket(A, "3")
    desk.ack_all()
    short = desk.hold(A, "-2")
    spec = BracketSpec(
        OrderSpec(OrderType.LIMIT, price=D("6800")), OrderSpec(OrderType.STOP, stop_price=D("6870"))
    )
    entry = Order(
        "e-1", A.account, A.strategy, INSTRUMENT, Side.SELL, D(5), Intent.ENTRY, bracket=spec
    )
    desk.step(short, then=lambda p: p.entry_filled(entry, A))
    assert [k for k, _ in desk.sent] == ["cancel", "cancel"]
    waiting = desk.legs(A)
    assert sorted(state for state, _ in waiting.values()).count(ExitState.WAITING) == 2
    desk.ack_all()  # the old legs are cancelled: the new ones go out, for the new side
    places = [p for k, p in desk.sent if k == "place"]
    assert [(p["side"], p["quantity"], p["bracket_id"]) for p in places] == [
        ("BUY", "2", "e-1"),
        ("BUY", "2", "e-1"),
    ]
    assert desk.book.brackets[A].direction is Direction.SHORT


def test_an_orphaned_exit_is_cancelled_and_a_failed_cancel_is_stuck_until_a_sweep() -> None:
    desk = Desk()
    desk.book.put_slot(desk.hold(A, "2"))
    mine = Order("x-1", A.account, A.strategy, INSTRUMENT, Side.SELL, D(2), Intent.EXIT)
    desk.step(then=lambda p: p.watch(mine, PositionSide.BOTH))
    assert desk.sent == [] and desk.legs(A) == {Intent.EXIT: (ExitState.LIVE, D(2))}
    desk.step(desk.hold(A, "0"))  # flat by another order
    assert desk.sent == [("cancel", {"client_order_id": "x-1"})]
    assert desk.anomalies == ["orphaned_exit"]
    desk.sent = []
    desk.step(then=lambda p: p.settled("cancel", "x-1", None, False, "unknown order"))
    assert desk.legs(A) == {Intent.EXIT: (ExitState.STUCK, D(2))}
    assert desk.anomalies == ["orphaned_exit", "exit_stuck"]
    desk.step()  # any later input: still an anomaly, no new command
    assert desk.sent == []
    desk.step(sweep=True)
    assert desk.sent == [("cancel", {"client_order_id": "x-1"})]


def test_an_oversized_exit_is_amended() -> None:
    desk = Desk()
    desk.book.put_slot(desk.hold(A, "3"))
    mine = Order("x-1", A.account, A.strategy, INSTRUMENT, Side.SELL, D(3), Intent.EXIT)
    desk.step(then=lambda p: p.watch(mine, PositionSide.BOTH))
    desk.step(desk.hold(A, "1"))  # a transfer took 2
    assert desk.sent == [("amend", {"client_order_id": "x-1", "quantity": "1", "remaining": "1"})]
    assert desk.anomalies == ["oversized_exit"]


def test_a_refused_place_is_not_placed_again() -> None:
    desk = Desk()
    desk.bracket(A, "3")
    sent, desk.sent = desk.sent, []
    tp = sent[0][1]["client_order_id"]
    desk.step(then=lambda p: p.settled("place", tp, D(3), False, "price outside band"))
    assert Intent.TAKE_PROFIT not in desk.legs(A)
    assert desk.book.brackets[A].failed == (Intent.TAKE_PROFIT,)
    assert desk.anomalies == ["exit_refused"]
    desk.step(desk.hold(A, "4"))
    assert [(k, p.get("quantity")) for k, p in desk.sent] == [("amend", "4")]  # the stop only


def test_command_ids_are_stable_and_sort_in_issue_order() -> None:
    ids = [command_id(INSTRUMENT, 7, n) for n in range(12)]
    assert ids == sorted(ids) and len(set(ids)) == 12
    assert all(len(i) <= 36 for i in ids)
    assert command_id(INSTRUMENT, 7, 0) != command_id(INSTRUMENT, 8, 0)
    assert command_id(INSTRUMENT, 7, 0) != command_id("MESM6.CME", 7, 0)
