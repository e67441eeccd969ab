"""Pre-trade checks: would this order be allowed? (docs/reconciliation.md#pre-trade-checks)

An exit may only take its own strategy's position: this is what stops one strategy from
closing another's. Entries are refused beyond the strategy's ``max_open_slots`` and on an
instrument halted on the account.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from .book import Book
from .enums import Direction, Intent, OrderStatus, Side
from .numbers import ZERO, fmt
from .refdata import Account, Order, Strategy
from .timestamps import format_ts

__all__ = ["bracket_pending", "check_order"]


def bracket_pending(order: Order, bracket: Iterable[tuple[Order, OrderStatus, Decimal]]) -> Decimal:
    """Signed unfilled quantity of the open entry orders of ``order``'s strategy, account
    and instrument among ``bracket`` (every order sharing its bracket id, with its status
    and the quantity filled so far): what a take-profit or stop-loss sent with its entry
    may cover before that entry has filled."""
    pending = ZERO
    for entry, status, filled in bracket:
        if (
            status is not OrderStatus.OPEN
            or entry.intent is not Intent.ENTRY
            or (entry.account, entry.instrument, entry.strategy)
            != (order.account, order.instrument, order.strategy)
        ):
            continue
        left = max(entry.quantity - filled, ZERO)
        pending += left if entry.side is Side.BUY else -left
    return pending


def check_order(
    order: Order,
    *,
    account: Account,
    strategy: Strategy,
    book: Book,
    open_slots: int | None,
    bracket_pending: Decimal = ZERO,
) -> list[str]:
    """Every reason ``order`` must not be sent; an empty list means it is allowed.

    ``open_slots`` is how many non-flat slots the strategy holds (needed only when it has
    ``max_open_slots``). ``bracket_pending`` is the signed unfilled quantity of the
    strategy's entry orders in the exit's bracket: a take-profit or stop-loss sent with
    its entry may cover what that entry will open.

    Raises :class:`~.refdata.InvalidInput` when the order cannot be read on this account
    (a hedge-mode order without LONG or SHORT).
    """
    side = account.resolve_position_side(order.position_side)
    key = book.key(order.account, order.strategy, side)
    slot = book.slots.get(key)
    held = ZERO if slot is None else slot.quantity
    where = f"{order.account}/{order.instrument}/{side}"
    cid = order.client_order_id
    reasons: list[str] = []
    if order.intent.is_exit:
        position = held + bracket_pending
        pending = ""
        if bracket_pending:
            pending = f" (with {fmt(abs(bracket_pending))} pending in its bracket)"
        if not position:
            reasons.append(
                f"{order.intent} order {cid}: {order.strategy} holds no position on {where} to exit"
            )
        elif (position > 0) == (order.side is Side.BUY):
            direction = Direction.LONG if position > 0 else Direction.SHORT
            reasons.append(
                f"{order.intent} order {cid}: {order.side} would add to {order.strategy}'s "
                f"{direction} position on {where}; an exit must reduce it"
            )
        elif order.quantity > abs(position):
            reasons.append(
                f"{order.intent} order {cid} for {fmt(order.quantity)} is larger than "
                f"{order.strategy}'s position of {fmt(abs(position))}{pending} on {where}: "
                "the rest would close another strategy's position"
            )
        return reasons
    halted = book.halts.get(order.account)
    if halted is not None:
        reasons.append(
            f"{order.instrument} is halted on account {order.account} since "
            f"{format_ts(halted.ts)} ({halted.reason}): entry orders are refused until "
            "`posledger resume` lifts the halt"
        )
    limit = strategy.max_open_slots
    opens_slot = not held
    if limit is not None and opens_slot:
        count = open_slots or 0
        if count >= limit:
            reasons.append(
                f"entry order {cid} would open a new position for {order.strategy}, which "
                f"already holds {count} open (max_open_slots {limit})"
            )
    return reasons
