"""The paper venue's matching engine: fills on ticks and bars, OCO, costs, commands, restarts."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posledger.paper.engine import (
    CommissionModel,
    Execution,
    OrderType,
    PaperOrder,
    SlippageModel,
    UnknownOrder,
    Venue,
    VenueError,
)
from posledger.paper.prices import Bar, Tick

D = Decimal
M, L, S, SL = OrderType.MARKET, OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT
SLIP = SlippageModel(ticks=D(2), tick_size=D("0.25"))  # 0.5 worse for the taker


def order(
    order_id: str,
    side: str,
    order_type: OrderType,
    *,
    quantity: str = "1",
    limit: str | None = None,
    stop: str | None = None,
    oco: str | None = None,
    account: str = "acc",
    instrument: str = "X",
    position_side: str | None = None,
    ts: int = 0,
) -> PaperOrder:
    return PaperOrder(
        order_id=order_id,
        account=account,
        instrument=instrument,
        side=side,
        quantity=D(quantity),
        order_type=order_type,
        limit_price=None if limit is None else D(limit),
        stop_price=None if stop is None else D(stop),
        position_side=position_side,
        strategy="s1",
        oco_group=oco,
        submitted_ts=ts,
    )


_clock = iter(range(1, 10**9))


def tick(price: str, instrument: str = "X") -> Tick:
    return Tick(instrument, next(_clock), D(price))


def bar(o: str, h: str, lo: str, c: str, instrument: str = "X") -> Bar:
    return Bar(instrument, next(_clock), D(o), D(h), D(lo), D(c))


def fills(executions: list[Execution]) -> list[tuple[str, Decimal]]:
    """(order id, price) of each execution, in order."""
    return [(e.order_id, e.price) for e in executions]


def open_ids(venue: Venue) -> list[str]:
    return [o.order_id for o in venue.open_orders()]


# -- limits ---------------------------------------------------------------------------------


def test_limits_on_ticks_fill_at_the_limit_price():
    venue = Venue(slippage=SLIP)
    assert venue.submit(order("b", "BUY", L, limit="100")) == []  # no price yet: rests
    assert venue.submit(order("s", "SELL", L, limit="105")) == []
    assert venue.on_price(tick("101")) == []
    assert fills(venue.on_price(tick("99.5"))) == [("b", D(100))]  # never slipped
    assert venue.on_price(tick("104.99")) == []
    assert fills(venue.on_price(tick("106"))) == [("s", D(105))]
    assert venue.open_orders() == []


def test_a_tick_exactly_at_the_limit_fills():
    venue = Venue()
    venue.submit(order("b", "BUY", L, limit="100"))
    venue.submit(order("s", "SELL", L, limit="100"))
    assert fills(venue.on_price(tick("100"))) == [("b", D(100)), ("s", D(100))]


def test_marketable_limit_at_submission_fills_at_the_last_price():
    venue = Venue(slippage=SLIP)
    venue.on_price(tick("99"))
    [execution] = venue.submit(order("b", "BUY", L, limit="100", ts=77))
    assert (execution.price, execution.ts) == (D(99), 77)
    assert fills(venue.submit(order("s", "SELL", L, limit="98"))) == [("s", D(99))]
    assert venue.submit(order("s2", "SELL", L, limit="99.01")) == []
    assert open_ids(venue) == ["s2"]


def test_limits_on_bars_fill_at_the_limit_price_when_the_range_crosses_it():
    venue = Venue()
    venue.submit(order("b", "BUY", L, limit="100"))
    venue.submit(order("s", "SELL", L, limit="105"))
    assert venue.on_price(bar("102", "104.5", "100.5", "101")) == []
    assert fills(venue.on_price(bar("101", "102", "99", "101"))) == [("b", D(100))]
    # A gap above the limit at the open still fills at the limit (conservative).
    assert fills(venue.on_price(bar("107", "108", "106", "107"))) == [("s", D(105))]


# -- market orders and slippage ---------------------------------------------------------------


def test_market_order_fills_at_once_at_the_last_price_plus_slippage():
    venue = Venue(slippage=SLIP)
    venue.on_price(tick("100"))
    assert fills(venue.submit(order("b", "BUY", M))) == [("b", D("100.5"))]
    assert fills(venue.submit(order("s", "SELL", M))) == [("s", D("99.5"))]


def test_market_order_without_a_price_waits_for_the_next_event():
    venue = Venue(slippage=SLIP)
    assert venue.submit(order("b", "BUY", M)) == []
    assert venue.on_price(tick("1", instrument="OTHER")) == []
    assert fills(venue.on_price(tick("101"))) == [("b", D("101.5"))]
    assert venue.submit(order("s", "SELL", M, instrument="Y")) == []
    assert fills(venue.on_price(bar("50", "52", "48", "51", instrument="Y"))) == [
        ("s", D("49.5"))  # the bar's open, less the slippage
    ]


def test_no_slippage_by_default():
    venue = Venue()
    venue.on_price(tick("100"))
    assert fills(venue.submit(order("b", "BUY", M))) == [("b", D(100))]


# -- stops ----------------------------------------------------------------------------------


def test_stops_on_ticks_fill_at_the_tick_price_plus_slippage():
    venue = Venue(slippage=SLIP)
    venue.on_price(tick("100"))
    venue.submit(order("bs", "BUY", S, stop="105"))
    venue.submit(order("ss", "SELL", S, stop="95"))
    assert venue.on_price(tick("104.75")) == []
    assert fills(venue.on_price(tick("105"))) == [("bs", D("105.5"))]
    # A gap through the stop fills at the (worse) tick price, not at the stop.
    assert fills(venue.on_price(tick("90"))) == [("ss", D("89.5"))]


def test_stops_on_bars_fill_at_the_stop_or_the_open_past_it():
    venue = Venue(slippage=SLIP)
    venue.submit(order("b1", "BUY", S, stop="105"))
    venue.submit(order("s1", "SELL", S, stop="95"))
    assert venue.on_price(bar("100", "104", "96", "100")) == []
    assert fills(venue.on_price(bar("100", "106", "94", "100"))) == [
        ("b1", D("105.5")),
        ("s1", D("94.5")),
    ]
    venue.submit(order("b2", "BUY", S, stop="105"))
    venue.submit(order("s2", "SELL", S, stop="95"))
    assert fills(venue.on_price(bar("108", "110", "107", "109"))) == [("b2", D("108.5"))]
    assert fills(venue.on_price(bar("92", "93", "90", "91"))) == [("s2", D("91.5"))]


def test_stop_already_reached_at_submission_triggers_at_once():
    venue = Venue(slippage=SLIP)
    venue.on_price(tick("100"))
    assert fills(venue.submit(order("bs", "BUY", S, stop="99"))) == [("bs", D("100.5"))]
    assert fills(venue.submit(order("ss", "SELL", S, stop="100"))) == [("ss", D("99.5"))]
    assert venue.submit(order("later", "BUY", S, stop="100.01")) == []


# -- stop-limits ------------------------------------------------------------------------------


def test_stop_limit_on_ticks():
    venue = Venue(slippage=SLIP)
    venue.submit(order("b", "BUY", SL, stop="105", limit="106"))
    venue.submit(order("s", "SELL", SL, stop="95", limit="94"))
    assert venue.on_price(tick("104")) == []
    # Triggered at 105.5, within the limit: fills there (an arriving limit: no slippage).
    assert fills(venue.on_price(tick("105.5"))) == [("b", D("105.5"))]
    assert venue.on_price(tick("95.01")) == []
    assert fills(venue.on_price(tick("94.75"))) == [("s", D("94.75"))]
    assert venue.open_orders() == []


def test_stop_limit_on_ticks_gapping_past_its_limit_rests_as_a_limit():
    venue = Venue(slippage=SLIP)
    venue.submit(order("b", "BUY", SL, stop="105", limit="106"))
    venue.submit(order("s", "SELL", SL, stop="95", limit="94"))
    assert venue.on_price(tick("107")) == []  # triggered, but 107 is above the limit
    [waiting] = [o for o in venue.open_orders() if o.order_id == "b"]
    assert waiting.triggered
    assert venue.on_price(tick("106.5")) == []
    assert fills(venue.on_price(tick("105.75"))) == [("b", D(106))]  # now a resting limit
    assert fills(venue.on_price(tick("94.5"))) == [("s", D("94.5"))]


def test_stop_limit_on_bars_conservative():
    venue = Venue(slippage=SLIP)
    venue.submit(order("b", "BUY", SL, stop="105", limit="106"))
    venue.submit(order("s", "SELL", SL, stop="95", limit="94"))
    # Trigger price max(105, 100) = 105 is within the limit: fills at 105, unslipped.
    assert fills(venue.on_price(bar("100", "107", "99", "106.5"))) == [("b", D(105))]
    # Trigger price min(95, 100) = 95 is within the limit 94: fills at 95.
    assert fills(venue.on_price(bar("100", "100", "93", "94"))) == [("s", D(95))]

    venue.submit(order("g", "BUY", SL, stop="105", limit="106"))
    # The open gaps above the limit: triggered, and although the low comes back under the
    # limit, it may have come before the trigger: no fill in this bar.
    assert venue.on_price(bar("107", "108", "105", "107.5")) == []
    assert venue.open_orders()[0].triggered
    assert fills(venue.on_price(bar("107", "107", "105.5", "106"))) == [("g", D(106))]


def test_stop_limit_triggered_at_submission():
    venue = Venue()
    venue.on_price(tick("100"))
    assert fills(venue.submit(order("a", "BUY", SL, stop="99", limit="101"))) == [("a", D(100))]
    assert venue.submit(order("b", "BUY", SL, stop="99", limit="99.5")) == []
    assert venue.open_orders()[0].triggered


# -- matching order and OCO -------------------------------------------------------------------


def test_within_an_event_stops_come_before_limits_each_in_submission_order():
    venue = Venue()
    venue.submit(order("lim1", "BUY", L, limit="101"))
    venue.submit(order("stop", "SELL", S, stop="99"))
    venue.submit(order("lim2", "BUY", L, limit="101"))
    venue.submit(order("mkt", "BUY", M))
    assert [e.order_id for e in venue.on_price(bar("100", "100", "98", "99"))] == [
        "mkt",
        "stop",
        "lim1",
        "lim2",
    ]


def test_oco_stop_is_taken_first_when_a_bar_reaches_both_legs():
    venue = Venue()
    venue.on_price(tick("100"))
    venue.submit(order("entry", "BUY", M))
    # The take-profit is submitted before the stop: the stop still wins.
    venue.submit(order("tp", "SELL", L, limit="110", oco="bracket"))
    venue.submit(order("sl", "SELL", S, stop="95", oco="bracket"))
    assert fills(venue.on_price(bar("100", "111", "94", "100"))) == [("sl", D(95))]
    # The sibling stays open: cancelling it is the ledger's job.
    assert open_ids(venue) == ["tp"]
    assert fills(venue.on_price(bar("100", "111", "99", "100"))) == [("tp", D(110))]


def test_oco_at_most_one_fill_per_event_even_between_limits():
    venue = Venue()
    venue.submit(order("a", "SELL", L, limit="101", oco="g"))
    venue.submit(order("b", "SELL", L, limit="102", oco="g"))
    venue.submit(order("c", "SELL", L, limit="102", oco="other"))
    assert fills(venue.on_price(tick("103"))) == [("a", D(101)), ("c", D(102))]
    assert open_ids(venue) == ["b"]


def test_oco_blocked_stop_limit_does_not_trigger():
    venue = Venue()
    venue.submit(order("sl", "SELL", S, stop="95", oco="g"))
    venue.submit(order("slim", "SELL", SL, stop="96", limit="90", oco="g"))
    assert fills(venue.on_price(tick("94"))) == [("sl", D(94))]
    assert not venue.open_orders()[0].triggered


def test_events_match_only_their_instrument():
    venue = Venue()
    venue.submit(order("x", "BUY", L, limit="100", instrument="X"))
    assert venue.on_price(tick("50", instrument="Y")) == []
    assert open_ids(venue) == ["x"]
    assert venue.last_price("Y") == D(50)
    assert venue.last_price("X") is None


def test_last_price_is_the_bar_close_and_time_may_not_go_back():
    venue = Venue()
    venue.on_price(Bar("X", 10, D(1), D(3), D(1), D(2)))
    assert venue.last_price("X") == D(2)
    venue.on_price(Tick("X", 10, D(2)))  # equal time is fine
    with pytest.raises(VenueError, match="goes back in time"):
        venue.on_price(Tick("X", 9, D(2)))
    venue.on_price(Tick("Y", 1, D(2)))  # other instruments are independent


# -- costs ------------------------------------------------------------------------------------


def test_commission_arithmetic_is_exact():
    model = CommissionModel(per_unit=D("0.5"), rate=D("0.001"), multiplier=D(50))
    venue = Venue(commission=model, slippage=SLIP)
    venue.on_price(tick("4000.25"))
    [execution] = venue.submit(order("b", "BUY", M, quantity="3"))
    # price 4000.75 (slipped); 0.5 * 3 + 0.001 * 4000.75 * 3 * 50 = 1.5 + 600.1125
    assert execution.price == D("4000.75")
    assert execution.commission == D("601.6125")
    assert isinstance(execution.commission, Decimal)


def test_commission_uses_the_absolute_notional_and_rounds_past_18_digits():
    assert CommissionModel(rate=D("0.01")).commission(D(-5), D(2)) == D("0.1")
    tiny = CommissionModel(per_unit=D("0.000000000000000003"))
    assert tiny.commission(D(1), D("0.5")) == D("0.000000000000000002")  # 1.5e-18, half-even
    assert CommissionModel().commission(D(100), D(7)) == 0


def test_slippage_apply_and_validation():
    assert SLIP.apply(D(10), "BUY") == D("10.5")
    assert SLIP.apply(D(10), "SELL") == D("9.5")
    with pytest.raises(VenueError, match="needs a tick_size"):
        SlippageModel(ticks=D(1))
    with pytest.raises(VenueError, match="must not be negative"):
        SlippageModel(ticks=D(-1), tick_size=D(1))
    with pytest.raises(VenueError, match="tick_size must be positive"):
        SlippageModel(tick_size=D(0))
    with pytest.raises(VenueError, match="multiplier must be positive"):
        CommissionModel(multiplier=D(0))


def test_execution_carries_the_order_fields():
    venue = Venue()
    venue.on_price(Tick("X", 5, D(100)))
    [execution] = venue.submit(order("o", "SELL", M, quantity="2", position_side="SHORT", ts=9))
    assert execution == Execution(
        exec_id="o-1",
        order_id="o",
        account="acc",
        instrument="X",
        side="SELL",
        quantity=D(2),
        price=D(100),
        commission=D(0),
        ts=9,
        position_side="SHORT",
        strategy="s1",
    )
    venue.submit(order("p", "BUY", L, limit="99"))
    [later] = venue.on_price(Tick("X", 6, D(98)))
    assert (later.exec_id, later.ts) == ("p-1", 6)


# -- commands ---------------------------------------------------------------------------------


def test_duplicate_submit_is_harmless():
    venue = Venue()
    assert venue.submit(order("o", "BUY", L, limit="100")) == []
    assert venue.submit(order("o", "BUY", L, limit="200")) == []  # same id: ignored
    assert open_ids(venue) == ["o"]
    assert venue.open_orders()[0].limit_price == D(100)
    assert len(venue.on_price(tick("99"))) == 1
    assert venue.submit(order("o", "BUY", M)) == []  # finished: still ignored
    assert venue.open_orders() == []
    assert venue.positions() == {("acc", "X", "BOTH"): D(1)}


def test_submit_refuses_an_order_that_has_already_filled():
    used = PaperOrder(
        order_id="o",
        account="a",
        instrument="X",
        side="BUY",
        quantity=D(2),
        order_type=M,
        filled=D(1),
        submitted_ts=0,
    )
    with pytest.raises(VenueError, match="a new order has filled 0"):
        Venue().submit(used)


def test_cancel():
    venue = Venue()
    venue.submit(order("o", "BUY", L, limit="100"))
    assert venue.cancel("o") is True
    assert venue.open_orders() == []
    assert venue.is_done("o")
    assert venue.cancel("o") is False  # a retried cancel is harmless
    assert venue.on_price(tick("1")) == []
    assert venue.submit(order("o", "BUY", M)) == []  # a cancelled id is never reused
    with pytest.raises(UnknownOrder, match="no such order"):
        venue.cancel("nope")
    assert issubclass(UnknownOrder, VenueError)
    assert issubclass(VenueError, ValueError)


def test_cancel_of_a_filled_order_returns_false():
    venue = Venue()
    venue.on_price(tick("1"))
    venue.submit(order("o", "BUY", M))
    assert venue.cancel("o") is False


def test_amend_sets_the_total_quantity_and_keeps_the_place():
    venue = Venue()
    venue.submit(order("a", "BUY", L, limit="100"))
    venue.submit(order("b", "BUY", L, limit="100"))
    venue.amend("a", D(5))
    venue.amend("a", D(5))  # idempotent: the total, not a change
    assert open_ids(venue) == ["a", "b"]
    executions = venue.on_price(tick("100"))
    assert [(e.order_id, e.quantity) for e in executions] == [("a", D(5)), ("b", D(1))]


def test_amend_errors():
    venue = Venue()
    venue.submit(order("a", "BUY", L, limit="100"))
    with pytest.raises(VenueError, match="amend below what has filled"):
        venue.amend("a", D(0))
    with pytest.raises(UnknownOrder):
        venue.amend("nope", D(1))
    venue.cancel("a")
    with pytest.raises(VenueError, match="it has finished") as caught:
        venue.amend("a", D(3))
    assert not isinstance(caught.value, UnknownOrder)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"quantity": D(0)}, "quantity must be positive"),
        ({"quantity": D("NaN")}, "finite Decimal"),
        ({"quantity": 1.5}, "finite Decimal"),
        ({"side": "buy"}, "side must be BUY or SELL"),
        ({"order_type": "limit"}, "must be an OrderType"),
        ({"order_type": L}, "a limit order needs a limit_price"),
        ({"order_type": S}, "a stop order needs a stop_price"),
        ({"order_type": SL, "stop_price": D(1)}, "a stop_limit order needs a limit_price"),
        ({"order_type": SL, "limit_price": D(1)}, "a stop_limit order needs a stop_price"),
        ({"limit_price": D(1)}, "a market order takes no limit_price"),
        ({"order_type": L, "limit_price": D(1), "stop_price": D(1)}, "takes no stop_price"),
        ({"position_side": "long"}, "position_side must be"),
        ({"filled": D(3)}, "outside 0..2"),
        ({"triggered": True}, "only a stop-limit"),
        ({"account": ""}, "account must be a non-empty string"),
        ({"oco_group": ""}, "oco_group must be None or a non-empty string"),
        ({"executions": -1}, "must not be negative"),
    ],
)
def test_order_validation(changes, problem):
    fields = {
        "order_id": "o",
        "account": "a",
        "instrument": "X",
        "side": "BUY",
        "quantity": D(2),
        "order_type": M,
        "submitted_ts": 0,
    } | changes
    with pytest.raises(VenueError, match=problem):
        PaperOrder(**fields)


# -- positions --------------------------------------------------------------------------------


def test_positions_and_average_prices():
    venue = Venue()
    venue.on_price(tick("100"))
    venue.submit(order("1", "BUY", M, quantity="1"))
    venue.on_price(tick("104"))
    venue.submit(order("2", "BUY", M, quantity="3"))
    key = ("acc", "X", "BOTH")
    assert venue.positions_with_prices() == {key: (D(4), D(103))}
    venue.submit(order("3", "SELL", M, quantity="2"))  # reducing keeps the average
    assert venue.positions_with_prices() == {key: (D(2), D(103))}
    venue.on_price(tick("90"))
    venue.submit(order("4", "SELL", M, quantity="4"))  # through zero: a new average
    assert venue.positions_with_prices() == {key: (D(-2), D(90))}
    venue.submit(order("5", "BUY", M, quantity="2"))
    assert venue.positions() == {}  # flat positions are left out


def test_positions_are_kept_per_account_instrument_and_position_side():
    venue = Venue()
    venue.on_price(tick("10"))
    venue.on_price(tick("20", instrument="Y"))
    venue.submit(order("1", "BUY", M, quantity="2", position_side="LONG"))
    venue.submit(order("2", "SELL", M, quantity="3", position_side="SHORT"))
    venue.submit(order("3", "BUY", M, quantity="1", account="other"))
    venue.submit(order("4", "SELL", M, quantity="5", instrument="Y"))
    assert venue.positions() == {
        ("acc", "X", "LONG"): D(2),
        ("acc", "X", "SHORT"): D(-3),
        ("other", "X", "BOTH"): D(1),
        ("acc", "Y", "BOTH"): D(-5),
    }


def test_average_price_that_does_not_terminate_is_rounded_to_18_digits():
    venue = Venue()
    venue.on_price(tick("1"))
    venue.submit(order("1", "BUY", M, quantity="1"))
    venue.on_price(tick("2"))
    venue.submit(order("2", "BUY", M, quantity="2"))
    [(_, avg)] = venue.positions_with_prices().values()
    assert avg == D("1.666666666666666667")


# -- restarts ---------------------------------------------------------------------------------


def test_state_round_trips_through_json():
    venue = Venue()
    venue.on_price(tick("100"))
    venue.submit(order("filled", "BUY", M, quantity="1.5"))
    venue.submit(order("cancelled", "BUY", L, limit="90"))
    venue.cancel("cancelled")
    venue.submit(order("trig", "BUY", SL, stop="100", limit="99", oco="g", position_side="LONG"))
    venue.submit(order("rest", "SELL", L, limit="120", quantity="0.25"))
    state = json.loads(json.dumps(venue.to_state()))
    restored = Venue.from_state(state)
    assert restored.to_state() == state
    assert restored.open_orders() == venue.open_orders()
    assert restored.open_orders()[0].triggered
    assert restored.positions_with_prices() == venue.positions_with_prices()
    assert restored.last_price("X") == D(100)
    assert restored.is_done("filled") and restored.is_done("cancelled")
    # The last price survives: a market order fills at once.
    assert fills(restored.submit(order("m", "SELL", M))) == [("m", D(100))]


def test_restart_never_refills_a_done_order_and_continues_exec_ids():
    venue = Venue()
    venue.on_price(tick("100"))
    venue.submit(order("done", "BUY", M))
    state = venue.to_state()
    # An order that filled partly in an earlier life, saved with its execution count.
    state["orders"].append(
        {
            "order_id": "part",
            "account": "acc",
            "instrument": "X",
            "side": "BUY",
            "quantity": "5",
            "order_type": "limit",
            "limit_price": "99",
            "stop_price": None,
            "position_side": None,
            "strategy": None,
            "oco_group": None,
            "filled": "2",
            "triggered": False,
            "executions": 1,
            "submitted_ts": 0,
        }
    )
    restarted = Venue.from_state(json.loads(json.dumps(state)))
    assert restarted.submit(order("done", "BUY", M)) == []  # the adapter resends: harmless
    with pytest.raises(VenueError, match="amend below what has filled"):
        restarted.amend("part", D(2))
    restarted.amend("part", D(4))
    [execution] = restarted.on_price(tick("98"))
    assert (execution.exec_id, execution.quantity, execution.price) == ("part-2", D(2), D(99))
    assert restarted.positions() == {("acc", "X", "BOTH"): D(3)}
    assert restarted.open_orders() == []


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda s: s.update(version=2), "version 2"),
        (lambda s: s.pop("orders"), r"state\.orders is missing"),
        (lambda s: s["orders"][0].update(quantity="x"), r"orders\[0\]\.quantity"),
        (lambda s: s["orders"][0].update(quantity=1.5), "must be a decimal string"),
        (lambda s: s["orders"][0].update(order_type="iceberg"), "not an order type"),
        (lambda s: s["orders"][0].update(side="buy"), r"orders\[0\]: order 'o': side"),
        (lambda s: s["done"].append("o"), r"done\[0\]"),
        (lambda s: s["last_prices"]["X"].update(ts="1"), "must be an integer"),
        (lambda s: s["positions"][0].update(quantity="0"), "is flat"),
    ],
)
def test_damaged_state_is_refused_with_its_place(damage, problem):
    venue = Venue()
    venue.on_price(tick("1"))
    venue.submit(order("f", "BUY", M))
    venue.submit(order("o", "BUY", L, limit="0.5"))
    state = json.loads(json.dumps(venue.to_state()))
    state["done"] = []
    damage(state)
    with pytest.raises(VenueError, match=problem):
        Venue.from_state(state)


# -- property ---------------------------------------------------------------------------------

_prices = st.integers(97, 103).map(D)
_submit = st.tuples(
    st.just("submit"),
    st.sampled_from(["BUY", "SELL"]),
    st.sampled_from(list(OrderType)),
    st.integers(1, 5).map(D),
    _prices,
    _prices,
    st.sampled_from([None, "g1", "g2"]),
    st.sampled_from([None, "LONG"]),
    st.sampled_from(["a1", "a2"]),
)
_actions = st.lists(
    st.one_of(
        _submit,
        _submit,
        st.tuples(st.just("tick"), _prices),
        st.tuples(st.just("tick"), _prices),
        st.tuples(st.just("bar"), _prices, _prices, _prices, _prices),
        st.tuples(st.just("cancel"), st.integers(0, 30)),
        st.tuples(st.just("amend"), st.integers(0, 30), st.integers(1, 9).map(D)),
        st.tuples(st.just("restart")),
    ),
    min_size=5,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(_actions)
def test_positions_are_the_signed_sum_of_executions_and_nothing_overfills(actions):
    venue = Venue(slippage=SLIP, commission=CommissionModel(per_unit=D("0.1")))
    quantity: dict[str, Decimal] = {}
    filled: Counter[str] = Counter()
    expected: defaultdict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    exec_ids: set[str] = set()
    venue_orders: dict[str, PaperOrder] = {}

    def take(executions: list[Execution], *, event: bool) -> None:
        groups = [venue_orders[e.order_id].oco_group for e in executions]
        if event:  # at most one fill per OCO group within one price event
            named = [g for g in groups if g is not None]
            assert len(named) == len(set(named))
        for e in executions:
            assert e.exec_id not in exec_ids
            exec_ids.add(e.exec_id)
            filled[e.order_id] += e.quantity
            assert filled[e.order_id] <= quantity[e.order_id]
            assert e.commission == D("0.1") * e.quantity
            signed = e.quantity if e.side == "BUY" else -e.quantity
            expected[(e.account, e.instrument, e.position_side or "BOTH")] += signed

    for ts, action in enumerate(actions, 1):
        kind = action[0]
        if kind == "submit":
            _, side, otype, qty, p1, p2, oco, pside, account = action
            new = PaperOrder(
                order_id=f"o{len(venue_orders)}",
                account=account,
                instrument="X",
                side=side,
                quantity=qty,
                order_type=otype,
                limit_price=p1 if otype in (L, SL) else None,
                stop_price=p2 if otype in (S, SL) else None,
                position_side=pside,
                oco_group=oco,
                submitted_ts=ts,
            )
            venue_orders[new.order_id] = new
            quantity[new.order_id] = qty
            take(venue.submit(new), event=False)
            assert venue.submit(new) == []  # a resend is harmless
        elif kind == "tick":
            take(venue.on_price(Tick("X", ts, action[1])), event=True)
        elif kind == "bar":
            o, c, a, b = action[1:]
            high, low = max(o, c, a, b), min(o, c, a, b)
            take(venue.on_price(Bar("X", ts, o, high, low, c)), event=True)
        elif kind == "cancel":
            order_id = f"o{action[1]}"
            if order_id in venue_orders:
                was_open = order_id in [o.order_id for o in venue.open_orders()]
                assert venue.cancel(order_id) is was_open
            else:
                with pytest.raises(UnknownOrder):
                    venue.cancel(order_id)
        elif kind == "amend":
            order_id = f"o{action[1]}"
            if order_id in [o.order_id for o in venue.open_orders()]:
                venue.amend(order_id, action[2])
                quantity[order_id] = action[2]
        else:
            venue = Venue.from_state(
                json.loads(json.dumps(venue.to_state())),
                slippage=venue.slippage,
                commission=venue.commission,
            )
        assert venue.positions() == {k: v for k, v in expected.items() if v}
        for open_order in venue.open_orders():
            assert open_order.filled == filled[open_order.order_id] == 0
    for order_id, total in filled.items():
        assert total == quantity[order_id]  # full fills only
