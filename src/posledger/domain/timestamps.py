"""Timestamps: ISO 8601 text in, integer nanoseconds since the Unix epoch (UTC) inside."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

__all__ = ["format_ts", "now_ns", "parse_ts"]

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?"
    r"(Z|z|[+-]\d{2}:?\d{2})"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


_DAY = 86_400
_day_seconds: dict[str, int] = {}
_day_text: dict[int, str] = {}


def _midnight(date: str, year: str, month: str, day: str) -> int:
    """Seconds from the epoch to 00:00 UTC of a date (validated, cached per date)."""
    found = _day_seconds.get(date)
    if found is None:
        when = datetime(int(year), int(month), int(day), tzinfo=UTC)
        found = (when - _EPOCH).days * _DAY
        if len(_day_seconds) > 4096:
            _day_seconds.clear()
        _day_seconds[date] = found
    return found


_minutes: dict[str, int] = {}


def _quick(text: str) -> int | None:
    """``YYYY-MM-DDTHH:MM:SS[.f]Z`` of a minute seen before, without the regular expression."""
    base = _minutes.get(text[:17])
    if base is None or text[-1] != "Z":
        return None
    seconds = text[17:19]
    if len(text) == 20:
        fraction = ""
    elif text[19] == "." and 21 < len(text) <= 30:
        fraction = text[20:-1]
    else:
        return None
    if not (seconds.isascii() and seconds.isdigit() and seconds < "60"):
        return None
    if fraction and not (fraction.isascii() and fraction.isdigit()):
        return None
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    return (base + int(seconds)) * 1_000_000_000 + nanos


def parse_ts(text: str) -> int:
    """Parse an ISO 8601 time with an explicit offset (``Z`` or ``±HH:MM``) to UTC nanoseconds.

    Up to nine fractional digits are kept. A time without an offset is refused: the
    ledger never guesses a time zone.
    """
    quick = _quick(text)
    if quick is not None:
        return quick
    match = _ISO.fullmatch(text)
    if match is not None and match.group(8) in ("Z", "z"):
        year, month, day, hour, minute, second, fraction, _ = match.groups()
        h, m, sec = int(hour), int(minute), int(second)
        if h < 24 and m < 60 and sec < 60:
            try:
                midnight = _midnight(text[:10], year, month, day)
            except ValueError as exc:
                raise ValueError(f"{text!r} is not a valid time: {exc}") from None
            minute = midnight + h * 3600 + m * 60
            if text[10] == "T":
                if len(_minutes) > 4096:
                    _minutes.clear()
                _minutes[text[:17]] = minute
            seconds = minute + sec
            return seconds * 1_000_000_000 + (int(fraction.ljust(9, "0")) if fraction else 0)
    match = _ISO.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"{text!r} is not an ISO 8601 time with an offset, e.g. 2026-03-02T14:30:00Z"
        )
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        base = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC
        )
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid time: {exc}") from None
    if offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        if delta >= timedelta(hours=24):
            raise ValueError(f"{text!r} has an impossible UTC offset")
        base -= sign * delta
    whole = base - _EPOCH
    seconds = whole.days * 86_400 + whole.seconds
    nanos = int((fraction or "").ljust(9, "0"))
    return seconds * 1_000_000_000 + nanos


def format_ts(ns: int) -> str:
    """UTC ISO 8601 with ``Z``; fractional digits in groups of three, only as many as needed."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    days, rest = divmod(seconds, _DAY)
    date = _day_text.get(days)
    if date is None:
        date = (_EPOCH + timedelta(days=days)).strftime("%Y-%m-%d")
        if len(_day_text) > 4096:
            _day_text.clear()
        _day_text[days] = date
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    stamp = f"{date}T{hours:02d}:{minutes:02d}:{secs:02d}"
    if nanos:
        digits = f"{nanos:09d}"
        if digits.endswith("000000"):
            digits = digits[:3]
        elif digits.endswith("000"):
            digits = digits[:6]
        stamp += "." + digits
    return stamp + "Z"


def now_ns() -> int:
    return time.time_ns()
