"""``LedgerClient``: the ledger from another process, through ``posledger serve``
(docs/service.md, From Python). Async, on httpx (the ``service`` extra).

Its methods are the local :class:`~posledger.Ledger`'s where that makes sense, with the
API's JSON as results (dicts, decimals as strings). Errors come back as the ledger's own
(:class:`~posledger.UsageError`, :class:`~posledger.NotFound`,
:class:`~posledger.DatabaseError`...), with the server's reason, or :class:`AccessDenied`
for what the key may not do.

It retries safely: a request that failed on the way (a connection refused or dropped, a
timeout) or that the server could not take then (429, 502, 503, 504) is sent again, at
most ``retries`` times, after ``Retry-After`` or a growing pause. Sending input again is
safe because ingestion is exactly-once: what a lost attempt applied comes back
``duplicate``. :meth:`stream` reconnects from the last event it gave, so nothing is
missed or seen twice.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx

from .errors import DatabaseError, LedgerError, NotFound, ReconcileError, UsageError

__all__ = ["AccessDenied", "LedgerClient"]

RETRIED = frozenset({429, 502, 503, 504})


class AccessDenied(LedgerError):
    """The key is missing, unknown or revoked (401), or may not do this (403)."""


def _error(answer: httpx.Response) -> LedgerError:
    """The ledger's error a problem answer carries."""
    try:
        problem = answer.json()
        detail = str(problem.get("detail") or answer.reason_phrase)
    except ValueError:
        problem, detail = {}, answer.text or answer.reason_phrase
    status = answer.status_code
    if status in (401, 403):
        return AccessDenied(detail)
    if status == 404:
        return NotFound(detail)
    if status == 422 and "reasons" in problem:
        return ReconcileError([(None, str(reason)) for reason in problem["reasons"]])
    if status in (400, 408, 413, 422, 429):
        return UsageError(detail)
    if status == 503:
        return DatabaseError(detail)
    return LedgerError(f"{status}: {detail}")


class LedgerClient:
    """A client of one ``posledger serve``, with one key. Use it as ``async with``."""

    def __init__(
        self,
        base_url: str,
        key: str,
        *,
        retries: int = 5,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.retries = retries
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {key}"},
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> LedgerClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _pause(self, attempt: int, answer: httpx.Response | None) -> None:
        wait = min(0.05 * 2**attempt, 5.0) * random.uniform(0.5, 1.0)
        if answer is not None and answer.headers.get("retry-after", "").isdigit():
            wait = float(answer.headers["retry-after"])
        await asyncio.sleep(wait)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        content: str | bytes | None = None,
    ) -> Any:
        kept = {k: v for k, v in (params or {}).items() if v is not None}
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                answer = await self._http.request(method, path, params=kept, content=content)
            except httpx.TransportError as exc:
                if last:
                    raise DatabaseError(f"{self._http.base_url}{path}: {exc!r}") from exc
                await self._pause(attempt, None)
                continue
            if answer.status_code in RETRIED and not last:
                await self._pause(attempt, answer)
                continue
            if answer.status_code >= 400:
                raise _error(answer)
            return answer.json()
        raise AssertionError("unreachable")

    # -- writes ---------------------------------------------------------------------------

    async def ingest(self, records: Iterable[str | Mapping[str, Any]]) -> dict[str, Any]:
        """Apply input records (JSONL lines, or dicts of docs/format.md's fields): the
        counts and an outcome per line, once the applied ones are durable."""
        lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
        found: dict[str, Any] = await self._call(
            "POST", "/v1/ingest", content="\n".join(lines).encode()
        )
        return found

    async def _record(self, kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        reply = await self.ingest([{"type": kind, **{k: _text(k, v) for k, v in fields.items()}}])
        (outcome,) = reply["outcomes"]
        return dict(outcome)

    async def apply_fill(self, **fields: Any) -> dict[str, Any]:
        """One fill (docs/format.md ``fill``); its outcome."""
        return await self._record("fill", fields)

    async def register_order(self, **fields: Any) -> dict[str, Any]:
        return await self._record("order", fields)

    async def cancel_order(self, **fields: Any) -> dict[str, Any]:
        return await self._record("cancel", fields)

    async def apply_mark(self, **fields: Any) -> dict[str, Any]:
        return await self._record("mark", fields)

    async def transfer(self, **fields: Any) -> dict[str, Any]:
        return await self._record("transfer", fields)

    async def halt(self, **fields: Any) -> dict[str, Any]:
        return await self._record("halt", fields)

    async def resume(self, **fields: Any) -> dict[str, Any]:
        return await self._record("resume", fields)

    async def set_bracket(self, **fields: Any) -> dict[str, Any]:
        return await self._record("bracket", fields)

    async def check_order(self, **fields: Any) -> dict[str, Any]:
        """The pre-trade check of an order: ``{"allowed": ..., "reasons": [...]}``."""
        record = {"type": "order", **{k: _text(k, v) for k, v in fields.items()}}
        found: dict[str, Any] = await self._call(
            "POST", "/v1/check-order", content=json.dumps(record)
        )
        return found

    async def reconcile(
        self,
        snapshot: Iterable[str | Mapping[str, Any]],
        *,
        fills: Iterable[str | Mapping[str, Any]] = (),
        accounts: Iterable[str] = (),
        policy: str | None = None,
    ) -> dict[str, Any]:
        """Compare the books with the broker's positions (``broker_position`` records);
        ``fills``: the broker's fill history, whose fills the ledger has not seen are
        applied first."""
        records = [*snapshot, *fills]
        lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
        params = {"accounts": list(accounts) or None, "policy": policy}
        found: dict[str, Any] = await self._call(
            "POST", "/v1/reconcile", params=params, content="\n".join(lines).encode()
        )
        return found

    async def commands(
        self,
        *,
        claim: str | None = None,
        limit: int = 100,
        status: str | None = "pending",
        strategies: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Outbox commands of ``status``; with ``claim`` (a worker id), claim them: of
        ``strategies`` only, when given (a strategy key claims its own strategy's only)."""
        if claim is not None:
            names = None if strategies is None else list(strategies)
            if names == []:
                return []  # of no strategy: nothing to claim
            params = {"worker": claim, "limit": limit, "strategy": names}
            found: list[dict[str, Any]] = await self._call(
                "POST", "/v1/commands/claim", params=params
            )
            return found
        found = await self._call("GET", "/v1/commands", params={"status": status, "limit": limit})
        return found

    async def ack(self, command_id: str, *, broker_order_id: str | None = None) -> dict[str, Any]:
        found: dict[str, Any] = await self._call(
            "POST", f"/v1/commands/{command_id}/ack", params={"broker_order_id": broker_order_id}
        )
        return found

    async def fail(self, command_id: str, *, reason: str) -> dict[str, Any]:
        found: dict[str, Any] = await self._call(
            "POST", f"/v1/commands/{command_id}/fail", params={"reason": reason}
        )
        return found

    # -- reads ----------------------------------------------------------------------------

    async def _list(self, path: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self._call("GET", path, params=params)
        return found

    async def positions(
        self, *, include_flat: bool = False, **filters: Any
    ) -> list[dict[str, Any]]:
        """Filters: account, instrument, strategy, mode (as :meth:`Ledger.positions`)."""
        return await self._list("/v1/positions", {"all": include_flat or None, **filters})

    async def trades(
        self, *, status: str | None = None, limit: int = 1000, **filters: Any
    ) -> list[dict[str, Any]]:
        return await self._list("/v1/trades", {"status": status, "limit": limit, **filters})

    async def pnl(self, **options: Any) -> list[dict[str, Any]]:
        """As :meth:`Ledger.pnl`: by, period, tz, session_start, since, until, filters."""
        by = options.get("by")
        if by is not None and not isinstance(by, str):
            options["by"] = ",".join(by)
        return await self._list("/v1/pnl", options)

    async def anomalies(self, **filters: Any) -> list[dict[str, Any]]:
        return await self._list("/v1/anomalies", filters)

    async def rejected_inputs(self) -> list[dict[str, Any]]:
        return await self._list("/v1/rejected", {})

    async def reconciliations(
        self, *, run: str | None = None, account: str | None = None, last: int = 1
    ) -> list[dict[str, Any]]:
        return await self._list(
            "/v1/reconciliations", {"run": run, "account": account, "last": last}
        )

    async def journal(self, *, after_seq: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        return await self._list("/v1/journal", {"after_seq": after_seq, "limit": limit})

    async def head(self) -> int:
        """The journal's last entry."""
        found: dict[str, Any] = await self._call("GET", "/v1/head")
        return int(found["seq"])

    async def stream(self, after_seq: int | None = None) -> AsyncIterator[dict[str, Any]]:
        """The journal's entries after ``after_seq`` (from now when None), as the live
        stream sends them, for ever: reconnecting after a drop from the last one given."""
        last = after_seq
        attempt = 0
        while True:
            params = {} if last is None else {"after_seq": last}
            try:
                async with self._http.stream(
                    "GET", "/v1/stream", params=params, timeout=httpx.Timeout(None, connect=10)
                ) as answer:
                    if answer.status_code >= 400:
                        await answer.aread()
                        if answer.status_code not in RETRIED:
                            raise _error(answer)
                        await self._pause(attempt, answer)
                        attempt += 1
                        continue
                    attempt = 0
                    block: dict[str, str] = {}
                    async for line in answer.aiter_lines():
                        if line:
                            name, _, value = line.partition(":")
                            if name:
                                block[name] = value.removeprefix(" ")
                            continue
                        if "id" in block:
                            last = int(block["id"])
                        if "data" in block:
                            yield json.loads(block["data"])
                        block = {}
            except httpx.TransportError:
                if attempt >= self.retries:
                    raise
                await self._pause(attempt, None)
                attempt += 1


AMOUNTS = frozenset({"quantity", "price", "commission", "high", "low", "take_profit", "stop_loss"})


def _text(name: str, value: Any) -> Any:
    """A field as the API reads it: amounts as exact text (a Decimal, or an int where an
    amount goes), times as ISO text."""
    from datetime import datetime
    from decimal import Decimal

    if isinstance(value, Decimal) or (
        name in AMOUNTS and isinstance(value, int) and not isinstance(value, bool)
    ):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value
