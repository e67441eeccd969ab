"""Timestamps: ISO 8601 text in, integer nanoseconds since the Unix epoch (UTC) inside.

The journal and every database keep a time as a signed 64-bit count of nanoseconds, which
ends at 2262-04-11T23:47:16.854775807Z. The ledger takes times from
1970-01-01T00:00:00Z (:data:`EARLIEST_NS`) to 2261-12-31T23:59:59.999999999Z
(:data:`LATEST_NS`), checked after the offset is applied; see docs/format.md, "Limits".
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .numbers import quote

__all__ = [
    "EARLIEST_NS",
    "LATEST_NS",
    "MAX_FRACTION_DIGITS",
    "datetime_ns",
    "format_ts",
    "now_ns",
    "parse_ts",
]

MAX_FRACTION_DIGITS = 9
"""Fractional digits of a second a time may have: nanoseconds."""

_NS = 1_000_000_000
_DAY = 86_400
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

EARLIEST_NS = 0
"""1970-01-01T00:00:00Z, the earliest time the ledger takes."""
LATEST_NS = (date(2262, 1, 1).toordinal() - _EPOCH_ORDINAL) * _DAY * _NS - 1
"""2261-12-31T23:59:59.999999999Z, the latest time the ledger takes (well inside the
signed 64-bit nanosecond range, which ends at 2262-04-11T23:47:16.854775807Z)."""

_EARLIEST_TEXT = "1970-01-01T00:00:00Z"
_LATEST_TEXT = "2261-12-31T23:59:59.999999999Z"

# The grammar (ASCII only): date, 'T' or a space, time, optional 1-9 fractional digits
# after '.' or ',', then 'Z', 'z' or an offset ±HH:MM / ±HHMM (hours 00-23, minutes 00-59).
_ISO = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:[.,]([0-9]{1,9}))?"
    r"(Z|z|[+-](?:[01][0-9]|2[0-3]):?[0-5][0-9])"
)
# The same shape with any number of fractional digits and anything after: to say what is
# wrong with a time the grammar refuses.
_SHAPE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:[.,]([0-9]+))?(.*)",
    re.DOTALL,
)
_OFFSET = re.compile(r"[+-]([0-9]{2}):?([0-9]{2})")

_day_seconds: dict[str, int] = {}
_day_text: dict[int, str] = {}


def _midnight(text: str, year: str, month: str, day: str) -> int:
    """Seconds from the epoch to 00:00 UTC of a date (validated, cached per date)."""
    found = _day_seconds.get(text[:10])
    if found is None:
        try:
            ordinal = date(int(year), int(month), int(day)).toordinal()
        except ValueError as exc:
            raise ValueError(f"{quote(text)} is not a valid time: {exc}") from None
        found = (ordinal - _EPOCH_ORDINAL) * _DAY
        if len(_day_seconds) > 4096:
            _day_seconds.clear()
        _day_seconds[text[:10]] = found
    return found


_minutes: dict[str, int] = {}


def _quick(text: str) -> int | None:
    """``YYYY-MM-DDTHH:MM:SS[.f]Z`` of a minute seen before, without the regular expression.

    Only minutes inside the range are remembered, so every time found here is too."""
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
    return (base + int(seconds)) * _NS + nanos


def _in_range(text: str, ns: int) -> int:
    if ns < EARLIEST_NS:
        raise ValueError(
            f"{quote(text)} is before {_EARLIEST_TEXT}, the earliest time the ledger takes"
        )
    if ns > LATEST_NS:
        raise ValueError(f"{quote(text)} is after {_LATEST_TEXT}, the latest time the ledger takes")
    return ns


def parse_ts(text: str) -> int:
    """Parse an ISO 8601 time with an explicit offset (``Z`` or ``±HH:MM``) to UTC nanoseconds.

    Up to nine fractional digits are kept. A time without an offset is refused: the
    ledger never guesses a time zone. So is a time outside
    [:data:`EARLIEST_NS`, :data:`LATEST_NS`] once the offset is applied.
    """
    quick = _quick(text)
    if quick is not None:
        return quick
    match = _ISO.fullmatch(text)
    if match is None:
        raise ValueError(_problem(text))
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    h, m, sec = int(hour), int(minute), int(second)
    if h > 23 or m > 59 or sec > 59:
        raise ValueError(
            f"{quote(text)} is not a valid time: hours are 00-23, minutes and seconds 00-59"
        )
    minute_start = _midnight(text, year, month, day) + h * 3600 + m * 60
    if offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        minute_start -= sign * (int(offset[1:3]) * 3600 + int(offset[-2:]) * 60)
    elif text[10] == "T" and EARLIEST_NS <= minute_start * _NS <= LATEST_NS - 60 * _NS + 1:
        # LATEST_NS ends a minute: a minute whose start is in range is in range throughout.
        if len(_minutes) > 4096:
            _minutes.clear()
        _minutes[text[:17]] = minute_start
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    return _in_range(text, (minute_start + sec) * _NS + nanos)


def _problem(text: str) -> str:
    """Why ``text`` is not a time the grammar takes (it is not)."""
    shown = quote(text)
    example = "e.g. 2026-03-02T14:30:00Z"
    if not text.isascii():
        return f"{shown} is not an ISO 8601 time: it has non-ASCII characters ({example})"
    if text != text.strip():
        return f"{shown} is not an ISO 8601 time: it has surrounding spaces ({example})"
    shape = _SHAPE.fullmatch(text)
    if shape is not None:
        fraction, rest = shape.group(7), shape.group(8)
        if fraction is not None and len(fraction) > MAX_FRACTION_DIGITS:
            return f"{shown} has more than {MAX_FRACTION_DIGITS} fractional digits (nanoseconds)"
        if not rest:
            return (
                f"{shown} is not an ISO 8601 time with an offset: add Z or ±HH:MM "
                f"({example}); the ledger never guesses a time zone"
            )
        offset = _OFFSET.fullmatch(rest)
        if offset is not None:
            return f"{shown} has an impossible UTC offset {rest}: hours are 00-23 and minutes 00-59"
    return f"{shown} is not an ISO 8601 time with an offset, {example}"


def datetime_ns(value: datetime) -> int:
    """UTC nanoseconds of an aware datetime (Python API), in the same range as
    :func:`parse_ts`. A ``nanosecond`` attribute (as pandas has) is kept."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(f"{quote(value.isoformat())} has no UTC offset: use an aware datetime")
    days = value.toordinal() - _EPOCH_ORDINAL
    seconds = days * _DAY + value.hour * 3600 + value.minute * 60 + value.second
    micros = (seconds - offset.days * _DAY - offset.seconds) * 1_000_000
    micros += value.microsecond - offset.microseconds
    nanosecond = getattr(value, "nanosecond", 0)
    ns = micros * 1000 + (nanosecond if type(nanosecond) is int else 0)
    return _in_range(value.isoformat(), ns)


def format_ts(ns: int) -> str:
    """UTC ISO 8601 with ``Z``; fractional digits in groups of three, only as many as needed."""
    seconds, nanos = divmod(ns, _NS)
    days, rest = divmod(seconds, _DAY)
    stamp = _day_text.get(days)
    if stamp is None:
        stamp = (_EPOCH + timedelta(days=days)).strftime("%Y-%m-%d")
        if len(_day_text) > 4096:
            _day_text.clear()
        _day_text[days] = stamp
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    stamp = f"{stamp}T{hours:02d}:{minutes:02d}:{secs:02d}"
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


def next_local_time(clock_time: str, tz: str, now: int) -> int:
    """The first moment after ``now`` when the wall clock of time zone ``tz`` shows
    ``clock_time`` (``HH:MM``): today's, or tomorrow's if today's has passed. Raises
    ValueError for a malformed time or an unknown zone."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r} (an IANA name such as Asia/Kolkata)") from None
    hours, _, minutes = clock_time.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"a time of day is HH:MM, got {clock_time!r}")
    hour, minute = int(hours), int(minutes)
    if hour > 23 or minute > 59:
        raise ValueError(f"a time of day is HH:MM, got {clock_time!r}")
    local_now = datetime.fromtimestamp(now / 1e9, tz=zone)
    candidate = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate <= local_now:
        candidate = (candidate + timedelta(days=1)).replace(hour=hour, minute=minute)
    return datetime_ns(candidate)
