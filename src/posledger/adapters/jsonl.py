"""JSON Lines in: one record per line (DESIGN §7)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import msgspec

from ..domain.inputs import Input
from ..domain.refdata import InvalidInput
from .records import parse_record

__all__ = ["Line", "parse_line", "read_lines"]

_decoder = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class Line:
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


def read_lines(lines: Iterable[str]) -> Iterator[Line]:
    """Parse a JSONL stream; blank lines are skipped, numbering counts every line."""
    for number, raw in enumerate(lines, start=1):
        text = raw.rstrip("\r\n")
        if not text.strip():
            continue
        try:
            yield Line(number, text, parse_line(text), None)
        except InvalidInput as exc:
            yield Line(number, text, None, str(exc))
