"""Following a venue (docs/venues/README.md, Following a venue): what every connector
shares. A connector moves messages and hands what its parser made of them to a
:class:`LedgerSink`, which applies them to the ledger on a thread of its own, each batch
in one transaction: fills exactly once (by ``(account, exec_id)``), refused messages kept
with their reason, broker positions reconciled.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from ..adapters.jsonl import read_lines
from ..service.ledger import Ledger
from .base import Parsed

__all__ = ["NOT_BOOKED", "Counts", "LedgerSink"]

T = TypeVar("T")

NOT_BOOKED = "funding payments are not booked yet: kept for review"
"""Why a funding payment a venue reported is kept with the refused inputs."""


@dataclass
class Counts:
    """What a connector has done since it started."""

    applied: int = 0
    duplicate: int = 0
    rejected: int = 0
    refused_messages: int = 0
    reconciliations: int = 0
    differences: int = 0

    def line(self) -> str:
        return (
            f"{self.applied} applied, {self.duplicate} duplicate, {self.rejected} rejected, "
            f"{self.refused_messages} messages refused, {self.reconciliations} reconciliations "
            f"({self.differences} differences)"
        )


class LedgerSink:
    """The ledger as a connector uses it: every call runs on one thread of its own (a
    ledger is used by one thread at a time) and is awaited from the connector's loop."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.counts = Counts()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="posledger-sink")

    async def _call(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    async def apply(self, parsed: Parsed, source: str) -> Parsed:
        """Apply ``parsed``'s fills (one transaction) and keep its refusals; funding is
        kept for review (:data:`NOT_BOOKED`)."""
        await self._call(lambda: self._apply(parsed, source))
        return parsed

    def _apply(self, parsed: Parsed, source: str) -> None:
        if parsed.fills:
            lines = list(read_lines([json.dumps(record) for record in parsed.fills]))
            outcomes = self.ledger.apply_lines([(line, source, None) for line in lines])
            for outcome in outcomes:
                setattr(self.counts, outcome.status, getattr(self.counts, outcome.status) + 1)
        for rejection in parsed.rejections:
            self.ledger.reject(rejection.raw, rejection.reason, source)
            self.counts.refused_messages += 1
        for payment in parsed.funding:
            self.ledger.reject(json.dumps(asdict(payment)), NOT_BOOKED, source)

    async def reconcile(self, positions: Parsed, account: str, source: str) -> dict[str, Any]:
        """Reconcile ``account`` with ``positions`` (a full snapshot of it): the report."""
        lines = [json.dumps(record) for record in positions.positions]

        def run() -> dict[str, Any]:
            report = self.ledger.reconcile(lines, accounts=[account], source=source)
            return report.as_dict()

        found = await self._call(run)
        self.counts.reconciliations += 1
        self.counts.differences += int(found["differences"])
        return found

    async def claim(self, worker: str, account: str, own: bool) -> list[dict[str, Any]]:
        """Claim ``account``'s outbox commands for ``worker`` (its own claims back too,
        with ``own``: docs/brackets.md)."""
        return await self._call(
            lambda: self.ledger.commands(claim=worker, accounts=[account], own=own, limit=50)
        )

    async def ack(self, command_id: str, broker_order_id: str | None) -> None:
        await self._call(lambda: self.ledger.ack(command_id, broker_order_id=broker_order_id))

    async def fail(self, command_id: str, reason: str) -> None:
        await self._call(lambda: self.ledger.fail(command_id, reason=reason))

    async def state(self, name: str) -> dict[str, Any]:
        """A connector's saved state (its cursor), ``{}`` before its first save."""
        saved = await self._call(lambda: self.ledger.store.venue_state(name))
        found: dict[str, Any] = {} if saved is None else json.loads(saved)
        return found

    async def save_state(self, name: str, state: dict[str, Any], now_ns: int) -> None:
        text = json.dumps(state, sort_keys=True)
        await self._call(lambda: self.ledger.store.save_venue_state(name, text, now_ns))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
