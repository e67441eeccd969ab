"""Exact decimals (docs/accounting.md, Numbers; docs/format.md, Limits): parsing, canonical
text, 18-digit half-even quantization."""

from __future__ import annotations

from decimal import Decimal

import pytest

from posledger.domain.numbers import (
    D,
    amount_problem,
    exact,
    fmt,
    fmt_opt,
    parse_amount,
    parse_decimal,
    q18,
    quote,
)


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "1",
        "-1",
        "1.5",
        "-1.5",
        "100",
        "0.000000000000000001",
        "-0.000000000000000001",
        "12345678901234567890.123456789012345678",
        "99999999999999999999",
        "6852.25",
    ],
)
def test_canonical_text_round_trips(text):
    value = parse_decimal(text)
    assert fmt(value) == text
    assert parse_decimal(fmt(value)) == value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1.500"), "1.5"),
        (Decimal("100.00"), "100"),
        (Decimal("1E+3"), "1000"),
        (Decimal("1.0E+1"), "10"),
        (Decimal("1E-18"), "0.000000000000000001"),
        (Decimal("-0"), "0"),
        (Decimal("-0.000"), "0"),
        (Decimal("0E-18"), "0"),
        (Decimal("0E+5"), "0"),
        (Decimal("-2.50E+2"), "-250"),
        (Decimal("5.000000000000000000"), "5"),
    ],
)
def test_fmt_is_plain_without_exponent_trailing_zeros_or_minus_zero(value, text):
    out = fmt(value)
    assert out == text
    assert "e" not in out.lower()
    assert out != "-0"


def test_fmt_opt():
    assert fmt_opt(None) is None
    assert fmt_opt(Decimal("2.0")) == "2"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1.", Decimal(1)),
        (".5", Decimal("0.5")),
        ("+2", Decimal(2)),
        ("1e3", Decimal(1000)),
        ("1.0000000000000000000", Decimal(1)),  # 19 digits, but all trailing zeros
        ("-0", Decimal(0)),
    ],
)
def test_parse_decimal_accepts_other_spellings_of_storable_values(text, value):
    assert parse_decimal(text) == value


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "not a decimal number"),
        ("abc", "not a decimal number"),
        ("1,5", "not a decimal number"),
        ("NaN", "not a decimal number"),
        ("inf", "not a decimal number"),
        ("0x10", "not a decimal number"),
        ("1.0000000000000000001", "more than 18 digits after the decimal point"),
        ("1e-19", "more than 18 digits after the decimal point"),
        ("123456789012345678901", "more than 20 digits before the decimal point"),
        ("1e20", "more than 20 digits before the decimal point"),
    ],
)
def test_parse_decimal_refuses(text, words):
    with pytest.raises(ValueError, match=words):
        parse_decimal(text)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.0000000000000000005", "0"),  # tie -> even (0)
        ("0.0000000000000000015", "0.000000000000000002"),  # tie -> even (2)
        ("0.0000000000000000025", "0.000000000000000002"),  # tie -> even (2)
        ("0.00000000000000000251", "0.000000000000000003"),  # above the tie
        ("-0.0000000000000000015", "-0.000000000000000002"),
        ("2.0000000000000000004999", "2"),
        ("0.6666666666666666666666", "0.666666666666666667"),
    ],
)
def test_q18_is_half_even(value, expected):
    with exact():
        result = q18(Decimal(value))
    assert result == Decimal(expected)
    assert result.as_tuple().exponent == -18


def test_exact_context_does_not_round_sums_or_products_of_stored_amounts():
    big = D("99999999999999999999.999999999999999999")  # 10**20 - 10**-18
    with exact():
        # (10**20 - 10**-18)**2 = 10**40 - 2 * 10**2 + 10**-36
        # built from text: Decimal(str) is exact whatever the context's precision
        assert big * big == Decimal("9" * 37 + "800." + "0" * 35 + "1")
        assert big + big == Decimal("199999999999999999999.999999999999999998")


def test_d_refuses_floats_and_bools():
    with pytest.raises(TypeError):
        D(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        D(True)
    assert D(3) == Decimal(3)
    assert D("2.5") == Decimal("2.5")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("١", "only the ASCII digits 0-9"),  # Decimal() reads Arabic-Indic digits; we do not
        ("１.５", "only the ASCII digits 0-9"),
        (" 1", "surrounding spaces"),
        ("1\n", "surrounding spaces"),
        ("1e999999999", "more than 20 digits before the decimal point"),
        ("-1E+999999999999", "more than 20 digits before the decimal point"),
        ("1e-999999999999", "more than 18 digits after the decimal point"),
    ],
)
def test_parse_decimal_is_ascii_only_and_never_overflows(text, words):
    with pytest.raises(ValueError, match=words):
        parse_decimal(text)


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "-0",
        "7",
        "-7.25",
        "00001.50",
        "99999999999999999999",
        "-99999999999999999999.999999999999999999",
        "0.000000000000000001",
    ],
)
def test_parse_amount_reads_the_record_grammar(text):
    assert parse_amount(text) == Decimal(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1e3", "'1e3' is not a decimal number in plain notation: write it without an exponent"),
        ("+2", "'+2' is not a decimal number: write it without a '+' sign"),
        ("1.", "'1.' is not a decimal number: the decimal point needs digits on both sides"),
        (".5", "'.5' is not a decimal number: the decimal point needs digits on both sides"),
        ("1.0000000000000000000", "has more than 18 digits after the decimal point"),
        ("0" * 21, "has more than 20 digits before the decimal point"),
        ("١", "only the ASCII digits 0-9, '-' and '.' may be used"),
        ("Infinity", "'Infinity' is not a decimal number"),
        ("x" * 100, f"'{'x' * 64}'... (100 characters) is not a decimal number"),
    ],
)
def test_parse_amount_refuses_every_other_spelling(text, reason):
    with pytest.raises(ValueError) as caught:
        parse_amount(text)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (Decimal("99999999999999999999.999999999999999999"), None),
        (Decimal("1.000000000000000000000000"), None),
        (Decimal("1E+19"), None),
        (Decimal("0E-999999"), None),
        (Decimal("1E+20"), "has more than 20 digits before the decimal point"),
        (Decimal("1E-19"), "has more than 18 digits after the decimal point"),
        (Decimal("NaN"), "is not a finite number"),
        (Decimal("-Infinity"), "is not a finite number"),
    ],
)
def test_amount_problem(value, problem):
    assert amount_problem(value) == problem


def test_quote_escapes_and_clips():
    assert quote("abc") == "'abc'"
    assert quote("a\x00\ud800") == "'a\\x00\\ud800'"
    assert quote("x" * 65) == f"'{'x' * 64}'... (65 characters)"
