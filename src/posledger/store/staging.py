"""What every unit of work does the same way: stage write sets and cache what they load.

A write set added to a transaction is staged, not written: loads see it at once (the
books take its slots, trades, mark and halts; its fill and transfer ids count as seen;
its orders and reference data are cached), and the store writes everything at commit.
:class:`StagingUnitOfWork` keeps that bookkeeping; the SQL and in-memory units of work
add how to read what is stored and how to write what is staged.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from ..domain.book import Book
from ..domain.enums import OrderStatus, PositionSide
from ..domain.positions import Slot, SlotKey, Trade
from ..domain.refdata import Account, Instrument, Order, Strategy
from ..domain.writeset import (
    AddAccount,
    AddFill,
    AddInstrument,
    AddOrder,
    AddRun,
    AddStrategy,
    AddTransfer,
    Change,
    Command,
    JournalEntry,
    PutAccount,
    PutBracket,
    PutExit,
    PutHalt,
    PutMark,
    PutOrder,
    SettleCommand,
    WriteSet,
)
from ..ports import Seen, UnitOfWork

__all__ = ["INSTRUMENT", "Staged", "StagingUnitOfWork"]

INSTRUMENT = "instrument:"
ORDER_CACHE = 50_000
"""Orders kept in memory, most recently used first."""


class Staged:
    """What a transaction has added and not yet written."""

    def __init__(self) -> None:
        self.entries: list[tuple[JournalEntry, int | None]] = []
        """Entries in the order added, with the number replay gives them (else None)."""
        self.keys: list[str | None] = []
        """The key of the HTTP API that sent each entry's input (None: none did)."""
        self.changes: list[tuple[Change, int]] = []
        """Changes, with the index of their entry in ``entries`` (-1: none)."""
        self.commands: list[tuple[Command, int]] = []
        self.versions: dict[str, int] = {}
        """New version of every stream appended to."""
        self.fills: dict[tuple[str, str], Seen] = {}
        self.transfers: dict[tuple[str, str], Seen] = {}
        self.runs: set[str] = set()

    def slots(self) -> Iterator[Slot]:
        for change, _ in self.changes:
            if type(change) is Slot:
                yield change

    def fills_of(self, client_order_id: str) -> Iterator[AddFill]:
        for change, _ in self.changes:
            if type(change) is AddFill and change.fill.client_order_id == client_order_id:
                yield change

    def orders_in(self, bracket_id: str) -> Iterator[str]:
        for change, _ in self.changes:
            if isinstance(change, AddOrder | PutOrder) and change.order.bracket_id == bracket_id:
                yield change.order.client_order_id


class StagingUnitOfWork(UnitOfWork):
    """Staging and caching, over how a store reads (``_read_*``) and writes (commit)."""

    def __init__(self, *, replay: bool = False) -> None:
        self._replay = replay
        """Replaying the journal inside one transaction (rebuild, verify): the books are
        this transaction's own, never reloaded."""
        self._accounts: dict[str, Account] = {}
        self._instruments: dict[str, Instrument] = {}
        self._strategies: dict[str, Strategy] = {}
        self._orders: OrderedDict[str, tuple[Order, OrderStatus]] = OrderedDict()
        self._staged = Staged()
        self._acting: str | None = None
        self._forget()

    def _forget(self) -> None:
        """Drop every cache another writer's commit could make stale."""
        self._books: dict[str, Book] = {}
        self._versions: dict[str, int] = {}
        self._absent_orders: set[str] = set()

    def _forget_all(self) -> None:
        self._forget()
        self._accounts.clear()
        self._instruments.clear()
        self._strategies.clear()
        self._orders.clear()

    # -- what a store provides ----------------------------------------------------------

    def _read_account(self, account: str) -> Account | None:
        raise NotImplementedError

    def _read_instrument(self, instrument: str) -> Instrument | None:
        raise NotImplementedError

    def _read_strategy(self, strategy: str) -> Strategy | None:
        raise NotImplementedError

    def _read_order(self, client_order_id: str) -> tuple[Order, OrderStatus] | None:
        raise NotImplementedError

    def _read_fill(self, account: str, exec_id: str) -> Seen | None:
        raise NotImplementedError

    def _read_transfer(self, account: str, transfer_id: str) -> Seen | None:
        raise NotImplementedError

    def _read_run(self, run: str) -> bool:
        raise NotImplementedError

    def _read_book(self, instrument: str) -> Book:
        """The instrument's book as stored, at its stream's version (taking its lock)."""
        raise NotImplementedError

    def _book_is_current(self, book: Book) -> bool:
        """Whether a book cached since an earlier transaction is still what is stored."""
        return True

    def _read_version(self, stream: str) -> int:
        """A stream's stored version (taking its lock)."""
        raise NotImplementedError

    def _read_slots(self, column: str, value: str) -> Iterator[tuple[SlotKey, bool]]:
        """(key, not flat) of the stored slots whose ``column`` is ``value``."""
        raise NotImplementedError

    def _read_bracket(self, bracket_id: str) -> list[str]:
        """Client order ids of the stored orders of a bracket."""
        raise NotImplementedError

    def _read_filled(self, account: str, client_order_id: str) -> Decimal:
        """The stored quantity filled on an order."""
        raise NotImplementedError

    # -- loads --------------------------------------------------------------------------

    def account(self, account: str) -> Account | None:
        found = self._accounts.get(account)
        if found is None:
            found = self._read_account(account)
            if found is not None:
                self._accounts[account] = found
        return found

    def instrument(self, instrument: str) -> Instrument | None:
        found = self._instruments.get(instrument)
        if found is None:
            found = self._read_instrument(instrument)
            if found is not None:
                self._instruments[instrument] = found
        return found

    def strategy(self, strategy: str) -> Strategy | None:
        found = self._strategies.get(strategy)
        if found is None:
            found = self._read_strategy(strategy)
            if found is not None:
                self._strategies[strategy] = found
        return found

    def order(self, client_order_id: str) -> tuple[Order, OrderStatus] | None:
        found = self._orders.get(client_order_id)
        if found is not None:
            self._orders.move_to_end(client_order_id)
            return found
        if client_order_id in self._absent_orders:
            return None
        found = self._read_order(client_order_id)
        if found is not None:
            self._remember_order(found)
        return found

    def _remember_order(self, entry: tuple[Order, OrderStatus]) -> None:
        self._orders[entry[0].client_order_id] = entry
        self._orders.move_to_end(entry[0].client_order_id)
        if len(self._orders) > ORDER_CACHE:
            self._orders.popitem(last=False)

    def fill_seen(self, account: str, exec_id: str) -> Seen | None:
        pending = self._staged.fills.get((account, exec_id))
        return pending if pending is not None else self._read_fill(account, exec_id)

    def transfer_seen(self, account: str, transfer_id: str) -> Seen | None:
        pending = self._staged.transfers.get((account, transfer_id))
        return pending if pending is not None else self._read_transfer(account, transfer_id)

    def run_seen(self, run: str) -> bool:
        return run in self._staged.runs or self._read_run(run)

    def book(self, instrument: str) -> Book:
        book = self._books.get(instrument)
        if book is not None and (self._replay or self._book_is_current(book)):
            return book
        # Not cached, or another writer appended to the stream since: read it again.
        book = self._books[instrument] = self._read_book(instrument)
        return book

    def stream_version(self, stream: str) -> int:
        if stream.startswith(INSTRUMENT):
            return self.book(stream[len(INSTRUMENT) :]).version
        version = self._versions.get(stream)
        if version is None:
            version = self._versions[stream] = self._read_version(stream)
        return version

    def _non_flat_slots(self, column: str, value: str) -> list[SlotKey]:
        """Keys of the non-flat slots whose ``column`` (account or strategy) is ``value``, as
        this transaction sees them: the stored rows, then what it changed."""
        held = dict(self._read_slots(column, value))
        for slot in self._staged.slots():
            if getattr(slot.key, column) == value:
                held[slot.key] = bool(slot.quantity)
        return [key for key, on in held.items() if on]

    def open_slots(self, strategy: str) -> int:
        return len(self._non_flat_slots("strategy", strategy))

    def held(self, account: str) -> list[tuple[str, PositionSide]]:
        keys = self._non_flat_slots("account", account)
        return sorted({(key.instrument, key.position_side) for key in keys})

    def bracket(self, bracket_id: str) -> list[tuple[Order, OrderStatus, Decimal]]:
        ids = [*self._read_bracket(bracket_id), *self._staged.orders_in(bracket_id)]
        out = []
        for cid in dict.fromkeys(ids):
            found = self.order(cid)  # as this transaction sees it: a cancel here counts
            if found is None:
                continue
            order, status = found
            filled = self._read_filled(order.account, cid)
            for change in self._staged.fills_of(cid):
                filled += change.fill.quantity
            out.append((order, status, filled))
        return out

    # -- staging ------------------------------------------------------------------------

    def acting(self, key_id: str | None) -> None:
        self._acting = key_id

    def add(self, write_set: WriteSet, *, seq: int | None = None) -> None:
        staged = self._staged
        entry = write_set.entry
        index = -1
        if entry is not None:
            index = len(staged.entries)
            staged.entries.append((entry, seq))
            staged.keys.append(self._acting)
            self._advance(entry, replayed=seq is not None)
        changes = staged.changes
        for change in write_set.changes:
            changes.append((change, index))
            stage = _STAGE.get(type(change))
            if stage is not None:
                stage(self, change, entry)
        if write_set.commands and seq is None:  # a replay sends nothing again
            if entry is None:
                raise ValueError("commands go out with the journal entry that causes them")
            for command in write_set.commands:
                staged.commands.append((command, index))

    def _advance(self, entry: JournalEntry, replayed: bool) -> None:
        """Move the entry's stream to its version (a replayed entry's stream is where the
        journal says it is)."""
        stream = entry.stream
        if stream.startswith(INSTRUMENT):
            name = stream[len(INSTRUMENT) :]
            book = self._books.get(name) or self.book(name)
            if not replayed and entry.version != book.version + 1:
                raise RuntimeError(f"{stream}: version {entry.version} after {book.version}")
            book.version = entry.version
        else:
            if not replayed:
                known = self.stream_version(stream)
                if entry.version != known + 1:
                    raise RuntimeError(f"{stream}: version {entry.version} after {known}")
            self._versions[stream] = entry.version
        if not replayed:
            self._staged.versions[stream] = entry.version

    def _stage_account(self, change: AddAccount | PutAccount, entry: JournalEntry | None) -> None:
        self._accounts[change.account.account] = change.account

    def _stage_instrument(self, change: AddInstrument, entry: JournalEntry | None) -> None:
        self._instruments[change.instrument.instrument] = change.instrument

    def _stage_strategy(self, change: AddStrategy, entry: JournalEntry | None) -> None:
        self._strategies[change.strategy.strategy] = change.strategy

    def _stage_order(self, change: AddOrder | PutOrder, entry: JournalEntry | None) -> None:
        self._absent_orders.discard(change.order.client_order_id)
        self._remember_order((change.order, change.status))

    def _stage_fill(self, change: AddFill, entry: JournalEntry | None) -> None:
        fill = change.fill
        record = None if entry is None else entry.input
        self._staged.fills[(fill.account, fill.exec_id)] = Seen(None, change.digest, record)

    def _stage_slot(self, slot: Slot, entry: JournalEntry | None) -> None:
        self._books[slot.key.instrument].put_slot(slot)

    def _stage_trade(self, trade: Trade, entry: JournalEntry | None) -> None:
        self._books[trade.key.instrument].put_trade(trade)

    def _stage_mark(self, change: PutMark, entry: JournalEntry | None) -> None:
        self._books[change.instrument].set_mark(change.price, change.ts)

    def _stage_halt(self, change: PutHalt, entry: JournalEntry | None) -> None:
        self._books[change.instrument].set_halt(change.account, change.halt)

    def _stage_bracket(self, change: PutBracket, entry: JournalEntry | None) -> None:
        self._books[change.key.instrument].put_bracket(change.key, change.bracket)

    def _stage_exit(self, change: PutExit, entry: JournalEntry | None) -> None:
        instrument = entry.stream[len(INSTRUMENT) :] if entry is not None else None
        if change.exit is not None:
            instrument = change.exit.key.instrument
        assert instrument is not None, "an exit changes with its instrument's journal entry"
        self._books[instrument].put_exit(change.client_order_id, change.exit)

    def _stage_settle(self, change: SettleCommand, entry: JournalEntry | None) -> None:
        if self._replay:
            return  # the outbox is not replayed
        found = self.command(change.command_id)
        if found is None:
            raise KeyError(f"no outbox command {change.command_id}")
        self.settle_command(found, change.status, change.ts, change.broker_order_id, change.reason)

    def _stage_transfer(self, change: AddTransfer, entry: JournalEntry | None) -> None:
        transfer = change.transfer
        if transfer.transfer_id is not None and change.digest is not None:
            key = (transfer.account, transfer.transfer_id)
            self._staged.transfers[key] = Seen(None, change.digest)

    def _stage_run(self, change: AddRun, entry: JournalEntry | None) -> None:
        self._staged.runs.add(change.run)

    def _take_staged(self) -> Staged:
        staged, self._staged = self._staged, Staged()
        return staged


_STAGE: dict[type, Callable[[StagingUnitOfWork, Any, JournalEntry | None], None]] = {
    AddAccount: StagingUnitOfWork._stage_account,
    PutAccount: StagingUnitOfWork._stage_account,
    AddInstrument: StagingUnitOfWork._stage_instrument,
    AddStrategy: StagingUnitOfWork._stage_strategy,
    AddOrder: StagingUnitOfWork._stage_order,
    PutOrder: StagingUnitOfWork._stage_order,
    AddFill: StagingUnitOfWork._stage_fill,
    Slot: StagingUnitOfWork._stage_slot,
    Trade: StagingUnitOfWork._stage_trade,
    PutMark: StagingUnitOfWork._stage_mark,
    PutHalt: StagingUnitOfWork._stage_halt,
    AddTransfer: StagingUnitOfWork._stage_transfer,
    AddRun: StagingUnitOfWork._stage_run,
    PutBracket: StagingUnitOfWork._stage_bracket,
    PutExit: StagingUnitOfWork._stage_exit,
    SettleCommand: StagingUnitOfWork._stage_settle,
}
