"""The ownership commands of the CLI: transfer/transfers, halt/resume/halts, the reconcile
report and its history, doctor, ``--mode`` and refused snapshots.

The books (``desk_books``): on the CME account AMP-4417 (LIVE, netting) mes-orb-01 is long
1 MESH6.CME @ 6850.25 and somebody bought 2 @ 6853.50 in the broker's front end, with no
registered order: EXTERNAL is long 2. MNQH6.CME is registered and untraded. Steps that
change the books, and the exit statuses a script would act on, run as their own
``posledger`` process; read-only looks go through click's CliRunner in this process.
"""

from __future__ import annotations

import json
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
from .scenario import execute, invoke, sql, write

MNQ = "MNQH6.CME"
WHERE = f"{ACCOUNT}/{MES}"


def account(name: str = ACCOUNT, mode: str = "LIVE") -> dict[str, Any]:
    return {
        "type": "account",
        "account": name,
        "venue": "CME",
        "mode": mode,
        "position_mode": "netting",
    }


def future(instrument: str, multiplier: str) -> dict[str, Any]:
    return {
        "type": "instrument",
        "instrument": instrument,
        "kind": "future",
        "multiplier": multiplier,
        "tick_size": "0.25",
        "lot_size": "1",
        "quote_currency": "USD",
        "settlement_currency": "USD",
    }


def broker(instrument: str, quantity: str, avg_price: str | None = None, **extra: Any) -> Any:
    record = {
        "type": "broker_position",
        "account": ACCOUNT,
        "instrument": instrument,
        "quantity": quantity,
        **extra,
    }
    if avg_price is not None:
        record["avg_price"] = avg_price
    return record


DESK = [
    account(),
    future(MES, "5"),
    future(MNQ, "2"),
    {"type": "strategy", "strategy": ORB},
    {"type": "strategy", "strategy": SIMPLE},
    order("orb-0302-1", ORB, "BUY", "1", "entry", "14:45:00"),
    fill("cme-1001", "BUY", "1", "6850.25", "14:45:02", "0.62", coid="orb-0302-1"),
    fill("cme-1003", "BUY", "2", "6853.5", "15:00:00", "1.24"),
]


# -- helpers -------------------------------------------------------------------------------


def here(db: Path, *args: str, expect: int = 0, input: str | None = None) -> Any:
    """The same command in this process (read-only looks; fast)."""
    result = invoke(*args, db=db, input=input)
    assert result.exit_code == expect, (args, result.exit_code, result.output)
    return result


def holding(db: Path, *args: str) -> dict[tuple[str, str, str], str]:
    rows = look(db, "positions", *args)
    return {(r["account"], r["instrument"], r["strategy"]): r["signed_quantity"] for r in rows}


def transfer(*args: str) -> list[str]:
    return ["transfer", "--account", ACCOUNT, "--instrument", MES, *args]


@pytest.fixture(scope="module")
def desk_books(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The desk's books, ingested once; tests take a copy."""
    base = tmp_path_factory.mktemp("desk")
    db = base / "ledger.db"
    posledger(db, "ingest", str(write(base / "desk.jsonl", DESK)))
    return db


@pytest.fixture
def db(desk_books: Path, tmp_path: Path) -> Path:
    return copy_db(desk_books, tmp_path / "ledger.db")


# -- transfer / transfers ------------------------------------------------------------------


def test_transfer_hands_external_quantity_to_a_strategy_at_the_external_average_price(
    db: Path, tmp_path: Path
) -> None:
    """The desk's 2 contracts were really the strategies': 1 goes to mes-orb-simple-01 (it
    had placed the order by hand during an outage) and 1 to mes-orb-01.

    Each transfer moves quantity at EXTERNAL's average entry 6853.50, so the receiving
    strategy's P&L starts there: mes-orb-simple-01 later exits @ 6860, (6860 - 6853.5) * 5
    = 32.50 gross, 31.88 net of its own 0.62 commission. EXTERNAL's trade is closed with
    close_reason transfer and keeps only the commission it paid (-1.24). A transfer sent
    again with the same --id is a duplicate; the same id with other content a conflict.
    """
    first = transfer("--from", EXTERNAL, "--to", SIMPLE, "--quantity", "1", "--id", "desk-xfer-1")
    first += ["--ts", DAY + "15:10:00Z"]
    outcome = posledger_json(db, *first)
    assert pick(outcome, "status", "kind", "key", "reason") == {
        "status": "applied",
        "kind": "transfer",
        "key": WHERE,
        "reason": None,
    }
    assert isinstance(outcome["seq"], int)
    again = posledger_json(db, *first)
    assert pick(again, "status", "seq") == {"status": "duplicate", "seq": None}
    assert "desk-xfer-1" in again["reason"]
    conflict = transfer(
        "--from", EXTERNAL, "--to", SIMPLE, "--quantity", "2", "--id", "desk-xfer-1"
    )
    result = posledger(db, *conflict, expect=1)
    assert result.stdout.startswith(f"rejected transfer {WHERE}: conflict")

    second = transfer("--from", EXTERNAL, "--to", ORB, "--quantity", "1")
    posledger(db, *second, "--ts", DAY + "15:11:00Z")
    refused = here(db, *second, expect=1)
    assert f"{EXTERNAL} holds nothing on {WHERE}/BOTH to transfer" in refused.output

    positions = {row["strategy"]: row for row in look(db, "positions", "--all")}
    assert pick(positions[SIMPLE], "signed_quantity", "avg_entry_price", "realized_pnl") == {
        "signed_quantity": "1",
        "avg_entry_price": "6853.5",
        "realized_pnl": "0",
    }
    # mes-orb-01 adds the contract to its open trade: (6850.25 + 6853.5) / 2.
    assert pick(positions[ORB], "signed_quantity", "avg_entry_price", "trade_id") == {
        "signed_quantity": "2",
        "avg_entry_price": "6851.875",
        "trade_id": 1,
    }
    assert positions[EXTERNAL]["side"] == "FLAT"

    book = {row["trade_id"]: row for row in look(db, "trades")}
    assert pick(
        book[2], "strategy", "status", "close_reason", "avg_exit_price", "realized_pnl"
    ) == {
        "strategy": EXTERNAL,
        "status": "closed",
        "close_reason": "transfer",
        "avg_exit_price": "6853.5",
        "realized_pnl": "-1.24",
    }
    assert [(f["source"], f["role"], f["quantity"]) for f in book[2]["fills"]] == [
        ("fill", "open", "2"),
        ("transfer", "reduce", "1"),
        ("transfer", "close", "1"),
    ]
    assert pick(book[3], "strategy", "status", "avg_entry_price", "opened_at") == {
        "strategy": SIMPLE,
        "status": "open",
        "avg_entry_price": "6853.5",
        "opened_at": DAY + "15:10:00Z",
    }

    listed = posledger_json(db, "transfers")
    assert [
        pick(row, "transfer_id", "from_strategy", "to_strategy", "quantity", "price", "ts")
        | pick(row, "account", "instrument", "position_side", "origin")
        for row in listed
    ] == [
        {
            "transfer_id": "desk-xfer-1",
            "from_strategy": EXTERNAL,
            "to_strategy": SIMPLE,
            "quantity": "1",
            "price": "6853.5",
            "ts": DAY + "15:10:00Z",
            "account": ACCOUNT,
            "instrument": MES,
            "position_side": "BOTH",
            "origin": "transfer",
        },
        {
            "transfer_id": None,
            "from_strategy": EXTERNAL,
            "to_strategy": ORB,
            "quantity": "1",
            "price": "6853.5",
            "ts": DAY + "15:11:00Z",
            "account": ACCOUNT,
            "instrument": MES,
            "position_side": "BOTH",
            "origin": "transfer",
        },
    ]

    exit_ = [
        order("simple-0302-2", SIMPLE, "SELL", "1", "exit", "15:30:00"),
        fill("cme-1010", "SELL", "1", "6860", "15:30:01", "0.62", coid="simple-0302-2"),
    ]
    posledger(db, "ingest", str(write(tmp_path / "exit.jsonl", exit_)))
    [trade] = look(db, "trades", "--strategy", SIMPLE)
    assert pick(trade, "status", "close_reason", "avg_entry_price", "realized_pnl") == {
        "status": "closed",
        "close_reason": "exit",
        "avg_entry_price": "6853.5",
        "realized_pnl": "31.88",
    }
    assert here(db, "verify").output.startswith("ok:")


# -- halt / resume / halts -----------------------------------------------------------------


def test_halt_refuses_entries_until_resume(db: Path, tmp_path: Path) -> None:
    """CME pauses MES on a velocity-logic event; the desk halts it on the account by hand.

    Entries there are refused (check-order and at registration), with the desk's reason;
    exits stay allowed and other instruments are not affected. A second halt and a resume
    of what is not halted are duplicates. After resume entries are allowed again.
    """
    why = "CME velocity logic: MES paused"
    result = posledger(db, "halt", "--account", ACCOUNT, "--instrument", MES, "--reason", why)
    assert result.stdout.startswith(f"applied halt {WHERE} (seq ")
    [halted] = posledger_json(db, "halts")
    assert pick(halted, "account", "instrument", "reason") == {
        "account": ACCOUNT,
        "instrument": MES,
        "reason": why,
    }
    assert halted["since"].endswith("Z")

    entry = order("simple-0302-5", SIMPLE, "BUY", "1", "entry", "15:40:00")
    [reason] = check_order(db, entry, 1)["reasons"]
    assert f"{MES} is halted on account {ACCOUNT}" in reason
    assert why in reason
    result = posledger(db, "ingest", str(write(tmp_path / "entry.jsonl", [entry])), expect=1)
    assert f"refused pre-trade: {MES} is halted on account {ACCOUNT}" in result.stdout
    assert sql(db, "SELECT status FROM orders WHERE client_order_id = 'simple-0302-5'") == [
        ("refused",)
    ]
    assert check_order(db, order("orb-0302-5", ORB, "SELL", "1", "exit", "15:40:00"), 0) == {
        "allowed": True,
        "reasons": [],
    }
    other = order("simple-0302-6", SIMPLE, "BUY", "1", "entry", "15:40:00", instrument=MNQ)
    assert check_order(db, other, 0)["allowed"] is True
    twice = here(db, "halt", "--account", ACCOUNT, "--instrument", MES, "--reason", "again")
    assert twice.output.startswith(f"duplicate halt {WHERE}: {MES} is already halted")

    result = posledger(db, "resume", "--account", ACCOUNT, "--instrument", MES)
    assert result.stdout.startswith(f"applied resume {WHERE} (seq ")
    assert look(db, "halts") == []
    again = here(db, "resume", "--account", ACCOUNT, "--instrument", MES)
    assert again.output.startswith(f"duplicate resume {WHERE}: {MES} is not halted")
    later = order("simple-0302-7", SIMPLE, "BUY", "1", "entry", "15:50:00")
    assert check_order(db, later, 0) == {"allowed": True, "reasons": []}
    kinds = sql(db, "SELECT kind FROM journal WHERE kind IN ('halt', 'resume') ORDER BY seq")
    assert kinds == [("halt",), ("resume",)]


# -- reconcile --json and reconciliations ---------------------------------------------------


REPORT_FIELDS = {"run", "recorded_at", "agreed", "accounts", "policies", "differences", "checks"}
CHECK_FIELDS = {
    "seq",
    "account",
    "instrument",
    "position_side",
    "kind",
    "policy",
    "ledger_quantity",
    "broker_quantity",
    "difference",
    "ledger_avg_price",
    "broker_avg_price",
    "holders",
    "action",
    "detail",
    "orphan",
}


def test_reconcile_json_report_and_the_reconciliations_history(db: Path, tmp_path: Path) -> None:
    """End of day: three comparisons with the broker, each journaled as a run.

    The ledger holds 3 MES at (6850.25 + 2 * 6853.5) / 3 = 6852.41666... and no MNQ. The
    broker says 3 MES @ 6858 and short 2 MNQ. eod-0302 (tolerance 0.05%): MES
    avg_price_drift (5.58 is 0.081%), MNQ unknown_position. eod-0302-b (default 0.1%): MES
    agrees, MNQ still unknown. eod-0302-c: the broker says short 1 MES, quantity_mismatch.
    """
    snapshot = write(
        tmp_path / "broker.jsonl", [broker(MES, "3", "6858"), broker(MNQ, "-2", "24410.25")]
    )
    report = posledger_json(
        db, "reconcile", str(snapshot), "--run", "eod-0302", "--price-tolerance", "0.0005", expect=1
    )
    assert set(report) == REPORT_FIELDS
    assert pick(report, "run", "agreed", "accounts", "policies", "differences") == {
        "run": "eod-0302",
        "agreed": False,
        "accounts": [ACCOUNT],
        "policies": {ACCOUNT: "report"},
        "differences": 2,
    }
    mes, mnq = report["checks"]
    assert set(mes) == CHECK_FIELDS
    assert {k: v for k, v in mes.items() if k not in ("seq", "detail")} == {
        "account": ACCOUNT,
        "instrument": MES,
        "position_side": "BOTH",
        "kind": "avg_price_drift",
        "policy": "report",
        "ledger_quantity": "3",
        "broker_quantity": "3",
        "difference": "0",
        "ledger_avg_price": "6852.416666666666666667",
        "broker_avg_price": "6858",
        "holders": {EXTERNAL: "2", ORB: "1"},
        "action": "none",
        "orphan": None,
    }
    assert "beyond the tolerance of 0.0005" in mes["detail"]
    assert {k: v for k, v in mnq.items() if k not in ("seq", "detail")} == {
        "account": ACCOUNT,
        "instrument": MNQ,
        "position_side": "BOTH",
        "kind": "unknown_position",
        "policy": "report",
        "ledger_quantity": "0",
        "broker_quantity": "-2",
        "difference": "-2",
        "ledger_avg_price": None,
        "broker_avg_price": "24410.25",
        "holders": {},
        "action": "none",
        "orphan": None,
    }
    assert "never saw" in mnq["detail"]

    report_b = posledger_json(db, "reconcile", str(snapshot), "--run", "eod-0302-b", expect=1)
    assert [(c["instrument"], c["kind"]) for c in report_b["checks"]] == [
        (MES, "agree"),
        (MNQ, "unknown_position"),
    ]
    assert report_b["differences"] == 1
    flipped = write(tmp_path / "flipped.jsonl", [broker(MES, "-1")])
    report_c = posledger_json(db, "reconcile", str(flipped), "--run", "eod-0302-c", expect=1)
    [check] = report_c["checks"]
    assert pick(check, "kind", "ledger_quantity", "broker_quantity", "difference") == {
        "kind": "quantity_mismatch",
        "ledger_quantity": "3",
        "broker_quantity": "-1",
        "difference": "-4",
    }
    assert holding(db) == {(ACCOUNT, MES, EXTERNAL): "2", (ACCOUNT, MES, ORB): "1"}

    history = posledger_json(db, "reconciliations", "--last", "3")
    assert [(row["run"], row["instrument"], row["kind"]) for row in history] == [
        ("eod-0302-c", MES, "quantity_mismatch"),
        ("eod-0302-b", MES, "agree"),
        ("eod-0302-b", MNQ, "unknown_position"),
        ("eod-0302", MES, "avg_price_drift"),
        ("eod-0302", MNQ, "unknown_position"),
    ]
    # The history is the report as it was journaled.
    first = [row for row in history if row["run"] == "eod-0302"]
    assert [{k: row[k] for k in CHECK_FIELDS} for row in first] == report["checks"]
    assert {row["recorded_at"] for row in first} == {report["recorded_at"]}
    assert look(db, "reconciliations") == [r for r in history if r["run"] == "eod-0302-c"]
    assert look(db, "reconciliations", "--run", "eod-0302") == first
    unknown = here(db, "reconciliations", "--account", "AMP-9999", expect=1)
    assert "no account 'AMP-9999' in this ledger" in unknown.output
    reused = here(db, "reconcile", str(snapshot), "--run", "eod-0302", expect=2)  # usage
    assert "run eod-0302 was already recorded" in reused.output


# -- doctor --------------------------------------------------------------------------------


def test_doctor_passes_healthy_books_and_names_a_tampered_slot(db: Path) -> None:
    """doctor on the desk's books: no error (EXTERNAL's 2 contracts are a warning). Then
    someone edits mes-orb-01's slot to 3 contracts with sqlite3: doctor exits 1 and says
    which slot disagrees with its fills and by how much; rebuild from the journal heals it."""
    result = posledger(db, "doctor")
    assert "doctor: ok:" in result.stdout
    report = look(db, "doctor")
    assert report["ok"] is True
    assert [(f["check"], f["severity"], f["subject"]) for f in report["findings"]] == [
        ("external_position", "warning", f"{WHERE}/{EXTERNAL}/BOTH")
    ]
    assert {
        "duplicate_open_trades",
        "slot_fills_mismatch",
        "journal_gap",
        "fill_order_other_strategy",
        "order_overfilled",
        "shared_instrument",
        "external_position",
        "invariants",
    } <= set(report["checks_run"])

    changed = execute(db, "UPDATE slots SET quantity = '3' WHERE strategy = ?", (ORB,))
    assert changed == 1
    report = posledger_json(db, "doctor", expect=1)
    assert report["ok"] is False
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    [slot] = [f for f in errors if f["check"] == "slot_fills_mismatch"]
    assert slot["subject"] == f"{WHERE}/{ORB}/BOTH"
    assert pick(slot["data"], "slot_quantity", "fills_quantity", "difference") == {
        "slot_quantity": "3",
        "fills_quantity": "1",
        "difference": "2",
    }
    conservation = [f["data"]["problem"] for f in errors if f["check"] == "invariants"]
    assert f"conservation: slots on {WHERE}/BOTH sum to 5 but the fills applied there net 3" in (
        conservation
    )
    assert here(db, "verify", expect=1).exit_code == 1

    posledger(db, "rebuild")
    assert look(db, "doctor")["ok"] is True
    assert holding(db) == {(ACCOUNT, MES, EXTERNAL): "2", (ACCOUNT, MES, ORB): "1"}


# -- --mode ----------------------------------------------------------------------------------


def test_live_sim_and_paper_accounts_side_by_side(tmp_path: Path) -> None:
    """mes-orb-01 runs LIVE on AMP-4417, in the broker's simulator on AMP-SIM-4417 and on
    paper on PAPER-4417, all on MESH6.CME. Each --mode listing shows its own accounts only;
    ingesting the paper session's exit later changes nothing LIVE or SIM."""
    db = tmp_path / "ledger.db"
    sim, paper = "AMP-SIM-4417", "PAPER-4417"
    session = [
        account(ACCOUNT, "LIVE"),
        account(sim, "SIM"),
        account(paper, "PAPER"),
        future(MES, "5"),
        {"type": "strategy", "strategy": ORB},
        {"type": "strategy", "strategy": SIMPLE},
        order("live-1", ORB, "BUY", "1", "entry", "14:45:00"),
        fill("live-x1", "BUY", "1", "6850.25", "14:45:02", "0.62", coid="live-1"),
        order("sim-1", ORB, "BUY", "2", "entry", "14:45:00", account=sim),
        fill("sim-x1", "BUY", "2", "6849.75", "14:45:01", "0", coid="sim-1", account=sim),
        order("sim-2", SIMPLE, "BUY", "1", "entry", "14:46:00", account=sim),
        fill("sim-x2", "BUY", "1", "6850", "14:46:01", "0", coid="sim-2", account=sim),
        # Refused pre-trade (larger than mes-orb-simple-01's 1) and filled in the simulator.
        order("sim-3", SIMPLE, "SELL", "2", "exit", "15:20:00", account=sim),
        fill("sim-x3", "SELL", "2", "6855", "15:20:01", "0", coid="sim-3", account=sim),
        order("paper-1", ORB, "SELL", "1", "entry", "14:45:00", account=paper),
        fill("paper-x1", "SELL", "1", "6851", "14:45:00", "0", coid="paper-1", account=paper),
    ]
    result = posledger(db, "ingest", str(write(tmp_path / "session.jsonl", session)), expect=1)
    assert "16 lines: 15 applied, 0 duplicate, 1 rejected" in result.stdout

    live = posledger_json(db, "positions", "--mode", "LIVE")
    assert [(r["account"], r["strategy"], r["signed_quantity"]) for r in live] == [
        (ACCOUNT, ORB, "1")
    ]
    assert holding(db, "--mode", "sim") == {(sim, MES, EXTERNAL): "-1", (sim, MES, ORB): "2"}
    assert holding(db, "--mode", "PAPER") == {(paper, MES, ORB): "-1"}
    assert {r["account"] for r in look(db, "positions")} == {ACCOUNT, sim, paper}
    assert [(r["account"], r["kind"]) for r in look(db, "anomalies", "--mode", "SIM")] == [
        (sim, "exit_overshoot")
    ]
    assert look(db, "anomalies", "--mode", "LIVE") == []
    assert look(db, "anomalies", "--mode", "PAPER") == []
    assert {r["account"] for r in look(db, "trades", "--mode", "SIM")} == {sim}
    live_trades = look(db, "trades", "--mode", "LIVE")
    sim_positions = look(db, "positions", "--mode", "SIM", "--all")

    paper_exit = [
        order("paper-2", ORB, "BUY", "1", "exit", "15:30:00", account=paper),
        fill("paper-x2", "BUY", "1", "6845", "15:30:01", "0", coid="paper-2", account=paper),
    ]
    posledger(db, "ingest", str(write(tmp_path / "paper.jsonl", paper_exit)))
    assert look(db, "positions", "--mode", "PAPER") == []
    [paper_trade] = look(db, "trades", "--mode", "PAPER")
    # Short 1 @ 6851 bought back @ 6845: (6851 - 6845) * 5.
    assert pick(paper_trade, "status", "close_reason", "realized_pnl") == {
        "status": "closed",
        "close_reason": "exit",
        "realized_pnl": "30",
    }
    assert look(db, "positions", "--mode", "LIVE") == live
    assert look(db, "trades", "--mode", "LIVE") == live_trades
    assert look(db, "positions", "--mode", "SIM", "--all") == sim_positions


# -- refused snapshots -----------------------------------------------------------------------


def test_a_refused_snapshot_is_kept_in_rejected_and_nothing_is_journaled(
    db: Path, tmp_path: Path
) -> None:
    """A snapshot naming an account the ledger does not know, and one with a hedge-mode
    (LONG) position for this netting account: each exits 4, compares nothing, journals
    nothing, and each line is kept in `posledger rejected` with its reason."""
    journaled = journal_count(db)
    unknown_line = broker(MES, "1") | {"account": "AMP-9999"}
    unknown = write(tmp_path / "unknown.jsonl", [unknown_line])
    result = posledger(db, "reconcile", str(unknown), expect=4)
    assert "snapshot refused: line 1: unknown account AMP-9999" in result.stderr
    assert "nothing was compared" in result.stderr
    hedge_line = broker(MES, "3", position_side="LONG")
    hedged = write(tmp_path / "hedged.jsonl", [hedge_line])
    result = posledger(db, "reconcile", str(hedged), "--policy", "adopt", expect=4)
    assert "position mode mismatch" in result.stderr
    assert journal_count(db) == journaled
    assert look(db, "reconciliations") == []

    rows = posledger_json(db, "rejected")
    by_line = {(row["source"], row["line"]): row for row in rows}
    kept = by_line[(str(unknown), 1)]
    assert kept["raw"] == json.dumps(unknown_line)
    assert kept["reason"].startswith("reconcile: unknown account AMP-9999")
    [mismatch] = [row for row in rows if row["source"] == str(hedged)]
    assert pick(mismatch, "line", "raw", "reason") == {
        "line": 1,
        "raw": json.dumps(hedge_line),
        "reason": f"reconcile: position mode mismatch: account {ACCOUNT} is in netting mode, "
        "but the broker reports a LONG (hedge) position",
    }
