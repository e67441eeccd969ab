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


def open_store(url: str, *, create: bool = True, persistent: bool = False) -> Store:
    """The store ``url`` names.

    ``create=False`` (for commands that only read) refuses, creating and changing nothing,
    a database that does not exist or holds no posledger schema (a typo must not look like
    an empty ledger), and opens an SQLite file this process may not write read-only.
    ``persistent=True`` (for a command line, or any process that ends before its data is
    needed) refuses with :class:`posledger.UsageError` a store that keeps nothing once the
    process ends: ``memory://...``, ``sqlite://``, ``sqlite:///:memory:``."""
    if url.startswith(MEMORY):
        if persistent:
            from .store.database import not_persistent

            raise not_persistent(url)
        from .store.memory import MemoryStore

        return MemoryStore.named(url[len(MEMORY) :])
    from .store.database import open_database
    from .store.sqlstore import SqlStore

    return SqlStore(open_database(url, create=create, persistent=persistent))


def open_ledger(
    url: str | None = None,
    *,
    clock: Callable[[], int] = now_ns,
    create: bool = True,
    persistent: bool = False,
) -> Ledger:
    """Open (and, if empty, create) the ledger database at ``url``.

    ``create`` and ``persistent`` as for :func:`open_store`: a command that only reads
    passes ``create=False``; a command line passes ``persistent=True``.

    Raises :class:`posledger.DatabaseError` when the database cannot be used (a
    :class:`posledger.SchemaError` when it holds no schema this posledger reads), and
    :class:`posledger.UsageError` for an in-memory URL when ``persistent``.
    """
    from .service.ledger import Ledger

    return Ledger(open_store(resolve_url(url), create=create, persistent=persistent), clock=clock)
