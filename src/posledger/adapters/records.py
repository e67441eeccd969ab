"""The JSONL interchange records of DESIGN §7 <-> domain inputs.

``parse_record`` turns one decoded JSON object into a domain input, or raises
:class:`~posledger.domain.refdata.InvalidInput` naming the field and what is wrong with it.
``to_record`` gives the canonical record of an input: the form the journal keeps and the
form whose digest tells a duplicate from a conflict.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from operator import attrgetter
from typing import Any

import msgspec

from ..domain.enums import (
    Intent,
    Kind,
    LotMethod,
    Mode,
    PositionMode,
    PositionSide,
    ReconcilePolicy,
    Side,
)
from ..domain.inputs import (
    BrokerPosition,
    Cancel,
    Fill,
    Halt,
    Input,
    Mark,
    Reconcile,
    Resume,
    Transfer,
)
from ..domain.numbers import ZERO, fmt, parse_decimal
from ..domain.refdata import Account, Instrument, InvalidInput, Order, Strategy
from ..domain.timestamps import format_ts, parse_ts

__all__ = ["RECORD_TYPES", "digest", "encode", "parse_record", "record_type", "to_record"]


class _Kind:
    """How one field is read from JSON and written back."""

    ID = "id"
    DECIMAL = "decimal"
    TS = "ts"
    BOOL = "bool"
    INT = "int"
    TEXT = "text"


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
}

RECORD_TYPES = tuple(_SPECS)
_TYPE_OF = {cls: name for name, (cls, _) in _SPECS.items()}
_ALLOWED = {name: {field for field, _, _ in spec} | {"type"} for name, (_, spec) in _SPECS.items()}


def record_type(item: Input) -> str:
    return _TYPE_OF[type(item)]


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"string {value!r}"
    return type(value).__name__


def _read(name: str, kind: object, value: object, api: bool) -> object:
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        if isinstance(value, str):
            for member in kind:
                if value == member.value or value.casefold() == member.value.casefold():
                    return member
        choices = ", ".join(member.value for member in kind)
        raise InvalidInput(f"{name} must be one of {choices}; got {_describe(value)}")
    if kind is _Kind.ID or kind is _Kind.TEXT:
        if isinstance(value, str):
            return value
        raise InvalidInput(f"{name} must be a string, got {_describe(value)}")
    if kind is _Kind.DECIMAL:
        if isinstance(value, str):
            try:
                return parse_decimal(value)
            except ValueError as exc:
                raise InvalidInput(f"{name}: {exc}") from None
        if api and isinstance(value, Decimal):
            if not value.is_finite():
                raise InvalidInput(f"{name} must be a finite number, got {value}")
            return _read(name, kind, format(value, "f"), api)
        if api and isinstance(value, int) and not isinstance(value, bool):
            return Decimal(value)
        raise InvalidInput(
            f'{name} must be a decimal string such as "1.25", got {_describe(value)}'
        )
    if kind is _Kind.TS:
        if isinstance(value, str):
            try:
                return parse_ts(value)
            except ValueError as exc:
                raise InvalidInput(f"{name}: {exc}") from None
        if api and isinstance(value, datetime):
            if value.tzinfo is None:
                raise InvalidInput(f"{name} must be an aware datetime (UTC)")
            return parse_ts(value.isoformat())
        raise InvalidInput(f"{name} must be an ISO 8601 time string, got {_describe(value)}")
    if kind is _Kind.BOOL:
        if isinstance(value, bool):
            return value
        raise InvalidInput(f"{name} must be true or false, got {_describe(value)}")
    if kind is _Kind.INT:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise InvalidInput(f"{name} must be an integer, got {_describe(value)}")
    raise AssertionError(kind)


def parse_record(obj: object, *, api: bool = False) -> Input:
    """Build the domain input a decoded JSON object describes.

    ``api=True`` (the Python API) also accepts ``Decimal`` and ``int`` amounts and aware
    ``datetime`` times; JSON input must use strings, as DESIGN §7 says.
    """
    if type(obj) is dict and not api:
        quick = _QUICK.get(obj.get("type"))  # type: ignore[arg-type]
        if quick is not None:
            item = quick(obj)
            if item is not None:
                return item
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
    unknown = [key for key in obj if key not in _ALLOWED[kind]]
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r} for type {kind}")
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


_SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}
_POSITION_SIDES = {
    None: None,
    "BOTH": PositionSide.BOTH,
    "LONG": PositionSide.LONG,
    "SHORT": PositionSide.SHORT,
}
_FILL_FIELDS = _ALLOWED["fill"]


def _quick_fill(obj: dict[str, Any]) -> Fill | None:
    """The common, well-formed fill, read fast. None hands the record to the general
    reader, which gives the precise message when something is wrong."""
    if not _FILL_FIELDS.issuperset(obj):
        return None
    try:
        exec_id, account, instrument = obj["exec_id"], obj["account"], obj["instrument"]
        side = _SIDES[obj["side"]]
        quantity, price, ts = obj["quantity"], obj["price"], obj["ts"]
        position_side = _POSITION_SIDES[obj.get("position_side")]
    except (KeyError, TypeError):
        return None
    commission = obj.get("commission")
    liquidation = obj.get("liquidation", False)
    if not (
        type(exec_id) is str
        and type(account) is str
        and type(instrument) is str
        and type(quantity) is str
        and type(price) is str
        and type(ts) is str
        and (commission is None or type(commission) is str)
        and type(liquidation) is bool
    ):
        return None
    optional = (obj.get("client_order_id"), obj.get("strategy"), obj.get("commission_currency"))
    if any(value is not None and type(value) is not str for value in optional):
        return None
    try:
        return Fill(
            exec_id,
            account,
            instrument,
            side,
            parse_decimal(quantity),
            parse_decimal(price),
            parse_ts(ts),
            optional[0],
            optional[1],
            ZERO if commission is None else parse_decimal(commission),
            optional[2],
            position_side,
            liquidation,
        )
    except ValueError:
        return None


_INTENTS = {intent.value: intent for intent in Intent}
_ORDER_FIELDS = _ALLOWED["order"]


def _quick_order(obj: dict[str, Any]) -> Order | None:
    """The common, well-formed order, read fast (see :func:`_quick_fill`)."""
    if not _ORDER_FIELDS.issuperset(obj):
        return None
    try:
        values = (obj["client_order_id"], obj["account"], obj["strategy"], obj["instrument"])
        side = _SIDES[obj["side"]]
        intent = _INTENTS[obj["intent"]]
        quantity = obj["quantity"]
        position_side = _POSITION_SIDES[obj.get("position_side")]
    except (KeyError, TypeError):
        return None
    bracket_id, ts = obj.get("bracket_id"), obj.get("ts")
    if not (
        all(type(value) is str for value in values)
        and type(quantity) is str
        and (bracket_id is None or type(bracket_id) is str)
        and (ts is None or type(ts) is str)
    ):
        return None
    try:
        return Order(
            *values,
            side,
            parse_decimal(quantity),
            intent,
            position_side,
            bracket_id,
            None if ts is None else parse_ts(ts),
        )
    except ValueError:
        return None


_QUICK = {"fill": _quick_fill, "order": _quick_order}


def _writer(kind: object) -> Any:
    if kind is _Kind.TS:
        return format_ts
    if kind is _Kind.DECIMAL:
        return fmt
    return None


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
