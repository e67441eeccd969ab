"""A tiny language for scenario tests of the pure domain.

A :class:`Scenario` is one account trading one instrument. It drives the real domain
(``decide_fill`` / ``decide_mark`` and ``Book.apply``), keeps every trade it ever saw (open
and closed) and checks the invariants of docs/accounting.md (Invariants) after every
applied fill::

    book = Scenario(instrument=future("MES", multiplier="5"))
    book.fill("s1", "BUY 2 @ 100 fee 1")      # strategy s1, no order
    book.order("o1", "s1", "SELL 1", intent="take_profit")
    book.fill("o1", "SELL 1 @ 110")           # attributed through order o1
    assert book.slot("s1").quantity == D("1")

Fill text: ``SIDE QTY @ PRICE [fee AMOUNT [CCY]] [LONG|SHORT|BOTH] [liquidation]``.
Order text: ``SIDE QTY [LONG|SHORT|BOTH]``.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from posledger.domain.book import Book
from posledger.domain.decide import decide_fill, decide_mark
from posledger.domain.decisions import Duplicate, FillDecision, MarkDecision, Rejection
from posledger.domain.enums import (
    EXTERNAL,
    Intent,
    Kind,
    LotMethod,
    Mode,
    PositionMode,
    PositionSide,
    Side,
)
from posledger.domain.inputs import Fill, Mark
from posledger.domain.invariants import Position3, check_invariants, fill_delta
from posledger.domain.numbers import ZERO, D
from posledger.domain.positions import Slot, SlotKey, Trade
from posledger.domain.refdata import Account, Instrument, Order

__all__ = [
    "T0",
    "Scenario",
    "equity",
    "future",
    "inverse_perpetual",
    "option",
    "perpetual",
    "spot",
]

T0 = 1_772_460_000 * 1_000_000_000
"""2026-03-02T14:00:00Z in nanoseconds: the scenarios' clock starts here."""
SECOND = 1_000_000_000
STEP = 60 * SECOND
"""Each input of a scenario happens one minute after the previous one unless told."""


# -- instruments -------------------------------------------------------------------------


def future(name: str = "ES", multiplier: str = "1", **kw: object) -> Instrument:
    return Instrument(name, Kind.FUTURE, D(multiplier), "USD", "USD", **kw)  # type: ignore[arg-type]


def option(name: str = "ESC", multiplier: str = "50", **kw: object) -> Instrument:
    return Instrument(name, Kind.OPTION, D(multiplier), "USD", "USD", **kw)  # type: ignore[arg-type]


def perpetual(name: str = "BTCUSDT-PERP", multiplier: str = "1", **kw: object) -> Instrument:
    return Instrument(
        name,
        Kind.PERPETUAL,
        D(multiplier),
        "USDT",
        "USDT",
        base_currency="BTC",
        **kw,  # type: ignore[arg-type]
    )


def inverse_perpetual(name: str = "BTCUSD-PERP", multiplier: str = "100") -> Instrument:
    return Instrument(
        name, Kind.PERPETUAL, D(multiplier), "USD", "BTC", base_currency="BTC", inverse=True
    )


def spot(name: str = "BTCUSDT", base: str = "BTC", quote: str = "USDT", **kw: object) -> Instrument:
    return Instrument(name, Kind.SPOT, D(1), quote, quote, base_currency=base, **kw)  # type: ignore[arg-type]


def equity(name: str = "AAPL", **kw: object) -> Instrument:
    return Instrument(name, Kind.EQUITY, D(1), "USD", "USD", **kw)  # type: ignore[arg-type]


# -- text ----------------------------------------------------------------------------------

_POSITION_SIDES = {side.value: side for side in PositionSide}


def _parse_fill(text: str) -> dict[str, object]:
    words = text.split()
    side, quantity, at, price, *rest = words
    assert at == "@", f"fill text needs 'SIDE QTY @ PRICE ...': {text!r}"
    out: dict[str, object] = {
        "side": Side(side),
        "quantity": D(quantity),
        "price": D(price),
    }
    i = 0
    while i < len(rest):
        word = rest[i]
        if word == "fee":
            out["commission"] = D(rest[i + 1])
            i += 2
            if i < len(rest) and rest[i] not in _POSITION_SIDES and rest[i] != "liquidation":
                out["commission_currency"] = rest[i]
                i += 1
        elif word in _POSITION_SIDES:
            out["position_side"] = _POSITION_SIDES[word]
            i += 1
        elif word == "liquidation":
            out["liquidation"] = True
            i += 1
        else:
            raise AssertionError(f"cannot read {word!r} in fill text {text!r}")
    return out


def _parse_order(text: str) -> tuple[Side, Decimal, PositionSide | None]:
    words = text.split()
    position_side = _POSITION_SIDES[words[2]] if len(words) > 2 else None
    return Side(words[0]), D(words[1]), position_side


# -- the scenario --------------------------------------------------------------------------


class Scenario:
    """One account trading one instrument, driven through the real pure domain."""

    def __init__(
        self,
        *,
        account: str = "A",
        position_mode: str = "netting",
        lot_method: str = "average",
        instrument: Instrument | None = None,
        strategies: tuple[str, ...] = ("s1", "s2", "s3"),
    ) -> None:
        self.account = Account(
            account, "VENUE", Mode.SIM, PositionMode(position_mode), LotMethod(lot_method)
        )
        self.instrument = instrument if instrument is not None else future()
        self.book = Book(self.instrument.instrument)
        self.strategies = set(strategies)
        self.orders: dict[str, Order] = {}
        self.trades: dict[int, Trade] = {}
        """Every trade ever touched, open and closed, by id."""
        self.decisions: list[FillDecision] = []
        self.fill_net: dict[Position3, Decimal] = defaultdict(lambda: ZERO)
        self.now = T0
        self._exec = 0
        self._trade_ids = 0

    # -- clock and ids ----------------------------------------------------------------

    def _tick(self, at: int | None) -> int:
        """``at`` is seconds after T0; without it the clock moves one minute on."""
        self.now = T0 + at * SECOND if at is not None else self.now + STEP
        return self.now

    def _new_trade_id(self) -> int:
        self._trade_ids += 1
        return self._trade_ids

    # -- inputs -------------------------------------------------------------------------

    def order(
        self,
        client_order_id: str,
        strategy: str,
        text: str,
        intent: str = "entry",
        *,
        account: str | None = None,
        instrument: str | None = None,
    ) -> Order:
        side, quantity, position_side = _parse_order(text)
        order = Order(
            client_order_id,
            account or self.account.account,
            strategy,
            instrument or self.instrument.instrument,
            side,
            quantity,
            Intent(intent),
            position_side,
        )
        self.orders[client_order_id] = order
        return order

    def make_fill(self, who: str | None, text: str, at: int | None = None, **kw: object) -> Fill:
        """The Fill ``text`` describes. ``who`` is a registered order id (the fill carries it),
        else a strategy name (the fill's ``strategy`` field), else None (no owner given)."""
        fields = _parse_fill(text)
        fields.update(kw)
        if who is not None:
            if who in self.orders:
                fields.setdefault("client_order_id", who)
            else:
                fields.setdefault("strategy", who)
        self._exec += 1
        return Fill(
            exec_id=str(fields.pop("exec_id", f"x{self._exec}")),
            account=self.account.account,
            instrument=self.instrument.instrument,
            ts=self._tick(at),
            **fields,  # type: ignore[arg-type]
        )

    def decide(self, fill: Fill) -> FillDecision | Rejection:
        order = self.orders.get(fill.client_order_id) if fill.client_order_id else None
        return decide_fill(
            fill,
            account=self.account,
            instrument=self.instrument,
            order=order,
            strategy_known=self.strategies.__contains__,
            book=self.book,
            new_trade_id=self._new_trade_id,
        )

    def fill(self, who: str | None, text: str, at: int | None = None, **kw: object) -> FillDecision:
        """Apply a fill that must be accepted; check the invariants afterwards."""
        decision = self.decide(self.make_fill(who, text, at, **kw))
        assert isinstance(decision, FillDecision), f"fill {text!r} was refused: {decision}"
        self.apply(decision)
        return decision

    def apply(self, decision: FillDecision) -> None:
        self.book.apply(decision)
        for trade in decision.trades:
            self.trades[trade.trade_id] = trade
        self.decisions.append(decision)
        fill = decision.fill
        where = (fill.account, fill.instrument, decision.position_side)
        self.fill_net[where] += fill_delta(
            fill.side,
            fill.quantity,
            fill.commission,
            decision.commission_currency,
            self.instrument,
        )
        problems = self.problems()
        assert not problems, problems

    def reject(self, who: str | None, text: str, at: int | None = None, **kw: object) -> str:
        """Offer a fill that must be refused; return the reason. The book must not change."""
        before = (dict(self.book.slots), dict(self.book.open_trades))
        decision = self.decide(self.make_fill(who, text, at, **kw))
        assert isinstance(decision, Rejection), f"fill {text!r} was accepted: {decision}"
        assert (dict(self.book.slots), dict(self.book.open_trades)) == before
        assert decision.reason
        return decision.reason

    def mark(
        self,
        price: str,
        at: int | None = None,
        high: str | None = None,
        low: str | None = None,
    ) -> MarkDecision | Duplicate | Rejection:
        decision = decide_mark(
            Mark(
                self.instrument.instrument,
                D(price),
                self._tick(at),
                None if high is None else D(high),
                None if low is None else D(low),
            ),
            instrument=self.instrument,
            book=self.book,
        )
        if isinstance(decision, MarkDecision):
            self.book.apply(decision)
            for trade in decision.trades:
                self.trades[trade.trade_id] = trade
        return decision

    # -- reading ------------------------------------------------------------------------

    def key(self, strategy: str, position_side: str = "BOTH") -> SlotKey:
        return SlotKey(
            self.account.account,
            self.instrument.instrument,
            strategy,
            PositionSide(position_side),
        )

    def slot(self, strategy: str, position_side: str = "BOTH") -> Slot:
        return self.book.slot(self.key(strategy, position_side))

    def external(self, position_side: str = "BOTH") -> Slot:
        return self.slot(EXTERNAL, position_side)

    def trades_of(self, strategy: str, position_side: str = "BOTH") -> list[Trade]:
        """The slot's trades, in the order they were opened."""
        key = self.key(strategy, position_side)
        return [t for _, t in sorted(self.trades.items()) if t.key == key]

    def trade(self, strategy: str, position_side: str = "BOTH", index: int = -1) -> Trade:
        return self.trades_of(strategy, position_side)[index]

    def problems(self) -> list[str]:
        hedge = {self.account.account} if self.account.hedge else set()
        return check_invariants(
            self.book.slots.values(), self.book.open_trades.values(), self.fill_net, hedge
        )
