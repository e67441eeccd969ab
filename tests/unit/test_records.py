"""The canonical record: the journal's form of an input and the basis of its digest."""

from __future__ import annotations

import pytest

from posledger.adapters.records import generic_record, parse_record, to_record
from posledger.domain.enums import PositionSide, Side
from posledger.domain.inputs import Fill
from posledger.domain.numbers import D

FILLS = [
    Fill("e1", "A", "MES", Side.BUY, D("1.50"), D("6850.25"), 1_772_462_702_117_000_000),
    Fill(
        "e2",
        "A",
        "BTCUSDT",
        Side.SELL,
        D("0.001"),
        D("-3"),
        1_772_462_702_000_000_001,
        client_order_id="o1",
        strategy="s1",
        commission=D("-0.0100"),
        commission_currency="USDT",
        position_side=PositionSide.SHORT,
        liquidation=True,
    ),
]


@pytest.mark.parametrize("fill", FILLS)
def test_the_fast_fill_record_is_the_generic_record(fill: Fill) -> None:
    fast, generic = to_record(fill), generic_record(fill)
    assert fast == generic
    assert list(fast) == list(generic)  # field order is part of the canonical text


@pytest.mark.parametrize("fill", FILLS)
def test_a_canonical_record_reads_back_to_the_same_fill(fill: Fill) -> None:
    assert parse_record(to_record(fill)) == fill


def test_canonical_amounts_and_times() -> None:
    record = to_record(FILLS[0])
    # "1.50" loses its trailing zero; the time keeps milliseconds only
    assert (record["quantity"], record["ts"]) == ("1.5", "2026-03-02T14:45:02.117Z")
    assert "commission" not in record and "liquidation" not in record
