"""Listings for machines: JSON, JSON Lines and CSV written as the rows come.

Nothing here holds more than one row: ``--json`` prints one JSON array, but writes it an
element at a time, so a listing of any length runs in bounded memory. The array is laid
out as ``json.dumps(rows, indent=2)`` would lay it out (docs/cli.md#output-formats).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable
from typing import IO, Any

import msgspec

__all__ = ["FORMATS", "write_rows"]

FORMATS = ("table", "json", "jsonl", "csv")


def _cell(value: Any) -> str:
    """A CSV cell: text as it is, nothing for null, true/false, objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


_ENCODER = msgspec.json.Encoder()


def _indented(row: dict[str, Any]) -> str:
    """``json.dumps(row, indent=2)``, ten times faster: the same text whenever it is ASCII
    (json.dumps escapes every other character; then it is used itself)."""
    data = _ENCODER.encode(row)
    if not data.isascii():
        return json.dumps(row, indent=2)
    return msgspec.json.format(data, indent=2).decode("ascii")


def _compact(row: dict[str, Any]) -> str:
    data = _ENCODER.encode(row)
    if not data.isascii():
        return json.dumps(row, separators=(",", ":"))
    return data.decode("ascii")


def write_rows(
    rows: Iterable[dict[str, Any]],
    fmt: str,
    out: IO[str] | None = None,
    *,
    csv_drop: tuple[str, ...] = (),
) -> int:
    """Write ``rows`` in ``fmt`` (json, jsonl, csv) to ``out`` (stdout); the count.

    CSV: a header of the first row's fields (``csv_drop`` left out), one line per row."""
    target = out if out is not None else sys.stdout
    count = 0
    if fmt == "json":
        for row in rows:
            text = _indented(row).replace("\n", "\n  ")
            target.write(("[\n  " if not count else ",\n  ") + text)
            count += 1
        target.write("[]\n" if not count else "\n]\n")
    elif fmt == "jsonl":
        for row in rows:
            target.write(_compact(row) + "\n")
            count += 1
    elif fmt == "csv":
        writer = csv.writer(target, lineterminator="\n")
        fields: list[str] = []
        for row in rows:
            if not count:
                fields = [name for name in row if name not in csv_drop]
                writer.writerow(fields)
            writer.writerow([_cell(row.get(name)) for name in fields])
            count += 1
    else:
        raise ValueError(f"no format {fmt}")
    target.flush()
    return count
