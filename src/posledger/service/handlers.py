"""One handler per kind of input: load -> decide -> journal + project, through a unit of work.

Handlers never commit; the caller owns the transaction. They return an :class:`Outcome`
and never raise for bad input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any, Literal, NamedTuple, TypeVar

from ..adapters.records import digest, encode, record_type, to_record
from ..domain.book import HaltState
from ..domain.decide import decide_fill, decide_mark
from ..domain.enums import Intent, OrderStatus
from ..domain.events import Duplicate, Rejection
from ..domain.guards import check_order
from ..domain.inputs import (
    BrokerPosition,
    Cancel,
    Fill,
    Halt,
    Input,
    Mark,
    Reconcile,
    Resume,
    Transfer,
)
from ..domain.numbers import fmt
from ..domain.reconcile import decide_reconcile, decide_transfer
from ..domain.refdata import Account, Instrument, InvalidInput, Order, Strategy
from ..domain.timestamps import format_ts
from .effects import fill_effects, mark_effects, reconcile_effects, transfer_effects
from .unit_of_work import UnitOfWork

__all__ = [
    "REFUSED",
    "Outcome",
    "Status",
    "describe",
    "handle",
    "order_verdict",
    "pretrade",
    "reconcile",
]

REFUSED = "refused pre-trade: "
"""How the reason of an order the pre-trade check refused begins."""

Status = Literal["applied", "duplicate", "rejected"]
Clock = Callable[[], int]


class Outcome(NamedTuple):
    """What applying one input did."""

    status: Status
    kind: str | None
    """The record type (``fill``, ``order``...), None when the input could not be read."""
    key: str | None
    """The input's own id: exec_id, client_order_id, account, instrument..."""
    reason: str | None = None
    seq: int | None = None
    """Journal sequence number of an applied input."""
    effects: dict[str, Any] | None = None
    """What an applied fill or mark did (the journaled effects)."""

    @property
    def applied(self) -> bool:
        return self.status == "applied"


def describe(item: Input) -> str:
    """The id a user knows an input by."""
    if isinstance(item, Fill):
        return item.exec_id
    if isinstance(item, (Order, Cancel)):
        return item.client_order_id
    if isinstance(item, Account):
        return item.account
    if isinstance(item, Instrument):
        return item.instrument
    if isinstance(item, Strategy):
        return item.strategy
    if isinstance(item, Mark):
        return item.instrument
    if isinstance(item, (BrokerPosition, Transfer, Halt, Resume, Reconcile)):
        return f"{item.account}/{item.instrument}"
    raise TypeError(type(item).__name__)


def _stream(instrument: str) -> str:
    return f"instrument:{instrument}"


def _differences(old: object, new: object) -> str:
    parts = []
    for field in fields(old):  # type: ignore[arg-type]
        a, b = getattr(old, field.name), getattr(new, field.name)
        if a != b:
            parts.append(f"{field.name} {_show(a)} != {_show(b)}")
    return ", ".join(parts)


def _show(value: object) -> str:
    return "(none)" if value is None else str(value)


def handle(tx: UnitOfWork, item: Input, clock: Clock, *, replaying: bool = False) -> Outcome:
    """Apply one input within the caller's transaction.

    ``reconcile`` records are written by reconciliation (:func:`reconcile`); ``handle``
    applies them only when ``replaying`` the journal.
    """
    kind = record_type(item)
    key = describe(item)
    try:
        if isinstance(item, Fill):
            return _fill(tx, item, clock)
        if isinstance(item, Mark):
            return _mark(tx, item, clock)
        if isinstance(item, Order):
            return _order(tx, item, clock)
        if isinstance(item, Cancel):
            return _cancel(tx, item, clock)
        if isinstance(item, Transfer):
            return _transfer(tx, item, clock)
        if isinstance(item, Halt):
            return _halt(tx, item, clock)
        if isinstance(item, Resume):
            return _resume(tx, item, clock)
        if isinstance(item, Reconcile):
            if replaying:
                return reconcile(tx, item, clock)
            return Outcome(
                "rejected",
                kind,
                key,
                "reconcile records are written by `posledger reconcile` from broker_position "
                "lines; they cannot be ingested",
            )
        if isinstance(item, Account):
            existing = tx.account(key)
            if (
                existing is not None
                and existing != item
                and replace(existing, reconcile_policy=item.reconcile_policy) == item
            ):
                seq = _journal(tx, f"account:{key}", item, {}, clock)
                tx.update_account(item, seq)
                return Outcome("applied", kind, key, seq=seq)
            return _register(tx, item, kind, key, existing, tx.add_account, clock)
        if isinstance(item, Instrument):
            return _register(tx, item, kind, key, tx.instrument(key), tx.add_instrument, clock)
        if isinstance(item, Strategy):
            return _register(tx, item, kind, key, tx.strategy(key), tx.add_strategy, clock)
        if isinstance(item, BrokerPosition):
            return Outcome(
                "rejected",
                kind,
                key,
                "broker_position records are compared with the ledger by reconciliation; "
                "ingest does not apply them",
            )
        raise TypeError(type(item).__name__)
    except InvalidInput as exc:
        return Outcome("rejected", kind, key, str(exc))


def _journal(
    tx: UnitOfWork, stream: str, item: Input, effects: dict[str, Any], clock: Clock
) -> int:
    return tx.append(stream, record_type(item), encode(to_record(item)), encode(effects), clock())


def _register(
    tx: UnitOfWork,
    item: Account | Instrument | Strategy,
    kind: str,
    key: str,
    existing: Account | Instrument | Strategy | None,
    add: Callable[[Any, int], None],
    clock: Clock,
) -> Outcome:
    if existing is not None:
        if existing == item:
            return Outcome("duplicate", kind, key, f"{kind} {key} is already registered")
        return Outcome(
            "rejected",
            kind,
            key,
            f"{kind} {key} is already registered differently: {_differences(existing, item)}",
        )
    stream = _stream(key) if kind == "instrument" else f"{kind}:{key}"
    seq = _journal(tx, stream, item, {}, clock)
    add(item, seq)
    return Outcome("applied", kind, key, seq=seq)


def _require_account(tx: UnitOfWork, name: str) -> Account:
    account = tx.account(name)
    if account is None:
        raise InvalidInput(f"unknown account {name}: register it first")
    return account


def _require_instrument(tx: UnitOfWork, name: str) -> Instrument:
    instrument = tx.instrument(name)
    if instrument is None:
        raise InvalidInput(f"unknown instrument {name}: register it first")
    return instrument


def _order(tx: UnitOfWork, order: Order, clock: Clock) -> Outcome:
    key = order.client_order_id
    found = tx.order(key)
    if found is not None:
        if found[0] == order:
            if found[1] is OrderStatus.REFUSED:
                # Never let a refused order look accepted, however often it is sent.
                return Outcome(
                    "rejected",
                    "order",
                    key,
                    f"{REFUSED}order {key} was refused when first registered; it stays refused",
                )
            return Outcome("duplicate", "order", key, f"order {key} was already registered")
        return Outcome(
            "rejected",
            "order",
            key,
            f"order {key} is already registered differently: {_differences(found[0], order)}",
        )
    account = _require_account(tx, order.account)
    _require_instrument(tx, order.instrument)
    strategy = tx.strategy(order.strategy)
    if strategy is None:
        raise InvalidInput(f"unknown strategy {order.strategy}: register it first")
    account.resolve_position_side(order.position_side)
    reasons = tx.recorded_verdict()
    if reasons is None:
        reasons = pretrade(tx, order, account, strategy)
    effects = {"refused": reasons} if reasons else {}
    seq = _journal(tx, _stream(order.instrument), order, effects, clock)
    if reasons:
        # Kept, refused: should the broker fill it anyway, its fills still belong to its
        # strategy, and an exit's excess goes to EXTERNAL.
        tx.add_order(order, seq, OrderStatus.REFUSED)
        return Outcome("rejected", "order", key, REFUSED + "; ".join(reasons), seq=seq)
    tx.add_order(order, seq)
    return Outcome("applied", "order", key, seq=seq)


def order_verdict(tx: UnitOfWork, order: Order) -> list[str]:
    """Why registering ``order`` now would be refused (empty: it would be accepted), without
    registering it: the pre-trade check of ``posledger check-order``."""
    found = tx.order(order.client_order_id)
    if found is not None:
        return [f"client_order_id {order.client_order_id} is already registered ({found[1]})"]
    try:
        account = _require_account(tx, order.account)
        _require_instrument(tx, order.instrument)
        strategy = tx.strategy(order.strategy)
        if strategy is None:
            raise InvalidInput(f"unknown strategy {order.strategy}: register it first")
        account.resolve_position_side(order.position_side)
        return pretrade(tx, order, account, strategy)
    except InvalidInput as exc:
        return [str(exc)]


def pretrade(tx: UnitOfWork, order: Order, account: Account, strategy: Strategy) -> list[str]:
    """Every reason the pre-trade check refuses ``order`` (empty: allowed), judged against
    the ledger as it is now. Takes the instrument's stream lock."""
    book = tx.book(order.instrument)
    counted = strategy.max_open_slots is not None and order.intent is Intent.ENTRY
    open_slots = tx.open_slots(order.strategy) if counted else None
    reasons = check_order(
        order, account=account, strategy=strategy, book=book, open_slots=open_slots
    )
    if reasons and order.intent.is_exit and order.bracket_id is not None:
        pending = tx.bracket_pending(order)
        if pending:
            reasons = check_order(
                order,
                account=account,
                strategy=strategy,
                book=book,
                open_slots=open_slots,
                bracket_pending=pending,
            )
    return reasons


def _cancel(tx: UnitOfWork, cancel: Cancel, clock: Clock) -> Outcome:
    key = cancel.client_order_id
    found = tx.order(key)
    if found is None:
        raise InvalidInput(f"unknown order {key}")
    order, status = found
    if status is OrderStatus.CANCELLED:
        return Outcome("duplicate", "cancel", key, f"order {key} is already cancelled")
    if status is OrderStatus.REFUSED:
        return Outcome("duplicate", "cancel", key, f"order {key} was refused: nothing to cancel")
    seq = _journal(tx, _stream(order.instrument), cancel, {}, clock)
    tx.cancel_order(order, seq)
    return Outcome("applied", "cancel", key, seq=seq)


def _fill(tx: UnitOfWork, fill: Fill, clock: Clock) -> Outcome:
    key = fill.exec_id
    record = to_record(fill)
    text = encode(record)
    fingerprint = digest(text)
    account = _require_account(tx, fill.account)
    instrument = _require_instrument(tx, fill.instrument)
    # The book comes with the instrument stream's lock: with several writers, exactly-once
    # must be checked under it, where another writer's copy of this fill is visible.
    book = tx.book(fill.instrument)
    seen = tx.fill_seen(fill.account, fill.exec_id)
    if seen is not None:
        if seen.digest == fingerprint:
            return Outcome("duplicate", "fill", key, f"fill {key} was already applied")
        return Outcome("rejected", "fill", key, _conflict(tx, fill, seen.seq, record))
    found = tx.order(fill.client_order_id) if fill.client_order_id is not None else None
    decision = decide_fill(
        fill,
        account=account,
        instrument=instrument,
        order=None if found is None else found[0],
        strategy_known=tx.has_strategy,
        book=book,
        new_trade_id=tx.next_trade_id,
    )
    if isinstance(decision, Rejection):
        return Outcome("rejected", "fill", key, decision.reason)
    effects = fill_effects(decision)
    seq = tx.append(_stream(fill.instrument), "fill", text, encode(effects), clock())
    tx.add_fill(decision, seq, fingerprint)
    book.apply(decision)
    return Outcome("applied", "fill", key, seq=seq, effects=effects)


def _conflict(tx: UnitOfWork, fill: Fill, seq: int, record: dict[str, object]) -> str:
    from ..adapters.jsonl import parse_line

    earlier = to_record(parse_line(tx.journal_record(seq)))
    changed = sorted(set(earlier) | set(record))
    parts = [
        f"{name} {_show(earlier.get(name))} != {_show(record.get(name))}"
        for name in changed
        if earlier.get(name) != record.get(name)
    ]
    return (
        f"conflict: exec_id {fill.exec_id} on account {fill.account} was applied before "
        f"(journal seq {seq}) with different content: {', '.join(parts)}"
    )


def _mark(tx: UnitOfWork, mark: Mark, clock: Clock) -> Outcome:
    key = mark.instrument
    instrument = _require_instrument(tx, mark.instrument)
    mark = _stamped(mark, clock)
    book = tx.book(mark.instrument)
    decision = decide_mark(mark, instrument=instrument, book=book)
    if isinstance(decision, Rejection):
        return Outcome("rejected", "mark", key, decision.reason)
    if isinstance(decision, Duplicate):
        return Outcome("duplicate", "mark", key, decision.reason)
    effects = mark_effects(decision)
    seq = _journal(tx, _stream(mark.instrument), mark, effects, clock)
    tx.add_mark(decision, seq)
    book.apply(decision)
    return Outcome("applied", "mark", key, seq=seq, effects=effects)


Stamped = TypeVar("Stamped", Mark, Transfer, Halt, Resume)


def _stamped(item: Stamped, clock: Clock) -> Stamped:
    """The input with its ``ts``, or stamped with the time it was received."""
    return item if item.ts is not None else replace(item, ts=clock())


def _transfer(tx: UnitOfWork, transfer: Transfer, clock: Clock) -> Outcome:
    key = describe(transfer)
    account = _require_account(tx, transfer.account)
    instrument = _require_instrument(tx, transfer.instrument)
    # The id's fingerprint is of the transfer as sent: sent again without a time, it is
    # still the same transfer.
    fingerprint = digest(encode(to_record(transfer)))
    stamped = _stamped(transfer, clock)
    book = tx.book(transfer.instrument)
    if transfer.transfer_id is not None:
        seen = tx.transfer_seen(transfer.account, transfer.transfer_id)
        if seen is not None:
            if seen.digest == fingerprint:
                return Outcome(
                    "duplicate", "transfer", key, f"transfer {transfer.transfer_id} was applied"
                )
            return Outcome(
                "rejected",
                "transfer",
                key,
                f"conflict: transfer_id {transfer.transfer_id} on account {transfer.account} "
                f"was applied before (journal seq {seen.seq}) with different content",
            )
    decision = decide_transfer(
        stamped,
        account=account,
        instrument=instrument,
        strategy_known=tx.has_strategy,
        book=book,
        new_trade_id=tx.next_trade_id,
    )
    if isinstance(decision, Rejection):
        return Outcome("rejected", "transfer", key, decision.reason)
    effects = transfer_effects(decision)
    seq = _journal(tx, _stream(transfer.instrument), stamped, effects, clock)
    tx.add_transfer(decision, seq, None if transfer.transfer_id is None else fingerprint)
    book.apply(decision)
    return Outcome("applied", "transfer", key, seq=seq, effects=effects)


def _halt(tx: UnitOfWork, halt: Halt, clock: Clock) -> Outcome:
    key = describe(halt)
    _require_account(tx, halt.account)
    _require_instrument(tx, halt.instrument)
    book = tx.book(halt.instrument)
    current = book.halts.get(halt.account)
    if current is not None:
        return Outcome(
            "duplicate",
            "halt",
            key,
            f"{halt.instrument} is already halted on {halt.account} since "
            f"{format_ts(current.ts)} ({current.reason})",
        )
    stamped = _stamped(halt, clock)
    assert stamped.ts is not None
    seq = _journal(tx, _stream(halt.instrument), stamped, {}, clock)
    state = HaltState(stamped.ts, halt.reason or "halted by hand")
    tx.set_halt(halt.account, halt.instrument, state, seq)
    book.halts[halt.account] = state
    return Outcome("applied", "halt", key, seq=seq)


def _resume(tx: UnitOfWork, resume: Resume, clock: Clock) -> Outcome:
    key = describe(resume)
    _require_account(tx, resume.account)
    _require_instrument(tx, resume.instrument)
    book = tx.book(resume.instrument)
    if resume.account not in book.halts:
        return Outcome(
            "duplicate", "resume", key, f"{resume.instrument} is not halted on {resume.account}"
        )
    seq = _journal(tx, _stream(resume.instrument), _stamped(resume, clock), {}, clock)
    tx.set_halt(resume.account, resume.instrument, None, seq)
    del book.halts[resume.account]
    return Outcome("applied", "resume", key, seq=seq)


def reconcile(tx: UnitOfWork, check: Reconcile, clock: Clock) -> Outcome:
    """Compare one (account, instrument, position side) with the broker and apply the
    check's policy; journaled in the instrument's stream."""
    key = describe(check)
    account = _require_account(tx, check.account)
    instrument = _require_instrument(tx, check.instrument)
    book = tx.book(check.instrument)

    def adopts_orphans(name: str) -> bool:
        strategy = tx.strategy(name)
        return strategy is not None and strategy.adopt_orphans

    decision = decide_reconcile(
        check,
        account=account,
        instrument=instrument,
        book=book,
        adopts_orphans=adopts_orphans,
        new_trade_id=tx.next_trade_id,
    )
    if isinstance(decision, Rejection):
        return Outcome("rejected", "reconcile", key, decision.reason)
    effects = reconcile_effects(decision)
    seq = _journal(tx, _stream(check.instrument), check, effects, clock)
    tx.add_reconcile(decision, seq)
    book.apply(decision)
    if decision.halt:
        state = HaltState(
            check.ts,
            f"reconciliation {check.run}: {decision.check.kind} on {check.position_side} "
            f"(ledger {fmt(decision.check.ledger_quantity)}, broker "
            f"{fmt(decision.check.broker_quantity)})",
        )
        tx.set_halt(check.account, check.instrument, state, seq)
        book.halts[check.account] = state
    return Outcome("applied", "reconcile", key, seq=seq, effects=effects)
