"""The store through the Python API, on every store: restart, exact decimals, constraints,
duplicates and the journal.

What the ledger does is asserted through the public API (journal entries through
``ledger.journal``, stored rows through ``ledger.store.reads().table``) on every store,
memory included. Column types, raw driver values and constraints checked by bypassing
posledger with SQLAlchemy exist on the SQL databases only: those tests say so
(:func:`~.helpers.sql_only`); the memory store's constraints are checked through the
unit of work in ``test_unit_of_work.py``."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Float, Numeric, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from posledger import Ledger, open_ledger
from posledger.domain.numbers import fmt
from posledger.store import schema

from .helpers import (
    T,
    connect,
    engine,
    entries,
    fill,
    kind_of,
    rows,
    setup,
    snapshot,
    sql_only,
    table,
)

# -- restart -------------------------------------------------------------------------------


def test_reopening_restores_everything_and_trades_continue(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        assert fill(ledger, "e1", "BUY", "2", "100", minute=1).applied
        assert fill(ledger, "e2", "BUY", "1", "101.5", minute=2).applied
        assert fill(ledger, "e3", "SELL", "1", "99", strategy="beta", minute=3).applied
        assert ledger.apply_mark(instrument="FUT", price="102", ts=f"{T}10:05:00Z").applied
        before = snapshot(ledger)
        (alpha_trade,) = [t for t in ledger.trades() if t["strategy"] == "alpha"]
        journal_before = entries(ledger)

    with open_ledger(db_url) as ledger:
        assert snapshot(ledger) == before
        assert entries(ledger) == journal_before
        assert ledger.verify().ok
        # exactly once across a restart
        assert fill(ledger, "e1", "BUY", "2", "100", minute=1).status == "duplicate"
        # the open trade goes on where it stopped
        out = fill(ledger, "e4", "SELL", "3", "103", minute=10)
        assert out.applied
        assert out.seq == journal_before[-1][0] + 1
        trades = {t["trade_id"]: t for t in ledger.trades(strategy="alpha")}
        assert list(trades) == [alpha_trade["trade_id"]]
        closed = trades[alpha_trade["trade_id"]]
        assert closed["status"] == "closed"
        assert [f["exec_id"] for f in closed["fills"]] == ["e1", "e2", "e4"]
        # avg entry (200 + 101.5) / 3 = 100.5; gross (103 - 100.5) * 3 * 5 = 37.5
        assert closed["avg_entry_price"] == "100.5"
        assert closed["gross_realized_pnl"] == "37.5"
        # a new trade gets a new id, never one already used before the restart
        assert fill(ledger, "e5", "BUY", "1", "104", minute=11).applied
        ids = [t["trade_id"] for t in ledger.trades()]
        assert len(ids) == len(set(ids)) == 3
        assert max(ids) > max(t["trade_id"] for t in before[1])
        assert ledger.verify().ok


# -- exact decimals ------------------------------------------------------------------------

BIG_QUANTITY = "12345678901234567890"  # 20 integer digits
FINE_PRICE = "0.123456789012345678"  # 18 fractional digits
WIDE_PRICE = "99999999999999999999.999999999999999999"  # both at once
TINY_QUANTITY = "0.000000000000000001"


def canonical(value: Any) -> str:
    """The canonical text of a raw column value: SQLite must already hold exactly that
    text; the servers hand back a NUMERIC Decimal."""
    if isinstance(value, str):
        assert fmt(Decimal(value)) == value, f"stored text {value!r} is not canonical"
        return value
    assert isinstance(value, Decimal), (type(value), value)
    return fmt(value)


def assert_amount_columns_exact(db_url: str) -> None:
    """Every Amount column is TEXT on SQLite and NUMERIC(38, 18) on the servers."""
    sqlite = kind_of(db_url) == "sqlite"
    with connect(db_url) as conn:
        inspector = inspect(conn)
        for table in schema.metadata.sorted_tables:
            declared = {c["name"]: c["type"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                kind = declared[column.name]
                shown = str(kind).upper()
                where = (table.name, column.name, shown)
                assert not isinstance(kind, Float), where
                assert not any(word in shown for word in ("REAL", "FLOA", "DOUB")), where
                if not isinstance(column.type, schema.Amount):
                    continue
                if sqlite:
                    assert shown == "TEXT", where
                else:
                    assert isinstance(kind, Numeric), where
                    assert (kind.precision, kind.scale) == (38, 18), where


EXPECTED_FILLS = [("big", BIG_QUANTITY, FINE_PRICE), ("wide", TINY_QUANTITY, WIDE_PRICE)]
EXPECTED_SLOTS = [("alpha", BIG_QUANTITY, FINE_PRICE), ("beta", "-" + TINY_QUANTITY, WIDE_PRICE)]


def _wide_and_fine(ledger: Ledger) -> None:
    setup(ledger)
    assert fill(ledger, "big", "BUY", BIG_QUANTITY, FINE_PRICE).applied
    assert fill(ledger, "wide", "SELL", TINY_QUANTITY, WIDE_PRICE, strategy="beta").applied


def test_amounts_are_stored_exactly(ledger: Ledger) -> None:
    _wide_and_fine(ledger)
    # the stored rows, typed, as the store reads them back
    stored = [(r["exec_id"], r["quantity"], r["price"]) for r in table(ledger, "fills")]
    assert stored == [(e, Decimal(q), Decimal(p)) for e, q, p in EXPECTED_FILLS]
    assert [(e, fmt(q), fmt(p)) for e, q, p in stored] == EXPECTED_FILLS
    slots = [(r["strategy"], r["quantity"], r["avg_entry"]) for r in table(ledger, "slots")]
    assert [(n, fmt(q), fmt(a)) for n, q, a in slots] == EXPECTED_SLOTS

    positions = {p["strategy"]: p for p in ledger.positions()}
    assert positions["alpha"]["avg_entry_price"] == FINE_PRICE
    assert positions["alpha"]["quantity"] == BIG_QUANTITY
    assert positions["beta"]["avg_entry_price"] == WIDE_PRICE
    assert positions["beta"]["signed_quantity"] == "-" + TINY_QUANTITY
    trade = ledger.trades(strategy="alpha")[0]
    assert (trade["peak_quantity"], trade["avg_entry_price"]) == (BIG_QUANTITY, FINE_PRICE)
    assert ledger.verify().ok


def test_amount_columns_hold_the_exact_digits(ledger: Ledger, db_url: str) -> None:
    sql_only(
        db_url,
        "no SQL columns or driver values (test_amounts_are_stored_exactly reads "
        "the memory store's rows through the API)",
    )
    _wide_and_fine(ledger)
    # raw values, as the driver returns them
    raw_fills = rows(db_url, "SELECT exec_id, quantity, price FROM fills ORDER BY exec_id")
    assert [(e, canonical(q), canonical(p)) for e, q, p in raw_fills] == EXPECTED_FILLS
    raw_slots = rows(db_url, "SELECT strategy, quantity, avg_entry FROM slots ORDER BY strategy")
    assert [(s, canonical(q), canonical(a)) for s, q, a in raw_slots] == EXPECTED_SLOTS
    # typed values, through posledger's Amount type
    f, s = schema.fills, schema.slots
    typed = rows(db_url, select(f.c.exec_id, f.c.quantity, f.c.price).order_by(f.c.exec_id))
    assert typed == [(e, Decimal(q), Decimal(p)) for e, q, p in EXPECTED_FILLS]
    assert [(e, fmt(q), fmt(p)) for e, q, p in typed] == EXPECTED_FILLS
    typed = rows(db_url, select(s.c.strategy, s.c.quantity, s.c.avg_entry).order_by(s.c.strategy))
    assert [(n, fmt(q), fmt(a)) for n, q, a in typed] == EXPECTED_SLOTS
    if kind_of(db_url) == "sqlite":
        kinds = rows(db_url, "SELECT DISTINCT typeof(quantity), typeof(price) FROM fills")
        assert kinds == [("text", "text")]
    assert_amount_columns_exact(db_url)


def _partial_exit(ledger: Ledger) -> None:
    setup(ledger)
    fill(ledger, "e1", "BUY", "3", "100.333333333333333333")
    fill(ledger, "e2", "SELL", "1", "101.1", minute=1)
    ledger.apply_mark(instrument="FUT", price="100.7", ts=f"{T}10:05:00Z")


def test_realized_pnl_keeps_every_digit(ledger: Ledger) -> None:
    _partial_exit(ledger)
    # (101.1 - 100.333333333333333333) * 1 * 5 = 3.833333333333333335
    trade = ledger.trades()[0]
    assert trade["gross_realized_pnl"] == "3.833333333333333335"
    (stored,) = table(ledger, "trades")
    assert stored["gross_realized"] == Decimal("3.833333333333333335")
    assert fmt(stored["gross_realized"]) == "3.833333333333333335"


def test_no_amount_column_is_a_float(ledger: Ledger, db_url: str) -> None:
    sql_only(db_url, "no SQL column types (the memory store keeps canonical decimal text)")
    _partial_exit(ledger)
    assert_amount_columns_exact(db_url)
    if kind_of(db_url) == "sqlite":
        # SQLite's type is per value: no stored value may have become a float either
        for table in schema.metadata.sorted_tables:
            for column in table.columns:
                query = f'SELECT DISTINCT typeof("{column.name}") FROM {table.name}'
                kinds = {kind for (kind,) in rows(db_url, query)}
                assert "real" not in kinds, (table.name, column.name)
    # the realized P&L of the partial exit keeps every digit:
    # (101.1 - 100.333333333333333333) * 1 * 5 = 3.833333333333333335
    trade = ledger.trades()[0]
    assert trade["gross_realized_pnl"] == "3.833333333333333335"
    (stored,) = rows(db_url, select(schema.trades.c.gross_realized))
    assert stored == (Decimal("3.833333333333333335"),)


# -- database constraints ------------------------------------------------------------------


def _copy_rows(db_url: str, table: Any, where: Any, **changes: Any) -> None:
    """Insert copies of ``table``'s rows matching ``where`` (with ``changes``) in one
    committed transaction, through SQLAlchemy Core on whichever database this is."""
    with engine(db_url) as created, created.begin() as conn:
        found = [row._asdict() for row in conn.execute(select(table).where(where))]
        assert found
        copies = [{**row, **{k: change(row) for k, change in changes.items()}} for row in found]
        conn.execute(insert(table), copies)


def test_the_same_exec_id_on_another_account_is_another_fill(ledger: Ledger) -> None:
    setup(ledger)
    assert fill(ledger, "e1", "BUY", "1", "100").applied
    assert fill(ledger, "e1", "BUY", "1", "100").status == "duplicate"
    assert fill(
        ledger, "e1", "BUY", "1", "60000", account="HDG", instrument="PERP", position_side="LONG"
    ).applied
    stored = [(r["account"], r["exec_id"]) for r in table(ledger, "fills")]
    assert stored == [("ACC", "e1"), ("HDG", "e1")]


def test_exactly_once_is_a_database_constraint(ledger: Ledger, db_url: str) -> None:
    sql_only(
        db_url,
        "no SQL constraint to bypass (test_unit_of_work checks that a second "
        "fill per (account, exec_id) fails the memory store's commit)",
    )
    setup(ledger)
    assert fill(ledger, "e1", "BUY", "1", "100").applied
    fills = schema.fills
    with pytest.raises(IntegrityError):
        _copy_rows(db_url, fills, fills.c.exec_id == "e1")
    # Same exec_id on another account is another execution: allowed by the constraint.
    assert fill(
        ledger, "e1", "BUY", "1", "60000", account="HDG", instrument="PERP", position_side="LONG"
    ).applied
    assert rows(db_url, "SELECT count(*) FROM fills WHERE exec_id = 'e1'") == [(2,)]


def test_one_open_trade_per_slot_is_a_database_constraint(ledger: Ledger, db_url: str) -> None:
    sql_only(
        db_url,
        "no SQL constraint to bypass (test_unit_of_work checks that a second "
        "open trade per slot fails the memory store's commit)",
    )
    setup(ledger)
    assert fill(ledger, "e1", "BUY", "1", "100").applied
    assert fill(ledger, "e2", "SELL", "1", "101", minute=1).applied  # closes trade 1
    assert fill(ledger, "e3", "BUY", "1", "102", minute=2).applied  # opens trade 2
    trades = schema.trades
    moved = {"trade_id": lambda row: row["trade_id"] + 1000}
    # A second closed trade of the same slot is fine...
    _copy_rows(db_url, trades, trades.c.status == "closed", **moved)
    # ...a second open one is not.
    with pytest.raises(IntegrityError):
        _copy_rows(db_url, trades, trades.c.status == "open", **moved)
    assert rows(db_url, "SELECT count(*) FROM trades WHERE status = 'open'") == [(1,)]
    assert rows(db_url, "SELECT count(*) FROM trades WHERE status = 'closed'") == [(2,)]


# -- duplicates, conflicts and rejected input ----------------------------------------------


def test_same_exec_id_with_different_content_is_a_named_conflict(ledger: Ledger) -> None:
    setup(ledger)
    assert fill(ledger, "e1", "BUY", "2", "100").applied
    before = (snapshot(ledger)[:3], entries(ledger))
    out = fill(ledger, "e1", "BUY", "2", "100.25")
    assert out.status == "rejected"
    assert out.reason is not None
    assert "conflict" in out.reason and "e1" in out.reason and "price" in out.reason
    assert "100.25" in out.reason
    assert (snapshot(ledger)[:3], entries(ledger)) == before
    stored = ledger.rejected_inputs()
    assert len(stored) == 1
    assert "100.25" in stored[0]["raw"] and stored[0]["reason"] == out.reason
    # the identical fill is a duplicate, not a conflict
    assert fill(ledger, "e1", "BUY", "2", "100").status == "duplicate"


def test_conflict_through_ingest(ledger: Ledger) -> None:
    setup(ledger)
    base = (
        '{"type":"fill","exec_id":"j1","account":"ACC","instrument":"FUT","side":"BUY",'
        '"quantity":"1","price":"%s","ts":"2026-03-02T10:00:00Z","strategy":"alpha"}'
    )
    report = ledger.ingest([base % "100", base % "100", base % "100.5"], source="t.jsonl")
    assert (report.applied, report.duplicate, report.rejected) == (1, 1, 1)
    ((line, reason),) = report.rejections
    assert line == 3 and "conflict" in reason and "j1" in reason and "price" in reason


def test_rejected_input_is_stored_once(ledger: Ledger) -> None:
    setup(ledger)
    for _ in range(3):
        out = fill(ledger, "x1", "BUY", "1", "100", account="NOPE")
        assert out.status == "rejected" and "NOPE" in (out.reason or "")
    bad = '{"type":"fill","exec_id":"x2","account":"ACC"'
    for _ in range(2):
        report = ledger.ingest([bad], source="bad.jsonl")
        assert report.rejected == 1
    stored = ledger.rejected_inputs()
    assert len(stored) == 2
    assert [r["raw"] for r in stored][1] == bad
    assert stored[1]["line"] == 1 and stored[1]["source"] == "bad.jsonl"


# -- the journal ---------------------------------------------------------------------------


def test_journal_is_contiguous_overall_and_per_stream(ledger: Ledger) -> None:
    setup(ledger)
    for i in range(30):
        side = "BUY" if i % 3 else "SELL"
        fill(
            ledger,
            f"f{i}",
            side,
            "1",
            str(100 + i),
            strategy="alpha" if i % 2 else "beta",
            minute=i,
        )
        fill(
            ledger,
            f"p{i}",
            "BUY" if i % 4 else "SELL",
            "0.01",
            str(60000 + i),
            account="HDG",
            instrument="PERP",
            position_side="LONG",
            minute=i,
        )
        if i % 7 == 0:
            ledger.apply_mark(instrument="FUT", price=str(101 + i), ts=f"{T}11:{i:02d}:00Z")
        # a duplicate: journals nothing
        fill(
            ledger,
            f"f{i}",
            side,
            "1",
            str(100 + i),
            strategy="alpha" if i % 2 else "beta",
            minute=i,
        )
    journaled = entries(ledger)
    assert [e[0] for e in journaled] == list(range(1, len(journaled) + 1))
    versions: dict[str, list[int]] = defaultdict(list)
    for _seq, stream, version, *_ in journaled:
        versions[stream].append(version)
    assert "instrument:FUT" in versions and "instrument:PERP" in versions
    for stream, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), stream
    assert ledger.verify().ok


def test_identifiers_differing_only_in_case_or_accent_are_different(db_url: str) -> None:
    """MariaDB compares text case- and accent-insensitively unless told otherwise: two
    fills whose exec ids differ only in case must both be applied, on every database."""
    with open_ledger(db_url) as ledger:
        setup(ledger)
        assert fill(ledger, "exec-a1", "BUY", "1", "100", minute=1).applied
        assert fill(ledger, "EXEC-A1", "BUY", "1", "100", minute=2).applied
        assert fill(ledger, "exec-é", "BUY", "1", "100", minute=3).applied
        assert fill(ledger, "exec-e", "BUY", "1", "100", minute=4).applied
        order = {"account": "ACC", "strategy": "beta", "instrument": "FUT", "side": "BUY",
                 "quantity": "1", "intent": "entry"}  # fmt: skip
        assert ledger.register_order(client_order_id="ord-x", **order).applied
        assert ledger.register_order(client_order_id="ORD-X", **order).applied
        assert ledger.register_strategy(strategy="Beta").applied
        [alpha] = ledger.positions(strategy="alpha")
        assert alpha["quantity"] == "4"
        assert len(table(ledger, "fills")) == 4
        assert ledger.verify().ok
