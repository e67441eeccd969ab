"""JSON Lines in: one record per line (docs/format.md)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from ..domain.inputs import Input
from ..domain.refdata import InvalidInput
from .records import parse_text

__all__ = ["MAX_LINE", "Line", "parse_line", "read_lines", "storable"]

MAX_LINE = 65_536
"""Characters a line may have (the longest valid record is far shorter)."""


class Line(NamedTuple):
    """One non-blank line of a JSONL source, parsed or refused.

    ``raw`` is the line as received, made storable when it is refused: NUL characters and
    lone surrogates (which no database takes) become U+FFFD, and a line longer than
    :data:`MAX_LINE` is cut there."""

    number: int
    raw: str
    item: Input | None
    error: str | None


def parse_line(text: str) -> Input:
    """Parse one JSONL line; raise InvalidInput with the reason it cannot be read."""
    if len(text) > MAX_LINE:
        raise InvalidInput(f"line is longer than {MAX_LINE} characters ({len(text)})")
    return parse_text(text)


def _text(raw: str | bytes) -> tuple[str, str | None]:
    """A line as text, and why it cannot be read if it is not UTF-8."""
    if isinstance(raw, str):
        return raw, None
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex()
        return raw.decode("utf-8", "replace"), f"not valid UTF-8 (byte 0x{bad} at {exc.start})"


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """A refused line as it can be kept: cut at MAX_LINE, NUL and lone surrogates
    replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", text[:MAX_LINE])


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
            yield Line(number, storable(text), None, problem)
            continue
        try:
            yield Line(number, text, parse_line(text), None)
        except InvalidInput as exc:
            yield Line(number, storable(text), None, str(exc))
