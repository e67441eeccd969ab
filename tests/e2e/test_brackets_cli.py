"""Brackets end to end through the command line, with the paper venue as the broker:
every rule of docs/brackets.md a trader would see, and a paper run killed mid-stream."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from .scenario import clean_env, run, run_json, sql, write

ACCOUNT = "PAPER-1"
MES = "MESH6.CME"
SETUP = [
    {"type": "account", "account": ACCOUNT, "venue": "CME", "mode": "PAPER",
     "position_mode": "netting"},
    {"type": "instrument", "instrument": MES, "kind": "future", "multiplier": "5",
     "tick_size": "0.25", "quote_currency": "USD", "settlement_currency": "USD"},
    {"type": "strategy", "strategy": "orb", "take_profit": "20 ticks", "stop_loss": "10 ticks"},
    {"type": "strategy", "strategy": "fade"},
]  # fmt: skip
BAR = "ts,instrument,open,high,low,close\n"


class Desk:
    """A fresh database driven by the real console script."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.db = tmp / "paper.db"
        self.lines = 0
        self.minute = 0
        self.cli("migrate")
        self.ingest(*SETUP)

    def cli(self, *args: str, ok: bool = True, **kw: Any) -> str:
        result = run(*args, db=self.db, **kw)
        if ok:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def ingest(self, *records: dict[str, Any]) -> None:
        self.lines += 1
        self.cli("ingest", str(write(self.tmp / f"in{self.lines}.jsonl", list(records))))

    def ts(self) -> str:
        self.minute += 1
        return f"2026-03-02T14:{self.minute:02d}:00Z"

    def fill(
        self, exec_id: str, strategy: str, side: str, qty: str, price: str, **extra: str
    ) -> None:
        record = {"type": "fill", "exec_id": exec_id, "account": ACCOUNT, "instrument": MES,
                  "side": side, "quantity": qty, "price": price, "ts": self.ts()}  # fmt: skip
        if "client_order_id" not in extra:
            record["strategy"] = strategy
        self.ingest({**record, **extra})

    def bracket(self, strategy: str, tp: str, sl: str) -> None:
        self.cli("bracket", "set", "--account", ACCOUNT, "--instrument", MES,
                 "--strategy", strategy, "--take-profit", tp, "--stop-loss", sl)  # fmt: skip

    def pending(self) -> list[dict[str, Any]]:
        return run_json("commands", "--limit", "1000", db=self.db)  # type: ignore[no-any-return]

    def paper(self, *bars: str, env: dict[str, str] | None = None, ok: bool = True) -> Any:
        """``paper run`` over these bars (``"open high low close"``, a minute apart)."""
        rows = []
        for bar in bars:
            o, h, low, c = bar.split()
            rows.append(f"{self.ts()},{MES},{o},{h},{low},{c}\n")
        prices = self.tmp / f"bars{self.minute}.csv"
        prices.write_text(BAR + "".join(rows))
        result = run("paper", "run", "--prices", str(prices), db=self.db, env=env)
        if ok:
            assert result.returncode == 0, (result.stdout, result.stderr)
        return result

    def legs(self, strategy: str) -> dict[str, tuple[str, str]]:
        watched = run_json("exits", "--watched", "--strategy", strategy, db=self.db)
        return {e["intent"]: (e["state"], e["remaining"]) for e in watched if e["leg"]}

    def leg_id(self, strategy: str, intent: str) -> str:
        watched = run_json("exits", "--watched", "--strategy", strategy, db=self.db)
        (found,) = [e["client_order_id"] for e in watched if e["leg"] and e["intent"] == intent]
        return str(found)

    def trades(self) -> list[dict[str, Any]]:
        return run_json("trades", db=self.db)  # type: ignore[no-any-return]


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    return Desk(tmp_path)


def kinds(commands: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(c["strategy"], c["kind"], c["payload"]["client_order_id"]) for c in commands]


def test_two_strategies_one_instrument_each_with_its_own_bracket(desk: Desk) -> None:
    desk.fill("a1", "orb", "BUY", "2", "6850")
    desk.fill("b1", "fade", "SELL", "1", "6852")
    desk.bracket("orb", "6855", "6838")
    desk.bracket("fade", "6845", "6860")
    assert len(desk.pending()) == 4
    desk.paper("6851 6852 6849 6851")  # the legs go out; nothing triggers
    assert desk.pending() == []
    assert desk.legs("orb") == {"take_profit": ("live", "2"), "stop_loss": ("live", "2")}
    stop = desk.leg_id("orb", "stop_loss")
    # orb's target trades (6855) and fade's stop does not (6860): only orb's stop goes.
    desk.paper("6851 6856 6850 6855")
    (trade,) = [t for t in desk.trades() if t["strategy"] == "orb"]
    assert (trade["status"], trade["close_reason"], trade["avg_exit_price"]) == (
        "closed",
        "take_profit",
        "6855",
    )
    commands = run_json("commands", "--status", "all", "--limit", "1000", db=desk.db)
    cancels = [c for c in commands if c["kind"] == "cancel"]
    assert [(c["strategy"], c["payload"]["client_order_id"], c["status"]) for c in cancels] == [
        ("orb", stop, "acked")
    ]
    assert desk.legs("orb") == {}
    assert desk.legs("fade") == {"take_profit": ("live", "1"), "stop_loss": ("live", "1")}


def test_a_partial_take_profit_amends_the_stop_and_a_scale_in_resizes_both(desk: Desk) -> None:
    desk.fill("a1", "orb", "BUY", "3", "6850")
    desk.bracket("orb", "6870", "6838")
    desk.paper("6851 6852 6849 6851")
    tp, sl = desk.leg_id("orb", "take_profit"), desk.leg_id("orb", "stop_loss")
    # The broker fills 1 of the take-profit (the paper venue fills whole orders: this
    # partial fill comes as a broker's fill line).
    desk.fill("tp-1", "orb", "SELL", "1", "6870", client_order_id=tp)
    assert kinds(desk.pending()) == [("orb", "amend", sl)]
    assert desk.pending()[0]["payload"]["quantity"] == "2"
    desk.paper("6851 6852 6849 6851")
    assert desk.legs("orb") == {"take_profit": ("live", "2"), "stop_loss": ("live", "2")}
    desk.fill("a2", "orb", "BUY", "2", "6851")  # scale in to 4
    assert sorted((c["kind"], c["payload"]["client_order_id"], c["payload"]["quantity"])
                  for c in desk.pending()) == sorted(
        [("amend", tp, "5"), ("amend", sl, "4")]
    )  # fmt: skip
    desk.paper("6851 6852 6849 6851")
    assert desk.legs("orb") == {"take_profit": ("live", "4"), "stop_loss": ("live", "4")}


def test_a_manual_exit_cancels_both_legs(desk: Desk) -> None:
    desk.fill("a1", "orb", "BUY", "2", "6850")
    desk.bracket("orb", "6870", "6838")
    desk.paper("6851 6852 6849 6851")
    legs = {desk.leg_id("orb", "take_profit"), desk.leg_id("orb", "stop_loss")}
    desk.fill("a2", "orb", "SELL", "2", "6853")  # the strategy's own exit
    assert {(k, cid) for _, k, cid in kinds(desk.pending())} == {("cancel", c) for c in legs}
    desk.paper("6851 6852 6849 6851")
    assert desk.legs("orb") == {}
    assert run_json("bracket", "list", db=desk.db) == []


def test_a_flip_cancels_and_the_new_sides_bracket_is_placed(desk: Desk) -> None:
    desk.fill("a1", "orb", "BUY", "1", "6850")
    desk.bracket("orb", "6870", "6838")
    desk.paper("6851 6852 6849 6851")
    old = {desk.leg_id("orb", "take_profit"), desk.leg_id("orb", "stop_loss")}
    desk.ingest(
        {"type": "order", "client_order_id": "flip-1", "account": ACCOUNT, "strategy": "orb",
         "instrument": MES, "side": "SELL", "quantity": "3", "intent": "entry",
         "bracket": {"take_profit": "6830", "stop_loss": "6862"}},
    )  # fmt: skip
    desk.fill("f1", "orb", "SELL", "3", "6852", client_order_id="flip-1")  # long 1 -> short 2
    # The old legs are cancelled first; the new ones wait for those cancels.
    assert {(k, cid) for _, k, cid in kinds(desk.pending())} == {("cancel", c) for c in old}
    assert {state for state, _ in desk.legs("orb").values()} == {"waiting"}
    desk.paper("6851 6852 6849 6851")
    legs = run_json("exits", "--watched", "--strategy", "orb", db=desk.db)
    assert sorted((e["intent"], e["side"], e["remaining"], e["state"]) for e in legs) == [
        ("stop_loss", "BUY", "2", "live"),
        ("take_profit", "BUY", "2", "live"),
    ]
    assert {e["client_order_id"] for e in legs}.isdisjoint(old)
    (flipped,) = [t for t in desk.trades() if t["side"] == "LONG"]
    assert flipped["close_reason"] == "flip"


def test_a_paper_run_killed_between_a_fill_and_the_sibling_cancel_cancels_it_once(
    desk: Desk,
) -> None:
    desk.fill("a1", "orb", "BUY", "2", "6850")
    desk.bracket("orb", "6855", "6838")
    desk.paper("6851 6852 6849 6851")
    stop = desk.leg_id("orb", "stop_loss")
    # The target trades; the run dies (SIGKILL) once the fill is in the ledger, before the
    # cancel of the stop it caused is carried out.
    killed = desk.paper(
        "6851 6856 6850 6855", env=clean_env(POSLEDGER_PAPER_CRASH="after-fill"), ok=False
    )
    assert killed.returncode == -signal.SIGKILL, (killed.stdout, killed.stderr)
    ((_, kind, target),) = kinds(desk.pending())
    assert (kind, target) == ("cancel", stop)
    state = json.loads(sql(desk.db, "SELECT state FROM paper_venues")[0][0])
    assert stop in {order["order_id"] for order in state["venue"]["orders"]}  # still working
    # Started again: the stop is cancelled, once; the target's fill is not sent twice.
    desk.paper("6855 6856 6853 6854")
    commands = run_json("commands", "--status", "all", "--limit", "1000", db=desk.db)
    cancels = [c for c in commands if c["kind"] == "cancel"]
    assert [(c["payload"]["client_order_id"], c["status"], c["attempts"]) for c in cancels] == [
        (stop, "acked", 1)
    ]
    state = json.loads(sql(desk.db, "SELECT state FROM paper_venues")[0][0])
    assert stop in state["venue"]["done"] and state["unsent"] == []
    assert sql(desk.db, "SELECT count(*) FROM fills WHERE client_order_id IS NOT NULL") == [(1,)]
    (trade,) = desk.trades()
    assert (trade["close_reason"], trade["quantity"]) == ("take_profit", "0")
    assert "ok" in desk.cli("verify")


def test_exits_lists_every_unprotected_slot_after_a_restart(desk: Desk) -> None:
    desk.fill("a1", "orb", "BUY", "2", "6850")
    desk.fill("b1", "fade", "SELL", "1", "6852")
    desk.bracket("fade", "6845", "6860")
    desk.paper("6851 6852 6849 6851")
    # A new process, reading the database alone: orb is unprotected, fade is not.
    plan = run_json("exits", "--policy", "bracket", db=desk.db)
    assert sorted((p["strategy"], p["intent"], p["side"], p["quantity"], p["price"],
                   p["stop_price"]) for p in plan) == [
        ("orb", "stop_loss", "SELL", "2", None, "6847.5"),
        ("orb", "take_profit", "SELL", "2", "6855", None),
    ]  # fmt: skip
    flatten = run_json("exits", "--policy", "flatten", "--at", "15:55", "--tz",
                       "America/Chicago", db=desk.db)  # fmt: skip
    assert {(p["strategy"], p["side"], p["quantity"]) for p in flatten} == {
        ("orb", "SELL", "2"),
        ("fade", "BUY", "1"),
    }
