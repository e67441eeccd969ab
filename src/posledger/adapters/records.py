"""The JSONL interchange records of docs/format.md <-> domain inputs.

``parse_text`` turns one JSON text (a JSONL line) into a domain input, ``parse_record``
one decoded JSON object (or the fields given to the Python API); both raise
:class:`~posledger.domain.refdata.InvalidInput` naming the field and what is wrong with it.
Every limit of docs/format.md ("Limits") is checked here or by the input itself, so that
nothing a database would refuse gets past them.
``to_record`` gives the canonical record of an input: the form the journal keeps and the
form whose digest tells a duplicate from a conflict.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from functools import partial
from operator import attrgetter
from typing import Any, Union

import msgspec

from ..domain.enums import (
    Intent,
    Kind,
    LotMethod,
    Mode,
    OrderType,
    PositionMode,
    PositionSide,
    ReconcilePolicy,
    Side,
)
from ..domain.inputs import (
    BrokerPosition,
    Cancel,
    CommandAck,
    CommandFailed,
    Fill,
    Halt,
    Input,
    Mark,
    Reconcile,
    Resume,
    SetBracket,
    Sweep,
    Transfer,
)
from ..domain.numbers import (
    MAX_INTEGER_DIGITS,
    ZERO,
    amount_problem,
    fmt,
    parse_amount,
    quote,
)
from ..domain.refdata import (
    Account,
    BracketSpec,
    Distance,
    Instrument,
    InvalidInput,
    Order,
    OrderSpec,
    Strategy,
)
from ..domain.timestamps import datetime_ns, format_ts, parse_ts

__all__ = [
    "MAX_COUNT",
    "MAX_DEPTH",
    "RECORD_TYPES",
    "digest",
    "encode",
    "generic_record",
    "parse_record",
    "parse_text",
    "record_name",
    "record_type",
    "to_record",
]


class _Kind:
    """How one field is read from JSON and written back."""

    ID = "id"
    DECIMAL = "decimal"
    TS = "ts"
    BOOL = "bool"
    INT = "int"
    TEXT = "text"
    DISTANCE = "distance"
    """A default bracket distance: "20 ticks" or "0.5%"."""
    SPEC = "spec"
    """A bracket leg: a price (a limit take-profit, a stop stop-loss) or an object."""
    BRACKET = "bracket"
    """An object with ``take_profit`` and/or ``stop_loss`` legs."""


Spec = tuple[str, object, bool]  # field name, _Kind or StrEnum class, required

_SPECS: dict[str, tuple[type[Any], tuple[Spec, ...]]] = {
    "account": (
        Account,
        (
            ("account", _Kind.ID, True),
            ("venue", _Kind.ID, True),
            ("mode", Mode, True),
            ("position_mode", PositionMode, True),
            ("lot_method", LotMethod, False),
            ("reconcile_policy", ReconcilePolicy, False),
        ),
    ),
    "instrument": (
        Instrument,
        (
            ("instrument", _Kind.ID, True),
            ("kind", Kind, True),
            ("multiplier", _Kind.DECIMAL, True),
            ("quote_currency", _Kind.ID, True),
            ("settlement_currency", _Kind.ID, True),
            ("base_currency", _Kind.ID, False),
            ("tick_size", _Kind.DECIMAL, False),
            ("lot_size", _Kind.DECIMAL, False),
            ("inverse", _Kind.BOOL, False),
            ("allow_negative_prices", _Kind.BOOL, False),
        ),
    ),
    "strategy": (
        Strategy,
        (
            ("strategy", _Kind.ID, True),
            ("adopt_orphans", _Kind.BOOL, False),
            ("max_open_slots", _Kind.INT, False),
            ("take_profit", _Kind.DISTANCE, False),
            ("stop_loss", _Kind.DISTANCE, False),
        ),
    ),
    "order": (
        Order,
        (
            ("client_order_id", _Kind.ID, True),
            ("account", _Kind.ID, True),
            ("strategy", _Kind.ID, True),
            ("instrument", _Kind.ID, True),
            ("side", Side, True),
            ("quantity", _Kind.DECIMAL, True),
            ("intent", Intent, True),
            ("position_side", PositionSide, False),
            ("bracket_id", _Kind.ID, False),
            ("ts", _Kind.TS, False),
            ("bracket", _Kind.BRACKET, False),
        ),
    ),
    "fill": (
        Fill,
        (
            ("exec_id", _Kind.ID, True),
            ("account", _Kind.ID, True),
            ("instrument", _Kind.ID, True),
            ("side", Side, True),
            ("quantity", _Kind.DECIMAL, True),
            ("price", _Kind.DECIMAL, True),
            ("ts", _Kind.TS, True),
            ("client_order_id", _Kind.ID, False),
            ("strategy", _Kind.ID, False),
            ("commission", _Kind.DECIMAL, False),
            ("commission_currency", _Kind.ID, False),
            ("position_side", PositionSide, False),
            ("liquidation", _Kind.BOOL, False),
        ),
    ),
    "mark": (
        Mark,
        (
            ("instrument", _Kind.ID, True),
            ("price", _Kind.DECIMAL, True),
            ("ts", _Kind.TS, False),
            ("high", _Kind.DECIMAL, False),
            ("low", _Kind.DECIMAL, False),
        ),
    ),
    "broker_position": (
        BrokerPosition,
        (
            ("account", _Kind.ID, True),
            ("instrument", _Kind.ID, True),
            ("quantity", _Kind.DECIMAL, True),
            ("position_side", PositionSide, False),
            ("avg_price", _Kind.DECIMAL, False),
            ("ts", _Kind.TS, False),
            ("position_mode", PositionMode, False),
        ),
    ),
    "transfer": (
        Transfer,
        (
            ("account", _Kind.ID, True),
            ("instrument", _Kind.ID, True),
            ("from_strategy", _Kind.ID, True),
            ("to_strategy", _Kind.ID, True),
            ("quantity", _Kind.DECIMAL, True),
            ("position_side", PositionSide, False),
            ("price", _Kind.DECIMAL, False),
            ("ts", _Kind.TS, False),
            ("transfer_id", _Kind.ID, False),
        ),
    ),
    "halt": (
        Halt,
        (
            ("account", _Kind.ID, True),
            ("instrument", _Kind.ID, True),
            ("reason", _Kind.TEXT, False),
            ("ts", _Kind.TS, False),
        ),
    ),
    "resume": (
        Resume,
        (
            ("account", _Kind.ID, True),
            ("instrument", _Kind.ID, True),
            ("ts", _Kind.TS, False),
        ),
    ),
    "reconcile": (
        Reconcile,
        (
            ("run", _Kind.ID, True),
            ("account", _Kind.ID, True),
            ("instrument", _Kind.ID, True),
            ("position_side", PositionSide, True),
            ("quantity", _Kind.DECIMAL, True),
            ("policy", ReconcilePolicy, True),
            ("price_tolerance", _Kind.DECIMAL, True),
            ("ts", _Kind.TS, True),
            ("avg_price", _Kind.DECIMAL, False),
            ("with_history", _Kind.BOOL, False),
        ),
    ),
    "cancel": (
        Cancel,
        (
            ("client_order_id", _Kind.ID, True),
            ("ts", _Kind.TS, False),
        ),
    ),
    "bracket": (
        SetBracket,
        (
            ("account", _Kind.ID, True),
            ("instrument", _Kind.ID, True),
            ("strategy", _Kind.ID, True),
            ("position_side", PositionSide, False),
            ("take_profit", _Kind.SPEC, False),
            ("stop_loss", _Kind.SPEC, False),
            ("bracket_id", _Kind.ID, False),
            ("ts", _Kind.TS, False),
        ),
    ),
    "command_ack": (
        CommandAck,
        (
            ("command_id", _Kind.ID, True),
            ("broker_order_id", _Kind.ID, False),
            ("instrument", _Kind.ID, False),
            ("kind", _Kind.ID, False),
            ("client_order_id", _Kind.ID, False),
            ("quantity", _Kind.DECIMAL, False),
            ("ts", _Kind.TS, False),
        ),
    ),
    "command_failed": (
        CommandFailed,
        (
            ("command_id", _Kind.ID, True),
            ("reason", _Kind.TEXT, True),
            ("instrument", _Kind.ID, False),
            ("kind", _Kind.ID, False),
            ("client_order_id", _Kind.ID, False),
            ("quantity", _Kind.DECIMAL, False),
            ("ts", _Kind.TS, False),
        ),
    ),
    "sweep": (
        Sweep,
        (
            ("instrument", _Kind.ID, True),
            ("ts", _Kind.TS, False),
        ),
    ),
}

RECORD_TYPES = tuple(_SPECS)
_TYPE_OF = {cls: name for name, (cls, _) in _SPECS.items()}
_ALLOWED = {name: {field for field, _, _ in spec} | {"type"} for name, (_, spec) in _SPECS.items()}

MIN_COUNT = 1
MAX_COUNT = 2**31 - 1
"""Integer fields (``max_open_slots``) are counts from 1 to 2**31 - 1: a 32-bit column."""


def record_type(item: Input) -> str:
    return _TYPE_OF[type(item)]


def record_name(cls: type[Any]) -> str:
    """The record type of a class of inputs."""
    return _TYPE_OF[cls]


_BIG = 10**38


def _describe(value: object) -> str:
    """A value as a message shows it: JSON's names, and never more than a few dozen
    characters of what was sent."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        if not -_BIG < value < _BIG:  # do not print them all
            return "a number of more than 38 digits"
        return f"number {value!r}"
    if isinstance(value, float):
        return f"number {value!r}"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"string {quote(value)}"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, Decimal):
        return f"Decimal {quote(str(value))}"
    return type(value).__name__


def _field_name(key: object) -> str:
    """A field name as a message quotes it."""
    return quote(key) if isinstance(key, str) else _describe(key)


def _members(kind: type[StrEnum]) -> dict[str, Any]:
    """An enumeration's members by value, and by value in lower case: enumerated values
    are matched case-insensitively, ASCII letters only."""
    table: dict[str, Any] = {member.value.lower(): member for member in kind}
    table.update({member.value: member for member in kind})
    return table


_MEMBERS: dict[object, dict[str, Any]] = {
    kind: _members(kind)
    for _, spec in _SPECS.values()
    for _, kind, _ in spec
    if isinstance(kind, type) and issubclass(kind, StrEnum)
}
_MEMBERS[OrderType] = _members(OrderType)


def _member(table: dict[str, Any], value: str) -> Any:
    """The member ``value`` names, or KeyError."""
    found = table.get(value)
    if found is None and value.isascii():
        found = table.get(value.lower())
    if found is None:
        raise KeyError(value)
    return found


def _amount(name: str, value: object, api: bool) -> Decimal:
    if isinstance(value, str):
        try:
            return parse_amount(value)
        except ValueError as exc:
            raise InvalidInput(f"{name}: {exc}") from None
    if api and isinstance(value, Decimal):
        problem = amount_problem(value)
        if problem is not None:
            raise InvalidInput(f"{name}: {quote(str(value))} {problem}")
        return Decimal(fmt(value))  # canonical: 1.50 -> 1.5, 1E+3 -> 1000, -0 -> 0
    if api and isinstance(value, int) and not isinstance(value, bool):
        if -(10**MAX_INTEGER_DIGITS) < value < 10**MAX_INTEGER_DIGITS:
            return Decimal(value)
        raise InvalidInput(
            f"{name} has more than {MAX_INTEGER_DIGITS} digits before the decimal point,"
            f" got {_describe(value)}"
        )
    raise InvalidInput(f'{name} must be a decimal string such as "1.25", got {_describe(value)}')


def _time(name: str, value: object, api: bool) -> int:
    if isinstance(value, str):
        try:
            return parse_ts(value)
        except ValueError as exc:
            raise InvalidInput(f"{name}: {exc}") from None
    if api and isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInput(f"{name} must be an aware datetime (UTC)")
        try:
            return datetime_ns(value)
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidInput(f"{name}: {exc}") from None
    raise InvalidInput(f"{name} must be an ISO 8601 time string, got {_describe(value)}")


def _count(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"{name} must be an integer, got {_describe(value)}")
    if value < MIN_COUNT:
        raise InvalidInput(f"{name} must be at least {MIN_COUNT}, got {_describe(value)}")
    if value > MAX_COUNT:
        raise InvalidInput(f"{name} must be at most {MAX_COUNT}, got {_describe(value)}")
    return value


def _read(name: str, kind: object, value: object, api: bool) -> object:
    if kind in _MEMBERS:
        if isinstance(value, str):
            try:
                return _member(_MEMBERS[kind], value)
            except KeyError:
                pass
        assert isinstance(kind, type) and issubclass(kind, StrEnum)
        choices = ", ".join(member.value for member in kind)
        raise InvalidInput(f"{name} must be one of {choices}; got {_describe(value)}")
    if kind is _Kind.ID or kind is _Kind.TEXT:
        if isinstance(value, str):
            return value
        raise InvalidInput(f"{name} must be a string, got {_describe(value)}")
    if kind is _Kind.DECIMAL:
        return _amount(name, value, api)
    if kind is _Kind.TS:
        return _time(name, value, api)
    if kind is _Kind.BOOL:
        if isinstance(value, bool):
            return value
        raise InvalidInput(f"{name} must be true or false, got {_describe(value)}")
    if kind is _Kind.INT:
        return _count(name, value)
    if kind is _Kind.SPEC:
        return _leg(name, value, api)
    if kind is _Kind.DISTANCE:
        if isinstance(value, Distance) and api:
            return value
        if not isinstance(value, str):
            raise InvalidInput(
                f'{name} must be a string such as "20 ticks" or "0.5%", got {_describe(value)}'
            )
        try:
            return Distance.parse(value)
        except InvalidInput as exc:
            raise InvalidInput(f"{name}: {exc}") from None
    if kind is _Kind.BRACKET:
        if not isinstance(value, Mapping):
            raise InvalidInput(
                f"{name} must be an object with take_profit and/or stop_loss, got "
                f"{_describe(value)}"
            )
        for key in value:
            if key not in ("take_profit", "stop_loss"):
                raise InvalidInput(f"unknown field {_field_name(key)} in {name}")
        legs = {
            leg: _leg(f"{name}.{leg}", value[leg], api)
            for leg in ("take_profit", "stop_loss")
            if value.get(leg) is not None
        }
        try:
            return BracketSpec(**legs)
        except InvalidInput as exc:
            raise InvalidInput(f"{name}: {exc}") from None
    raise AssertionError(kind)


_LEG_FIELDS = ("order_type", "price", "stop_price")


def _leg(name: str, value: object, api: bool) -> OrderSpec:
    """A bracket leg: a price alone (a take-profit is a limit there, a stop-loss a stop
    there) or an object ``{"order_type", "price", "stop_price"}``."""
    stop = name.endswith("stop_loss")
    if isinstance(value, str) or (api and isinstance(value, Decimal | int)):
        at = _amount(name, value, api)
        if stop:
            return OrderSpec(OrderType.STOP, stop_price=at)
        return OrderSpec(OrderType.LIMIT, price=at)
    if isinstance(value, OrderSpec) and api:
        return value
    if not isinstance(value, Mapping):
        raise InvalidInput(
            f'{name} must be a price such as "6875.00" or an object with order_type, price '
            f"and stop_price, got {_describe(value)}"
        )
    for key in value:
        if key not in _LEG_FIELDS:
            raise InvalidInput(f"unknown field {_field_name(key)} in {name}")
    kind = value.get("order_type")
    if kind is None:
        raise InvalidInput(f"missing field 'order_type' in {name}")
    order_type = _read(f"{name}.order_type", OrderType, kind, api)
    limit = value.get("price")
    stop_price = value.get("stop_price")
    try:
        return OrderSpec(
            order_type,  # type: ignore[arg-type]
            None if limit is None else _amount(f"{name}.price", limit, api),
            None if stop_price is None else _amount(f"{name}.stop_price", stop_price, api),
        )
    except InvalidInput as exc:
        raise InvalidInput(f"{name}: {exc}") from None


def parse_record(obj: object, *, api: bool = False) -> Input:
    """Build the domain input a decoded JSON object describes.

    ``api=True`` (the Python API) also accepts ``Decimal`` and ``int`` amounts and aware
    ``datetime`` times, within the same limits; JSON input must use strings, as docs/format.md
    says. Every limit of docs/format.md ("Limits") is checked here or by the input itself.
    """
    if not isinstance(obj, Mapping):
        raise InvalidInput(f"a record must be a JSON object, got {_describe(obj)}")
    kind = obj.get("type")
    if kind is None:
        raise InvalidInput("missing field 'type'")
    if not isinstance(kind, str) or kind not in _SPECS:
        raise InvalidInput(
            f"unknown type {_describe(kind)}; expected one of {', '.join(RECORD_TYPES)}"
        )
    cls, spec = _SPECS[kind]
    allowed = _ALLOWED[kind]
    for key in obj:
        if key not in allowed:
            raise InvalidInput(f"unknown field {_field_name(key)} for type {kind}")
    values: dict[str, object] = {}
    for name, field_kind, required in spec:
        value = obj.get(name)
        if value is None:
            if required:
                raise InvalidInput(f"missing field {name!r}")
            continue
        values[name] = _read(name, field_kind, value, api)
    try:
        return cls(**values)  # type: ignore[no-any-return]
    except InvalidInput:
        raise
    except (TypeError, ValueError) as exc:
        raise InvalidInput(str(exc)) from None


# -- JSON text ------------------------------------------------------------------------
#
# A line is decoded straight into a typed struct of its record type (msgspec checks the
# JSON types and refuses unknown fields as it reads), then into the domain input. Whatever
# that fast path does not take -- a malformed line, a wrong type, a bad value, a duplicate
# field -- goes to the general reader above, which says precisely what is wrong.

_STRUCT_TYPES: dict[object, Any] = {
    _Kind.ID: str,
    _Kind.DECIMAL: str,
    _Kind.TS: str,
    _Kind.BOOL: bool,
    _Kind.INT: int,
    _Kind.TEXT: str,
}


_NESTED = (_Kind.SPEC, _Kind.BRACKET)


def _struct(name: str, spec: tuple[Spec, ...]) -> type[msgspec.Struct]:
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for field, kind, required in spec:
        if kind in _NESTED:
            continue  # a line that has it is read by the general reader
        typ = _STRUCT_TYPES.get(kind, str)
        if required:
            fields.append((field, typ))
        else:
            fields.append((field, Union[typ, None, msgspec.UnsetType], msgspec.UNSET))  # noqa: UP007
    return msgspec.defstruct(
        f"{name}_record",
        fields,
        tag_field="type",
        tag=name,
        forbid_unknown_fields=True,
        kw_only=True,
    )


_STRUCTS = {name: _struct(name, spec) for name, (_, spec) in _SPECS.items()}
_typed_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(
    Union[tuple(_STRUCTS.values())]  # noqa: UP007
)
_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder()

_UNSET = msgspec.UNSET


def _int_count(value: int) -> int:
    if MIN_COUNT <= value <= MAX_COUNT:
        return value
    raise ValueError(value)


def _fast_reader(kind: object) -> Any:
    """How the fast path reads a field's struct value (None: as it is)."""
    if kind in _MEMBERS:
        return partial(_member, _MEMBERS[kind])
    if kind is _Kind.DECIMAL:
        return parse_amount
    if kind is _Kind.TS:
        return parse_ts
    if kind is _Kind.INT:
        return _int_count
    if kind is _Kind.DISTANCE:
        return Distance.parse
    return None


def _converter(cls: type[Any], spec: tuple[Spec, ...]) -> Any:
    """Struct -> (input, number of '"' its JSON text has): any record type."""
    readers = tuple((field, _fast_reader(kind)) for field, kind, _ in spec if kind not in _NESTED)

    def convert(record: Any) -> tuple[Input, int]:
        quotes = 4  # "type": "name"
        values: dict[str, object] = {}
        for field, read in readers:
            value = getattr(record, field)
            if value is _UNSET:
                continue
            if value is None:
                quotes += 2
                continue
            quotes += 4 if type(value) is str else 2
            values[field] = value if read is None else read(value)
        return cls(**values), quotes

    return convert


# Exact or lower-case values; any other spelling goes to the general reader.
_SIDES = _MEMBERS[Side]
_POSITION_SIDES = _MEMBERS[PositionSide]
_INTENTS = _MEMBERS[Intent]


def _required_quotes(name: str) -> int:
    """The '"' of a record's type and required fields (all of them strings)."""
    spec = _SPECS[name][1]
    assert all(_STRUCT_TYPES.get(kind, str) is str for _, kind, required in spec if required)
    return 4 + 4 * sum(required for _, _, required in spec)


_FILL_QUOTES = _required_quotes("fill")
_ORDER_QUOTES = _required_quotes("order")


def _optional_quotes(*values: object) -> int:
    quotes = 0
    for value in values:
        if value is not _UNSET:
            quotes += 2 if value is None or type(value) is bool else 4
    return quotes


def _fill(record: Any) -> tuple[Fill, int]:
    """:func:`_converter` of a fill, written out: fills are most of every stream."""
    quotes = _FILL_QUOTES
    cid = record.client_order_id
    if cid is _UNSET:
        cid = None
    else:
        quotes += 2 if cid is None else 4
    strategy = record.strategy
    if strategy is _UNSET:
        strategy = None
    else:
        quotes += 2 if strategy is None else 4
    commission = record.commission
    if commission is _UNSET:
        commission = ZERO
    elif commission is None:
        quotes += 2
        commission = ZERO
    else:
        quotes += 4
        commission = parse_amount(commission)
    currency = record.commission_currency
    if currency is _UNSET:
        currency = None
    else:
        quotes += 2 if currency is None else 4
    position_side = record.position_side
    if position_side is _UNSET:
        position_side = None
    elif position_side is None:
        quotes += 2
    else:
        quotes += 4
        position_side = _POSITION_SIDES[position_side]
    liquidation = record.liquidation
    if liquidation is not _UNSET:
        quotes += 2
    fill = Fill(
        record.exec_id,
        record.account,
        record.instrument,
        _SIDES[record.side],
        parse_amount(record.quantity),
        parse_amount(record.price),
        parse_ts(record.ts),
        cid,
        strategy,
        commission,
        currency,
        position_side,
        liquidation is True,
    )
    return fill, quotes


def _order(record: Any) -> tuple[Order, int]:
    """:func:`_converter` of an order, written out."""
    position_side, bracket_id, ts = record.position_side, record.bracket_id, record.ts
    quotes = _ORDER_QUOTES + _optional_quotes(position_side, bracket_id, ts)
    order = Order(
        record.client_order_id,
        record.account,
        record.strategy,
        record.instrument,
        _member(_SIDES, record.side),
        parse_amount(record.quantity),
        _member(_INTENTS, record.intent),
        None
        if position_side is _UNSET or position_side is None
        else _member(_POSITION_SIDES, position_side),
        None if bracket_id is _UNSET else bracket_id,
        None if ts is _UNSET or ts is None else parse_ts(ts),
    )
    return order, quotes


_CONVERTERS: dict[type[Any], Any] = {
    _STRUCTS[name]: _converter(cls, spec) for name, (cls, spec) in _SPECS.items()
}
_CONVERTERS[_STRUCTS["fill"]] = _fill
_CONVERTERS[_STRUCTS["order"]] = _order


def _delimiters(text: str) -> int:
    """How many '"' of a valid JSON text delimit strings: all of them but the escaped."""
    count = text.count('"')
    if "\\" in text:
        count -= text.replace("\\\\", "").count('\\"')
    return count


def parse_text(text: str) -> Input:
    """Build the domain input one JSON text (a JSONL line) describes, or raise
    :class:`InvalidInput` saying what is wrong with it."""
    try:
        record = _typed_decoder.decode(text)
        item, quotes = _CONVERTERS[type(record)](record)
    except (msgspec.DecodeError, ValueError, KeyError, TypeError, RecursionError):
        pass
    else:
        # Every field is a string key and a scalar value: one more '"' than the record's
        # fields account for means a field was given twice (msgspec keeps the last).
        if quotes == _delimiters(text):
            return item  # type: ignore[no-any-return]
    return parse_record(_decode(text))


def _decode(text: str) -> object:
    """Decode any JSON text, refusing duplicate fields; InvalidInput says what is wrong."""
    try:
        obj = _decoder.decode(text)
    except UnicodeEncodeError as exc:  # a str holding a lone surrogate is not Unicode text
        raise InvalidInput(
            f"not valid Unicode text: a lone surrogate U+{ord(text[exc.start]):04X}"
            f" at character {exc.start + 1}"
        ) from None
    except RecursionError:
        raise InvalidInput(_TOO_DEEP) from None
    except msgspec.ValidationError:  # valid JSON, but a number no field could hold
        raise InvalidInput("unreadable JSON: a number out of range") from None
    except msgspec.DecodeError as exc:
        lone = _lone_surrogate(text)
        if lone is not None:
            escape, at = lone
            raise InvalidInput(
                f"malformed JSON: invalid \\u escape: a lone surrogate ({escape} at"
                f" character {at + 1}); a character beyond U+FFFF is written as a pair"
                " such as \\ud83d\\ude00"
            ) from None
        raise InvalidInput(f"malformed JSON: {exc}") from None
    if isinstance(obj, (dict, list)):
        if _depth(obj) > MAX_DEPTH:
            raise InvalidInput(_TOO_DEEP)
        if isinstance(obj, dict):
            _refuse_duplicates(text)
    return obj


MAX_DEPTH = 32
"""Levels of arrays and objects a line may nest (a record is one flat object)."""
_TOO_DEEP = f"JSON nested more than {MAX_DEPTH} levels deep"


def _depth(obj: object) -> int:
    """How deep arrays and objects nest in a decoded JSON value."""
    deepest = 0
    pending = [(obj, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, depth)
            if depth <= MAX_DEPTH:
                pending.extend((item, depth + 1) for item in value)
    return deepest


_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)


def _lone_surrogate(text: str) -> tuple[str, int] | None:
    """The first ``\\uXXXX`` escape of a surrogate not paired high-then-low, and where."""
    high: tuple[str, int, int] | None = None
    for match in _ESCAPE.finditer(text):
        code = match.group(1)
        unit = -1 if code is None else int(code, 16)
        if high is not None:
            if match.start() == high[2] and 0xDC00 <= unit <= 0xDFFF:
                high = None
                continue
            return high[0], high[1]
        if 0xD800 <= unit <= 0xDBFF:
            high = (match.group(0), match.start(), match.end())
        elif 0xDC00 <= unit <= 0xDFFF:
            return match.group(0), match.start()
    return None if high is None else (high[0], high[1])


class _Pairs(list[tuple[str, object]]):
    """A JSON object as read, its fields in order, duplicates kept."""


def _scalar(_: str) -> None:
    return None


def _refuse_duplicates(text: str) -> None:
    """InvalidInput naming the first field given twice in an object of a JSON text."""
    try:
        root = json.loads(
            text,
            object_pairs_hook=_Pairs,
            parse_int=_scalar,
            parse_float=_scalar,
            parse_constant=_scalar,
        )
    except (ValueError, RecursionError):  # msgspec read it: nothing more to find here
        return
    pending: list[tuple[str, object]] = [("", root)]
    while pending:
        path, value = pending.pop(0)
        if isinstance(value, _Pairs):
            seen: set[str] = set()
            for key, item in value:
                if key in seen:
                    where = f" in {quote(path)}" if path else ""
                    raise InvalidInput(f"duplicate field {quote(key)}{where}")
                seen.add(key)
                pending.append((f"{path}.{key}" if path else key, item))
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(value))


def _writer(kind: object) -> Any:
    if kind is _Kind.TS:
        return format_ts
    if kind is _Kind.DECIMAL:
        return fmt
    if kind in _NESTED:
        return _as_record
    if kind is _Kind.DISTANCE:
        return str
    return None


def _as_record(value: OrderSpec | BracketSpec) -> dict[str, Any]:
    return value.as_record()


_OMITTED = {"commission", "reconcile_policy"}
_DEFAULTS: dict[type[Any], dict[str, object]] = {
    cls: {f.name: f.default for f in fields(cls)} for cls, _ in _SPECS.values()
}
_WRITERS: dict[type[Any], tuple[str, Any, tuple[tuple[str, Any, object], ...]]] = {}
for _name, (_cls, _spec) in _SPECS.items():
    _WRITERS[_cls] = (
        _name,
        attrgetter(*(field for field, _, _ in _spec)),
        tuple(
            (
                field,
                _writer(kind),
                # Fields left out of the canonical record at their default: False flags,
                # a zero commission and the default reconciliation policy.
                _DEFAULTS[_cls].get(field) if kind is _Kind.BOOL or field in _OMITTED else None,
            )
            for field, kind, _ in _spec
        ),
    )


def to_record(item: Input) -> dict[str, object]:
    """The canonical record of an input: type first, then the fields that are set."""
    if type(item) is Fill:
        return _fill_record(item)
    return generic_record(item)


def _fill_record(fill: Fill) -> dict[str, object]:
    """:func:`generic_record` of a fill, written out: fills are most of every stream."""
    record: dict[str, object] = {
        "type": "fill",
        "exec_id": fill.exec_id,
        "account": fill.account,
        "instrument": fill.instrument,
        "side": fill.side,
        "quantity": fmt(fill.quantity),
        "price": fmt(fill.price),
        "ts": format_ts(fill.ts),
    }
    if fill.client_order_id is not None:
        record["client_order_id"] = fill.client_order_id
    if fill.strategy is not None:
        record["strategy"] = fill.strategy
    if fill.commission:
        record["commission"] = fmt(fill.commission)
    if fill.commission_currency is not None:
        record["commission_currency"] = fill.commission_currency
    if fill.position_side is not None:
        record["position_side"] = fill.position_side
    if fill.liquidation:
        record["liquidation"] = True
    return record


def generic_record(item: Input) -> dict[str, object]:
    """The canonical record of any input, from the field table above."""
    name, getter, writers = _WRITERS[type(item)]
    record: dict[str, object] = {"type": name}
    for (field, write, default), value in zip(writers, getter(item), strict=True):
        if value is None or (default is not None and value == default):
            continue
        record[field] = value if write is None else write(value)
    return record


_encoder = msgspec.json.Encoder()


def encode(record: Mapping[str, object]) -> str:
    return _encoder.encode(record).decode()


def digest(text: str) -> str:
    """A fingerprint of a canonical record's text (see :func:`encode`)."""
    return hashlib.sha256(text.encode()).hexdigest()
