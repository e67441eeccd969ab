"""The SQLite store through the Python API: restart, exact decimals, constraints, schema."""

from __future__ import annotations

import sqlite3
from collections import defaultdict

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from posledger import Ledger, SchemaError, open_ledger
from posledger.store import schema
from posledger.store.migrations import head_revision

from .helpers import T, db_path, fill, journal, raw, rows, setup, snapshot

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
        journal_before = journal(db_url)

    with open_ledger(db_url) as ledger:
        assert snapshot(ledger) == before
        assert journal(db_url) == journal_before
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
        assert ledger.verify().ok


# -- exact decimals ------------------------------------------------------------------------

BIG_QUANTITY = "12345678901234567890"  # 20 integer digits
FINE_PRICE = "0.123456789012345678"  # 18 fractional digits
WIDE_PRICE = "99999999999999999999.999999999999999999"  # both at once
TINY_QUANTITY = "0.000000000000000001"


def test_amounts_are_stored_exactly_as_text(ledger: Ledger, db_url: str) -> None:
    setup(ledger)
    assert fill(ledger, "big", "BUY", BIG_QUANTITY, FINE_PRICE).applied
    assert fill(ledger, "wide", "SELL", TINY_QUANTITY, WIDE_PRICE, strategy="beta").applied
    stored = rows(
        db_url,
        "SELECT exec_id, quantity, price, typeof(quantity), typeof(price)"
        " FROM fills ORDER BY exec_id",
    )
    assert stored == [
        ("big", BIG_QUANTITY, FINE_PRICE, "text", "text"),
        ("wide", TINY_QUANTITY, WIDE_PRICE, "text", "text"),
    ]
    slots = rows(
        db_url, "SELECT strategy, quantity, avg_entry, typeof(avg_entry) FROM slots ORDER BY 1"
    )
    assert slots == [
        ("alpha", BIG_QUANTITY, FINE_PRICE, "text"),
        ("beta", "-" + TINY_QUANTITY, WIDE_PRICE, "text"),
    ]
    positions = {p["strategy"]: p for p in ledger.positions()}
    assert positions["alpha"]["avg_entry_price"] == FINE_PRICE
    assert positions["alpha"]["quantity"] == BIG_QUANTITY
    assert positions["beta"]["avg_entry_price"] == WIDE_PRICE
    assert positions["beta"]["signed_quantity"] == "-" + TINY_QUANTITY
    trade = ledger.trades(strategy="alpha")[0]
    assert (trade["peak_quantity"], trade["avg_entry_price"]) == (BIG_QUANTITY, FINE_PRICE)
    assert ledger.verify().ok


def test_no_amount_column_is_a_float(ledger: Ledger, db_url: str) -> None:
    setup(ledger)
    fill(ledger, "e1", "BUY", "3", "100.333333333333333333")
    fill(ledger, "e2", "SELL", "1", "101.1", minute=1)
    ledger.apply_mark(instrument="FUT", price="100.7", ts=f"{T}10:05:00Z")
    with raw(db_url) as conn:
        for table in schema.metadata.sorted_tables:
            declared = {row[1]: row[2] for row in conn.execute(f"PRAGMA table_info({table.name})")}
            for column in table.columns:
                if isinstance(column.type, schema.Amount):
                    assert declared[column.name].upper() == "TEXT", (table.name, column.name)
                assert "REAL" not in declared[column.name].upper()
                assert "FLOA" not in declared[column.name].upper()
                assert "DOUB" not in declared[column.name].upper()
                kinds = {
                    kind
                    for (kind,) in conn.execute(
                        f'SELECT DISTINCT typeof("{column.name}") FROM {table.name}'
                    )
                }
                assert "real" not in kinds, (table.name, column.name)
    # the realized P&L of the partial exit keeps every digit:
    # (101.1 - 100.333333333333333333) * 1 * 5 = 3.833333333333333335
    trade = ledger.trades()[0]
    assert trade["gross_realized_pnl"] == "3.833333333333333335"


# -- database constraints ------------------------------------------------------------------


def test_exactly_once_is_a_database_constraint(ledger: Ledger, db_url: str) -> None:
    setup(ledger)
    assert fill(ledger, "e1", "BUY", "1", "100").applied
    with raw(db_url) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO fills SELECT * FROM fills WHERE exec_id = 'e1'")
    # Same exec_id on another account is another execution: allowed by the constraint.
    assert fill(
        ledger, "e1", "BUY", "1", "60000", account="HDG", instrument="PERP", position_side="LONG"
    ).applied
    assert rows(db_url, "SELECT count(*) FROM fills WHERE exec_id = 'e1'") == [(2,)]


def test_one_open_trade_per_slot_is_a_database_constraint(ledger: Ledger, db_url: str) -> None:
    setup(ledger)
    assert fill(ledger, "e1", "BUY", "1", "100").applied
    assert fill(ledger, "e2", "SELL", "1", "101", minute=1).applied  # closes trade 1
    assert fill(ledger, "e3", "BUY", "1", "102", minute=2).applied  # opens trade 2
    with raw(db_url) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(trades)")]
        select = ", ".join("trade_id + 1000" if c == "trade_id" else c for c in columns)
        insert = f"INSERT INTO trades ({', '.join(columns)}) SELECT {select} FROM trades"
        # A second closed trade of the same slot is fine...
        with conn:
            conn.execute(insert + " WHERE status = 'closed'")
        # ...a second open one is not.
        with pytest.raises(sqlite3.IntegrityError), conn:
            conn.execute(insert + " WHERE status = 'open'")
        assert conn.execute("SELECT count(*) FROM trades WHERE status = 'open'").fetchall() == [
            (1,)
        ]


# -- duplicates, conflicts and rejected input ----------------------------------------------


def test_same_exec_id_with_different_content_is_a_named_conflict(
    ledger: Ledger, db_url: str
) -> None:
    setup(ledger)
    assert fill(ledger, "e1", "BUY", "2", "100").applied
    before = (snapshot(ledger)[:3], journal(db_url))
    out = fill(ledger, "e1", "BUY", "2", "100.25")
    assert out.status == "rejected"
    assert out.reason is not None
    assert "conflict" in out.reason and "e1" in out.reason and "price" in out.reason
    assert "100.25" in out.reason
    assert (snapshot(ledger)[:3], journal(db_url)) == before
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


def test_journal_is_contiguous_overall_and_per_stream(ledger: Ledger, db_url: str) -> None:
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
    entries = journal(db_url)
    assert [e[0] for e in entries] == list(range(1, len(entries) + 1))
    versions: dict[str, list[int]] = defaultdict(list)
    for _seq, stream, version, *_ in entries:
        versions[stream].append(version)
    assert "instrument:FUT" in versions and "instrument:PERP" in versions
    for stream, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), stream
    assert ledger.verify().ok


# -- connection settings and schema ----------------------------------------------------------


def test_wal_and_synchronous_full_on_the_writer_connection(ledger: Ledger, db_url: str) -> None:
    setup(ledger)
    writer = ledger._uow._conn  # the connection every write goes through
    assert writer.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert writer.execute("PRAGMA synchronous").fetchone() == (2,)  # 2 = FULL
    with ledger.database.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    # WAL is a property of the file: any other connection sees it too.
    assert rows(db_url, "PRAGMA journal_mode") == [("wal",)]
    assert db_path(db_url).with_name(db_path(db_url).name + "-wal").exists()


def test_schema_revision_is_the_alembic_head(ledger: Ledger, db_url: str) -> None:
    assert head_revision() == schema.SCHEMA_REVISION
    assert rows(db_url, "SELECT version_num FROM alembic_version") == [(schema.SCHEMA_REVISION,)]


def test_migrated_schema_matches_the_metadata(ledger: Ledger) -> None:
    with ledger.database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, schema.metadata)
    assert differences == []


def test_unknown_schema_revision_is_refused(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
    with raw(db_url) as conn, conn:
        conn.execute("UPDATE alembic_version SET version_num = 'zz99_from_the_future'")
    with pytest.raises(SchemaError, match="zz99_from_the_future"):
        open_ledger(db_url)
    # nothing was changed by the refusal
    assert rows(db_url, "SELECT version_num FROM alembic_version") == [("zz99_from_the_future",)]
    assert rows(db_url, "SELECT count(*) FROM accounts") == [(2,)]
