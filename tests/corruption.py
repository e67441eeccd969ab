"""Damaging an SQLite ledger file the way a disk does: bytes of some pages overwritten.

The WAL is checkpointed into the file first (a closed ledger leaves none; this makes sure),
then a table's pages are found through SQLite's ``dbstat`` table, or, where SQLite was
built without it, by reading the table's root page (page arithmetic), and overwritten in
place, underneath SQLite.
"""

from __future__ import annotations

import sqlite3
import struct
from contextlib import closing
from pathlib import Path

GARBAGE = b"\xa5"


def checkpoint(path: Path) -> int:
    """Move everything in the WAL into the file; the page size."""
    with closing(sqlite3.connect(path)) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "another connection holds the database"
        return int(conn.execute("PRAGMA page_size").fetchone()[0])


def leaf_pages(path: Path, table: str) -> list[int]:
    """The numbers of ``table``'s leaf pages (where its rows are), in order."""
    with closing(sqlite3.connect(path)) as conn:
        try:
            rows = conn.execute(
                "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno",
                (table,),
            ).fetchall()
            return [int(page) for (page,) in rows]
        except sqlite3.OperationalError:  # no dbstat in this SQLite: read the b-tree
            (root,) = conn.execute(
                "SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
            size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    return _leaves(path.read_bytes(), size, int(root))


def _leaves(data: bytes, size: int, page: int) -> list[int]:
    start = (page - 1) * size
    header = start + (100 if page == 1 else 0)
    kind = data[header]
    if kind in (0x0D, 0x0A):  # a table or index leaf
        return [page]
    cells = struct.unpack_from(">H", data, header + 3)[0]
    right = struct.unpack_from(">I", data, header + 8)[0]
    children = []
    for n in range(cells):
        offset = struct.unpack_from(">H", data, header + 12 + 2 * n)[0]
        children.append(struct.unpack_from(">I", data, start + offset)[0])
    children.append(right)
    return sorted(leaf for child in children for leaf in _leaves(data, size, child))


def overwrite(path: Path, page: int, size: int, at: int, length: int) -> None:
    """Overwrite ``length`` bytes of ``page`` from its byte ``at``, as a bad sector would."""
    with path.open("r+b") as file:
        file.seek((page - 1) * size + at)
        file.write(GARBAGE * length)


def damage_table(
    path: Path, table: str, *, every_page: bool = False, at: int = 0, length: int = 512
) -> list[int]:
    """Overwrite ``length`` bytes from byte ``at`` (by default the first sector: the page
    header and cell pointers) of the page in the middle of ``table``, or of each of its
    pages; the pages damaged."""
    size = checkpoint(path)
    pages = leaf_pages(path, table)
    assert pages, f"{table} has no pages"
    chosen = pages if every_page else [pages[len(pages) // 2]]
    for page in chosen:
        overwrite(path, page, size, max(at, 100 if page == 1 else 0), length)
    return chosen
