"""Write sets: everything one applied input writes, as one immutable value.

A write set holds the journal entry of the input (stream, version, kind, canonical input,
effects), the changes it makes to the projections (slots, trades, fills, orders...) and
the commands it sends out through the outbox. The service builds one per decision
(:mod:`posledger.service.writesets`); a unit of work commits a list of them in one
transaction; replay builds the same write sets from the journal, so the writer and
replay cannot disagree about what a decision writes.

Changes name the projection they touch and carry domain values; the store turns each into
rows (``posledger.store.codec``), giving them the journal number the entry gets at commit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from .book import HaltState
from .decisions import Anomaly, Check, Leg, Orphan
from .enums import Intent, OrderStatus, PositionSide
from .exits import Bracket, ExitOrder
from .inputs import Fill, Reconcile, Transfer
from .positions import Slot, SlotKey, Trade
from .refdata import Account, Instrument, Order, Strategy

__all__ = [
    "AddAccount",
    "AddAdjustment",
    "AddAnomalies",
    "AddCheck",
    "AddFill",
    "AddInstrument",
    "AddLegs",
    "AddOrder",
    "AddRejected",
    "AddRun",
    "AddStrategy",
    "AddTransfer",
    "Change",
    "Command",
    "JournalEntry",
    "PutAccount",
    "PutBracket",
    "PutExit",
    "PutHalt",
    "PutMark",
    "PutOrder",
    "Rejected",
    "SettleCommand",
    "WriteSet",
]


class JournalEntry(NamedTuple):
    stream: str
    version: int
    """The stream's version this entry makes: one more than the version it was decided on."""
    kind: str
    input: str
    """The canonical record of the input (its JSONL line)."""
    effects: str
    """What the decision did, as JSON (the journal's effects)."""
    recorded_at: int


class Rejected(NamedTuple):
    """A refused input, kept for review."""

    received_at: int
    source: str | None
    line_no: int | None
    raw: str
    reason: str
    digest: str
    """Of the raw input and the reason: the same refusal is kept once."""


class Command(NamedTuple):
    """An instruction to whoever executes orders, sent through the outbox (docs/brackets.md)."""

    command_id: str
    """Stable and unique: used as the broker's client order id, so a retry is harmless."""
    kind: str
    """``place``, ``amend`` or ``cancel``."""
    account: str
    instrument: str
    strategy: str
    payload: str
    """The order spec, as JSON."""


# -- changes to the projections -----------------------------------------------------------


class AddAccount(NamedTuple):
    """A registration: the account is new (a second one with its name is refused by the
    database, as a race between two writers would make it)."""

    account: Account


class PutAccount(NamedTuple):
    """An account registered again with another reconcile policy: it replaces the row."""

    account: Account


class AddInstrument(NamedTuple):
    instrument: Instrument


class AddStrategy(NamedTuple):
    strategy: Strategy


class AddOrder(NamedTuple):
    """An order registered (open, or refused pre-trade and kept)."""

    order: Order
    status: OrderStatus


class PutOrder(NamedTuple):
    """An order's new status (cancelled)."""

    order: Order
    status: OrderStatus


class AddFill(NamedTuple):
    """A fill applied, and to whom it was attributed."""

    fill: Fill
    strategy: str
    position_side: PositionSide
    intent: Intent | None
    commission_currency: str
    digest: str
    """Of the fill's canonical record: the same exec_id with other content is a conflict."""


class AddLegs(NamedTuple):
    """Each slot's share of a fill, transfer or reconciliation (a trade's fills)."""

    legs: tuple[Leg, ...]
    account: str
    exec_id: str | None
    ts: int


class AddAnomalies(NamedTuple):
    anomalies: tuple[Anomaly, ...]
    exec_id: str | None
    """The fill that caused them (None: another input did)."""


class PutBracket(NamedTuple):
    """A slot's bracket is now this (None: it has none)."""

    key: SlotKey
    bracket: Bracket | None


class PutExit(NamedTuple):
    """A watched exit order is now this (None: it is no longer watched)."""

    client_order_id: str
    exit: ExitOrder | None


class SettleCommand(NamedTuple):
    """An outbox command acked or failed, at ``ts``. Not a projection: replay leaves the
    outbox be."""

    command_id: str
    status: str
    broker_order_id: str | None
    reason: str | None
    ts: int


class PutMark(NamedTuple):
    instrument: str
    price: Decimal
    ts: int


class PutHalt(NamedTuple):
    account: str
    instrument: str
    halt: HaltState | None
    """None: the halt is lifted."""


class AddTransfer(NamedTuple):
    transfer: Transfer
    """With its ``ts`` set."""
    position_side: PositionSide
    price: Decimal
    origin: str
    """``transfer`` (by hand) or ``adopt_orphans`` (a reconciliation's)."""
    digest: str | None
    """Of a transfer sent with an id: sent again, it is applied once."""


class AddAdjustment(NamedTuple):
    """What a reconciliation under the adopt policy booked to EXTERNAL."""

    reconcile: Reconcile
    quantity: Decimal
    price: Decimal


class AddCheck(NamedTuple):
    """One key of a reconciliation run, as compared and acted on."""

    reconcile: Reconcile
    check: Check
    orphan: Orphan | None


class AddRun(NamedTuple):
    """A reconciliation run's name, taken by its first check: a name is used once."""

    run: str
    ts: int


class AddRejected(NamedTuple):
    rejected: Rejected


Change = (
    AddAccount
    | PutAccount
    | AddInstrument
    | AddStrategy
    | AddOrder
    | PutOrder
    | AddFill
    | Slot
    | Trade
    | AddLegs
    | AddAnomalies
    | PutMark
    | PutHalt
    | AddTransfer
    | AddAdjustment
    | AddCheck
    | AddRun
    | AddRejected
    | PutBracket
    | PutExit
    | SettleCommand
)
"""One change to the projections. A :class:`~.positions.Slot` or
:class:`~.positions.Trade` stands for itself: the slot or trade is now this."""


class WriteSet(NamedTuple):
    entry: JournalEntry | None
    """None for what is not journaled (a refused input kept for review)."""
    changes: tuple[Change, ...]
    commands: tuple[Command, ...] = ()
