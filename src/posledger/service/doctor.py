"""``posledger doctor``: an integrity report over a ledger's store.

The store answers plain questions (:meth:`posledger.ports.Store.inspect`, all in one read
transaction); each check here turns the answers into :class:`Finding` values: an
``error`` means the books contradict themselves or the ledger's rules, or the storage is
damaged; a ``warning`` something a trader should look at; an ``info`` something allowed
that is worth knowing. Nothing in the books is changed. When the storage is found damaged
the store is marked so (:meth:`~posledger.ports.Store.mark_damaged`), and every writer
refuses from then on, until ``clear_damage`` after a repair.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ..domain.enums import EXTERNAL
from ..domain.numbers import ZERO, exact, fmt
from ..domain.timestamps import format_ts
from ..errors import DamagedDatabase
from ..ports import DamageMark, DoctorReport, Finding, Inspection, SlotKey4, Store

__all__ = ["CHECKS", "MAX_LISTED", "run_doctor"]

CHECKS = (
    "storage",
    "duplicate_open_trades",
    "slot_fills_mismatch",
    "journal_gap",
    "fill_order_other_strategy",
    "order_overfilled",
    "shared_instrument",
    "external_position",
    "invariants",
)
"""Every check's id, in the order the checks run and their findings are listed."""

MAX_LISTED = 20
"""At most this many journal gaps per stream (and exec ids per order, and storage
problems) are spelt out."""

_VERIFY = "run `posledger verify` to compare the stored books with a replay of the journal"
_REBUILD = "and, if the journal replays cleanly, `posledger rebuild` to rewrite them from it"
_REPAIR = (
    "Restore the database from a backup and ingest again what came after the backup (fills "
    "already there are skipped), or, if only projections are damaged, recover the file and "
    "run `posledger rebuild`; once it is repaired, `posledger doctor --clear-damage` lifts "
    "the mark (see docs/doctor.md)."
)


def run_doctor(store: Store, *, clear_damage: bool = False) -> DoctorReport:
    """Run every check of :data:`CHECKS` over ``store``; change nothing in the books.

    Damaged storage (the database's own check, or a read it refuses) is an error of the
    ``storage`` check, and marks the store damaged; a check whose read is refused is left
    out of ``checks_run``, and the others still run. ``clear_damage`` first lifts the mark
    (after a repair): if the damage is still there, it is found and marked again.
    """
    cleared = store.clear_damage() if clear_damage else None
    found: dict[str, list[Finding]] = {}
    checks_run: list[str] = []
    damage: list[str] = []
    """What shows the storage is damaged now."""
    mark: DamageMark | None = None
    with exact(), store.inspect() as facts:
        try:
            mark = facts.damage_mark()
        except DamagedDatabase as exc:
            damage.append(f"the damage mark could not be read: {exc}")
        try:
            damage.extend(facts.storage_problems() or ())
        except DamagedDatabase as exc:
            damage.append(f"the storage check could not run: {exc}")
        checks_run.append("storage")
        for check, run in _CHECKS:
            try:
                findings = run(facts)
            except DamagedDatabase as exc:
                # The other checks may read tables that are intact: they still run.
                damage.append(f"the {check} check's read failed: {exc}")
                continue
            # Stable: by subject, and within a subject in the order the check found them.
            findings.sort(key=lambda finding: finding.subject)
            found[check] = findings
            checks_run.append(check)
    marked = False
    if damage and mark is None:
        marked = store.mark_damaged("doctor", "; ".join(damage[:MAX_LISTED]))
    storage = [] if cleared is None else [_cleared(cleared)]
    if damage:
        skipped = [check for check in CHECKS if check not in checks_run]
        storage.append(_damaged(damage, skipped, mark, marked))
    elif mark is not None:
        storage.append(_marked(mark))
    found["storage"] = storage
    return DoctorReport(
        findings=[finding for check in CHECKS for finding in found.get(check, ())],
        checks_run=checks_run,
    )


def _slot_name(account: str, instrument: str, strategy: str, position_side: str) -> str:
    return f"{account}/{instrument}/{strategy}/{position_side}"


def _plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {many or word + 's'}"


def _signed(quantity: Decimal) -> str:
    """A slot's quantity as a trader says it: ``long 2``, ``short 1``, ``flat``."""
    if quantity > 0:
        return f"long {fmt(quantity)}"
    if quantity < 0:
        return f"short {fmt(-quantity)}"
    return "flat"


def _when(ns: int) -> str:
    return format_ts(ns - ns % 1_000_000_000)


# -- 0. the storage ------------------------------------------------------------------------------


def _damaged(
    problems: list[str], skipped: list[str], mark: DamageMark | None, marked: bool
) -> Finding:
    """Damage found now; ``mark``: the one found before, ``marked``: marked now."""
    shown = "; ".join(problems[:MAX_LISTED])
    more = len(problems) - MAX_LISTED
    if more > 0:
        shown += f" (and {more} more)"
    data: dict[str, Any] = {"problems": problems[:MAX_LISTED], "not_run": skipped}
    if mark is not None:
        data.update(marked=True, **_mark_data(mark))
        stop = (
            f"The database was marked damaged at {_when(mark.found_at)} (by "
            f"{_who(mark.found_by)}): every writer refuses until the mark is lifted."
        )
    elif marked:
        data["marked"] = True
        stop = "The database is marked damaged: every writer refuses until the mark is lifted."
    else:
        data["marked"] = False
        stop = (
            "Marking the database damaged failed too (it refused the write), so writers are "
            "not stopped: stop them yourself."
        )
    not_run = f" Checks not completed: {', '.join(skipped)}." if skipped else ""
    return Finding(
        "storage",
        "error",
        "database",
        f"the database's storage is damaged: {shown}.{not_run} {stop} {_REPAIR}",
        data,
    )


def _marked(mark: DamageMark) -> Finding:
    """A mark the checks find no damage behind now (repaired, or not seen by this check:
    a server's damage shows only in the errors it raises)."""
    return Finding(
        "storage",
        "error",
        "database",
        f"the database is marked damaged: {_who(mark.found_by)} found at "
        f"{_when(mark.found_at)}: {mark.detail}. Every writer refuses until the mark is "
        "lifted. The checks find no damage now: if the database was repaired, `posledger "
        "doctor --clear-damage` lifts the mark.",
        {"marked": True, **_mark_data(mark)},
    )


def _cleared(mark: DamageMark) -> Finding:
    return Finding(
        "storage",
        "info",
        "database",
        f"the damage mark ({_who(mark.found_by)} at {_when(mark.found_at)}: {mark.detail}) "
        "was lifted: writers may write again, unless the checks find the damage still "
        "there.",
        _mark_data(mark),
    )


def _who(found_by: str) -> str:
    return "posledger doctor" if found_by == "doctor" else f"a {found_by}"


def _mark_data(mark: DamageMark) -> dict[str, Any]:
    return {"found_at": _when(mark.found_at), "found_by": mark.found_by, "detail": mark.detail}


# -- 1. one open trade per slot ---------------------------------------------------------------


def _duplicate_open_trades(facts: Inspection) -> list[Finding]:
    findings: list[Finding] = []
    for (account, instrument, strategy, side), ids in facts.open_trades_per_slot():
        shown = ", ".join(str(trade_id) for trade_id in ids)
        findings.append(
            Finding(
                "duplicate_open_trades",
                "error",
                _slot_name(account, instrument, strategy, side),
                f"{strategy}'s slot in {instrument} on {account} ({side}) has {len(ids)} "
                f"open trades ({shown}); a slot has one open trade at a time, so its trade "
                f"history is wrong: {_VERIFY}, {_REBUILD}.",
                {
                    "account": account,
                    "instrument": instrument,
                    "strategy": strategy,
                    "position_side": side,
                    "trade_ids": ids,
                },
            )
        )
    return findings


# -- 2. slots against their trades' fills -------------------------------------------------


def _slot_fills_mismatch(facts: Inspection) -> list[Finding]:
    booked = facts.trade_legs_per_slot()
    findings: list[Finding] = []
    seen: set[SlotKey4] = set()
    for slot in facts.slots():
        key, held = slot.key, slot.quantity
        seen.add(key)
        total, count = booked.get(key, (ZERO, 0))
        if held != total:
            findings.append(_mismatch(key, held, total, count, present=True))
        if not held:
            continue
        trade_id = slot.trade_id
        problem = None
        if trade_id is None:
            problem = "points at no trade"
        elif not slot.trade_found:
            problem = f"points at trade {trade_id}, which does not exist"
        elif slot.trade_status != "open":
            problem = f"points at trade {trade_id}, which is {slot.trade_status}"
        elif slot.trade_key != key:
            assert slot.trade_key is not None
            problem = f"points at trade {trade_id}, which is {_slot_name(*slot.trade_key)}'s"
        if problem is not None:
            findings.append(
                Finding(
                    "slot_fills_mismatch",
                    "error",
                    _slot_name(*key),
                    f"{key[2]}'s slot in {key[1]} on {key[0]} ({key[3]}) is {_signed(held)} "
                    f"but {problem}; a position that is not flat belongs to an open trade "
                    f"of its own slot: {_VERIFY}, {_REBUILD}.",
                    {
                        "account": key[0],
                        "instrument": key[1],
                        "strategy": key[2],
                        "position_side": key[3],
                        "quantity": fmt(held),
                        "trade_id": trade_id,
                        "trade_status": slot.trade_status,
                    },
                )
            )
    for key, (total, count) in booked.items():
        if key not in seen and total:
            findings.append(_mismatch(key, ZERO, total, count, present=False))
    return findings


def _mismatch(
    key: SlotKey4, held: Decimal, total: Decimal, count: int, *, present: bool
) -> Finding:
    account, instrument, strategy, side = key
    where = f"{strategy}'s slot in {instrument} on {account} ({side})"
    what = f"is {_signed(held)}" if present else "has no row (so it is flat)"
    return Finding(
        "slot_fills_mismatch",
        "error",
        _slot_name(*key),
        f"{where} {what}, but the {_plural(count, 'leg')} of its trades add up to "
        f"{_signed(total)}: the position and its trade history disagree; {_VERIFY}, "
        f"{_REBUILD}.",
        {
            "account": account,
            "instrument": instrument,
            "strategy": strategy,
            "position_side": side,
            "slot_quantity": fmt(held),
            "fills_quantity": fmt(total),
            "difference": fmt(held - total),
            "legs": count,
            "slot_row": present,
        },
    )


# -- 3. the journal -----------------------------------------------------------------------


def _journal_gap(facts: Inspection) -> list[Finding]:
    findings: list[Finding] = []
    top: dict[str, int] = {}
    for stats in facts.journal_streams():
        top[stats.stream] = stats.highest
        if stats.lowest == 1 and stats.highest == stats.entries == stats.distinct_versions:
            continue
        findings.extend(_version_problems(facts, stats.stream, stats.entries, stats.highest))
    stored = facts.stream_versions()
    if stored is not None:
        for stream in sorted(set(stored) | set(top)):
            have, want = stored.get(stream), top.get(stream, 0)
            if have == want:
                continue
            if have is None:
                problem = (
                    f"has no row in the streams table, although the journal holds versions "
                    f"up to {want}: the next input on it would be numbered 1 again and be "
                    f"refused, so nothing more could be booked there"
                )
            else:
                problem = (
                    f"is at version {have} in the streams table but at {want} in the "
                    f"journal: the next input on it would be numbered from the wrong version"
                )
            findings.append(
                Finding(
                    "journal_gap",
                    "error",
                    f"stream {stream}",
                    f"journal stream {stream} {problem}; set streams.version to {want} "
                    "while no writer runs.",
                    {"stream": stream, "streams_version": have, "journal_version": want},
                )
            )
    findings.extend(_seq_gaps(facts))
    return findings


def _version_problems(facts: Inspection, stream: str, count: int, high: int) -> list[Finding]:
    found = facts.version_breaks(stream, MAX_LISTED + 1)
    findings: list[Finding] = []
    for version, previous in found[:MAX_LISTED]:
        before = 0 if previous is None else previous
        data: dict[str, Any] = {"stream": stream, "version": version, "entries": count}
        if version < 1:
            data["invalid"] = version
            what = f"holds version {version}; versions start at 1"
        elif version == before:
            data["repeated"] = version
            what = f"holds version {version} more than once"
        else:
            missing = [before + 1, version - 1]
            data["missing"] = missing
            if missing[0] == missing[1]:
                what = f"lacks version {missing[0]}"
            else:
                what = f"lacks versions {missing[0]} to {missing[1]}"
        findings.append(
            Finding(
                "journal_gap",
                "error",
                f"stream {stream}",
                f"journal stream {stream} {what} (it holds "
                f"{_plural(count, 'entry', 'entries')} up to "
                f"version {high}): journal entries were lost or written twice, and the "
                "journal is the ledger's source of truth. Restore the database from a "
                "backup, or re-ingest the original inputs into a new ledger.",
                data,
            )
        )
    if len(found) > MAX_LISTED:
        findings.append(
            Finding(
                "journal_gap",
                "error",
                f"stream {stream}",
                f"journal stream {stream} has more version gaps or repeats than the "
                f"{MAX_LISTED} listed.",
                {"stream": stream, "listed": MAX_LISTED},
            )
        )
    return findings


def _seq_gaps(facts: Inspection) -> list[Finding]:
    """Where the store numbers journal entries one after the other (SQLite, memory), a
    skipped number is an entry lost: an error, as a stream's missing version is."""
    found = facts.seq_breaks(MAX_LISTED + 1)
    if found is None:
        return []
    findings = []
    for seq, previous in found[:MAX_LISTED]:
        first, last = (0 if previous is None else previous) + 1, seq - 1
        numbers = f"number {first}" if first == last else f"numbers {first} to {last}"
        findings.append(
            Finding(
                "journal_gap",
                "error",
                "journal",
                f"the journal has no entry with {numbers}; entries are numbered here "
                "without gaps, so entries were lost (deleted, or their storage damaged), "
                "and the journal is the ledger's source of truth. Restore the database "
                "from a backup, or re-ingest the original inputs into a new ledger.",
                {"missing": [first, last]},
            )
        )
    if len(found) > MAX_LISTED:
        findings.append(
            Finding(
                "journal_gap",
                "error",
                "journal",
                f"the journal has more gaps in its numbers than the {MAX_LISTED} listed.",
                {"listed": MAX_LISTED},
            )
        )
    return findings


# -- 4. fills booked away from their order's strategy ----------------------------------------


def _fill_order_other_strategy(facts: Inspection) -> list[Finding]:
    findings: list[Finding] = []
    for group in facts.fills_of_other_strategies(MAX_LISTED):
        cid, owner, booked_to = group.client_order_id, group.order_strategy, group.fill_strategy
        account, instrument, side = group.account, group.instrument, group.side
        count, total, is_error = group.fills, group.quantity, group.after_order
        fills = _plural(count, "fill")
        they, were, them = ("it", "was", "it") if count == 1 else ("they", "were", "them")
        moved = f"{fmt(total)} {instrument} ({side})"
        if is_error:
            detail = (
                f"{fills} of order {cid} ({moved} on {account}) arrived after the order was "
                f"registered, yet {they} {were} booked to {booked_to}, not to the order's "
                f"strategy {owner}: the stored books break the rule that a fill belongs to "
                f"its order's strategy; {_VERIFY}, {_REBUILD}."
            )
        else:
            reason = (
                f"no strategy could be shown to own {them}"
                if booked_to == EXTERNAL
                else f"{they} named that strategy"
            )
            detail = (
                f"{fills} of order {cid} ({moved} on {account}) arrived before the order was "
                f"registered, so {they} {were} booked to {booked_to} ({reason}); the order "
                f"says {they} {were} {owner}'s. If so, `posledger transfer` can move "
                f"{fmt(total)} {instrument} from {booked_to} to {owner}; registering orders "
                "before sending them avoids this."
            )
        findings.append(
            Finding(
                "fill_order_other_strategy",
                "error" if is_error else "warning",
                f"order {cid}",
                detail,
                {
                    "client_order_id": cid,
                    "order_strategy": owner,
                    "fill_strategy": booked_to,
                    "account": account,
                    "instrument": instrument,
                    "side": side,
                    "position_side": group.position_side,
                    "quantity": fmt(total),
                    "fills": count,
                    "exec_ids": group.exec_ids,
                    "registered_after_fills": not is_error,
                },
            )
        )
    return findings


# -- 5. orders filled beyond their quantity -------------------------------------------------


def _order_overfilled(facts: Inspection) -> list[Finding]:
    findings: list[Finding] = []
    for order in facts.overfilled_orders():
        cid, ordered, total = order.client_order_id, order.ordered, order.filled
        findings.append(
            Finding(
                "order_overfilled",
                "error",
                f"order {cid}",
                f"order {cid} ({order.strategy}, {fmt(ordered)} {order.instrument} on "
                f"{order.account}) has {_plural(order.fills, 'fill')} for {fmt(total)}, "
                f"{fmt(total - ordered)} more than it asked for: a fill may have been sent "
                "twice under different exec ids, or the order was changed at the broker "
                "without the ledger knowing. Compare with the broker's executions and "
                "positions.",
                {
                    "client_order_id": cid,
                    "account": order.account,
                    "instrument": order.instrument,
                    "strategy": order.strategy,
                    "ordered": fmt(ordered),
                    "filled": fmt(total),
                    "excess": fmt(total - ordered),
                    "fills": order.fills,
                },
            )
        )
    return findings


# -- 6. instruments several strategies trade on one account -----------------------------------


def _shared_instrument(facts: Inspection) -> list[Finding]:
    findings: list[Finding] = []
    for (account, instrument), listed in facts.strategies_per_instrument().items():
        if len(listed) < 2:
            continue
        findings.append(
            Finding(
                "shared_instrument",
                "info",
                f"{account}/{instrument}",
                f"{len(listed)} strategies trade {instrument} on {account}: "
                f"{', '.join(listed)}. That is allowed: each keeps its own slot, and the "
                "broker's position is their sum.",
                {"account": account, "instrument": instrument, "strategies": listed},
            )
        )
    return findings


# -- 7. quantity nobody owns ------------------------------------------------------------------


def _external_position(facts: Inspection) -> list[Finding]:
    findings: list[Finding] = []
    for account, instrument, side, quantity, avg_entry in facts.external_slots():
        if not quantity:
            continue
        findings.append(
            Finding(
                "external_position",
                "warning",
                _slot_name(account, instrument, EXTERNAL, side),
                f"EXTERNAL is {_signed(quantity)} {instrument} on {account} ({side}): "
                "quantity no strategy can be shown to own. If it is a strategy's, move it "
                "with `posledger transfer`; otherwise reconcile the account with the "
                "broker's positions to find out where it comes from.",
                {
                    "account": account,
                    "instrument": instrument,
                    "position_side": side,
                    "quantity": fmt(quantity),
                    "avg_entry": None if avg_entry is None else fmt(avg_entry),
                },
            )
        )
    return findings


# -- 8. the invariants verify checks ---------------------------------------------------------


def _invariants(facts: Inspection) -> list[Finding]:
    try:
        problems = facts.invariant_problems()
    except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
        return [
            Finding(
                "invariants",
                "error",
                "ledger",
                f"the invariants could not be checked, the stored rows do not make sense "
                f"together ({type(exc).__name__}: {exc}); {_VERIFY}.",
                {"exception": type(exc).__name__, "message": str(exc)},
            )
        ]
    return [
        Finding(
            "invariants",
            "error",
            "ledger",
            f"a ledger invariant does not hold: {problem}; {_VERIFY}, {_REBUILD}.",
            {"problem": problem},
        )
        for problem in problems
    ]


_CHECKS: tuple[tuple[str, Callable[[Inspection], list[Finding]]], ...] = (
    ("duplicate_open_trades", _duplicate_open_trades),
    ("slot_fills_mismatch", _slot_fills_mismatch),
    ("journal_gap", _journal_gap),
    ("fill_order_other_strategy", _fill_order_other_strategy),
    ("order_overfilled", _order_overfilled),
    ("shared_instrument", _shared_instrument),
    ("external_position", _external_position),
    ("invariants", _invariants),
)
assert ("storage", *(check for check, _ in _CHECKS)) == CHECKS
