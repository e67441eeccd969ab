"""Reading a price stream: ticks and bars from a CSV or JSONL file.

A file is read as a stream (one row in memory at a time, plus the last time seen per
instrument), and every row becomes a :class:`Tick` or a :class:`Bar`:

- **Format.** A ``.csv`` file is CSV with a header row; a ``.jsonl`` or ``.json`` file holds
  one JSON object per line. Any other name is sniffed: a file whose first non-blank
  character is ``{`` is JSONL, anything else CSV. Files are UTF-8 (a byte-order mark is
  skipped). Blank lines are skipped. Columns or keys other than those below are ignored.
- **Fields.** ``ts``: an ISO 8601 time with a UTC offset (``Z`` or ``±HH:MM``), up to nine
  fractional digits, read by :func:`posledger.domain.timestamps.parse_ts`; a time without an
  offset is refused. ``instrument``: the instrument's name; it may be left out (or left
  empty in CSV) when :func:`read_prices` is given ``instrument=``, and when both are given
  they must be equal. Then either ``price`` (a tick) or all of ``open``, ``high``, ``low``,
  ``close`` (a bar), not both.
- **Amounts** are read exactly, in the grammar of the ledger's input records
  (:func:`posledger.domain.numbers.parse_amount`): ``-?digits[.digits]``, at most 20 digits
  before and 18 after the point; no exponent, sign ``+``, spaces, NaN or Infinity. In JSONL
  an amount is a string (``"101.25"``) or an integer (``101``), never a JSON number with a
  fraction or an exponent, which JSON readers turn into binary floats.
- **Checks.** A bar's ``high`` is at least ``max(open, close)`` and its ``low`` at most
  ``min(open, close)``. Times never go backwards within one instrument (equal times are
  fine; different instruments are independent).

Every problem raises :class:`PriceError`, whose message names the file, the line number and
the field. Because :func:`read_prices` is a generator, the rows before a bad one have
already been yielded when it raises.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple, TextIO

from posledger.domain.numbers import amount_problem, parse_amount, quote
from posledger.domain.timestamps import parse_ts

__all__ = ["BAR_FIELDS", "Bar", "PriceError", "Tick", "read_prices"]

BAR_FIELDS = ("open", "high", "low", "close")
"""The fields of a bar, in order."""


class Tick(NamedTuple):
    """One traded (or quoted) price of an instrument at one time."""

    instrument: str
    ts: int
    """UTC nanoseconds since the Unix epoch."""
    price: Decimal


class Bar(NamedTuple):
    """The open, high, low and close of an instrument over one interval.

    ``ts`` (UTC nanoseconds) is the time the bar is stamped with; the matching engine treats
    the whole bar as one price event at that time.
    """

    instrument: str
    ts: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


class PriceError(ValueError):
    """A price file cannot be read. The message names the file, the line and the field."""

    def __init__(self, path: Path, line: int, field: str | None, problem: str) -> None:
        where = f"{path}, line {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
        self.field = field
        self.problem = problem


class _FloatText(str):
    """The text of a JSON number with a fraction or an exponent (or NaN/Infinity): refused."""

    __slots__ = ()


_CSV_SUFFIXES = frozenset({".csv"})
_JSON_SUFFIXES = frozenset({".jsonl", ".json"})


def read_prices(path: Path, *, instrument: str | None = None) -> Iterator[Tick | Bar]:
    """Stream the ticks and bars of a CSV or JSONL price file, in file order.

    ``instrument``, when given, is the instrument of every row: rows may leave theirs out,
    and a row naming another instrument is an error. Raises :class:`PriceError` (see the
    module's documentation for the rules).
    """
    path = Path(path)
    if instrument is not None and (not instrument or instrument != instrument.strip()):
        raise ValueError(f"instrument={quote(instrument)} must be a non-empty name without spaces")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if _is_jsonl(path, handle):
            yield from _read_jsonl(path, handle, instrument)
        else:
            yield from _read_csv(path, handle, instrument)


def _is_jsonl(path: Path, handle: TextIO) -> bool:
    suffix = path.suffix.lower()
    if suffix in _JSON_SUFFIXES:
        return True
    if suffix in _CSV_SUFFIXES:
        return False
    try:
        first = handle.read(1)
        while first and first.isspace():
            first = handle.read(1)
    except UnicodeDecodeError as exc:
        raise PriceError(path, 1, None, f"is not UTF-8 text ({exc.reason})") from None
    handle.seek(0)
    return first == "{"


class _Checker:
    """Turns the text fields of one row into a tick or a bar, and checks times per instrument."""

    def __init__(self, path: Path, instrument: str | None) -> None:
        self.path = path
        self.instrument = instrument
        self.last: dict[str, tuple[int, int]] = {}  # instrument -> (ts, line)

    def error(self, line: int, field: str | None, problem: str) -> PriceError:
        return PriceError(self.path, line, field, problem)

    def name(self, line: int, given: str | None) -> str:
        if given is None or given == "":
            if self.instrument is None:
                raise self.error(
                    line,
                    "instrument",
                    "is missing: give each row an instrument, or pass instrument= to read_prices",
                )
            return self.instrument
        if given != given.strip():
            raise self.error(line, "instrument", f"{quote(given)} has surrounding spaces")
        if self.instrument is not None and given != self.instrument:
            raise self.error(
                line,
                "instrument",
                f"{quote(given)} differs from instrument={quote(self.instrument)} given to "
                "read_prices",
            )
        return given

    def ts(self, line: int, text: str) -> int:
        try:
            return parse_ts(text)
        except ValueError as exc:
            raise self.error(line, "ts", str(exc)) from None

    def amount(self, line: int, field: str, text: str) -> Decimal:
        try:
            return parse_amount(text)
        except ValueError as exc:
            raise self.error(line, field, str(exc)) from None

    def event(
        self,
        line: int,
        instrument: str,
        ts: int,
        price: Decimal | None,
        bar: tuple[Decimal, Decimal, Decimal, Decimal] | None,
    ) -> Tick | Bar:
        previous = self.last.get(instrument)
        if previous is not None and ts < previous[0]:
            raise self.error(
                line,
                "ts",
                f"goes back in time: earlier than line {previous[1]} of {quote(instrument)}; "
                "the rows of one instrument must be in time order",
            )
        self.last[instrument] = (ts, line)
        if price is not None:
            return Tick(instrument, ts, price)
        assert bar is not None
        open_, high, low, close = bar
        if high < max(open_, close):
            raise self.error(line, "high", f"{high} is below the open or the close of the bar")
        if low > min(open_, close):
            raise self.error(line, "low", f"{low} is above the open or the close of the bar")
        return Bar(instrument, ts, open_, high, low, close)


def _kind(path: Path, line: int, fields: set[str]) -> str:
    """'tick' or 'bar', from the price fields present."""
    has_price = "price" in fields
    bar_fields = [name for name in BAR_FIELDS if name in fields]
    if has_price and bar_fields:
        raise PriceError(
            path,
            line,
            "price",
            "a row is a tick (price) or a bar (open, high, low, close), not both",
        )
    if has_price:
        return "tick"
    if not bar_fields:
        raise PriceError(
            path, line, "price", "is missing: give price (a tick) or open, high, low, close (a bar)"
        )
    missing = [name for name in BAR_FIELDS if name not in fields]
    if missing:
        raise PriceError(path, line, missing[0], "is missing: a bar needs open, high, low, close")
    return "bar"


def _read_csv(path: Path, handle: TextIO, instrument: str | None) -> Iterator[Tick | Bar]:
    checker = _Checker(path, instrument)
    reader = csv.reader(handle, strict=True)

    def next_row() -> tuple[int, list[str]] | None:
        """The next non-blank row and the line it starts on, or None at the end."""
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return None
            except csv.Error as exc:
                raise PriceError(path, reader.line_num, None, f"is not valid CSV: {exc}") from None
            except UnicodeDecodeError as exc:
                raise PriceError(path, start, None, f"is not UTF-8 text ({exc.reason})") from None
            if row:
                return start, row

    first = next_row()
    if first is None:
        raise PriceError(path, 1, None, "is empty: a CSV price file needs a header row")
    header_line, header = first
    names = [name.strip() for name in header]
    for index, name in enumerate(names):
        if name and name in names[:index]:
            raise PriceError(path, header_line, name, "appears twice in the header row")
    if "ts" not in names:
        raise PriceError(path, header_line, "ts", "is missing from the header row")
    if "instrument" not in names and instrument is None:
        raise PriceError(
            path,
            header_line,
            "instrument",
            "is missing from the header row: add the column, or pass instrument= to read_prices",
        )
    kind = _kind(path, header_line, set(names))
    column = {name: index for index, name in enumerate(names) if name}

    while (found := next_row()) is not None:
        line, row = found
        if len(row) != len(names):
            raise PriceError(
                path, line, None, f"has {len(row)} cells where the header has {len(names)}"
            )
        given = row[column["instrument"]] if "instrument" in column else None
        name = checker.name(line, given)
        ts = checker.ts(line, row[column["ts"]])
        if kind == "tick":
            price = checker.amount(line, "price", row[column["price"]])
            yield checker.event(line, name, ts, price, None)
        else:
            o, h, lo, c = (checker.amount(line, f, row[column[f]]) for f in BAR_FIELDS)
            yield checker.event(line, name, ts, None, (o, h, lo, c))


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key!r} appears twice")
        result[key] = value
    return result


def _read_jsonl(path: Path, handle: TextIO, instrument: str | None) -> Iterator[Tick | Bar]:
    checker = _Checker(path, instrument)
    line = 0
    while True:
        line += 1
        try:
            text = handle.readline()
        except UnicodeDecodeError as exc:
            raise PriceError(path, line, None, f"is not UTF-8 text ({exc.reason})") from None
        if not text:
            return
        if not text.strip():
            continue
        try:
            record = json.loads(
                text,
                parse_float=_FloatText,
                parse_constant=_FloatText,
                object_pairs_hook=_no_duplicates,
            )
        except ValueError as exc:
            raise PriceError(path, line, None, f"is not valid JSON: {exc}") from None
        if not isinstance(record, dict):
            raise PriceError(path, line, None, "is not a JSON object ({...})")
        yield _json_event(checker, line, record)


def _json_event(checker: _Checker, line: int, record: Mapping[str, object]) -> Tick | Bar:
    given = record.get("instrument")
    if given is not None and not isinstance(given, str):
        raise checker.error(line, "instrument", "must be a string")
    name = checker.name(line, given)
    ts_text = record.get("ts")
    if ts_text is None:
        raise checker.error(line, "ts", "is missing")
    if not isinstance(ts_text, str):
        raise checker.error(line, "ts", 'must be a string, e.g. "2026-03-02T14:30:00Z"')
    ts = checker.ts(line, ts_text)
    kind = _kind(checker.path, line, {key for key in record if record[key] is not None})
    if kind == "tick":
        price = _json_amount(checker, line, "price", record["price"])
        return checker.event(line, name, ts, price, None)
    o, h, lo, c = (_json_amount(checker, line, f, record[f]) for f in BAR_FIELDS)
    return checker.event(line, name, ts, None, (o, h, lo, c))


def _json_amount(checker: _Checker, line: int, field: str, value: object) -> Decimal:
    if isinstance(value, _FloatText) and value in ("NaN", "Infinity", "-Infinity"):
        raise checker.error(line, field, f"{value} is not a finite number")
    if isinstance(value, _FloatText):
        raise checker.error(
            line,
            field,
            f"{value} is a JSON number with a fraction or an exponent, which is read as a "
            f'binary float: write it as a string ("{value}") or an integer',
        )
    if isinstance(value, str):
        return checker.amount(line, field, value)
    if isinstance(value, int) and not isinstance(value, bool):
        amount = Decimal(value)
        problem = amount_problem(amount)
        if problem is not None:
            raise checker.error(line, field, f"{value} {problem}")
        return amount
    raise checker.error(line, field, 'must be a string such as "101.25" or an integer')
