"""The rows of a CSV export, read through a checked mapping (posledger.venues.csvmap):
each row a ``fill`` record or the reason it is not one."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..adapters.records import parse_record
from ..domain.refdata import InvalidInput
from .base import SymbolMap, decimal_text, iso_from_ms

if TYPE_CHECKING:
    from .csvmap import Column, Mapping

__all__ = ["EPOCHS", "POSITION_SIDES", "SIDES", "FileProblem", "RowProblem", "RowReader"]

EPOCHS = ("epoch_ms", "epoch_s")
SIDES = ("BUY", "SELL")
POSITION_SIDES = ("LONG", "SHORT", "BOTH")
_TRUE = ("true", "1", "yes", "y")
_FALSE = ("false", "0", "no", "n")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)\Z")
_INTEGER = re.compile(r"[0-9]+\Z")


class FileProblem(Exception):
    """The file does not fit the mapping (a column it names is missing)."""


class RowProblem(Exception):
    """Why one row is rejected."""


class RowReader:
    """Rows -> fill records, for one file's header."""

    def __init__(self, mapping: Mapping, header: list[str], symbols: SymbolMap | None) -> None:
        self.mapping = mapping
        self.header = header
        self.symbols = symbols
        self.zone = zoneinfo.ZoneInfo(mapping.timezone) if mapping.timezone else None
        self.sources = {
            name: tuple(self._index(f"columns.{name}", ref) for ref in refs)
            for name, refs in mapping.columns.items()
        }
        self.filters = [
            (self._index(f"filter.{column}", column), allowed)
            for column, allowed in mapping.filters.items()
        ]

    def _index(self, key: str, ref: Column) -> int:
        if isinstance(ref, int):
            if ref > len(self.header):
                raise FileProblem(f"the file has {len(self.header)} columns, not {ref} ({key})")
            return ref - 1
        found = [i for i, name in enumerate(self.header) if name == ref]
        if not found:
            names = ", ".join(repr(name) for name in self.header)
            raise FileProblem(f"the file has no column {ref!r} ({key}); its columns: {names}")
        if len(found) > 1:
            raise FileProblem(
                f"the file has {len(found)} columns named {ref!r} ({key}): name it by number"
            )
        return found[0]

    def wanted(self, cells: list[str]) -> bool:
        return all(
            (cells[index] if index < len(cells) else "") in allowed
            for index, allowed in self.filters
        )

    def _cell(self, cells: list[str], name: str) -> str:
        """The field's text in the row ("" when empty); its constant when it has one."""
        if name not in self.sources:
            constant = self.mapping.values.get(name)
            return "" if constant is None else str(constant)
        parts = []
        for index in self.sources[name]:
            if index >= len(cells):
                raise RowProblem(
                    f"has {len(cells)} cells; {self._named(name)} is column {index + 1}"
                )
            parts.append(cells[index])
        return "" if any(part == "" for part in parts) else " ".join(parts)

    def _named(self, name: str) -> str:
        """How a rejection names the field's column(s): ``'Quantity' (quantity)``."""
        if name not in self.sources:
            return f"values.{name}"
        names = [
            repr(self.header[i]) if self.header[i] else f"column {i + 1}"
            for i in self.sources[name]
        ]
        return " + ".join(names) + f" ({name})"

    def _required(self, cells: list[str], name: str) -> str:
        value = self._cell(cells, name)
        if value == "":
            raise RowProblem(f"{self._named(name)} is empty")
        return value

    def record(self, cells: list[str]) -> dict[str, Any]:
        if len(cells) > len(self.header) and any(cells[len(self.header) :]):
            raise RowProblem(f"has {len(cells)} cells, the header {len(self.header)}")
        quantity = self._number(self._required(cells, "quantity"), "quantity")
        side = self._side(cells, quantity)
        if quantity == 0:
            raise RowProblem(f"{self._named('quantity')} is 0")
        account = self._required(cells, "account")
        record: dict[str, Any] = {
            "type": "fill",
            "exec_id": self._required(cells, "exec_id"),
            "account": account,
            "instrument": self._instrument(account, self._required(cells, "instrument")),
            "side": side,
            "quantity": decimal_text(str(abs(quantity)), "quantity"),
            "price": decimal_text(
                str(self._number(self._required(cells, "price"), "price")), "price"
            ),
            "ts": self._time(self._required(cells, "ts")),
        }
        commission = self._cell(cells, "commission")
        if commission:
            amount = self._number(commission, "commission")
            if self.mapping.negate_commission:
                amount = -amount
            record["commission"] = decimal_text(str(amount), "commission")
        for name in ("commission_currency", "client_order_id", "strategy"):
            value = self._cell(cells, name)
            if value:
                record[name] = value
        position_side = self._cell(cells, "position_side")
        if position_side:
            if position_side.upper() not in POSITION_SIDES:
                raise RowProblem(
                    f"{self._named('position_side')} {position_side!r} is not LONG, SHORT or BOTH"
                )
            record["position_side"] = position_side.upper()
        liquidation = self._liquidation(cells)
        if liquidation is not None:
            record["liquidation"] = liquidation
        try:
            parse_record(record)
        except InvalidInput as exc:
            raise RowProblem(f"the ledger would refuse the fill: {exc}") from None
        return record

    def _number(self, text: str, name: str) -> Decimal:
        """``text`` as the file writes numbers (numbers.decimal, numbers.thousands)."""
        mapping = self.mapping
        plain = text
        if mapping.thousands:
            whole, point, fraction = plain.partition(mapping.decimal)
            if mapping.thousands in fraction or not _grouped(whole, mapping.thousands):
                raise RowProblem(self._not_a_number(text, name))
            plain = whole.replace(mapping.thousands, "") + point + fraction
        if mapping.decimal == ",":
            if "." in plain:
                raise RowProblem(self._not_a_number(text, name))
            plain = plain.replace(",", ".")
        if not _NUMBER.match(plain):
            raise RowProblem(self._not_a_number(text, name))
        return Decimal(plain)

    def _not_a_number(self, text: str, name: str) -> str:
        thousands = repr(self.mapping.thousands) if self.mapping.thousands else "none"
        return (
            f"{self._named(name)} {text!r} is not a number written with decimal separator "
            f"{self.mapping.decimal!r} and thousands separator {thousands}"
        )

    def _side(self, cells: list[str], quantity: Decimal) -> str:
        if self.mapping.negative_quantity_is_sell:
            return "SELL" if quantity < 0 else "BUY"
        text = self._required(cells, "side")
        if self.mapping.sides is None or "side" not in self.sources:
            side = text.upper() if text.upper() in SIDES else None
        else:
            side = self.mapping.sides.get(text)
        if side is None:
            known = ", ".join(self.mapping.sides or SIDES)
            raise RowProblem(f"{self._named('side')} {text!r} is none of {known}")
        if quantity < 0 and side == "BUY":
            raise RowProblem(
                f"{self._named('quantity')} is negative ({quantity}) on a BUY: the sign and "
                "the side disagree"
            )
        return side

    def _instrument(self, account: str, value: str) -> str:
        if self.mapping.symbols_venue is None or self.symbols is None:
            return value
        instrument = self.symbols.instrument(account, value)
        if instrument is None:
            raise RowProblem(self.symbols.missing(account, value))
        return instrument

    def _liquidation(self, cells: list[str]) -> bool | None:
        if "liquidation" not in self.sources:
            constant = self.mapping.values.get("liquidation")
            return constant if isinstance(constant, bool) else None
        text = self._cell(cells, "liquidation").lower()
        if not text:
            return None
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise RowProblem(f"{self._named('liquidation')} {text!r} is not true or false")

    def _time(self, text: str) -> str:
        form = self.mapping.time_format
        if form in EPOCHS:
            return _epoch(text, form, self._named("ts"))
        try:
            if form == "iso":
                at = dt.datetime.fromisoformat(text)
            else:
                at = dt.datetime.strptime(text, form)
        except ValueError:
            written = "ISO 8601" if form == "iso" else f"as {form!r}"
            raise RowProblem(
                f"{self._named('ts')} {text!r} is not a time written {written}"
            ) from None
        if at.tzinfo is None:
            if self.zone is None:
                raise RowProblem(
                    f"{self._named('ts')} {text!r} has no UTC offset and the mapping gives no "
                    "time.timezone"
                )
            try:
                at = _localize(at, self.zone, self.mapping.ambiguous, self._named("ts"))
            except OverflowError:
                raise RowProblem(f"{self._named('ts')} {text!r} is out of range") from None
        return at.isoformat()


def _grouped(whole: str, separator: str) -> bool:
    """Whether the separators in ``whole`` (sign and digits) split it into thousands."""
    if separator not in whole:
        return True
    digits = whole.lstrip("+-")
    groups = digits.split(separator)
    return (
        1 <= len(groups[0]) <= 3
        and all(_INTEGER.match(group) for group in groups)
        and all(len(group) == 3 for group in groups[1:])
    )


def _localize(at: dt.datetime, zone: zoneinfo.ZoneInfo, ambiguous: str, named: str) -> dt.datetime:
    """A wall-clock time in ``zone``: refused when the clocks skipped it, and when they
    showed it twice unless ``ambiguous`` picks the earlier or later of the two."""
    first = at.replace(tzinfo=zone, fold=0)
    second = at.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    back = first.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None)
    if back != at:
        raise RowProblem(
            f"{named} {at.isoformat(sep=' ')} does not exist in {zone.key}: the clocks "
            "skipped it (daylight saving time began)"
        )
    if ambiguous == "reject":
        raise RowProblem(
            f"{named} {at.isoformat(sep=' ')} happened twice in {zone.key} (daylight saving "
            f"time ended, at {_offset(first)} and at {_offset(second)}): set time.ambiguous "
            "to earlier or later"
        )
    return first if ambiguous == "earlier" else second


def _offset(at: dt.datetime) -> str:
    return at.isoformat()[-6:]


def _epoch(text: str, form: str, named: str) -> str:
    if not _NUMBER.match(text) or text.startswith("+"):
        raise RowProblem(f"{named} {text!r} is not {form} (a number)")
    if form == "epoch_ms":
        if not _INTEGER.match(text):
            raise RowProblem(f"{named} {text!r} is not whole epoch milliseconds")
        try:
            return iso_from_ms(text, named)
        except (ValueError, OverflowError, OSError):
            raise RowProblem(f"{named} {text!r} is out of range") from None
    seconds = Decimal(text)
    whole = int(seconds)
    try:
        if not 0 < seconds < 2**53:
            raise ValueError
        at = dt.datetime.fromtimestamp(whole, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    except (ValueError, OverflowError, OSError):
        raise RowProblem(f"{named} {text!r} is out of range") from None
    fraction = format(seconds - whole, "f").partition(".")[2].rstrip("0")
    return f"{at}.{fraction}Z" if fraction else f"{at}Z"
