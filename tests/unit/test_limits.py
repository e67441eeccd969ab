"""Every limit of docs/format.md ("Limits") is checked when a line is read, and a line that
breaks one is refused with the reason the document gives, never later by a database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from posledger.adapters import records
from posledger.adapters.jsonl import MAX_LINE, parse_line, read_lines
from posledger.adapters.records import RECORD_TYPES, parse_record, to_record
from posledger.domain.enums import Side
from posledger.domain.inputs import Fill, Halt, Mark
from posledger.domain.numbers import D
from posledger.domain.refdata import InvalidInput, Strategy
from posledger.domain.timestamps import EARLIEST_NS, LATEST_NS, format_ts, parse_ts

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
HALT = {"type": "halt", "account": "A", "instrument": "ES"}
TYPES = ", ".join(RECORD_TYPES)


def line(**changes: object) -> str:
    return json.dumps({**GOOD_FILL, **changes})


def fill_text(body: str) -> str:
    """A fill whose last fields are written by hand (JSON the json module would not write)."""
    return (
        '{"type": "fill", "exec_id": "e1", "account": "A", "instrument": "ES", "side": "BUY",'
        ' "ts": "2026-03-02T14:00:00Z", ' + body + "}"
    )


def refused(text: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_line(text)
    return str(caught.value)


def refused_api(record: dict[str, object]) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_record(record, api=True)
    return str(caught.value)


def read(text: str) -> Fill:
    item = parse_line(text)
    assert isinstance(item, Fill)
    return item


# -- amounts ---------------------------------------------------------------------------

EXPONENT = "is not a decimal number in plain notation: write it without an exponent (1000, not 1e3)"
BOTH_SIDES = "is not a decimal number: the decimal point needs digits on both sides (0.5, not .5)"

BEFORE_POINT = "has more than 20 digits before the decimal point"
AFTER_POINT = "has more than 18 digits after the decimal point"
ASCII = "is not a decimal number: only the ASCII digits 0-9, '-' and '.' may be used"
NANOS = "has more than 9 fractional digits (nanoseconds)"
HOURS = "hours are 00-23 and minutes 00-59"
AFTER = "is after 2261-12-31T23:59:59.999999999Z, the latest time the ledger takes"
BEFORE = "is before 1970-01-01T00:00:00Z, the earliest time the ledger takes"
CLOCK = "is not a valid time: hours are 00-23, minutes and seconds 00-59"
NON_ASCII = "is not an ISO 8601 time: it has non-ASCII characters (e.g. 2026-03-02T14:30:00Z)"
SPACES = "is not an ISO 8601 time: it has surrounding spaces (e.g. 2026-03-02T14:30:00Z)"
NO_OFFSET = (
    "is not an ISO 8601 time with an offset: add Z or ±HH:MM (e.g. 2026-03-02T14:30:00Z);"
    " the ledger never guesses a time zone"
)
NOT_ISO = "is not an ISO 8601 time with an offset, e.g. 2026-03-02T14:30:00Z"
UNPRINTABLE = "has an unprintable character"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("quantity", "1" * 21, f"'{'1' * 21}' has more than 20 digits before the decimal point"),
        ("quantity", "0" * 21, f"'{'0' * 21}' has more than 20 digits before the decimal point"),
        ("price", "1." + "0" * 19, f"'1.{'0' * 19}' {AFTER_POINT}"),
        ("price", "0." + "0" * 18 + "1", f"'0.{'0' * 18}1' {AFTER_POINT}"),
        ("price", "1" * 21 + ".5", f"'{'1' * 21}.5' {BEFORE_POINT}"),
        ("price", "1e3", f"'1e3' {EXPONENT}"),
        ("price", "1E+30", f"'1E+30' {EXPONENT}"),
        ("price", "1e999999999", f"'1e999999999' {EXPONENT}"),
        ("price", "1e-999999999", f"'1e-999999999' {EXPONENT}"),
        ("price", "+1", "'+1' is not a decimal number: write it without a '+' sign"),
        ("price", " 1", "' 1' is not a decimal number: it has surrounding spaces"),
        ("price", "1\n", "'1\\n' is not a decimal number: it has surrounding spaces"),
        ("price", "1.", f"'1.' {BOTH_SIDES}"),
        ("price", ".5", f"'.5' {BOTH_SIDES}"),
        ("price", "-.5", f"'-.5' {BOTH_SIDES}"),
        ("price", "١", f"'١' {ASCII}"),
        ("price", "1\u00a0000", f"'1\\xa0000' {ASCII}"),
        ("price", "１", f"'１' {ASCII}"),
        ("price", "1,5", "'1,5' is not a decimal number"),
        ("price", "1_000", "'1_000' is not a decimal number"),
        ("price", "--1", "'--1' is not a decimal number"),
        ("price", "-", "'-' is not a decimal number"),
        ("price", "", "'' is not a decimal number"),
        ("price", "NaN", "'NaN' is not a decimal number"),
        ("price", "-Infinity", "'-Infinity' is not a decimal number"),
        ("price", "0x10", "'0x10' is not a decimal number"),
    ],
)  # fmt: skip
def test_amounts_follow_one_strict_grammar(field: str, value: str, reason: str) -> None:
    assert refused(line(**{field: value})) == f"{field}: {reason}"
    # the Python API reads strings by the same grammar
    assert refused_api({**GOOD_FILL, field: value}) == f"{field}: {reason}"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("99999999999999999999", D("99999999999999999999")),
        ("99999999999999999999.999999999999999999", D("99999999999999999999.999999999999999999")),
        ("0.000000000000000001", D("1E-18")),
        ("00000000000000000001.100000000000000000", D("1.1")),
        ("7", D(7)),
    ],
)
def test_amounts_at_the_limits_are_read_exactly(text: str, value: Decimal) -> None:
    fill = read(line(quantity=text))
    assert fill.quantity == value


def test_negative_amounts_pass_the_grammar_and_the_record_decides() -> None:
    mark = parse_line('{"type": "mark", "instrument": "CL", "price": "-37.63"}')
    assert mark == Mark("CL", D("-37.63"))
    zero = parse_line('{"type": "mark", "instrument": "CL", "price": "-0"}')
    assert isinstance(zero, Mark)
    assert to_record(zero)["price"] == "0"
    assert read(line(commission="-0.5")).commission == D("-0.5")
    assert refused(line(quantity="-1")) == "quantity must be positive, got -1"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (10**20, f"quantity {BEFORE_POINT}, got number " + str(10**20)),
        (-(10**30), f"quantity {BEFORE_POINT}, got number " + str(-(10**30))),
        pytest.param(
            10**5000, f"quantity {BEFORE_POINT}, got a number of more than 38 digits", id="10**5000"
        ),
        (Decimal("1E+20"), "quantity: '1E+20' has more than 20 digits before the decimal point"),
        (Decimal("1E-19"), "quantity: '1E-19' has more than 18 digits after the decimal point"),
        (Decimal("1.0000000000000000001"), f"quantity: '1.0000000000000000001' {AFTER_POINT}"),
        (Decimal("1E+999999"), f"quantity: '1E+999999' {BEFORE_POINT}"),
        (Decimal("NaN"), "quantity: 'NaN' is not a finite number"),
        (Decimal("-Infinity"), "quantity: '-Infinity' is not a finite number"),
        (1.5, 'quantity must be a decimal string such as "1.25", got number 1.5'),
        (True, 'quantity must be a decimal string such as "1.25", got boolean true'),
    ],
)  # fmt: skip
def test_api_amounts_have_the_same_limits(value: object, reason: str) -> None:
    assert refused_api({**GOOD_FILL, "quantity": value}) == reason


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        (Decimal("1.50"), "1.5"),
        (Decimal("1E+3"), "1000"),
        (Decimal("2.000000000000000000000000"), "2"),  # zeros beyond 18 places are no digits
        (Decimal("9" * 20 + "." + "9" * 18), "9" * 20 + "." + "9" * 18),
        (10**20 - 1, "99999999999999999999"),
        (3, "3"),
    ],
)  # fmt: skip
def test_api_amounts_come_out_canonical(value: object, canonical: str) -> None:
    fill = parse_record({**GOOD_FILL, "quantity": value}, api=True)
    assert isinstance(fill, Fill)
    assert str(fill.quantity) == canonical
    assert to_record(fill)["quantity"] == canonical


# -- times -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        ("2026-03-02T14:00:00.1234567890Z", "has more than 9 fractional digits (nanoseconds)"),
        ("2026-03-02T14:00:00.123456789012+01:00", f"{NANOS}"),
        ("2026-03-02T14:00:00+00:99", f"has an impossible UTC offset +00:99: {HOURS}"),
        ("2026-03-02T14:00:00-24:00", f"has an impossible UTC offset -24:00: {HOURS}"),
        ("2026-03-02T14:00:00+9960", f"has an impossible UTC offset +9960: {HOURS}"),
        ("2262-01-01T00:00:00Z", f"{AFTER}"),
        ("2261-12-31T23:59:59.999999999-00:01", f"{AFTER}"),
        ("9999-12-31T23:59:59-23:59", f"{AFTER}"),
        ("1969-12-31T23:59:59.999999999Z", f"{BEFORE}"),
        ("1970-01-01T00:59:59+01:00", f"{BEFORE}"),
        ("0001-01-01T00:00:00+23:59", f"{BEFORE}"),
        ("0000-01-01T00:00:00Z", "is not a valid time: year 0 is out of range"),
        ("2026-02-30T14:00:00Z", "is not a valid time: day is out of range for month"),
        ("2026-03-02T24:00:00Z", "is not a valid time: hours are 00-23, minutes and seconds 00-59"),
        ("2026-03-02T14:00:60Z", "is not a valid time: hours are 00-23, minutes and seconds 00-59"),
        ("٢٠٢٦-03-02T14:00:00Z", f"{NON_ASCII}"),
        ("2026-03-02T14:00:00+01\uff1a00", f"{NON_ASCII}"),
        (" 2026-03-02T14:00:00Z", f"{SPACES}"),
        ("2026-03-02T14:00:00Z\n", f"{SPACES}"),
        ("2026-03-02T14:00:00", f"{NO_OFFSET}"),
        ("2026-03-02t14:00:00Z", f"{NOT_ISO}"),
        ("2026-03-02T14:00:00+1", f"{NOT_ISO}"),
        ("2026-03-02T14:00:00.Z", f"{NOT_ISO}"),
        ("20260302T140000Z", "is not an ISO 8601 time with an offset, e.g. 2026-03-02T14:30:00Z"),
    ],
)  # fmt: skip
def test_times_outside_the_grammar_or_the_range_are_refused(ts: str, reason: str) -> None:
    parse_ts("2026-03-02T14:00:00Z")  # the minute is remembered: the quick path sees them too
    assert refused(line(ts=ts)) == f"ts: {ts!r} {reason}"


@pytest.mark.parametrize(
    "ts",
    [
        "2026-03-02T14:00:0٠Z",  # non-ASCII digits after a minute the quick path remembers
        "2026-03-02T14:00:00.١Z",
        "2026-03-02T14:00:00.1234567890Z",
    ],
)
def test_the_quick_path_is_as_strict(ts: str) -> None:
    parse_ts("2026-03-02T14:00:00Z")
    with pytest.raises(ValueError):
        parse_ts(ts)


@pytest.mark.parametrize(
    ("ts", "ns"),
    [
        ("1970-01-01T00:00:00Z", EARLIEST_NS),
        ("1970-01-01T01:00:00+01:00", EARLIEST_NS),
        ("1969-12-31T23:00:00-01:00", EARLIEST_NS),
        ("2261-12-31T23:59:59.999999999Z", LATEST_NS),
        ("2262-01-01T00:59:59.999999999+01:00", LATEST_NS),
        ("2026-03-02T14:00:00z", T0),
        ("2026-03-02 14:00:00Z", T0),
        ("2026-03-02T16:00:00+0200", T0),
        ("2026-03-02T14:00:00,5Z", T0 + 500_000_000),
        ("2026-03-02T14:00:00-00:00", T0),
        ("2026-03-02T14:00:00.000000001Z", T0 + 1),
    ],
)
def test_times_at_the_limits_and_the_other_accepted_spellings(ts: str, ns: int) -> None:
    assert read(line(ts=ts)).ts == ns
    assert parse_ts(ts) == ns  # twice: once more from the remembered minute


def test_the_range_is_inside_64_bit_nanoseconds() -> None:
    assert EARLIEST_NS == 0
    assert LATEST_NS < 2**63 - 1
    assert format_ts(LATEST_NS) == "2261-12-31T23:59:59.999999999Z"
    assert format_ts(LATEST_NS + 1) == "2262-01-01T00:00:00Z"


class NanoDatetime(datetime):
    """A datetime with a ``nanosecond`` attribute, as pandas' Timestamp has."""

    nanosecond = 7


@pytest.mark.parametrize(
    ("value", "result"),
    [
        (datetime(2026, 3, 2, 14, tzinfo=UTC), T0),
        (datetime(2026, 3, 2, 15, 0, 0, 250, tzinfo=timezone(timedelta(hours=1))), T0 + 250_000),
        (datetime(2026, 3, 2, 14, 0, 0, tzinfo=timezone(timedelta(seconds=1))), T0 - 10**9),
        (NanoDatetime(2026, 3, 2, 14, 0, 0, 1, tzinfo=UTC), T0 + 1007),
        (datetime(1970, 1, 1, tzinfo=UTC), 0),
        (datetime(2261, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), LATEST_NS - 999),
        (datetime(9999, 12, 31, 23, 59, tzinfo=timezone(-timedelta(hours=23))), "after"),
        (datetime(2262, 1, 1, tzinfo=UTC), "after"),
        (datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "before"),
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))), "before"),
        (datetime(2026, 3, 2, 14), "ts must be an aware datetime (UTC)"),
    ],
)
def test_api_datetimes_follow_the_same_range(value: datetime, result: int | str) -> None:
    if isinstance(result, int):
        fill = parse_record({**GOOD_FILL, "ts": value}, api=True)
        assert isinstance(fill, Fill)
        assert fill.ts == result
        return
    reason = refused_api({**GOOD_FILL, "ts": value})
    if result == "after":
        assert reason.endswith(
            "is after 2261-12-31T23:59:59.999999999Z, the latest time the ledger takes"
        )
    elif result == "before":
        assert reason.endswith("is before 1970-01-01T00:00:00Z, the earliest time the ledger takes")
    else:
        assert reason == result


# -- counts ----------------------------------------------------------------------------


def strategy(slots: str) -> str:
    return '{"type": "strategy", "strategy": "s1", "max_open_slots": ' + slots + "}"


def test_counts_fit_a_32_bit_column() -> None:
    assert parse_line(strategy("2147483647")) == Strategy("s1", max_open_slots=2**31 - 1)
    assert parse_line(strategy("1")) == Strategy("s1", max_open_slots=1)


@pytest.mark.parametrize(
    ("slots", "reason"),
    [
        ("2147483648", "max_open_slots must be at most 2147483647, got number 2147483648"),
        (str(2**63), f"max_open_slots must be at most 2147483647, got number {2**63}"),
        (str(2**64 + 1), f"max_open_slots must be at most 2147483647, got number {2**64 + 1}"),
        pytest.param(
            "9" * 4300,
            "max_open_slots must be at most 2147483647, got a number of more than 38 digits",
            id="4300-digits",
        ),
        pytest.param("9" * 4301, "unreadable JSON: a number out of range", id="4301-digits"),
        ("0", "max_open_slots must be at least 1, got number 0"),
        ("-2147483649", "max_open_slots must be at least 1, got number -2147483649"),
        ("1.5", "max_open_slots must be an integer, got number 1.5"),
        ("1e400", "unreadable JSON: a number out of range"),
        ("true", "max_open_slots must be an integer, got boolean true"),
        ('"3"', "max_open_slots must be an integer, got string '3'"),
    ],
)
def test_counts_beyond_32_bits_are_refused(slots: str, reason: str) -> None:
    assert refused(strategy(slots)) == reason


def test_api_counts_have_the_same_bounds() -> None:
    record = {"type": "strategy", "strategy": "s1", "max_open_slots": 10**5000}
    assert refused_api(record) == (
        "max_open_slots must be at most 2147483647, got a number of more than 38 digits"
    )
    record["max_open_slots"] = -(10**5000)
    assert refused_api(record) == (
        "max_open_slots must be at least 1, got a number of more than 38 digits"
    )


# -- text ------------------------------------------------------------------------------


def halt(reason: str) -> str:
    return json.dumps({**HALT, "reason": reason})


@pytest.mark.parametrize(
    ("reason", "why"),
    [
        ("a\x00b", "reason has a control character U+0000 at character 2"),
        ("bell\x07", "reason has a control character U+0007 at character 5"),
        ("vt\x0b", "reason has a control character U+000B at character 3"),
        ("us\x1f", "reason has a control character U+001F at character 3"),
        ("\x1b[31mred", "reason has a control character U+001B at character 1"),
        ("del\x7f", "reason has a control character U+007F at character 4"),
        ("c1\x9b", "reason has a control character U+009B at character 3"),
        ("r" * 1001, "reason is longer than 1000 characters (1001)"),
        ("   ", "reason must not be blank"),
    ],
)
def test_free_text_is_bounded_and_storable(reason: str, why: str) -> None:
    assert refused(halt(reason)) == why
    assert refused_api({**HALT, "reason": reason}) == why
    with pytest.raises(InvalidInput, match="reason"):
        Halt("A", "ES", reason)


def test_free_text_within_the_limits() -> None:
    for reason in ("r" * 1000, "margin call 😀", "Börse geschlossen", "a\u200db", "a\tb\r\nc"):
        assert parse_line(halt(reason)) == Halt("A", "ES", reason)
    escaped = '{"type": "halt", "account": "A", "instrument": "ES", "reason": "\\ud83d\\ude00"}'
    assert parse_line(escaped) == Halt("A", "ES", "😀")


def test_a_lone_surrogate_in_free_text_is_refused() -> None:
    why = "reason has a lone surrogate U+D800 at character 2 (not Unicode text)"
    assert refused_api({**HALT, "reason": "a\ud800"}) == why
    with pytest.raises(InvalidInput, match="lone surrogate"):
        Halt("A", "ES", "\udfff")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exec_id": "e\x00"}, f"exec_id 'e\\x00' {UNPRINTABLE} U+0000 at character 2"),
        ({"account": "A\u2028"}, "account 'A\\u2028' has surrounding spaces"),
        ({"instrument": "E\u200bS"}, f"instrument 'E\\u200bS' {UNPRINTABLE} U+200B at character 2"),
        ({"strategy": "x" * 129}, "strategy is longer than 128 characters"),
        ({"exec_id": " e1"}, "exec_id ' e1' has surrounding spaces"),
    ],
)  # fmt: skip
def test_identifiers_name_what_is_wrong(changes: dict[str, str], reason: str) -> None:
    assert refused(line(**changes)) == reason


def test_an_identifier_of_128_characters_from_beyond_the_bmp_is_fine() -> None:
    assert read(line(exec_id="😀" * 128)).exec_id == "😀" * 128


def test_messages_quote_at_most_64_characters() -> None:
    key = "k" * 1_000
    clipped = f"'{'k' * 64}'... (1000 characters)"
    assert refused(line(**{key: "1"})) == f"unknown field {clipped} for type fill"
    assert refused(line(side=key)) == f"side must be one of BUY, SELL; got string {clipped}"
    assert refused(line(type=key)) == f"unknown type string {clipped}; expected one of {TYPES}"
    assert refused(line(price=key)) == f"price: {clipped} is not a decimal number"
    assert refused(line(ts=key)) == (
        f"ts: {clipped} is not an ISO 8601 time with an offset, e.g. 2026-03-02T14:30:00Z"
    )
    big = {**GOOD_FILL, "x" * 1_000_000: 1}
    assert len(refused_api(big)) < 200
    nul = "\x00" * 1_000
    reason = refused(line(side=nul))
    assert "\x00" not in reason and len(reason) < 400


def test_enumerated_values_are_case_insensitive_in_ascii_only() -> None:
    assert read(line(side="sell")).side is Side.SELL
    assert read(line(side="bUy")).side is Side.BUY
    assert refused(line(side="ſell")) == "side must be one of BUY, SELL; got string 'ſell'"


# -- the line --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (fill_text('"quantity": "2", "price": "1", "price": "2"'), "duplicate field 'price'"),
        (fill_text('"quantity": "2", "price": "1", "price": "1"'), "duplicate field 'price'"),
        (fill_text('"quantity": "2", "price": "1", "pr\\u0069ce": "1"'), "duplicate field 'price'"),
        (fill_text('"type": "fill", "quantity": "2", "price": "1"'), "duplicate field 'type'"),
        (fill_text('"type": "mark", "quantity": "2", "price": "1"'), "duplicate field 'type'"),
        (fill_text('"quantity": "2", "price": "1", "liquidation": true, "liquidation": true'),
         "duplicate field 'liquidation'"),
        (fill_text('"quantity": "2", "price": "1", "strategy": null, "strategy": null'),
         "duplicate field 'strategy'"),
        (fill_text('"quantity": "2", "price": "1", "exec_id": "e\\"2"'),
         "duplicate field 'exec_id'"),
        (fill_text('"quantity": "2", "price": {"a": 1, "a": 2}'), "duplicate field 'a' in 'price'"),
        (fill_text('"quantity": "2", "price": [1, {"b": {"a": 1, "a": 2}}]'),
         "duplicate field 'a' in 'price[1].b'"),
        ('{"type": "mark", "instrument": "ES", "price": "1", "instrument": "NQ"}',
         "duplicate field 'instrument'"),
        ('{"type": "strategy", "strategy": "s", "max_open_slots": 1, "max_open_slots": 1}',
         "duplicate field 'max_open_slots'"),
        ('{"type": "x", "type": "y"}', "duplicate field 'type'"),
    ],
)  # fmt: skip
def test_a_field_given_twice_is_refused(text: str, reason: str) -> None:
    assert refused(text) == reason


def test_escaped_quotes_and_backslashes_are_no_duplicates() -> None:
    text = fill_text(
        r'"quantity": "2", "price": "1", "client_order_id": "o\"1\\", "strategy": "\\"'
    )
    fill = read(text)
    assert (fill.client_order_id, fill.strategy) == ('o"1\\', "\\")


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"type": ["fill"]}, f"unknown type array; expected one of {TYPES}"),
        ({"type": {}}, f"unknown type object; expected one of {TYPES}"),
        ({"type": {"fill": 1}}, f"unknown type object; expected one of {TYPES}"),
        ({"type": True}, f"unknown type boolean true; expected one of {TYPES}"),
        ({"type": 1.5}, f"unknown type number 1.5; expected one of {TYPES}"),
        ({"type": "Fill"}, f"unknown type string 'Fill'; expected one of {TYPES}"),
        ({"type": None}, "missing field 'type'"),
    ],
)
def test_a_type_that_is_not_a_record_type_is_refused(
    record: dict[str, object], reason: str
) -> None:
    assert refused(json.dumps({**GOOD_FILL, **record})) == reason
    assert refused_api({**GOOD_FILL, **record}) == reason


LONE = (
    "malformed JSON: invalid \\u escape: a lone surrogate ({} at character {}); "
    "a character beyond U+FFFF is written as a pair such as \\ud83d\\ude00"
)


@pytest.mark.parametrize(
    ("value", "escape"),
    [
        ("e\\ud800", "\\ud800"),
        ("e\\uDBFF", "\\uDBFF"),
        ("e\\udc00", "\\udc00"),
        ("e\\ud800\\u0041", "\\ud800"),
        ("e\\ud800x\\udc00", "\\ud800"),
        ("e\\ud83d\\ude00\\ude00", "\\ude00"),
    ],
)
def test_a_lone_surrogate_escape_is_named(value: str, escape: str) -> None:
    text = line(exec_id="PLACEHOLDER").replace("PLACEHOLDER", value)
    at = text.index(escape, text.index("exec_id")) + 1
    if value == "e\\ud83d\\ude00\\ude00":
        at += len("\\ude00")
    assert refused(text) == LONE.format(escape, at)


def test_an_escaped_backslash_before_u_is_no_escape() -> None:
    text = line(exec_id="PLACEHOLDER").replace("PLACEHOLDER", "e\\\\ud800")
    assert read(text).exec_id == "e\\ud800"


def test_text_holding_a_lone_surrogate_is_refused_not_crashed() -> None:
    text = json.dumps({**GOOD_FILL, "exec_id": "e\ud800"}, ensure_ascii=False)
    at = text.index("\ud800") + 1
    assert refused(text) == f"not valid Unicode text: a lone surrogate U+D800 at character {at}"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[" * 32 + "]" * 32, "a record must be a JSON object, got array"),
        ("[" * 33 + "]" * 33, "JSON nested more than 32 levels deep"),
        ("[" * 60_000, "JSON nested more than 32 levels deep"),
        ('{"a":' * 40 + "1" + "}" * 40, "JSON nested more than 32 levels deep"),
        (fill_text('"quantity": "2", "price": "1e400"'), "price: '1e400' " + EXPONENT),
        (fill_text('"quantity": "2", "price": 1e400'), "unreadable JSON: a number out of range"),
        ('"just a string"', "a record must be a JSON object, got string 'just a string'"),
        ("null", "a record must be a JSON object, got null"),
    ],
)
def test_structure(text: str, reason: str) -> None:
    assert refused(text) == reason


def test_a_line_is_at_most_65536_characters() -> None:
    padding = MAX_LINE - len(line()) + 1
    longest = line()[:-1] + " " * (padding - 1) + "}"
    assert len(longest) == MAX_LINE
    assert read(longest).exec_id == "e1"
    too_long = longest[:-1] + " }"
    assert refused(too_long) == f"line is longer than 65536 characters ({MAX_LINE + 1})"
    huge = line(exec_id="x" * 1_000_000)
    [kept] = read_lines([huge])
    assert kept.error == f"line is longer than 65536 characters ({len(huge)})"
    assert kept.raw == huge[:MAX_LINE]


def test_refused_lines_are_kept_storable() -> None:
    nul = '{"type": "fill", "exec_id": "e\x00"}'
    surrogate = json.dumps({**GOOD_FILL, "exec_id": "e\ud800"}, ensure_ascii=False)
    not_utf8 = b'{"type": "fill", "exec_id": "\xff"}'
    kept = list(read_lines([nul, surrogate, not_utf8, line()]))
    assert [k.item is None for k in kept] == [True, True, True, False]
    assert kept[0].raw == nul.replace("\x00", "\ufffd")
    assert kept[1].raw == surrogate.replace("\ud800", "\ufffd")
    assert kept[2].raw == '{"type": "fill", "exec_id": "\ufffd"}'
    for k in kept[:3]:
        assert k.error is not None
        (k.raw + k.error).encode("utf-8")  # storable: no lone surrogate
        assert "\x00" not in k.raw + k.error


# -- the typed fast path ---------------------------------------------------------------

VALID: list[str | dict[str, object]] = [
    line(),
    line(
        client_order_id="o1",
        strategy="s1",
        commission="-0.5",
        commission_currency="USD",
        position_side="LONG",
        liquidation=True,
    ),
    line(strategy=None, liquidation=False, position_side=None, commission=None),
    line(exec_id='e"1\\', ts="2026-03-02T15:00:00.5+01:00"),
    json.dumps(
        {
            "type": "order",
            "client_order_id": "o1",
            "account": "A",
            "strategy": "s1",
            "instrument": "ES",
            "side": "SELL",
            "quantity": "1",
            "intent": "take_profit",
            "position_side": "SHORT",
            "bracket_id": "b1",
            "ts": "2026-03-02T14:00:00Z",
        }
    ),
    {"type": "mark", "instrument": "ES", "price": "6850.25", "ts": "2026-03-02T14:00:00Z"},
    {"type": "account", "account": "A", "venue": "CME", "mode": "SIM",
     "position_mode": "netting", "lot_method": "fifo"},
    {"type": "instrument", "instrument": "ES", "kind": "future", "multiplier": "50",
     "quote_currency": "USD", "settlement_currency": "USD", "tick_size": "0.25",
     "inverse": False, "allow_negative_prices": None},
    {"type": "strategy", "strategy": "s1", "adopt_orphans": True, "max_open_slots": 3},
    {"type": "cancel", "client_order_id": "o1"},
    {"type": "transfer", "account": "A", "instrument": "ES", "from_strategy": "s1",
     "to_strategy": "s2", "quantity": "1", "transfer_id": "t1"},
    {"type": "halt", "account": "A", "instrument": "ES", "reason": "news"},
    {"type": "resume", "account": "A", "instrument": "ES"},
    {"type": "broker_position", "account": "A", "instrument": "ES", "quantity": "-2",
     "avg_price": "100"},
    {"type": "reconcile", "run": "r1", "account": "A", "instrument": "ES",
     "position_side": "BOTH", "quantity": "0", "policy": "report", "price_tolerance": "0.001",
     "ts": "2026-03-02T14:00:00Z", "with_history": True},
]  # fmt: skip


@pytest.mark.parametrize("text", VALID)
def test_valid_lines_take_the_typed_path_and_read_as_the_general_reader_does(
    text: str | dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    if isinstance(text, dict):
        text = json.dumps(text)
    general = parse_record(json.loads(text))

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("the general reader was used for a valid line")

    monkeypatch.setattr(records, "parse_record", fail)
    assert parse_line(text) == general
