"""A broker's CSV export as ``fill`` records, through a mapping written in TOML
(docs/venues/csv.md).

:func:`load_mapping` reads and checks a mapping (:class:`MappingError` names the key that
is wrong); :func:`parse_csv` and :func:`parse_rows` turn a file into fills and rejections
naming their rows; :func:`preview` is what a dry run shows. Numbers stay exact decimals;
local times become ISO 8601 with their UTC offset.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import tomllib
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..domain.numbers import parse_amount
from .base import Parsed, Rejection, SymbolMap
from .csvrows import EPOCHS, POSITION_SIDES, SIDES, FileProblem, RowProblem, RowReader

__all__ = [
    "FIELDS",
    "REQUIRED",
    "Mapping",
    "MappingError",
    "Preview",
    "load_mapping",
    "parse_csv",
    "parse_rows",
    "preview",
]

FIELDS = (
    "exec_id",
    "account",
    "instrument",
    "side",
    "quantity",
    "price",
    "ts",
    "commission",
    "commission_currency",
    "client_order_id",
    "strategy",
    "position_side",
    "liquidation",
)
"""The ``fill`` fields a mapping can fill, in the order a record lists them."""

REQUIRED = ("exec_id", "account", "instrument", "side", "quantity", "price", "ts")

_FROM_FILE = ("exec_id", "quantity", "price", "ts")
"""Fields every row has its own value of: never a constant."""
_JOINABLE = ("exec_id", "account", "instrument", "ts", "client_order_id", "strategy")
"""Fields whose value may be several columns' values joined by a space."""
_SECTIONS = ("csv", "columns", "values", "side", "time", "numbers", "filter", "symbols")
_CSV_KEYS = ("delimiter", "quotechar", "encoding", "skip_rows")
_TIME_KEYS = ("format", "timezone", "ambiguous")
_NUMBER_KEYS = ("decimal", "thousands", "negative_quantity_is_sell", "negate_commission")
_SYMBOL_KEYS = ("venue",)
_AMBIGUOUS = ("reject", "earlier", "later")

Column = str | int
"""A column by its header name, or by its number (1 is the first column)."""


class MappingError(ValueError):
    """A mapping that cannot be used; the message names the key that is wrong."""


@dataclass(frozen=True)
class Mapping:
    """A checked CSV mapping (docs/venues/csv.md): where each ``fill`` field comes from
    and how the file writes its values."""

    columns: dict[str, tuple[Column, ...]]
    """Ledger field -> the column(s) holding it (several: joined by a space)."""
    values: dict[str, str | bool] = field(default_factory=dict)
    """Ledger field -> a constant, for fields the file lacks."""
    delimiter: str = ","
    quotechar: str = '"'
    encoding: str = "utf-8"
    skip_rows: int = 0
    sides: dict[str, str] | None = None
    """The file's side values -> BUY/SELL; None: the file writes BUY or SELL."""
    time_format: str = "iso"
    timezone: str | None = None
    ambiguous: str = "reject"
    decimal: str = "."
    thousands: str = ""
    negative_quantity_is_sell: bool = False
    negate_commission: bool = False
    filters: dict[str, frozenset[str]] = field(default_factory=dict)
    """Column -> the values a row must hold there to be read; other rows are skipped."""
    symbols_venue: str | None = None
    """Look the instrument up in the symbol map of this venue; None: it is the id."""


@dataclass(frozen=True)
class Preview:
    """What a dry run shows: how many rows became fills, the first records, every
    rejection."""

    rows: int
    """Data rows read (after the header and the rows skipped before it)."""
    fills: int
    skipped: int
    """Rows left out on purpose: blank, or not matching ``[filter]``."""
    records: tuple[dict[str, Any], ...]
    rejections: tuple[Rejection, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "rows": self.rows,
            "fills": self.fills,
            "skipped": self.skipped,
            "rejected": len(self.rejections),
            "records": list(self.records),
            "rejections": [{"reason": r.reason, "raw": r.raw} for r in self.rejections],
        }


# -- the mapping -----------------------------------------------------------------------


def load_mapping(text: str) -> Mapping:
    """The mapping written in ``text`` (TOML), checked; :class:`MappingError` otherwise."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"mapping: not valid TOML: {exc}") from None
    _known("", document, _SECTIONS, section=True)
    tables = {name: _table(document, name) for name in _SECTIONS}
    columns = _columns(tables["columns"])
    values = _values(tables["values"])
    for name in sorted(set(columns) & set(values)):
        raise MappingError(
            f"mapping: values.{name}: {name} is also read from a column (columns.{name}); "
            "give one of them"
        )
    numbers = tables["numbers"]
    _known("numbers", numbers, _NUMBER_KEYS)
    signed = _flag(numbers, "numbers", "negative_quantity_is_sell")
    for name in REQUIRED:
        if name in columns or name in values:
            continue
        if name == "side" and signed:
            continue
        source = f"columns.{name} (a column)"
        if name not in _FROM_FILE:
            source += f" or values.{name} (a constant)"
        raise MappingError(f"mapping: {name} is not mapped: give {source}")
    if signed and ("side" in columns or "side" in values):
        key = "columns.side" if "side" in columns else "values.side"
        raise MappingError(
            f"mapping: {key}: numbers.negative_quantity_is_sell = true takes the side from "
            "the quantity's sign; give one of them"
        )
    decimal, thousands = _separators(numbers)
    csv_table = tables["csv"]
    _known("csv", csv_table, _CSV_KEYS)
    delimiter = _character(csv_table, "delimiter", ",")
    quotechar = _character(csv_table, "quotechar", '"')
    if delimiter == quotechar:
        raise MappingError(f"mapping: csv.quotechar: {quotechar!r} is also the delimiter")
    time_format, timezone, ambiguous = _time(tables["time"])
    return Mapping(
        columns=columns,
        values=values,
        delimiter=delimiter,
        quotechar=quotechar,
        encoding=_encoding(csv_table),
        skip_rows=_skip_rows(csv_table),
        sides=_sides(document, columns),
        time_format=time_format,
        timezone=timezone,
        ambiguous=ambiguous,
        decimal=decimal,
        thousands=thousands,
        negative_quantity_is_sell=signed,
        negate_commission=_flag(numbers, "numbers", "negate_commission"),
        filters=_filters(tables["filter"]),
        symbols_venue=_venue(tables["symbols"]),
    )


def _known(prefix: str, table: dict[str, Any], known: Sequence[str], section: bool = False) -> None:
    for key, value in table.items():
        if key in known:
            continue
        if not section:
            where = f"key '{prefix}.{key}'"
        elif isinstance(value, dict):
            where = f"section [{key}]"
        else:
            where = f"key '{key}' outside any section"
        raise MappingError(f"mapping: unknown {where}; known: {', '.join(known)}")


def _table(document: dict[str, Any], name: str) -> dict[str, Any]:
    table = document.get(name, {})
    if not isinstance(table, dict):
        raise MappingError(f"mapping: {name}: must be a table ([{name}])")
    return table


def _columns(table: dict[str, Any]) -> dict[str, tuple[Column, ...]]:
    _known("columns", table, FIELDS)
    columns: dict[str, tuple[Column, ...]] = {}
    for name, value in table.items():
        refs = value if isinstance(value, list) else [value]
        if not refs:
            raise MappingError(f"mapping: columns.{name}: an empty list names no column")
        if len(refs) > 1 and name not in _JOINABLE:
            raise MappingError(
                f"mapping: columns.{name}: {name} is read from one column; several columns "
                f"are joined only for {', '.join(_JOINABLE)}"
            )
        columns[name] = tuple(_column(f"columns.{name}", ref) for ref in refs)
    return columns


def _column(key: str, ref: Any) -> Column:
    if isinstance(ref, bool) or not isinstance(ref, str | int):
        raise MappingError(f"mapping: {key}: {ref!r} is neither a column name nor a number")
    if isinstance(ref, int):
        if ref < 1:
            raise MappingError(f"mapping: {key}: column numbers start at 1, got {ref}")
        return ref
    if not ref.strip():
        raise MappingError(f"mapping: {key}: a column name must not be blank")
    return ref.strip()


def _values(table: dict[str, Any]) -> dict[str, str | bool]:
    _known("values", table, FIELDS)
    values: dict[str, str | bool] = {}
    for name, value in table.items():
        key = f"values.{name}"
        if name in _FROM_FILE:
            raise MappingError(
                f"mapping: {key}: {name} must come from a column (every fill has its own)"
            )
        if name == "liquidation":
            if not isinstance(value, bool):
                raise MappingError(f"mapping: {key}: must be true or false, got {value!r}")
            values[name] = value
            continue
        if not isinstance(value, str) or not value.strip():
            raise MappingError(f"mapping: {key}: must be a non-empty string, got {value!r}")
        if name == "commission":
            try:
                parse_amount(value)
            except ValueError as exc:
                raise MappingError(f"mapping: {key}: {exc}") from None
        if name == "side" and value.upper() not in SIDES:
            raise MappingError(f"mapping: {key}: must be BUY or SELL, got {value!r}")
        if name == "position_side" and value.upper() not in POSITION_SIDES:
            raise MappingError(f"mapping: {key}: must be LONG, SHORT or BOTH, got {value!r}")
        values[name] = value.upper() if name in ("side", "position_side") else value
    return values


def _sides(
    document: dict[str, Any], columns: dict[str, tuple[Column, ...]]
) -> dict[str, str] | None:
    if "side" not in document:
        return None
    table = _table(document, "side")
    if "side" not in columns:
        raise MappingError(
            "mapping: [side] translates a side column, but columns.side is not given"
        )
    if not table:
        raise MappingError('mapping: [side] is empty: give the file\'s values, e.g. BOT = "BUY"')
    sides: dict[str, str] = {}
    for venue_value, side in table.items():
        if not isinstance(side, str) or side.upper() not in SIDES:
            raise MappingError(f"mapping: side.{venue_value}: must be BUY or SELL, got {side!r}")
        sides[venue_value.strip()] = side.upper()
    return sides


def _flag(table: dict[str, Any], section: str, name: str) -> bool:
    value = table.get(name, False)
    if not isinstance(value, bool):
        raise MappingError(f"mapping: {section}.{name}: must be true or false, got {value!r}")
    return value


def _separators(table: dict[str, Any]) -> tuple[str, str]:
    decimal = table.get("decimal", ".")
    if decimal not in (".", ","):
        raise MappingError(f'mapping: numbers.decimal: must be "." or ",", got {decimal!r}')
    thousands = table.get("thousands", "")
    if not isinstance(thousands, str) or len(thousands) > 1:
        raise MappingError(
            f'mapping: numbers.thousands: must be "" or one character, got {thousands!r}'
        )
    if thousands and (thousands == decimal or thousands.isdigit() or thousands in "+-"):
        raise MappingError(
            f"mapping: numbers.thousands: {thousands!r} cannot separate thousands when the "
            f"decimal separator is {decimal!r}"
        )
    return decimal, thousands


def _character(table: dict[str, Any], name: str, default: str) -> str:
    value = table.get(name, default)
    if not isinstance(value, str) or len(value) != 1 or value in "\r\n":
        raise MappingError(f"mapping: csv.{name}: must be one character, got {value!r}")
    return value


def _encoding(table: dict[str, Any]) -> str:
    value = table.get("encoding", "utf-8")
    try:
        if not isinstance(value, str):
            raise LookupError
        codecs.lookup(value)
    except LookupError:
        raise MappingError(f"mapping: csv.encoding: {value!r} is not a known encoding") from None
    return value


def _skip_rows(table: dict[str, Any]) -> int:
    value = table.get("skip_rows", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MappingError(f"mapping: csv.skip_rows: must be a whole number >= 0, got {value!r}")
    return value


def _time(table: dict[str, Any]) -> tuple[str, str | None, str]:
    _known("time", table, _TIME_KEYS)
    form = table.get("format", "iso")
    if not isinstance(form, str) or not form:
        raise MappingError(f"mapping: time.format: must be a non-empty string, got {form!r}")
    if form not in ("iso", *EPOCHS):
        if "%" not in form:
            raise MappingError(
                f"mapping: time.format: {form!r} is none of iso, epoch_ms, epoch_s and has no "
                "strptime directive (%Y, %H...)"
            )
        sample = dt.datetime(2001, 12, 31, 13, 45, 56, 789000, tzinfo=dt.UTC)
        try:
            dt.datetime.strptime(sample.strftime(form), form)
        except ValueError as exc:
            raise MappingError(f"mapping: time.format: {form!r} cannot be read: {exc}") from None
    zone = table.get("timezone")
    if zone is not None:
        if form in EPOCHS:
            raise MappingError(f"mapping: time.timezone: not used with {form}: epoch times are UTC")
        if not isinstance(zone, str):
            raise MappingError(f"mapping: time.timezone: must be a string, got {zone!r}")
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise MappingError(
                f'mapping: time.timezone: {zone!r} is not a time zone name such as "Europe/Berlin"'
            ) from None
    elif form not in ("iso", *EPOCHS) and "%z" not in form:
        raise MappingError(
            f"mapping: time.timezone: required: the format {form!r} gives no UTC offset (%z)"
        )
    ambiguous = table.get("ambiguous", "reject")
    if ambiguous not in _AMBIGUOUS:
        raise MappingError(
            f"mapping: time.ambiguous: must be one of {', '.join(_AMBIGUOUS)}, got {ambiguous!r}"
        )
    return form, zone, ambiguous


def _filters(table: dict[str, Any]) -> dict[str, frozenset[str]]:
    filters: dict[str, frozenset[str]] = {}
    for column, allowed in table.items():
        kept = allowed if isinstance(allowed, list) else [allowed]
        if not kept or not all(isinstance(value, str) for value in kept):
            raise MappingError(
                f"mapping: filter.{column}: must be a string or a list of strings, got {allowed!r}"
            )
        filters[column.strip()] = frozenset(value.strip() for value in kept)
    return filters


def _venue(table: dict[str, Any]) -> str | None:
    _known("symbols", table, _SYMBOL_KEYS)
    venue = table.get("venue")
    if venue is not None and (not isinstance(venue, str) or not venue.strip()):
        raise MappingError(f"mapping: symbols.venue: must be a venue name, got {venue!r}")
    return venue


# -- the file --------------------------------------------------------------------------


def parse_csv(data: bytes | str, mapping: Mapping, *, symbols: SymbolMap | None = None) -> Parsed:
    """The fills of a CSV export: bytes are decoded with the mapping's encoding."""
    if isinstance(data, bytes):
        try:
            data = data.decode(mapping.encoding)
        except UnicodeDecodeError as exc:
            reason = (
                f"the file is not {mapping.encoding} (byte 0x{data[exc.start]:02x} at "
                f"{exc.start}): set csv.encoding in the mapping"
            )
            return Parsed(rejections=(Rejection(reason, ""),))
    reader = csv.reader(
        io.StringIO(data, newline=""), delimiter=mapping.delimiter, quotechar=mapping.quotechar
    )
    try:
        rows = list(reader)
    except csv.Error as exc:
        reason = f"row {reader.line_num}: not CSV: {exc}"
        return Parsed(rejections=(Rejection(reason, ""),))
    return parse_rows(rows, mapping, symbols=symbols)


def parse_rows(
    rows: Iterable[Sequence[str]], mapping: Mapping, *, symbols: SymbolMap | None = None
) -> Parsed:
    """The fills of a CSV file's rows (as ``csv.reader`` gives them, from the file's
    first row). Rows are numbered from 1, counting the rows skipped and the header.

    ``symbols`` is required when the mapping looks instruments up (``[symbols]``)."""
    if mapping.symbols_venue is not None:
        if symbols is None:
            raise ValueError(
                f"the mapping looks instruments up in the {mapping.symbols_venue} symbol map: "
                "pass symbols="
            )
        if symbols.venue != mapping.symbols_venue:
            raise ValueError(
                f"the mapping looks instruments up in the {mapping.symbols_venue} symbol map, "
                f"not {symbols.venue}"
            )
    numbered = iter(enumerate(rows, start=1))
    header: list[str] | None = None
    for number, row in numbered:
        if number > mapping.skip_rows:
            header = [cell.strip().lstrip("\ufeff").strip() for cell in row]
            break
    if header is None:
        return Parsed(rejections=(Rejection("the file has no header row", ""),))
    try:
        reader = RowReader(mapping, header, symbols)
    except FileProblem as exc:
        return Parsed(rejections=(Rejection(str(exc), _line(header, mapping)),))
    fills: list[dict[str, Any]] = []
    rejections: list[Rejection] = []
    total = skipped = 0
    for number, row in numbered:
        total += 1
        cells = [cell.strip() for cell in row]
        if not any(cells) or not reader.wanted(cells):
            skipped += 1
            continue
        try:
            fills.append(reader.record(cells))
        except RowProblem as exc:
            rejections.append(Rejection(f"row {number}: {exc}", _line(row, mapping)))
    return Parsed(
        fills=tuple(fills),
        rejections=tuple(rejections),
        extra={"rows": total, "skipped": skipped},
    )


def preview(
    data: bytes | str, mapping: Mapping, *, symbols: SymbolMap | None = None, limit: int = 10
) -> Preview:
    """A dry run of :func:`parse_csv`: the first ``limit`` records and every rejection."""
    parsed = parse_csv(data, mapping, symbols=symbols)
    return Preview(
        rows=int(parsed.extra.get("rows", 0)),
        fills=len(parsed.fills),
        skipped=int(parsed.extra.get("skipped", 0)),
        records=parsed.fills[: max(limit, 0)],
        rejections=parsed.rejections,
    )


def _line(row: Sequence[str], mapping: Mapping) -> str:
    """A row as the CSV text it was."""
    out = io.StringIO()
    csv.writer(out, delimiter=mapping.delimiter, quotechar=mapping.quotechar).writerow(row)
    return out.getvalue().rstrip("\r\n")
