"""Exact decimal arithmetic for money, prices and quantities.

Every amount is a :class:`~decimal.Decimal`. Results that do not terminate (averages,
inverse P&L, pro-rata splits) and products with more than 18 fractional digits are
quantized to 18 fractional digits, half-even, at the moment they are computed, so the
in-memory state, a replay and every database agree digit for digit.

Domain code computes inside :func:`exact`, a context with enough precision that no sum or
product of two stored amounts (at most 20 integer and 18 fractional digits) is rounded.
Intermediate results are rounded with ``ROUND_05UP``, which makes the final half-even
quantization free of double-rounding errors.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from decimal import (
    ROUND_05UP,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from functools import lru_cache

__all__ = [
    "MAX_FRACTION_DIGITS",
    "MAX_INTEGER_DIGITS",
    "ONE",
    "PRECISION",
    "ZERO",
    "D",
    "exact",
    "fmt",
    "fmt_opt",
    "parse_decimal",
    "q18",
]

MAX_FRACTION_DIGITS = 18
MAX_INTEGER_DIGITS = 20

ZERO = Decimal(0)
ONE = Decimal(1)
_Q18 = Decimal(1).scaleb(-MAX_FRACTION_DIGITS)

PRECISION = 120
"""Significant digits of the domain's context: no stored amount's sum or product rounds."""

_CONTEXT = Context(
    prec=PRECISION,
    rounding=ROUND_05UP,
    Emin=-999_999,
    Emax=999_999,
    traps=[InvalidOperation, DivisionByZero, Overflow],
)

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def exact() -> AbstractContextManager[Context]:
    """The decimal context all domain arithmetic runs in.

    Domain entry points enter it unless the caller already runs at :data:`PRECISION`
    (a service applying many inputs enters it once)."""
    return localcontext(_CONTEXT)


def q18(value: Decimal) -> Decimal:
    """Quantize to 18 fractional digits, half-even. Call within :func:`exact`."""
    return value.quantize(_Q18, ROUND_HALF_EVEN)


_PLAIN = re.compile(r"-?(\d{1,20})(?:\.(\d{0,18}))?")


def parse_decimal(text: str) -> Decimal:
    """Parse a decimal string exactly, refusing what the ledger cannot store.

    Raises ``ValueError`` with a message fit for a user.
    """
    if _PLAIN.fullmatch(text):
        # The common case: plain notation within 20 integer and 18 fractional digits.
        return Decimal(text)
    stripped = text.strip()
    if not _NUMBER.fullmatch(stripped):
        raise ValueError(f"{text!r} is not a decimal number")
    value = Decimal(stripped)
    if not value:
        return ZERO
    normal = value.normalize(_CONTEXT)
    exponent = normal.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent < -MAX_FRACTION_DIGITS:
        raise ValueError(
            f"{text!r} has more than {MAX_FRACTION_DIGITS} digits after the decimal point"
        )
    if normal.adjusted() >= MAX_INTEGER_DIGITS:
        raise ValueError(
            f"{text!r} has more than {MAX_INTEGER_DIGITS} digits before the decimal point"
        )
    return normal


def D(value: str | int | Decimal) -> Decimal:
    """Build a Decimal from a string, an int or a Decimal; never from a float."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"amounts are str, int or Decimal, never {type(value).__name__}")
    if isinstance(value, int):
        return Decimal(value)
    return parse_decimal(value)


@lru_cache(maxsize=8192)
def fmt(value: Decimal) -> str:
    """Canonical text of an amount: plain notation, no exponent, no trailing zeros.

    Cached by value: equal amounts have one canonical text, and the same prices and
    quantities come back again and again."""
    if not value:
        return "0"
    text = str(value)
    if "E" in text:
        return format(value.normalize(_CONTEXT), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def fmt_opt(value: Decimal | None) -> str | None:
    return None if value is None else fmt(value)
