"""Hostile input never reaches the database as an error (docs/format.md, "Limits").

Lines with values at and beyond every limit -- amounts of 20/21 integer and 18/19
fractional digits, times at and past the range and offsets, counts at 2**31 - 1 / 2**31 /
2**63, text with NUL, control characters, lone surrogates or too long, duplicate fields, a
type that is not a string, lines too long or nested too deep -- are ingested between two
valid fills, through the public API only, on every database: ``ingest`` does not raise,
a line beyond a limit is rejected and kept with its reason, a line at a limit is applied,
the fills around it are applied, and ``verify`` finds the journal and the projections in
agreement.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from posledger import Ledger, open_ledger
from posledger.domain.timestamps import LATEST_NS

from .helpers import T

ACCOUNT = "ACC"
INSTRUMENT = "ES"


@dataclass(frozen=True)
class Case:
    """One middle line: a record to write as JSON (with ``{n}`` in its strings made unique
    per example), or raw text; and what must become of it."""

    record: dict[str, Any] | None = None
    text: str | None = None
    reason: str | None = None
    """A fragment of the rejection reason; None: the line is within the limits (applied)."""
    fresh: bool = False
    """The line needs an instrument of its own (``{inst}``), registered first."""

    def line(self, n: int, inst: str) -> str:
        def fill_in(value: Any) -> Any:
            if isinstance(value, str):
                return value.replace("{n}", str(n)).replace("{inst}", inst)
            if isinstance(value, dict):
                return {fill_in(k): fill_in(v) for k, v in value.items()}
            if isinstance(value, list):
                return [fill_in(v) for v in value]
            return value

        if self.text is not None:
            return fill_in(self.text)
        return json.dumps(fill_in(self.record), ensure_ascii=False)


def fill(**changes: Any) -> dict[str, Any]:
    return {
        "type": "fill",
        "exec_id": "h{n}",
        "account": ACCOUNT,
        "instrument": INSTRUMENT,
        "side": "BUY",
        "quantity": "1",
        "price": "100",
        "ts": f"{T}14:00:00Z",
        **changes,
    }


def mark(price: str = "1", ts: str = f"{T}14:00:00Z") -> dict[str, Any]:
    return {"type": "mark", "instrument": "{inst}", "price": price, "ts": ts}


def halt(reason: str) -> dict[str, Any]:
    return {"type": "halt", "account": ACCOUNT, "instrument": "{inst}", "reason": reason}


def strategy(slots: int) -> str:
    return '{"type": "strategy", "strategy": "s{n}", "max_open_slots": ' + str(slots) + "}"


def digits(count: int) -> st.SearchStrategy[str]:
    """``count`` ASCII digits, the first not 0."""
    return st.builds(
        lambda first, rest: first + rest,
        st.sampled_from("123456789"),
        st.text("0123456789", min_size=count - 1, max_size=count - 1),
    )


BEFORE_POINT = "has more than 20 digits before the decimal point"
AFTER_POINT = "has more than 18 digits after the decimal point"

# -- amounts -----------------------------------------------------------------------------

too_many_integer_digits = st.builds(
    lambda field, sign, whole, fraction: Case(
        fill(**{field: f"{sign}{whole}{fraction}"}), reason=BEFORE_POINT
    ),
    st.sampled_from(["quantity", "price", "commission"]),
    st.sampled_from(["", "-"]),
    st.integers(21, 24).flatmap(digits),
    st.sampled_from(["", ".5", ".123456789012345678"]),
)

too_many_fraction_digits = st.builds(
    lambda field, whole, fraction: Case(fill(**{field: f"{whole}.{fraction}"}), reason=AFTER_POINT),
    st.sampled_from(["quantity", "price", "commission"]),
    st.sampled_from(["0", "1", "9" * 20]),
    st.integers(19, 24).flatmap(lambda k: st.text("0123456789", min_size=k, max_size=k)),
)

other_spellings = st.builds(
    lambda field, spelling: Case(fill(**{field: spelling}), reason="is not a decimal number"),
    st.sampled_from(["quantity", "price", "commission"]),
    st.sampled_from(
        [
            "1e3",
            "1E+30",
            "1e-19",
            "+1",
            "1.",
            ".5",
            " 1",
            "1 ",
            "١",
            "１",
            "1,5",
            "NaN",
            "-Infinity",
            "",
        ]
    ),
)

json_numbers = st.builds(
    lambda field, number: Case(
        {**fill(), field: number}, reason=f"{field} must be a decimal string such as"
    ),
    st.sampled_from(["quantity", "price", "commission"]),
    st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False)),
)

amounts_at_the_limits = st.builds(
    lambda price: Case(mark(price=price), fresh=True),
    st.one_of(
        digits(20),
        st.builds(
            lambda w, f: f"-{w}.{f}", digits(20), st.text("0123456789", min_size=18, max_size=18)
        ),
        st.just("0.000000000000000001"),
        st.just("-99999999999999999999.999999999999999999"),
    ),
)

AT_THE_LIMITS = Case(
    fill(
        instrument="{inst}",
        quantity="99999999999999999999",
        price="0.000000000000000001",
        commission="-0.000000000000000001",
    ),
    fresh=True,
)

# -- times -------------------------------------------------------------------------------

OFFSETS = st.builds(
    lambda sign, h, m: f"{sign}{h:02d}:{m:02d}",
    st.sampled_from("+-"),
    st.integers(0, 23),
    st.integers(0, 59),
)

after_the_range = st.builds(
    lambda year, offset: Case(fill(ts=f"{year:04d}-06-15T12:00:00{offset}"), reason="is after"),
    st.integers(2263, 9999),
    st.one_of(st.just("Z"), OFFSETS),
)
before_the_range = st.builds(
    lambda year, offset: Case(fill(ts=f"{year:04d}-06-15T12:00:00{offset}"), reason="is before"),
    st.integers(1, 1968),
    st.one_of(st.just("Z"), OFFSETS),
)
impossible_offsets = st.builds(
    lambda hm, sign, colon: Case(
        fill(ts=f"{T}14:00:00{sign}{hm[0]:02d}{colon}{hm[1]:02d}"),
        reason="has an impossible UTC offset",
    ),
    st.tuples(st.integers(0, 99), st.integers(0, 99)).filter(lambda hm: hm[0] > 23 or hm[1] > 59),
    st.sampled_from("+-"),
    st.sampled_from([":", ""]),
)
too_fine = st.builds(
    lambda fraction: Case(
        fill(ts=f"{T}14:00:00.{fraction}Z"),
        reason="has more than 9 fractional digits (nanoseconds)",
    ),
    st.integers(10, 30).flatmap(lambda k: st.text("0123456789", min_size=k, max_size=k)),
)
EDGES = [
    Case(fill(ts="2262-01-01T00:00:00Z"), reason="is after"),
    Case(fill(ts="2261-12-31T23:59:59.999999999-00:01"), reason="is after"),
    Case(fill(ts="2262-04-11T23:47:16.854775808Z"), reason="is after"),  # 2**63 ns
    Case(fill(ts="9999-12-31T23:59:59-23:59"), reason="is after"),
    Case(fill(ts="1969-12-31T23:59:59.999999999Z"), reason="is before"),
    Case(fill(ts="1970-01-01T00:00:00+00:01"), reason="is before"),
    Case(fill(ts=f"{T}14:00:00"), reason="offset"),
    Case(fill(ts="٢٠٢٦-03-02T14:00:00Z"), reason="non-ASCII"),
    Case(mark(ts="1970-01-01T00:00:00Z"), fresh=True),
    Case(mark(ts="1969-12-31T23:00:00-01:00"), fresh=True),
    Case(mark(ts="2261-12-31T23:59:59.999999999Z"), fresh=True),
    Case(mark(ts="2262-01-01T00:59:59.999999999+01:00"), fresh=True),
]

# -- counts ------------------------------------------------------------------------------

COUNTS = [
    Case(text=strategy(2**31 - 1)),
    Case(text=strategy(2**31), reason="max_open_slots must be at most 2147483647"),
    Case(text=strategy(2**63 - 1), reason="max_open_slots must be at most 2147483647"),
    Case(text=strategy(2**63), reason="max_open_slots must be at most 2147483647"),
    Case(text=strategy(2**64), reason="max_open_slots must be at most 2147483647"),
    Case(text=strategy(10**40), reason="max_open_slots must be at most 2147483647"),
    Case(text=strategy(-(2**63)), reason="max_open_slots must be at least 1"),
    Case(text=strategy(0), reason="max_open_slots must be at least 1"),
]
counts = st.builds(
    lambda slots: Case(
        text=strategy(slots),
        reason=None if 1 <= slots < 2**31 else "max_open_slots must be at",
    ),
    st.one_of(st.integers(2**31 - 3, 2**31 + 3), st.integers(-(2**65), 2**65)),
)

# -- text --------------------------------------------------------------------------------

CONTROL = st.sampled_from(
    [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)] if chr(c) not in "\t\n\r"]
)
SURROGATE = st.integers(0xD800, 0xDFFF).map(chr)

control_in_reason = st.builds(
    lambda before, char, after: Case(halt(before + char + after), reason="control character"),
    st.text("abc ", min_size=1, max_size=20),
    CONTROL,
    st.text("abc", max_size=20),
).filter(lambda case: case.record["reason"].strip())
too_long_reason = st.integers(1001, 5000).map(
    lambda k: Case(halt("r" * k), reason="reason is longer than 1000 characters")
)
lone_surrogate_escape = st.builds(
    lambda field, unit: Case(
        text=json.dumps(fill(**{field: "PLACEHOLDER"})).replace("PLACEHOLDER", f"x\\u{unit:04x}"),
        reason="a lone surrogate",
    ),
    st.sampled_from(["exec_id", "account", "instrument", "strategy", "client_order_id"]),
    st.integers(0xD800, 0xDFFF),
)
raw_surrogate = st.builds(
    lambda field, char: Case(
        text=json.dumps(fill(**{field: f"x{char}"}), ensure_ascii=False),
        reason="not valid Unicode text: a lone surrogate",
    ),
    st.sampled_from(["exec_id", "account", "instrument", "strategy"]),
    SURROGATE,
)
nul_in_identifiers = st.builds(
    lambda field, char: Case(fill(**{field: f"x{char}y"}), reason="has an unprintable character"),
    st.sampled_from(["exec_id", "account", "instrument", "strategy", "commission_currency"]),
    st.sampled_from(["\x00", "\x1b", "\x7f", "\u200b", "\ufeff", "\u2028"]),
)
too_long_identifiers = st.builds(
    lambda field, k: Case(fill(**{field: "i" * k}), reason="is longer than 128 characters"),
    st.sampled_from(["exec_id", "account", "instrument", "strategy", "client_order_id"]),
    st.integers(129, 2000),
)
TEXT = [
    Case(halt("a\x00b"), reason="control character U+0000"),
    Case(halt("\ud800"), reason="not valid Unicode text"),  # raw, in a str line
    Case(
        text=json.dumps(halt("PLACEHOLDER")).replace("PLACEHOLDER", "\\ud800"),
        reason="lone surrogate",
    ),
    Case(halt("r" * 1000), fresh=True),
    Case(halt("margin call 😀 \u200d"), fresh=True),
    Case(fill(exec_id="h{n}" + "😀" * 124)),
    Case(text=json.dumps(fill()).replace('"h{n}"', '"h{n}\x00"'), reason="malformed JSON"),
    Case(text=json.dumps(fill()) + "\x00", reason="malformed JSON"),
    Case(text='{"type": "fill", "exec_id": "h{n}", "\\u0000": 1}', reason="unknown field '\\x00'"),
]

# -- structure ---------------------------------------------------------------------------

FILL_FIELDS = list(fill())


@st.composite
def duplicates(draw: st.DrawFn) -> Case:
    record = fill()
    field = draw(st.sampled_from(FILL_FIELDS))
    again = json.dumps(record[field] if draw(st.booleans()) else draw(st.sampled_from(["2", "x"])))
    members = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in record.items()]
    members.insert(draw(st.integers(0, len(members))), f"{json.dumps(field)}: {again}")
    return Case(text="{" + ", ".join(members) + "}", reason=f"duplicate field '{field}'")


not_a_string_type = st.builds(
    lambda kind: Case({**fill(), "type": kind}, reason="unknown type"),
    st.one_of(
        st.lists(st.sampled_from(["fill", "mark"]), max_size=2),
        st.dictionaries(st.sampled_from(["fill", "type"]), st.integers(), max_size=2),
        st.integers(),
        st.booleans(),
        st.floats(allow_nan=False, allow_infinity=False),
    ),
)
long_keys = st.integers(65, 60_000).map(
    lambda k: Case({**fill(), "k" * k: "1"}, reason=f"'... ({k} characters) for type fill")
)
X = '{"type": "fill", "exec_id": "h{n}", "x": '
STRUCTURE = [
    Case(text=json.dumps(fill(exec_id="h{n}" + " " * 70_000)), reason="line is longer than 65536"),
    Case(text=X + "[" * 40 + "]" * 40 + "}", reason="nested more than 32"),
    Case(text=X + "[" * 60_000, reason="nested more than 32"),
    Case(text=X + "1e400}", reason="a number out of range"),
    Case(text=X + "9" * 5000 + "}", reason="a number out of range"),
    Case(
        text=json.dumps(fill(price={"a": 1})).replace('{"a": 1}', '{"a": 1, "a": 2}'),
        reason="duplicate field 'a' in 'price'",
    ),
    Case(fill(side="ſell"), reason="side must be one of BUY, SELL; got string 'ſell'"),
]

HOSTILE = st.one_of(
    too_many_integer_digits,
    too_many_fraction_digits,
    other_spellings,
    json_numbers,
    amounts_at_the_limits,
    st.just(AT_THE_LIMITS),
    after_the_range,
    before_the_range,
    impossible_offsets,
    too_fine,
    st.sampled_from(EDGES),
    counts,
    st.sampled_from(COUNTS),
    control_in_reason,
    too_long_reason,
    lone_surrogate_escape,
    raw_surrogate,
    nul_in_identifiers,
    too_long_identifiers,
    st.sampled_from(TEXT),
    duplicates(),
    not_a_string_type,
    long_keys,
    st.sampled_from(STRUCTURE),
)


def storable(text: str) -> str:
    """A refused line as docs/format.md says it is kept."""
    return "".join(
        "\ufffd" if char == "\x00" or 0xD800 <= ord(char) <= 0xDFFF else char
        for char in text[:65_536]
    )


@pytest.fixture
def prepared(db_url: str) -> Iterator[tuple[Ledger, Iterator[int]]]:
    # The ledger's clock at the last time it can store, so that marks dated anywhere in
    # the range are not "ahead of the clock" (docs/accounting.md) and the edges apply.
    with open_ledger(db_url, clock=lambda: LATEST_NS) as ledger:
        outcomes = [
            ledger.register_account(
                account=ACCOUNT, venue="V", mode="SIM", position_mode="netting"
            ),
            ledger.register_instrument(
                instrument=INSTRUMENT,
                kind="future",
                multiplier="5",
                quote_currency="USD",
                settlement_currency="USD",
            ),
        ]
        assert all(outcome.applied for outcome in outcomes), outcomes
        yield ledger, itertools.count(1)


def valid_fill(n: int, side: str) -> str:
    return json.dumps(fill(exec_id=f"v{n}{side}", side=side, ts=f"{T}15:00:00Z"))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(case=HOSTILE, as_bytes=st.booleans())
@example(case=Case(fill(quantity="1" * 21), reason=BEFORE_POINT), as_bytes=False)
@example(case=AT_THE_LIMITS, as_bytes=True)
@example(case=EDGES[2], as_bytes=True)
@example(case=COUNTS[3], as_bytes=False)
@example(case=TEXT[0], as_bytes=True)
@example(case=TEXT[1], as_bytes=False)
@example(case=TEXT[2], as_bytes=False)
@example(case=STRUCTURE[0], as_bytes=False)
@example(
    case=Case(text='{"type": ["fill"], "exec_id": "h{n}"}', reason="unknown type array"),
    as_bytes=False,
)
@example(
    case=Case(
        text=json.dumps(fill()).replace('"price": "100"', '"price": "100", "price": "1"'),
        reason="duplicate field 'price'",
    ),
    as_bytes=False,
)
def test_hostile_lines_are_rejected_cleanly_between_valid_fills(
    prepared: tuple[Ledger, Iterator[int]], case: Case, as_bytes: bool
) -> None:
    ledger, counter = prepared
    n = next(counter)
    inst = f"F{n}"
    if case.fresh:
        registered = ledger.register_instrument(
            instrument=inst,
            kind="future",
            multiplier="1",
            quote_currency="USD",
            settlement_currency="USD",
        )
        assert registered.applied, registered
    middle = case.line(n, inst)
    sent: str | bytes = middle
    if as_bytes:
        with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate has no UTF-8
            sent = middle.encode("utf-8")

    report = ledger.ingest([valid_fill(n, "BUY"), sent, valid_fill(n, "SELL")])

    assert report.lines == 3
    if case.reason is None:
        assert (report.applied, report.rejected) == (3, 0), report.rejections
    else:
        assert (report.applied, report.rejected) == (2, 1), (middle[:200], report)
        [(number, reason)] = report.rejections
        assert number == 2
        assert case.reason in reason, (middle[:200], reason)
        assert len(reason) < 1000
        kept = ledger.rejected_inputs()
        assert any(r["reason"] == reason and r["raw"] == storable(middle) for r in kept), reason
    verified = ledger.verify()
    assert verified.ok, verified.problems
