"""One handler per kind of input: load -> decide -> a write set.

A handler loads what it needs through the unit of work, decides with the domain, and
returns the :class:`Outcome` with the write set that stores it (journal entry, projection
changes, outbox commands), or with none when nothing is applied. It never writes and never
commits: the caller adds the write set to the unit of work and owns the transaction.
Handlers never raise for bad input.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import fields, replace
from decimal import Decimal
from typing import Any, Literal, NamedTuple, TypeVar

from ..adapters.jsonl import parse_line
from ..adapters.records import digest, encode, record_type, to_record
from ..domain.book import Book, HaltState
from ..domain.brackets import Protect, Protection
from ..domain.decide import decide_fill, decide_mark
from ..domain.decisions import Duplicate, Rejection
from ..domain.enums import Direction, Intent, OrderStatus
from ..domain.exits import Bracket
from ..domain.guards import bracket_pending, check_order
from ..domain.inputs import (
    BrokerPosition,
    Cancel,
    CommandAck,
    CommandFailed,
    Fill,
    Halt,
    Input,
    Mark,
    Reconcile,
    Resume,
    SetBracket,
    Sweep,
    Transfer,
)
from ..domain.numbers import fmt
from ..domain.reconcile import decide_reconcile, decide_transfer
from ..domain.refdata import Account, Instrument, InvalidInput, Order, Strategy
from ..domain.timestamps import format_ts
from ..domain.writeset import (
    AddAccount,
    AddInstrument,
    AddOrder,
    AddStrategy,
    JournalEntry,
    PutAccount,
    PutHalt,
    PutOrder,
    SettleCommand,
    WriteSet,
)
from ..ports import Seen, UnitOfWork
from .effects import fill_effects, mark_effects, reconcile_effects, transfer_effects
from .writesets import (
    commands_effect,
    fill_write_set,
    mark_write_set,
    protected,
    reconcile_write_set,
    transfer_write_set,
)

__all__ = [
    "REFUSED",
    "Decided",
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


Decided = tuple[Outcome, WriteSet | None]
"""A handler's result: the outcome, and the write set to add when something is applied
(an order refused pre-trade is journaled too, so that its fills keep their owner)."""


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
    if isinstance(item, SetBracket):
        return f"{item.account}/{item.instrument}/{item.strategy}"
    if isinstance(item, (CommandAck, CommandFailed)):
        return item.command_id
    if isinstance(item, Sweep):
        return item.instrument
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


def handle(tx: UnitOfWork, item: Input, clock: Clock, *, replaying: bool = False) -> Decided:
    """Decide one input within the caller's transaction.

    ``reconcile`` records are written by reconciliation (:func:`reconcile`); ``handle``
    decides them only when ``replaying`` the journal.
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
        if isinstance(item, SetBracket):
            return _bracket(tx, item, clock)
        if isinstance(item, (CommandAck, CommandFailed)):
            return _settle(tx, item, clock, replaying)
        if isinstance(item, Sweep):
            return _sweep(tx, item, clock)
        if isinstance(item, Reconcile):
            if replaying:
                return reconcile(tx, item, clock)
            return _refused(
                kind,
                key,
                "reconcile records are written by `posledger reconcile` from broker_position "
                "lines; they cannot be ingested",
            )
        if isinstance(item, Account):
            # The stream's lock first (on a server): another writer registering the same
            # account at the same moment is then seen, not raced.
            tx.stream_version(f"account:{key}")
            existing = tx.account(key)
            if (
                existing is not None
                and existing != item
                and replace(existing, reconcile_policy=item.reconcile_policy) == item
            ):
                entry = _entry(tx, f"account:{key}", item, {}, clock)
                return Outcome("applied", kind, key), WriteSet(entry, (PutAccount(item),))
            return _register(tx, item, kind, key, existing, AddAccount, clock)
        if isinstance(item, Instrument):
            tx.stream_version(_stream(key))
            return _register(tx, item, kind, key, tx.instrument(key), AddInstrument, clock)
        if isinstance(item, Strategy):
            tx.stream_version(f"strategy:{key}")
            return _register(tx, item, kind, key, tx.strategy(key), AddStrategy, clock)
        if isinstance(item, BrokerPosition):
            return _refused(
                kind,
                key,
                "broker_position records are compared with the ledger by reconciliation; "
                "ingest does not apply them",
            )
        raise TypeError(type(item).__name__)
    except InvalidInput as exc:
        return _refused(kind, key, str(exc))


def _refused(kind: str, key: str, reason: str) -> Decided:
    return Outcome("rejected", kind, key, reason), None


def _entry(
    tx: UnitOfWork,
    stream: str,
    item: Input,
    effects: dict[str, Any],
    clock: Clock,
    record: str | None = None,
) -> JournalEntry:
    """The journal entry of ``item`` on ``stream``: one version on from where it is."""
    text = encode(to_record(item)) if record is None else record
    version = tx.stream_version(stream) + 1
    return JournalEntry(stream, version, record_type(item), text, encode(effects), clock())


def _register(
    tx: UnitOfWork,
    item: Account | Instrument | Strategy,
    kind: str,
    key: str,
    existing: Account | Instrument | Strategy | None,
    put: Callable[[Any], Any],
    clock: Clock,
) -> Decided:
    if existing is not None:
        if existing == item:
            return Outcome("duplicate", kind, key, f"{kind} {key} is already registered"), None
        return _refused(
            kind,
            key,
            f"{kind} {key} is already registered differently: {_differences(existing, item)}",
        )
    stream = _stream(key) if kind == "instrument" else f"{kind}:{key}"
    entry = _entry(tx, stream, item, {}, clock)
    return Outcome("applied", kind, key), WriteSet(entry, (put(item),))


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


def _order(tx: UnitOfWork, order: Order, clock: Clock) -> Decided:
    key = order.client_order_id
    found = tx.order(key)
    if found is not None:
        if found[0] == order:
            if found[1] is OrderStatus.REFUSED:
                # Never let a refused order look accepted, however often it is sent.
                return _refused(
                    "order",
                    key,
                    f"{REFUSED}order {key} was refused when first registered; it stays refused",
                )
            return Outcome("duplicate", "order", key, f"order {key} was already registered"), None
        return _refused(
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
    entry = _entry(tx, _stream(order.instrument), order, effects, clock)
    if reasons:
        # Kept, refused: should the broker fill it anyway, its fills still belong to its
        # strategy, and an exit's excess goes to EXTERNAL.
        write_set = WriteSet(entry, (AddOrder(order, OrderStatus.REFUSED),))
        return Outcome("rejected", "order", key, REFUSED + "; ".join(reasons)), write_set
    write_set = WriteSet(entry, (AddOrder(order, OrderStatus.OPEN),))
    if order.intent.is_exit:
        # Watched from now on: cancelled or resized should its slot change under it.
        book = tx.book(order.instrument)
        protect = Protect(book, entry.version)
        protect.watch(order, account.resolve_position_side(order.position_side))
        out = protect.finish()
        write_set = _with(write_set, out, None, effects)
    return Outcome("applied", "order", key), write_set


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
        pending = bracket_pending(order, tx.bracket(order.bracket_id))
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


def _cancel(tx: UnitOfWork, cancel: Cancel, clock: Clock) -> Decided:
    key = cancel.client_order_id
    found = tx.order(key)
    if found is None:
        raise InvalidInput(f"unknown order {key}")
    order, status = found
    if status is OrderStatus.CANCELLED:
        return Outcome("duplicate", "cancel", key, f"order {key} is already cancelled"), None
    if status is OrderStatus.REFUSED:
        return Outcome(
            "duplicate", "cancel", key, f"order {key} was refused: nothing to cancel"
        ), None
    entry = _entry(tx, _stream(order.instrument), cancel, {}, clock)
    write_set = WriteSet(entry, (PutOrder(order, OrderStatus.CANCELLED),))
    book = tx.book(order.instrument)
    if key in book.exits:
        protect = Protect(book, entry.version)
        protect.cancelled(key)
        effects: dict[str, Any] = {}
        write_set = _with(write_set, protect.finish(), None, effects)
    return Outcome("applied", "cancel", key), write_set


def _fill(tx: UnitOfWork, fill: Fill, clock: Clock) -> Decided:
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
            return Outcome("duplicate", "fill", key, f"fill {key} was already applied"), None
        return _refused("fill", key, _conflict(tx, fill, seen, record))
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
        return _refused("fill", key, decision.reason)
    effects = fill_effects(decision)
    order = None if found is None else found[0]
    out = None
    if book.exits or book.brackets or (order is not None and order.bracket is not None):
        protect = Protect(book, book.version + 1, decision.slots)
        if fill.client_order_id is not None:
            protect.filled(fill.client_order_id, fill.quantity)
        if order is not None and order.bracket is not None:
            protect.entry_filled(
                order, book.key(fill.account, decision.strategy, decision.position_side)
            )
        out = protect.finish()
        _with_commands(effects, out)
    entry = _entry(tx, _stream(fill.instrument), fill, effects, clock, record=text)
    outcome = Outcome("applied", "fill", key, effects=effects)
    write_set = fill_write_set(entry, decision, fingerprint)
    if out is not None and out:
        write_set = protected(write_set, out, fill.exec_id)
    return outcome, write_set


def _with(
    write_set: WriteSet, out: Protection, exec_id: str | None, effects: dict[str, Any]
) -> WriteSet:
    """A write set whose entry is not written yet by its effects: the protection's changes
    added, and its commands in the entry's effects."""
    if not out:
        return write_set
    entry = write_set.entry
    assert entry is not None
    if out.commands:
        entry = entry._replace(effects=encode(_with_commands(effects, out)))
    return protected(write_set._replace(entry=entry), out, exec_id)


def _with_commands(effects: dict[str, Any], out: Protection) -> dict[str, Any]:
    """``effects`` with the commands the protection issued, when it issued any: they are
    journaled, so that ``verify`` checks that a replay issues the same ones."""
    if out.commands:
        effects["commands"] = commands_effect(out)
    return effects


def _guarded(book: Book) -> bool:
    """Whether the book has exit orders or brackets to look after."""
    return bool(book.exits or book.brackets)


def _conflict(tx: UnitOfWork, fill: Fill, seen: Seen, record: dict[str, object]) -> str:
    if seen.seq is None:
        assert seen.record is not None
        earlier_text, where = seen.record, "earlier in the same batch"
    else:
        earlier_text, where = tx.journal_record(seen.seq), f"before (journal seq {seen.seq})"
    earlier = to_record(parse_line(earlier_text))
    changed = sorted(set(earlier) | set(record))
    parts = [
        f"{name} {_show(earlier.get(name))} != {_show(record.get(name))}"
        for name in changed
        if earlier.get(name) != record.get(name)
    ]
    return (
        f"conflict: exec_id {fill.exec_id} on account {fill.account} was applied {where} "
        f"with different content: {', '.join(parts)}"
    )


def _mark(tx: UnitOfWork, mark: Mark, clock: Clock) -> Decided:
    key = mark.instrument
    instrument = _require_instrument(tx, mark.instrument)
    received = clock()
    mark = mark if mark.ts is not None else replace(mark, ts=received)
    book = tx.book(mark.instrument)
    decision = decide_mark(mark, instrument=instrument, book=book, now=received)
    if isinstance(decision, Rejection):
        return _refused("mark", key, decision.reason)
    if isinstance(decision, Duplicate):
        return Outcome("duplicate", "mark", key, decision.reason), None
    effects = mark_effects(decision)
    entry = _entry(tx, _stream(mark.instrument), mark, effects, clock)
    return Outcome("applied", "mark", key, effects=effects), mark_write_set(entry, decision)


Stamped = TypeVar("Stamped", Mark, Transfer, Halt, Resume, SetBracket, Sweep)


def _stamped(item: Stamped, clock: Clock) -> Stamped:
    """The input with its ``ts``, or stamped with the time it was received."""
    return item if item.ts is not None else replace(item, ts=clock())


def _transfer(tx: UnitOfWork, transfer: Transfer, clock: Clock) -> Decided:
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
                reason = f"transfer {transfer.transfer_id} was applied"
                return Outcome("duplicate", "transfer", key, reason), None
            where = "earlier in the same batch" if seen.seq is None else f"(journal seq {seen.seq})"
            return _refused(
                "transfer",
                key,
                f"conflict: transfer_id {transfer.transfer_id} on account {transfer.account} "
                f"was applied before {where} with different content",
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
        return _refused("transfer", key, decision.reason)
    effects = transfer_effects(decision)
    entry = _entry(tx, _stream(transfer.instrument), stamped, effects, clock)
    write_set = transfer_write_set(
        entry, decision, None if transfer.transfer_id is None else fingerprint
    )
    if _guarded(book):
        out = Protect(book, entry.version, decision.slots).finish()
        write_set = _with(write_set, out, None, effects)
    return Outcome("applied", "transfer", key, effects=effects), write_set


def _halt(tx: UnitOfWork, halt: Halt, clock: Clock) -> Decided:
    key = describe(halt)
    _require_account(tx, halt.account)
    _require_instrument(tx, halt.instrument)
    book = tx.book(halt.instrument)
    current = book.halts.get(halt.account)
    if current is not None:
        reason = (
            f"{halt.instrument} is already halted on {halt.account} since "
            f"{format_ts(current.ts)} ({current.reason})"
        )
        return Outcome("duplicate", "halt", key, reason), None
    stamped = _stamped(halt, clock)
    assert stamped.ts is not None
    entry = _entry(tx, _stream(halt.instrument), stamped, {}, clock)
    state = HaltState(stamped.ts, halt.reason or "halted by hand")
    return Outcome("applied", "halt", key), WriteSet(
        entry, (PutHalt(halt.account, halt.instrument, state),)
    )


def _resume(tx: UnitOfWork, resume: Resume, clock: Clock) -> Decided:
    key = describe(resume)
    _require_account(tx, resume.account)
    _require_instrument(tx, resume.instrument)
    book = tx.book(resume.instrument)
    if resume.account not in book.halts:
        reason = f"{resume.instrument} is not halted on {resume.account}"
        return Outcome("duplicate", "resume", key, reason), None
    entry = _entry(tx, _stream(resume.instrument), _stamped(resume, clock), {}, clock)
    return Outcome("applied", "resume", key), WriteSet(
        entry, (PutHalt(resume.account, resume.instrument, None),)
    )


def reconcile(
    tx: UnitOfWork, check: Reconcile, clock: Clock, *, first_of_run: bool | None = None
) -> Decided:
    """Compare one (account, instrument, position side) with the broker and apply the
    check's policy; journaled in the instrument's stream.

    The first check of a run records the run's name (a name is used once). A live run
    knows which check is its first (``first_of_run``); replay asks whether the journal
    recorded the run before this entry."""
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
        return _refused("reconcile", key, decision.reason)
    effects = reconcile_effects(decision)
    entry = _entry(tx, _stream(check.instrument), check, effects, clock)
    if first_of_run is None:
        first_of_run = not tx.run_seen(check.run)
    write_set = reconcile_write_set(entry, decision, first_of_run=first_of_run)
    if decision.halt:
        state = HaltState(
            check.ts,
            f"reconciliation {check.run}: {decision.check.kind} on {check.position_side} "
            f"(ledger {fmt(decision.check.ledger_quantity)}, broker "
            f"{fmt(decision.check.broker_quantity)})",
        )
        halted = PutHalt(check.account, check.instrument, state)
        write_set = write_set._replace(changes=(*write_set.changes, halted))
    if _guarded(book):
        out = Protect(book, entry.version, decision.slots).finish()
        write_set = _with(write_set, out, None, effects)
    return Outcome("applied", "reconcile", key, effects=effects), write_set


# -- brackets, commands and sweeps (docs/brackets.md) -----------------------------------


def _bracket(tx: UnitOfWork, item: SetBracket, clock: Clock) -> Decided:
    key_text = describe(item)
    account = _require_account(tx, item.account)
    instrument = _require_instrument(tx, item.instrument)
    if tx.strategy(item.strategy) is None:
        raise InvalidInput(f"unknown strategy {item.strategy}: register it first")
    side = account.resolve_position_side(item.position_side)
    book = tx.book(item.instrument)
    key = book.key(item.account, item.strategy, side)
    slot = book.slot(key)
    current = book.brackets.get(key)
    version = book.version + 1
    protect = Protect(book, version)
    where = f"{item.account}/{item.instrument}/{side}"
    spec = item.bracket
    stamped = _stamped(item, clock)
    if spec is None:
        if current is None:
            return Outcome(
                "duplicate", "bracket", key_text, f"{item.strategy} has no bracket on {where}"
            ), None
        protect.clear_bracket(key)
    else:
        if slot.direction is Direction.FLAT:
            raise InvalidInput(
                f"{item.strategy} holds no position on {where}: a bracket protects an open "
                "position (send it with the entry order instead: `bracket` on the order line)"
            )
        for leg in (spec.take_profit, spec.stop_loss):
            for price in () if leg is None else (leg.price, leg.stop_price):
                problem = None if price is None else instrument.price_problem(price)
                if problem is not None:
                    raise InvalidInput(problem)
        _check_bracket_prices(spec.take_profit, spec.stop_loss, slot.direction)
        if (
            current is not None
            and current.spec == spec
            and item.bracket_id
            in (
                None,
                current.bracket_id,
            )
        ):
            if not current.failed:
                reason = (
                    f"{item.strategy}'s bracket {current.bracket_id} on {where} is already this"
                )
                return Outcome("duplicate", "bracket", key_text, reason), None
            bracket_id = current.bracket_id  # set again: the refused legs go out again
        elif current is not None and item.bracket_id == current.bracket_id:
            raise InvalidInput(
                f"bracket_id {current.bracket_id} is {item.strategy}'s bracket on {where} "
                "already: a new bracket needs a new id (or none)"
            )
        elif item.bracket_id is not None:
            bracket_id = item.bracket_id
        else:
            digest = hashlib.sha256(f"{item.instrument}\n{version}".encode()).hexdigest()
            bracket_id = f"br-{digest[:20]}"
        stamped = replace(stamped, bracket_id=bracket_id)
        protect.set_bracket(Bracket(bracket_id, key, spec, slot.direction))
    out = protect.finish()
    effects = _with_commands({}, out)
    entry = _entry(tx, _stream(item.instrument), stamped, effects, clock)
    write_set = protected(WriteSet(entry, ()), out, None)
    return Outcome("applied", "bracket", key_text, effects=effects), write_set


def _check_bracket_prices(take_profit: Any, stop_loss: Any, direction: Direction) -> None:
    """A take-profit beyond the stop-loss, on the side the position gains."""
    if take_profit is None or stop_loss is None:
        return
    target, stop = take_profit.price, stop_loss.stop_price
    wrong = target <= stop if direction is Direction.LONG else target >= stop
    if wrong:
        relation = "above" if direction is Direction.LONG else "below"
        raise InvalidInput(
            f"take_profit {fmt(target)} must be {relation} stop_loss {fmt(stop)} for a "
            f"{direction} position"
        )


def _settle(
    tx: UnitOfWork, item: CommandAck | CommandFailed, clock: Clock, replaying: bool
) -> Decided:
    """An outbox command acked or failed: the command's row is settled, and the exit order
    it concerns (if the ledger still watches it) moves on, journaled."""
    acked = isinstance(item, CommandAck)
    kind = "command_ack" if acked else "command_failed"
    status = "acked" if acked else "failed"
    key = item.command_id
    if not replaying:
        found = tx.command(item.command_id)
        if found is None:
            raise InvalidInput(f"unknown command {item.command_id}")
        if found.status == status:
            return Outcome("duplicate", kind, key, f"command {key} is already {status}"), None
        if found.status in ("acked", "failed"):
            raise InvalidInput(f"command {key} is already {found.status}")
        payload = json.loads(found.payload)
        total = payload.get("quantity")
        # (A place's client order id is its command id.)
        target = str(payload.get("client_order_id", found.command_id))
        filled_in = {
            "instrument": found.instrument,
            "kind": found.kind,
            "client_order_id": target,
            "quantity": None if total is None else Decimal(total),
        }
        for name, value in filled_in.items():
            given = getattr(item, name)
            if given is not None and given != value:
                raise InvalidInput(f"{name} {given} contradicts command {key}'s {value}")
        item = replace(
            item,
            ts=item.ts if item.ts is not None else clock(),
            instrument=found.instrument,
            kind=found.kind,
            client_order_id=target,
            quantity=None if total is None else Decimal(total),
        )
    if item.instrument is None or item.kind is None or item.client_order_id is None:
        raise InvalidInput(f"{kind} {key} does not say which command it settles")
    assert item.ts is not None
    settle = SettleCommand(
        key,
        status,
        item.broker_order_id if isinstance(item, CommandAck) else None,
        None if isinstance(item, CommandAck) else item.reason,
        item.ts,
    )
    book = tx.book(item.instrument)
    protect = Protect(book, book.version + 1)
    reason = None if isinstance(item, CommandAck) else item.reason
    if not protect.settled(item.kind, item.client_order_id, item.quantity, acked, reason):
        # It concerns no order the ledger watches any more: nothing to journal.
        why = f"order {item.client_order_id} is no longer watched"
        return Outcome("applied", kind, key, why), WriteSet(None, (settle,))
    out = protect.finish()
    effects = _with_commands({}, out)
    entry = _entry(tx, _stream(item.instrument), item, effects, clock)
    write_set = protected(WriteSet(entry, (settle,)), out, None)
    return Outcome("applied", kind, key, effects=effects), write_set


def _sweep(tx: UnitOfWork, item: Sweep, clock: Clock) -> Decided:
    """Look at every exit order of an instrument again, stuck ones included."""
    _require_instrument(tx, item.instrument)
    book = tx.book(item.instrument)
    out = Protect(book, book.version + 1).finish(sweep=True)
    if not out:
        return Outcome(
            "duplicate", "sweep", item.instrument, "every exit order fits its slot"
        ), None
    effects = _with_commands({}, out)
    entry = _entry(tx, _stream(item.instrument), _stamped(item, clock), effects, clock)
    return Outcome("applied", "sweep", item.instrument, effects=effects), protected(
        WriteSet(entry, ()), out, None
    )
