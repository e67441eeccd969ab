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
    "amount_problem",
    "exact",
    "fmt",
    "fmt_opt",
    "minus",
    "parse_amount",
    "parse_decimal",
    "q18",
    "quote",
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


def exact() -> AbstractContextManager[Context]:
    """The decimal context all domain arithmetic runs in.

    Domain entry points enter it unless the caller already runs at :data:`PRECISION`
    (a service applying many inputs enters it once)."""
    return localcontext(_CONTEXT)


def minus(a: Decimal, b: Decimal) -> Decimal:
    """``a - b`` exactly (in the domain's context, whatever the caller's)."""
    return _CONTEXT.subtract(a, b)


def q18(value: Decimal) -> Decimal:
    """Quantize to 18 fractional digits, half-even. Call within :func:`exact`."""
    return value.quantize(_Q18, ROUND_HALF_EVEN)


# The amount grammar of input records (docs/format.md, "Limits"): ASCII digits, an optional
# leading minus, an optional decimal point with digits on both sides; nothing else.
_AMOUNT = re.compile(r"-?[0-9]{1,20}(?:\.[0-9]{1,18})?")
_UNBOUNDED = re.compile(r"-?([0-9]+)(?:\.([0-9]+))?")
# Other spellings :func:`parse_decimal` also reads (code and command-line options).
_SPELLING = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_EXPONENT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][+-]?[0-9]+")

QUOTED = 64
"""At most this many characters of an input are quoted in a message."""


def quote(text: str) -> str:
    """``text`` quoted for a message: ``repr`` (which escapes NUL, lone surrogates and every
    other unprintable character), clipped to :data:`QUOTED` characters."""
    if len(text) <= QUOTED:
        return repr(text)
    return f"{text[:QUOTED]!r}... ({len(text)} characters)"


def _too_many(fraction: bool) -> str:
    if fraction:
        return f"has more than {MAX_FRACTION_DIGITS} digits after the decimal point"
    return f"has more than {MAX_INTEGER_DIGITS} digits before the decimal point"


@lru_cache(maxsize=8192)
def parse_amount(text: str) -> Decimal:
    """Read an amount of an input record: ``-?[0-9]{1,20}(\\.[0-9]{1,18})?``, nothing else.

    No sign ``+``, exponent, spaces, separators, bare decimal point, NaN, Infinity or
    non-ASCII digit. Raises ``ValueError`` with a message fit for a user. Cached by text:
    the same prices and quantities come back again and again (a refusal is not cached).
    """
    if _AMOUNT.fullmatch(text):
        return Decimal(text)
    raise ValueError(f"{quote(text)} {_amount_text_problem(text)}")


def _amount_text_problem(text: str) -> str:
    """Why ``text`` does not follow the amount grammar (it does not)."""
    match = _UNBOUNDED.fullmatch(text)
    if match is not None:
        whole, fraction = match.groups()
        return _too_many(len(whole) <= MAX_INTEGER_DIGITS and fraction is not None)
    what = "is not a decimal number"
    if not text:
        return what
    if not text.isascii():
        return f"{what}: only the ASCII digits 0-9, '-' and '.' may be used"
    if text != text.strip():
        return f"{what}: it has surrounding spaces"
    if _EXPONENT.fullmatch(text):
        return f"{what} in plain notation: write it without an exponent (1000, not 1e3)"
    if text.startswith("+"):
        return f"{what}: write it without a '+' sign"
    if _SPELLING.fullmatch(text):
        return f"{what}: the decimal point needs digits on both sides (0.5, not .5)"
    return what


def amount_problem(value: Decimal) -> str | None:
    """Why a Decimal cannot be stored (not finite, or more than 20 integer or 18 fractional
    digits once leading and trailing zeros are dropped), or None."""
    if not value.is_finite():
        return "is not a finite number"
    if not value:
        return None
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    trailing = len(digits) - len(bytes(digits).rstrip(b"\x00"))
    if -(exponent + trailing) > MAX_FRACTION_DIGITS:
        return _too_many(True)
    if value.adjusted() >= MAX_INTEGER_DIGITS:
        return _too_many(False)
    return None


def parse_decimal(text: str) -> Decimal:
    """Parse a decimal string exactly, refusing what the ledger cannot store.

    For amounts written in code and command-line options: besides the grammar of input
    records (:func:`parse_amount`) it reads a sign ``+``, a bare decimal point (``1.``,
    ``.5``), an exponent (``1e3``) and zeros beyond the limits (``1.0000000000000000000``);
    still ASCII only, without spaces. Raises ``ValueError`` with a message fit for a user.
    """
    if _AMOUNT.fullmatch(text):
        # The common case: plain notation within 20 integer and 18 fractional digits.
        return Decimal(text)
    if not _SPELLING.fullmatch(text):
        raise ValueError(f"{quote(text)} {_amount_text_problem(text)}")
    value = Decimal(text)
    problem = amount_problem(value)
    if problem is not None:
        raise ValueError(f"{quote(text)} {problem}")
    if not value:
        return ZERO
    return value.normalize(_CONTEXT)


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
