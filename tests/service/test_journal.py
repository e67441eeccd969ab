"""``Ledger.journal``: typed journal rows, read in pages that resume where the last ended."""

from __future__ import annotations

import json

import pytest

from posledger import Ledger, UsageError
from posledger.ports import JournalRow
from tests.integration.helpers import fill

from .conftest import T0, Clock


def test_journal_rows_are_typed(ledger: Ledger, clock: Clock) -> None:
    clock.advance(7)
    out = fill(ledger, "e1", "BUY", "2", "100")
    assert out.applied and out.seq is not None
    rows = ledger.journal(after_seq=0, limit=None)
    assert all(type(row) is JournalRow for row in rows)
    assert [row.seq for row in rows] == list(range(1, len(rows) + 1))
    assert [row.kind for row in rows] == [
        "account", "account", "instrument", "instrument", "strategy", "strategy", "fill",
    ]  # fmt: skip
    last = rows[-1]
    assert (last.seq, last.stream, last.version) == (out.seq, "instrument:FUT", 2)
    assert last.recorded_at == T0 + 7
    assert json.loads(last.input)["exec_id"] == "e1"
    assert json.loads(last.effects) == out.effects
    (shown,) = ledger.journal_json(after_seq=out.seq - 1)
    assert shown["seq"] == out.seq and shown["input"]["exec_id"] == "e1"
    assert shown["effects"] == out.effects


def read_all(ledger: Ledger, page: int) -> list[JournalRow]:
    """Every entry, a page at a time, each page resuming after the last entry read."""
    read: list[JournalRow] = []
    after = 0
    while rows := ledger.journal(after_seq=after, limit=page):
        assert len(rows) <= page
        read.extend(rows)
        after = rows[-1].seq
    return read


@pytest.mark.parametrize("page", [1, 2, 3, 7, 1000])
def test_reading_in_pages_gives_every_entry_once(ledger: Ledger, page: int) -> None:
    for n in range(12):
        fill(ledger, f"e{n}", "BUY" if n % 3 else "SELL", "1", str(100 + n), minute=n)
    everything = ledger.journal(after_seq=0, limit=None)
    assert len(everything) == 6 + 12
    assert read_all(ledger, page) == everything


def test_a_reader_resumes_after_what_it_read_and_misses_nothing_written_since(
    ledger: Ledger,
) -> None:
    read: list[JournalRow] = []
    after = 0
    for n in range(10):
        rows = ledger.journal(after_seq=after, limit=4)
        read.extend(rows)
        after = rows[-1].seq if rows else after
        fill(ledger, f"e{n}", "BUY", "1", "100", minute=n)  # written between two pages
    while rows := ledger.journal(after_seq=after, limit=4):
        read.extend(rows)
        after = rows[-1].seq
    assert read == ledger.journal(after_seq=0, limit=None)
    assert len({row.seq for row in read}) == len(read) == 6 + 10


def test_journal_limits(ledger: Ledger) -> None:
    total = len(ledger.journal(limit=None))
    assert ledger.journal(after_seq=total) == []
    assert ledger.journal(after_seq=total + 100, limit=1) == []
    assert [row.seq for row in ledger.journal(after_seq=2, limit=2)] == [3, 4]
    with pytest.raises(UsageError, match="limit"):
        ledger.journal(limit=0)
    with pytest.raises(UsageError, match="limit"):
        ledger.journal_json(limit=-1)
