"""Canonical decimal text and 18-digit quantization (docs/accounting.md, Numbers;
docs/format.md, Limits)."""

from __future__ import annotations

from decimal import Context, Decimal

from hypothesis import given
from hypothesis import strategies as st

from posledger.domain.numbers import amount_problem, exact, fmt, parse_amount, parse_decimal, q18

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


@given(storable())
def test_canonical_text_follows_the_record_grammar(value):
    # the journal keeps fmt()'s text and replay reads it back by the strict grammar
    assert parse_amount(fmt(value)) == value


@given(storable(), st.integers(0, 30))
def test_api_decimals_within_the_limits_are_taken_whatever_their_exponent(value, zeros):
    # zeros after the last significant digit are no digits beyond the limits
    sign, digits, exponent = value.as_tuple()
    padded = Decimal((sign, (*digits, *(0,) * zeros), exponent - zeros))
    assert padded == value
    assert amount_problem(padded) is None
    assert amount_problem(value.normalize(Context(prec=60))) is None


@given(
    st.integers(0, 10**22),
    st.integers(-25, 25),
    st.booleans(),
)
def test_amount_problem_agrees_with_the_digit_counts(units, exponent, negative):
    value = Decimal(f"{'-' if negative else ''}{units}E{exponent}")
    text = format(value, "f")
    whole, _, fraction = text.lstrip("-").partition(".")
    whole, fraction = whole.lstrip("0"), fraction.rstrip("0")
    fits = len(whole) <= 20 and len(fraction) <= 18
    assert (amount_problem(value) is None) == fits
