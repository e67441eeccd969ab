"""Reference data: accounts, instruments, strategies and orders.

Each is a small immutable value that checks itself when built; a broken one raises
:class:`InvalidInput` with a message written for the person who sent it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from .enums import (
    EXTERNAL,
    Intent,
    Kind,
    LotMethod,
    Mode,
    OrderType,
    PositionMode,
    PositionSide,
    ReconcilePolicy,
    Side,
)
from .errors import InvalidInput
from .numbers import fmt

__all__ = [
    "Account",
    "BracketSpec",
    "Distance",
    "Instrument",
    "InvalidInput",
    "Order",
    "OrderSpec",
    "Strategy",
    "check_identifier",
    "plain_identifier",
]

MAX_IDENTIFIER = 128
MAX_COUNT = 2**31 - 1
"""The largest count the ledger stores (a 32-bit column): ``max_open_slots``."""


def plain_identifier(value: str) -> bool:
    """The common case of :func:`check_identifier`, checked fast (no message)."""
    return 0 < len(value) <= MAX_IDENTIFIER and value.isprintable() and value == value.strip()


def check_identifier(name: str, value: str) -> None:
    if not value:
        raise InvalidInput(f"{name} must not be empty")
    if len(value) > MAX_IDENTIFIER:
        raise InvalidInput(f"{name} is longer than {MAX_IDENTIFIER} characters")
    if value != value.strip():
        raise InvalidInput(f"{name} {value!r} has surrounding spaces")
    if not value.isprintable():
        at, char = next((at, c) for at, c in enumerate(value, start=1) if not c.isprintable())
        raise InvalidInput(
            f"{name} {value!r} has an unprintable character U+{ord(char):04X} at character {at}"
        )


def _positive(name: str, value: Decimal | None) -> None:
    if value is not None and value <= 0:
        raise InvalidInput(f"{name} must be positive, got {value}")


@dataclass(frozen=True, slots=True)
class Account:
    account: str
    venue: str
    mode: Mode
    position_mode: PositionMode
    lot_method: LotMethod = LotMethod.AVERAGE
    reconcile_policy: ReconcilePolicy = ReconcilePolicy.REPORT
    """What reconciliation does with what differs from the broker (see ReconcilePolicy)."""
    hedge: bool = field(init=False, repr=False, compare=False)
    """In hedge mode (LONG and SHORT positions side by side), from ``position_mode``."""

    def __post_init__(self) -> None:
        check_identifier("account", self.account)
        check_identifier("venue", self.venue)
        object.__setattr__(self, "hedge", self.position_mode is PositionMode.HEDGE)

    def resolve_position_side(self, given: PositionSide | None) -> PositionSide:
        """The position side a fill or order books to on this account, or InvalidInput."""
        if self.hedge:
            if given is None or given is PositionSide.BOTH:
                raise InvalidInput(
                    f"account {self.account} is in hedge mode: position_side must be LONG or SHORT"
                )
            return given
        if given is not None and given is not PositionSide.BOTH:
            raise InvalidInput(
                f"account {self.account} is in netting mode: "
                f"position_side must be BOTH, got {given}"
            )
        return PositionSide.BOTH


_NEGATIVE_PRICES_BY_DEFAULT = {Kind.FUTURE, Kind.PERPETUAL, Kind.OPTION}


@dataclass(frozen=True, slots=True)
class Instrument:
    instrument: str
    kind: Kind
    multiplier: Decimal
    quote_currency: str
    settlement_currency: str
    base_currency: str | None = None
    tick_size: Decimal | None = None
    lot_size: Decimal | None = None
    inverse: bool = False
    allow_negative_prices: bool | None = None
    """``None`` means the default of the kind (true for future, perpetual and option)."""

    def __post_init__(self) -> None:
        check_identifier("instrument", self.instrument)
        check_identifier("quote_currency", self.quote_currency)
        check_identifier("settlement_currency", self.settlement_currency)
        if self.base_currency is not None:
            check_identifier("base_currency", self.base_currency)
        _positive("multiplier", self.multiplier)
        _positive("tick_size", self.tick_size)
        _positive("lot_size", self.lot_size)
        if self.inverse:
            if self.base_currency is None:
                raise InvalidInput("an inverse instrument needs base_currency")
            if self.settlement_currency != self.base_currency:
                raise InvalidInput(
                    "an inverse instrument settles in its base currency: settlement_currency "
                    f"{self.settlement_currency} differs from base_currency {self.base_currency}"
                )
        if self.kind is Kind.SPOT and self.base_currency is None:
            raise InvalidInput("a spot instrument needs base_currency")
        if self.allow_negative_prices is None:
            object.__setattr__(
                self, "allow_negative_prices", self.kind in _NEGATIVE_PRICES_BY_DEFAULT
            )

    @property
    def negative_prices(self) -> bool:
        return bool(self.allow_negative_prices)

    def price_problem(self, price: Decimal) -> str | None:
        """Why ``price`` cannot be traded on this instrument, or None (docs/accounting.md)."""
        if price > 0:
            return None
        if self.inverse:
            return f"price must be positive on inverse instrument {self.instrument}, got {price}"
        if not self.negative_prices:
            return (
                f"price must be positive on {self.kind} instrument {self.instrument}, got {price}"
                " (set allow_negative_prices on the instrument if it can trade at or below zero)"
            )
        return None


@dataclass(frozen=True, slots=True)
class Distance:
    """How far from the entry a strategy's default take-profit or stop-loss sits: a number
    of ticks (``"20 ticks"``) or a percentage of the entry price (``"0.5%"``)."""

    amount: Decimal
    unit: str
    """``ticks`` or ``percent``."""

    def __post_init__(self) -> None:
        if self.unit not in ("ticks", "percent"):
            raise InvalidInput(f"a distance is in ticks or percent, got {self.unit!r}")
        if not self.amount > 0:
            raise InvalidInput(f"a distance must be positive, got {fmt(self.amount)}")

    @staticmethod
    def parse(text: str) -> Distance:
        """``"20 ticks"``, ``"1 tick"`` or ``"0.5%"``."""
        words = text.strip()
        try:
            if words.endswith("%"):
                return Distance(Decimal(words[:-1].strip()), "percent")
            number, _, unit = words.partition(" ")
            if unit.strip() in ("tick", "ticks"):
                return Distance(Decimal(number), "ticks")
        except ArithmeticError:
            pass
        raise InvalidInput(f'a distance is "N ticks" or "N%", got {text!r}')

    def __str__(self) -> str:
        if self.unit == "percent":
            return f"{fmt(self.amount)}%"
        return f"{fmt(self.amount)} ticks"


@dataclass(frozen=True, slots=True)
class Strategy:
    strategy: str
    adopt_orphans: bool = False
    max_open_slots: int | None = None
    take_profit: Distance | None = None
    """The default take-profit distance the exits planner uses (``exits --policy bracket``)."""
    stop_loss: Distance | None = None
    """The default stop-loss distance the exits planner uses."""

    def __post_init__(self) -> None:
        check_identifier("strategy", self.strategy)
        if self.strategy == EXTERNAL:
            raise InvalidInput(f"{EXTERNAL} is reserved for fills nobody owns")
        if self.max_open_slots is not None and not 1 <= self.max_open_slots <= MAX_COUNT:
            raise InvalidInput(
                f"max_open_slots must be from 1 to {MAX_COUNT}, got {self.max_open_slots}"
            )


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """How a bracket leg executes: a limit, stop or stop-limit order at its prices.

    ``price`` is the limit price (limit and stop-limit), ``stop_price`` the trigger (stop
    and stop-limit). A market spec has neither (a planned flatten order)."""

    order_type: OrderType
    price: Decimal | None = None
    stop_price: Decimal | None = None

    def __post_init__(self) -> None:
        kind = self.order_type
        needs_price = kind in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = kind in (OrderType.STOP, OrderType.STOP_LIMIT)
        if needs_price and self.price is None:
            raise InvalidInput(f"a {kind} order needs a price")
        if not needs_price and self.price is not None:
            raise InvalidInput(f"a {kind} order has no limit price")
        if needs_stop and self.stop_price is None:
            raise InvalidInput(f"a {kind} order needs a stop_price")
        if not needs_stop and self.stop_price is not None:
            raise InvalidInput(f"a {kind} order has no stop_price")

    def as_record(self) -> dict[str, str]:
        """The spec as a JSON object holds it: ``order_type`` and the prices it has."""
        record = {"order_type": self.order_type.value}
        if self.price is not None:
            record["price"] = fmt(self.price)
        if self.stop_price is not None:
            record["stop_price"] = fmt(self.stop_price)
        return record

    @property
    def trigger(self) -> Decimal | None:
        """The price that sets it off: the stop for stops, else the limit."""
        return self.stop_price if self.stop_price is not None else self.price

    def describe(self) -> str:
        if self.order_type is OrderType.STOP_LIMIT:
            assert self.stop_price is not None and self.price is not None
            return f"stop {fmt(self.stop_price)} limit {fmt(self.price)}"
        if self.order_type is OrderType.STOP:
            assert self.stop_price is not None
            return f"stop {fmt(self.stop_price)}"
        if self.order_type is OrderType.LIMIT:
            assert self.price is not None
            return f"limit {fmt(self.price)}"
        return "market"


@dataclass(frozen=True, slots=True)
class BracketSpec:
    """A take-profit leg and/or a stop-loss leg (docs/brackets.md)."""

    take_profit: OrderSpec | None = None
    stop_loss: OrderSpec | None = None

    def __post_init__(self) -> None:
        if self.take_profit is None and self.stop_loss is None:
            raise InvalidInput("a bracket needs a take_profit or a stop_loss")
        if self.take_profit is not None and self.take_profit.order_type is not OrderType.LIMIT:
            raise InvalidInput(
                f"a take_profit leg is a limit order, got {self.take_profit.order_type}"
            )
        if self.stop_loss is not None and self.stop_loss.order_type not in (
            OrderType.STOP,
            OrderType.STOP_LIMIT,
        ):
            raise InvalidInput(
                f"a stop_loss leg is a stop or stop_limit order, got {self.stop_loss.order_type}"
            )

    def as_record(self) -> dict[str, dict[str, str]]:
        record = {}
        if self.take_profit is not None:
            record["take_profit"] = self.take_profit.as_record()
        if self.stop_loss is not None:
            record["stop_loss"] = self.stop_loss.as_record()
        return record


@dataclass(frozen=True, slots=True)
class Order:
    """An order a strategy registers before sending it; its fills belong to that strategy."""

    client_order_id: str
    account: str
    strategy: str
    instrument: str
    side: Side
    quantity: Decimal
    intent: Intent
    position_side: PositionSide | None = None
    bracket_id: str | None = None
    ts: int | None = None
    bracket: BracketSpec | None = None
    """Legs to attach to the slot this entry order fills, sized to what has filled."""

    def __post_init__(self) -> None:
        check_identifier("client_order_id", self.client_order_id)
        if self.bracket is not None and self.intent is not Intent.ENTRY:
            raise InvalidInput(
                f"only an entry order carries a bracket; {self.client_order_id} is an "
                f"{self.intent} order"
            )
        check_identifier("account", self.account)
        check_identifier("strategy", self.strategy)
        check_identifier("instrument", self.instrument)
        if self.strategy == EXTERNAL:
            raise InvalidInput(f"orders cannot belong to {EXTERNAL}")
        _positive("quantity", self.quantity)
        if self.bracket_id is not None:
            check_identifier("bracket_id", self.bracket_id)
