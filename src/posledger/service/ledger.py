"""The ledger: the public Python API. One method per use case; the CLI is a shell over it."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from types import TracebackType
from typing import Any, TypeVar

import msgspec

from ..adapters.jsonl import Line, read_lines
from ..adapters.records import encode, parse_record, to_record
from ..domain.inputs import Fill, Input, Mark
from ..domain.numbers import exact
from ..domain.refdata import InvalidInput, Order
from ..domain.timestamps import now_ns
from ..store.database import Database, DatabaseError
from ..store.rebuild import rewrite_projections
from ..store.views import Views
from ..store.writer import SqlUnitOfWork
from .handlers import Outcome, handle
from .queries import anomaly_views, position_views, rejected_views, trade_views
from .replay import VerifyReport, replay, verify
from .unit_of_work import Rejected

__all__ = ["RETRIES", "IngestReport", "Ledger", "RebuildReport"]

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
                        [i.instrument for i in items if isinstance(i, Fill | Order | Mark)],
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
    ) -> list[dict[str, Any]]:
        """Slots as DESIGN §7 ``positions --json`` objects: open ones unless ``include_flat``."""
        filters = {"account": account, "instrument": instrument, "strategy": strategy}
        return position_views(self._views, filters, include_flat)

    def trades(
        self,
        *,
        account: str | None = None,
        instrument: str | None = None,
        strategy: str | None = None,
        status: str | None = None,
        with_fills: bool = True,
    ) -> list[dict[str, Any]]:
        """Trades as DESIGN §7 ``trades --json`` objects, in the order they were opened."""
        filters = {"account": account, "instrument": instrument, "strategy": strategy}
        return trade_views(self._views, filters, status, with_fills)

    def rejected_inputs(self) -> list[dict[str, Any]]:
        """Refused inputs, oldest first: id, received_at, source, line, reason, raw."""
        return rejected_views(self._views)

    def anomalies(
        self,
        *,
        account: str | None = None,
        instrument: str | None = None,
        strategy: str | None = None,
    ) -> list[dict[str, Any]]:
        """Fills booked to EXTERNAL because they did not fit their slot, in journal order."""
        filters = {"account": account, "instrument": instrument, "strategy": strategy}
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


def _chunks(lines: Iterator[Line], size: int) -> Iterator[list[Line]]:
    while chunk := list(islice(lines, size)):
        yield chunk


class RebuildError(RuntimeError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("the journal does not replay cleanly; nothing was rewritten")
        self.problems = problems
