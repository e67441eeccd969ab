"""Bad input is refused with a clear reason (docs/format.md, JSON Lines input and Limits): the
JSONL records."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from posledger.adapters.jsonl import parse_line, read_lines
from posledger.adapters.records import parse_record, to_record
from posledger.domain.enums import Intent, Kind, PositionSide, Side
from posledger.domain.inputs import Fill, Mark
from posledger.domain.numbers import D
from posledger.domain.refdata import Instrument, InvalidInput, Order

from .scenario import T0

GOOD_FILL = {
    "type": "fill",
    "exec_id": "e1",
    "account": "A",
    "instrument": "ES",
    "side": "BUY",
    "quantity": "2",
    "price": "100.25",
    "ts": "2026-03-02T14:00:00Z",
}


def line(**changes: object) -> str:
    record = {**GOOD_FILL, **changes}
    return json.dumps({k: v for k, v in record.items() if v is not None})


def refused(text: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_line(text)
    return str(caught.value)


def test_good_fill_is_read_exactly():
    fill = parse_line(
        line(commission="0.62", commission_currency="USD", client_order_id="o1", liquidation=True)
    )
    assert fill == Fill(
        "e1",
        "A",
        "ES",
        Side.BUY,
        D(2),
        D("100.25"),
        T0,
        client_order_id="o1",
        commission=D("0.62"),
        commission_currency="USD",
        liquidation=True,
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"type": "fill",', ["malformed JSON"]),
        ("not json at all", ["malformed JSON"]),
        ("[1, 2]", ["must be a JSON object"]),
        ("{}", ["missing field 'type'"]),
        ('{"type": "trade"}', ["unknown type", "'trade'", "fill"]),
        ('{"type": 7}', ["unknown type", "7"]),
        (line(price=None), ["missing field 'price'"]),
        (line(ts=None), ["missing field 'ts'"]),
        (line(colour="red"), ["unknown field 'colour'", "fill"]),
        (line(quantity=1), ["quantity", "decimal string", "number 1"]),
        (line(price=100.25), ["price", "decimal string", "number 100.25"]),
        (line(commission=0.5), ["commission", "decimal string"]),
        (line(ts="yesterday"), ["ts", "'yesterday'", "ISO 8601"]),
        (line(ts="2026-03-02T14:00:00"), ["ts", "ISO 8601", "offset"]),
        (line(ts=1772460000), ["ts", "ISO 8601", "number"]),
        (line(ts="2026-02-30T14:00:00Z"), ["ts", "not a valid time"]),
        (line(price="1.0000000000000000001"), ["price", "more than 18 digits after"]),
        (line(quantity="123456789012345678901"), ["quantity", "more than 20 digits before"]),
        (line(price="abc"), ["price", "'abc'", "not a decimal number"]),
        (line(price="NaN"), ["price", "not a decimal number"]),
        (line(price="Infinity"), ["price", "not a decimal number"]),
        (line(quantity="0"), ["quantity must be positive"]),
        (line(quantity="-1"), ["quantity must be positive"]),
        (line(side="HOLD"), ["side must be one of BUY, SELL", "'HOLD'"]),
        (line(position_side="UP"), ["position_side must be one of", "LONG"]),
        (line(liquidation="yes"), ["liquidation must be true or false"]),
        (line(exec_id=""), ["exec_id must not be empty"]),
        (line(account=5), ["account must be a string"]),
    ],
)
def test_malformed_records_are_refused_with_a_clear_reason(text, words):
    reason = refused(text)
    for word in words:
        assert word in reason, reason


def test_time_offsets_are_converted_to_utc():
    plus_two = parse_line(line(ts="2026-03-02T16:00:00+02:00"))
    zulu = parse_line(line(ts="2026-03-02T14:00:00Z"))
    assert isinstance(plus_two, Fill)
    assert isinstance(zulu, Fill)
    assert plus_two.ts == zulu.ts == T0


def test_fractional_seconds_are_kept_to_the_nanosecond():
    fill = parse_line(line(ts="2026-03-02T14:00:00.123456789Z"))
    assert isinstance(fill, Fill)
    assert fill.ts == T0 + 123_456_789


def test_eighteen_fractional_digits_are_fine():
    fill = parse_line(line(price="0.000000000000000001"))
    assert isinstance(fill, Fill)
    assert fill.price == Decimal("1E-18")


def test_other_record_types():
    order = parse_line(
        json.dumps(
            {
                "type": "order",
                "client_order_id": "o1",
                "account": "H",
                "strategy": "s1",
                "instrument": "BTC",
                "side": "SELL",
                "quantity": "0.5",
                "intent": "take_profit",
                "position_side": "LONG",
            }
        )
    )
    assert order == Order(
        "o1", "H", "s1", "BTC", Side.SELL, D("0.5"), Intent.TAKE_PROFIT, PositionSide.LONG
    )
    mark = parse_line('{"type": "mark", "instrument": "ES", "price": "-1.5"}')
    assert mark == Mark("ES", D("-1.5"))


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"kind": "spot"}, ["spot instrument needs base_currency"]),
        ({"kind": "bond"}, ["kind must be one of", "spot", "future"]),
        ({"multiplier": "0"}, ["multiplier must be positive"]),
        ({"inverse": True}, ["inverse instrument needs base_currency"]),
        ({"tick_size": "-0.25"}, ["tick_size must be positive"]),
    ],
)
def test_invalid_instruments(changes, words):
    record = {
        "type": "instrument",
        "instrument": "ES",
        "kind": "future",
        "multiplier": "50",
        "quote_currency": "USD",
        "settlement_currency": "USD",
        **changes,
    }
    reason = refused(json.dumps(record))
    for word in words:
        assert word in reason


def test_fill_quantity_must_be_positive_at_construction():
    for quantity in ("0", "-1"):
        with pytest.raises(InvalidInput, match="quantity must be positive"):
            Fill("e1", "A", "ES", Side.BUY, D(quantity), D(1), T0)


def test_identifiers_are_checked_at_construction():
    with pytest.raises(InvalidInput, match="surrounding spaces"):
        Fill(" e1", "A", "ES", Side.BUY, D(1), D(1), T0)
    with pytest.raises(InvalidInput, match="multiplier must be positive"):
        Instrument("ES", Kind.FUTURE, D(0), "USD", "USD")


def test_canonical_record_round_trips():
    fill = parse_line(line(commission="0.50", price="100.250"))
    record = to_record(fill)
    assert record["price"] == "100.25"
    assert record["commission"] == "0.5"
    assert record["ts"] == "2026-03-02T14:00:00Z"
    assert next(iter(record)) == "type"
    assert parse_record(record) == fill


def test_python_api_accepts_decimals_and_ints_but_json_does_not():
    record = {**GOOD_FILL, "quantity": Decimal("2"), "price": 100}
    fill = parse_record(record, api=True)
    assert isinstance(fill, Fill)
    assert (fill.quantity, fill.price) == (D(2), D(100))
    with pytest.raises(InvalidInput, match="decimal string"):
        parse_record(record)
    with pytest.raises(InvalidInput, match="finite"):
        parse_record({**GOOD_FILL, "price": Decimal("NaN")}, api=True)
    with pytest.raises(InvalidInput, match="decimal string"):
        parse_record({**GOOD_FILL, "price": 1.5}, api=True)  # never a float


def test_read_lines_numbers_every_line_and_skips_blanks():
    lines = read_lines([line(), "", "   ", "oops", line(exec_id="e2")])
    parsed = list(lines)
    assert [(p.number, p.item is None) for p in parsed] == [(1, False), (4, True), (5, False)]
    assert parsed[1].error is not None
    assert "malformed JSON" in parsed[1].error
    assert parsed[1].raw == "oops"
