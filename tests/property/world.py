"""Random JSONL streams (hypothesis strategies) and a pure-domain driver for them.

A stream is a list of the JSONL records of docs/format.md (JSON Lines input; plain dicts,
decimals as strings): reference data first, then orders, fills and marks in time order.
:class:`World` applies such records to the pure domain the way the service does (one book
per instrument, orders by id) and keeps everything the properties look at.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

from hypothesis import strategies as st

from posledger.adapters.records import parse_record
from posledger.domain.book import Book
from posledger.domain.decide import decide_fill, decide_mark
from posledger.domain.decisions import Duplicate, FillDecision, MarkDecision, Rejection
from posledger.domain.guards import check_order
from posledger.domain.inputs import Fill, Mark
from posledger.domain.invariants import Position3, check_invariants, fill_delta
from posledger.domain.numbers import ZERO, fmt, q18
from posledger.domain.positions import Slot, SlotKey, Trade
from posledger.domain.refdata import Account, Instrument, InvalidInput, Order, Strategy

__all__ = ["INSTRUMENTS", "World", "render", "split_fill", "streams"]

START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)

INSTRUMENTS: dict[str, dict[str, object]] = {
    "FUT": {
        "kind": "future",
        "multiplier": "5",
        "tick_size": "0.25",
        "quote_currency": "USD",
        "settlement_currency": "USD",
    },
    "PERP": {
        "kind": "perpetual",
        "multiplier": "1",
        "base_currency": "BTC",
        "quote_currency": "USDT",
        "settlement_currency": "USDT",
    },
    "SPOT": {
        "kind": "spot",
        "multiplier": "1",
        "base_currency": "BTC",
        "quote_currency": "USDT",
        "settlement_currency": "USDT",
    },
    "INV": {
        "kind": "perpetual",
        "multiplier": "100",
        "base_currency": "BTC",
        "quote_currency": "USD",
        "settlement_currency": "BTC",
        "inverse": True,
    },
}
POSITIVE_ONLY = {"SPOT", "INV"}
ACCOUNTS = {"N": "netting", "H": "hedge"}
STRATEGIES = ("s1", "s2", "s3")
INTENTS = ("entry", "entry", "exit", "take_profit", "stop_loss")


def _ts(seconds: int) -> str:
    return (START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _decimal(units: int, scale: int) -> str:
    return fmt(Decimal(units).scaleb(-scale))


@st.composite
def streams(
    draw: st.DrawFn,
    *,
    instruments: Iterable[str] = tuple(INSTRUMENTS),
    lot_method: str = "average",
    base_commissions: bool = True,
    invalid: bool = True,
    max_steps: int = 20,
) -> list[dict[str, object]]:
    """A stream over 1-2 accounts and 1-2 instruments, three strategies and EXTERNAL."""
    accounts = draw(st.sampled_from([["N"], ["H"], ["N", "H"]]))
    names = draw(
        st.lists(st.sampled_from(sorted(instruments)), min_size=1, max_size=2, unique=True)
    )
    records: list[dict[str, object]] = [
        {
            "type": "account",
            "account": a,
            "venue": "V",
            "mode": "SIM",
            "position_mode": ACCOUNTS[a],
            "lot_method": lot_method,
        }
        for a in accounts
    ]
    records += [{"type": "instrument", "instrument": n, **INSTRUMENTS[n]} for n in names]
    records += [{"type": "strategy", "strategy": s} for s in STRATEGIES]

    clock = 0
    steps = draw(st.integers(1, max_steps))
    for step in range(steps):
        clock += draw(st.integers(1, 90))
        instrument = draw(st.sampled_from(names))
        positive = instrument in POSITIVE_ONLY
        if draw(st.integers(0, 7)) == 0:
            records.append(
                {
                    "type": "mark",
                    "instrument": instrument,
                    "price": _decimal(draw(st.integers(80 if positive else -8, 120)), 0),
                    "ts": _ts(clock),
                }
            )
            continue
        account = draw(st.sampled_from(accounts))
        hedge = ACCOUNTS[account] == "hedge"
        side = draw(st.sampled_from(["BUY", "SELL"]))
        if draw(st.booleans()):
            # a few round sizes, so that positions often close exactly
            quantity = draw(st.sampled_from(["1", "2", "3", "0.5", "1.5"]))
        else:
            quantity = _decimal(draw(st.integers(1, 12)), draw(st.sampled_from([0, 0, 1, 2])))
        if not positive and draw(st.integers(0, 15)) == 0:
            price = _decimal(draw(st.integers(-3, 0)), 0)
        else:
            price = _decimal(draw(st.integers(90 * 4, 110 * 4)), 0)
            price = fmt(Decimal(price) / 4)
        fill: dict[str, object] = {
            "type": "fill",
            "exec_id": f"e{step}",
            "account": account,
            "instrument": instrument,
            "side": side,
            "quantity": quantity,
            "price": price,
            "ts": _ts(clock),
        }
        fee = draw(st.sampled_from(["none", "settlement", "settlement", "named", "other", "base"]))
        if fee != "none":
            fill["commission"] = _decimal(draw(st.integers(0, 150)), 2)
            if fee == "named":
                fill["commission_currency"] = INSTRUMENTS[instrument]["settlement_currency"]
            elif fee == "other":
                fill["commission_currency"] = "BNB"
            elif fee == "base" and base_commissions and instrument == "SPOT":
                # spot: pay 0.1% of the quantity in BTC (always less than a BUY's quantity)
                fill["commission"] = fmt(Decimal(quantity) / 1000)
                fill["commission_currency"] = "BTC"
        position_side = None
        if hedge:
            position_side = draw(st.sampled_from(["LONG", "SHORT"]))
        elif draw(st.booleans()):
            position_side = "BOTH"
        owner = draw(st.sampled_from(["order", "order", "strategy", "nobody"]))
        if owner == "order":
            order: dict[str, object] = {
                "type": "order",
                "client_order_id": f"o{step}",
                "account": account,
                "strategy": draw(st.sampled_from(STRATEGIES)),
                "instrument": instrument,
                "side": side,
                "quantity": quantity,
                "intent": draw(st.sampled_from(INTENTS)),
            }
            on_order = position_side is not None and draw(st.booleans())
            if on_order:
                order["position_side"] = position_side
            on_fill = not on_order or draw(st.booleans())
            if on_fill and position_side is not None:
                fill["position_side"] = position_side
            records.append(order)
            fill["client_order_id"] = order["client_order_id"]
        else:
            if owner == "strategy":
                fill["strategy"] = draw(st.sampled_from(STRATEGIES))
            if position_side is not None:
                fill["position_side"] = position_side
        if invalid and hedge and draw(st.integers(0, 19)) == 0:
            # a hedge fill without a position side anywhere: must be refused whole
            fill.pop("position_side", None)
            if owner == "order":
                records[-1].pop("position_side", None)
        if draw(st.integers(0, 24)) == 0:
            fill["liquidation"] = True
        records.append(fill)
    return records


def render(records: Iterable[dict[str, object]]) -> list[str]:
    import json

    return [json.dumps(record) for record in records]


def split_fill(
    records: list[dict[str, object]], index: int, cuts: list[int]
) -> list[dict[str, object]]:
    """The stream with fill ``records[index]`` split into partial fills.

    ``cuts`` are positions (in hundredths of the quantity's unit) where the quantity is cut;
    the commission is split pro rata (18 digits), the last part taking the remainder.
    """
    fill = records[index]
    quantity = Decimal(str(fill["quantity"]))
    commission = Decimal(str(fill.get("commission", "0")))
    hundredths = int(quantity * 100)
    bounds = [0, *sorted(set(cuts)), hundredths]
    parts = []
    given = ZERO
    for number, (low, high) in enumerate(pairwise(bounds)):
        part_quantity = Decimal(high - low) / 100
        last = number == len(bounds) - 2
        part_commission = commission - given if last else q18(commission * part_quantity / quantity)
        given += part_commission
        part = {**fill, "exec_id": f"{fill['exec_id']}-{number}", "quantity": fmt(part_quantity)}
        if "commission" in fill:
            part["commission"] = fmt(part_commission)
        parts.append(part)
    return [*records[:index], *parts, *records[index + 1 :]]


@dataclass
class World:
    """The pure domain applied to a stream of records, the way the service applies them."""

    accounts: dict[str, Account] = field(default_factory=dict)
    instruments: dict[str, Instrument] = field(default_factory=dict)
    strategies: set[str] = field(default_factory=set)
    orders: dict[str, Order] = field(default_factory=dict)
    books: dict[str, Book] = field(default_factory=dict)
    trades: dict[int, Trade] = field(default_factory=dict)
    fill_net: dict[Position3, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))
    rejected: int = 0
    last_trade_id: int = 0

    def _new_trade_id(self) -> int:
        self.last_trade_id += 1
        return self.last_trade_id

    def apply(
        self, record: dict[str, object]
    ) -> FillDecision | MarkDecision | Rejection | Duplicate | None:
        item = parse_record(record)
        if isinstance(item, Account):
            self.accounts[item.account] = item
        elif isinstance(item, Instrument):
            self.instruments[item.instrument] = item
            self.books[item.instrument] = Book(item.instrument)
        elif isinstance(item, Strategy):
            self.strategies.add(item.strategy)
        elif isinstance(item, Order):
            # the service refuses an order whose position side the account cannot take
            try:
                self.accounts[item.account].resolve_position_side(item.position_side)
            except InvalidInput as exc:
                self.rejected += 1
                return Rejection(str(exc))
            # the pre-trade check refuses an exit larger than the strategy's own position;
            # the refused order is kept, so that its fills still belong to its strategy
            reasons = check_order(
                item,
                account=self.accounts[item.account],
                strategy=Strategy(item.strategy),
                book=self.books[item.instrument],
                open_slots=None,
            )
            if reasons:
                self.rejected += 1
            self.orders[item.client_order_id] = item
        elif isinstance(item, Fill):
            return self._fill(item)
        elif isinstance(item, Mark):
            decision = decide_mark(
                item, instrument=self.instruments[item.instrument], book=self.books[item.instrument]
            )
            if isinstance(decision, MarkDecision):
                self.books[item.instrument].apply(decision)
                for trade in decision.trades:
                    self.trades[trade.trade_id] = trade
            return decision
        else:
            raise AssertionError(record)
        return None

    def _fill(self, fill: Fill) -> FillDecision | Rejection:
        instrument = self.instruments[fill.instrument]
        book = self.books[fill.instrument]
        decision = decide_fill(
            fill,
            account=self.accounts[fill.account],
            instrument=instrument,
            order=self.orders.get(fill.client_order_id) if fill.client_order_id else None,
            strategy_known=self.strategies.__contains__,
            book=book,
            new_trade_id=self._new_trade_id,
        )
        if isinstance(decision, Rejection):
            self.rejected += 1
            return decision
        book.apply(decision)
        for trade in decision.trades:
            self.trades[trade.trade_id] = trade
        where = (fill.account, fill.instrument, decision.position_side)
        self.fill_net[where] += fill_delta(
            fill.side, fill.quantity, fill.commission, decision.commission_currency, instrument
        )
        return decision

    # -- reading ------------------------------------------------------------------------

    def slots(self) -> dict[SlotKey, Slot]:
        return {key: slot for book in self.books.values() for key, slot in book.slots.items()}

    def open_trades(self) -> list[Trade]:
        return [t for book in self.books.values() for t in book.open_trades.values()]

    def hedge_accounts(self) -> set[str]:
        return {name for name, account in self.accounts.items() if account.hedge}

    def problems(self) -> list[str]:
        return check_invariants(
            self.slots().values(), self.open_trades(), self.fill_net, self.hedge_accounts()
        )

    def quantities(self) -> dict[SlotKey, Decimal]:
        """Every slot's signed quantity, flat ones left out."""
        return {key: slot.quantity for key, slot in self.slots().items() if slot.quantity}
