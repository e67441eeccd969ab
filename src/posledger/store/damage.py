"""The storage damage mark (table ``storage_damage``, migration 0005).

When ``doctor`` finds the storage damaged, or a writer's driver says so, the database is
marked, in a transaction of its own where the database still takes one. Every unit of work
reads the mark as it begins (cheaply: see :class:`~.unit_of_work.SqlUnitOfWork`) and, while
it is there, refuses with :class:`~posledger.errors.DamagedDatabase`: nothing more is
written to damaged storage. ``posledger doctor --clear-damage`` lifts it after a repair
(docs/doctor.md).
"""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..domain.timestamps import format_ts, now_ns
from ..errors import DamagedDatabase
from ..ports import DamageMark
from . import schema as s
from .backends import Backend

__all__ = [
    "BY_DOCTOR",
    "BY_WRITER",
    "clear_mark",
    "mark_error",
    "read_mark",
    "record_mark",
    "write_mark",
    "writer_error",
]

BY_DOCTOR = "doctor"
BY_WRITER = "writer"
MARK_ID = 1
MAX_DETAIL = 4000
"""Longest description of the damage kept with the mark (characters)."""
SHOWN = 300
"""Longest description of the damage shown in an error message."""

_COLUMNS = ("id", "found_at", "found_by", "detail")
_SELECT = f"SELECT found_at, found_by, detail FROM storage_damage WHERE id = {MARK_ID}"

REMEDY = (
    "Restore it from a backup and ingest again what came after the backup (fills already "
    "there are skipped), or, if only projections are damaged, recover the file and run "
    "`posledger rebuild`; once it is repaired, `posledger doctor --clear-damage` lifts "
    "the mark (see docs/doctor.md)"
)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(ns: int) -> str:
    return format_ts(ns - ns % 1_000_000_000)


def _who(found_by: str) -> str:
    return "posledger doctor" if found_by == BY_DOCTOR else f"a {found_by}"


# -- on a writer's DBAPI connection ----------------------------------------------------------


def read_mark(cursor: Any) -> DamageMark | None:
    """The mark, read in the cursor's transaction."""
    cursor.execute(_SELECT)
    row = cursor.fetchone()
    return None if row is None else DamageMark(int(row[0]), str(row[1]), str(row[2]))


def record_mark(backend: Backend, cursor: Any, found_by: str, detail: str) -> bool:
    """Mark the database in a transaction of its own (the connection must be idle); a mark
    already there is kept. False when the database refused the write."""
    sql = backend.insert_new("storage_damage", _COLUMNS, "id")
    try:
        backend.begin(cursor)
        cursor.execute(sql, (MARK_ID, now_ns(), found_by, _clip(detail, MAX_DETAIL)))
        backend.commit(cursor)
    except Exception:  # the damage itself may refuse it: the caller says so
        with contextlib.suppress(Exception):
            backend.rollback(cursor)
        return False
    return True


# -- through the engine (doctor) -----------------------------------------------------------------


def write_mark(engine: Engine, found_by: str, detail: str) -> bool:
    """Mark the database in a transaction of its own; a mark already there is kept. False
    when the database refused the write."""
    values = {
        "id": MARK_ID,
        "found_at": now_ns(),
        "found_by": found_by,
        "detail": _clip(detail, MAX_DETAIL),
    }
    try:
        with engine.begin() as conn:
            conn.execute(insert(s.storage_damage).values(values))
    except IntegrityError:
        return True  # marked already (by another process, a moment ago)
    except SQLAlchemyError:
        return False
    return True


def clear_mark(engine: Engine) -> DamageMark | None:
    """Delete the mark; the one there was, if any."""
    table = s.storage_damage
    with engine.begin() as conn:
        row = conn.execute(select(table.c.found_at, table.c.found_by, table.c.detail)).first()
        conn.execute(delete(table))
    return None if row is None else DamageMark(int(row[0]), str(row[1]), str(row[2]))


# -- what to say -----------------------------------------------------------------------------


def mark_error(display_url: str, mark: DamageMark) -> DamagedDatabase:
    """Why a unit of work refuses to begin on a marked database."""
    return DamagedDatabase(
        f"{display_url} is marked damaged: {_who(mark.found_by)} found at "
        f"{_when(mark.found_at)}: {_clip(mark.detail, SHOWN)}. Nothing more is written to "
        f"it. {REMEDY}."
    )


def writer_error(display_url: str, exc: BaseException, marked: bool) -> DamagedDatabase:
    """A writer's driver said the storage is damaged."""
    reason = getattr(exc, "orig", None) or exc
    if marked:
        stop = "it is now marked damaged, and nothing more is written to it"
    else:
        stop = (
            "marking it damaged failed too, so other writers are not stopped: stop them, "
            "and run `posledger doctor`"
        )
    return DamagedDatabase(
        f"{display_url}: the database's storage is damaged ({reason}): {stop}. {REMEDY}."
    )
