"""The ledger: the public Python API. One method per use case; the CLI is a shell over it.

Where a fill goes: :meth:`Ledger.ingest` reads JSONL lines (``adapters``), and for each
input in a transaction :func:`~.handlers.handle` loads what it needs through the unit of
work, decides with the domain and returns a write set (:mod:`.writesets`), which the unit
of work stages and, at commit, writes (``posledger.store``). Queries read the projections
back (:mod:`.queries`); replay re-applies the journal through the same handlers
(:mod:`.replay`).
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from types import TracebackType
from typing import Any, TypeVar

from ..adapters.jsonl import Line, parse_line, read_lines, storable
from ..adapters.records import encode, parse_record, record_name, record_type, to_record
from ..domain.brackets import POLICIES, plan_exits
from ..domain.decide import mark_problem
from ..domain.enums import EXTERNAL, ReconcilePolicy
from ..domain.inputs import CommandAck, CommandFailed, Fill, Halt, Input, Mark, Resume, Transfer
from ..domain.marks import MarkPolicy, Window
from ..domain.numbers import exact
from ..domain.pnl import PERIODS, parse_groups
from ..domain.refdata import InvalidInput, Order, check_identifier
from ..domain.timestamps import format_ts, next_local_time, now_ns, parse_ts
from ..domain.writeset import AddRejected, Rejected, WriteSet
from ..errors import DatabaseError, NotFound, RebuildError, ReconcileError, UsageError
from ..ports import (
    FATAL,
    RECONNECT,
    CommandRow,
    DoctorReport,
    JournalRow,
    Store,
    SymbolRow,
    UnitOfWork,
)
from ..venues.base import SymbolMap
from . import handlers, keys, scopes
from .handlers import Outcome, handle
from .queries import (
    anomaly_views,
    bracket_views,
    command_views,
    exit_view,
    halt_views,
    journal_views,
    listing_views,
    parse_sort,
    planned_views,
    position_views,
    reconciliation_views,
    reference_views,
    rejected_views,
    trade_views,
    transfer_views,
)
from .reconciliation import (
    DEFAULT_PRICE_TOLERANCE,
    ReconcileReport,
    check_dict,
    new_run_id,
    plan,
    policies,
    read_snapshot,
    validate,
)
from .replay import RebuildReport, VerifyReport, rebuild, replay_prefix, verify
from .reporting import ReportData, pnl_views, report_data, stats_views, window
from .reporting import Window as PnlWindow

__all__ = [
    "LEASE_NS",
    "RETRIES",
    "IngestReport",
    "Ledger",
    "OrderCheck",
    "RebuildError",
    "RebuildReport",
    "ReconcileError",
]

RETRIES = 8
"""Attempts at one transaction before a database error is raised (about 10 s in all)."""
LEASE_NS = 30 * 1_000_000_000
"""How long a claimed outbox command stays with its worker before it is handed out again."""
MAX_REASON = 4000
"""Longest reason kept with a refused input (characters): longer ones are cut."""
MAX_SOURCE = 512
"""Longest source name kept with a refused input (the column's size)."""
CHECKPOINT_EVERY = 2000
"""Journal entries between two checkpoints: the most the ledger as of a time replays
(docs/format.md, As of a time)."""

T = TypeVar("T")


@dataclass
class IngestReport:
    lines: int = 0
    applied: int = 0
    duplicate: int = 0
    rejected: int = 0
    rejections: list[tuple[int, str]] = field(default_factory=list)
    """(line number, reason) of every rejected line."""

    @property
    def ok(self) -> bool:
        return self.rejected == 0

    def count(self, outcome: Outcome) -> None:
        self.lines += 1
        if outcome.status == "applied":
            self.applied += 1
        elif outcome.status == "duplicate":
            self.duplicate += 1
        else:
            self.rejected += 1


@dataclass
class OrderCheck:
    """The pre-trade verdict on an order: allowed, or every reason it is not."""

    allowed: bool
    reasons: list[str]


_KEY_FIELD = {
    "account": "account",
    "instrument": "instrument",
    "strategy": "strategy",
    "order": "client_order_id",
    "cancel": "client_order_id",
    "fill": "exec_id",
    "mark": "instrument",
    "transfer": "instrument",
    "halt": "instrument",
    "resume": "instrument",
    "bracket": "strategy",
    "command_ack": "command_id",
    "command_failed": "command_id",
    "sweep": "instrument",
}


def _raw_digest(raw: str, reason: str) -> str:
    return hashlib.sha256(f"{raw}\n{reason}".encode()).hexdigest()


def _clip(text: str | None, limit: int, keep_end: bool = False) -> str | None:
    if text is None or len(text) <= limit:
        return text
    if keep_end:
        return "…" + text[-(limit - 1) :]
    return text[: limit - 1] + "…"


class Ledger:
    """Positions, P&L and trades of several strategies on shared accounts.

    Every input is applied in its own transaction (or, in :meth:`ingest`, in batches):
    its journal entry and all its effects commit together or not at all.
    """

    def __init__(
        self,
        store: Store,
        clock: Callable[[], int] = now_ns,
        marks: MarkPolicy | None = None,
        checkpoint_every: int = CHECKPOINT_EVERY,
    ) -> None:
        self.store = store
        self._clock = clock
        self._uow = store.unit_of_work()
        self._reads = store.reads()
        self._entries = 0
        """Journal entries added in the current transaction."""
        self.mark_policy = MarkPolicy() if marks is None else marks
        """How often marks kept in memory are written (docs/accounting.md, Marks)."""
        self._windows: dict[str, Window] = {}
        """Each instrument's marks since the last one written, as committed."""
        self._changed_windows: dict[str, Window | None] = {}
        """The windows the current transaction changed (``None``: dropped); they replace
        the committed ones when it commits, and are forgotten when it rolls back."""
        self.checkpoint_every = checkpoint_every
        """Journal entries between checkpoints (0: none are taken; docs/format.md, As of a
        time)."""
        self._next_checkpoint: int | None = None
        self._key: str | None = None
        """The key of the HTTP API the inputs come from (:meth:`acting_for`)."""
        self._acting: str | None = None
        """The key the unit of work records now (a line's own, in :meth:`apply_lines`)."""

    # -- lifecycle ----------------------------------------------------------------------

    def now(self) -> int:
        """The ledger's clock (nanoseconds since the epoch, UTC)."""
        return self._clock()

    def accounts(self, *, mode: str | None = None) -> list[str]:
        """The registered accounts (of ``mode`` only: LIVE, SIM or PAPER)."""
        return [
            str(row["account"])
            for row in self._reads.table("accounts")
            if mode is None or row["mode"] == mode.upper()
        ]

    def close(self) -> None:
        """Write the marks kept in memory, then close the database."""
        try:
            self.flush_marks()
        finally:
            self._uow.close()
            self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------------------

    def _checkpoint(self, seqs: list[int]) -> None:
        """After a commit: save the books when :attr:`checkpoint_every` journal entries
        came since the last checkpoint. A checkpoint is a cache; when the database refuses
        it for a passing reason, the next commit that is due tries again."""
        every = self.checkpoint_every
        if not seqs or every <= 0:
            return
        if self._next_checkpoint is None:
            last = self.store.last_checkpoint()
            if last is None:  # a store that keeps none
                self.checkpoint_every = 0
                return
            self._next_checkpoint = last + every
        if max(seqs) < self._next_checkpoint:
            return
        try:
            taken = self.store.checkpoint(every, self._clock())
        except Exception as exc:
            if self._uow.classify(exc) is None:
                raise
            taken = None
        self._next_checkpoint = (max(seqs) if taken is None else taken) + every

    def _run(self, work: Callable[[UnitOfWork], T]) -> T:
        """:meth:`_transact` for work that journals nothing."""
        return self._transact(work)[0]

    def _transact(self, work: Callable[[UnitOfWork], T]) -> tuple[T, list[int]]:
        """Run ``work`` in one transaction, again if the database says that may succeed.

        The transaction's idempotency key is fixed before the first attempt. A deadlock, a
        lock timeout, a unique key another writer took first, or a lost connection (the
        server restarted) roll the attempt back and run it again, on a fresh connection if
        need be. When the connection is lost while committing, the commit may have happened
        before the reply was lost: the key tells, and what committed is not applied twice.
        Returns the work's result and the journal numbers the transaction's entries got
        (see :func:`numbered`). Other errors, and the last of :data:`RETRIES` failures, are
        raised.
        """
        uow = self._uow
        txid = secrets.token_hex(16)
        reconnecting: Exception | None = None
        for attempt in range(1, RETRIES + 1):
            committing = False
            result: Any = None
            try:
                uow.begin(txid)
                self._acting = self._key
                uow.acting(self._key)
                self._entries = 0
                self._changed_windows = {}
                try:
                    with exact():
                        result = work(uow)
                    committing = True
                    seqs = uow.commit()
                except BaseException:
                    uow.rollback()
                    raise
                self._keep_windows()
                self._checkpoint(seqs)
                return result, seqs
            except Exception as exc:
                cure = uow.classify(exc)
                if cure is None:
                    raise
                if cure == FATAL:
                    raise DatabaseError(f"{self.store.display_url}: {exc}") from exc
                if attempt == RETRIES:
                    also = f" (reconnecting: {reconnecting})" if reconnecting else ""
                    raise DatabaseError(
                        f"{self.store.display_url}: gave up after {attempt} attempts: {exc}{also}"
                    ) from exc
                time.sleep(min(0.05 * 2**attempt, 2.0) * random.uniform(0.5, 1.0))
                if cure == RECONNECT:
                    try:
                        uow.reconnect()
                        reconnecting = None
                        if committing:
                            done = uow.committed(txid)
                            if done is not None:
                                self._keep_windows()
                                self._checkpoint(done)
                                return result, done
                    except Exception as failed:  # the server is still away: try again later
                        if uow.classify(failed) is None:
                            raise
                        reconnecting = failed
        raise AssertionError("unreachable")

    def _stage(self, uow: UnitOfWork, outcome: Outcome, write_set: WriteSet | None) -> Outcome:
        """Add a handler's write set; its outcome gets a stand-in journal number until
        commit gives the real one (see :func:`numbered`)."""
        if write_set is None:
            return outcome
        uow.add(write_set)
        if write_set.entry is None:
            return outcome
        self._entries += 1
        o = outcome
        return Outcome(o.status, o.kind, o.key, o.reason, -self._entries, o.effects)

    def _decide(
        self,
        uow: UnitOfWork,
        item: Input,
        raw: str | None,
        source: str | None,
        line_no: int | None,
    ) -> Outcome:
        if isinstance(item, Mark):
            outcome = self._mark(uow, item)
        else:
            if isinstance(item, Fill | Transfer):
                self._write_window(uow, item.instrument)
            outcome, write_set = handle(uow, item, self._clock)
            outcome = self._stage(uow, outcome, write_set)
        if outcome.status == "rejected":
            assert outcome.reason is not None
            text = raw if raw is not None else encode(to_record(item))
            self._keep(uow, text, outcome.reason, source, line_no)
        return outcome

    # -- marks kept in memory (docs/accounting.md, Marks) --------------------------------

    def _window(self, uow: UnitOfWork, instrument: str) -> Window:
        """The instrument's window as this transaction sees it (a copy it may change)."""
        changed = self._changed_windows
        window = changed.get(instrument)
        if window is None:
            known = None if instrument in changed else self._windows.get(instrument)
            window = Window(instrument, uow.book(instrument)) if known is None else known.copy()
            changed[instrument] = window
        return window

    def _mark(self, uow: UnitOfWork, mark: Mark) -> Outcome:
        """Apply a mark in memory; write its instrument's window when the policy says so."""
        instrument = uow.instrument(mark.instrument)
        now = self._clock()
        if mark.ts is None:
            mark = Mark(mark.instrument, mark.price, now, mark.high, mark.low)
        problem = None if instrument is None else mark_problem(mark, instrument, now)
        if instrument is None or problem is not None:
            # Refused as a written mark would be: the handler says why.
            outcome, write_set = handle(uow, mark, self._clock)
            return self._stage(uow, outcome, write_set)
        window = self._window(uow, mark.instrument)
        duplicate = window.offer(mark)
        if duplicate is not None:
            return Outcome("duplicate", "mark", mark.instrument, duplicate)
        if not window.due(self.mark_policy):
            return Outcome("applied", "mark", mark.instrument)
        return self._write(uow, window)

    def _write(self, uow: UnitOfWork, window: Window) -> Outcome:
        # Marks written from memory record no key: they may hold marks several keys sent.
        uow.acting(None)
        try:
            outcome, write_set = handle(uow, window.take(), self._clock)
            if outcome.status != "applied":
                # Another writer wrote a newer mark meanwhile: start again from the book.
                self._changed_windows[window.instrument] = None
            return self._stage(uow, outcome, write_set)
        finally:
            uow.acting(self._acting)

    def _write_window(self, uow: UnitOfWork, instrument: str) -> None:
        """Write the instrument's unwritten marks before its trades change, then forget
        the window (it is made again from the book at the next mark)."""
        if instrument not in self._windows and instrument not in self._changed_windows:
            return
        window = self._window(uow, instrument)
        if window.count:
            self._write(uow, window)
        self._changed_windows[instrument] = None

    def _keep_windows(self) -> None:
        windows = self._windows
        for instrument, changed in self._changed_windows.items():
            if changed is None:
                windows.pop(instrument, None)
            else:
                windows[instrument] = changed
        self._changed_windows = {}

    def flush_marks(self) -> int:
        """Write every mark kept in memory now (``ingest`` does at its end, ``close`` too);
        returns how many instruments' marks were written."""
        pending = sorted(name for name, window in self._windows.items() if window.count)
        if not pending:
            return 0

        def work(uow: UnitOfWork) -> int:
            for name in pending:
                self._write_window(uow, name)
            return len(pending)

        return self._run(work)

    def _keep(
        self, uow: UnitOfWork, raw: str, reason: str, source: str | None, line_no: int | None
    ) -> None:
        """Keep a refused input for review (once: the same refusal again is not stored)."""
        raw = storable(raw)
        reason = storable(_clip(reason, MAX_REASON) or "")
        shown = _clip(source, MAX_SOURCE, keep_end=True)
        rejected = Rejected(
            self._clock(),
            None if shown is None else storable(shown),
            line_no,
            raw,
            reason,
            _raw_digest(raw, reason),
        )
        uow.add(WriteSet(None, (AddRejected(rejected),)))

    # -- writing ----------------------------------------------------------------------

    def apply(self, item: Input) -> Outcome:
        """Apply one input (a value of :mod:`posledger.domain`) in its own transaction.

        It is checked as a JSONL line would be (docs/format.md, Limits) first."""
        try:
            checked = parse_record(to_record(item))
        except (InvalidInput, ValueError, OverflowError) as exc:
            kind, key = record_type(item), handlers.describe(item)
            return self._refuse(repr(item), str(exc), kind, key)
        return numbered(*self._transact(lambda uow: self._decide(uow, checked, None, None, None)))

    def reject(self, raw: str, reason: str, source: str | None = None) -> None:
        """Keep a message that could not be made an input (a venue's message its parser
        refused), with why: ``posledger rejected`` lists it with refused lines."""
        self._run(lambda uow: self._keep(uow, raw, reason, source, None))

    def _refuse(self, raw: str, reason: str, kind: str, key: str | None) -> Outcome:
        def refuse(uow: UnitOfWork) -> Outcome:
            self._keep(uow, raw, reason, None, None)
            return Outcome("rejected", kind, key, reason)

        return self._run(refuse)

    def register_account(self, **fields: Any) -> Outcome:
        """Fields of docs/format.md ``account``: account, venue, mode, position_mode, ..."""
        return self._record("account", fields)

    def register_instrument(self, **fields: Any) -> Outcome:
        return self._record("instrument", fields)

    def register_strategy(self, **fields: Any) -> Outcome:
        return self._record("strategy", fields)

    def register_order(self, **fields: Any) -> Outcome:
        return self._record("order", fields)

    def cancel_order(self, **fields: Any) -> Outcome:
        return self._record("cancel", fields)

    def apply_fill(self, **fields: Any) -> Outcome:
        """Fields of docs/format.md ``fill``. Amounts as str, int or Decimal; ``ts`` as ISO text
        or an aware datetime."""
        return self._record("fill", fields)

    def apply_mark(self, **fields: Any) -> Outcome:
        """One mark: instrument, price, [ts, high, low]. It is kept in memory and written
        as :attr:`mark_policy` says (docs/accounting.md, Marks); :meth:`close` and
        :meth:`flush_marks` write what is left."""
        return self._record("mark", fields)

    def apply_marks(self, marks: Iterable[Mark]) -> list[Outcome]:
        """Many marks (values of :class:`~posledger.domain.inputs.Mark`, already checked)
        in one transaction: each is applied in memory, and the windows the policy says are
        due are written together. The fast way for a price feed."""

        batch = list(marks)

        def work(uow: UnitOfWork) -> list[Outcome]:
            apply = self._mark
            return [apply(uow, mark) for mark in batch]

        outcomes, seqs = self._transact(work)
        return [numbered(outcome, seqs) for outcome in outcomes]

    def transfer(self, **fields: Any) -> Outcome:
        """Move quantity between two strategies' slots (docs/format.md ``transfer``): account,
        instrument, from_strategy, to_strategy, quantity, [position_side, price, ts,
        transfer_id]. At the giving slot's average entry unless ``price`` is given."""
        return self._record("transfer", fields)

    def halt(self, **fields: Any) -> Outcome:
        """Halt an instrument on an account (account, instrument, [reason, ts]): entry
        orders there are refused until :meth:`resume`."""
        return self._record("halt", fields)

    def resume(self, **fields: Any) -> Outcome:
        """Lift a halt (account, instrument, [ts])."""
        return self._record("resume", fields)

    def set_bracket(self, **fields: Any) -> Outcome:
        """Attach a take-profit and/or stop-loss to one strategy's open slot
        (docs/brackets.md): account, instrument, strategy, [position_side, take_profit,
        stop_loss, bracket_id, ts]. A leg is a price (a limit take-profit, a stop
        stop-loss) or an :class:`~posledger.domain.refdata.OrderSpec`. It replaces the
        slot's bracket; with neither leg it removes it. The legs go out as outbox
        commands (:meth:`commands`)."""
        return self._record("bracket", fields)

    def sweep(self) -> list[Outcome]:
        """Look at every watched exit order again (docs/brackets.md): orphans and stuck
        orders get their cancel or amend command again, brackets their missing legs. One
        outcome per instrument that has exit orders or brackets."""
        instruments = sorted(
            {b.key.instrument for b in self._reads.brackets({})}
            | {found.key.instrument for found in self._reads.exits({})}
        )
        return [self._record("sweep", {"instrument": name}) for name in instruments]

    def brackets(
        self,
        *,
        account: str | None = None,
        instrument: str | None = None,
        strategy: str | None = None,
    ) -> list[dict[str, Any]]:
        """Each slot's bracket and its legs as they stand."""
        filters = _filters(account, instrument, strategy, None)
        with self.store.snapshot() as reads:
            return bracket_views(reads.brackets(filters), reads.exits(filters))

    def exit_orders(
        self,
        *,
        account: str | None = None,
        instrument: str | None = None,
        strategy: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every exit order the ledger watches (bracket legs and strategies' own)."""
        filters = _filters(account, instrument, strategy, None)
        return [exit_view(found) for found in self._reads.exits(filters)]

    def missing_exits(
        self,
        *,
        policy: str = "bracket",
        at: str | None = None,
        tz: str = "UTC",
        account: str | None = None,
        instrument: str | None = None,
        strategy: str | None = None,
    ) -> list[dict[str, Any]]:
        """The exit orders every open slot lacks, under ``policy`` (docs/brackets.md):

        - ``bracket``: a take-profit and a stop-loss at the strategy's default distances;
        - ``flatten``: a market exit of the whole slot, at ``at`` (a local time of day,
          ``HH:MM`` in ``tz``: the next such moment) or now.

        Reads the database only. No open position: an empty list."""
        if policy not in POLICIES:
            raise UsageError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        try:
            when = None if at is None else next_local_time(at, tz, self._clock())
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        filters = _filters(account, instrument, strategy, None)
        with self.store.snapshot() as reads:
            slots = reads.open_slots(filters)
            exits = reads.exits(filters)
            instruments, strategies = reads.reference()
        planned = plan_exits(slots, exits, strategies, instruments, policy, when)
        return planned_views(planned)

    def _record(self, kind: str, fields: Mapping[str, Any]) -> Outcome:
        data = {"type": kind, **fields}
        try:
            item = parse_record(data, api=True)
        except InvalidInput as exc:
            raw = json.dumps(data, default=str, ensure_ascii=False)
            key = fields.get(_KEY_FIELD[kind])
            return self._refuse(raw, str(exc), kind, None if key is None else str(key))
        return numbered(*self._transact(lambda uow: self._decide(uow, item, None, None, None)))

    def check_order(self, **fields: Any) -> OrderCheck:
        """Would registering this order (docs/format.md ``order`` fields) be allowed now?

        Nothing is registered or journaled. Refused: an exit larger than (or adding to) its
        strategy's own position, an entry beyond the strategy's ``max_open_slots`` or on a
        halted instrument, an order a hedge account cannot book (no position_side).
        """
        try:
            item = parse_record({"type": "order", **fields}, api=True)
        except InvalidInput as exc:
            return OrderCheck(False, [str(exc)])
        return self._verdict(item)

    def check_order_line(self, line: str) -> OrderCheck:
        """:meth:`check_order` for an ``order`` JSONL line, read exactly as ``ingest``
        reads it (docs/format.md)."""
        try:
            item = parse_line(line)
        except InvalidInput as exc:
            return OrderCheck(False, [str(exc)])
        return self._verdict(item)

    def _verdict(self, item: Input) -> OrderCheck:
        if not isinstance(item, Order):
            return OrderCheck(False, [f"a {record_type(item)} record is not an order"])
        reasons = self._run(lambda uow: handlers.order_verdict(uow, item))
        return OrderCheck(not reasons, reasons)

    def ingest(
        self,
        lines: Iterable[str | bytes],
        *,
        source: str | None = None,
        batch_size: int = 1,
        on_commit: Callable[[list[tuple[Line, Outcome]]], None] | None = None,
    ) -> IngestReport:
        """Apply a JSONL stream (docs/format.md), ``batch_size`` inputs per transaction.

        Bad lines are refused whole and kept in ``rejected_inputs``; the others are still
        applied. ``on_commit`` is told each batch's outcomes once the batch is durable.
        """
        if batch_size < 1:
            raise UsageError("batch_size must be at least 1")
        report = IngestReport()
        for chunk in _chunks(read_lines(lines), batch_size):
            outcomes = self.apply_lines([(line, source, self._key) for line in chunk])
            batch = list(zip(chunk, outcomes, strict=True))
            for line, outcome in batch:
                report.count(outcome)
                if outcome.status == "rejected":
                    report.rejections.append((line.number, outcome.reason or ""))
            if on_commit is not None:
                on_commit(batch)
        self.flush_marks()
        return report

    def apply_lines(
        self,
        lines: Sequence[tuple[Line, str | None, str | None]],
        scoped: Mapping[str, str] | None = None,
    ) -> list[Outcome]:
        """Apply lines read by :func:`~posledger.adapters.jsonl.read_lines`, each with the
        source it came from (kept with it when it is rejected) and the key of the HTTP API
        that sent it (its journal entry records it), in one transaction: the group commit
        of ``posledger serve`` (docs/service.md). One outcome per line, once the
        transaction is durable.

        ``scoped``: the strategy each strategy key (by id) acts for. Their lines are
        checked again here, against the orders and commands the transaction itself reads
        (what the line's decision reads too), and one the key may not send is rejected:
        another process may have registered an order since the request was checked."""
        batch = list(lines)
        scopes_of = scoped or {}

        def work(uow: UnitOfWork) -> list[Outcome]:
            _prefetch(uow, [line for line, _, _ in batch])
            outcomes = []
            for line, source, key in batch:
                self._acting = key
                uow.acting(key)
                strategy = None if key is None else scopes_of.get(key)
                if strategy is not None and line.item is not None:
                    why = self._refusal_in(uow, key, strategy, line.item)
                    if why is not None:
                        reason = f"forbidden: {why}"
                        self._keep(uow, line.raw, reason, source, line.number)
                        kind = record_name(type(line.item))
                        outcomes.append(Outcome("rejected", kind, None, reason))
                        continue
                outcomes.append(self._ingest_line(uow, line, source))
            self._acting = self._key
            uow.acting(self._key)
            return outcomes

        outcomes, seqs = self._transact(work)
        return [numbered(outcome, seqs) for outcome in outcomes]

    def _ingest_line(self, uow: UnitOfWork, line: Line, source: str | None) -> Outcome:
        if line.item is None:
            assert line.error is not None
            self._keep(uow, line.raw, line.error, source, line.number)
            return Outcome("rejected", None, None, line.error)
        return self._decide(uow, line.item, line.raw, source, line.number)

    # -- the broker check ---------------------------------------------------------------

    def reconcile(
        self,
        snapshot: Iterable[str | bytes],
        *,
        fills: Iterable[str | bytes] | None = None,
        accounts: Iterable[str] = (),
        policy: ReconcilePolicy | str | None = None,
        price_tolerance: Decimal = DEFAULT_PRICE_TOLERANCE,
        source: str | None = None,
        fills_source: str | None = None,
        batch_size: int = 500,
        on_commit: Callable[[list[tuple[Line, Outcome]]], None] | None = None,
        run: str | None = None,
    ) -> ReconcileReport:
        """Compare the ledger with a broker snapshot (JSONL ``broker_position`` lines).

        The snapshot covers the accounts it names and ``accounts``: what the ledger holds
        there and the snapshot does not list, the broker holds none of. With ``fills``
        (the broker's fill history, JSONL), the fills the ledger has not seen are applied
        first (exactly once; attributed as usual). ``policy`` overrides each account's
        ``reconcile_policy`` for this run. Raises :class:`ReconcileError`, changing
        nothing, when the snapshot is refused (unreadable, unknown account or instrument,
        position mode mismatch). ``run`` names the run (default: a new random id); a name
        already used is refused (:class:`UsageError`).
        """
        try:
            chosen = None if policy is None else ReconcilePolicy(str(policy).lower())
        except ValueError:
            known = ", ".join(p.value for p in ReconcilePolicy)
            raise UsageError(f"no reconcile policy {policy!r}: {known}") from None
        if run is not None:
            try:
                check_identifier("run", run)
            except InvalidInput as exc:
                raise UsageError(str(exc)) from None
            self._run(lambda uow: _run_unused(uow, run))
        if price_tolerance < 0:
            raise UsageError("price_tolerance must not be negative")
        lines = list(snapshot)
        try:
            positions = read_snapshot(lines)
            names = sorted({p.account for _, p in positions} | set(accounts))
            if not names:
                raise ReconcileError(
                    [(None, "the snapshot names no account: say which accounts it covers")]
                )
            self._run(lambda uow: validate(uow, positions, names))
        except ReconcileError as exc:
            self._keep_refused_snapshot(exc, source)
            raise
        history = None
        if fills is not None:
            history = self.ingest(
                fills, source=fills_source, batch_size=batch_size, on_commit=on_commit
            )
        name, ts = run or new_run_id(), self._clock()

        def work(uow: UnitOfWork) -> tuple[dict[str, ReconcilePolicy], list[tuple[Any, Outcome]]]:
            _run_unused(uow, name)
            broker = validate(uow, positions, names)
            items = plan(
                uow,
                broker,
                names,
                run=name,
                ts=ts,
                policy=chosen,
                price_tolerance=price_tolerance,
                with_history=fills is not None,
            )
            uow.prefetch([], [], [item.instrument for item in items])
            done = []
            for index, item in enumerate(items):
                # The run was unused when this transaction began: its first check takes the
                # name, and a run of the same name committing meanwhile makes that fail.
                first = index == 0
                self._write_window(uow, item.instrument)
                outcome, write_set = handlers.reconcile(uow, item, self._clock, first_of_run=first)
                if not outcome.applied:
                    raise ReconcileError([(None, outcome.reason or "refused")])
                done.append((item, self._stage(uow, outcome, write_set)))
            return policies(uow, names, chosen), done

        (applied, done), seqs = self._transact(work)
        checks = []
        for item, outcome in done:
            assert outcome.effects is not None
            checks.append(check_dict(item, outcome.effects, numbered(outcome, seqs).seq))
        return ReconcileReport(name, ts, names, applied, checks, history)

    def _keep_refused_snapshot(self, exc: ReconcileError, source: str | None) -> None:
        def work(uow: UnitOfWork) -> None:
            for line, reason in exc.problems:
                raw = line.raw if line is not None else "(snapshot)"
                number = None if line is None else line.number
                self._keep(uow, raw, f"reconcile: {reason}", source, number)

        self._run(work)

    # -- the outbox -------------------------------------------------------------------

    def commands(
        self,
        *,
        claim: str | None = None,
        limit: int = 100,
        status: str | None = "pending",
        lease_ns: int = LEASE_NS,
        accounts: Iterable[str] | None = None,
        strategies: Iterable[str] | None = None,
        own: bool = False,
    ) -> list[dict[str, Any]]:
        """Outbox commands, oldest first (docs/brackets.md).

        Without ``claim``: the commands of ``status`` (``pending`` by default; None for
        every command). With ``claim`` (a worker id): claim up to ``limit`` commands for
        that worker, for ``lease_ns`` (30 s): pending ones, and claimed ones whose lease
        ran out; nobody else is given them until the lease runs out. ``accounts``: claim
        only those accounts' commands; ``strategies``: only those strategies' (given both,
        a command must pass both). ``own``: take back the worker's own claims too (it
        restarted: they need not wait for their lease to run out).
        """
        if limit < 1:
            raise UsageError("limit must be at least 1")
        if claim is None:
            return command_views(self._reads.commands(status, limit))
        try:
            check_identifier("worker", claim)
        except InvalidInput as exc:
            raise UsageError(str(exc)) from None
        now = self._clock()
        of = None if accounts is None else tuple(accounts)
        by = None if strategies is None else tuple(strategies)
        rows = self._run(
            lambda uow: uow.claim_commands(
                claim, limit, now, lease_ns, accounts=of, strategies=by, own=own
            )
        )
        return command_views(rows)

    def ack(self, command_id: str, *, broker_order_id: str | None = None) -> dict[str, Any]:
        """The command was carried out (the broker accepted it). Acking again is harmless.

        Journaled (a ``command_ack``) when it moves an exit order the ledger watches on:
        a placed leg is live, a cancelled one is gone (docs/brackets.md)."""
        return self._settle(CommandAck, command_id, "acked", broker_order_id=broker_order_id)

    def fail(self, command_id: str, *, reason: str) -> dict[str, Any]:
        """The command could not be carried out (the broker refused it): final. A refused
        cancel or amend leaves its order stuck, an anomaly until it is settled."""
        if not reason.strip():
            raise UsageError("say why the command failed")
        return self._settle(CommandFailed, command_id, "failed", reason=reason)

    def _settle(
        self,
        kind: type[CommandAck] | type[CommandFailed],
        command_id: str,
        status: str,
        *,
        broker_order_id: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        record: dict[str, Any] = {"type": record_name(kind), "command_id": command_id}
        if broker_order_id is not None:
            record["broker_order_id"] = broker_order_id
        if reason is not None:
            record["reason"] = reason
        try:
            item = parse_record(record, api=True)
        except InvalidInput as exc:
            raise UsageError(str(exc)) from None

        def work(uow: UnitOfWork) -> CommandRow:
            found = uow.command(command_id)
            if found is None:
                raise NotFound(f"no outbox command {command_id}")
            if found.status == status:
                return found  # settled before (a retry): nothing changes
            if found.status in ("acked", "failed"):
                raise UsageError(f"command {command_id} is already {found.status}")
            outcome = self._decide(uow, item, None, None, None)
            if outcome.status == "rejected":
                raise UsageError(outcome.reason or "refused")
            settled = uow.command(command_id)
            assert settled is not None
            return settled

        (row,) = command_views([self._run(work)])
        return row

    # -- reading ----------------------------------------------------------------------

    def positions(
        self,
        *,
        include_flat: bool = False,
        account: str | None = None,
        instrument: str | None = None,
        strategy: str | None = None,
        mode: str | None = None,
    ) -> list[dict[str, Any]]:
        """Slots as docs/format.md ``positions --json`` objects: open ones unless ``include_flat``.
        ``mode`` (LIVE, SIM, PAPER) keeps the accounts of that mode only."""
        filters = _filters(account, instrument, strategy, mode)
        return position_views(self._reads, filters, include_flat)

    def trades(
        self,
        *,
        account: str | None = None,
        instrument: str | None = None,
        strategy: str | None = None,
        status: str | None = None,
        with_fills: bool = True,
        mode: str | None = None,
    ) -> list[dict[str, Any]]:
        """Trades as docs/format.md ``trades --json`` objects, in the order they were opened."""
        filters = _filters(account, instrument, strategy, mode)
        return trade_views(self._reads, filters, status, with_fills)

    def pnl(
        self,
        *,
        by: str | Iterable[str] = "strategy",
        period: str | None = None,
        tz: str = "UTC",
        session_start: str = "00:00",
        since: str | None = None,
        until: str | None = None,
        account: str | None = None,
        instrument: str | None = None,
        strategy: str | None = None,
        mode: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Realized (per trade-fill leg, net of commissions) and unrealized (at the latest
        marks) P&L per group, currency and period, as docs/pnl.md describes. ``by`` is a
        comma list or names from strategy, account, mode, instrument; ``period`` day, week,
        month or None (one row per group). ``since``/``until``: dates (trading days) or ISO
        times, read in ``tz``. ``progress`` is told how many legs were read."""
        return self.pnl_report(
            by=by,
            period=period,
            tz=tz,
            session_start=session_start,
            since=since,
            until=until,
            account=account,
            instrument=instrument,
            strategy=strategy,
            mode=mode,
            progress=progress,
        )[0]

    def pnl_report(
        self,
        *,
        by: str | Iterable[str] = "strategy",
        period: str | None = None,
        tz: str = "UTC",
        session_start: str = "00:00",
        since: str | None = None,
        until: str | None = None,
        account: str | None = None,
        instrument: str | None = None,
        strategy: str | None = None,
        mode: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """:meth:`pnl`'s rows and how many open positions had no mark (left out)."""
        try:
            groups = parse_groups(by if isinstance(by, str) else ",".join(by))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        found = _window(tz, session_start, since, until)
        if period is not None and period not in PERIODS:
            raise UsageError(f"a period is one of {', '.join(PERIODS)}, got {period!r}")
        filters = _filters(account, instrument, strategy, mode)
        with self.store.snapshot() as reads:
            return pnl_views(reads, filters, groups, period, found, progress)

    def stats(
        self,
        *,
        tz: str = "UTC",
        session_start: str = "00:00",
        since: str | None = None,
        until: str | None = None,
        account: str | None = None,
        instrument: str | None = None,
        strategy: str | None = None,
        mode: str | None = None,
    ) -> list[dict[str, Any]]:
        """Per strategy and currency, statistics of the trades closed in the window (win
        rate, average win and loss, profit factor, expectancy, drawdown, MAE/MFE,
        duration), as docs/pnl.md defines them."""
        found = _window(tz, session_start, since, until)
        filters = _filters(account, instrument, strategy, mode)
        with self.store.snapshot() as reads:
            return stats_views(reads, filters, found)

    def report_data(
        self,
        *,
        tz: str = "UTC",
        session_start: str = "00:00",
        since: str | None = None,
        until: str | None = None,
        account: str | None = None,
        instrument: str | None = None,
        strategy: str | None = None,
        mode: str | None = None,
        max_trades: int = 500,
        progress: Callable[[int], None] | None = None,
    ) -> ReportData:
        """What ``posledger report`` draws: statistics with equity curves, P&L by trading
        day, the latest ``max_trades`` closed trades and the MAE/MFE points."""
        found = _window(tz, session_start, since, until)
        filters = _filters(account, instrument, strategy, mode)
        with self.store.snapshot() as reads:
            return report_data(reads, filters, found, max_trades, progress)

    def halts(
        self, *, account: str | None = None, instrument: str | None = None
    ) -> list[dict[str, Any]]:
        """Instruments halted on an account: account, instrument, since, reason, seq."""
        return halt_views(self._reads, {"account": account, "instrument": instrument})

    def transfers(
        self, *, account: str | None = None, instrument: str | None = None
    ) -> list[dict[str, Any]]:
        """Every transfer between strategies, in journal order (manual and adopted orphans)."""
        return transfer_views(self._reads, {"account": account, "instrument": instrument})

    def reconciliations(
        self, *, run: str | None = None, account: str | None = None, last: int | None = 1
    ) -> list[dict[str, Any]]:
        """Checks of past reconciliation runs (the ``last`` runs, or one ``run``), newest run
        first, keys in order; each as in :class:`ReconcileReport`."""
        return reconciliation_views(self._reads, {"account": account}, run, last)

    def journal(self, *, after_seq: int = 0, limit: int | None = 1000) -> list[JournalRow]:
        """Journal entries numbered after ``after_seq``, in order, at most ``limit``: what a
        reader that has seen everything up to ``after_seq`` has not seen yet."""
        if limit is not None and limit < 1:
            raise UsageError("limit must be at least 1")
        return self._reads.journal(after_seq, limit)

    def head(self) -> int:
        """The journal's last entry (0 when it is empty)."""
        return self._reads.last_seq_at(2**63 - 1)

    def journal_json(self, *, after_seq: int = 0, limit: int | None = 1000) -> list[dict[str, Any]]:
        """:meth:`journal` as JSON-able objects (input and effects decoded)."""
        return journal_views(self.journal(after_seq=after_seq, limit=limit))

    def doctor(self, *, clear_damage: bool = False) -> DoctorReport:
        """Integrity report: damaged storage, duplicate open trades, slots that disagree
        with their fills, journal gaps, fills of another strategy's order, overfilled
        orders, instruments several strategies trade, EXTERNAL positions, broken
        invariants. Damaged storage marks the database so, and writes stop;
        ``clear_damage`` lifts that mark first (after a repair: docs/doctor.md)."""
        from .doctor import run_doctor

        report = run_doctor(self.store, clear_damage=clear_damage)
        self._uow.rollback()  # drop caches: the next transaction reads the mark again
        return report

    def rejected_inputs(self) -> list[dict[str, Any]]:
        """Refused inputs, oldest first: id, received_at, source, line, reason, raw."""
        return rejected_views(self._reads)

    def anomalies(
        self,
        *,
        account: str | None = None,
        instrument: str | None = None,
        strategy: str | None = None,
        mode: str | None = None,
    ) -> list[dict[str, Any]]:
        """Fills booked to EXTERNAL because they did not fit their slot, in journal order."""
        filters = _filters(account, instrument, strategy, mode)
        return anomaly_views(self._reads, filters)

    def listing(
        self,
        name: str,
        *,
        account: str | None = None,
        instrument: str | None = None,
        strategy: str | None = None,
        mode: str | None = None,
        since: int | None = None,
        until: int | None = None,
        sort: Iterable[str] = (),
        limit: int | None = None,
        **options: Any,
    ) -> Iterator[dict[str, Any]]:
        """A listing (``positions``, ``trades``, ``anomalies``, ``rejected``,
        ``transfers``) as its ``--json`` objects, one at a time, read from the database a
        page at a time: memory stays bounded however long it is.

        ``since`` (inclusive) and ``until`` (exclusive), in ns since the epoch, bound the
        listing's time (a trade's ``opened_at``, a rejection's ``received_at``, a
        transfer's ``ts``); ``sort`` names fields of its objects, ``-field`` descending,
        the listing's own order breaking ties; ``limit`` keeps the first so many.
        ``options``: ``include_flat`` (positions), ``status`` and ``with_fills``
        (trades). A filter naming an account, instrument or strategy the ledger does not
        know raises :class:`posledger.NotFound`."""
        if limit is not None and limit < 1:
            raise UsageError("limit must be at least 1")
        try:
            order = parse_sort(name, tuple(sort))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        self.check_names(account=account, instrument=instrument, strategy=strategy)
        filters = _filters(account, instrument, strategy, mode)
        if name in ("rejected",):
            filters = {}
        try:
            return listing_views(
                self._reads,
                name,
                filters,
                since=since,
                until=until,
                sort=order,
                limit=limit,
                **options,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    # -- keys of the HTTP API (docs/service.md, Keys) ------------------------------------

    def create_key(
        self, *, admin: bool = False, strategy: str | None = None, name: str | None = None
    ) -> tuple[dict[str, Any], str]:
        """A new key of the HTTP API, an admin key or ``strategy``'s (which must be
        registered): the key as listed, and its token, which is shown once and never
        stored (only a hash of it is)."""
        if strategy is not None:
            self.check_names(strategy=strategy)
            if strategy == EXTERNAL:
                raise UsageError("EXTERNAL is no strategy a key can act for")
        row, token = keys.create(
            self.store, admin=admin, strategy=strategy, name=name, now=self._clock()
        )
        return keys.view(row), token

    def api_keys(self) -> list[dict[str, Any]]:
        """The keys of the HTTP API, revoked ones included (never their hashes)."""
        return [keys.view(row) for row in self.store.api_keys()]

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        """Revoke a key: from now on it is refused. Raises :class:`NotFound`."""
        return keys.view(keys.revoke(self.store, key_id, self._clock()))

    def refusal(
        self, principal: keys.Principal, item: Any, registered: dict[str, str]
    ) -> str | None:
        """Why ``principal`` may not send ``item`` (docs/service.md, What a strategy key may
        do); None when it may. ``registered``: orders registered earlier in the same
        request, filled in as they are checked."""
        reads = self._reads
        return scopes.refusal(
            principal,
            item,
            order_owner=lambda key: reads.owner("order", key),
            command_owner=lambda key: reads.owner("command", key),
            registered=registered,
        )

    # -- the symbol map (docs/venues/README.md, Symbol map) -------------------------------

    def map_symbol(self, venue: str, account: str, symbol: str, instrument: str) -> dict[str, Any]:
        """Map ``venue``'s ``symbol`` on ``account`` (both registered) to ``instrument``.
        The same entry again changes nothing (``added`` is false); another instrument for
        a mapped symbol is refused (:class:`UsageError`): remove the entry first."""
        venue = _venue_name(venue)
        for name, value in (("account", account), ("symbol", symbol), ("instrument", instrument)):
            try:
                check_identifier(name, value)
            except InvalidInput as exc:
                raise UsageError(str(exc)) from None
        self.check_names(account=account, instrument=instrument)
        row = SymbolRow(venue, account, symbol, instrument, self._clock())
        kept = self.store.add_symbol(row)
        if kept.instrument != instrument:
            raise UsageError(
                f"{venue} symbol {symbol} of account {account} is mapped to {kept.instrument}: "
                f"remove it first (posledger symbols remove {venue} {account} {symbol})"
            )
        return {**_symbol_view(kept), "added": kept == row}

    def unmap_symbol(self, venue: str, account: str, symbol: str) -> dict[str, Any]:
        """Remove an entry of the symbol map; :class:`NotFound` when there is none."""
        venue = _venue_name(venue)
        removed = self.store.remove_symbol(venue, account, symbol)
        if removed is None:
            raise NotFound(f"{venue} symbol {symbol} of account {account} is not mapped")
        return _symbol_view(removed)

    def symbols(self, venue: str | None = None) -> list[dict[str, Any]]:
        """The symbol map's entries (of ``venue``), by venue, account and symbol."""
        chosen = None if venue is None else _venue_name(venue)
        return [_symbol_view(row) for row in self.store.symbols(chosen)]

    def symbol_map(self, venue: str) -> SymbolMap:
        """``venue``'s entries, as its parsers look symbols up."""
        chosen = _venue_name(venue)
        rows = self.store.symbols(chosen)
        return SymbolMap(chosen, {(r.account, r.symbol): r.instrument for r in rows})

    @staticmethod
    def _refusal_in(uow: UnitOfWork, key: str | None, strategy: str, item: Any) -> str | None:
        """:meth:`refusal`, read inside the transaction ``uow``."""

        def order_owner(client_order_id: str) -> str | None:
            found = uow.order(client_order_id)
            return None if found is None else found[0].strategy

        def command_owner(command_id: str) -> str | None:
            found = uow.command(command_id)
            return None if found is None else found.strategy

        principal = keys.Principal(key_id=key or "", name=None, strategy=strategy)
        return scopes.refusal(principal, item, order_owner=order_owner, command_owner=command_owner)

    def authenticate(self, token: str) -> keys.Principal | None:
        """Who ``token`` is, if it is a key of this ledger that was not revoked."""
        return keys.authenticate(self.store, token)

    @contextmanager
    def acting_for(self, key_id: str | None) -> Iterator[None]:
        """Record ``key_id`` (a key of the HTTP API) as the sender of every input applied
        inside (docs/service.md, Keys)."""
        before, self._key = self._key, key_id
        try:
            yield
        finally:
            self._key = before

    def check_names(
        self,
        *,
        account: str | None = None,
        instrument: str | None = None,
        strategy: str | None = None,
    ) -> None:
        """Raise :class:`posledger.NotFound` for an account, instrument or strategy that
        is not registered (a filter naming one would list nothing, silently). EXTERNAL,
        the slot of fills nobody owns, is a strategy."""
        given = {"account": account, "instrument": instrument, "strategy": strategy}
        for kind, value in given.items():
            if value is None or (kind == "strategy" and value == EXTERNAL):
                continue
            known = self.names(kind)
            if value not in known:
                shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
                raise NotFound(f"no {kind} {value!r} in this ledger (known: {shown or 'none'})")

    def registered(self, kind: str) -> list[dict[str, Any]]:
        """The registered accounts, instruments or strategies (``kind``: ``account``,
        ``instrument``, ``strategy``), by name, with the fields of their records."""
        if kind not in ("account", "instrument", "strategy"):
            raise UsageError(f"no reference data {kind!r}: account, instrument or strategy")
        return reference_views(self._reads, kind)

    def names(self, kind: str) -> list[str]:
        """The registered accounts, instruments or strategies (``kind``), sorted."""
        table = {"account": "accounts", "instrument": "instruments", "strategy": "strategies"}
        return sorted(str(row[kind]) for row in self._reads.table(table[kind]))

    # -- replay -----------------------------------------------------------------------

    def as_of(
        self,
        when: str | int | None = None,
        *,
        seq: int | None = None,
        history: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> Ledger:
        """The ledger as it stood at ``when`` (ISO 8601 with an offset, or nanoseconds since
        the epoch): a separate, read-only ledger made by replaying the journal up to its
        last entry recorded at or before then (or up to entry ``seq``). Its positions,
        trades and P&L are what they were then (it holds the books, not the journal);
        close it when done (docs/format.md, As of a time). Writing to it changes nothing
        here. Without ``history`` it holds the books only (positions, open trades, marks),
        not the fills, legs and closed trades: quicker when those are not read."""
        if (when is None) == (seq is None):
            raise UsageError("as_of needs a time or a journal seq, not both")
        if seq is None:
            try:
                at = parse_ts(when) if isinstance(when, str) else when
            except ValueError as exc:
                raise UsageError(f"as of: {exc}") from None
            assert at is not None
            seq = self._reads.last_seq_at(at)
        elif seq < 0:
            raise UsageError(f"as of: a journal seq is not negative, got {seq}")
        past = replay_prefix(self.store, seq, progress, history=history)
        return Ledger(past, clock=self._clock, marks=self.mark_policy, checkpoint_every=0)

    def verify(self, progress: Callable[[int], None] | None = None) -> VerifyReport:
        """Replay the journal in memory, compare with the stored projections, check invariants."""
        return verify(self.store, progress)

    def rebuild(self, progress: Callable[[int], None] | None = None) -> RebuildReport:
        """Rewrite every projection from the journal. Refuses if the journal does not replay."""
        self._uow.rollback()  # drop caches: the projections are about to be rewritten
        return rebuild(self.store, progress)


def _venue_name(venue: str) -> str:
    """A venue's name in the symbol map: an identifier, in lower case."""
    try:
        check_identifier("venue", venue)
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None
    return venue.lower()


def _symbol_view(row: SymbolRow) -> dict[str, Any]:
    return {
        "venue": row.venue,
        "account": row.account,
        "symbol": row.symbol,
        "instrument": row.instrument,
        "created_at": format_ts(row.created_at),
    }


def _run_unused(uow: UnitOfWork, run: str) -> None:
    if uow.run_seen(run):
        raise UsageError(f"run {run} was already recorded: name a new one")


def _prefetch(uow: UnitOfWork, chunk: list[Line]) -> None:
    """Tell the unit of work what the lines will look up (locks and lookups in a few
    statements, not one each)."""
    items = [line.item for line in chunk]
    uow.prefetch(
        [(i.account, i.exec_id) for i in items if isinstance(i, Fill)],
        [i.client_order_id for i in items if isinstance(i, Order)],
        [
            i.instrument
            for i in items
            if isinstance(i, Fill | Order | Mark | Transfer | Halt | Resume)
        ],
    )


def numbered(outcome: Outcome, seqs: list[int]) -> Outcome:
    """``outcome`` with its stand-in journal number (-k: the k-th entry of its transaction)
    replaced by the number the entry got at commit."""
    seq = outcome.seq
    if seq is None or seq >= 0:
        return outcome
    o = outcome
    return Outcome(o.status, o.kind, o.key, o.reason, seqs[-seq - 1], o.effects)


def _filters(
    account: str | None, instrument: str | None, strategy: str | None, mode: str | None
) -> dict[str, str | None]:
    if mode is not None:
        mode = mode.upper()
    return {"account": account, "instrument": instrument, "strategy": strategy, "mode": mode}


def _window(tz: str, session_start: str, since: str | None, until: str | None) -> PnlWindow:
    """The trading days and instants ``--tz``, ``--session-start``, ``--since`` and
    ``--until`` say (docs/pnl.md); what cannot be read is a usage error."""
    try:
        return window(tz, session_start, since, until)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _chunks(lines: Iterator[Line], size: int) -> Iterator[list[Line]]:
    while chunk := list(islice(lines, size)):
        yield chunk
