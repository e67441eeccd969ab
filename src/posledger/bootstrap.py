"""The composition root: the one place that wires a store to the ledger service.

``open_ledger(url)`` picks the store the URL names (SQLite, PostgreSQL or MariaDB through
``posledger.store``; ``memory://NAME`` for an in-memory ledger that lives as long as the
process) and hands it, with the clock, to :class:`~posledger.service.ledger.Ledger`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from .domain.timestamps import now_ns

if TYPE_CHECKING:  # imported when a ledger is opened: `posledger --help` needs none of it
    from .ports import Store
    from .service.ledger import Ledger

__all__ = ["DEFAULT_URL", "MEMORY", "open_ledger", "open_store", "resolve_url"]

DEFAULT_URL = "sqlite:///posledger.db"
MEMORY = "memory://"


def resolve_url(url: str | None) -> str:
    """``url`` if given, else ``$POSLEDGER_DB``, else ``sqlite:///posledger.db``."""
    return url or os.environ.get("POSLEDGER_DB") or DEFAULT_URL


def open_store(url: str, *, create: bool = True) -> Store:
    """The store ``url`` names. ``create=False`` refuses a database or schema that does
    not exist yet (reads must not create one by mistake)."""
    if url.startswith(MEMORY):
        from .store.memory import MemoryStore

        return MemoryStore.named(url[len(MEMORY) :])
    from .store.database import open_database
    from .store.sqlstore import SqlStore

    return SqlStore(open_database(url, create=create))


def open_ledger(
    url: str | None = None, *, clock: Callable[[], int] = now_ns, create: bool = True
) -> Ledger:
    """Open (and, if empty, create) the ledger database at ``url``.

    Raises :class:`posledger.DatabaseError` when the database cannot be used.
    """
    from .service.ledger import Ledger

    return Ledger(open_store(resolve_url(url), create=create), clock=clock)
