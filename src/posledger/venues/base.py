"""What every venue's parser gives back (docs/venues/README.md).

A parser is pure: a venue message in (decoded JSON, a CSV row, a protocol object), what it
means to the ledger out, as input records of the JSON Lines contract (docs/format.md):
``fill`` records, ``broker_position`` records for reconciliation, funding payments, or a
rejection with its reason. Nothing is looked up but the symbol map it is given, so a
parser is tested on recorded payloads alone, and a connector (the part that talks to the
venue) only moves messages and applies what the parser says.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "Funding",
    "Parsed",
    "Rejection",
    "SymbolMap",
    "VenueError",
    "decimal_text",
    "iso_from_ms",
]


class VenueError(ValueError):
    """A message that cannot be read as the venue's: the reason says what is wrong."""


@dataclass(frozen=True)
class Rejection:
    """A message the parser refuses, and why (kept for review like a rejected line)."""

    reason: str
    raw: str
    """The message as received, as text (JSON for JSON messages)."""


@dataclass(frozen=True)
class Funding:
    """A funding payment of a perpetual position: positive when the account received it.
    The ledger allocates it to the strategies holding the position (docs/venues/)."""

    payment_id: str
    """The venue's id of the payment, unique within the account (deduplication)."""
    account: str
    instrument: str
    position_side: str | None
    """``LONG``/``SHORT`` on a hedge account, ``BOTH`` on a netting one; None when the
    venue does not say."""
    amount: str
    """A decimal string, signed."""
    currency: str
    ts: str
    """ISO 8601 with an offset."""


@dataclass(frozen=True)
class Parsed:
    """What one venue message means to the ledger. Most messages carry one kind of thing;
    a message that carries nothing for the ledger (an order accepted, a heartbeat) has
    ``ignored`` say why."""

    fills: tuple[dict[str, Any], ...] = ()
    """``fill`` input records (docs/format.md), JSON-ready: decimal strings, ISO times."""
    positions: tuple[dict[str, Any], ...] = ()
    """``broker_position`` records: what the venue says the account holds."""
    funding: tuple[Funding, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    ignored: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Anything else the message says that a connector uses (a position mode, a listen
    key's expiry), by name."""


@dataclass(frozen=True)
class SymbolMap:
    """Venue symbol <-> instrument id, per account (``posledger symbols``): ``BTCUSDT`` on
    one account and ``BTC-PERP`` on another can be one instrument or two."""

    venue: str
    entries: Mapping[tuple[str, str], str]
    """(account, venue symbol) -> instrument."""

    def instrument(self, account: str, symbol: str) -> str | None:
        return self.entries.get((account, symbol))

    def missing(self, account: str, symbol: str) -> str:
        """The reason a message of an unmapped symbol is rejected."""
        return (
            f"{self.venue} symbol {symbol} of account {account} is not mapped to an "
            f"instrument: posledger symbols add {self.venue} {account} {symbol} INSTRUMENT"
        )


def decimal_text(value: Any, what: str) -> str:
    """``value`` (a venue's decimal string or integer) as a canonical decimal string;
    :class:`VenueError` for anything else (a float is refused: it is not exact)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise VenueError(f"{what} {value!r} is not a decimal string")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise VenueError(f"{what} {value!r} is not a decimal number") from None
    if not number.is_finite():
        raise VenueError(f"{what} {value!r} is not a finite number")
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def iso_from_ms(ms: Any, what: str = "time") -> str:
    """Epoch milliseconds (as venues send them) as ISO 8601 UTC with milliseconds."""
    if isinstance(ms, bool) or not isinstance(ms, int | str):
        raise VenueError(f"{what} {ms!r} is not epoch milliseconds")
    try:
        value = int(ms)
    except ValueError:
        raise VenueError(f"{what} {ms!r} is not epoch milliseconds") from None
    if not 0 < value < 2**53:
        raise VenueError(f"{what} {ms!r} is out of range")
    seconds, millis = divmod(value, 1000)
    at = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"
