"""The ledger as of a time (docs/format.md, As of a time): replaying the journal up to a
moment gives what a database built from that part of the journal holds.

The reference is built independently: the journaled inputs up to the cut are ingested,
as inputs, into a fresh store with the clock at each entry's recorded time; the ledger
as of the cut comes from replaying the full ledger's journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from posledger import open_ledger
from posledger.domain.marks import MarkPolicy
from posledger.domain.timestamps import format_ts, parse_ts
from posledger.errors import UsageError
from tests.databases import fresh_database
from tests.e2e.generate import generate

SECOND = 1_000_000_000
T0 = parse_ts("2026-06-01T00:00:00Z")


def _views(ledger) -> tuple[list, list]:
    return ledger.positions(include_flat=True), ledger.trades()


@pytest.mark.parametrize(
    "every", [0, 1, 5, 13], ids=["replay", "checkpoints-1", "checkpoints-5", "checkpoints-13"]
)
def test_as_of_equals_a_database_built_from_the_journal_prefix(
    db_url: str, tmp_path: Path, every: int
) -> None:
    """From the start of the journal (no checkpoints), or from the last checkpoint before
    the cut (one at every entry, or every 5 or 13, so that cuts fall between an order and
    its fills or its cancel, and a fill's order is looked up as it stood at the
    checkpoint)."""
    session = tmp_path / "session.jsonl"
    generate(session, fills=120, seed=11)
    lines = session.read_text().splitlines()
    clock = [T0]
    with open_ledger(db_url, clock=lambda: clock[0]) as full:
        full.checkpoint_every = every
        for n, line in enumerate(lines):
            clock[0] = T0 + n * SECOND
            full.ingest([line])
        journal = full.journal(limit=None)
        assert len(journal) > 100
        taken = full.store.last_checkpoint()
        if every and taken is not None:  # the memory store keeps none
            assert taken > len(journal) - every - 1
        cuts = [len(lines) // 5, len(lines) // 2, len(lines) - 1, *range(7, len(lines), 17)]
        at = [0]  # the reference's clock
        for cut in cuts:
            when = T0 + cut * SECOND
            prefix = [entry for entry in journal if entry.recorded_at <= when]
            assert prefix and prefix[-1].seq == len(prefix)  # a prefix, numbered 1..n
            with full.as_of(format_ts(when)) as past:
                seen = _views(past)
            with full.as_of(format_ts(when), history=False) as books:
                books_only = books.positions(include_flat=True)
            with (
                fresh_database("memory") as reference_url,
                open_ledger(
                    reference_url, clock=lambda: at[0], marks=MarkPolicy(0, 0)
                ) as reference,
            ):
                for entry in prefix:
                    at[0] = entry.recorded_at
                    report = reference.ingest([entry.input])
                    assert report.applied == 1, (entry, report.rejections)
                assert [e.input for e in reference.journal(limit=None)] == [e.input for e in prefix]
                expected = _views(reference)
            assert seen == expected, f"as of line {cut}"
            assert books_only == expected[0], f"positions as of line {cut}"
        # the first cut is not the end: as-of is not the present
        with full.as_of(seq=len(journal) // 5) as early:
            assert _views(early) != _views(full)
        with full.as_of(seq=len(journal)) as now:
            assert _views(now) == _views(full)


def test_as_of_before_anything_is_empty_and_bad_times_are_refused(db_url: str) -> None:
    clock = [T0]
    with open_ledger(db_url, clock=lambda: clock[0]) as ledger:
        ledger.register_account(account="A", venue="X", mode="SIM", position_mode="netting")
        with ledger.as_of("2020-01-01T00:00:00Z") as past:
            assert past.positions(include_flat=True) == []
            assert past.accounts() == []
        for bad in ({"when": "yesterday"}, {}, {"when": "2026-01-01T00:00:00Z", "seq": 3}):
            with pytest.raises(UsageError):
                ledger.as_of(**bad)
