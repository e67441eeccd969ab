"""posledger: a position ledger for traders who run several strategies on shared accounts.

>>> from posledger import open_ledger
>>> ledger = open_ledger("sqlite:///my.db")  # doctest: +SKIP
"""

from typing import TYPE_CHECKING, Any

from . import _native

COMPILED = _native.guard()
"""Whether the domain and write path run compiled (see ``posledger._native``). Decided
before any of those modules is imported."""

from .bootstrap import open_ledger  # noqa: E402
from .errors import (  # noqa: E402
    DamagedDatabase,
    DatabaseError,
    DatabaseNotFound,
    InvalidInput,
    LedgerError,
    NotFound,
    RebuildError,
    ReconcileError,
    SchemaError,
    UsageError,
)

if TYPE_CHECKING:
    from .domain.marks import MarkPolicy
    from .service.handlers import Outcome
    from .service.ledger import IngestReport, Ledger, RebuildReport
    from .service.replay import VerifyReport

_LAZY = {
    "MarkPolicy": "posledger.domain.marks",
    "Outcome": "posledger.service.handlers",
    "IngestReport": "posledger.service.ledger",
    "Ledger": "posledger.service.ledger",
    "RebuildReport": "posledger.service.ledger",
    "VerifyReport": "posledger.service.replay",
}
"""Imported when first asked for: importing posledger (the command line's start-up)
loads none of the service."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'posledger' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "COMPILED",
    "DamagedDatabase",
    "DatabaseError",
    "DatabaseNotFound",
    "IngestReport",
    "InvalidInput",
    "Ledger",
    "LedgerError",
    "MarkPolicy",
    "NotFound",
    "Outcome",
    "RebuildError",
    "RebuildReport",
    "ReconcileError",
    "SchemaError",
    "UsageError",
    "VerifyReport",
    "open_ledger",
]
__version__ = "0.1.0"
