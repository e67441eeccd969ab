"""Replay: rebuild every projection from the journal, in memory, through the same handlers.

``verify`` compares the replayed projections with the stored ones and checks the
invariants; ``rebuild`` writes the replayed projections over the stored ones.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from ..adapters.jsonl import parse_line
from ..domain.book import Book, HaltState
from ..domain.enums import OrderStatus, PositionMode, PositionSide, Side
from ..domain.events import FillDecision, MarkDecision, ReconcileDecision, TransferDecision
from ..domain.invariants import Position3, check_invariants, fill_delta
from ..domain.numbers import exact
from ..domain.refdata import Account, Instrument, InvalidInput, Order, Strategy
from ..store import codec
from ..store import schema as s
from ..store.views import Views
from .handlers import REFUSED, handle
from .unit_of_work import FillSeen, Rejected, UnitOfWork

__all__ = ["MemoryUnitOfWork", "Replay", "VerifyReport", "replay", "verify"]

Key = tuple[Any, ...]
_PRIMARY_KEYS = {table.name: [c.name for c in table.primary_key.columns] for table in s.PROJECTIONS}
MAX_REPORTED = 20


class MemoryUnitOfWork(UnitOfWork):
    """A unit of work over dicts, fed one journal entry at a time.

    Trade ids come from the entry's journaled effects, and every append is compared with
    the entry: what the handlers decide now must be what was decided then.
    """

    def __init__(self) -> None:
        self.tables: dict[str, dict[Key, codec.Row]] = {name: {} for name in _PRIMARY_KEYS}
        self.problems: list[str] = []
        self._accounts: dict[str, Account] = {}
        self._instruments: dict[str, Instrument] = {}
        self._strategies: dict[str, Strategy] = {}
        self._orders: dict[str, tuple[Order, OrderStatus]] = {}
        self._books: dict[str, Book] = {}
        self._fills: dict[tuple[str, str], FillSeen] = {}
        self._transfers: dict[tuple[str, str], FillSeen] = {}
        self._records: dict[int, str] = {}
        self._versions: dict[str, int] = defaultdict(int)
        self._expected: Mapping[str, Any] = {}
        self._effects: Any = None
        """The expected entry's effects, decoded."""
        self._ids: list[int] = []
        self._appended = False
        self._top_trade = 0

    # -- driving ------------------------------------------------------------------------

    def expect(self, entry: Mapping[str, Any]) -> None:
        self._expected = entry
        self._appended = False
        effects = self._effects = msgspec.json.decode(entry["effects"])
        self._ids = list(effects.get("opened", ())) if isinstance(effects, dict) else []

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def _put(self, table: str, row: codec.Row) -> None:
        key = tuple(row[name] for name in _PRIMARY_KEYS[table])
        self.tables[table][key] = row

    # -- transactions ---------------------------------------------------------------

    def begin(self) -> None:
        pass

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        raise AssertionError("replay never rolls back")

    # -- reads ----------------------------------------------------------------------

    def account(self, account: str) -> Account | None:
        return self._accounts.get(account)

    def instrument(self, instrument: str) -> Instrument | None:
        return self._instruments.get(instrument)

    def strategy(self, strategy: str) -> Strategy | None:
        return self._strategies.get(strategy)

    def order(self, client_order_id: str) -> tuple[Order, OrderStatus] | None:
        return self._orders.get(client_order_id)

    def fill_seen(self, account: str, exec_id: str) -> FillSeen | None:
        return self._fills.get((account, exec_id))

    def journal_record(self, seq: int) -> str:
        return self._records[seq]

    def book(self, instrument: str) -> Book:
        book = self._books.get(instrument)
        if book is None:
            book = self._books[instrument] = Book(instrument)
        return book

    def rejected_seen(self, digest: str) -> bool:
        return False

    def transfer_seen(self, account: str, transfer_id: str) -> FillSeen | None:
        return self._transfers.get((account, transfer_id))

    def recorded_verdict(self) -> list[str] | None:
        effects = self._effects
        refused = effects.get("refused", []) if isinstance(effects, dict) else []
        return [str(reason) for reason in refused]

    # -- ids and the journal ------------------------------------------------------------

    def next_trade_id(self) -> int:
        seq = self._expected.get("seq")
        if self._ids:
            trade_id = self._ids.pop(0)
        else:
            trade_id = self._top_trade + 1
            self.problem(f"seq {seq}: replay opens a trade the journal does not record")
        self._top_trade = max(self._top_trade, trade_id)
        return trade_id

    def append(self, stream: str, kind: str, record: str, effects: str, recorded_at: int) -> int:
        entry = self._expected
        seq = int(entry["seq"])
        if self._appended:
            self.problem(f"seq {seq}: replay appended twice for one journal entry")
        self._appended = True
        self._versions[stream] += 1
        if (stream, kind) != (entry["stream"], entry["kind"]):
            self.problem(
                f"seq {seq}: journaled as {entry['kind']} on {entry['stream']}, "
                f"replays as {kind} on {stream}"
            )
        if self._versions[stream] != entry["version"]:
            self.problem(
                f"seq {seq}: journal stream {stream} is at version {entry['version']}, "
                f"replay expected {self._versions[stream]} (a gap or reordering)"
            )
            self._versions[stream] = int(entry["version"])
        if record != entry["input"]:
            self.problem(f"seq {seq}: journaled input is not in canonical form: {entry['input']}")
        if msgspec.json.decode(effects) != self._effects:
            self.problem(
                f"seq {seq}: replayed effects differ from the journal\n"
                f"  journal: {entry['effects']}\n  replay:  {effects}"
            )
        self._records[seq] = record
        return seq

    # -- projections --------------------------------------------------------------------

    def add_account(self, account: Account, seq: int) -> None:
        self._accounts[account.account] = account
        self._put("accounts", codec.account_row(account, seq))

    def add_instrument(self, instrument: Instrument, seq: int) -> None:
        self._instruments[instrument.instrument] = instrument
        self._put("instruments", codec.instrument_row(instrument, seq))

    def add_strategy(self, strategy: Strategy, seq: int) -> None:
        self._strategies[strategy.strategy] = strategy
        self._put("strategies", codec.strategy_row(strategy, seq))

    def update_account(self, account: Account, seq: int) -> None:
        self.add_account(account, seq)

    def add_order(self, order: Order, seq: int, status: OrderStatus = OrderStatus.OPEN) -> None:
        self._orders[order.client_order_id] = (order, status)
        self._put("orders", codec.order_row(order, status, seq))

    def cancel_order(self, order: Order, seq: int) -> None:
        self._orders[order.client_order_id] = (order, OrderStatus.CANCELLED)
        self._put("orders", codec.order_row(order, OrderStatus.CANCELLED, seq))

    def add_fill(self, decision: FillDecision, seq: int, digest: str) -> None:
        fill = decision.fill
        self._fills[(fill.account, fill.exec_id)] = FillSeen(seq, digest)
        self._put("fills", codec.fill_row(decision, seq, digest))
        self._project(decision, seq)
        for row in codec.trade_fill_rows(decision, seq):
            self._put("trade_fills", row)
        for row in codec.anomaly_rows(decision, seq):
            self._put("anomalies", row)

    def add_mark(self, decision: MarkDecision, seq: int) -> None:
        self._put("marks", codec.mark_row(decision, seq))
        for trade in decision.trades:
            self._put("trades", codec.trade_row(trade))

    def _project(
        self, decision: FillDecision | TransferDecision | ReconcileDecision, seq: int
    ) -> None:
        for slot in decision.slots:
            self._put("slots", codec.slot_row(slot, seq))
        for trade in decision.trades:
            self._put("trades", codec.trade_row(trade))

    def _put_rows(self, rows: Mapping[str, list[codec.Row]]) -> None:
        for table, table_rows in rows.items():
            for row in table_rows:
                self._put(table, row)

    def add_transfer(self, decision: TransferDecision, seq: int, digest: str | None) -> None:
        transfer = decision.transfer
        if transfer.transfer_id is not None and digest is not None:
            self._transfers[(transfer.account, transfer.transfer_id)] = FillSeen(seq, digest)
        self._put_rows(codec.transfer_rows(decision, seq, digest))
        self._project(decision, seq)

    def add_reconcile(self, decision: ReconcileDecision, seq: int) -> None:
        self._put_rows(codec.reconcile_rows(decision, seq))
        self._project(decision, seq)

    def set_halt(self, account: str, instrument: str, halt: HaltState | None, seq: int) -> None:
        if halt is None:
            self.tables["halts"].pop((account, instrument), None)
        else:
            self._put("halts", codec.halt_row(account, instrument, halt, seq))

    def add_rejected(self, rejected: Rejected) -> None:
        self.problem(f"replay rejected a journaled input: {rejected.reason}")


@dataclass
class Replay:
    uow: MemoryUnitOfWork
    entries: int = 0

    @property
    def problems(self) -> list[str]:
        return self.uow.problems


def replay(
    journal: Iterable[Mapping[str, Any]], progress: Callable[[int], None] | None = None
) -> Replay:
    """Re-apply every journal entry, in order, to an empty in-memory ledger."""
    uow = MemoryUnitOfWork()
    result = Replay(uow)
    for entry in journal:
        result.entries += 1
        seq = entry["seq"]
        uow.expect(entry)
        try:
            item = parse_line(entry["input"])
        except InvalidInput as exc:
            uow.problem(f"seq {seq}: journaled input cannot be read: {exc}")
            continue
        outcome = handle(uow, item, _fixed_clock(int(entry["recorded_at"])), replaying=True)
        refused = outcome.reason is not None and outcome.reason.startswith(REFUSED)
        if not outcome.applied and not (refused and outcome.seq is not None):
            uow.problem(
                f"seq {seq}: journaled {outcome.kind} {outcome.key} is {outcome.status} "
                f"on replay: {outcome.reason}"
            )
        elif uow._ids:
            uow.problem(f"seq {seq}: the journal records trades the replay does not open")
        if progress is not None and result.entries % 1_000 == 0:
            progress(result.entries)
    return result


def _fixed_clock(ns: int) -> Callable[[], int]:
    return lambda: ns


@dataclass
class VerifyReport:
    journal_entries: int = 0
    rows_compared: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        if a is None or b is None:
            return a is b
        return Decimal(a) == Decimal(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) == bool(b)
    return bool(a == b)


def _compare_table(
    name: str,
    stored: Iterable[Mapping[str, Any]],
    replayed: dict[Key, codec.Row],
    report: VerifyReport,
) -> None:
    keys = _PRIMARY_KEYS[name]
    remaining = dict(replayed)
    reported = 0

    def note(text: str) -> None:
        nonlocal reported
        reported += 1
        if reported <= MAX_REPORTED:
            report.problems.append(text)

    for row in stored:
        report.rows_compared += 1
        key = tuple(row[k] for k in keys)
        mine = remaining.pop(key, None)
        if mine is None:
            note(f"{name} {key}: stored but not produced by replay")
            continue
        diffs = [col for col in mine if not _same(row.get(col), mine[col])]
        if diffs:
            shown = ", ".join(f"{c} stored {row.get(c)!r} replay {mine[c]!r}" for c in diffs)
            note(f"{name} {key}: {shown}")
    for key in remaining:
        note(f"{name} {key}: produced by replay but not stored")
    if reported > MAX_REPORTED:
        report.problems.append(f"{name}: {reported - MAX_REPORTED} more differences not shown")


def stored_invariants(views: Views) -> list[str]:
    """Check DESIGN §3 on the stored projections."""
    with exact():
        return _stored_invariants(views)


def _stored_invariants(views: Views) -> list[str]:
    instruments = {
        r["instrument"]: codec.instrument_from_row(r) for r in views.table(s.instruments)
    }
    hedge = {
        r["account"]
        for r in views.table(s.accounts)
        if r["position_mode"] == PositionMode.HEDGE.value
    }
    net: dict[Position3, Decimal] = defaultdict(Decimal)
    for r in views.table(s.fills):
        where = (r["account"], r["instrument"], PositionSide(r["position_side"]))
        net[where] += fill_delta(
            Side(r["side"]),
            r["quantity"],
            r["commission"],
            r["commission_currency"],
            instruments[r["instrument"]],
        )
    for r in views.table(s.adjustments):
        net[(r["account"], r["instrument"], PositionSide(r["position_side"]))] += r["quantity"]
    slots = [codec.slot_from_row(r) for r in views.table(s.slots)]
    open_trades = [codec.trade_from_row(r) for r in views.table(s.trades) if r["status"] == "open"]
    return check_invariants(slots, open_trades, net, hedge)


def verify(views: Views, progress: Callable[[int], None] | None = None) -> VerifyReport:
    result = replay(views.journal(), progress)
    report = VerifyReport(journal_entries=result.entries, problems=list(result.problems))
    for table in s.PROJECTIONS:
        _compare_table(table.name, views.table(table), result.uow.tables[table.name], report)
    report.problems.extend(f"invariant: {p}" for p in stored_invariants(views))
    return report
