"""Sierra Chart's DTC protocol in its JSON encoding: framing and what a client sends
(docs/venues/dtc.md).

Each message is a JSON object ended by a NUL byte. Message types, field names and
enumerations are those of DTCProtocol.h (protocol version 8). Pure: nothing here opens a
socket. :mod:`posledger.venues.dtc` re-exports all of it beside the parser.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .base import Rejection

__all__ = [
    "CURRENT_POSITIONS_REQUEST",
    "HEARTBEAT",
    "HISTORICAL_ORDER_FILLS_REQUEST",
    "HISTORICAL_ORDER_FILL_RESPONSE",
    "JSON_ENCODING_REQUEST",
    "LOGON_REQUEST",
    "LOGON_RESPONSE",
    "MESSAGE_NAMES",
    "OPEN_ORDERS_REQUEST",
    "ORDER_UPDATE",
    "POSITION_UPDATE",
    "PROTOCOL_VERSION",
    "TRADE_ACCOUNTS_REQUEST",
    "TRADE_ACCOUNT_RESPONSE",
    "Frame",
    "Framer",
    "current_positions_request",
    "decode",
    "encode",
    "heartbeat",
    "historical_order_fills_request",
    "json_kind",
    "logon_request",
    "open_orders_request",
    "trade_accounts_request",
]

PROTOCOL_VERSION = 8

# Message types (DTCProtocol.h).
LOGON_REQUEST = 1
LOGON_RESPONSE = 2
HEARTBEAT = 3
LOGOFF = 5
ENCODING_REQUEST = 6
ENCODING_RESPONSE = 7
OPEN_ORDERS_REQUEST = 300
ORDER_UPDATE = 301
OPEN_ORDERS_REJECT = 302
HISTORICAL_ORDER_FILLS_REQUEST = 303
HISTORICAL_ORDER_FILL_RESPONSE = 304
CURRENT_POSITIONS_REQUEST = 305
POSITION_UPDATE = 306
CURRENT_POSITIONS_REJECT = 307
HISTORICAL_ORDER_FILLS_REJECT = 308
TRADE_ACCOUNTS_REQUEST = 400
TRADE_ACCOUNT_RESPONSE = 401
ACCOUNT_BALANCE_UPDATE = 600

MESSAGE_NAMES = {
    LOGON_REQUEST: "LOGON_REQUEST",
    LOGON_RESPONSE: "LOGON_RESPONSE",
    HEARTBEAT: "HEARTBEAT",
    LOGOFF: "LOGOFF",
    ENCODING_REQUEST: "ENCODING_REQUEST",
    ENCODING_RESPONSE: "ENCODING_RESPONSE",
    OPEN_ORDERS_REQUEST: "OPEN_ORDERS_REQUEST",
    ORDER_UPDATE: "ORDER_UPDATE",
    OPEN_ORDERS_REJECT: "OPEN_ORDERS_REJECT",
    HISTORICAL_ORDER_FILLS_REQUEST: "HISTORICAL_ORDER_FILLS_REQUEST",
    HISTORICAL_ORDER_FILL_RESPONSE: "HISTORICAL_ORDER_FILL_RESPONSE",
    CURRENT_POSITIONS_REQUEST: "CURRENT_POSITIONS_REQUEST",
    POSITION_UPDATE: "POSITION_UPDATE",
    CURRENT_POSITIONS_REJECT: "CURRENT_POSITIONS_REJECT",
    HISTORICAL_ORDER_FILLS_REJECT: "HISTORICAL_ORDER_FILLS_REJECT",
    TRADE_ACCOUNTS_REQUEST: "TRADE_ACCOUNTS_REQUEST",
    TRADE_ACCOUNT_RESPONSE: "TRADE_ACCOUNT_RESPONSE",
    ACCOUNT_BALANCE_UPDATE: "ACCOUNT_BALANCE_UPDATE",
}

# EncodingEnum, LogonStatusEnum, TradeModeEnum, BuySellEnum.
JSON_ENCODING = 2
LOGON_SUCCESS = 1
LOGON_STATUS = {
    1: "LOGON_SUCCESS",
    2: "LOGON_ERROR",
    3: "LOGON_ERROR_NO_RECONNECT",
    4: "LOGON_RECONNECT_NEW_ADDRESS",
}
TRADE_MODES = {"DEMO": 1, "SIMULATED": 2, "LIVE": 3}
SIDES = {1: "BUY", 2: "SELL"}

# OrderUpdateReasonEnum.
OPEN_ORDERS_REQUEST_RESPONSE = 1
ORDER_FILLED = 4
ORDER_FILLED_PARTIALLY = 5
ORDER_UPDATE_REASONS = {
    0: "ORDER_UPDATE_REASON_UNSET",
    1: "OPEN_ORDERS_REQUEST_RESPONSE",
    2: "NEW_ORDER_ACCEPTED",
    3: "GENERAL_ORDER_UPDATE",
    4: "ORDER_FILLED",
    5: "ORDER_FILLED_PARTIALLY",
    6: "ORDER_CANCELED",
    7: "ORDER_CANCEL_REPLACE_COMPLETE",
    8: "NEW_ORDER_REJECTED",
    9: "ORDER_CANCEL_REJECTED",
    10: "ORDER_CANCEL_REPLACE_REJECTED",
}
ORDER_STATUSES = {
    0: "ORDER_STATUS_UNSPECIFIED",
    1: "ORDER_STATUS_ORDER_SENT",
    2: "ORDER_STATUS_PENDING_OPEN",
    3: "ORDER_STATUS_PENDING_CHILD",
    4: "ORDER_STATUS_OPEN",
    5: "ORDER_STATUS_PENDING_CANCEL_REPLACE",
    6: "ORDER_STATUS_PENDING_CANCEL",
    7: "ORDER_STATUS_FILLED",
    8: "ORDER_STATUS_CANCELED",
    9: "ORDER_STATUS_REJECTED",
    10: "ORDER_STATUS_PARTIALLY_FILLED",
}

JSON_ENCODING_REQUEST = struct.pack(
    "<HHii4s", 16, ENCODING_REQUEST, PROTOCOL_VERSION, JSON_ENCODING, b"DTC\x00"
)
"""ENCODING_REQUEST for JSON, in the binary encoding every connection starts in (the
Encoding Request Sequence): send it first unless the server is set to JSON already."""

NUL = b"\x00"


# -- codec ---------------------------------------------------------------------------


def encode(message: Mapping[str, Any]) -> bytes:
    """``message`` as one DTC JSON frame: compact ASCII JSON (a NUL inside a string is
    escaped, so it cannot end the frame early), then the NUL terminator."""
    kind = message.get("Type")
    if isinstance(kind, bool) or not isinstance(kind, int):
        raise ValueError(f"a DTC message needs an integer Type, got {kind!r}")
    text = json.dumps(dict(message), separators=(",", ":"), allow_nan=False)
    return text.encode("ascii") + NUL


Frame = dict[str, Any] | Rejection
"""A decoded message, or the rejection of a frame that is not one."""


def decode(frame: bytes) -> Frame:
    """One frame (without its NUL) as a message: a JSON object, read with its numbers as
    Python ints and floats; a :class:`Rejection` saying why when it is not one."""
    try:
        text = frame.decode("utf-8")
    except UnicodeDecodeError as error:
        reason = f"frame is not UTF-8 text (byte 0x{frame[error.start]:02x} at {error.start})"
        return Rejection(reason, frame.decode("utf-8", "replace"))
    try:
        value = json.loads(text, object_pairs_hook=_unique_fields, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        return Rejection(f"frame is not JSON: {error}", text)
    if not isinstance(value, dict):
        return Rejection(f"a DTC message is a JSON object, got {json_kind(value)}", text)
    return value


def _unique_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in fields:
            raise ValueError(f"duplicate field {name!r}")
        fields[name] = value
    return fields


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class Framer:
    """Splits a DTC JSON byte stream into frames at each NUL byte, keeping a frame cut
    across reads until its NUL arrives.

    :meth:`feed` returns the frames completed so far, in stream order, each decoded by
    :func:`decode`: a frame that is not a JSON object comes out as a :class:`Rejection`
    in its place and the stream goes on. Empty and all-whitespace frames are skipped. A
    frame still without its NUL after ``max_frame`` bytes is rejected and its bytes are
    dropped up to the next NUL, so a peer that never sends one cannot fill the memory."""

    def __init__(self, max_frame: int = 1 << 20) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._dropping = False

    @property
    def pending(self) -> int:
        """Bytes received of a frame whose NUL has not arrived."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Frame]:
        """The frames ``data`` completes, decoded, in stream order."""
        self._buffer += data
        frames: list[Frame] = []
        start = 0
        while (end := self._buffer.find(0, start)) >= 0:
            frame = bytes(self._buffer[start:end])
            start = end + 1
            if self._dropping:
                self._dropping = False
            elif frame.strip():
                frames.append(decode(frame))
        del self._buffer[:start]
        if self._dropping:
            self._buffer.clear()
        elif len(self._buffer) > self.max_frame:
            head = bytes(self._buffer[:64]).decode("utf-8", "replace")
            reason = (
                f"frame longer than {self.max_frame} bytes without a NUL terminator: "
                "dropped up to the next NUL"
            )
            frames.append(Rejection(reason, head))
            self._buffer.clear()
            self._dropping = True
        return frames


# -- what a client sends -------------------------------------------------------------


def logon_request(
    username: str,
    password: str,
    *,
    heartbeat_interval: int = 10,
    client_name: str = "posledger",
    trade_mode: str | None = None,
    trade_account: str | None = None,
) -> dict[str, Any]:
    """LOGON_REQUEST. ``trade_mode`` (DEMO, SIMULATED, LIVE) is sent only when given: the
    current DTCProtocol.h no longer has the field (it is ``Unused1`` there)."""
    message: dict[str, Any] = {
        "Type": LOGON_REQUEST,
        "ProtocolVersion": PROTOCOL_VERSION,
        "Username": username,
        "Password": password,
        "HeartbeatIntervalInSeconds": heartbeat_interval,
        "ClientName": client_name,
    }
    if trade_mode is not None:
        if trade_mode not in TRADE_MODES:
            raise ValueError(f"trade_mode is one of {', '.join(TRADE_MODES)}, got {trade_mode!r}")
        message["TradeMode"] = TRADE_MODES[trade_mode]
    if trade_account is not None:
        message["TradeAccount"] = trade_account
    return message


def heartbeat(current_datetime: int | None = None) -> dict[str, Any]:
    """HEARTBEAT, sent every ``HeartbeatIntervalInSeconds``; ``current_datetime`` in epoch
    seconds when given."""
    message: dict[str, Any] = {"Type": HEARTBEAT, "NumDroppedMessages": 0}
    if current_datetime is not None:
        message["CurrentDateTime"] = current_datetime
    return message


def trade_accounts_request(request_id: int) -> dict[str, Any]:
    """TRADE_ACCOUNTS_REQUEST: one TRADE_ACCOUNT_RESPONSE per trade account."""
    return {"Type": TRADE_ACCOUNTS_REQUEST, "RequestID": request_id}


def current_positions_request(request_id: int, trade_account: str = "") -> dict[str, Any]:
    """CURRENT_POSITIONS_REQUEST: POSITION_UPDATEs for ``trade_account`` (every account when
    empty: ask per account, so that each snapshot's end names its account)."""
    return {
        "Type": CURRENT_POSITIONS_REQUEST,
        "RequestID": request_id,
        "TradeAccount": trade_account,
    }


def historical_order_fills_request(
    request_id: int,
    *,
    trade_account: str = "",
    number_of_days: int | None = None,
    start_datetime: int | None = None,
    server_order_id: str = "",
) -> dict[str, Any]:
    """HISTORICAL_ORDER_FILLS_REQUEST for the fills of the last ``number_of_days`` or since
    ``start_datetime`` (epoch seconds): one is needed."""
    if number_of_days is None and start_datetime is None:
        raise ValueError("give number_of_days or start_datetime")
    return {
        "Type": HISTORICAL_ORDER_FILLS_REQUEST,
        "RequestID": request_id,
        "ServerOrderID": server_order_id,
        "NumberOfDays": number_of_days or 0,
        "TradeAccount": trade_account,
        "StartDateTime": start_datetime or 0,
    }


def open_orders_request(request_id: int, trade_account: str = "") -> dict[str, Any]:
    """OPEN_ORDERS_REQUEST for every open order of ``trade_account`` (all when empty). The
    answers restate orders: they are never fills."""
    return {
        "Type": OPEN_ORDERS_REQUEST,
        "RequestID": request_id,
        "RequestAllOrders": 1,
        "ServerOrderID": "",
        "TradeAccount": trade_account,
    }


def json_kind(value: Any) -> str:
    """The JSON kind of a decoded value, for messages: number, string, array, ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
