"""The composition root: the one place that wires a database to the ledger service."""

from __future__ import annotations

import os
from collections.abc import Callable

from .domain.timestamps import now_ns
from .service.ledger import Ledger
from .store.database import open_database

__all__ = ["DEFAULT_URL", "open_ledger", "resolve_url"]

DEFAULT_URL = "sqlite:///posledger.db"


def resolve_url(url: str | None) -> str:
    """``url`` if given, else ``$POSLEDGER_DB``, else ``sqlite:///posledger.db``."""
    return url or os.environ.get("POSLEDGER_DB") or DEFAULT_URL


def open_ledger(url: str | None = None, *, clock: Callable[[], int] = now_ns) -> Ledger:
    """Open (and, if empty, create) the ledger database at ``url``.

    Raises :class:`posledger.DatabaseError` when the database cannot be used.
    """
    return Ledger(open_database(resolve_url(url)), clock=clock)
