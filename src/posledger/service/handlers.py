"""One handler per kind of input: load -> decide -> journal + project, through a unit of work.

Handlers never commit; the caller owns the transaction. They return an :class:`Outcome`
and never raise for bad input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any, Literal, NamedTuple

from ..adapters.records import digest, encode, record_type, to_record
from ..domain.decide import decide_fill, decide_mark
from ..domain.enums import OrderStatus
from ..domain.events import Duplicate, Rejection
from ..domain.inputs import BrokerPosition, Cancel, Fill, Input, Mark, Transfer
from ..domain.refdata import Account, Instrument, InvalidInput, Order, Strategy
from .effects import fill_effects, mark_effects
from .unit_of_work import UnitOfWork

__all__ = ["Outcome", "Status", "describe", "handle"]

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
    if isinstance(item, (BrokerPosition, Transfer)):
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


def handle(tx: UnitOfWork, item: Input, clock: Clock) -> Outcome:
    """Apply one input within the caller's transaction."""
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
        if isinstance(item, Account):
            return _register(tx, item, kind, key, tx.account(key), tx.add_account, clock)
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
        return Outcome("rejected", kind, key, "transfer records are not supported by ingest")
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
            return Outcome("duplicate", "order", key, f"order {key} is already registered")
        return Outcome(
            "rejected",
            "order",
            key,
            f"order {key} is already registered differently: {_differences(found[0], order)}",
        )
    account = _require_account(tx, order.account)
    _require_instrument(tx, order.instrument)
    if tx.strategy(order.strategy) is None:
        raise InvalidInput(f"unknown strategy {order.strategy}: register it first")
    account.resolve_position_side(order.position_side)
    seq = _journal(tx, _stream(order.instrument), order, {}, clock)
    tx.add_order(order, seq)
    return Outcome("applied", "order", key, seq=seq)


def _cancel(tx: UnitOfWork, cancel: Cancel, clock: Clock) -> Outcome:
    key = cancel.client_order_id
    found = tx.order(key)
    if found is None:
        raise InvalidInput(f"unknown order {key}")
    order, status = found
    if status is OrderStatus.CANCELLED:
        return Outcome("duplicate", "cancel", key, f"order {key} is already cancelled")
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
    if mark.ts is None:
        mark = replace(mark, ts=clock())
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
