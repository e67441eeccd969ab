"""Transfers between strategies and the comparison with the broker (docs/reconciliation.md).

Both move quantity between slots with the same accounting as fills (:mod:`.decide`), but
nothing here is a fill: a transfer moves a position from one strategy to another at a
price (the giving slot's average entry unless one is given), and reconciliation compares
the sum of the slots with what the broker holds and, under the ``adopt`` policy, books
the difference to the EXTERNAL slot.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from .book import Book
from .booking import Booking, Routing
from .decisions import Check, Orphan, ReconcileDecision, Rejection, TransferDecision
from .enums import (
    EXTERNAL,
    CheckKind,
    CloseReason,
    Direction,
    PositionSide,
    ReconcilePolicy,
    Source,
)
from .inputs import Reconcile, Transfer
from .numbers import ZERO, exact, fmt, q18
from .positions import Slot, SlotKey
from .refdata import Account, Instrument, InvalidInput
from .timestamps import format_ts

__all__ = ["decide_reconcile", "decide_transfer", "ledger_average", "position_side_problem"]

ONE_BP = Decimal("0.0001")


def _sign(value: Decimal) -> int:
    return 1 if value > 0 else -1 if value < 0 else 0


def _name(account: str, instrument: str, side: PositionSide) -> str:
    return f"{account}/{instrument}/{side}"


# -- transfers --------------------------------------------------------------------------


def decide_transfer(
    transfer: Transfer,
    *,
    account: Account,
    instrument: Instrument,
    strategy_known: Callable[[str], bool],
    book: Book,
    new_trade_id: Callable[[], int],
) -> TransferDecision | Rejection:
    """Move ``transfer.quantity`` of the giving slot to the receiving one. ``ts`` must be set.

    The giving slot must hold at least that much; the receiving slot takes it at the
    transfer's price, so its P&L starts from there. Trades the transfer closes get the
    close reason ``transfer``.
    """
    if transfer.ts is None:
        raise ValueError("decide_transfer needs a timestamped transfer")
    try:
        with exact():
            return _decide_transfer(
                transfer, account, instrument, strategy_known, book, new_trade_id
            )
    except InvalidInput as exc:
        return Rejection(str(exc))


def _decide_transfer(
    transfer: Transfer,
    account: Account,
    instrument: Instrument,
    strategy_known: Callable[[str], bool],
    book: Book,
    new_trade_id: Callable[[], int],
) -> TransferDecision | Rejection:
    assert transfer.ts is not None
    for strategy in (transfer.from_strategy, transfer.to_strategy):
        if strategy != EXTERNAL and not strategy_known(strategy):
            raise InvalidInput(f"unknown strategy {strategy}: register it first")
    side = account.resolve_position_side(transfer.position_side)
    where = _name(account.account, instrument.instrument, side)
    giver = book.key(account.account, transfer.from_strategy, side)
    taker = book.key(account.account, transfer.to_strategy, side)
    slot = book.slots.get(giver)
    held = ZERO if slot is None else slot.quantity
    if not held:
        return Rejection(f"{transfer.from_strategy} holds nothing on {where} to transfer")
    if transfer.quantity > abs(held):
        return Rejection(
            f"{transfer.from_strategy} holds {fmt(abs(held))} on {where}, "
            f"less than the {fmt(transfer.quantity)} to transfer"
        )
    assert slot is not None and slot.avg_entry is not None
    for key in (giver, taker):
        held_slot = book.slots.get(key)
        trade = None if held_slot is None else book.open_trades.get(held_slot.trade_id or 0)
        if trade is not None and transfer.ts < trade.opened_at:
            return Rejection(
                f"the transfer's time {format_ts(transfer.ts)} is before {key.strategy}'s "
                f"trade {trade.trade_id} opened ({format_ts(trade.opened_at)})"
            )
    price = slot.avg_entry if transfer.price is None else transfer.price
    problem = instrument.price_problem(price)
    if problem is not None:
        return Rejection(problem)
    work = Booking(
        book,
        account,
        instrument,
        instrument.settlement_currency,
        None,
        new_trade_id,
        price,
        transfer.ts,
        "transfer",
    )
    work.reason = CloseReason.TRANSFER
    work.source = Source.TRANSFER
    delta = transfer.quantity if held > 0 else -transfer.quantity
    work.move(giver, -delta, ZERO, Routing.REDUCE_ONLY, False)
    excess, _ = work.move(taker, delta, ZERO, work.routing(taker, delta), False)
    if excess:
        return Rejection(
            f"{transfer.to_strategy}'s {side} slot on {where} cannot take "
            f"{fmt(delta)}: a hedge slot never changes sign"
        )
    if work.too_large is not None:
        return Rejection(work.too_large)
    trades = work.trades()
    return TransferDecision(
        transfer, side, price, tuple(work.legs), work.slots(), trades, tuple(work.opened)
    )


# -- reconciliation ---------------------------------------------------------------------


def position_side_problem(account: Account, side: PositionSide, quantity: Decimal) -> str | None:
    """Why a broker position on ``side`` cannot come from this account, or None.

    A netting account only has BOTH positions; a hedge account only LONG (never short)
    and SHORT (never long) ones. Anything else means the broker and the ledger disagree
    about the account's position mode.
    """
    if account.hedge:
        if side is PositionSide.BOTH:
            return (
                f"position mode mismatch: account {account.account} is in hedge mode, but the "
                "broker reports a one-way (BOTH) position"
            )
        if (side is PositionSide.LONG and quantity < 0) or (
            side is PositionSide.SHORT and quantity > 0
        ):
            return (
                f"position mode mismatch: the broker reports {fmt(quantity)} on the {side} "
                f"side of hedge account {account.account}; a {side} position cannot point "
                "the other way"
            )
        return None
    if side is not PositionSide.BOTH:
        return (
            f"position mode mismatch: account {account.account} is in netting mode, but the "
            f"broker reports a {side} (hedge) position"
        )
    return None


def ledger_average(slots: list[Slot]) -> Decimal | None:
    """Average entry of non-flat slots that all point one way (None if they do not)."""
    held = [slot for slot in slots if slot.quantity]
    if not held or len({slot.quantity > 0 for slot in held}) > 1:
        return None
    total = sum((abs(slot.quantity) for slot in held), ZERO)
    cost = sum((abs(slot.quantity) * (slot.avg_entry or ZERO) for slot in held), ZERO)
    return q18(cost / total)


def decide_reconcile(
    reconcile: Reconcile,
    *,
    account: Account,
    instrument: Instrument,
    book: Book,
    adopts_orphans: Callable[[str], bool],
    new_trade_id: Callable[[], int],
) -> ReconcileDecision | Rejection:
    """Compare the ledger with the broker on one key and apply the policy to what differs.

    ``report`` changes nothing. ``adopt`` books the difference to the EXTERNAL slot
    (close reason ``reconciliation`` where it closes something), then hands EXTERNAL
    quantity on a key that agrees to the one strategy there with ``adopt_orphans`` (a
    transfer; with two or more such strategies nobody gets it). ``halt`` changes nothing
    in the books and halts the instrument on the account. A strategy's own slot is never
    changed except by that orphan transfer.
    """
    if (reconcile.account, reconcile.instrument) != (account.account, instrument.instrument):
        raise ValueError("decide_reconcile needs the check's own account and instrument")
    problem = position_side_problem(account, reconcile.position_side, reconcile.quantity)
    if problem is not None:
        return Rejection(problem)
    with exact():
        return _decide_reconcile(reconcile, account, instrument, book, adopts_orphans, new_trade_id)


def _decide_reconcile(
    rec: Reconcile,
    account: Account,
    instrument: Instrument,
    book: Book,
    adopts_orphans: Callable[[str], bool],
    new_trade_id: Callable[[], int],
) -> ReconcileDecision | Rejection:
    side = rec.position_side
    slots = sorted(
        (
            slot
            for key, slot in book.slots.items()
            if key.account == rec.account and key.position_side is side
        ),
        key=lambda slot: slot.key.strategy,
    )
    held = sum((slot.quantity for slot in slots), ZERO)
    holders = tuple((slot.key.strategy, slot.quantity) for slot in slots if slot.quantity)
    average = ledger_average(slots)
    broker = rec.quantity
    kind, detail = _compare(rec, held, broker, average, holders)
    work = Booking(
        book,
        account,
        instrument,
        instrument.settlement_currency,
        None,
        new_trade_id,
        ZERO,
        rec.ts,
        "reconciliation",
    )
    action = "none"
    adjustment: Decimal | None = None
    adjustment_price: Decimal | None = None
    halt = False
    external = book.key(rec.account, EXTERNAL, side)
    quantity_differs = held != broker
    if quantity_differs and rec.policy is ReconcilePolicy.ADOPT:
        external_slot = book.slots.get(external)
        adjustment_price = _adoption_price(
            rec, instrument, book, average, external_slot, broker - held
        )
        if adjustment_price is None:
            detail += (
                "; not adopted: there is no price to book it at (send a mark for "
                f"{instrument.instrument} first)"
            )
        else:
            adjustment = broker - held
            work.price = adjustment_price
            work.reason = CloseReason.RECONCILIATION
            work.source = Source.RECONCILIATION
            work.move(external, adjustment, ZERO, Routing.FREE, False)
            action = "adopted"
            detail += f"; {fmt(adjustment)} booked to {EXTERNAL} at {fmt(adjustment_price)}"
    elif quantity_differs and rec.policy is ReconcilePolicy.HALT:
        action = "halted"
        halt = rec.account not in book.halts
        detail += (
            f"; {instrument.instrument} is halted on {rec.account}: entry orders are "
            "refused until it is resumed"
        )
    orphan = None
    # Orphans are handed on only where the key agrees (an average price drift is never acted
    # on) or the adopted difference made it agree.
    if rec.policy is ReconcilePolicy.ADOPT and (kind is CheckKind.AGREE or adjustment is not None):
        orphan = _adopt_orphan(work, rec, book, external, adopts_orphans)
    check = Check(kind, held, broker, average, rec.avg_price, holders, action, detail)
    if work.too_large is not None:
        return Rejection(work.too_large)
    trades = work.trades()
    return ReconcileDecision(
        rec,
        check,
        adjustment,
        adjustment_price,
        orphan,
        halt,
        tuple(work.legs),
        work.slots(),
        trades,
        tuple(work.opened),
    )


def _holders_text(holders: tuple[tuple[str, Decimal], ...]) -> str:
    return ", ".join(f"{strategy} {fmt(quantity)}" for strategy, quantity in holders)


def _compare(
    rec: Reconcile,
    held: Decimal,
    broker: Decimal,
    average: Decimal | None,
    holders: tuple[tuple[str, Decimal], ...],
) -> tuple[CheckKind, str]:
    if held == broker:
        if not held:
            if holders:
                return CheckKind.AGREE, (
                    f"the slots net to zero ({_holders_text(holders)}) and the broker is flat"
                )
            return CheckKind.AGREE, "ledger and broker are both flat"
        text = f"ledger and broker both hold {fmt(held)}"
        if rec.avg_price is None:
            return CheckKind.AGREE, text
        if average is None:
            return CheckKind.AGREE, (
                f"{text}; average prices not compared: strategies hold both sides "
                f"({_holders_text(holders)})"
            )
        gap = abs(average - rec.avg_price)
        scale = abs(rec.avg_price)
        if gap > rec.price_tolerance * scale:
            relative = "" if not scale else f" ({fmt(q18(gap / scale * 100).quantize(ONE_BP))}%)"
            return CheckKind.AVG_PRICE_DRIFT, (
                f"{text}, but the ledger's average entry {fmt(average)} differs from the "
                f"broker's {fmt(rec.avg_price)} by {fmt(gap)}{relative}, beyond the "
                f"tolerance of {fmt(rec.price_tolerance)}"
            )
        return CheckKind.AGREE, (
            f"{text}, average entry {fmt(average)} (broker {fmt(rec.avg_price)})"
        )
    owners = f" ({_holders_text(holders)})" if holders else ""
    if rec.with_history:
        why = (
            "; the broker's fill history was applied first and does not explain it "
            "(fills missing from the history, or refused: see `posledger rejected`)"
        )
    else:
        why = "; the broker's fill history (reconcile --fills) would show what is missing"
    if not broker:
        return CheckKind.STALE_POSITION, (
            f"the ledger holds {fmt(held)}{owners} but the broker is flat: the position was "
            f"closed where the ledger did not see it{why}"
        )
    if not held:
        return CheckKind.UNKNOWN_POSITION, (
            f"the broker holds {fmt(broker)} that the ledger never saw{why}"
        )
    if _sign(held) == _sign(broker) and abs(held) < abs(broker):
        return CheckKind.MISSING_FILLS, (
            f"the ledger holds {fmt(held)}{owners}, the broker {fmt(broker)}: the ledger is "
            f"behind by {fmt(broker - held)}{why}"
        )
    return CheckKind.QUANTITY_MISMATCH, (
        f"the ledger holds {fmt(held)}{owners}, the broker {fmt(broker)} "
        f"(difference {fmt(broker - held)}){why}"
    )


def _adoption_price(
    rec: Reconcile,
    instrument: Instrument,
    book: Book,
    average: Decimal | None,
    external: Slot | None,
    difference: Decimal,
) -> Decimal | None:
    """What the difference is booked at. Where it opens or adds to EXTERNAL's position:
    the broker's average price (the broker's own entry), else the instrument's mark.
    Where it reduces EXTERNAL's position: the mark (where the market is), else the
    broker's average. Then the slots' average entry, then EXTERNAL's. None when there is
    no price a trade could be booked at."""
    held = ZERO if external is None else external.quantity
    reduces = bool(held) and (held > 0) != (difference > 0)
    # A flat broker position has no entry price, whatever the broker sends beside it.
    entry = rec.avg_price if rec.quantity else None
    first, second = (book.mark, entry) if reduces else (entry, book.mark)
    candidates = (
        first,
        second,
        average,
        None if external is None or not held else external.avg_entry,
    )
    for price in candidates:
        if price is not None and instrument.price_problem(price) is None:
            return price
    return None


def _adopt_orphan(
    work: Booking,
    rec: Reconcile,
    book: Book,
    external: SlotKey,
    adopts_orphans: Callable[[str], bool],
) -> Orphan | None:
    slot = work.peek(external)
    if slot is None or not slot.quantity:
        return None
    quantity = slot.quantity
    here = f"on {_name(rec.account, rec.instrument, rec.position_side)}"
    if work.account.hedge and (rec.position_side is PositionSide.LONG) != (quantity > 0):
        # A hedge slot never changes sign: no strategy's slot on this side can take it.
        return Orphan(
            quantity,
            None,
            None,
            f"{EXTERNAL} holds {fmt(quantity)} {here}; not adopted: a hedge "
            f"{rec.position_side} slot never points the other way",
        )
    candidates = sorted(
        key.strategy
        for key in book.slots
        if key.account == rec.account
        and key.position_side is rec.position_side
        and key.strategy != EXTERNAL
        and adopts_orphans(key.strategy)
    )
    if not candidates:
        return Orphan(
            quantity,
            None,
            None,
            f"{EXTERNAL} holds {fmt(quantity)} {here}; no strategy there adopts orphans: "
            "move it with `posledger transfer`",
        )
    if len(candidates) > 1:
        return Orphan(
            quantity,
            None,
            None,
            f"{EXTERNAL} holds {fmt(quantity)} {here}; not adopted: {', '.join(candidates)} "
            "all adopt orphans and the ledger will not pick one (move it with "
            "`posledger transfer`)",
        )
    strategy = candidates[0]
    taker = book.key(rec.account, strategy, rec.position_side)
    owned = work.peek(taker)
    owned_quantity = ZERO if owned is None else owned.quantity
    if owned_quantity and _sign(owned_quantity) != _sign(quantity):
        direction = Direction.LONG if owned_quantity > 0 else Direction.SHORT
        return Orphan(
            quantity,
            None,
            None,
            f"{EXTERNAL} holds {fmt(quantity)} {here}; not adopted: {strategy} is "
            f"{direction} and adopting would net its position away",
        )
    assert slot.avg_entry is not None
    price = slot.avg_entry
    work.price = price
    work.reason = CloseReason.TRANSFER
    work.source = Source.TRANSFER
    work.move(external, -quantity, ZERO, Routing.FREE, False)
    work.move(taker, quantity, ZERO, Routing.FREE, False)
    return Orphan(
        quantity,
        strategy,
        price,
        f"{strategy} adopted {EXTERNAL}'s {fmt(quantity)} {here} at {fmt(price)} "
        "(its adopt_orphans policy)",
    )
