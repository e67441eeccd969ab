"""The composition root: the one place that wires a store to the ledger service.

``open_ledger(url)`` picks the store the URL names (SQLite, PostgreSQL or MariaDB through
``posledger.store``; ``memory://NAME`` for an in-memory ledger that lives as long as the
process) and hands it, with the clock, to :class:`~posledger.service.ledger.Ledger`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .domain.timestamps import now_ns

if TYPE_CHECKING:  # imported when a ledger is opened: `posledger --help` needs none of it
    from .domain.marks import MarkPolicy
    from .ports import Store
    from .service.ledger import Ledger

__all__ = ["DEFAULT_URL", "MEMORY", "mark_policy", "open_ledger", "open_store", "resolve_url"]

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


def mark_policy(environ: Mapping[str, str] | None = None) -> MarkPolicy:
    """The mark policy (docs/accounting.md, Marks): its defaults, or what
    ``$POSLEDGER_MARK_PERSIST_MS`` and ``$POSLEDGER_MARK_EXTREME_MS`` say."""
    from .domain.marks import MarkPolicy
    from .errors import UsageError

    env = os.environ if environ is None else environ
    given: dict[str, int] = {}
    for name, field in (
        ("POSLEDGER_MARK_PERSIST_MS", "persist_ms"),
        ("POSLEDGER_MARK_EXTREME_MS", "extreme_ms"),
    ):
        text = env.get(name)
        if not text:
            continue
        try:
            given[field] = int(text)
        except ValueError:
            raise UsageError(
                f"{name} must be a whole number of milliseconds, got {text!r}"
            ) from None
    default = MarkPolicy()
    if "extreme_ms" in given and "persist_ms" not in given:
        given["persist_ms"] = max(given["extreme_ms"], default.persist_ms)
    if "persist_ms" in given and "extreme_ms" not in given:
        given["extreme_ms"] = min(given["persist_ms"], default.extreme_ms)
    try:
        return MarkPolicy(**given)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def checkpoint_every(environ: Mapping[str, str] | None = None) -> int:
    """Journal entries between checkpoints (docs/format.md, As of a time): 2000, or what
    ``$POSLEDGER_CHECKPOINT_EVERY`` says (0: take none)."""
    from .errors import UsageError
    from .service.ledger import CHECKPOINT_EVERY

    env = os.environ if environ is None else environ
    text = env.get("POSLEDGER_CHECKPOINT_EVERY")
    if not text:
        return CHECKPOINT_EVERY
    try:
        every = int(text)
    except ValueError:
        every = -1
    if every < 0:
        raise UsageError(
            f"POSLEDGER_CHECKPOINT_EVERY must be a whole number of journal entries (0: no "
            f"checkpoints), got {text!r}"
        )
    return every


def open_ledger(
    url: str | None = None,
    *,
    clock: Callable[[], int] = now_ns,
    create: bool = True,
    persistent: bool = False,
    marks: MarkPolicy | None = None,
) -> Ledger:
    """Open (and, if empty, create) the ledger database at ``url``.

    ``create`` and ``persistent`` as for :func:`open_store`: a command that only reads
    passes ``create=False``; a command line passes ``persistent=True``. ``marks`` is how
    often marks kept in memory are written (default: :func:`mark_policy`).

    Raises :class:`posledger.DatabaseError` when the database cannot be used (a
    :class:`posledger.SchemaError` when it holds no schema this posledger reads), and
    :class:`posledger.UsageError` for an in-memory URL when ``persistent``.
    """
    from .service.ledger import Ledger

    policy = mark_policy() if marks is None else marks
    every = checkpoint_every()
    store = open_store(resolve_url(url), create=create, persistent=persistent)
    return Ledger(store, clock=clock, marks=policy, checkpoint_every=every)
