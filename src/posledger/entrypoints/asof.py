"""``--as-of TS``: a command's books as they stood at a time (docs/format.md, As of a
time), for ``positions``, ``trades`` and ``pnl``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..service.ledger import Ledger

__all__ = ["as_of", "as_of_option"]

as_of_option = click.option(
    "--as-of",
    "as_of_time",
    metavar="TS",
    help="The books as they stood at TS (ISO 8601 with an offset), replayed from the "
    "journal (docs/format.md, As of a time).",
)


@contextmanager
def as_of(ledger: Ledger, when: str | None, *, history: bool = True) -> Iterator[Ledger]:
    """``ledger``, or with ``when`` the ledger as it stood then, replayed from the journal
    into a scratch database (a progress bar on a terminal), closed afterwards; without
    ``history``, the books only (see :meth:`Ledger.as_of`)."""
    if when is None:
        yield ledger
        return
    from .render import Progress

    with Progress(True, "replaying the journal", "entries") as progress:
        past = ledger.as_of(when, history=history, progress=progress.tick)
    try:
        yield past
    finally:
        past.close()
