"""The five seed stories (``shared/seeds``) replayed against the real ``posledger`` script.

Each test is a trading day a desk running several strategies on shared broker accounts
would recognise: two MES opening-range strategies on one CME account (stories 1 to 4) and
a Binance USD-M account in hedge mode (story 5). Every step that changes the books
(ingest, reconcile, transfer, resume) and the key pre-trade refusals are their own
``posledger`` process on the same SQLite file, so a "restart" is exactly that: a new
process that knows only what the database holds. Read-only looks at the books (listings,
verify, doctor and the other check-order calls) go through click's CliRunner in this
process: the same code path, without a second of interpreter start-up each.

Numbers are worked out by hand in the comments (MES multiplier 5; commissions in USD).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from .desk import (
    ACCOUNT,
    DAY,
    EXTERNAL,
    MES,
    ORB,
    SIMPLE,
    check_order,
    copy_db,
    fill,
    journal_count,
    look,
    order,
    pick,
    posledger,
    posledger_json,
)
from .scenario import invoke, sql, write

DATA = Path(__file__).with_name("data")


HEDGE_ACCOUNT = "BINANCE-USDM-7"
ONE_WAY_ACCOUNT = "BINANCE-USDM-ONEWAY"
BTC = "BTCUSDT-PERP.BINANCE"
SYMBOLS = {"BTCUSDT": BTC}
TREND = "btc-trend-long"
MEANREV = "btc-meanrev-short"


# -- records -------------------------------------------------------------------------------


def mes_account(**extra: Any) -> dict[str, Any]:
    return {
        "type": "account",
        "account": ACCOUNT,
        "venue": "CME",
        "mode": "LIVE",
        "position_mode": "netting",
        **extra,
    }


MES_FUTURE = {
    "type": "instrument",
    "instrument": MES,
    "kind": "future",
    "multiplier": "5",
    "tick_size": "0.25",
    "lot_size": "1",
    "quote_currency": "USD",
    "settlement_currency": "USD",
}


def strategy(name: str, **extra: Any) -> dict[str, Any]:
    return {"type": "strategy", "strategy": name, **extra}


def broker(quantity: str, avg_price: str | None = None, **extra: Any) -> dict[str, Any]:
    """What the CME broker reports for MES on the account (netting: one signed number)."""
    record = {
        "type": "broker_position",
        "account": ACCOUNT,
        "instrument": MES,
        "quantity": quantity,
        **extra,
    }
    if avg_price is not None:
        record["avg_price"] = avg_price
    return record


# -- running the CLI ----------------------------------------------------------------------


def slots(db: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Every slot (flat ones too) by (strategy, position side)."""
    rows = look(db, "positions", "--all")
    return {(row["strategy"], row["position_side"]): row for row in rows}


def holding(db: Path) -> dict[str, str]:
    """Signed quantity per strategy of the open BOTH slots."""
    return {row["strategy"]: row["signed_quantity"] for row in look(db, "positions")}


def trades(db: Path) -> dict[int, dict[str, Any]]:
    return {row["trade_id"]: row for row in look(db, "trades")}


COMPARED = (
    "account",
    "instrument",
    "position_side",
    "kind",
    "policy",
    "ledger_quantity",
    "broker_quantity",
    "difference",
    "action",
    "holders",
)


# -- 1. position stealing --------------------------------------------------------------------


def test_two_strategies_restart_with_open_positions_and_neither_adopts_the_others(
    tmp_path: Path,
) -> None:
    """Seed 1, position stealing: mes-orb-01 and mes-orb-simple-01 both trade MESH6.CME.

    Monday, 14:45: mes-orb-01 buys 1 @ 6850.25; 14:50: mes-orb-simple-01 buys 2 @ 6851
    (each from its own process); 15:00: someone buys 1 @ 6853.50 in the broker's web
    front end, an order no strategy registered. The broker holds 4 long.

    Then the service restarts. Both strategies are configured to adopt orphan positions
    and the account reconciles with the adopt policy: in the failing system each strategy
    "found" the broker's position at start-up and opened a trade for it. Here each
    strategy's restart reconciles (two processes, one after the other): the books agree,
    each strategy keeps exactly its own contracts and trade, and the manual contract stays
    on EXTERNAL because two strategies would adopt it and the ledger will not pick one.
    And mes-orb-01 cannot send an exit for mes-orb-simple-01's size.
    """
    db = tmp_path / "ledger.db"
    orb_process = [
        mes_account(reconcile_policy="adopt"),
        MES_FUTURE,
        strategy(ORB, adopt_orphans=True),
        order("orb-0302-1", ORB, "BUY", "1", "entry", "14:45:00"),
        fill("cme-1001", "BUY", "1", "6850.25", "14:45:02", "0.62", coid="orb-0302-1"),
    ]
    simple_process = [
        strategy(SIMPLE, adopt_orphans=True),
        order("simple-0302-1", SIMPLE, "BUY", "2", "entry", "14:50:00"),
        fill("cme-1002", "BUY", "2", "6851", "14:50:01", "1.24", coid="simple-0302-1"),
    ]
    web_front_end = [fill("cme-1003", "BUY", "1", "6853.5", "15:00:00", "0.62")]
    for name, records in [("orb", orb_process), ("simple", simple_process), ("web", web_front_end)]:
        result = posledger(db, "ingest", str(write(tmp_path / f"{name}.jsonl", records)))
        assert f"{len(records)} applied, 0 duplicate, 0 rejected" in result.stdout
    before = look(db, "positions")
    assert holding(db) == {EXTERNAL: "1", ORB: "1", SIMPLE: "2"}

    # The broker's true net position: 4 long at (6850.25 + 2 * 6851 + 6853.5) / 4.
    snapshot = write(tmp_path / "broker.jsonl", [broker("4", "6851.4375")])
    for restarted in (ORB, SIMPLE):
        report = posledger_json(db, "reconcile", str(snapshot), "--run", f"restart-{restarted}")
        assert pick(report, "run", "agreed", "accounts", "policies", "differences") == {
            "run": f"restart-{restarted}",
            "agreed": True,
            "accounts": [ACCOUNT],
            "policies": {ACCOUNT: "adopt"},
            "differences": 0,
        }
        [check] = report["checks"]
        assert pick(check, *COMPARED, "ledger_avg_price", "broker_avg_price") == {
            "account": ACCOUNT,
            "instrument": MES,
            "position_side": "BOTH",
            "kind": "agree",
            "policy": "adopt",
            "ledger_quantity": "4",
            "broker_quantity": "4",
            "difference": "0",
            "action": "none",
            "holders": {EXTERNAL: "1", ORB: "1", SIMPLE: "2"},
            "ledger_avg_price": "6851.4375",
            "broker_avg_price": "6851.4375",
        }
        orphan = check["orphan"]
        assert pick(orphan, "quantity", "strategy", "price") == {
            "quantity": "1",
            "strategy": None,
            "price": None,
        }
        assert "not adopted" in orphan["detail"]
        assert f"{ORB}, {SIMPLE} all adopt orphans" in orphan["detail"]

    # Nobody adopted anything: the same slots, the same three open trades, no transfer.
    assert look(db, "positions") == before
    assert look(db, "transfers") == []
    assert [
        (t["trade_id"], t["strategy"], t["status"], t["quantity"], t["avg_entry_price"])
        for t in look(db, "trades")
    ] == [
        (1, ORB, "open", "1", "6850.25"),
        (2, SIMPLE, "open", "2", "6851"),
        (3, EXTERNAL, "open", "1", "6853.5"),
    ]
    history = look(db, "reconciliations", "--last", "5")
    assert [(row["run"], row["kind"]) for row in history] == [
        (f"restart-{SIMPLE}", "agree"),
        (f"restart-{ORB}", "agree"),
    ]

    # mes-orb-01's exit for mes-orb-simple-01's size would close the other's contracts.
    offending = order("orb-0302-2", ORB, "SELL", "2", "exit", "15:55:00")
    verdict = check_order(db, offending, 1, process=True)
    assert verdict["allowed"] is False
    [reason] = verdict["reasons"]
    assert f"exit order orb-0302-2 for 2 is larger than {ORB}'s position of 1" in reason
    assert "another strategy's position" in reason
    # Its own size is fine.
    own = order("orb-0302-3", ORB, "SELL", "1", "stop_loss", "15:55:00")
    assert check_order(db, own, 0) == {"allowed": True, "reasons": []}

    doctor = look(db, "doctor")
    assert doctor["ok"] is True
    found = {(f["check"], f["severity"]): f["data"] for f in doctor["findings"]}
    assert found[("shared_instrument", "info")]["strategies"] == [ORB, SIMPLE]
    assert found[("external_position", "warning")]["quantity"] == "1"
    assert not any(f["check"] == "duplicate_open_trades" for f in doctor["findings"])


# -- 2. an exit larger than the strategy's own position ---------------------------------------


def test_an_oversized_exit_is_refused_pre_trade_and_if_filled_anyway_goes_to_external(
    tmp_path: Path,
) -> None:
    """Seed 2 / README: mes-orb-simple-01 sends an exit for the broker's whole position.

    mes-orb-01 is long 1 @ 6850.25 and mes-orb-simple-01 long 1 @ 6851, so the broker
    holds 2. At 15:20 mes-orb-simple-01 decides to exit "its" position and sends SELL 2.
    The pre-trade check refuses it (check-order, and again when it is registered); the
    strategy sends it anyway and the broker fills 2 @ 6858.75. The fill is a fact and is
    applied: 1 closes mes-orb-simple-01's trade (reason exit, net 37.51), the other 1 is
    not mes-orb-01's to lose, so it lands on EXTERNAL as a short with an exit_overshoot
    anomaly. The broker is flat, and so is the sum of the ledger's slots.
    """
    db = tmp_path / "ledger.db"
    morning = [
        mes_account(),
        MES_FUTURE,
        strategy(ORB),
        strategy(SIMPLE),
        order("orb-0302-1", ORB, "BUY", "1", "entry", "14:45:00"),
        fill("cme-2001", "BUY", "1", "6850.25", "14:45:02", "0.62", coid="orb-0302-1"),
        order("simple-0302-1", SIMPLE, "BUY", "1", "entry", "14:46:00"),
        fill("cme-2002", "BUY", "1", "6851", "14:46:10", "0.62", coid="simple-0302-1"),
    ]
    posledger(db, "ingest", str(write(tmp_path / "morning.jsonl", morning)))
    orb_before = slots(db)[(ORB, "BOTH")]

    oversized = order("simple-0302-2", SIMPLE, "SELL", "2", "exit", "15:20:00")
    verdict = check_order(db, oversized, 1, process=True)
    [reason] = verdict["reasons"]
    assert f"exit order simple-0302-2 for 2 is larger than {SIMPLE}'s position of 1" in reason
    assert f"on {ACCOUNT}/{MES}/BOTH" in reason

    # Registered anyway, and filled anyway: commission 1.24 for 2, 0.62 each.
    sent = [
        oversized,
        fill("cme-2004", "SELL", "2", "6858.75", "15:20:05", "1.24", coid="simple-0302-2"),
    ]
    result = posledger(db, "ingest", str(write(tmp_path / "exit.jsonl", sent)), expect=1)
    assert "2 lines: 1 applied, 0 duplicate, 1 rejected" in result.stdout
    assert "rejected line 1: refused pre-trade: exit order simple-0302-2 for 2" in result.stdout
    assert sql(db, "SELECT status FROM orders WHERE client_order_id = 'simple-0302-2'") == [
        ("refused",)
    ]
    [rejected] = look(db, "rejected")
    assert rejected["reason"].startswith("refused pre-trade: exit order simple-0302-2")

    after = slots(db)
    assert after[(ORB, "BOTH")] == orb_before  # untouched, down to its P&L and trade
    assert pick(after[(SIMPLE, "BOTH")], "side", "signed_quantity", "trade_id") == {
        "side": "FLAT",
        "signed_quantity": "0",
        "trade_id": 2,
    }
    assert pick(after[(EXTERNAL, "BOTH")], "signed_quantity", "avg_entry_price") == {
        "signed_quantity": "-1",
        "avg_entry_price": "6858.75",
    }
    book = trades(db)
    # (6858.75 - 6851) * 1 * 5 = 38.75 gross, minus 0.62 + 0.62 of commissions.
    assert pick(book[2], "strategy", "status", "close_reason", "realized_pnl") == {
        "strategy": SIMPLE,
        "status": "closed",
        "close_reason": "exit",
        "realized_pnl": "37.51",
    }
    assert pick(book[3], "strategy", "side", "status", "quantity", "realized_pnl") == {
        "strategy": EXTERNAL,
        "side": "SHORT",
        "status": "open",
        "quantity": "1",
        "realized_pnl": "-0.62",
    }
    [anomaly] = look(db, "anomalies")
    assert pick(anomaly, "kind", "strategy", "exec_id", "quantity", "position_side") == {
        "kind": "exit_overshoot",
        "strategy": SIMPLE,
        "exec_id": "cme-2004",
        "quantity": "1",
        "position_side": "BOTH",
    }

    flat = write(tmp_path / "broker.jsonl", [broker("0")])
    report = posledger_json(db, "reconcile", str(flat))
    assert (report["agreed"], report["differences"]) == (True, 0)
    [check] = report["checks"]
    assert pick(check, "kind", "ledger_quantity", "broker_quantity", "holders") == {
        "kind": "agree",
        "ledger_quantity": "0",
        "broker_quantity": "0",
        "holders": {EXTERNAL: "-1", ORB: "1"},
    }
    assert invoke("verify", db=db).output.startswith("ok:")


# -- 3. a crash, and a position the broker closed meanwhile -----------------------------------


def test_a_restart_after_a_crash_finds_the_position_the_broker_closed_meanwhile(
    tmp_path: Path,
) -> None:
    """Seed 3, positions lost on a crash: the books say long, the broker says flat.

    mes-orb-01 buys 1 @ 6850.25 at 14:45 (its stop rests at the broker at 6838.50), and at
    15:00 the desk buys 1 @ 6853.50 by hand (EXTERNAL). The service crashes at 15:30.
    While it is down the stop fires and the desk flattens its contract by phone: the
    broker is flat, and the ledger never saw either fill.

    On restart, market data comes back (mark 6838.50) and the account is reconciled with
    a snapshot listing nothing: stale_position, ledger 2, broker 0, exit 1. The report
    policy changes nothing. The adopt policy books the difference to EXTERNAL at the mark
    (EXTERNAL's long closes with close_reason reconciliation and it ends short 1) but
    never touches mes-orb-01's slot, and the next run agrees. The desk then moves
    mes-orb-01's contract to EXTERNAL at the stop price, which closes mes-orb-01's trade
    with its true loss. In another timeline the halt policy locks MESH6.CME on the account:
    entries are refused until `posledger resume`, exits still allowed.
    """
    db = tmp_path / "ledger.db"
    before_crash = [
        mes_account(),
        MES_FUTURE,
        strategy(ORB),
        strategy(SIMPLE),
        order("orb-0302-1", ORB, "BUY", "1", "entry", "14:45:00"),
        fill("cme-3001", "BUY", "1", "6850.25", "14:45:02", "0.62", coid="orb-0302-1"),
        fill("cme-3002", "BUY", "1", "6853.5", "15:00:00", "0.62"),
    ]
    posledger(db, "ingest", str(write(tmp_path / "before_crash.jsonl", before_crash)))
    # --- crash; restart: a new process, market data first. ---
    mark = {"type": "mark", "instrument": MES, "price": "6838.5", "ts": DAY + "16:00:00Z"}
    posledger(db, "ingest", str(write(tmp_path / "mark.jsonl", [mark])))
    books = look(db, "positions")
    trades_before = look(db, "trades")
    assert holding(db) == {EXTERNAL: "1", ORB: "1"}

    # The broker lists no position at all for the account: --account says it covers it.
    empty = write(tmp_path / "broker_empty.jsonl", [])
    report = posledger_json(db, "reconcile", str(empty), "--account", ACCOUNT, expect=1)
    assert (report["agreed"], report["differences"]) == (False, 1)
    [check] = report["checks"]
    assert pick(check, *COMPARED) == {
        "account": ACCOUNT,
        "instrument": MES,
        "position_side": "BOTH",
        "kind": "stale_position",
        "policy": "report",
        "ledger_quantity": "2",
        "broker_quantity": "0",
        "difference": "-2",
        "action": "none",
        "holders": {EXTERNAL: "1", ORB: "1"},
    }
    assert "the broker is flat" in check["detail"]
    assert look(db, "positions") == books
    assert look(db, "trades") == trades_before
    timeline = copy_db(db, tmp_path / "halt.db")

    # Policy adopt: the difference is booked to EXTERNAL, at the mark.
    report = posledger_json(
        db, "reconcile", str(empty), "--account", ACCOUNT, "--policy", "adopt", expect=1
    )
    [check] = report["checks"]
    assert pick(check, "kind", "policy", "action") == {
        "kind": "stale_position",
        "policy": "adopt",
        "action": "adopted",
    }
    assert "-2 booked to EXTERNAL at 6838.5" in check["detail"]
    assert holding(db) == {EXTERNAL: "-1", ORB: "1"}
    orb = slots(db)[(ORB, "BOTH")]
    assert orb == next(row for row in books if row["strategy"] == ORB)
    assert pick(orb, "signed_quantity", "avg_entry_price", "trade_id", "realized_pnl") == {
        "signed_quantity": "1",
        "avg_entry_price": "6850.25",
        "trade_id": 1,
        "realized_pnl": "-0.62",
    }
    book = trades(db)
    # EXTERNAL's long 1 @ 6853.5 closed at 6838.5: (6838.5 - 6853.5) * 5 - 0.62.
    assert pick(book[2], "strategy", "status", "close_reason", "realized_pnl") == {
        "strategy": EXTERNAL,
        "status": "closed",
        "close_reason": "reconciliation",
        "realized_pnl": "-75.62",
    }
    assert pick(book[3], "strategy", "side", "status", "quantity", "avg_entry_price") == {
        "strategy": EXTERNAL,
        "side": "SHORT",
        "status": "open",
        "quantity": "1",
        "avg_entry_price": "6838.5",
    }
    assert book[1]["status"] == "open"  # mes-orb-01's trade: never changed by reconciliation

    report = posledger_json(db, "reconcile", str(empty), "--account", ACCOUNT)
    assert report["agreed"] is True
    assert pick(report["checks"][0], "kind", "ledger_quantity", "holders") == {
        "kind": "agree",
        "ledger_quantity": "0",
        "holders": {EXTERNAL: "-1", ORB: "1"},
    }

    # What the desk does about it: mes-orb-01's contract was stopped out at 6838.50.
    posledger(
        db, "transfer", "--account", ACCOUNT, "--instrument", MES, "--from", ORB,
        "--to", EXTERNAL, "--quantity", "1", "--price", "6838.5",
    )  # fmt: skip
    book = trades(db)
    # (6838.5 - 6850.25) * 1 * 5 = -58.75, minus the 0.62 entry commission.
    assert pick(book[1], "status", "close_reason", "avg_exit_price", "realized_pnl") == {
        "status": "closed",
        "close_reason": "transfer",
        "avg_exit_price": "6838.5",
        "realized_pnl": "-59.37",
    }
    assert pick(book[3], "status", "close_reason", "realized_pnl") == {
        "status": "closed",
        "close_reason": "transfer",
        "realized_pnl": "0",
    }
    assert look(db, "positions") == []
    assert invoke("verify", db=db).exit_code == 0

    # The other timeline: policy halt. Nothing is booked; MESH6.CME is locked on the account.
    db = timeline
    report = posledger_json(
        db, "reconcile", str(empty), "--account", ACCOUNT, "--policy", "halt", expect=1
    )
    assert pick(report["checks"][0], "kind", "policy", "action") == {
        "kind": "stale_position",
        "policy": "halt",
        "action": "halted",
    }
    assert look(db, "positions") == books
    [halted] = look(db, "halts")
    assert pick(halted, "account", "instrument") == {"account": ACCOUNT, "instrument": MES}
    assert "stale_position" in halted["reason"]

    entry = order("simple-0302-9", SIMPLE, "BUY", "1", "entry", "16:05:00")
    [reason] = check_order(db, entry, 1)["reasons"]
    assert f"{MES} is halted on account {ACCOUNT}" in reason
    assert "posledger resume" in reason
    result = posledger(db, "ingest", str(write(tmp_path / "entry.jsonl", [entry])), expect=1)
    assert f"refused pre-trade: {MES} is halted on account {ACCOUNT}" in result.stdout
    # Getting flat is still allowed while halted.
    exit_order = order("orb-0302-9", ORB, "SELL", "1", "exit", "16:05:00")
    assert check_order(db, exit_order, 0)["allowed"] is True

    posledger(db, "resume", "--account", ACCOUNT, "--instrument", MES)
    assert look(db, "halts") == []
    again = order("simple-0302-10", SIMPLE, "BUY", "1", "entry", "16:10:00")
    assert check_order(db, again, 0) == {"allowed": True, "reasons": []}


# -- 4. a reconnect, and the broker's fill history --------------------------------------------


def test_a_reconnect_with_the_brokers_fill_history_ends_with_books_that_agree(
    tmp_path: Path,
) -> None:
    """Seed 4, two sources of truth: the gap a dropped connection leaves.

    14:45 mes-orb-01 buys 2 @ 6850.25 and rests a take-profit SELL 2; 14:58
    mes-orb-simple-01 registers a BUY 3, and the connection drops. While it is down the
    broker fills mes-orb-simple-01's 3 @ 6857 and mes-orb-01's take-profit in two parts
    @ 6862.50. On reconnect the broker says long 3 @ 6857: the ledger (long 2, all
    mes-orb-01's) is behind. With the broker's fill history (the four fills of the day,
    one of them already applied) the missing three are applied exactly once, each to the
    strategy of its order, and the books agree: mes-orb-01's trade closed by take_profit
    (net 120.02), mes-orb-simple-01 long 3.
    """
    db = tmp_path / "ledger.db"
    before_drop = [
        mes_account(),
        MES_FUTURE,
        strategy(ORB),
        strategy(SIMPLE),
        order("orb-0302-1", ORB, "BUY", "2", "entry", "14:45:00"),
        fill("cme-4001", "BUY", "2", "6850.25", "14:45:02", "1.24", coid="orb-0302-1"),
        order("orb-0302-tp", ORB, "SELL", "2", "take_profit", "14:45:03"),
        order("simple-0302-1", SIMPLE, "BUY", "3", "entry", "14:58:00"),
    ]
    posledger(db, "ingest", str(write(tmp_path / "before_drop.jsonl", before_drop)))
    history = write(
        tmp_path / "broker_fills.jsonl",
        [
            before_drop[5],
            fill("cme-4002", "BUY", "3", "6857", "14:58:01", "1.86", coid="simple-0302-1"),
            fill("cme-4003", "SELL", "1", "6862.5", "15:05:10", "0.62", coid="orb-0302-tp"),
            fill("cme-4004", "SELL", "1", "6862.5", "15:05:10.250", "0.62", coid="orb-0302-tp"),
        ],
    )
    snapshot = write(tmp_path / "broker.jsonl", [broker("3", "6857.00")])

    # Without the history: the ledger is behind by 1.
    report = posledger_json(db, "reconcile", str(snapshot), expect=1)
    [check] = report["checks"]
    assert pick(check, "kind", "ledger_quantity", "broker_quantity", "difference", "holders") == {
        "kind": "missing_fills",
        "ledger_quantity": "2",
        "broker_quantity": "3",
        "difference": "1",
        "holders": {ORB: "2"},
    }
    assert "reconcile --fills" in check["detail"]

    report = posledger_json(db, "reconcile", str(snapshot), "--fills", str(history), "--quiet")
    assert report["fill_history"] == {
        "lines": 4,
        "applied": 3,
        "duplicate": 1,
        "rejected": 0,
        "rejections": [],
    }
    assert (report["agreed"], report["differences"]) == (True, 0)
    [check] = report["checks"]
    assert pick(check, *COMPARED, "ledger_avg_price", "broker_avg_price") == {
        "account": ACCOUNT,
        "instrument": MES,
        "position_side": "BOTH",
        "kind": "agree",
        "policy": "report",
        "ledger_quantity": "3",
        "broker_quantity": "3",
        "difference": "0",
        "action": "none",
        "holders": {SIMPLE: "3"},
        "ledger_avg_price": "6857",
        "broker_avg_price": "6857",
    }

    book = trades(db)
    # (6862.5 - 6850.25) * 2 * 5 = 122.50 gross, minus 1.24 + 0.62 + 0.62.
    assert pick(
        book[1], "strategy", "status", "close_reason", "avg_exit_price", "realized_pnl"
    ) == {
        "strategy": ORB,
        "status": "closed",
        "close_reason": "take_profit",
        "avg_exit_price": "6862.5",
        "realized_pnl": "120.02",
    }
    assert [(f["exec_id"], f["role"]) for f in book[1]["fills"]] == [
        ("cme-4001", "open"),
        ("cme-4003", "reduce"),
        ("cme-4004", "close"),
    ]
    assert pick(book[2], "strategy", "status", "quantity", "avg_entry_price") == {
        "strategy": SIMPLE,
        "status": "open",
        "quantity": "3",
        "avg_entry_price": "6857",
    }
    assert len(book) == 2
    assert look(db, "anomalies") == []

    # The next reconnect sends the same history again: nothing is applied twice.
    report = posledger_json(db, "reconcile", str(snapshot), "--fills", str(history), "--quiet")
    assert pick(report["fill_history"], "applied", "duplicate", "rejected") == {
        "applied": 0,
        "duplicate": 4,
        "rejected": 0,
    }
    assert report["agreed"] is True
    assert holding(db) == {SIMPLE: "3"}
    assert invoke("verify", db=db).output.startswith("ok:")


# -- 5. hedge mode -----------------------------------------------------------------------------


def _load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def _ms(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def _price(value: str) -> str | None:
    """Binance sends 0.00000 where it has no entry price; that is not a price."""
    return value if Decimal(value) else None


def position_risk_snapshot(
    rows: list[dict[str, Any]], account: str, dual_side: bool | None
) -> list[dict[str, Any]]:
    """``GET /fapi/v2/positionRisk`` rows as broker_position lines; ``dual_side`` from
    ``GET /fapi/v1/positionSide/dual`` (None: the adapter did not ask)."""
    lines = []
    for row in rows:
        line: dict[str, Any] = {
            "type": "broker_position",
            "account": account,
            "instrument": SYMBOLS[row["symbol"]],
            "position_side": row["positionSide"],
            "quantity": row["positionAmt"],
        }
        if _price(row["entryPrice"]):
            line["avg_price"] = row["entryPrice"]
        if row["updateTime"]:
            line["ts"] = _ms(row["updateTime"])
        if dual_side is not None:
            line["position_mode"] = "hedge" if dual_side else "netting"
        lines.append(line)
    return lines


def account_update_snapshot(event: dict[str, Any], account: str) -> list[dict[str, Any]]:
    """The positions of an ``ACCOUNT_UPDATE`` event as broker_position lines."""
    lines = []
    for leg in event["a"]["P"]:
        line: dict[str, Any] = {
            "type": "broker_position",
            "account": account,
            "instrument": SYMBOLS[leg["s"]],
            "position_side": leg["ps"],
            "quantity": leg["pa"],
            "ts": _ms(event["E"]),
        }
        if _price(leg["ep"]):
            line["avg_price"] = leg["ep"]
        lines.append(line)
    return lines


POSITION_RISK = _load("binance_usdm_position_risk_v2_hedge.json")
DUAL_SIDE = _load("binance_usdm_position_side_dual.json")["dualSidePosition"]


def _binance_session() -> list[dict[str, Any]]:
    """Fills that build exactly the positionRisk payload's positions.

    LONG: 17 @ 6563.5 + 3 @ 6564.6 = 131273.3 / 20 = 6563.665 (the payload's entryPrice).
    SHORT: 6 @ 6563.9 + 4 @ 6563.8 = 65638.6 / 10 = 6563.86, the entry the payload's
    unRealizedProfit implies: (6679.50671178 - 6563.86) * -10 = -1156.4671178.
    Commissions: 0.04% taker fee in USDT.
    """
    hedge = {"account": HEDGE_ACCOUNT, "instrument": BTC, "currency": "USDT"}
    at = "2021-07-05T08:"
    return [
        {
            "type": "account",
            "account": HEDGE_ACCOUNT,
            "venue": "BINANCE",
            "mode": "LIVE",
            "position_mode": "hedge",
        },
        {
            "type": "account",
            "account": ONE_WAY_ACCOUNT,
            "venue": "BINANCE",
            "mode": "LIVE",
            "position_mode": "netting",
        },
        {
            "type": "instrument",
            "instrument": BTC,
            "kind": "perpetual",
            "multiplier": "1",
            "base_currency": "BTC",
            "quote_currency": "USDT",
            "settlement_currency": "USDT",
            "tick_size": "0.10",
            "lot_size": "0.001",
        },
        strategy(TREND),
        strategy(MEANREV),
        order(
            "trend-1", TREND, "BUY", "20", "entry", at + "30:00Z",
            account=HEDGE_ACCOUNT, instrument=BTC, position_side="LONG",
        ),
        fill(
            "bn-5001", "BUY", "17.000", "6563.50", at + "30:01Z", "44.6318",
            coid="trend-1", position_side="LONG", **hedge,
        ),
        fill(
            "bn-5002", "BUY", "3.000", "6564.60", at + "30:02Z", "7.87752",
            coid="trend-1", position_side="LONG", **hedge,
        ),
        order(
            "meanrev-1", MEANREV, "SELL", "10", "entry", at + "35:00Z",
            account=HEDGE_ACCOUNT, instrument=BTC, position_side="SHORT",
        ),
        fill(
            "bn-5003", "SELL", "6.000", "6563.90", at + "35:01Z", "15.75336",
            coid="meanrev-1", position_side="SHORT", **hedge,
        ),
        fill(
            "bn-5004", "SELL", "4.000", "6563.80", at + "35:02Z", "10.50208",
            coid="meanrev-1", position_side="SHORT", **hedge,
        ),
        {
            "type": "mark",
            "instrument": BTC,
            "price": POSITION_RISK[0]["markPrice"],
            "ts": _ms(POSITION_RISK[0]["updateTime"]),
        },
    ]  # fmt: skip


@pytest.fixture(scope="module")
def hedge_books(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ledger holding the hedge account's LONG 20 and SHORT 10 (read-only: copy it)."""
    base = tmp_path_factory.mktemp("hedge")
    db = base / "ledger.db"
    posledger(db, "ingest", str(write(base / "binance.jsonl", _binance_session())))
    return db


def test_a_hedge_account_refuses_a_snapshot_in_another_position_mode_and_agrees_in_its_own(
    hedge_books: Path, tmp_path: Path
) -> None:
    """Seed 5, hedge mode: Binance USD-M holds LONG 20 and SHORT 10 BTCUSDT at once.

    btc-trend-long holds the LONG side and btc-meanrev-short the SHORT side of one symbol
    on one account. A tracker that keeps one net position per symbol sees +10 and breaks.
    The ledger compares each side on its own, and refuses, loudly and before comparing
    anything, a snapshot whose position mode is not the account's: the adapter saying
    dualSidePosition false, a one-way ACCOUNT_UPDATE (a BOTH position) for the hedge
    account, and LONG/SHORT rows for an account registered as netting. Exit 4; nothing
    journaled; every position as it was. The true snapshot (positionRisk + dualSidePosition
    true) agrees, side by side, and the ledger's unrealized P&L at Binance's mark price is
    Binance's own unRealizedProfit to the last digit.
    """
    db = copy_db(hedge_books, tmp_path / "ledger.db")
    positions = look(db, "positions")
    assert {(p["strategy"], p["position_side"]): p["signed_quantity"] for p in positions} == {
        (MEANREV, "SHORT"): "-10",
        (TREND, "LONG"): "20",
    }
    journaled = journal_count(db)

    refusals = [
        (
            "one_way_mode.jsonl",
            position_risk_snapshot(POSITION_RISK, HEDGE_ACCOUNT, dual_side=False),
            f"the broker says account {HEDGE_ACCOUNT} is in netting mode; the ledger has it "
            "in hedge mode",
        ),
        (
            "account_update_one_way.jsonl",
            account_update_snapshot(
                _load("binance_usdm_ws_account_update_one_way.json"), HEDGE_ACCOUNT
            ),
            f"account {HEDGE_ACCOUNT} is in hedge mode, but the broker reports a one-way "
            "(BOTH) position",
        ),
        (
            "netting_account.jsonl",
            position_risk_snapshot(POSITION_RISK, ONE_WAY_ACCOUNT, dual_side=None),
            f"account {ONE_WAY_ACCOUNT} is in netting mode, but the broker reports a LONG "
            "(hedge) position",
        ),
    ]
    for name, lines, words in refusals:
        result = posledger(db, "reconcile", str(write(tmp_path / name, lines)), expect=4)
        assert "position mode mismatch" in result.stderr, name
        assert words in result.stderr, (name, result.stderr)
        assert "nothing was compared" in result.stderr
        assert result.stdout == ""
    assert journal_count(db) == journaled
    assert sql(db, "SELECT count(*) FROM reconciliation_checks") == [(0,)]
    assert look(db, "reconciliations") == []
    assert look(db, "positions") == positions

    assert DUAL_SIDE is True
    snapshot = position_risk_snapshot(POSITION_RISK, HEDGE_ACCOUNT, dual_side=DUAL_SIDE)
    report = posledger_json(db, "reconcile", str(write(tmp_path / "hedge.jsonl", snapshot)))
    assert (report["agreed"], report["differences"]) == (True, 0)
    assert [
        pick(c, "position_side", "kind", "ledger_quantity", "broker_quantity", "holders")
        for c in report["checks"]
    ] == [
        {
            "position_side": "LONG",
            "kind": "agree",
            "ledger_quantity": "20",
            "broker_quantity": "20",
            "holders": {TREND: "20"},
        },
        {
            "position_side": "SHORT",
            "kind": "agree",
            "ledger_quantity": "-10",
            "broker_quantity": "-10",
            "holders": {MEANREV: "-10"},
        },
    ]
    assert report["checks"][0]["ledger_avg_price"] == "6563.665"
    assert report["checks"][0]["broker_avg_price"] == "6563.665"
    assert journal_count(db) == journaled + 2

    by_side = {p["position_side"]: p for p in look(db, "positions")}
    for row in POSITION_RISK:
        mine = by_side[row["positionSide"]]
        assert Decimal(mine["unrealized_pnl"]) == Decimal(row["unRealizedProfit"])
        assert mine["pnl_currency"] == "USDT"

    # A hedge-account order must say which side it is for.
    no_side = order("trend-2", TREND, "SELL", "20", "exit", "2021-07-05T09:00:00Z")
    no_side.update(account=HEDGE_ACCOUNT, instrument=BTC)
    [reason] = check_order(db, no_side, 1)["reasons"]
    assert "position_side" in reason


def test_binances_hedge_account_update_with_its_flat_both_leg_agrees(
    hedge_books: Path, tmp_path: Path
) -> None:
    """Binance's documented hedge-mode ACCOUNT_UPDATE: BOTH 0, LONG 20 @ 6563.6, SHORT -10
    @ 6563.8. The account is in hedge mode and holds what the ledger holds (the averages
    are within 0.1%); the flat BOTH leg Binance lists beside them says nothing about the
    position mode, so it is neither a mismatch nor compared."""
    db = copy_db(hedge_books, tmp_path / "ledger.db")
    event = _load("binance_usdm_ws_account_update_doc_hedge.json")
    lines = account_update_snapshot(event, HEDGE_ACCOUNT)
    assert [(line["position_side"], line["quantity"]) for line in lines] == [
        ("BOTH", "0"),
        ("LONG", "20"),
        ("SHORT", "-10"),
    ]
    report = posledger_json(db, "reconcile", str(write(tmp_path / "update.jsonl", lines)))
    assert (report["agreed"], report["differences"]) == (True, 0)
    assert [
        pick(c, "position_side", "kind", "ledger_avg_price", "broker_avg_price")
        for c in report["checks"]
    ] == [
        {
            "position_side": "LONG",
            "kind": "agree",
            "ledger_avg_price": "6563.665",
            "broker_avg_price": "6563.6",
        },
        {
            "position_side": "SHORT",
            "kind": "agree",
            "ledger_avg_price": "6563.86",
            "broker_avg_price": "6563.8",
        },
    ]
    assert look(db, "rejected") == []
