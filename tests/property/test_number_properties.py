"""Canonical decimal text and 18-digit quantization (DESIGN §4, §7)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from posledger.domain.numbers import exact, fmt, parse_decimal, q18

HALF = Decimal("5E-19")


@st.composite
def storable(draw: st.DrawFn) -> Decimal:
    """Any amount the ledger stores: at most 20 integer and 18 fractional digits."""
    scale = draw(st.integers(0, 18))
    units = draw(st.integers(-(10 ** (20 + scale)) + 1, 10 ** (20 + scale) - 1))
    return Decimal(f"{units}E-{scale}")  # from text: exact, whatever the context


@given(storable())
def test_fmt_is_canonical_and_round_trips(value):
    text = fmt(value)
    assert "e" not in text.lower()
    assert text != "-0"
    if "." in text:
        assert not text.endswith("0")
        assert not text.endswith(".")
    assert parse_decimal(text) == value
    assert fmt(parse_decimal(text)) == text
    # other spellings of the same value give the same canonical text
    assert fmt(parse_decimal(format(value, "f"))) == text
    with exact():  # normalize() rounds to the context's precision: use the ledger's
        normal = value.normalize()
    assert fmt(normal) == text


@given(st.integers(-(10**40), 10**40), st.integers(19, 24))
def test_q18_rounds_to_nearest_with_ties_to_even(units, scale):
    value = Decimal(f"{units}E-{scale}")
    with exact():
        rounded = q18(value)
        error = abs(rounded - value)
    assert rounded.as_tuple().exponent == -18
    assert error <= HALF
    if error == HALF:
        assert rounded.as_tuple().digits[-1] % 2 == 0
