"""JSON Lines in: one record per line (DESIGN §7)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

import msgspec

from ..domain.inputs import Input
from ..domain.refdata import InvalidInput
from .records import parse_record

__all__ = ["Line", "parse_line", "read_lines"]

_decoder = msgspec.json.Decoder()


class Line(NamedTuple):
    """One non-blank line of a JSONL source, parsed or refused."""

    number: int
    raw: str
    item: Input | None
    error: str | None


def parse_line(text: str) -> Input:
    """Parse one JSONL line; raise InvalidInput with the reason it cannot be read."""
    try:
        obj = _decoder.decode(text)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"malformed JSON: {exc}") from None
    return parse_record(obj)


def _text(raw: str | bytes) -> tuple[str, str | None]:
    """A line as text, and why it cannot be read if it is not UTF-8."""
    if isinstance(raw, str):
        return raw, None
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex()
        return raw.decode("utf-8", "replace"), f"not valid UTF-8 (byte 0x{bad} at {exc.start})"


def read_lines(lines: Iterable[str | bytes]) -> Iterator[Line]:
    """Parse a JSONL stream (text, or bytes decoded line by line as UTF-8).

    Blank lines are skipped; numbering counts every line. A byte-order mark at the start
    is ignored. A line that is not UTF-8 is refused alone, like any other bad line.
    """
    for number, raw in enumerate(lines, start=1):
        text, problem = _text(raw)
        if number == 1:
            text = text.removeprefix("\ufeff")
        text = text.rstrip("\r\n")
        if not text.strip():
            continue
        if problem is not None:
            yield Line(number, text, None, problem)
            continue
        try:
            yield Line(number, text, parse_line(text), None)
        except InvalidInput as exc:
            yield Line(number, text, None, str(exc))
