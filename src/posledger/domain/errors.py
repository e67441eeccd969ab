"""The root of every error posledger raises on purpose, and the one the domain raises.

Everything the ledger refuses on purpose is a :class:`LedgerError`. The domain raises only
:class:`InvalidInput`; the other kinds (a database that cannot be used, a refused snapshot,
a journal that does not replay) are defined beside the code that raises them and gathered
in :mod:`posledger.errors`, where the command line and the HTTP app map them to exit codes
and problems, once.
"""

from __future__ import annotations

__all__ = ["InvalidInput", "LedgerError"]


class LedgerError(Exception):
    """Something the ledger refuses or cannot do, with a message written for a person."""


class InvalidInput(LedgerError, ValueError):
    """An input that can never be applied, whatever the ledger holds."""
