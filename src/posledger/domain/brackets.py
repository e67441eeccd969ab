"""Brackets, and the exit orders that protect every slot (docs/brackets.md).

A **bracket** belongs to one slot ``(account, instrument, strategy, position_side)``: a
take-profit leg and/or a stop-loss leg. Several strategies on one instrument each have
their own. The ledger watches every **exit order** of an instrument: the legs of its
brackets (orders it registers itself, with intent ``take_profit`` / ``stop_loss`` and
deterministic client order ids) and the exit orders strategies register themselves.

After every input on an instrument, :class:`Protect` compares each exit order with its
slot and says, as outbox commands, what the executing side must do:

1. A leg is kept at its slot's quantity. A slot with a bracket and no leg of a kind gets
   one placed; a slot that changes size for any reason (a scale-in, a partial exit, a
   transfer, an adoption, a fill absorbed from another strategy's overshoot, a leg's own
   partial fill) gets its legs amended to the new size.
2. When a slot goes flat, or flips, its bracket ends and its legs are cancelled. A leg
   that fills completely therefore cancels its sibling, and one that fills partly amends
   it to what is left.
3. A new bracket on a slot that has one replaces it: the old legs are cancelled and the
   new legs wait (:attr:`~.enums.ExitState.WAITING`) until those cancels are settled, so
   that two brackets are never live on one slot.
4. An exit order of a strategy's own whose slot is flat or points the other way, or that is
   larger than its slot, is an orphan: an anomaly, and a cancel or amend command.
5. A command the broker refuses is final: a leg that could not be placed is not placed
   again until the bracket is set again (the slot is listed by ``exits``); an order whose
   cancel or amend failed is :attr:`~.enums.ExitState.STUCK`, an anomaly until a fill, a
   ``cancel`` line or a sweep settles it.

Command ids are drawn from the instrument stream's version and the command's place in the
input: ``pl-<20 hex digits>-<nnn>``. They are stable (a replay draws the same ones), unique,
sort in the order they were issued, and fit a broker's client order id (27 characters). A
leg's client order id is the id of the command that places it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from json.encoder import encode_basestring_ascii
from typing import NamedTuple

from .book import Book
from .decisions import Anomaly
from .enums import (
    EXTERNAL,
    Direction,
    ExitState,
    Intent,
    OrderStatus,
    OrderType,
    PositionSide,
    Side,
)
from .exits import ACTIVE, LEG_INTENTS, Bracket, ExitOrder, command_id, exit_side, waiting_id
from .numbers import ZERO, exact, fmt, fmt_opt, q18
from .positions import Slot, SlotKey
from .refdata import Distance, Instrument, Order, Strategy
from .writeset import Command

__all__ = ["POLICIES", "PlannedExit", "Protect", "Protection", "plan_exits"]


def _payload(fields: dict[str, object]) -> str:
    """A command's payload as compact JSON: its values are text, ``None`` or ``True``."""
    parts = []
    for name, value in fields.items():
        if value is None:
            text = "null"
        elif value is True:
            text = "true"
        else:
            text = encode_basestring_ascii(str(value))
        parts.append(f'"{name}":{text}')
    return "{" + ",".join(parts) + "}"


class Protection:
    """What :class:`Protect` concluded: changes to the watched exits and brackets, the leg
    orders it registered or changed, its commands and its anomalies."""

    __slots__ = ("anomalies", "brackets", "commands", "exits", "orders", "targets")

    def __init__(self) -> None:
        self.exits: dict[str, ExitOrder | None] = {}
        """By client order id: the new state, or None when no longer watched."""
        self.brackets: dict[SlotKey, Bracket | None] = {}
        """By slot: the new bracket, or None when the slot's bracket ended."""
        self.orders: dict[str, tuple[Order, OrderStatus]] = {}
        self.commands: list[Command] = []
        self.targets: list[str] = []
        """The client order id each command concerns."""
        self.anomalies: list[Anomaly] = []

    def __bool__(self) -> bool:
        return bool(self.exits or self.brackets or self.orders or self.commands)


class Protect:
    """Works out the protection of one instrument for one input (see the module's rules).

    Built on the book as it was before the input, with the slots the input changed; the
    caller reports what else the input did (a fill of an exit order, a new bracket, an
    acknowledged command...) and then calls :meth:`finish`.
    """

    def __init__(
        self,
        book: Book,
        version: int,
        slots: Iterable[Slot] = (),
    ) -> None:
        self.book = book
        self.instrument = book.instrument
        self.version = version
        self.slots = {slot.key: slot for slot in slots}
        self.out = Protection()
        self._ids: list[str] = []

    # -- what the book holds, as this input leaves it ---------------------------------

    def slot(self, key: SlotKey) -> Slot:
        found = self.slots.get(key)
        return found if found is not None else self.book.slot(key)

    def exit(self, client_order_id: str) -> ExitOrder | None:
        if client_order_id in self.out.exits:
            return self.out.exits[client_order_id]
        return self.book.exits.get(client_order_id)

    def exits(self) -> list[ExitOrder]:
        """Every watched exit, by client order id: an order that does not depend on how
        the book was loaded, so that a replay issues the same commands, with the same ids."""
        merged: dict[str, ExitOrder | None] = dict(self.book.exits)
        merged.update(self.out.exits)
        return [merged[cid] for cid in sorted(merged) if merged[cid] is not None]  # type: ignore[misc]

    def bracket(self, key: SlotKey) -> Bracket | None:
        if key in self.out.brackets:
            return self.out.brackets[key]
        return self.book.brackets.get(key)

    def brackets(self) -> list[Bracket]:
        merged: dict[SlotKey, Bracket | None] = dict(self.book.brackets)
        merged.update(self.out.brackets)
        return [merged[key] for key in sorted(merged) if merged[key] is not None]  # type: ignore[misc]

    def _put(self, found: ExitOrder) -> None:
        self.out.exits[found.client_order_id] = found

    def _forget(self, found: ExitOrder) -> None:
        self.out.exits[found.client_order_id] = None

    # -- commands -----------------------------------------------------------------------

    def _next_id(self) -> str:
        """The id of the next command: :func:`~.exits.command_id`, its digest made once."""
        if not self._ids:
            self._ids.append(command_id(self.instrument, self.version, 0)[:-3])
        return f"{self._ids[0]}{len(self.out.commands):03d}"

    def _command(self, kind: str, found: ExitOrder, payload: dict[str, object]) -> str:
        cid = self._next_id()
        key = found.key
        self.out.commands.append(
            Command(
                cid,
                kind,
                key.account,
                key.instrument,
                key.strategy,
                _payload(payload),
            )
        )
        self.out.targets.append(str(payload["client_order_id"]))
        return cid

    def _place(self, found: ExitOrder) -> ExitOrder:
        cid = self._next_id()
        placed = replace(found, client_order_id=cid, state=ExitState.PLACING)
        assert placed.spec is not None
        key = placed.key
        payload: dict[str, object] = {
            "client_order_id": cid,
            "account": key.account,
            "instrument": key.instrument,
            "strategy": key.strategy,
            "position_side": key.position_side.value,
            "side": placed.side.value,
            "intent": placed.intent.value,
            "order_type": placed.spec.order_type.value,
            "quantity": fmt(placed.quantity),
            "price": fmt_opt(placed.spec.price),
            "stop_price": fmt_opt(placed.spec.stop_price),
            "bracket_id": placed.bracket_id,
            "reduce_only": True,
        }
        self._command("place", placed, payload)
        self._put(placed)
        self.out.orders[cid] = (placed.order(), OrderStatus.OPEN)
        return placed

    def _amend(self, found: ExitOrder, total: Decimal) -> None:
        payload: dict[str, object] = {
            "client_order_id": found.client_order_id,
            "quantity": fmt(total),
            "remaining": fmt(total - found.filled),
        }
        self._command("amend", found, payload)
        amended = found.resized(total)
        self._put(amended)
        if found.leg:
            self.out.orders[found.client_order_id] = (amended.order(), OrderStatus.OPEN)

    def _cancel(self, found: ExitOrder) -> None:
        if found.state is ExitState.WAITING:  # never sent: nothing to cancel
            self._forget(found)
            return
        self._command("cancel", found, {"client_order_id": found.client_order_id})
        self._put(found.in_state(ExitState.CANCELLING))

    def _anomaly(self, kind: str, found: ExitOrder, quantity: Decimal, detail: str) -> None:
        self.out.anomalies.append(Anomaly(kind, found.key, quantity, detail))

    # -- what the input did ---------------------------------------------------------------

    def filled(self, client_order_id: str, quantity: Decimal) -> None:
        """A fill of ``quantity`` on an order: an exit order done is no longer watched."""
        found = self.exit(client_order_id)
        if found is None:
            return
        done = found.filled + quantity
        if done >= found.quantity:
            self._forget(found)
        else:
            self._put(replace(found, filled=done))

    def watch(self, order: Order, position_side: PositionSide) -> None:
        """A strategy registered an exit order of its own: it is working from now on.

        One sent in the strategy's own bracket (with a ``bracket_id``) before its entry
        filled is armed once its slot holds a position it reduces."""
        if not order.intent.is_exit:
            return
        key = self.book.key(order.account, order.strategy, position_side)
        slot = self.slot(key)
        armed = order.bracket_id is None or (
            slot.direction is not Direction.FLAT and order.side is exit_side(slot.direction)
        )
        self._put(
            ExitOrder(
                order.client_order_id,
                key,
                order.intent,
                order.side,
                order.quantity,
                ExitState.LIVE,
                confirmed=order.quantity,
                armed=armed,
            )
        )

    def cancelled(self, client_order_id: str) -> None:
        """The order was cancelled (a ``cancel`` line): no longer watched."""
        found = self.exit(client_order_id)
        if found is not None:
            self._forget(found)

    def set_bracket(self, bracket: Bracket) -> None:
        """``bracket`` replaces whatever bracket its slot has: the old legs are cancelled
        in :meth:`finish` (they belong to no bracket of the slot any more)."""
        self.out.brackets[bracket.key] = bracket

    def clear_bracket(self, key: SlotKey) -> None:
        if self.bracket(key) is not None:
            self.out.brackets[key] = None

    def entry_filled(self, order: Order, key: SlotKey) -> None:
        """An entry order carrying a bracket filled: the bracket takes effect on the slot,
        sized to what the slot holds (never to what was ordered)."""
        if order.bracket is None:
            return
        bracket_id = order.bracket_id or order.client_order_id
        current = self.bracket(key)
        if current is not None and current.bracket_id == bracket_id:
            return
        direction = self.slot(key).direction
        if direction is Direction.FLAT:
            return
        self.set_bracket(Bracket(bracket_id, key, order.bracket, direction))

    def settled(
        self,
        kind: str,
        client_order_id: str,
        quantity: Decimal | None,
        acked: bool,
        reason: str | None,
    ) -> bool:
        """The executing side acked or failed a command (``quantity``: the total a place
        or amend asked for); False when it concerns no watched order any more."""
        found = self.exit(client_order_id)
        if found is None:
            return False
        if kind == "place":
            if acked:
                if found.state is ExitState.PLACING:
                    confirmed = found.quantity if quantity is None else quantity
                    self._put(replace(found, state=ExitState.LIVE, confirmed=confirmed))
                return True
            self._forget(found)
            self.out.orders[found.client_order_id] = (found.order(), OrderStatus.CANCELLED)
            bracket = self.bracket(found.key)
            if bracket is not None and bracket.bracket_id == found.bracket_id:
                self.out.brackets[found.key] = replace(
                    bracket, failed=(*bracket.failed, found.intent)
                )
            self._anomaly(
                "exit_refused",
                found,
                found.remaining,
                f"the broker refused to place {found.intent} {found.client_order_id}: {reason}; "
                f"{found.key.strategy}'s position is not protected by it",
            )
            return True
        if kind == "amend":
            total = found.quantity if quantity is None else quantity
            if acked:
                self._put(replace(found, confirmed=total))
                return True
            back = max(found.confirmed, found.filled)
            self._put(replace(found, quantity=back, state=ExitState.STUCK))
            self._anomaly(
                "exit_stuck",
                found,
                back - found.filled,
                f"the broker refused to amend {found.client_order_id} to {fmt(total)}: "
                f"{reason}; it may still be working for {fmt(back - found.filled)}",
            )
            return True
        if kind == "cancel":
            if acked:
                self._forget(found)
                if found.leg:
                    self.out.orders[found.client_order_id] = (found.order(), OrderStatus.CANCELLED)
                return True
            self._put(found.in_state(ExitState.STUCK))
            self._anomaly(
                "exit_stuck",
                found,
                found.remaining,
                f"the broker refused to cancel {found.client_order_id}: {reason}; it may still "
                f"be working for {fmt(found.remaining)}",
            )
            return True
        raise ValueError(f"unknown command kind {kind}")

    # -- the rules ------------------------------------------------------------------------

    def finish(self, *, sweep: bool = False) -> Protection:
        """Apply the rules to the exit orders and brackets of every slot this input
        touched (its slots, the exits and brackets it changed): the others were settled by
        the inputs before. ``sweep``: every slot of the instrument, and stuck orders are
        looked at again too (they get their command again)."""
        touched = None if sweep else self._touched()
        for bracket in self.brackets():
            if touched is not None and bracket.key not in touched:
                continue
            if self.slot(bracket.key).direction is not bracket.direction:
                self.out.brackets[bracket.key] = None  # flat or flipped: the bracket ends
        for found in self.exits():
            if touched is not None and found.key not in touched:
                continue
            if found.state is ExitState.CANCELLING:
                continue
            if found.state is ExitState.STUCK:
                if not sweep:
                    continue
                found = found.in_state(ExitState.LIVE)
                self._put(found)  # looked at again: a command follows if it still needs one
            self._check(found)
        brackets = [b for b in self.brackets() if touched is None or b.key in touched]
        if brackets:
            legs: dict[SlotKey, list[ExitOrder]] = {}
            for found in self.exits():
                if found.leg:
                    legs.setdefault(found.key, []).append(found)
            for bracket in brackets:
                self._complete(bracket, legs.get(bracket.key, []))
        return self.out

    def _touched(self) -> set[SlotKey]:
        """The slots whose exit orders or bracket this input may have put out of line."""
        keys = set(self.slots)
        keys.update(self.out.brackets)
        for cid, found in self.out.exits.items():
            if found is None:
                found = self.book.exits.get(cid)
            if found is not None:
                keys.add(found.key)
        return keys

    def _check(self, found: ExitOrder) -> None:
        slot = self.slot(found.key)
        held = abs(slot.quantity)
        reduces = slot.direction is not Direction.FLAT and found.side is exit_side(slot.direction)
        if found.leg:
            bracket = self.bracket(found.key)
            if bracket is None or bracket.bracket_id != found.bracket_id or not reduces:
                self._cancel(found)
            elif found.remaining != held:
                if found.state is ExitState.WAITING:
                    self._put(found.resized(held))
                else:
                    self._amend(found, found.filled + held)
            return
        where = f"{found.key.strategy}'s {slot.direction} position"
        if not found.armed:
            if reduces:
                self._put(replace(found, armed=True))
            return
        if not reduces:
            state = "is flat" if slot.direction is Direction.FLAT else "points the same way"
            self._anomaly(
                "orphaned_exit",
                found,
                found.remaining,
                f"{found.intent} order {found.client_order_id} for {fmt(found.remaining)} is "
                f"still working but {where} {state}: a cancel is sent",
            )
            self._cancel(found)
        elif found.remaining > held and found.bracket_id is None:
            # (An order of the strategy's own bracket is sized by the strategy against
            # its entry orders: only its flat or flipped slot concerns the ledger.)
            self._anomaly(
                "oversized_exit",
                found,
                found.remaining - held,
                f"{found.intent} order {found.client_order_id} for {fmt(found.remaining)} is "
                f"larger than {where} of {fmt(held)}: it is amended to {fmt(held)}",
            )
            self._amend(found, found.filled + held)

    def _complete(self, bracket: Bracket, mine: list[ExitOrder]) -> None:
        """Place the legs the bracket lacks, or let them wait for the old legs' cancels.
        ``mine``: the slot's legs, by client order id."""
        held = abs(self.slot(bracket.key).quantity)
        busy = any(
            found.state in (ExitState.CANCELLING, ExitState.STUCK)
            and found.bracket_id != bracket.bracket_id
            for found in mine
        )
        for intent, spec in bracket.legs():
            leg = next(
                (
                    found
                    for found in mine
                    if found.bracket_id == bracket.bracket_id and found.intent is intent
                ),
                None,
            )
            if leg is not None and leg.state is not ExitState.WAITING:
                continue  # placed already
            if leg is None:
                leg = ExitOrder(
                    waiting_id(bracket.bracket_id, intent),
                    bracket.key,
                    intent,
                    exit_side(bracket.direction),
                    held,
                    ExitState.WAITING,
                    spec=spec,
                    bracket_id=bracket.bracket_id,
                )
            if busy:
                self._put(leg.resized(held))  # placed when the old legs are gone
                continue
            if self.exit(leg.client_order_id) is not None:
                self._forget(leg)
            self._place(replace(leg, quantity=held))


class PlannedExit(NamedTuple):
    """An exit order an open slot lacks, under a policy (``missing_exits``)."""

    key: SlotKey
    side: Side
    quantity: Decimal
    """What no active exit order of this kind covers yet."""
    intent: Intent
    order_type: OrderType
    price: Decimal | None
    stop_price: Decimal | None
    at: int | None
    """When to send it (``flatten`` at a time of day); None: now."""
    note: str
    """Why it is planned, or why its price could not be worked out."""


POLICIES = ("bracket", "flatten")


def plan_exits(
    slots: Iterable[Slot],
    exits: Iterable[ExitOrder],
    strategies: Mapping[str, Strategy],
    instruments: Mapping[str, Instrument],
    policy: str,
    at: int | None = None,
) -> list[PlannedExit]:
    """The exit orders every open slot lacks (docs/brackets.md, "Missing exits").

    ``bracket``: a take-profit and a stop-loss covering the slot, priced from the entry at
    the strategy's default distances (rounded to the tick towards the entry). ``flatten``:
    a market exit of the whole slot at ``at``. Exit orders that are placing, live or
    waiting count as cover; cancelling or stuck ones do not. EXTERNAL slots are nobody's
    to protect and are left out.
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    covered: dict[tuple[SlotKey, Intent], Decimal] = {}
    for found in exits:
        if found.state in ACTIVE and found.armed:
            where = (found.key, found.intent)
            covered[where] = covered.get(where, ZERO) + found.remaining
    planned = []
    for slot in sorted(slots, key=lambda slot: slot.key):
        key = slot.key
        if not slot.quantity or key.strategy == EXTERNAL:
            continue
        held = abs(slot.quantity)
        side = exit_side(slot.direction)
        if policy == "flatten":
            lacking = held - covered.get((key, Intent.EXIT), ZERO)
            if lacking > 0:
                note = "flatten the slot" if at is None else "flatten the slot at the time given"
                planned.append(
                    PlannedExit(
                        key, side, lacking, Intent.EXIT, OrderType.MARKET, None, None, at, note
                    )
                )
            continue
        strategy = strategies.get(key.strategy)
        instrument = instruments[key.instrument]
        for intent in LEG_INTENTS:
            lacking = held - covered.get((key, intent), ZERO)
            if lacking <= 0:
                continue
            distance = None
            if strategy is not None:
                distance = (
                    strategy.take_profit if intent is Intent.TAKE_PROFIT else strategy.stop_loss
                )
            price, note = _priced(slot, instrument, intent, distance)
            if intent is Intent.TAKE_PROFIT:
                planned.append(
                    PlannedExit(
                        key, side, lacking, intent, OrderType.LIMIT, price, None, None, note
                    )
                )
            else:
                planned.append(
                    PlannedExit(key, side, lacking, intent, OrderType.STOP, None, price, None, note)
                )
    return planned


def _priced(
    slot: Slot, instrument: Instrument, intent: Intent, distance: Distance | None
) -> tuple[Decimal | None, str]:
    what = intent.value.replace("_", "-")
    if distance is None:
        return None, f"{slot.key.strategy} has no default {what} distance (strategy {intent.value})"
    entry = slot.avg_entry
    if entry is None:
        return None, "the slot has no entry price"
    tick = instrument.tick_size
    with exact():
        if distance.unit == "ticks":
            if tick is None:
                return None, f"{instrument.instrument} has no tick_size to count {distance} in"
            step = distance.amount * tick
        else:
            step = q18(entry * distance.amount / 100)
        gains = (slot.direction is Direction.LONG) == (intent is Intent.TAKE_PROFIT)
        price = entry + step if gains else entry - step
        if tick is not None:
            # Towards the entry: a target a little nearer, a stop a little tighter.
            toward_entry = ROUND_FLOOR if price > entry else ROUND_CEILING
            price = (price / tick).to_integral_value(rounding=toward_entry) * tick
        price = q18(price)
    return price, f"{what} {distance} from the entry {fmt(entry)}"
