"""What the live stream says a journal entry changed (posledger.service.feed.changes;
docs/service.md, Live stream), from entries written out by hand: no database."""

from __future__ import annotations

from typing import Any, Literal

from posledger.service.feed import changes

OWNERS = {("order", "o-9"): "beta", ("command", "pl-1"): "alpha", ("command", "pl-2"): "gamma"}


def owner(what: Literal["order", "command"], key: str) -> str | None:
    return OWNERS.get((what, key))


def entry(kind: str, record: dict[str, Any], effects: dict[str, Any]) -> dict[str, Any]:
    return {"seq": 1, "kind": kind, "input": {"type": kind, **record}, "effects": effects}


def leg(strategy: str, trade_id: int, delta: str) -> dict[str, Any]:
    return {"strategy": strategy, "position_side": "BOTH", "trade_id": trade_id, "delta": delta}


def test_a_fill_that_overshoots_names_both_slots_its_trades_and_its_commands() -> None:
    # SELL 3 on alpha's long 2: alpha's trade 4 closes, the 1 beyond goes to EXTERNAL.
    found = changes(
        entry(
            "fill",
            {"account": "ACC", "instrument": "FUT", "strategy": "alpha"},
            {
                "strategy": "alpha",
                "legs": [leg("alpha", 4, "-2"), leg("EXTERNAL", 5, "-1")],
                "opened": [5],
                "closed": [{"trade_id": 4, "close_reason": "exit"}],
                "anomalies": [{"kind": "exit_overshoot", "strategy": "EXTERNAL"}],
                "commands": [["pl-1", "cancel", "pl-0"], ["pl-2", "amend", "pl-7"]],
            },
        ),
        owner,
    )
    slot = {"account": "ACC", "instrument": "FUT", "position_side": "BOTH"}
    assert found == {
        "strategies": ["EXTERNAL", "alpha", "gamma"],
        "slots": [{**slot, "strategy": "alpha"}, {**slot, "strategy": "EXTERNAL"}],
        "trades": [4, 5],
        "opened": [5],
        "closed": [4],
        "commands": [
            {
                "command_id": "pl-1",
                "kind": "cancel",
                "client_order_id": "pl-0",
                "strategy": "alpha",
            },
            {"command_id": "pl-2", "kind": "amend", "client_order_id": "pl-7", "strategy": "gamma"},
        ],
    }


def test_a_cancel_and_an_ack_concern_the_owner_of_what_they_name() -> None:
    cancel = changes(entry("cancel", {"client_order_id": "o-9"}, {}), owner)
    ack = changes(entry("command_ack", {"command_id": "pl-1", "instrument": "FUT"}, {}), owner)
    unknown = changes(entry("cancel", {"client_order_id": "o-0"}, {}), owner)
    assert (cancel["strategies"], ack["strategies"], unknown["strategies"]) == (
        ["beta"],
        ["alpha"],
        [],
    )


def test_a_transfer_concerns_both_sides_and_a_mark_no_strategy() -> None:
    transfer = changes(
        entry(
            "transfer",
            {
                "account": "ACC",
                "instrument": "FUT",
                "from_strategy": "alpha",
                "to_strategy": "beta",
            },
            {"legs": [leg("alpha", 1, "-1"), leg("beta", 2, "1")], "opened": [], "closed": []},
        ),
        owner,
    )
    assert transfer["strategies"] == ["alpha", "beta"] and transfer["trades"] == [1, 2]
    mark = changes(
        entry("mark", {"instrument": "FUT", "price": "101"}, {"trades": [{"trade_id": 2}]}),
        owner,
    )
    assert (mark["strategies"], mark["slots"], mark["trades"]) == ([], [], [2])
    halt = changes(entry("halt", {"account": "ACC", "instrument": "FUT"}, {}), owner)
    assert halt == {
        "strategies": [], "slots": [], "trades": [], "opened": [], "closed": [], "commands": [],
    }  # fmt: skip


def test_a_reconciliation_that_adopts_concerns_the_adopter() -> None:
    found = changes(
        entry(
            "reconcile",
            {"account": "ACC", "instrument": "FUT", "position_side": "BOTH"},
            {
                "kind": "agree",
                "holders": {"alpha": "2", "EXTERNAL": "1"},
                "orphan": {"quantity": "1", "strategy": "beta", "price": "100"},
                "legs": [leg("EXTERNAL", 3, "-1"), leg("beta", 6, "1")],
                "opened": [6],
                "closed": [{"trade_id": 3, "close_reason": "transfer"}],
            },
        ),
        owner,
    )
    assert found["strategies"] == ["EXTERNAL", "beta"]  # not alpha, which only holds
    assert (found["opened"], found["closed"], found["trades"]) == ([6], [3], [3, 6])
