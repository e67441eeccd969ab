"""posledger: a position ledger for traders who run several strategies on shared accounts.

>>> from posledger import open_ledger
>>> ledger = open_ledger("sqlite:///my.db")  # doctest: +SKIP
"""

from .bootstrap import open_ledger
from .errors import (
    DamagedDatabase,
    DatabaseError,
    InvalidInput,
    LedgerError,
    NotFound,
    RebuildError,
    ReconcileError,
    SchemaError,
    UsageError,
)
from .service.handlers import Outcome
from .service.ledger import IngestReport, Ledger, RebuildReport
from .service.replay import VerifyReport

__all__ = [
    "DamagedDatabase",
    "DatabaseError",
    "IngestReport",
    "InvalidInput",
    "Ledger",
    "LedgerError",
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
