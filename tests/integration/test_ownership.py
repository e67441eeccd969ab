"""Ownership and the broker check on every database: reconciliation and its policies,
transfers, halts, the pre-trade check; every change journaled, replayed and rebuilt."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from posledger import Ledger, open_ledger
from posledger.service.ledger import ReconcileError

from .helpers import T, entries, fill, setup, table

D = Decimal


def broker(account: str, instrument: str, quantity: str, **extra: Any) -> str:
    record = {
        "type": "broker_position",
        "account": account,
        "instrument": instrument,
        "quantity": quantity,
        **extra,
    }
    return json.dumps(record)


def slots(ledger: Ledger) -> dict[tuple[str, str, str, str], Decimal]:
    return {
        (p["account"], p["instrument"], p["strategy"], p["position_side"]): D(p["signed_quantity"])
        for p in ledger.positions(include_flat=True)
    }


def replays(db_url: str, ledger: Ledger) -> None:
    """verify passes, and rebuilding every projection from the journal changes nothing."""
    report = ledger.verify()
    assert report.ok, report.problems
    before = (ledger.positions(include_flat=True), ledger.trades(), ledger.halts())
    before_checks = ledger.reconciliations(last=100)
    ledger.rebuild()
    assert (ledger.positions(include_flat=True), ledger.trades(), ledger.halts()) == before
    assert ledger.reconciliations(last=100) == before_checks


def test_reconcile_reports_every_kind_and_changes_nothing_under_report(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        ledger.register_instrument(
            instrument="FUT2",
            kind="future",
            multiplier="1",
            quote_currency="USD",
            settlement_currency="USD",
        )
        assert fill(ledger, "e1", "BUY", "2", "100", minute=1).applied
        assert fill(ledger, "e2", "BUY", "1", "0.5", instrument="PERP", account="HDG",
                    position_side="LONG", minute=2).applied  # fmt: skip
        assert fill(ledger, "e3", "BUY", "3", "50", instrument="FUT2", minute=3).applied
        before = slots(ledger)
        snapshot = [
            broker("ACC", "FUT", "3"),  # behind: missing_fills
            broker("HDG", "PERP", "0", position_side="LONG"),  # closed at the broker: stale
            broker("HDG", "PERP", "-2", position_side="SHORT"),  # never seen: unknown
            broker("ACC", "FUT2", "-1"),  # other way: quantity_mismatch
        ]
        report = ledger.reconcile(snapshot)
        kinds = {(c["account"], c["instrument"], c["position_side"]): c["kind"]
                 for c in report.checks}  # fmt: skip
        assert kinds == {
            ("ACC", "FUT", "BOTH"): "missing_fills",
            ("ACC", "FUT2", "BOTH"): "quantity_mismatch",
            ("HDG", "PERP", "LONG"): "stale_position",
            ("HDG", "PERP", "SHORT"): "unknown_position",
        }
        assert not report.agreed
        assert all(check["action"] == "none" for check in report.checks)
        assert slots(ledger) == before
        (fut,) = [c for c in report.checks if c["instrument"] == "FUT"]
        assert (fut["ledger_quantity"], fut["broker_quantity"], fut["difference"]) == (
            "2",
            "3",
            "1",
        )
        assert fut["holders"] == {"alpha": "2"}
        # the run is journaled: one entry per key, read back as the report printed it
        stored = ledger.reconciliations(run=report.run)
        fields = (
            *("account", "instrument", "position_side", "kind", "ledger_quantity"),
            *("broker_quantity", "difference", "holders", "action", "detail", "seq"),
        )
        assert [{k: c[k] for k in fields} for c in stored] == [
            {k: c[k] for k in fields} for c in report.checks
        ]
        assert [entry[3] for entry in entries(ledger)].count("reconcile") == 4
        replays(db_url, ledger)


def test_average_price_drift_beyond_the_tolerance(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        assert fill(ledger, "e1", "BUY", "1", "100", minute=1).applied
        assert fill(ledger, "e2", "BUY", "1", "101", strategy="beta", minute=2).applied
        near = ledger.reconcile([broker("ACC", "FUT", "2", avg_price="100.55")])
        assert near.agreed, near.checks  # 100.5 against 100.55: within 0.1%
        far = ledger.reconcile([broker("ACC", "FUT", "2", avg_price="99")])
        (check,) = far.checks
        assert check["kind"] == "avg_price_drift"
        assert check["ledger_avg_price"] == "100.5"
        strict = ledger.reconcile(
            [broker("ACC", "FUT", "2", avg_price="100.55")], price_tolerance=D("0.0001")
        )
        assert strict.checks[0]["kind"] == "avg_price_drift"
        replays(db_url, ledger)


def test_adopt_books_the_difference_to_external_never_to_a_strategy(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        assert fill(ledger, "e1", "BUY", "2", "100", minute=1).applied
        assert ledger.apply_mark(instrument="FUT", price="104", ts=f"{T}10:30:00Z").applied
        report = ledger.reconcile([broker("ACC", "FUT", "0")], policy="adopt")
        (check,) = report.checks
        assert (check["kind"], check["action"]) == ("stale_position", "adopted")
        # alpha still holds its 2; EXTERNAL is short 2 at the mark: the books agree
        assert slots(ledger) == {
            ("ACC", "FUT", "alpha", "BOTH"): D("2"),
            ("ACC", "FUT", "EXTERNAL", "BOTH"): D("-2"),
        }
        again = ledger.reconcile([broker("ACC", "FUT", "0")], policy="adopt")
        assert again.agreed
        (external,) = ledger.trades(strategy="EXTERNAL")
        assert (external["side"], external["avg_entry_price"]) == ("SHORT", "104")
        assert [f["source"] for f in external["fills"]] == ["reconciliation"]
        # the broker buys it back: the adjustment closes EXTERNAL with close reason
        # reconciliation
        ledger.reconcile([broker("ACC", "FUT", "2")], policy="adopt")
        (external,) = ledger.trades(strategy="EXTERNAL")
        assert (external["status"], external["close_reason"]) == ("closed", "reconciliation")
        assert slots(ledger)[("ACC", "FUT", "EXTERNAL", "BOTH")] == 0
        replays(db_url, ledger)


def test_orphans_go_to_the_one_strategy_that_adopts_them(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        ledger.register_strategy(strategy="keeper", adopt_orphans=True)
        assert fill(ledger, "e1", "BUY", "1", "100", strategy="keeper", minute=1).applied
        assert fill(ledger, "e2", "SELL", "1", "101", strategy="keeper", minute=2).applied
        assert fill(ledger, "e3", "BUY", "3", "102", strategy="EXTERNAL", minute=3).applied
        report = ledger.reconcile([broker("ACC", "FUT", "3")], policy="adopt")
        (check,) = report.checks
        assert check["kind"] == "agree"
        assert check["orphan"]["strategy"] == "keeper"
        assert slots(ledger)[("ACC", "FUT", "keeper", "BOTH")] == D("3")
        assert slots(ledger)[("ACC", "FUT", "EXTERNAL", "BOTH")] == 0
        (moved,) = ledger.transfers()
        assert (moved["from_strategy"], moved["to_strategy"], moved["origin"]) == (
            "EXTERNAL",
            "keeper",
            "adopt_orphans",
        )
        assert moved["price"] == "102"
        # the report policy never adopts
        assert fill(ledger, "e4", "BUY", "1", "103", strategy="EXTERNAL", minute=4).applied
        ledger.reconcile([broker("ACC", "FUT", "4")])
        assert slots(ledger)[("ACC", "FUT", "EXTERNAL", "BOTH")] == D("1")
        replays(db_url, ledger)


def test_halt_refuses_entries_until_resumed_and_exits_still_pass(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        assert ledger.register_order(client_order_id="o1", account="ACC", strategy="alpha",
                                     instrument="FUT", side="BUY", quantity="2",
                                     intent="entry").applied  # fmt: skip
        assert fill(ledger, "e1", "BUY", "2", "100", client_order_id="o1", minute=1).applied
        report = ledger.reconcile([broker("ACC", "FUT", "3")], policy="halt")
        assert report.checks[0]["action"] == "halted"
        (halt,) = ledger.halts()
        assert halt["account"] == "ACC" and report.run in halt["reason"]
        entry = {"account": "ACC", "strategy": "beta", "instrument": "FUT", "side": "BUY",
                 "quantity": "1", "intent": "entry"}  # fmt: skip
        verdict = ledger.check_order(client_order_id="o2", **entry)
        assert not verdict.allowed and "halted" in verdict.reasons[0]
        refused = ledger.register_order(client_order_id="o2", **entry)
        assert refused.status == "rejected" and refused.reason.startswith("refused pre-trade")
        exit_order = {**entry, "strategy": "alpha", "side": "SELL", "intent": "exit"}
        assert ledger.check_order(client_order_id="o3", **exit_order).allowed
        assert ledger.resume(account="ACC", instrument="FUT").applied
        assert ledger.resume(account="ACC", instrument="FUT").status == "duplicate"
        assert ledger.check_order(client_order_id="o4", **entry).allowed
        assert ledger.halts() == []
        replays(db_url, ledger)


def test_transfers_move_a_position_at_its_average_and_apply_once(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        assert fill(ledger, "e1", "SELL", "3", "100", strategy="EXTERNAL", minute=1).applied
        moved = ledger.transfer(
            account="ACC",
            instrument="FUT",
            from_strategy="EXTERNAL",
            to_strategy="alpha",
            quantity="2",
            transfer_id="t-1",
            ts=f"{T}11:00:00Z",
        )
        assert moved.applied, moved.reason
        again = ledger.transfer(
            account="ACC",
            instrument="FUT",
            from_strategy="EXTERNAL",
            to_strategy="alpha",
            quantity="2",
            transfer_id="t-1",
            ts=f"{T}11:00:00Z",
        )
        assert again.status == "duplicate"
        assert slots(ledger)[("ACC", "FUT", "alpha", "BOTH")] == D("-2")
        assert slots(ledger)[("ACC", "FUT", "EXTERNAL", "BOTH")] == D("-1")
        (alpha,) = ledger.trades(strategy="alpha")
        assert (alpha["side"], alpha["avg_entry_price"], alpha["opened_at"]) == (
            "SHORT",
            "100",
            f"{T}11:00:00Z",
        )
        too_much = ledger.transfer(
            account="ACC", instrument="FUT", from_strategy="alpha", to_strategy="beta",
            quantity="5",
        )  # fmt: skip
        assert too_much.status == "rejected" and "less than" in (too_much.reason or "")
        # alpha hands its position back at a price: its trade closes with that P&L
        back = ledger.transfer(
            account="ACC", instrument="FUT", from_strategy="alpha", to_strategy="EXTERNAL",
            quantity="2", price="98", ts=f"{T}12:00:00Z",
        )  # fmt: skip
        assert back.applied, back.reason
        (alpha,) = ledger.trades(strategy="alpha")
        assert (alpha["status"], alpha["close_reason"], alpha["gross_realized_pnl"]) == (
            "closed",
            "transfer",
            "20",  # short 2 from 100, out at 98, multiplier 5
        )
        assert len(table(ledger, "transfers")) == 2
        replays(db_url, ledger)


def test_a_refused_snapshot_changes_nothing_and_is_kept(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        assert fill(ledger, "e1", "BUY", "1", "0.5", instrument="PERP", account="HDG",
                    position_side="LONG", minute=1).applied  # fmt: skip
        journal_before = len(entries(ledger))
        with pytest.raises(ReconcileError, match="position mode mismatch") as caught:
            ledger.reconcile([broker("HDG", "PERP", "1", position_mode="netting")])
        assert caught.value.mode_mismatch
        with pytest.raises(ReconcileError, match="position mode mismatch"):
            ledger.reconcile([broker("HDG", "PERP", "1")])  # one-way BOTH on a hedge account
        with pytest.raises(ReconcileError, match="unknown account"):
            ledger.reconcile([broker("NOPE", "PERP", "1")])
        with pytest.raises(ReconcileError, match="not registered"):
            ledger.reconcile([broker("ACC", "ESZ6", "1")])
        # brokers list every symbol: a flat one the ledger does not know is ignored
        quiet = ledger.reconcile(
            [broker("ACC", "ESZ6", "0"), broker("HDG", "PERP", "1", position_side="LONG")]
        )
        assert quiet.agreed and len(quiet.checks) == 1
        assert len(entries(ledger)) == journal_before + 1
        reasons = [row["reason"] for row in ledger.rejected_inputs()]
        assert any("position mode" in reason for reason in reasons)
        replays(db_url, ledger)


def test_the_broker_fill_history_closes_the_gap(db_url: str) -> None:
    history = [
        json.dumps(
            {
                "type": "fill",
                "exec_id": f"b{n}",
                "account": "ACC",
                "instrument": "FUT",
                "side": "BUY",
                "quantity": "1",
                "price": str(100 + n),
                "ts": f"{T}10:0{n}:00Z",
                "strategy": "alpha",
            }
        )
        for n in range(1, 5)
    ]
    with open_ledger(db_url) as ledger:
        setup(ledger)
        for line in history[:2]:
            assert ledger.ingest([line]).applied == 1
        behind = ledger.reconcile([broker("ACC", "FUT", "4")])
        assert behind.checks[0]["kind"] == "missing_fills"
        report = ledger.reconcile([broker("ACC", "FUT", "4")], fills=history)
        assert report.history is not None
        assert (report.history.applied, report.history.duplicate) == (2, 2)
        assert report.agreed, report.checks
        assert slots(ledger)[("ACC", "FUT", "alpha", "BOTH")] == D("4")
        replays(db_url, ledger)


def test_listings_by_mode_keep_live_sim_and_paper_apart(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)  # ACC is SIM, HDG is LIVE
        ledger.register_account(account="PAP", venue="CME", mode="PAPER", position_mode="netting")
        assert fill(ledger, "e1", "BUY", "1", "100", minute=1).applied
        assert fill(ledger, "e2", "BUY", "2", "100", account="PAP", minute=2).applied
        live_before = ledger.positions(mode="LIVE")
        assert {p["account"] for p in ledger.positions(mode="SIM")} == {"ACC"}
        assert {p["account"] for p in ledger.positions(mode="paper")} == {"PAP"}
        assert live_before == []
        assert fill(ledger, "e3", "SELL", "1", "101", account="PAP", minute=3).applied
        assert ledger.positions(mode="LIVE") == live_before
        assert [t["account"] for t in ledger.trades(mode="SIM")] == ["ACC"]


def test_an_account_changes_only_its_reconcile_policy_by_registering_again(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        assert fill(ledger, "e1", "BUY", "2", "100", minute=1).applied
        account = {"account": "ACC", "venue": "CME", "mode": "SIM", "position_mode": "netting"}
        changed = ledger.register_account(**account, reconcile_policy="halt")
        assert changed.applied, changed.reason
        assert ledger.register_account(**account, reconcile_policy="halt").status == "duplicate"
        other = ledger.register_account(**{**account, "venue": "EUREX"}, reconcile_policy="halt")
        assert other.status == "rejected" and "venue" in (other.reason or "")
        report = ledger.reconcile([broker("ACC", "FUT", "3")])  # no --policy: the account's
        assert report.policies == {"ACC": "halt"}
        assert report.checks[0]["action"] == "halted"
        assert [h["instrument"] for h in ledger.halts()] == ["FUT"]
        replays(db_url, ledger)
    with open_ledger(db_url) as ledger:  # kept across a restart
        assert ledger.reconcile([broker("ACC", "FUT", "3")]).policies == {"ACC": "halt"}


def test_brackets_and_max_open_slots_are_checked_against_the_database(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        ledger.register_strategy(strategy="one-at-a-time", max_open_slots=1)
        order = {"account": "ACC", "strategy": "alpha", "instrument": "FUT"}
        assert ledger.register_order(client_order_id="in", side="BUY", quantity="2",
                                     intent="entry", bracket_id="b1", **order).applied  # fmt: skip
        # sent with their entry: a take-profit and a stop-loss may cover what it will open
        tp = {"side": "SELL", "quantity": "2", "intent": "take_profit", **order}
        assert ledger.register_order(client_order_id="tp", bracket_id="b1", **tp).applied
        assert ledger.register_order(client_order_id="sl", bracket_id="b1",
                                     **{**tp, "intent": "stop_loss"}).applied  # fmt: skip
        assert not ledger.check_order(client_order_id="tp2", bracket_id="b2", **tp).allowed
        assert fill(ledger, "e1", "BUY", "1", "100", client_order_id="in", minute=1).applied
        # one filled, one pending: still 2 to cover, never 3
        assert ledger.check_order(client_order_id="x2", bracket_id="b1", **tp).allowed
        too_big = ledger.check_order(client_order_id="x3", bracket_id="b1",
                                     **{**tp, "quantity": "3"})  # fmt: skip
        assert not too_big.allowed and "pending in its bracket" in too_big.reasons[0]
        # max_open_slots counts open slots across instruments
        mine = {"account": "ACC", "strategy": "one-at-a-time", "side": "BUY", "quantity": "1",
                "intent": "entry"}  # fmt: skip
        assert ledger.register_order(client_order_id="m1", instrument="FUT", **mine).applied
        assert fill(ledger, "m1-f", "BUY", "1", "100", strategy="one-at-a-time",
                    client_order_id="m1", minute=2).applied  # fmt: skip
        hedged = {**mine, "account": "HDG", "position_side": "LONG"}
        second = ledger.check_order(client_order_id="m2", instrument="PERP", **hedged)
        assert not second.allowed and "max_open_slots 1" in second.reasons[0]
        assert ledger.check_order(client_order_id="m3", instrument="FUT", **mine).allowed
        assert ledger.verify().ok
