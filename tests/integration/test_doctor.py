"""``posledger doctor``'s checks on every database: a healthy ledger passes, and each way of
breaking one (rows tampered with through SQLAlchemy, bypassing posledger) is found."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from posledger import Ledger
from posledger.ports import DoctorReport, Finding
from posledger.service.doctor import CHECKS
from posledger.store import schema

from .helpers import T, engine, fill, kind_of, rows, setup

FUT_STREAM = "instrument:FUT"


def doctor(ledger: Ledger) -> DoctorReport:
    report = ledger.doctor()
    assert report.checks_run == list(CHECKS)
    json.dumps(report.as_dict())  # JSON-able, decimals included
    return report


def found(report: DoctorReport, check: str, subject: str | None = None) -> list[Finding]:
    return [f for f in report.findings if f.check == check and subject in (None, f.subject)]


def errors(report: DoctorReport) -> list[Finding]:
    return [f for f in report.findings if f.severity == "error"]


def tamper(db_url: str, *statements: Any) -> None:
    """Run statements in one committed transaction, bypassing posledger."""
    with engine(db_url) as created, created.begin() as conn:
        for statement in statements:
            conn.execute(statement)


def open_trade(db_url: str, strategy: str = "alpha") -> dict[str, Any]:
    tr = schema.trades
    query = select(tr).where(tr.c.status == "open", tr.c.strategy == strategy)
    (row,) = rows(db_url, query)
    return dict(zip(tr.c.keys(), row, strict=True))


def order(ledger: Ledger, cid: str, strategy: str, side: str, quantity: str) -> None:
    outcome = ledger.register_order(
        client_order_id=cid,
        account="ACC",
        strategy=strategy,
        instrument="FUT",
        side=side,
        quantity=quantity,
        intent="entry",
    )
    assert outcome.applied, outcome


# -- a healthy ledger ----------------------------------------------------------------------


def test_healthy_ledger_has_no_errors(ledger: Ledger, db_url: str) -> None:
    setup(ledger)
    assert ledger.register_instrument(
        instrument="BTCUSDT",
        kind="spot",
        multiplier="1",
        base_currency="BTC",
        quote_currency="USDT",
        settlement_currency="USDT",
    ).applied
    # alpha: open, increase, flip, close; beta beside it on the same instrument
    assert fill(ledger, "a1", "BUY", "0.1", "100", minute=1).applied
    assert fill(ledger, "a2", "BUY", "0.2", "101", minute=2).applied
    assert fill(ledger, "b1", "SELL", "1", "100.5", strategy="beta", minute=3).applied
    assert fill(ledger, "a3", "SELL", "0.5", "102", minute=4).applied  # flip to short 0.2
    assert fill(ledger, "a4", "BUY", "0.2", "99", minute=5).applied  # close
    # an order filled in two parts, exactly its quantity
    order(ledger, "o1", "beta", "BUY", "0.3")
    for n, quantity in enumerate(("0.1", "0.2")):
        out = fill(
            ledger,
            f"o1-{n}",
            "BUY",
            quantity,
            "100",
            strategy=None,
            client_order_id="o1",
            minute=6 + n,
        )
        assert out.applied, out
        assert out.effects["strategy"] == "beta"
    # hedge slots
    for exec_id, side, position_side, strategy in (
        ("h1", "BUY", "LONG", "alpha"),
        ("h2", "SELL", "SHORT", "beta"),
        ("h3", "SELL", "LONG", "alpha"),
    ):
        assert fill(
            ledger,
            exec_id,
            side,
            "0.01",
            "60000",
            strategy=strategy,
            account="HDG",
            instrument="PERP",
            position_side=position_side,
        ).applied
    # spot: a commission in the base currency changes the quantity held
    assert ledger.apply_fill(
        exec_id="s1",
        account="ACC",
        instrument="BTCUSDT",
        side="BUY",
        quantity="1",
        price="60000",
        ts=f"{T}10:30:00Z",
        strategy="alpha",
        commission="0.001",
        commission_currency="BTC",
    ).applied
    assert ledger.apply_mark(instrument="FUT", price="101", ts=f"{T}11:00:00Z").applied
    assert ledger.verify().ok

    report = doctor(ledger)
    assert report.ok, report.as_dict()
    assert errors(report) == []
    # the only thing worth saying: two strategies trade FUT on ACC, and PERP on HDG
    assert [(f.check, f.severity, f.subject) for f in report.findings] == [
        ("shared_instrument", "info", "ACC/FUT"),
        ("shared_instrument", "info", "HDG/PERP"),
    ]
    assert report.findings[0].data["strategies"] == ["alpha", "beta"]
    as_dict = report.as_dict()
    assert as_dict["ok"] is True
    assert as_dict["checks_run"] == list(CHECKS)
    assert as_dict["findings"][0] == {
        "check": "shared_instrument",
        "severity": "info",
        "subject": "ACC/FUT",
        "detail": report.findings[0].detail,
        "data": {"account": "ACC", "instrument": "FUT", "strategies": ["alpha", "beta"]},
    }
    assert ledger.doctor().as_dict() == as_dict  # stable


def test_an_empty_ledger_is_healthy(ledger: Ledger) -> None:
    report = doctor(ledger)
    assert report.ok and report.findings == []


# -- 1. one open trade per slot ----------------------------------------------------------


def test_two_open_trades_in_one_slot(ledger: Ledger, db_url: str) -> None:
    setup(ledger)
    assert fill(ledger, "e1", "BUY", "1", "100").applied
    assert fill(ledger, "e2", "SELL", "1", "101", strategy="beta").applied
    assert doctor(ledger).ok
    trade = open_trade(db_url)
    # The unique constraint is on open_slot: a different text gets past it.
    copy = {**trade, "trade_id": trade["trade_id"] + 1000, "open_slot": "tampered"}
    tamper(db_url, insert(schema.trades).values(**copy))

    report = doctor(ledger)
    assert not report.ok
    (finding,) = found(report, "duplicate_open_trades")
    assert finding.severity == "error"
    assert finding.subject == "ACC/FUT/alpha/BOTH"
    assert finding.data["trade_ids"] == [trade["trade_id"], trade["trade_id"] + 1000]
    assert "2 open trades" in finding.detail and "posledger rebuild" in finding.detail


# -- 2. slots against their trades' fills ---------------------------------------------------


def test_slot_quantity_that_its_fills_do_not_explain(ledger: Ledger, db_url: str) -> None:
    setup(ledger)
    # amounts whose float sum is not exact: 0.1 + 0.2 != 0.3 in binary
    assert fill(ledger, "e1", "BUY", "0.1", "100").applied
    assert fill(ledger, "e2", "BUY", "0.2", "100").applied
    assert fill(ledger, "e3", "SELL", "0.3", "100", strategy="beta").applied
    assert doctor(ledger).ok
    sl = schema.slots
    tamper(
        db_url,
        update(sl).where(sl.c.strategy == "alpha").values(quantity=Decimal("0.4")),
    )
    report = doctor(ledger)
    assert not report.ok
    (finding,) = found(report, "slot_fills_mismatch")
    assert finding.subject == "ACC/FUT/alpha/BOTH"
    assert finding.severity == "error"
    assert finding.data["slot_quantity"] == "0.4"
    assert finding.data["fills_quantity"] == "0.3"
    assert finding.data["difference"] == "0.1"
    assert finding.data["legs"] == 2


def test_lost_trade_leg_and_slot_without_row(ledger: Ledger, db_url: str) -> None:
    setup(ledger)
    assert fill(ledger, "e1", "BUY", "2", "100").applied
    assert fill(ledger, "e2", "SELL", "1", "100", strategy="beta").applied
    sl, tf = schema.slots, schema.trade_fills
    tamper(
        db_url,
        delete(tf).where(tf.c.exec_id == "e1"),
        delete(sl).where(sl.c.strategy == "beta"),
    )
    report = doctor(ledger)
    by_subject = {f.subject: f for f in found(report, "slot_fills_mismatch")}
    assert sorted(by_subject) == ["ACC/FUT/alpha/BOTH", "ACC/FUT/beta/BOTH"]
    alpha, beta = by_subject["ACC/FUT/alpha/BOTH"], by_subject["ACC/FUT/beta/BOTH"]
    assert (alpha.data["slot_quantity"], alpha.data["fills_quantity"]) == ("2", "0")
    assert (beta.data["slot_quantity"], beta.data["fills_quantity"]) == ("0", "-1")
    assert beta.data["slot_row"] is False


def test_slot_pointing_at_a_closed_trade(ledger: Ledger, db_url: str) -> None:
    setup(ledger)
    assert fill(ledger, "e1", "BUY", "1", "100").applied
    assert fill(ledger, "e2", "SELL", "1", "101", minute=1).applied  # closes the first trade
    assert fill(ledger, "e3", "BUY", "1", "102", minute=2).applied  # opens another
    assert doctor(ledger).ok
    tr, sl = schema.trades, schema.slots
    (closed,) = rows(db_url, select(tr.c.trade_id).where(tr.c.status == "closed"))
    tamper(db_url, update(sl).values(trade_id=closed[0]))
    report = doctor(ledger)
    (finding,) = found(report, "slot_fills_mismatch")
    assert finding.subject == "ACC/FUT/alpha/BOTH"
    assert finding.data["trade_id"] == closed[0]
    assert finding.data["trade_status"] == "closed"
    assert "closed" in finding.detail


# -- 3. the journal -----------------------------------------------------------------------


def test_journal_entry_lost(ledger: Ledger, db_url: str) -> None:
    setup(ledger)
    for n in range(4):
        assert fill(ledger, f"e{n}", "BUY", "1", "100", minute=n).applied
    assert doctor(ledger).ok
    jr = schema.journal
    stream = (jr.c.stream == FUT_STREAM) & (jr.c.version == 3)
    ((seq,),) = rows(db_url, select(jr.c.seq).where(stream))
    tamper(db_url, delete(jr).where(stream))

    report = doctor(ledger)
    assert not report.ok
    gaps = found(report, "journal_gap", f"stream {FUT_STREAM}")
    assert [(f.severity, f.data.get("missing")) for f in gaps] == [("error", [3, 3])]
    assert "lacks version 3" in gaps[0].detail
    seq_gaps = found(report, "journal_gap", "journal")
    if kind_of(db_url) == "sqlite":
        # SQLite numbers entries without gaps: a missing number is an entry lost
        assert [(f.severity, f.data["missing"]) for f in seq_gaps] == [("error", [seq, seq])]
    else:
        # server sequences skip numbers on every rollback: a gap means nothing
        assert seq_gaps == []
    # the streams table still agrees with the journal's top version (4): nothing more
    assert len(found(report, "journal_gap")) == 1 + len(seq_gaps)


def test_journal_versions_not_starting_at_one(ledger: Ledger, db_url: str) -> None:
    setup(ledger)
    assert fill(ledger, "e1", "BUY", "1", "100").applied
    jr = schema.journal
    tamper(
        db_url,
        update(jr).where(jr.c.stream == FUT_STREAM).values(version=jr.c.version + 10),
        update(schema.streams)
        .where(schema.streams.c.stream == FUT_STREAM)
        .values(version=schema.streams.c.version + 10),
    )
    report = doctor(ledger)
    (finding,) = found(report, "journal_gap")
    assert finding.subject == f"stream {FUT_STREAM}"
    assert finding.data["missing"] == [1, 10]
    assert "lacks versions 1 to 10" in finding.detail


def test_journal_numbers_with_a_gap(ledger: Ledger, db_url: str) -> None:
    setup(ledger)
    assert fill(ledger, "e1", "BUY", "1", "100").applied
    jr = schema.journal
    ((top,),) = rows(db_url, select(func.max(jr.c.seq)))
    tamper(db_url, update(jr).where(jr.c.seq == top).values(seq=top + 5))
    report = doctor(ledger)
    if kind_of(db_url) == "sqlite":
        # SQLite numbers entries without gaps: skipped numbers are entries lost
        assert not report.ok
        (finding,) = found(report, "journal_gap")
        assert (finding.severity, finding.subject) == ("error", "journal")
        assert finding.data["missing"] == [top, top + 4]
    else:
        # server sequences skip numbers on every rollback: a gap means nothing
        assert report.ok
        assert found(report, "journal_gap") == []


def test_streams_table_out_of_step_with_the_journal(ledger: Ledger, db_url: str) -> None:
    setup(ledger)
    assert fill(ledger, "e1", "BUY", "1", "100").applied
    assert fill(ledger, "e2", "BUY", "1", "100", minute=1).applied
    st = schema.streams
    tamper(
        db_url,
        update(st).where(st.c.stream == FUT_STREAM).values(version=1),
        delete(st).where(st.c.stream == "strategy:beta"),
    )
    report = doctor(ledger)
    findings = found(report, "journal_gap")
    if kind_of(db_url) == "sqlite":
        # SQLite's writer numbers streams from the journal and never keeps the streams
        # table up to date: its rows say nothing
        assert findings == [] and report.ok
        return
    assert not report.ok
    assert [
        (f.subject, f.data["streams_version"], f.data["journal_version"]) for f in findings
    ] == [
        (f"stream {FUT_STREAM}", 1, 3),
        ("stream strategy:beta", None, 1),
    ]


# -- 4. fills booked away from their order's strategy ----------------------------------------


def test_fill_that_arrived_before_its_order(ledger: Ledger, db_url: str) -> None:
    setup(ledger)
    for n in range(2):
        out = fill(ledger, f"x{n}", "BUY", "0.5", "100", strategy=None, client_order_id="late")
        assert out.applied and out.effects["strategy"] == "EXTERNAL"
    order(ledger, "late", "alpha", "BUY", "1")
    report = doctor(ledger)
    assert report.ok
    (finding,) = found(report, "fill_order_other_strategy")
    assert (finding.severity, finding.subject) == ("warning", "order late")
    assert finding.data["order_strategy"] == "alpha"
    assert finding.data["fill_strategy"] == "EXTERNAL"
    assert finding.data["quantity"] == "1"
    assert finding.data["fills"] == 2
    assert finding.data["exec_ids"] == ["x0", "x1"]
    assert finding.data["registered_after_fills"] is True
    assert "posledger transfer" in finding.detail and "before the order" in finding.detail
    # the order is exactly filled, and the EXTERNAL slot holds the quantity
    assert found(report, "order_overfilled") == []
    assert [f.subject for f in found(report, "external_position")] == ["ACC/FUT/EXTERNAL/BOTH"]


def test_fill_booked_away_from_an_earlier_order(ledger: Ledger, db_url: str) -> None:
    setup(ledger)
    order(ledger, "o1", "alpha", "BUY", "1")
    out = fill(ledger, "e1", "BUY", "1", "100", strategy=None, client_order_id="o1")
    assert out.applied and out.effects["strategy"] == "alpha"
    assert found(doctor(ledger), "fill_order_other_strategy") == []
    fl = schema.fills
    tamper(db_url, update(fl).where(fl.c.exec_id == "e1").values(strategy="beta"))
    report = doctor(ledger)
    assert not report.ok
    (finding,) = found(report, "fill_order_other_strategy")
    assert (finding.severity, finding.subject) == ("error", "order o1")
    assert finding.data["fill_strategy"] == "beta"
    assert finding.data["exec_ids"] == ["e1"]
    assert finding.data["registered_after_fills"] is False


# -- 5. orders filled beyond their quantity -------------------------------------------------


def test_order_filled_beyond_its_quantity(ledger: Ledger) -> None:
    setup(ledger)
    order(ledger, "exact", "alpha", "BUY", "0.3")
    order(ledger, "over", "beta", "SELL", "0.3")
    for n, quantity in enumerate(("0.1", "0.2")):  # 0.1 + 0.2 is 0.3 exactly, not in floats
        assert fill(
            ledger, f"x{n}", "BUY", quantity, "100", strategy=None, client_order_id="exact"
        ).applied
    for n, quantity in enumerate(("0.1", "0.2", "0.000000000000000001")):
        assert fill(
            ledger, f"o{n}", "SELL", quantity, "100", strategy=None, client_order_id="over"
        ).applied
    report = doctor(ledger)
    assert not report.ok
    (finding,) = found(report, "order_overfilled")
    assert (finding.severity, finding.subject) == ("error", "order over")
    assert finding.data == {
        "client_order_id": "over",
        "account": "ACC",
        "instrument": "FUT",
        "strategy": "beta",
        "ordered": "0.3",
        "filled": "0.300000000000000001",
        "excess": "0.000000000000000001",
        "fills": 3,
    }


# -- 6. shared instruments --------------------------------------------------------------------


def test_instruments_traded_by_several_strategies(ledger: Ledger) -> None:
    setup(ledger)
    assert fill(ledger, "e1", "BUY", "1", "100").applied
    assert fill(ledger, "e2", "BUY", "1", "100", strategy="beta").applied
    perp = {"account": "HDG", "instrument": "PERP", "position_side": "LONG"}
    assert fill(ledger, "p1", "BUY", "1", "60000", **perp).applied
    assert fill(ledger, "p2", "BUY", "1", "60000", strategy=None, **perp).applied  # EXTERNAL
    report = doctor(ledger)
    assert report.ok
    (finding,) = found(report, "shared_instrument")
    assert (finding.severity, finding.subject) == ("info", "ACC/FUT")
    assert finding.data["strategies"] == ["alpha", "beta"]
    assert "alpha, beta" in finding.detail


# -- 7. quantity nobody owns ------------------------------------------------------------------


def test_external_position(ledger: Ledger) -> None:
    setup(ledger)
    assert fill(ledger, "e1", "SELL", "2", "100", strategy=None).applied
    perp = {"account": "HDG", "instrument": "PERP", "position_side": "LONG"}
    assert fill(ledger, "p1", "BUY", "1", "60000", strategy=None, **perp).applied
    assert fill(ledger, "p2", "SELL", "1", "60001", strategy=None, minute=1, **perp).applied
    report = doctor(ledger)
    assert report.ok
    (finding,) = found(report, "external_position")  # the flat one on PERP is not listed
    assert (finding.severity, finding.subject) == ("warning", "ACC/FUT/EXTERNAL/BOTH")
    assert finding.data["quantity"] == "-2"
    assert "short 2" in finding.detail and "posledger transfer" in finding.detail


# -- 8. the invariants ------------------------------------------------------------------------


def test_invariants_are_reported_one_finding_each(ledger: Ledger, db_url: str) -> None:
    setup(ledger)
    assert fill(ledger, "e1", "BUY", "2", "100").applied
    assert fill(ledger, "e2", "SELL", "1", "100", strategy="beta").applied
    tr = schema.trades
    # a trade's own quantity is no other check's business
    tamper(
        db_url,
        update(tr).where(tr.c.status == "open").values(quantity=Decimal(7)),
    )
    report = doctor(ledger)
    assert not report.ok
    assert {f.check for f in errors(report)} == {"invariants"}
    invariants = found(report, "invariants")
    assert len(invariants) == 2
    assert all(f.severity == "error" for f in invariants)
    assert all("holds 7" in f.data["problem"] for f in invariants)
