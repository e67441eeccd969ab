"""Brackets under any sequence of fills, transfers, brackets, acks, failures and sweeps
(docs/brackets.md), through the real ledger on the in-memory store:

* no active exit order (placing, live, waiting) belongs to a flat slot, or points the
  way its slot does;
* no bracket leg's remaining quantity differs from its slot's (so none exceeds it), and
  no strategy's own exit order exceeds its slot once it has been looked at;
* a slot has at most one bracket, whose direction is the slot's;
* replay gives the stored state (verify).
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posledger import open_ledger
from tests.databases import fresh_database

D = Decimal
STRATEGIES = ("alpha", "beta")
ACTIVE = {"placing", "live", "waiting"}

step = st.one_of(
    st.tuples(
        st.just("fill"),
        st.sampled_from(STRATEGIES),
        st.sampled_from(("BUY", "SELL")),
        st.integers(1, 4),
    ),
    st.tuples(
        st.just("leg_fill"),
        st.sampled_from(STRATEGIES),
        st.sampled_from(("take_profit", "stop_loss")),
        st.integers(1, 4),
    ),
    st.tuples(st.just("transfer"), st.sampled_from(STRATEGIES), st.integers(1, 3)),
    st.tuples(st.just("bracket"), st.sampled_from(STRATEGIES), st.integers(1, 9)),
    st.tuples(st.just("clear"), st.sampled_from(STRATEGIES)),
    st.tuples(st.just("exit_order"), st.sampled_from(STRATEGIES), st.integers(1, 4)),
    st.tuples(st.just("settle"), st.integers(0, 7), st.booleans()),
    st.tuples(
        st.just("sweep"),
    ),
)


def quantities(ledger: Any) -> dict[str, Decimal]:
    return {
        p["strategy"]: D(p["signed_quantity"])
        for p in ledger.positions(instrument="FUT", include_flat=True)
    }


def check(ledger: Any) -> None:
    held = quantities(ledger)
    for found in ledger.exit_orders():
        if found["state"] not in ACTIVE or found["strategy"] == "EXTERNAL":
            continue
        quantity = held.get(found["strategy"], D(0))
        assert quantity, f"active exit {found} on a flat slot"
        reduces = "SELL" if quantity > 0 else "BUY"
        assert found["side"] == reduces, f"exit {found} adds to its slot of {quantity}"
        if found["leg"]:
            assert D(found["remaining"]) == abs(quantity), f"leg {found} vs slot {quantity}"
    for bracket in ledger.brackets():
        quantity = held.get(bracket["strategy"], D(0))
        assert bracket["direction"] == ("LONG" if quantity > 0 else "SHORT"), (bracket, quantity)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=30))
def test_exit_orders_always_fit_their_slots(steps: list[tuple[Any, ...]]) -> None:
    numbers = itertools.count(1)
    with fresh_database("memory") as url, open_ledger(url) as ledger:
        ledger.register_account(account="ACC", venue="CME", mode="PAPER", position_mode="netting")
        ledger.register_instrument(
            instrument="FUT",
            kind="future",
            multiplier="1",
            quote_currency="USD",
            settlement_currency="USD",
        )
        for name in STRATEGIES:
            ledger.register_strategy(strategy=name)

        def ts() -> str:
            n = next(numbers)
            return f"2026-03-02T{10 + n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"

        for action, *args in steps:
            n = next(numbers)
            held = quantities(ledger)
            if action == "fill":
                strategy, side, qty = args
                ledger.apply_fill(
                    exec_id=f"e{n}",
                    account="ACC",
                    instrument="FUT",
                    side=side,
                    quantity=str(qty),
                    price="100",
                    ts=ts(),
                    strategy=strategy,
                )
            elif action == "leg_fill":
                strategy, intent, qty = args
                legs = [
                    e
                    for e in ledger.exit_orders(strategy=strategy)
                    if e["intent"] == intent
                    and e["leg"]
                    and not e["client_order_id"].startswith("wt-")
                ]
                if legs:
                    leg = legs[0]
                    ledger.apply_fill(
                        exec_id=f"e{n}",
                        account="ACC",
                        instrument="FUT",
                        side=leg["side"],
                        quantity=str(qty),
                        price="100",
                        ts=ts(),
                        client_order_id=leg["client_order_id"],
                    )
            elif action == "transfer":
                giver, qty = args
                taker = STRATEGIES[1 - STRATEGIES.index(giver)]
                quantity = held.get(giver, D(0))
                if quantity:
                    ledger.transfer(
                        account="ACC",
                        instrument="FUT",
                        from_strategy=giver,
                        to_strategy=taker,
                        quantity=str(min(qty, abs(quantity))),
                        ts=ts(),
                    )
            elif action == "bracket":
                strategy, width = args
                quantity = held.get(strategy, D(0))
                if quantity:
                    tp, sl = (
                        (100 + width, 100 - width) if quantity > 0 else (100 - width, 100 + width)
                    )
                    ledger.set_bracket(
                        account="ACC",
                        instrument="FUT",
                        strategy=strategy,
                        take_profit=str(tp),
                        stop_loss=str(sl),
                    )
            elif action == "clear":
                ledger.set_bracket(account="ACC", instrument="FUT", strategy=args[0])
            elif action == "exit_order":
                strategy, qty = args
                quantity = held.get(strategy, D(0))
                if quantity:
                    ledger.register_order(
                        client_order_id=f"x{n}",
                        account="ACC",
                        strategy=strategy,
                        instrument="FUT",
                        side="SELL" if quantity > 0 else "BUY",
                        quantity=str(min(qty, abs(quantity))),
                        intent="exit",
                    )
            elif action == "settle":
                index, acked = args
                pending = ledger.commands(limit=100)
                if pending:
                    command = pending[index % len(pending)]
                    if acked:
                        ledger.ack(command["command_id"])
                    else:
                        ledger.fail(command["command_id"], reason="refused")
            else:
                ledger.sweep()
            check(ledger)
        report = ledger.verify()
        assert report.ok, report.problems
