"""From a decision to the write set that stores it: the one projection code.

The writer (handlers applying live inputs) and replay (verify, rebuild) both turn
decisions into write sets here, so a replayed journal writes exactly what was written.
"""

from __future__ import annotations

from ..domain.brackets import Protection
from ..domain.decisions import FillDecision, MarkDecision, ReconcileDecision, TransferDecision
from ..domain.enums import EXTERNAL
from ..domain.inputs import Transfer
from ..domain.writeset import (
    AddAdjustment,
    AddAnomalies,
    AddCheck,
    AddFill,
    AddLegs,
    AddRun,
    AddTransfer,
    Change,
    JournalEntry,
    PutBracket,
    PutExit,
    PutMark,
    PutOrder,
    WriteSet,
)

__all__ = [
    "commands_effect",
    "fill_write_set",
    "mark_write_set",
    "protected",
    "reconcile_write_set",
    "transfer_write_set",
]


def fill_write_set(entry: JournalEntry, decision: FillDecision, digest: str) -> WriteSet:
    fill = decision.fill
    changes: list[Change] = [
        AddFill(
            fill,
            decision.strategy,
            decision.position_side,
            decision.intent,
            decision.commission_currency,
            digest,
        ),
        *decision.slots,
        *decision.trades,
        AddLegs(decision.legs, fill.account, fill.exec_id, fill.ts),
    ]
    if decision.anomalies:
        changes.append(AddAnomalies(decision.anomalies, fill.exec_id))
    return WriteSet(entry, tuple(changes))


def mark_write_set(entry: JournalEntry, decision: MarkDecision) -> WriteSet:
    mark = decision.mark
    return WriteSet(entry, (PutMark(mark.instrument, mark.price, decision.ts), *decision.trades))


def transfer_write_set(
    entry: JournalEntry, decision: TransferDecision, digest: str | None
) -> WriteSet:
    transfer = decision.transfer
    assert transfer.ts is not None
    return WriteSet(
        entry,
        (
            AddTransfer(transfer, decision.position_side, decision.price, "transfer", digest),
            *decision.slots,
            *decision.trades,
            AddLegs(decision.legs, transfer.account, None, transfer.ts),
        ),
    )


def reconcile_write_set(
    entry: JournalEntry, decision: ReconcileDecision, first_of_run: bool
) -> WriteSet:
    """``first_of_run``: this check is the first its run records (it takes the run's name)."""
    rec = decision.reconcile
    changes: list[Change] = []
    if first_of_run:
        changes.append(AddRun(rec.run, rec.ts))
    changes.append(AddCheck(rec, decision.check, decision.orphan))
    if decision.adjustment is not None:
        assert decision.adjustment_price is not None
        changes.append(AddAdjustment(rec, decision.adjustment, decision.adjustment_price))
    orphan = decision.orphan
    if orphan is not None and orphan.strategy is not None:
        assert orphan.price is not None
        adopted = Transfer(
            account=rec.account,
            instrument=rec.instrument,
            from_strategy=EXTERNAL,
            to_strategy=orphan.strategy,
            quantity=orphan.quantity.copy_abs(),
            position_side=rec.position_side,
            price=orphan.price,
            ts=rec.ts,
        )
        changes.append(AddTransfer(adopted, rec.position_side, orphan.price, "adopt_orphans", None))
    changes.extend(decision.slots)
    changes.extend(decision.trades)
    if decision.legs:
        changes.append(AddLegs(decision.legs, rec.account, None, rec.ts))
    return WriteSet(entry, tuple(changes))


def commands_effect(out: Protection) -> list[list[str]]:
    """The commands a protection issued, as the journal's effects record them (command id,
    kind, client order id): replay issues the same, and verify compares them."""
    return [
        [command.command_id, command.kind, target]
        for command, target in zip(out.commands, out.targets, strict=True)
    ]


def protected(write_set: WriteSet, out: Protection, exec_id: str | None) -> WriteSet:
    """``write_set`` with what a protection changed: the leg orders it registered or
    changed, the watched exits and brackets, its anomalies (with the input's own, in one
    list) and its commands."""
    changes: list[Change] = []
    anomalies = tuple(out.anomalies)
    for change in write_set.changes:
        if type(change) is AddAnomalies:
            assert isinstance(change, AddAnomalies)
            anomalies = change.anomalies + anomalies
            continue
        changes.append(change)
    changes.extend(PutOrder(order, status) for order, status in out.orders.values())
    changes.extend(PutExit(cid, found) for cid, found in out.exits.items())
    changes.extend(PutBracket(key, bracket) for key, bracket in out.brackets.items())
    if anomalies:
        changes.append(AddAnomalies(anomalies, exec_id))
    return WriteSet(write_set.entry, tuple(changes), write_set.commands + tuple(out.commands))
