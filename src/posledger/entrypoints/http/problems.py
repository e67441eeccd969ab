"""Errors as RFC 9457 problem details (``application/problem+json``), mapped once from the
:class:`~posledger.errors.LedgerError` tree: the same reasons the command line gives."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from ...errors import (
    DamagedDatabase,
    DatabaseError,
    LedgerError,
    NotFound,
    RebuildError,
    ReconcileError,
    UsageError,
)

__all__ = ["Problem", "from_ledger_error", "problem"]

MEDIA_TYPE = "application/problem+json"
BASE = "https://posledger.invalid/problems/"
"""Problem types are named under this (no page is served there: docs/service.md, Errors
lists them)."""


class Problem(Exception):
    """Raised by an endpoint to answer with a problem."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail = status, kind, title, detail
        self.headers = headers
        self.extra = extra


def problem(error: Problem, instance: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "type": BASE + error.kind,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        **error.extra,
    }
    if instance is not None:
        body["instance"] = instance
    return JSONResponse(
        body, status_code=error.status, media_type=MEDIA_TYPE, headers=error.headers
    )


def from_ledger_error(exc: LedgerError) -> Problem:
    """The problem a ledger error is, with its own reasons."""
    detail = str(exc)
    if isinstance(exc, NotFound):
        return Problem(404, "not-found", "Not found", detail)
    if isinstance(exc, ReconcileError):
        return Problem(422, "snapshot-refused", "Snapshot refused", detail, reasons=exc.reasons)
    if isinstance(exc, UsageError):
        return Problem(400, "bad-request", "Bad request", detail)
    if isinstance(exc, DamagedDatabase):
        return Problem(503, "damaged-database", "The database is damaged", detail)
    if isinstance(exc, DatabaseError):
        return Problem(503, "database-unavailable", "The database cannot be used", detail)
    if isinstance(exc, RebuildError):
        return Problem(500, "journal-does-not-replay", "The journal does not replay", detail)
    return Problem(500, "ledger-error", "Ledger error", detail)
