"""posledger: a position ledger for traders who run several strategies on shared accounts.

>>> from posledger import open_ledger
>>> ledger = open_ledger("sqlite:///my.db")  # doctest: +SKIP
"""

from .bootstrap import open_ledger
from .service.handlers import Outcome
from .service.ledger import IngestReport, Ledger, RebuildError, RebuildReport
from .service.replay import VerifyReport
from .store.database import DatabaseError, SchemaError

__all__ = [
    "DatabaseError",
    "IngestReport",
    "Ledger",
    "Outcome",
    "RebuildError",
    "RebuildReport",
    "SchemaError",
    "VerifyReport",
    "open_ledger",
]
__version__ = "0.1.0"
