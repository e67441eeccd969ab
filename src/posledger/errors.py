"""Every error posledger raises on purpose: one tree under :class:`LedgerError`.

The command line maps them to exit statuses once (``posledger.entrypoints.cli.main``), as
an HTTP app maps them to problems: an invalid input or usage is the caller's to fix, a
database error the operator's, a refused snapshot or a journal that does not replay the
books'.
"""

from __future__ import annotations

from typing import Any

from .domain.errors import InvalidInput, LedgerError

__all__ = [
    "DamagedDatabase",
    "DatabaseError",
    "DatabaseNotFound",
    "InvalidInput",
    "LedgerError",
    "NotFound",
    "RebuildError",
    "ReconcileError",
    "SchemaError",
    "UsageError",
]


class UsageError(LedgerError, ValueError):
    """A request that cannot be carried out as asked (a run name already used, a bad
    option value, an in-memory database where one that lasts is needed)."""


class NotFound(LedgerError, LookupError):
    """What a request names does not exist (an outbox command, a database)."""


class DatabaseError(LedgerError):
    """The database cannot be used: bad URL, unreachable server, wrong schema."""


class SchemaError(DatabaseError):
    """The database holds no posledger schema, or one this posledger does not read."""


class DatabaseNotFound(SchemaError, NotFound):
    """The database a reader names does not exist (an SQLite file, a server database):
    nothing was created. A :class:`DatabaseError` (the command line exits 3) and a
    :class:`NotFound`."""


class DamagedDatabase(DatabaseError):
    """The database's storage is damaged: nothing more is written to it."""


class ReconcileError(LedgerError, ValueError):
    """The snapshot was refused whole; nothing was compared or changed.

    ``problems`` holds (the snapshot line, or None for the snapshot as a whole; reason)."""

    def __init__(self, problems: list[tuple[Any, str]], *, mode_mismatch: bool = False):
        self.problems = problems
        self.mode_mismatch = mode_mismatch
        first = self.reasons[0] if problems else "the snapshot was refused"
        others = len(problems) - 1
        more = f" (and {others} more problem{'s' if others > 1 else ''})" if others else ""
        super().__init__(f"snapshot refused: {first}{more}; nothing was compared")

    @property
    def reasons(self) -> list[str]:
        return [
            reason if line is None else f"line {line.number}: {reason}"
            for line, reason in self.problems
        ]


class RebuildError(LedgerError):
    """The journal does not replay cleanly, so the projections were not rewritten."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("the journal does not replay cleanly; nothing was rewritten")
        self.problems = problems
