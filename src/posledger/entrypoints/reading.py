"""Reading an input file for ``ingest``: what it looks like, and stopping on Ctrl-C.

:class:`InputFile` hands ``Ledger.ingest`` the file's lines one at a time. Before the
first one it looks at the first lines: a file that is plainly not JSON Lines (a CSV, one
JSON document spread over many lines) is refused before anything is applied. On Ctrl-C it
stops cleanly (docs/cli.md#ctrl-c): while it waits for a line, at once (no transaction is
under way then); otherwise after the transaction under way, which is kept whole.
"""

from __future__ import annotations

import json
import os
import signal
import stat
from collections.abc import Iterator
from types import FrameType
from typing import IO, Any

__all__ = ["SNIFF_LINES", "InputFile", "not_jsonl"]

SNIFF_LINES = 5
"""A file whose first this many lines (all of them, if it has fewer) are not JSON at all
is not JSON Lines."""


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _quote(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def not_jsonl(first: list[str]) -> str | None:
    """What the first non-blank lines of a file look like, when none of them is JSON: the
    reason to refuse it; None when any one is JSON (the file is read as JSON Lines, bad
    lines rejected one by one)."""
    if not first or any(_is_json(line) for line in first):
        return None
    head = first[0].strip()
    if head[:1] in ("[", "{"):
        what = f"one JSON document spread over several lines (it begins with {head[:1]!r})"
    elif head.count(",") >= 2 or head.count(";") >= 2 or head.count("\t") >= 2:
        separator = "," if head.count(",") >= 2 else ";" if head.count(";") >= 2 else "\t"
        kind = "TSV" if separator == "\t" else "CSV"
        what = f"{kind} (header: {_quote(head)})"
    else:
        what = f"text that is not JSON (line 1: {_quote(head)})"
    return (
        f"this looks like {what}; posledger ingest reads JSON Lines: one JSON object per "
        "line, see docs/format.md"
    )


class InputFile:
    """The lines of a binary file, for ``Ledger.ingest``, with the bytes read so far
    (``position``) and Ctrl-C handling (``interrupted``)."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.position = 0
        self.interrupted = False
        self._reading = False
        self._peeked: list[bytes] = []
        self._previous: Any = None

    @property
    def size(self) -> int | None:
        """The file's size in bytes, when it is a regular file (not a pipe)."""
        try:
            status = os.fstat(self.file.fileno())
        except (OSError, ValueError, AttributeError):
            return None
        return status.st_size if stat.S_ISREG(status.st_mode) and status.st_size else None

    def _read(self) -> bytes:
        self._reading = True
        try:
            if self.interrupted:
                return b""
            line = self.file.readline()
        finally:
            self._reading = False
        self.position += len(line)
        return line

    def sniff(self) -> str | None:
        """Read up to :data:`SNIFF_LINES` non-blank lines ahead (they are handed out
        first) and say why the file is not JSON Lines, or None."""
        first: list[str] = []
        while len(first) < SNIFF_LINES:
            line = self._read()
            if not line:
                break
            self._peeked.append(line)
            text = line.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
            if text:
                first.append(text)
        return not_jsonl(first)

    def __iter__(self) -> Iterator[bytes]:
        yield from self._peeked
        self._peeked = []
        while line := self._read():
            yield line

    # -- Ctrl-C -------------------------------------------------------------------------

    def _on_interrupt(self, _signum: int, _frame: FrameType | None) -> None:
        again = self.interrupted
        self.interrupted = True
        if self._reading or again:  # nothing under way, or asked twice: stop at once
            raise KeyboardInterrupt

    def __enter__(self) -> InputFile:
        try:
            self._previous = signal.signal(signal.SIGINT, self._on_interrupt)
        except ValueError:  # not the main thread: Ctrl-C stays as it is
            self._previous = None
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
