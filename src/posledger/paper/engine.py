"""The matching engine of the paper venue: open orders, price events, executions.

A :class:`Venue` holds the open orders (in submission order) and the last price of each
instrument. Orders arrive by :meth:`Venue.submit`; prices arrive by :meth:`Venue.on_price`,
one :class:`~posledger.paper.prices.Tick` or :class:`~posledger.paper.prices.Bar` at a time.
Each returns the executions (:class:`Execution`) it produced. Fills are full fills only: an
order fills its whole remaining quantity at once, or not at all.

**Arriving orders** (at :meth:`Venue.submit`) meet the instrument's last price; without one
they wait for the next price event.

- A market order fills at the last price, worse by the slippage.
- A limit order that is marketable (buy: last <= limit; sell: last >= limit) fills at the
  last price, without slippage; otherwise it rests.
- A stop or stop-limit whose stop the last price has already reached (buy: last >= stop;
  sell: last <= stop) triggers at once, as on a tick at the last price (below).
- Fills at submission are stamped with the order's ``submitted_ts``.

**Price events.** A tick is matched exactly like a bar whose open, high, low and close are
all the tick's price, so one set of rules serves both. For a bar (``open, high, low, close``):

- A waiting market order fills at the open, worse by the slippage.
- A buy stop triggers when ``high >= stop`` and fills at ``max(stop, open)``, worse by the
  slippage; a sell stop triggers when ``low <= stop`` and fills at ``min(stop, open)``,
  worse by the slippage. So a price that gaps through the stop at the open fills at the
  open (on a tick: at the tick's price), never at the stop.
- A stop-limit triggers by the same test. At the trigger price (``max(stop, open)`` for a
  buy, ``min(stop, open)`` for a sell) it is an arriving limit order: when that price is at
  or better than the limit it fills there, without slippage; otherwise it stays open,
  marked ``triggered``, and from the next event on it is a resting limit order.
- A resting buy limit fills when ``low <= limit``, a sell limit when ``high >= limit``, at
  the limit price: never better, never slipped.

This is the **conservative rule** for bars: a bar says which prices were reached, not in
which order, so the engine assumes the order least favourable to the trader. Within one
event orders are matched in passes, each in submission order: (1) waiting market orders,
(2) stops and untriggered stop-limits, (3) limits and stop-limits triggered by an earlier
event. A stop-limit triggered in this event whose limit is not marketable at the trigger
price does not fill in the same bar (the bar's low may have come before the trigger).

**OCO groups.** Within one price event at most one order of an ``oco_group`` fills; the
others of the group are skipped for that event (they neither fill nor trigger). Since stops
are matched before limits, when both the stop and the limit of one bracket could fill in the
same bar, **the stop is taken first**. The sibling stays open: cancelling it is the
ledger's job, through a cancel command.

**Slippage** (:class:`SlippageModel`) makes market and stop fills worse for the taker by
``ticks * tick_size``: a buy pays more, a sell receives less. Limit fills (including
stop-limit fills) never slip. **Commission** (:class:`CommissionModel`) is
``per_unit * quantity + rate * |price| * quantity * multiplier``, computed exactly.

Every amount is an exact :class:`~decimal.Decimal`, computed in the ledger's context
(:func:`posledger.domain.numbers.exact`); a result with more than 18 fractional digits (a
product of long amounts, an average entry price) is rounded half-even to 18, the ledger's
rule.

**Idempotence and restarts.** Client order ids are unique: submitting an id the venue
already knows (open or finished) does nothing, cancelling a finished order returns False.
Execution ids are ``f"{order_id}-{n}"``, ``n`` counting that order's executions from 1.
:meth:`Venue.to_state` and :meth:`Venue.from_state` round-trip the whole state through
JSON-serialisable values, so a restarted venue continues the numbering and never fills a
finished order again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, NamedTuple

from posledger.domain.enums import OrderType
from posledger.domain.numbers import ONE, ZERO, exact, fmt, parse_decimal, q18, quote

from .prices import Bar, Tick

__all__ = [
    "POSITION_SIDES",
    "SIDES",
    "STATE_VERSION",
    "CommissionModel",
    "Execution",
    "OrderType",
    "PaperOrder",
    "PositionKey",
    "SlippageModel",
    "UnknownOrder",
    "Venue",
    "VenueError",
]

SIDES = ("BUY", "SELL")
"""The sides of an order."""
POSITION_SIDES = ("BOTH", "LONG", "SHORT")
"""The position sides an order may name (None means BOTH: a netting account)."""
STATE_VERSION = 1
"""The version of the dictionary :meth:`Venue.to_state` writes."""

PositionKey = tuple[str, str, str]
"""(account, instrument, position side): the position side is "BOTH" for a netting order."""


class VenueError(ValueError):
    """An order, a command or a saved state the venue cannot take."""


class UnknownOrder(VenueError):
    """A command names an order id the venue has never seen."""


def _finite(value: object, what: str) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise VenueError(f"{what} must be a finite Decimal, not {value!r}")
    return value


def _stored(value: Decimal) -> Decimal:
    """``value`` with at most 18 fractional digits (half-even). Call within ``exact()``."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return q18(value) if exponent < -18 else value


@dataclass(frozen=True, kw_only=True)
class PaperOrder:
    """An order at the paper venue.

    Rules, checked when it is built: ``order_id``, ``account`` and ``instrument`` are
    non-empty; ``side`` is BUY or SELL; ``quantity`` (the total) is positive; a limit order
    has a ``limit_price`` only, a stop order a ``stop_price`` only, a stop-limit both, a
    market order neither; ``position_side`` is None, BOTH, LONG or SHORT; ``filled`` is
    between 0 and ``quantity``; ``triggered`` (the stop of a stop-limit was reached) is only
    set on a stop-limit; ``executions`` (how many executions the order has had, which numbers
    the next execution id) is not negative. Orders in one ``oco_group`` are the legs of one
    bracket: within one price event at most one of them fills.
    """

    order_id: str
    account: str
    instrument: str
    side: str
    quantity: Decimal
    order_type: OrderType
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    position_side: str | None = None
    strategy: str | None = None
    oco_group: str | None = None
    filled: Decimal = ZERO
    triggered: bool = False
    executions: int = 0
    submitted_ts: int

    def __post_init__(self) -> None:
        label = f"order {quote(self.order_id)}"
        for name in ("order_id", "account", "instrument"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise VenueError(f"{label}: {name} must be a non-empty string")
        if self.side not in SIDES:
            raise VenueError(f"{label}: side must be BUY or SELL, not {self.side!r}")
        if not isinstance(self.order_type, OrderType):
            raise VenueError(
                f"{label}: order_type must be an OrderType "
                f"(market, limit, stop, stop_limit), not {self.order_type!r}"
            )
        if _finite(self.quantity, f"{label}: quantity") <= 0:
            raise VenueError(f"{label}: quantity must be positive, not {self.quantity}")
        needs_limit = self.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = self.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        for name, needed in (("limit_price", needs_limit), ("stop_price", needs_stop)):
            value = getattr(self, name)
            if needed and value is None:
                raise VenueError(f"{label}: a {self.order_type} order needs a {name}")
            if not needed and value is not None:
                raise VenueError(f"{label}: a {self.order_type} order takes no {name}")
            if value is not None:
                _finite(value, f"{label}: {name}")
        if self.position_side is not None and self.position_side not in POSITION_SIDES:
            raise VenueError(
                f"{label}: position_side must be BOTH, LONG, SHORT or None, "
                f"not {self.position_side!r}"
            )
        for name in ("strategy", "oco_group"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise VenueError(f"{label}: {name} must be None or a non-empty string")
        filled = _finite(self.filled, f"{label}: filled")
        if filled < 0 or filled > self.quantity:
            raise VenueError(f"{label}: filled {filled} is outside 0..{self.quantity}")
        if self.triggered and self.order_type is not OrderType.STOP_LIMIT:
            raise VenueError(f"{label}: only a stop-limit order can be triggered")
        if isinstance(self.executions, bool) or not isinstance(self.executions, int):
            raise VenueError(f"{label}: executions must be an int")
        if self.executions < 0:
            raise VenueError(f"{label}: executions must not be negative")
        if isinstance(self.submitted_ts, bool) or not isinstance(self.submitted_ts, int):
            raise VenueError(f"{label}: submitted_ts must be int nanoseconds")

    @property
    def remaining(self) -> Decimal:
        """What is left to fill: ``quantity - filled``."""
        with exact():
            return self.quantity - self.filled

    @property
    def position_key(self) -> PositionKey:
        return (self.account, self.instrument, self.position_side or "BOTH")


class Execution(NamedTuple):
    """One fill of one order. ``exec_id`` is ``f"{order_id}-{n}"``, n counting from 1."""

    exec_id: str
    order_id: str
    account: str
    instrument: str
    side: str
    quantity: Decimal
    price: Decimal
    commission: Decimal
    ts: int
    position_side: str | None
    strategy: str | None


@dataclass(frozen=True)
class SlippageModel:
    """Market and stop fills are worse for the taker by ``ticks * tick_size``.

    A buy pays that much more, a sell receives that much less. Limit and stop-limit fills
    never slip. ``ticks`` is not negative; ``tick_size`` is positive, and needed when
    ``ticks`` is not zero.
    """

    ticks: Decimal = ZERO
    tick_size: Decimal | None = None

    def __post_init__(self) -> None:
        if _finite(self.ticks, "slippage ticks") < 0:
            raise VenueError(f"slippage ticks must not be negative, not {self.ticks}")
        if self.tick_size is not None and _finite(self.tick_size, "tick_size") <= 0:
            raise VenueError(f"tick_size must be positive, not {self.tick_size}")
        if self.ticks and self.tick_size is None:
            raise VenueError("slippage in ticks needs a tick_size")

    def apply(self, price: Decimal, side: str) -> Decimal:
        """``price`` made worse for a taker on ``side``."""
        if not self.ticks or self.tick_size is None:
            return price
        with exact():
            amount = self.ticks * self.tick_size
            return _stored(price + amount if side == "BUY" else price - amount)


@dataclass(frozen=True)
class CommissionModel:
    """Commission of a fill: ``per_unit * quantity + rate * |price| * quantity * multiplier``.

    ``rate`` is a fraction of the notional (0.001 is 10 basis points); ``multiplier`` is the
    contract multiplier (positive). Negative ``per_unit`` or ``rate`` are rebates. The result
    is exact, rounded half-even to 18 fractional digits only if it has more.
    """

    per_unit: Decimal = ZERO
    rate: Decimal = ZERO
    multiplier: Decimal = ONE

    def __post_init__(self) -> None:
        _finite(self.per_unit, "commission per_unit")
        _finite(self.rate, "commission rate")
        if _finite(self.multiplier, "multiplier") <= 0:
            raise VenueError(f"multiplier must be positive, not {self.multiplier}")

    def commission(self, price: Decimal, quantity: Decimal) -> Decimal:
        with exact():
            notional = abs(price) * quantity * self.multiplier
            return _stored(self.per_unit * quantity + self.rate * notional)


class _Prices(NamedTuple):
    """A price event as the matching rules see it (a tick has four equal prices)."""

    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


def _view(event: Tick | Bar) -> _Prices:
    if isinstance(event, Tick):
        return _Prices(event.price, event.price, event.price, event.price)
    return _Prices(event.open, event.high, event.low, event.close)


def _stop_reached(order: PaperOrder, prices: _Prices) -> bool:
    assert order.stop_price is not None
    if order.side == "BUY":
        return prices.high >= order.stop_price
    return prices.low <= order.stop_price


def _trigger_price(order: PaperOrder, prices: _Prices) -> Decimal:
    """Where the price was when the stop was reached: the stop, or the open past it."""
    assert order.stop_price is not None
    if order.side == "BUY":
        return max(order.stop_price, prices.open)
    return min(order.stop_price, prices.open)


def _marketable(order: PaperOrder, price: Decimal) -> bool:
    """Whether a limit order arriving at ``price`` fills at once."""
    assert order.limit_price is not None
    if order.side == "BUY":
        return price <= order.limit_price
    return price >= order.limit_price


def _limit_crossed(order: PaperOrder, prices: _Prices) -> bool:
    assert order.limit_price is not None
    if order.side == "BUY":
        return prices.low <= order.limit_price
    return prices.high >= order.limit_price


class Venue:
    """A simulated broker: open orders, last prices, executions and its own positions.

    See the module's documentation for the matching rules. ``slippage`` and ``commission``
    apply to every instrument; they are configuration, not state, so
    :meth:`from_state` takes them again.
    """

    def __init__(
        self,
        *,
        slippage: SlippageModel | None = None,
        commission: CommissionModel | None = None,
    ) -> None:
        self.slippage = slippage or SlippageModel()
        self.commission = commission or CommissionModel()
        self._orders: dict[str, PaperOrder] = {}
        self._done: set[str] = set()
        self._last: dict[str, tuple[Decimal, int]] = {}  # instrument -> (price, ts)
        self._positions: dict[PositionKey, tuple[Decimal, Decimal]] = {}  # quantity, avg

    # -- queries -----------------------------------------------------------------------

    def open_orders(self) -> list[PaperOrder]:
        """The open orders, in submission order."""
        return list(self._orders.values())

    def is_done(self, order_id: str) -> bool:
        """Whether ``order_id`` has finished (filled or cancelled)."""
        return order_id in self._done

    def last_price(self, instrument: str) -> Decimal | None:
        """The last price of ``instrument`` (a tick's price or a bar's close), or None."""
        found = self._last.get(instrument)
        return None if found is None else found[0]

    def last_ts(self, instrument: str) -> int | None:
        """The time of the last price event of ``instrument``, or None."""
        found = self._last.get(instrument)
        return None if found is None else found[1]

    def positions(self) -> dict[PositionKey, Decimal]:
        """The venue's net position per (account, instrument, position side), from its own
        executions (BUY adds, SELL subtracts), as a broker's position snapshot reports it.
        Flat positions are left out."""
        return {key: quantity for key, (quantity, _) in self._positions.items()}

    def positions_with_prices(self) -> dict[PositionKey, tuple[Decimal, Decimal | None]]:
        """Each open position with its average entry price (simple average cost).

        Adding to a position averages the prices, weighted by quantity; reducing it keeps
        the average; a fill that takes the position through zero starts a new average at
        its price. Averages that do not terminate are rounded half-even to 18 digits.
        """
        return {key: (quantity, avg) for key, (quantity, avg) in self._positions.items()}

    # -- commands ----------------------------------------------------------------------

    def submit(self, order: PaperOrder) -> list[Execution]:
        """Accept a new order and return what filled at once (see the module's rules).

        An ``order_id`` the venue already knows, open or finished, is ignored (returns []):
        an adapter sending the same command twice is harmless. A new order must have
        ``filled`` 0, ``executions`` 0 and not be ``triggered``.
        """
        if order.order_id in self._orders or order.order_id in self._done:
            return []
        if order.filled or order.executions or order.triggered:
            raise VenueError(
                f"order {quote(order.order_id)}: a new order has filled 0, executions 0 "
                "and is not triggered"
            )
        self._orders[order.order_id] = order
        last = self._last.get(order.instrument)
        if last is None:
            return []
        price = last[0]
        ts = order.submitted_ts
        with exact():
            if order.order_type is OrderType.MARKET:
                return [self._fill(order, self.slippage.apply(price, order.side), ts)]
            if order.order_type is OrderType.LIMIT:
                return [self._fill(order, price, ts)] if _marketable(order, price) else []
            tick = _Prices(price, price, price, price)
            if not _stop_reached(order, tick):
                return []
            if order.order_type is OrderType.STOP:
                return [self._fill(order, self.slippage.apply(price, order.side), ts)]
            return self._trigger_stop_limit(order, price, ts)

    def amend(self, order_id: str, quantity: Decimal) -> None:
        """Set the new total quantity of an open order. It must be above what has filled.

        Raises :class:`UnknownOrder` for an id never seen, :class:`VenueError` for a
        finished order or a quantity not above what has filled. The order keeps its place
        in the submission order.
        """
        order = self._open_order(order_id, "amend")
        _finite(quantity, f"order {quote(order_id)}: the new quantity")
        if quantity <= order.filled:
            raise VenueError(
                f"cannot amend order {quote(order_id)} to {quantity}: amend below what has "
                f"filled ({order.filled}); the new total must be above it"
            )
        self._orders[order_id] = replace(order, quantity=quantity)

    def cancel(self, order_id: str) -> bool:
        """Cancel an open order (True). A finished order returns False: a retried cancel is
        harmless. Raises :class:`UnknownOrder` for an id never seen."""
        if order_id in self._done:
            return False
        self._open_order(order_id, "cancel")
        del self._orders[order_id]
        self._done.add(order_id)
        return True

    def on_price(self, event: Tick | Bar) -> list[Execution]:
        """Match the open orders of the event's instrument and return the executions.

        The event's time must not be earlier than the last event of its instrument. After
        matching, the last price of the instrument is the tick's price or the bar's close.
        """
        last = self._last.get(event.instrument)
        if last is not None and event.ts < last[1]:
            raise VenueError(
                f"a price of {quote(event.instrument)} goes back in time: prices of one "
                "instrument must arrive in time order"
            )
        prices = _view(event)
        ts = event.ts
        orders = [o for o in self._orders.values() if o.instrument == event.instrument]
        executions: list[Execution] = []
        taken: set[str] = set()  # the oco groups that filled in this event

        def free(order: PaperOrder) -> bool:
            return order.oco_group is None or order.oco_group not in taken

        def record(fills: list[Execution], order: PaperOrder) -> None:
            executions.extend(fills)
            if fills and order.oco_group is not None:
                taken.add(order.oco_group)

        with exact():
            for order in orders:  # pass 1: waiting market orders
                if order.order_type is OrderType.MARKET and free(order):
                    price = self.slippage.apply(prices.open, order.side)
                    record([self._fill(order, price, ts)], order)
            for order in orders:  # pass 2: stops and untriggered stop-limits
                is_stop = order.order_type is OrderType.STOP
                arming = order.order_type is OrderType.STOP_LIMIT and not order.triggered
                if not (is_stop or arming) or not free(order):
                    continue
                if not _stop_reached(order, prices):
                    continue
                trigger = _trigger_price(order, prices)
                if is_stop:
                    price = self.slippage.apply(trigger, order.side)
                    record([self._fill(order, price, ts)], order)
                else:
                    record(self._trigger_stop_limit(order, trigger, ts), order)
            for order in orders:  # pass 3: resting limits
                resting = order.order_type is OrderType.LIMIT or order.triggered
                if resting and free(order) and _limit_crossed(order, prices):
                    assert order.limit_price is not None
                    record([self._fill(order, order.limit_price, ts)], order)
        self._last[event.instrument] = (prices.close, ts)
        return executions

    # -- state -------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """The whole state as JSON-serialisable values (Decimals as canonical strings).

        Open orders (in submission order, with ``filled``, ``triggered`` and
        ``executions``), finished order ids, last prices and times, and positions with their
        average entry prices. Slippage and commission models are configuration, not state.
        """
        return {
            "version": STATE_VERSION,
            "orders": [_order_state(order) for order in self._orders.values()],
            "done": sorted(self._done),
            "last_prices": {
                instrument: {"price": fmt(price), "ts": ts}
                for instrument, (price, ts) in self._last.items()
            },
            "positions": [
                {
                    "account": account,
                    "instrument": instrument,
                    "position_side": position_side,
                    "quantity": fmt(quantity),
                    "avg_price": fmt(avg),
                }
                for (account, instrument, position_side), (quantity, avg) in (
                    self._positions.items()
                )
            ],
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        *,
        slippage: SlippageModel | None = None,
        commission: CommissionModel | None = None,
    ) -> Venue:
        """Rebuild a venue from :meth:`to_state`. Raises :class:`VenueError` naming the
        first damaged entry."""
        venue = cls(slippage=slippage, commission=commission)
        reader = _StateReader()
        if state.get("version") != STATE_VERSION:
            raise VenueError(
                f"venue state: version {state.get('version')!r} is not {STATE_VERSION}"
            )
        for index, entry in enumerate(reader.items(state, "orders", "state")):
            order = reader.order(entry, f"orders[{index}]")
            if order.order_id in venue._orders:
                raise VenueError(f"venue state: orders[{index}]: order_id appears twice")
            venue._orders[order.order_id] = order
        for index, order_id in enumerate(reader.items(state, "done", "state")):
            if not isinstance(order_id, str) or order_id in venue._orders:
                raise VenueError(f"venue state: done[{index}] is not a finished order id")
            venue._done.add(order_id)
        last_prices = state.get("last_prices")
        if not isinstance(last_prices, dict):
            raise VenueError("venue state: last_prices must be an object")
        for instrument, entry in last_prices.items():
            where = f"last_prices[{instrument!r}]"
            price = reader.decimal(entry, "price", where)
            venue._last[instrument] = (price, reader.integer(entry, "ts", where))
        for index, entry in enumerate(reader.items(state, "positions", "state")):
            where = f"positions[{index}]"
            key = (
                reader.text(entry, "account", where),
                reader.text(entry, "instrument", where),
                reader.text(entry, "position_side", where),
            )
            quantity = reader.decimal(entry, "quantity", where)
            avg = reader.decimal(entry, "avg_price", where)
            if not quantity or key in venue._positions:
                raise VenueError(f"venue state: {where} is flat or appears twice")
            venue._positions[key] = (quantity, avg)
        return venue

    # -- internals ---------------------------------------------------------------------

    def _open_order(self, order_id: str, action: str) -> PaperOrder:
        order = self._orders.get(order_id)
        if order is not None:
            return order
        if order_id in self._done:
            raise VenueError(f"cannot {action} order {quote(order_id)}: it has finished")
        raise UnknownOrder(f"cannot {action} order {quote(order_id)}: no such order")

    def _trigger_stop_limit(self, order: PaperOrder, price: Decimal, ts: int) -> list[Execution]:
        """A stop-limit whose stop was reached at ``price``: fill there if the limit allows,
        else leave it open as a triggered (resting) limit order."""
        if _marketable(order, price):
            return [self._fill(order, price, ts)]
        self._orders[order.order_id] = replace(order, triggered=True)
        return []

    def _fill(self, order: PaperOrder, price: Decimal, ts: int) -> Execution:
        """Fill the whole remaining quantity at ``price``. Call within ``exact()``."""
        quantity = order.remaining
        number = order.executions + 1
        execution = Execution(
            exec_id=f"{order.order_id}-{number}",
            order_id=order.order_id,
            account=order.account,
            instrument=order.instrument,
            side=order.side,
            quantity=quantity,
            price=price,
            commission=self.commission.commission(price, quantity),
            ts=ts,
            position_side=order.position_side,
            strategy=order.strategy,
        )
        del self._orders[order.order_id]
        self._done.add(order.order_id)
        self._book(order.position_key, quantity if order.side == "BUY" else -quantity, price)
        return execution

    def _book(self, key: PositionKey, signed: Decimal, price: Decimal) -> None:
        """Add a signed fill quantity to a position and update its average entry price."""
        before, avg = self._positions.get(key, (ZERO, price))
        after = before + signed
        if not after:
            self._positions.pop(key, None)
            return
        if not before or (before > 0) != (after > 0):
            avg = price  # opened, or through zero: a new average
        elif abs(after) > abs(before):
            avg = _stored((avg * abs(before) + price * abs(signed)) / abs(after))
        self._positions[key] = (after, avg)


def _order_state(order: PaperOrder) -> dict[str, Any]:
    return {
        "order_id": order.order_id,
        "account": order.account,
        "instrument": order.instrument,
        "side": order.side,
        "quantity": fmt(order.quantity),
        "order_type": str(order.order_type),
        "limit_price": None if order.limit_price is None else fmt(order.limit_price),
        "stop_price": None if order.stop_price is None else fmt(order.stop_price),
        "position_side": order.position_side,
        "strategy": order.strategy,
        "oco_group": order.oco_group,
        "filled": fmt(order.filled),
        "triggered": order.triggered,
        "executions": order.executions,
        "submitted_ts": order.submitted_ts,
    }


class _StateReader:
    """Reads the values of a saved state, naming the damaged entry in every error."""

    def entry(self, entry: object, key: str, where: str) -> object:
        if not isinstance(entry, dict) or key not in entry:
            raise VenueError(f"venue state: {where}.{key} is missing")
        return entry[key]

    def items(self, entry: object, key: str, where: str) -> list[Any]:
        value = self.entry(entry, key, where)
        if not isinstance(value, list):
            raise VenueError(f"venue state: {where}.{key} must be a list")
        return value

    def text(self, entry: object, key: str, where: str) -> str:
        value = self.entry(entry, key, where)
        if not isinstance(value, str):
            raise VenueError(f"venue state: {where}.{key} must be a string")
        return value

    def optional_text(self, entry: object, key: str, where: str) -> str | None:
        value = self.entry(entry, key, where)
        return None if value is None else self.text(entry, key, where)

    def integer(self, entry: object, key: str, where: str) -> int:
        value = self.entry(entry, key, where)
        if isinstance(value, bool) or not isinstance(value, int):
            raise VenueError(f"venue state: {where}.{key} must be an integer")
        return value

    def optional_decimal(self, entry: object, key: str, where: str) -> Decimal | None:
        value = self.entry(entry, key, where)
        return None if value is None else self.decimal(entry, key, where)

    def decimal(self, entry: object, key: str, where: str) -> Decimal:
        value = self.entry(entry, key, where)
        if not isinstance(value, str):
            raise VenueError(f"venue state: {where}.{key} must be a decimal string")
        try:
            return parse_decimal(value)
        except ValueError as exc:
            raise VenueError(f"venue state: {where}.{key}: {exc}") from None

    def order(self, entry: object, where: str) -> PaperOrder:
        triggered = self.entry(entry, "triggered", where)
        if not isinstance(triggered, bool):
            raise VenueError(f"venue state: {where}.triggered must be true or false")
        try:
            order_type = OrderType(self.text(entry, "order_type", where))
        except ValueError:
            raise VenueError(f"venue state: {where}.order_type is not an order type") from None
        try:
            return PaperOrder(
                order_id=self.text(entry, "order_id", where),
                account=self.text(entry, "account", where),
                instrument=self.text(entry, "instrument", where),
                side=self.text(entry, "side", where),
                quantity=self.decimal(entry, "quantity", where),
                order_type=order_type,
                limit_price=self.optional_decimal(entry, "limit_price", where),
                stop_price=self.optional_decimal(entry, "stop_price", where),
                position_side=self.optional_text(entry, "position_side", where),
                strategy=self.optional_text(entry, "strategy", where),
                oco_group=self.optional_text(entry, "oco_group", where),
                filled=self.decimal(entry, "filled", where),
                triggered=triggered,
                executions=self.integer(entry, "executions", where),
                submitted_ts=self.integer(entry, "submitted_ts", where),
            )
        except VenueError as exc:
            raise VenueError(f"venue state: {where}: {exc}") from None
