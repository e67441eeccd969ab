"""What may arrive: fills, marks, cancels and (read by reconciliation) broker positions.

Registrations of reference data arrive as the values of :mod:`.refdata` themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .enums import PositionMode, PositionSide, ReconcilePolicy, Side
from .numbers import ZERO
from .refdata import (
    Account,
    BracketSpec,
    Instrument,
    InvalidInput,
    Order,
    OrderSpec,
    Strategy,
    check_identifier,
    plain_identifier,
)

__all__ = [
    "COMMAND_KINDS",
    "BrokerPosition",
    "Cancel",
    "CommandAck",
    "CommandFailed",
    "Fill",
    "Halt",
    "Input",
    "Mark",
    "Reconcile",
    "Resume",
    "SetBracket",
    "Sweep",
    "Transfer",
]


@dataclass(frozen=True, slots=True)
class Fill:
    """An execution report: a fact. Quantity is positive; the side gives the direction."""

    exec_id: str
    account: str
    instrument: str
    side: Side
    quantity: Decimal
    price: Decimal
    ts: int
    client_order_id: str | None = None
    strategy: str | None = None
    commission: Decimal = ZERO
    commission_currency: str | None = None
    position_side: PositionSide | None = None
    liquidation: bool = False

    def __post_init__(self) -> None:
        if not (plain_identifier(self.exec_id) and plain_identifier(self.account)):
            check_identifier("exec_id", self.exec_id)
            check_identifier("account", self.account)
        if not plain_identifier(self.instrument):
            check_identifier("instrument", self.instrument)
        if self.client_order_id is not None:
            check_identifier("client_order_id", self.client_order_id)
        if self.strategy is not None:
            check_identifier("strategy", self.strategy)
        if self.commission_currency is not None:
            check_identifier("commission_currency", self.commission_currency)
        if self.quantity <= 0:
            raise InvalidInput(f"quantity must be positive, got {self.quantity}")


@dataclass(frozen=True, slots=True)
class Mark:
    """A price observation used for unrealized P&L and MAE/MFE.

    ``high`` and ``low``, when given, are the highest and lowest prices seen since the
    instrument's previous mark (a bar's high and low; the ledger writes them when it
    persists marks it kept in memory): they count for MAE/MFE as ``price`` does."""

    instrument: str
    price: Decimal
    ts: int | None = None
    high: Decimal | None = None
    low: Decimal | None = None

    def __post_init__(self) -> None:
        check_identifier("instrument", self.instrument)
        if self.high is not None and self.high < self.price:
            raise InvalidInput(f"mark high {self.high} is below its price {self.price}")
        if self.low is not None and self.low > self.price:
            raise InvalidInput(f"mark low {self.low} is above its price {self.price}")


@dataclass(frozen=True, slots=True)
class Cancel:
    client_order_id: str
    ts: int | None = None

    def __post_init__(self) -> None:
        check_identifier("client_order_id", self.client_order_id)


@dataclass(frozen=True, slots=True)
class BrokerPosition:
    """What the broker reports for one (account, instrument, position side)."""

    account: str
    instrument: str
    quantity: Decimal
    position_side: PositionSide | None = None
    avg_price: Decimal | None = None
    ts: int | None = None
    position_mode: PositionMode | None = None

    def __post_init__(self) -> None:
        check_identifier("account", self.account)
        check_identifier("instrument", self.instrument)


@dataclass(frozen=True, slots=True)
class Transfer:
    """An explicit move of quantity from one strategy's slot to another's."""

    account: str
    instrument: str
    from_strategy: str
    to_strategy: str
    quantity: Decimal
    position_side: PositionSide | None = None
    price: Decimal | None = None
    """None: the giving slot's average entry price."""
    ts: int | None = None
    transfer_id: str | None = None
    """Optional id: a transfer sent again with the same id is applied once."""

    def __post_init__(self) -> None:
        check_identifier("account", self.account)
        check_identifier("instrument", self.instrument)
        if self.transfer_id is not None:
            check_identifier("transfer_id", self.transfer_id)
        check_identifier("from_strategy", self.from_strategy)
        check_identifier("to_strategy", self.to_strategy)
        if self.from_strategy == self.to_strategy:
            raise InvalidInput("a transfer needs two different strategies")
        if self.quantity <= 0:
            raise InvalidInput(f"quantity must be positive, got {self.quantity}")


@dataclass(frozen=True, slots=True)
class Halt:
    """Lock an instrument on an account: entry orders are refused until a :class:`Resume`."""

    account: str
    instrument: str
    reason: str | None = None
    ts: int | None = None

    def __post_init__(self) -> None:
        check_identifier("account", self.account)
        check_identifier("instrument", self.instrument)
        if self.reason is not None:
            # Free text: at most 1000 characters, none a server refuses (NUL, lone
            # surrogates) nor any other control character but tab, line feed and carriage
            # return (docs/format.md, "Limits").
            if not self.reason.strip():
                raise InvalidInput("reason must not be blank")
            if len(self.reason) > 1000:
                raise InvalidInput(f"reason is longer than 1000 characters ({len(self.reason)})")
            for at, char in enumerate(self.reason, start=1):
                if (char < " " and char not in "\t\n\r") or "\x7f" <= char <= "\x9f":
                    raise InvalidInput(
                        f"reason has a control character U+{ord(char):04X} at character {at}"
                    )
                if 0xD800 <= ord(char) <= 0xDFFF:  # (no surrogate literal: mypyc compiles this)
                    raise InvalidInput(
                        f"reason has a lone surrogate U+{ord(char):04X} at character {at}"
                        " (not Unicode text)"
                    )


@dataclass(frozen=True, slots=True)
class Resume:
    """Lift a halt: a human has looked at the instrument and resolved what was wrong."""

    account: str
    instrument: str
    ts: int | None = None

    def __post_init__(self) -> None:
        check_identifier("account", self.account)
        check_identifier("instrument", self.instrument)


@dataclass(frozen=True, slots=True)
class Reconcile:
    """One comparison of the ledger with the broker, for one (account, instrument, position
    side), as part of the reconciliation run ``run``. Written by ``posledger reconcile``
    (from a ``broker_position`` line, or quantity zero where the broker lists nothing)."""

    run: str
    account: str
    instrument: str
    position_side: PositionSide
    quantity: Decimal
    """What the broker holds, signed."""
    policy: ReconcilePolicy
    price_tolerance: Decimal
    """Relative difference of average prices still counted as agreement."""
    ts: int
    avg_price: Decimal | None = None
    with_history: bool = False
    """True when the broker's fill history was applied first in this run."""

    def __post_init__(self) -> None:
        check_identifier("run", self.run)
        check_identifier("account", self.account)
        check_identifier("instrument", self.instrument)
        if self.price_tolerance < 0:
            raise InvalidInput(f"price_tolerance must not be negative, got {self.price_tolerance}")


@dataclass(frozen=True, slots=True)
class SetBracket:
    """Attach a take-profit and/or stop-loss to one strategy's open slot (``bracket``
    record); it replaces the slot's bracket if it has one. With neither leg, it removes the
    slot's bracket and cancels its legs (docs/brackets.md)."""

    account: str
    instrument: str
    strategy: str
    position_side: PositionSide | None = None
    take_profit: OrderSpec | None = None
    stop_loss: OrderSpec | None = None
    bracket_id: str | None = None
    ts: int | None = None

    def __post_init__(self) -> None:
        check_identifier("account", self.account)
        check_identifier("instrument", self.instrument)
        check_identifier("strategy", self.strategy)
        if self.bracket_id is not None:
            check_identifier("bracket_id", self.bracket_id)
        if self.take_profit is not None or self.stop_loss is not None:
            BracketSpec(self.take_profit, self.stop_loss)  # checks the legs

    @property
    def bracket(self) -> BracketSpec | None:
        """The legs asked for (None: remove the slot's bracket)."""
        if self.take_profit is None and self.stop_loss is None:
            return None
        return BracketSpec(self.take_profit, self.stop_loss)


@dataclass(frozen=True, slots=True)
class CommandAck:
    """An outbox command was carried out (``command_ack`` record).

    ``instrument``, ``kind``, ``client_order_id`` and ``quantity`` are filled in by the
    ledger from the command, so that the journal holds what a replay needs."""

    command_id: str
    broker_order_id: str | None = None
    instrument: str | None = None
    kind: str | None = None
    client_order_id: str | None = None
    quantity: Decimal | None = None
    ts: int | None = None

    def __post_init__(self) -> None:
        _check_command(self.command_id, self.instrument, self.kind, self.client_order_id)
        if self.broker_order_id is not None:
            check_identifier("broker_order_id", self.broker_order_id)


@dataclass(frozen=True, slots=True)
class CommandFailed:
    """An outbox command could not be carried out; ``reason`` is the broker's
    (``command_failed`` record). The ledger fills in the rest as for :class:`CommandAck`."""

    command_id: str
    reason: str
    instrument: str | None = None
    kind: str | None = None
    client_order_id: str | None = None
    quantity: Decimal | None = None
    ts: int | None = None

    def __post_init__(self) -> None:
        _check_command(self.command_id, self.instrument, self.kind, self.client_order_id)
        if not self.reason.strip():
            raise InvalidInput("reason must say why the command failed")


COMMAND_KINDS = ("place", "amend", "cancel")


def _check_command(
    command_id: str, instrument: str | None, kind: str | None, client_order_id: str | None
) -> None:
    check_identifier("command_id", command_id)
    if instrument is not None:
        check_identifier("instrument", instrument)
    if client_order_id is not None:
        check_identifier("client_order_id", client_order_id)
    if kind is not None and kind not in COMMAND_KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(COMMAND_KINDS)}, got {kind!r}")


@dataclass(frozen=True, slots=True)
class Sweep:
    """Look again at every exit order on an instrument (``posledger sweep``): orphans and
    stuck orders get a cancel or amend command again (docs/brackets.md)."""

    instrument: str
    ts: int | None = None

    def __post_init__(self) -> None:
        check_identifier("instrument", self.instrument)


Input = (
    Account
    | Instrument
    | Strategy
    | Order
    | Cancel
    | Fill
    | Mark
    | BrokerPosition
    | Transfer
    | Halt
    | Resume
    | Reconcile
    | SetBracket
    | CommandAck
    | CommandFailed
    | Sweep
)
