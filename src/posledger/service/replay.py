"""Replay: re-apply the journal through the same handlers and write sets as live inputs.

``verify`` replays into a scratch store and compares its projections with the stored
ones, table by table in key order (both streamed, so memory stays bounded), then checks
the invariants on the stored books. ``rebuild`` replays into the database itself, in one
transaction that has emptied the projections and keeps writers out.

While an entry is replayed, :class:`Replaying` stands between the handlers and the store:
trade ids come from the entry's journaled effects, an order's pre-trade verdict is the one
recorded, streams are at the versions the journal gives, and what the handlers decide now
is compared with what the journal says was decided then.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from ..adapters.jsonl import parse_line
from ..domain.book import Book
from ..domain.enums import OrderStatus, PositionSide
from ..domain.numbers import exact
from ..domain.refdata import Account, Instrument, InvalidInput, Order, Strategy
from ..domain.writeset import WriteSet
from ..errors import RebuildError
from ..ports import CommandRow, JournalRow, Past, Reads, Seen, Store, UnitOfWork
from .handlers import REFUSED, handle

__all__ = [
    "RebuildReport",
    "Replaying",
    "VerifyReport",
    "rebuild",
    "replay",
    "replay_prefix",
    "verify",
]

MAX_REPORTED = 20
PAGE = 2000
"""Journal entries read, and replayed before their rows are written, at a time."""


class Replaying(UnitOfWork):
    """A store's replay unit of work, fed one journal entry at a time (see the module)."""

    def __init__(self, inner: UnitOfWork, versions: dict[str, int] | None = None) -> None:
        self.inner = inner
        self.problems: list[str] = []
        self.versions: dict[str, int] = defaultdict(int, versions or {})
        self._entry: JournalRow | None = None
        self._effects: Any = None
        self._ids: list[int] = []
        self._top_trade = 0

    def expect(self, entry: JournalRow) -> None:
        self._entry = entry
        try:
            effects = self._effects = msgspec.json.decode(entry.effects)
        except msgspec.DecodeError:
            effects = self._effects = None
            self.problem(f"seq {entry.seq}: journaled effects cannot be read: {entry.effects}")
        self._ids = list(effects.get("opened", ())) if isinstance(effects, dict) else []

    def problem(self, text: str) -> None:
        self.problems.append(text)

    @property
    def leftover_ids(self) -> bool:
        return bool(self._ids)

    # -- what replay decides differently ------------------------------------------------

    def stream_version(self, stream: str) -> int:
        return self.versions[stream]

    def next_trade_id(self) -> int:
        if self._ids:
            trade_id = self._ids.pop(0)
        else:
            trade_id = self._top_trade + 1
            seq = None if self._entry is None else self._entry.seq
            self.problem(f"seq {seq}: replay opens a trade the journal does not record")
        self._top_trade = max(self._top_trade, trade_id)
        return trade_id

    def recorded_verdict(self) -> list[str] | None:
        effects = self._effects
        refused = effects.get("refused", []) if isinstance(effects, dict) else []
        return [str(reason) for reason in refused]

    def add(self, write_set: WriteSet, *, seq: int | None = None) -> None:
        entry, expected = write_set.entry, self._entry
        assert expected is not None
        number = expected.seq
        if entry is None:
            self.problem(f"seq {number}: replay writes something the journal does not record")
            return
        if (entry.stream, entry.kind) != (expected.stream, expected.kind):
            self.problem(
                f"seq {number}: journaled as {expected.kind} on {expected.stream}, "
                f"replays as {entry.kind} on {entry.stream}"
            )
        if entry.version != expected.version:
            self.problem(
                f"seq {number}: journal stream {expected.stream} is at version "
                f"{expected.version}, replay expected {entry.version} (a gap or reordering)"
            )
        if entry.input != expected.input:
            self.problem(
                f"seq {number}: journaled input is not in canonical form: {expected.input}"
            )
        if (
            entry.effects != expected.effects
            and msgspec.json.decode(entry.effects) != self._effects
            and not _earlier_mae_rule(expected.kind, self._effects)
        ):
            self.problem(
                f"seq {number}: replayed effects differ from the journal\n"
                f"  journal: {expected.effects}\n  replay:  {entry.effects}"
            )
        self.versions[expected.stream] = expected.version
        self.inner.add(
            write_set._replace(entry=entry._replace(version=expected.version)), seq=number
        )

    # -- everything else is the store's --------------------------------------------------

    def begin(self, txid: str) -> None:
        self.inner.begin(txid)

    def commit(self) -> list[int]:
        return self.inner.commit()

    def rollback(self) -> None:
        self.inner.rollback()

    def flush(self) -> None:
        self.inner.flush()

    def account(self, account: str) -> Account | None:
        return self.inner.account(account)

    def instrument(self, instrument: str) -> Instrument | None:
        return self.inner.instrument(instrument)

    def strategy(self, strategy: str) -> Strategy | None:
        return self.inner.strategy(strategy)

    def order(self, client_order_id: str) -> tuple[Order, OrderStatus] | None:
        return self.inner.order(client_order_id)

    def fill_seen(self, account: str, exec_id: str) -> Seen | None:
        return self.inner.fill_seen(account, exec_id)

    def transfer_seen(self, account: str, transfer_id: str) -> Seen | None:
        return self.inner.transfer_seen(account, transfer_id)

    def run_seen(self, run: str) -> bool:
        return self.inner.run_seen(run)

    def journal_record(self, seq: int) -> str:
        return self.inner.journal_record(seq)

    def book(self, instrument: str) -> Book:
        return self.inner.book(instrument)

    def open_slots(self, strategy: str) -> int:
        return self.inner.open_slots(strategy)

    def held(self, account: str) -> list[tuple[str, PositionSide]]:
        return self.inner.held(account)

    def bracket(self, bracket_id: str) -> list[tuple[Order, OrderStatus, Decimal]]:
        return self.inner.bracket(bracket_id)

    def claim_commands(
        self,
        worker: str,
        limit: int,
        now: int,
        lease_ns: int,
        accounts: tuple[str, ...] | None = None,
        strategies: tuple[str, ...] | None = None,
        own: bool = False,
    ) -> list[CommandRow]:
        raise AssertionError("replay claims no commands")

    def command(self, command_id: str) -> CommandRow | None:
        raise AssertionError("replay reads no commands")

    def settle_command(
        self,
        command: CommandRow,
        status: str,
        now: int,
        broker_order_id: str | None = None,
        reason: str | None = None,
    ) -> CommandRow:
        raise AssertionError("replay settles no commands")


def _earlier_mae_rule(kind: str, effects: Any) -> bool:
    """A mark journaled before MAE/MFE rule 2 (see ``effects.MAE_RULE``): its effects
    recorded the earlier rule's values, which replay no longer computes."""
    return kind == "mark" and isinstance(effects, dict) and "mae_rule" not in effects


def _pages(reads: Reads, until_seq: int | None = None, after: int = 0) -> Iterator[JournalRow]:
    """The journal in order after entry ``after``, a page at a time (up to entry
    ``until_seq``)."""
    while page := reads.journal(after, PAGE):
        for entry in page:
            if until_seq is not None and entry.seq > until_seq:
                return
            yield entry
        after = page[-1].seq


def _replay_into(
    scratch: Store,
    stored: Reads,
    txid: str,
    progress: Callable[[int], None] | None,
    until_seq: int | None = None,
    past: Past | None = None,
) -> tuple[int, list[str]]:
    """Replay the stored journal (up to entry ``until_seq``) into the empty ``scratch``
    store (or into ``past``, after its entry), in one transaction; how many entries, and
    the problems found."""
    after, versions = (0, None) if past is None else (past.after, past.versions)
    uow = scratch.replay_unit_of_work()
    try:
        uow.begin(txid)
        journal = _pages(stored, until_seq, after)
        entries, problems = replay(journal, uow, progress, versions)
        uow.commit()
    finally:
        uow.close()
    return entries, problems


def replay_prefix(
    store: Store,
    until_seq: int,
    progress: Callable[[int], None] | None = None,
    *,
    history: bool = True,
) -> Store:
    """A new scratch store holding the ledger as it stood once journal entry ``until_seq``
    was applied: the newest usable checkpoint before it, and the journal after that
    replayed (docs/format.md, As of a time). With ``history``, also the fills, legs and
    closed trades up to it (what ``trades`` and ``pnl`` read; ``positions`` does not). The
    caller closes it. Raises :class:`RebuildError` if that part of the journal does not
    replay cleanly."""
    past = store.past(until_seq)
    scratch = past.store
    try:
        with store.snapshot() as stored:
            _, problems = _replay_into(scratch, stored, "as-of", progress, until_seq, past)
        if problems:
            raise RebuildError(problems)
        if history:
            past.history()
    except BaseException:
        scratch.close()
        raise
    return scratch


def replay(
    journal: Iterable[JournalRow],
    uow: UnitOfWork,
    progress: Callable[[int], None] | None = None,
    versions: dict[str, int] | None = None,
    checkpoint: Callable[[int, int, dict[str, int]], None] | None = None,
) -> tuple[int, list[str]]:
    """Re-apply every journal entry, in order, into ``uow`` (a store's replay unit of work,
    in a transaction the caller owns; its streams at ``versions``, all at 0 without);
    return how many entries and the problems found. Every :data:`PAGE` entries, while
    nothing is wrong, ``checkpoint`` is called with the last entry's number, the entries
    replayed and the streams' versions."""
    replaying = Replaying(uow, versions)
    entries = 0
    with exact():
        for entry in journal:
            entries += 1
            replaying.expect(entry)
            try:
                item = parse_line(entry.input)
            except InvalidInput as exc:
                replaying.problem(f"seq {entry.seq}: journaled input cannot be read: {exc}")
                continue
            clock = _fixed_clock(entry.recorded_at)
            outcome, write_set = handle(replaying, item, clock, replaying=True)
            refused = outcome.reason is not None and outcome.reason.startswith(REFUSED)
            if write_set is None or not (outcome.applied or refused):
                replaying.problem(
                    f"seq {entry.seq}: journaled {outcome.kind} {outcome.key} is "
                    f"{outcome.status} on replay: {outcome.reason}"
                )
            else:
                replaying.add(write_set)
            if replaying.leftover_ids:
                replaying.problem(
                    f"seq {entry.seq}: the journal records trades the replay does not open"
                )
            if entries % PAGE == 0:
                uow.flush()
                if checkpoint is not None and not replaying.problems:
                    checkpoint(entry.seq, entries, replaying.versions)
                if progress is not None:
                    progress(entries)
    return entries, replaying.problems


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


@dataclass
class RebuildReport:
    journal_entries: int
    rows: dict[str, int]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        if a is None or b is None:
            return a is b
        return Decimal(a) == Decimal(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) == bool(b)
    return bool(a == b)


_END = object()


def _compare_table(
    name: str,
    keys: tuple[str, ...],
    stored: Iterator[dict[str, Any]],
    replayed: Iterator[dict[str, Any]],
    report: VerifyReport,
) -> None:
    """Both tables in key order, walked side by side."""
    reported = 0

    def note(text: str) -> None:
        nonlocal reported
        reported += 1
        if reported <= MAX_REPORTED:
            report.problems.append(text)

    def key(row: Any) -> Any:
        return None if row is _END else tuple(row[k] for k in keys)

    a, b = next(stored, _END), next(replayed, _END)
    while a is not _END or b is not _END:
        ka, kb = key(a), key(b)
        if kb is None or (ka is not None and ka < kb):
            report.rows_compared += 1
            note(f"{name} {ka}: stored but not produced by replay")
            a = next(stored, _END)
        elif ka is None or kb < ka:
            note(f"{name} {kb}: produced by replay but not stored")
            b = next(replayed, _END)
        else:
            assert isinstance(a, dict) and isinstance(b, dict)
            report.rows_compared += 1
            diffs = [col for col in b if not _same(a.get(col), b[col])]
            if diffs:
                shown = ", ".join(f"{c} stored {a.get(c)!r} replay {b[c]!r}" for c in diffs)
                note(f"{name} {ka}: {shown}")
            a, b = next(stored, _END), next(replayed, _END)
    if reported > MAX_REPORTED:
        report.problems.append(f"{name}: {reported - MAX_REPORTED} more differences not shown")


def verify(store: Store, progress: Callable[[int], None] | None = None) -> VerifyReport:
    """Replay the journal into a scratch store, compare every projection, check invariants."""
    scratch = store.scratch()
    try:
        with store.snapshot() as stored:
            entries, problems = _replay_into(scratch, stored, "verify", progress)
            report = VerifyReport(journal_entries=entries, problems=list(problems))
            replayed = scratch.reads()
            for name, keys in stored.projections().items():
                _compare_table(name, keys, stored.table(name), replayed.table(name), report)
            report.problems.extend(f"invariant: {p}" for p in stored.invariant_problems())
    finally:
        scratch.close()
    return report


def rebuild(store: Store, progress: Callable[[int], None] | None = None) -> RebuildReport:
    """Rewrite every projection from the journal, in one transaction, with a checkpoint
    every :data:`PAGE` entries; refuse (changing nothing) if the journal does not replay
    cleanly."""
    with store.rebuilding() as uow:
        last = 0

        def checkpoint(seq: int, entries: int, versions: dict[str, int]) -> None:
            nonlocal last
            uow.save_checkpoint(seq, entries, versions, last, time.time_ns())
            last = seq

        entries, problems = replay(_pages(store.reads()), uow, progress, checkpoint=checkpoint)
        if problems:
            raise RebuildError(problems)
        uow.commit()
    return RebuildReport(entries, store.reads().counts())
