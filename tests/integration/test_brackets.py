"""Brackets and watched exit orders on every store: the commands they send, their acks,
the fills of their legs, replay and rebuild (docs/brackets.md)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from posledger import Ledger, open_ledger

from .helpers import fill, setup

D = Decimal


def sent(ledger: Ledger) -> list[tuple[str, str, dict[str, Any]]]:
    """Pending commands: (strategy, kind, payload), oldest first."""
    return [(c["strategy"], c["kind"], c["payload"]) for c in ledger.commands(limit=1000)]


def ack_all(ledger: Ledger) -> list[dict[str, Any]]:
    claimed = ledger.commands(claim="worker-1", limit=1000)
    for command in claimed:
        ledger.ack(command["command_id"], broker_order_id=f"B-{command['command_id'][-3:]}")
    return claimed


def legs(ledger: Ledger, strategy: str) -> dict[str, tuple[str, str]]:
    return {
        e["intent"]: (e["state"], e["remaining"])
        for e in ledger.exit_orders(strategy=strategy)
        if e["leg"]
    }


def replays(ledger: Ledger) -> None:
    report = ledger.verify()
    assert report.ok, report.problems
    before = (ledger.brackets(), ledger.exit_orders(), ledger.trades())
    ledger.rebuild()
    assert (ledger.brackets(), ledger.exit_orders(), ledger.trades()) == before


def test_each_strategy_keeps_its_own_bracket_through_fills_and_acks(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        assert fill(ledger, "a1", "BUY", "3", "100", strategy="alpha", minute=1).applied
        assert fill(ledger, "b1", "BUY", "2", "101", strategy="beta", minute=2).applied
        set_a = ledger.set_bracket(
            account="ACC", instrument="FUT", strategy="alpha", take_profit="110", stop_loss="95"
        )
        set_b = ledger.set_bracket(
            account="ACC", instrument="FUT", strategy="beta", take_profit="112", stop_loss="96"
        )
        assert set_a.applied and set_b.applied, (set_a, set_b)
        assert [(s, k, p["intent"], p["quantity"]) for s, k, p in sent(ledger)] == [
            ("alpha", "place", "take_profit", "3"),
            ("alpha", "place", "stop_loss", "3"),
            ("beta", "place", "take_profit", "2"),
            ("beta", "place", "stop_loss", "2"),
        ]
        placed = {c["payload"]["intent"] + c["strategy"]: c for c in ack_all(ledger)}
        assert legs(ledger, "alpha") == {"take_profit": ("live", "3"), "stop_loss": ("live", "3")}
        # alpha's take-profit fills completely, carrying its leg's client order id.
        tp = placed["take_profitalpha"]["command_id"]
        assert fill(ledger, "a2", "SELL", "3", "110", strategy="alpha", client_order_id=tp,
                    minute=3).applied  # fmt: skip
        assert [(s, k, p["client_order_id"]) for s, k, p in sent(ledger)] == [
            ("alpha", "cancel", placed["stop_lossalpha"]["command_id"])
        ]
        (trade,) = [t for t in ledger.trades() if t["strategy"] == "alpha"]
        assert trade["close_reason"] == "take_profit"
        assert legs(ledger, "beta") == {"take_profit": ("live", "2"), "stop_loss": ("live", "2")}
        ack_all(ledger)
        assert legs(ledger, "alpha") == {}
        assert [b["strategy"] for b in ledger.brackets()] == ["beta"]
        # beta scales in: both legs are amended to the new size.
        assert fill(ledger, "b2", "BUY", "1", "102", strategy="beta", minute=4).applied
        assert sorted((k, p["quantity"]) for _, k, p in sent(ledger)) == [
            ("amend", "3"),
            ("amend", "3"),
        ]
        ack_all(ledger)
        assert ledger.missing_exits(policy="bracket") == []
        replays(ledger)


def test_a_stuck_cancel_is_an_anomaly_until_a_sweep(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        assert fill(ledger, "a1", "BUY", "2", "100", minute=1).applied
        assert ledger.register_order(
            client_order_id="x-1", account="ACC", strategy="alpha", instrument="FUT",
            side="SELL", quantity="2", intent="exit",
        ).applied  # fmt: skip
        assert sent(ledger) == []
        # Flat by another order: the exit left working is an orphan.
        assert fill(ledger, "a2", "SELL", "2", "99", minute=2).applied
        ((_, kind, payload),) = sent(ledger)
        assert (kind, payload) == ("cancel", {"client_order_id": "x-1"})
        assert [a["kind"] for a in ledger.anomalies()] == ["orphaned_exit"]
        (command,) = ledger.commands(claim="w", limit=10)
        ledger.fail(command["command_id"], reason="order not found")
        assert [e["state"] for e in ledger.exit_orders()] == ["stuck"]
        assert [a["kind"] for a in ledger.anomalies()] == ["orphaned_exit", "exit_stuck"]
        (outcome,) = ledger.sweep()
        assert outcome.applied
        ((_, kind, payload),) = sent(ledger)
        assert (kind, payload) == ("cancel", {"client_order_id": "x-1"})
        (command,) = ledger.commands(claim="w", limit=10)
        ledger.ack(command["command_id"])
        assert ledger.exit_orders() == []
        replays(ledger)


def test_missing_exits_lists_every_unprotected_slot(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        assert ledger.missing_exits(policy="bracket") == []
        ledger.register_instrument(
            instrument="MES", kind="future", multiplier="5", tick_size="0.25",
            quote_currency="USD", settlement_currency="USD",
        )  # fmt: skip
        ledger.register_strategy(strategy="gamma", take_profit="8 ticks", stop_loss="0.1%")
        assert fill(ledger, "g1", "BUY", "2", "6850", strategy="gamma", instrument="MES").applied
        assert fill(ledger, "a1", "SELL", "1", "6851", strategy="alpha", instrument="MES").applied
        plan = ledger.missing_exits(policy="bracket")
        by = {(p["strategy"], p["intent"]): p for p in plan}
        assert set(by) == {
            ("alpha", "take_profit"),
            ("alpha", "stop_loss"),
            ("gamma", "take_profit"),
            ("gamma", "stop_loss"),
        }
        assert (by["gamma", "take_profit"]["price"], by["gamma", "take_profit"]["side"]) == (
            "6852",
            "SELL",
        )
        # 0.1% of 6850 is 6.85: 6843.15, a tick tighter towards the entry: 6843.25.
        assert by["gamma", "stop_loss"]["stop_price"] == "6843.25"
        assert by["alpha", "take_profit"]["price"] is None
        assert "no default take-profit" in by["alpha", "take_profit"]["note"]
        # gamma protects itself: it is no longer listed.
        assert ledger.set_bracket(
            account="ACC", instrument="MES", strategy="gamma", take_profit="6852",
            stop_loss="6843.25",
        ).applied  # fmt: skip
        assert {p["strategy"] for p in ledger.missing_exits(policy="bracket")} == {"alpha"}
        flatten = ledger.missing_exits(policy="flatten", at="09:15", tz="Asia/Kolkata")
        assert {(p["strategy"], p["side"], p["quantity"], p["order_type"]) for p in flatten} == {
            ("alpha", "BUY", "1", "market"),
            ("gamma", "SELL", "2", "market"),
        }
        assert all(p["at"].endswith(":45:00Z") for p in flatten)  # 09:15 IST is 03:45 UTC
        replays(ledger)


def test_an_adoption_at_reconciliation_resizes_the_legs_and_acks_come_as_lines(
    db_url: str,
) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        ledger.register_strategy(strategy="keeper", adopt_orphans=True)
        assert fill(ledger, "k1", "BUY", "1", "100", strategy="keeper", minute=1).applied
        assert ledger.set_bracket(
            account="ACC", instrument="FUT", strategy="keeper", take_profit="110", stop_loss="95"
        ).applied
        ack_all(ledger)
        assert fill(ledger, "x1", "BUY", "2", "101", strategy="EXTERNAL", minute=2).applied
        snapshot = ['{"type":"broker_position","account":"ACC","instrument":"FUT","quantity":"3"}']
        report = ledger.reconcile(snapshot, policy="adopt")
        assert report.checks[0]["orphan"]["strategy"] == "keeper"
        amends = ledger.commands(limit=10)
        assert sorted((c["kind"], c["payload"]["quantity"]) for c in amends) == [
            ("amend", "3"),
            ("amend", "3"),
        ]
        # The executing side acks them with command_ack lines; one again is a duplicate.
        lines = [json.dumps({"type": "command_ack", "command_id": c["command_id"]}) for c in amends]
        done = ledger.ingest([*lines, lines[0]])
        assert (done.applied, done.duplicate, done.rejected) == (2, 1, 0)
        assert ledger.commands(limit=10) == []
        assert legs(ledger, "keeper") == {"take_profit": ("live", "3"), "stop_loss": ("live", "3")}
        unknown = ledger.ingest(['{"type":"command_failed","command_id":"pl-x","reason":"?"}'])
        assert unknown.rejections == [(1, "unknown command pl-x")]
        replays(ledger)


def test_the_same_bracket_again_is_a_duplicate_unless_a_leg_was_refused(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        assert fill(ledger, "a1", "BUY", "2", "100", minute=1).applied
        legs_of = {"account": "ACC", "instrument": "FUT", "strategy": "alpha"}
        assert ledger.set_bracket(**legs_of, take_profit="110", stop_loss="95").applied
        again = ledger.set_bracket(**legs_of, take_profit="110", stop_loss="95")
        assert again.status == "duplicate", again
        places = {c["payload"]["intent"]: c for c in ledger.commands(claim="w", limit=10)}
        ledger.fail(places["take_profit"]["command_id"], reason="price outside band")
        ledger.ack(places["stop_loss"]["command_id"])
        assert legs(ledger, "alpha") == {"stop_loss": ("live", "2")}
        assert ledger.missing_exits(policy="bracket")[0]["intent"] == "take_profit"
        # Set again: only the refused take-profit goes out again; the live stop stays.
        assert ledger.set_bracket(**legs_of, take_profit="110", stop_loss="95").applied
        ((_, kind, payload),) = sent(ledger)
        assert (kind, payload["intent"], payload["quantity"]) == ("place", "take_profit", "2")
        replays(ledger)
