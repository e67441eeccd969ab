"""The ledger: the public Python API. One method per use case; the CLI is a shell over it."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from types import TracebackType
from typing import Any, TypeVar

import msgspec

from ..adapters.jsonl import Line, read_lines
from ..adapters.records import encode, parse_record, to_record
from ..domain.enums import ReconcilePolicy
from ..domain.inputs import Fill, Halt, Input, Mark, Resume, Transfer
from ..domain.numbers import exact
from ..domain.refdata import InvalidInput, Order, check_identifier
from ..domain.timestamps import now_ns
from ..store.database import Database, DatabaseError
from ..store.rebuild import rewrite_projections
from ..store.views import Views
from ..store.writer import SqlUnitOfWork
from . import handlers
from .doctor import DoctorReport, run_doctor
from .handlers import Outcome, handle
from .queries import (
    anomaly_views,
    halt_views,
    position_views,
    reconciliation_views,
    rejected_views,
    trade_views,
    transfer_views,
)
from .reconciliation import (
    DEFAULT_PRICE_TOLERANCE,
    ReconcileError,
    ReconcileReport,
    check_dict,
    new_run_id,
    plan,
    policies,
    read_snapshot,
    validate,
)
from .replay import VerifyReport, replay, verify
from .unit_of_work import Rejected

__all__ = ["RETRIES", "IngestReport", "Ledger", "OrderCheck", "RebuildReport", "ReconcileError"]

RETRIES = 8
"""Attempts at one transaction before a database error is raised (about 10 s in all)."""
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


@dataclass
class RebuildReport:
    journal_entries: int
    rows: dict[str, int]


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
}


def _raw_digest(raw: str, reason: str) -> str:
    return hashlib.sha256(f"{raw}\n{reason}".encode()).hexdigest()


class Ledger:
    """Positions, P&L and trades of several strategies on shared accounts.

    Every input is applied in its own transaction (or, in :meth:`ingest`, in batches):
    its journal entry and all its effects commit together or not at all.
    """

    def __init__(self, database: Database, clock: Callable[[], int] = now_ns) -> None:
        self.database = database
        self._clock = clock
        self._uow = SqlUnitOfWork(database)
        self._views = Views(database)

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        self._uow.close()
        self.database.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------

    def apply(self, item: Input) -> Outcome:
        """Apply one input (a value of :mod:`posledger.domain`) in its own transaction."""
        return self._numbered(self._transact(lambda: self._apply(item, None, None, None)))

    def _numbered(self, outcome: Outcome) -> Outcome:
        seq = self._uow.resolve(outcome.seq)
        return outcome if seq == outcome.seq else outcome._replace(seq=seq)

    def register_account(self, **fields: Any) -> Outcome:
        """Fields of DESIGN §7 ``account``: account, venue, mode, position_mode, [lot_method]."""
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
        """Fields of DESIGN §7 ``fill``. Amounts as str, int or Decimal; ``ts`` as ISO text
        or an aware datetime."""
        return self._record("fill", fields)

    def apply_mark(self, **fields: Any) -> Outcome:
        return self._record("mark", fields)

    def transfer(self, **fields: Any) -> Outcome:
        """Move quantity between two strategies' slots (DESIGN §7 ``transfer``): account,
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

    def check_order(self, **fields: Any) -> OrderCheck:
        """Would registering this order (DESIGN §7 ``order`` fields) be allowed now?

        Nothing is registered or journaled. Refused: an exit larger than (or adding to) its
        strategy's own position, an entry beyond the strategy's ``max_open_slots`` or on a
        halted instrument, an order a hedge account cannot book (no position_side).
        """
        try:
            item = parse_record({"type": "order", **fields}, api=True)
        except InvalidInput as exc:
            return OrderCheck(False, [str(exc)])
        assert isinstance(item, Order)
        reasons = self._transact(lambda: handlers.order_verdict(self._uow, item))
        return OrderCheck(not reasons, reasons)

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
        already used is refused.
        """
        chosen = None if policy is None else ReconcilePolicy(policy)
        if run is not None:
            try:
                check_identifier("run", run)
            except InvalidInput as exc:
                raise ValueError(str(exc)) from None
            if self._views.reconciliation_checks({}, run):
                raise ValueError(f"run {run} was already recorded: name a new one")
        if price_tolerance < 0:
            raise ValueError("price_tolerance must not be negative")
        lines = list(snapshot)
        try:
            positions = read_snapshot(lines)
            names = sorted({p.account for _, p in positions} | set(accounts))
            if not names:
                raise ReconcileError(
                    [(None, "the snapshot names no account: say which accounts it covers")]
                )
            self._transact(lambda: validate(self._uow, positions, names))

        except ReconcileError as exc:
            self._keep_refused_snapshot(exc, source)
            raise
        history = None
        if fills is not None:
            history = self.ingest(
                fills, source=fills_source, batch_size=batch_size, on_commit=on_commit
            )
        run, ts = run or new_run_id(), self._clock()
        uow = self._uow

        def work() -> tuple[dict[str, ReconcilePolicy], list[tuple[Any, Outcome]]]:
            broker = validate(uow, positions, names)
            items = plan(
                uow,
                broker,
                names,
                run=run,
                ts=ts,
                policy=chosen,
                price_tolerance=price_tolerance,
                with_history=fills is not None,
            )
            uow.prefetch([], [], [item.instrument for item in items])
            done = []
            for item in items:
                outcome = handlers.reconcile(uow, item, self._clock)
                if not outcome.applied:
                    raise ReconcileError([(None, outcome.reason or "refused")])
                done.append((item, outcome))
            return policies(uow, names, chosen), done

        applied, done = self._transact(work)
        checks = []
        for item, outcome in done:
            assert outcome.effects is not None
            checks.append(check_dict(item, outcome.effects, uow.resolve(outcome.seq)))
        return ReconcileReport(run, ts, names, applied, checks, history)

    def _keep_refused_snapshot(self, exc: ReconcileError, source: str | None) -> None:
        def work() -> None:
            for line, reason in exc.problems:
                raw = line.raw if line is not None else "(snapshot)"
                text = f"reconcile: {reason}"
                self._store_rejection(raw, text, source, None if line is None else line.number)

        self._transact(work)

    def _record(self, kind: str, fields: Mapping[str, Any]) -> Outcome:
        data = {"type": kind, **fields}
        try:
            item = parse_record(data, api=True)
        except InvalidInput as exc:
            raw = msgspec.json.encode(data, enc_hook=str).decode()
            reason = str(exc)
            key = fields.get(_KEY_FIELD[kind])
            shown = None if key is None else str(key)
            return self._transact(lambda: self._reject(raw, reason, kind, shown, None, None))
        return self.apply(item)

    def _transact(self, work: Callable[[], T]) -> T:
        """Run ``work`` in one transaction, again if the database says that may succeed.

        A deadlock, a lock timeout, a unique key another writer took first, or a lost
        connection (the server restarted) roll the transaction back and run it again,
        on a fresh connection if need be: inputs are idempotent, so a retry cannot apply
        anything twice. Other errors, and the last of ``RETRIES`` failures, are raised.
        """
        uow = self._uow
        reconnecting: Exception | None = None
        for attempt in range(1, RETRIES + 1):
            try:
                uow.begin()
                try:
                    with exact():
                        result = work()
                    uow.commit()
                except BaseException:
                    uow.rollback()
                    raise
                return result
            except Exception as exc:
                cure = uow.classify(exc)
                if cure is None:
                    raise
                if cure == "fatal":
                    raise DatabaseError(f"{self.database.display_url}: {exc}") from exc
                if attempt == RETRIES:
                    also = f" (reconnecting: {reconnecting})" if reconnecting else ""
                    raise DatabaseError(
                        f"{self.database.display_url}: gave up after {attempt} attempts: "
                        f"{exc}{also}"
                    ) from exc
                time.sleep(min(0.05 * 2**attempt, 2.0) * random.uniform(0.5, 1.0))
                if cure == "reconnect":
                    try:
                        uow.reconnect()
                        reconnecting = None
                    except Exception as failed:  # the server is still away: try again later
                        reconnecting = failed
        raise AssertionError("unreachable")

    def _apply(
        self, item: Input, raw: str | None, source: str | None, line_no: int | None
    ) -> Outcome:
        outcome = handle(self._uow, item, self._clock)
        if outcome.status == "rejected":
            assert outcome.reason is not None
            text = raw if raw is not None else encode(to_record(item))
            self._store_rejection(text, outcome.reason, source, line_no)
        return outcome

    def _reject(
        self,
        raw: str,
        reason: str,
        kind: str | None,
        key: str | None,
        source: str | None,
        line_no: int | None,
    ) -> Outcome:
        self._store_rejection(raw, reason, source, line_no)
        return Outcome("rejected", kind, key, reason)

    def _store_rejection(
        self, raw: str, reason: str, source: str | None, line_no: int | None
    ) -> None:
        fingerprint = _raw_digest(raw, reason)
        if not self._uow.rejected_seen(fingerprint):
            self._uow.add_rejected(
                Rejected(self._clock(), source, line_no, raw, reason, fingerprint)
            )

    def ingest(
        self,
        lines: Iterable[str | bytes],
        *,
        source: str | None = None,
        batch_size: int = 1,
        on_commit: Callable[[list[tuple[Line, Outcome]]], None] | None = None,
    ) -> IngestReport:
        """Apply a JSONL stream (DESIGN §7), ``batch_size`` inputs per transaction.

        Bad lines are refused whole and kept in ``rejected_inputs``; the others are still
        applied. ``on_commit`` is told each batch's outcomes once the batch is durable.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        report = IngestReport()
        uow = self._uow
        for chunk in _chunks(read_lines(lines), batch_size):

            def work(chunk: list[Line] = chunk) -> list[tuple[Line, Outcome]]:
                if batch_size > 1:
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
                return [(line, self._ingest_line(line, source)) for line in chunk]

            batch = [(line, self._numbered(outcome)) for line, outcome in self._transact(work)]
            self._done(batch, report, on_commit)
        return report

    def _ingest_line(self, line: Line, source: str | None) -> Outcome:
        if line.item is None:
            assert line.error is not None
            return self._reject(line.raw, line.error, None, None, source, line.number)
        return self._apply(line.item, line.raw, source, line.number)

    @staticmethod
    def _done(
        batch: list[tuple[Line, Outcome]],
        report: IngestReport,
        on_commit: Callable[[list[tuple[Line, Outcome]]], None] | None,
    ) -> None:
        for line, outcome in batch:
            report.count(outcome)
            if outcome.status == "rejected":
                report.rejections.append((line.number, outcome.reason or ""))
        if on_commit is not None:
            on_commit(batch)

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
        """Slots as DESIGN §7 ``positions --json`` objects: open ones unless ``include_flat``.
        ``mode`` (LIVE, SIM, PAPER) keeps the accounts of that mode only."""
        filters = _filters(account, instrument, strategy, mode)
        return position_views(self._views, filters, include_flat)

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
        """Trades as DESIGN §7 ``trades --json`` objects, in the order they were opened."""
        filters = _filters(account, instrument, strategy, mode)
        return trade_views(self._views, filters, status, with_fills)

    def halts(
        self, *, account: str | None = None, instrument: str | None = None
    ) -> list[dict[str, Any]]:
        """Instruments halted on an account: account, instrument, since, reason, seq."""
        return halt_views(self._views, {"account": account, "instrument": instrument})

    def transfers(
        self, *, account: str | None = None, instrument: str | None = None
    ) -> list[dict[str, Any]]:
        """Every transfer between strategies, in journal order (manual and adopted orphans)."""
        return transfer_views(self._views, {"account": account, "instrument": instrument})

    def reconciliations(
        self, *, run: str | None = None, account: str | None = None, last: int | None = 1
    ) -> list[dict[str, Any]]:
        """Checks of past reconciliation runs (the ``last`` runs, or one ``run``), newest run
        first, keys in order; each as in :class:`ReconcileReport`."""
        return reconciliation_views(self._views, {"account": account}, run, last)

    def doctor(self) -> DoctorReport:
        """Integrity report: duplicate open trades, slots that disagree with their fills,
        journal gaps, fills of another strategy's order, overfilled orders, instruments
        several strategies trade, EXTERNAL positions, broken invariants."""
        return run_doctor(self.database)

    def rejected_inputs(self) -> list[dict[str, Any]]:
        """Refused inputs, oldest first: id, received_at, source, line, reason, raw."""
        return rejected_views(self._views)

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
        return anomaly_views(self._views, filters)

    # -- replay -----------------------------------------------------------------------

    def verify(self, progress: Callable[[int], None] | None = None) -> VerifyReport:
        """Replay the journal in memory, compare with the stored projections, check invariants."""
        return verify(self._views, progress)

    def rebuild(self, progress: Callable[[int], None] | None = None) -> RebuildReport:
        """Rewrite every projection from the journal. Refuses if the journal does not replay."""
        entries = 0

        def produce(journal: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
            nonlocal entries
            result = replay(journal, progress)
            entries = result.entries
            if result.problems:
                raise RebuildError(result.problems)
            return {name: list(rows.values()) for name, rows in result.uow.tables.items()}

        self._uow.rollback()  # drop caches: the projections are about to be rewritten
        rows = rewrite_projections(self.database, produce)
        return RebuildReport(entries, rows)


def _filters(
    account: str | None, instrument: str | None, strategy: str | None, mode: str | None
) -> dict[str, str | None]:
    if mode is not None:
        mode = mode.upper()
    return {"account": account, "instrument": instrument, "strategy": strategy, "mode": mode}


def _chunks(lines: Iterator[Line], size: int) -> Iterator[list[Line]]:
    while chunk := list(islice(lines, size)):
        yield chunk


class RebuildError(RuntimeError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("the journal does not replay cleanly; nothing was rewritten")
        self.problems = problems
