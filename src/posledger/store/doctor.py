"""``posledger doctor``: an integrity report over a ledger database.

Each check reads the stored tables (SQLAlchemy Core, aggregating in SQL where the database
can do it exactly) and reports what it finds as :class:`Finding` values: an ``error`` means
the books contradict themselves or the ledger's rules, a ``warning`` something a trader
should look at, an ``info`` something allowed that is worth knowing. Nothing is changed.

Amounts are summed exactly: by the database on PostgreSQL and MariaDB (``NUMERIC``), and
in Python on SQLite, which stores amounts as text and would sum them as floats.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, FromClause, and_, func, select
from sqlalchemy.sql.elements import ColumnElement

from ..domain.enums import EXTERNAL
from ..domain.numbers import ZERO, exact, fmt
from ..ports import DoctorReport, Finding
from . import schema as s
from .database import Database
from .reads import SqlReads

__all__ = ["CHECKS", "run_doctor"]

CHECKS = (
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
"""At most this many journal gaps per stream (and exec ids per order) are spelt out."""

_VERIFY = "run `posledger verify` to compare the stored books with a replay of the journal"
_REBUILD = "and, if the journal replays cleanly, `posledger rebuild` to rewrite them from it"


def run_doctor(database: Database) -> DoctorReport:
    """Run every check of :data:`CHECKS` over ``database``; change nothing."""
    report = DoctorReport()
    with exact(), _snapshot(database) as conn:
        reader = _Reader(conn, database.dialect)
        for check, run in _SQL_CHECKS:
            found = run(reader)
            # Stable: by subject, and within a subject in the order the check found them.
            found.sort(key=lambda finding: finding.subject)
            report.findings.extend(found)
            report.checks_run.append(check)
    report.findings.extend(_invariants(database))
    report.checks_run.append("invariants")
    return report


# -- reading ------------------------------------------------------------------------------


@contextmanager
def _snapshot(database: Database) -> Iterator[Connection]:
    """One read transaction for every SQL check, so that they see one state of the books
    while writers go on (REPEATABLE READ is a snapshot on PostgreSQL and InnoDB; an SQLite
    read transaction is one by nature)."""
    with database.engine.connect() as conn:
        if database.dialect != "sqlite":
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin() as transaction:
            try:
                yield conn
            finally:
                transaction.rollback()


Group = tuple[tuple[Any, ...], Decimal, int]
"""(the group's key values, the exact sum of its amounts, how many rows it has)."""


class _Reader:
    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self.sqlite = dialect == "sqlite"

    def rows(self, query: Any) -> list[Any]:
        return list(self.conn.execute(query))

    def sums(
        self,
        keys: Sequence[ColumnElement[Any]],
        amount: ColumnElement[Decimal],
        source: FromClause,
        where: ColumnElement[bool] | None = None,
        exceeding: int | None = None,
    ) -> list[Group]:
        """The exact sum and count of ``amount`` per group of ``keys``, in key order.

        ``exceeding``: keep only the groups whose sum exceeds ``keys[exceeding]``.
        """
        if not self.sqlite:
            query = (
                select(*keys, func.sum(amount), func.count())
                .select_from(source)
                .group_by(*keys)
                .order_by(*keys)
            )
            if where is not None:
                query = query.where(where)
            if exceeding is not None:
                query = query.having(func.sum(amount) > keys[exceeding])
            return [(tuple(row[:-2]), row[-2], int(row[-1])) for row in self.conn.execute(query)]
        # SQLite would sum the amounts' text as floats: stream them in key order and add
        # them up here, exactly, one group at a time.
        query = select(*keys, amount).select_from(source).order_by(*keys)
        if where is not None:
            query = query.where(where)
        width = len(keys)
        groups: list[Group] = []
        result = self.conn.execute(query.execution_options(yield_per=5000))
        for key, members in itertools.groupby(result, key=lambda row: tuple(row[:width])):
            total = ZERO
            count = 0
            for row in members:
                total += row[width]
                count += 1
            if exceeding is None or total > key[exceeding]:
                groups.append((key, total, count))
        return groups


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


# -- 1. one open trade per slot ---------------------------------------------------------------


def _duplicate_open_trades(db: _Reader) -> list[Finding]:
    tr = s.trades
    keys = (tr.c.account, tr.c.instrument, tr.c.strategy, tr.c.position_side)
    query = (
        select(*keys, func.count())
        .where(tr.c.status == "open")
        .group_by(*keys)
        .having(func.count() > 1)
        .order_by(*keys)
    )
    findings: list[Finding] = []
    for account, instrument, strategy, side, _count in db.rows(query):
        ids = [
            int(trade_id)
            for (trade_id,) in db.rows(
                select(tr.c.trade_id)
                .where(
                    tr.c.status == "open",
                    tr.c.account == account,
                    tr.c.instrument == instrument,
                    tr.c.strategy == strategy,
                    tr.c.position_side == side,
                )
                .order_by(tr.c.trade_id)
            )
        ]
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


def _slot_fills_mismatch(db: _Reader) -> list[Finding]:
    tr, tf, sl = s.trades, s.trade_fills, s.slots
    trade_keys = (tr.c.account, tr.c.instrument, tr.c.strategy, tr.c.position_side)
    booked = {
        key: (total, count)
        for key, total, count in db.sums(
            trade_keys, tf.c.delta, tf.join(tr, tr.c.trade_id == tf.c.trade_id)
        )
    }
    query = (
        select(
            sl.c.account,
            sl.c.instrument,
            sl.c.strategy,
            sl.c.position_side,
            sl.c.quantity,
            sl.c.trade_id,
            tr.c.trade_id,
            tr.c.status,
            *trade_keys,
        )
        .select_from(sl.join(tr, tr.c.trade_id == sl.c.trade_id, isouter=True))
        .order_by(sl.c.account, sl.c.instrument, sl.c.strategy, sl.c.position_side)
    )
    findings: list[Finding] = []
    seen: set[tuple[Any, ...]] = set()
    for row in db.rows(query):
        key = tuple(row[:4])
        seen.add(key)
        held: Decimal = row[4]
        total, count = booked.get(key, (ZERO, 0))
        name = _slot_name(*key)
        if held != total:
            findings.append(_mismatch(key, held, total, count, present=True))
        if not held:
            continue
        trade_id, found_id, status, trade_key = row[5], row[6], row[7], tuple(row[8:])
        problem = None
        if trade_id is None:
            problem = "points at no trade"
        elif found_id is None:
            problem = f"points at trade {trade_id}, which does not exist"
        elif status != "open":
            problem = f"points at trade {trade_id}, which is {status}"
        elif trade_key != key:
            problem = f"points at trade {trade_id}, which is {_slot_name(*trade_key)}'s"
        if problem is not None:
            findings.append(
                Finding(
                    "slot_fills_mismatch",
                    "error",
                    name,
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
                        "trade_status": status,
                    },
                )
            )
    for key, (total, count) in booked.items():
        if key not in seen and total:
            findings.append(_mismatch(key, ZERO, total, count, present=False))
    return findings


def _mismatch(
    key: tuple[Any, ...], held: Decimal, total: Decimal, count: int, *, present: bool
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


def _journal_gap(db: _Reader) -> list[Finding]:
    jr = s.journal
    findings: list[Finding] = []
    per_stream = db.rows(
        select(
            jr.c.stream,
            func.count(),
            func.count(jr.c.version.distinct()),
            func.min(jr.c.version),
            func.max(jr.c.version),
        )
        .group_by(jr.c.stream)
        .order_by(jr.c.stream)
    )
    top: dict[str, int] = {}
    for stream, count, distinct, low, high in per_stream:
        top[stream] = int(high)
        if low == 1 and high == count == distinct:
            continue
        findings.extend(_version_problems(db, stream, int(count), int(high)))
    if not db.sqlite:
        # Server writers number a stream's entries from its row in ``streams`` (SQLite's
        # writer reads the journal instead and never keeps that table up to date).
        stored = {stream: int(version) for stream, version in db.rows(select(s.streams))}
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
    else:
        findings.extend(_seq_gaps(db))
    return findings


def _version_problems(db: _Reader, stream: str, count: int, high: int) -> list[Finding]:
    jr = s.journal
    ordered = (
        select(
            jr.c.version.label("version"),
            func.lag(jr.c.version).over(order_by=jr.c.version).label("previous"),
        )
        .where(jr.c.stream == stream)
        .subquery()
    )
    query = (
        select(ordered.c.version, ordered.c.previous)
        .where(ordered.c.version - func.coalesce(ordered.c.previous, 0) != 1)
        .order_by(ordered.c.version)
        .limit(MAX_LISTED + 1)
    )
    found = db.rows(query)
    findings: list[Finding] = []
    for version, previous in found[:MAX_LISTED]:
        version = int(version)
        before = 0 if previous is None else int(previous)
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


def _seq_gaps(db: _Reader) -> list[Finding]:
    """SQLite numbers journal entries one after the other under its write lock, so a gap
    there means entries were removed. (Server sequences skip numbers on every rollback:
    there a gap means nothing.)"""
    jr = s.journal
    ordered = select(
        jr.c.seq.label("seq"), func.lag(jr.c.seq).over(order_by=jr.c.seq).label("previous")
    ).subquery()
    query = (
        select(ordered.c.seq, ordered.c.previous)
        .where(ordered.c.seq - func.coalesce(ordered.c.previous, 0) > 1)
        .order_by(ordered.c.seq)
        .limit(MAX_LISTED + 1)
    )
    found = db.rows(query)
    findings = []
    for seq, previous in found[:MAX_LISTED]:
        first, last = (0 if previous is None else int(previous)) + 1, int(seq) - 1
        numbers = f"number {first}" if first == last else f"numbers {first} to {last}"
        findings.append(
            Finding(
                "journal_gap",
                "warning",
                "journal",
                f"the journal has no entry with {numbers}; on SQLite entries are numbered "
                "without gaps, so some were probably deleted. Check the streams' versions "
                "above, and restore from a backup if entries are missing.",
                {"missing": [first, last]},
            )
        )
    if len(found) > MAX_LISTED:
        findings.append(
            Finding(
                "journal_gap",
                "warning",
                "journal",
                f"the journal has more gaps in its numbers than the {MAX_LISTED} listed.",
                {"listed": MAX_LISTED},
            )
        )
    return findings


# -- 4. fills booked away from their order's strategy ----------------------------------------


def _fill_order_other_strategy(db: _Reader) -> list[Finding]:
    fl, od = s.fills, s.orders
    after = fl.c.seq > od.c.seq
    keys = (
        od.c.client_order_id,
        od.c.strategy,
        od.c.seq,
        fl.c.account,
        fl.c.instrument,
        fl.c.strategy,
        fl.c.side,
        fl.c.position_side,
        after,
    )
    source = fl.join(
        od, and_(od.c.client_order_id == fl.c.client_order_id, od.c.account == fl.c.account)
    )
    groups = db.sums(keys, fl.c.quantity, source, where=fl.c.strategy != od.c.strategy)
    findings: list[Finding] = []
    for key, total, count in groups:
        cid, owner, order_seq, account, instrument, booked_to, side, position_side, late = key
        is_error = bool(late)
        exec_ids = [
            exec_id
            for (exec_id,) in db.rows(
                select(fl.c.exec_id)
                .where(
                    fl.c.client_order_id == cid,
                    fl.c.account == account,
                    fl.c.strategy == booked_to,
                    fl.c.side == side,
                    fl.c.position_side == position_side,
                    (fl.c.seq > order_seq) if is_error else (fl.c.seq <= order_seq),
                )
                .order_by(fl.c.seq)
                .limit(MAX_LISTED)
            )
        ]
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
                    "position_side": position_side,
                    "quantity": fmt(total),
                    "fills": count,
                    "exec_ids": exec_ids,
                    "registered_after_fills": not is_error,
                },
            )
        )
    return findings


# -- 5. orders filled beyond their quantity -------------------------------------------------


def _order_overfilled(db: _Reader) -> list[Finding]:
    fl, od = s.fills, s.orders
    keys = (od.c.client_order_id, od.c.account, od.c.instrument, od.c.strategy, od.c.quantity)
    source = fl.join(
        od, and_(od.c.client_order_id == fl.c.client_order_id, od.c.account == fl.c.account)
    )
    findings: list[Finding] = []
    for key, total, count in db.sums(keys, fl.c.quantity, source, exceeding=4):
        cid, account, instrument, strategy, ordered = key
        findings.append(
            Finding(
                "order_overfilled",
                "error",
                f"order {cid}",
                f"order {cid} ({strategy}, {fmt(ordered)} {instrument} on {account}) has "
                f"{_plural(count, 'fill')} for {fmt(total)}, {fmt(total - ordered)} more "
                "than it asked for: a fill may have been sent twice under different exec "
                "ids, or the order was changed at the broker without the ledger knowing. "
                "Compare with the broker's executions and positions.",
                {
                    "client_order_id": cid,
                    "account": account,
                    "instrument": instrument,
                    "strategy": strategy,
                    "ordered": fmt(ordered),
                    "filled": fmt(total),
                    "excess": fmt(total - ordered),
                    "fills": count,
                },
            )
        )
    return findings


# -- 6. instruments several strategies trade on one account -----------------------------------


def _shared_instrument(db: _Reader) -> list[Finding]:
    fl = s.fills
    query = (
        select(fl.c.account, fl.c.instrument, fl.c.strategy)
        .where(fl.c.strategy != EXTERNAL)
        .distinct()
        .order_by(fl.c.account, fl.c.instrument, fl.c.strategy)
    )
    traders: dict[tuple[str, str], set[str]] = defaultdict(set)
    for account, instrument, strategy in db.rows(query):
        traders[(account, instrument)].add(strategy)
    findings: list[Finding] = []
    for (account, instrument), names in traders.items():
        if len(names) < 2:
            continue
        listed = sorted(names)
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


def _external_position(db: _Reader) -> list[Finding]:
    sl = s.slots
    query = (
        select(sl.c.account, sl.c.instrument, sl.c.position_side, sl.c.quantity, sl.c.avg_entry)
        .where(sl.c.strategy == EXTERNAL)
        .order_by(sl.c.account, sl.c.instrument, sl.c.position_side)
    )
    findings: list[Finding] = []
    for account, instrument, side, quantity, avg_entry in db.rows(query):
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


def _invariants(database: Database) -> list[Finding]:
    try:
        problems = SqlReads(database.engine).invariant_problems()
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


_SQL_CHECKS: tuple[tuple[str, Callable[[_Reader], list[Finding]]], ...] = (
    ("duplicate_open_trades", _duplicate_open_trades),
    ("slot_fills_mismatch", _slot_fills_mismatch),
    ("journal_gap", _journal_gap),
    ("fill_order_other_strategy", _fill_order_other_strategy),
    ("order_overfilled", _order_overfilled),
    ("shared_instrument", _shared_instrument),
    ("external_position", _external_position),
)
assert (*(check for check, _ in _SQL_CHECKS), "invariants") == CHECKS
