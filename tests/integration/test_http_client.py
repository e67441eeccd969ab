"""``posledger.client.LedgerClient`` against the app, on every store (docs/service.md,
From Python): the local Ledger's methods give the same books through HTTP, errors come
back as the ledger's own, a request whose answer was lost is sent again and applied once,
and the stream resumes after the last event seen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from posledger import NotFound, UsageError, open_ledger
from posledger.client import AccessDenied, LedgerClient
from posledger.entrypoints.http.app import Settings, create_app

from .helpers import setup
from .test_http_stream import Live

T = "2026-03-02T"


def _keys(db_url: str) -> tuple[str, str]:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        _, admin = ledger.create_key(admin=True)
        _, alpha = ledger.create_key(strategy="alpha")
    return admin, alpha


class Flaky(httpx.AsyncBaseTransport):
    """Forwards to the app. ``fail(call, None)``, before, may answer instead of the app
    (or raise: the request never arrived); ``fail(call, answer)``, after, may raise: the
    app handled the request and its answer was lost."""

    def __init__(self, inner: httpx.AsyncBaseTransport, fail: Callable[[int, Any], Any]) -> None:
        self.inner, self.fail, self.calls = inner, fail, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        instead = self.fail(self.calls, None)
        if instead is not None:
            return instead  # type: ignore[no-any-return]
        answer = await self.inner.handle_async_request(request)
        self.fail(self.calls, answer)
        return answer


async def _served(db_url: str, fail: Callable[[int, Any], Any] | None = None) -> AsyncIterator[Any]:
    app = create_app(Settings(db=db_url, rate=1e6))
    async with app.router.lifespan_context(app):
        inner = httpx.ASGITransport(app=app)
        yield inner if fail is None else Flaky(inner, fail)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_the_ledgers_methods_through_http(db_url: str) -> None:
    admin, alpha = _keys(db_url)

    async def session() -> None:
        async for transport in _served(db_url):
            async with LedgerClient("http://ledger", alpha, transport=transport) as client:
                order = await client.register_order(
                    client_order_id="o-1", account="ACC", strategy="alpha", instrument="FUT",
                    side="BUY", quantity=2, intent="entry", ts=f"{T}09:59:00Z",
                )  # fmt: skip
                assert order["status"] == "applied", order
                for n, price in enumerate([Decimal("100.25"), Decimal("101")], start=1):
                    fill = await client.apply_fill(
                        exec_id=f"f{n}", account="ACC", instrument="FUT", side="BUY",
                        quantity=1, price=price, ts=f"{T}10:0{n}:00Z", client_order_id="o-1",
                        commission="0.5", commission_currency="USD",
                    )  # fmt: skip
                    assert fill["status"] == "applied" and fill["seq"] > order["seq"], fill
                verdict = await client.check_order(
                    client_order_id="o-2", account="ACC", strategy="alpha", instrument="FUT",
                    side="SELL", quantity=5, intent="exit",
                )  # fmt: skip
                assert verdict["allowed"] is False and verdict["reasons"]
                seen = (
                    await client.positions(),
                    await client.trades(),
                    await client.pnl(by=["strategy"]),
                )
                with pytest.raises(AccessDenied, match="only an admin key"):
                    await client.halt(account="ACC", instrument="FUT")
                with pytest.raises(AccessDenied, match="reads alpha's only"):
                    await client.positions(strategy="beta")
                with pytest.raises(NotFound, match="no instrument 'NOPE'"):
                    await client.trades(instrument="NOPE")
                with pytest.raises(UsageError):
                    await client.pnl(tz="Mars/Olympus")
                bracket = await client.set_bracket(
                    account="ACC", instrument="FUT", strategy="alpha", take_profit="110",
                    stop_loss="95",
                )  # fmt: skip
                assert bracket["status"] == "applied", bracket
                with pytest.raises(AccessDenied, match="claims alpha's commands only"):
                    await client.commands(claim="w1", strategies=["alpha", "beta"])
                assert await client.commands(claim="w1", strategies=[]) == []
                claimed = await client.commands(claim="w1", strategies=["alpha"])
                assert [(c["strategy"], c["worker"]) for c in claimed] == [("alpha", "w1")] * 2
            async with LedgerClient("http://ledger", admin, transport=transport) as client:
                assert await client.head() == (await client.journal(limit=10_000))[-1]["seq"]
        with open_ledger(db_url) as ledger:
            local = (ledger.positions(), ledger.trades(), ledger.pnl(by="strategy"))
        assert seen == local
        (slot,) = local[0]
        assert (slot["quantity"], slot["avg_entry_price"]) == ("2", "100.625")

    run(session())


def test_a_lost_answer_is_sent_again_and_applied_once(db_url: str) -> None:
    admin, _ = _keys(db_url)

    def lose_first_two(call: int, answer: httpx.Response | None) -> None:
        if call <= 2 and answer is not None:  # the app applied it; the answer never arrives
            raise httpx.ReadError("connection reset while reading the answer")

    def busy_first(call: int, answer: httpx.Response | None) -> httpx.Response | None:
        if call == 1 and answer is None:  # the server turned it away
            return httpx.Response(503, headers={"Retry-After": "0"}, json={"detail": "busy"})
        return None

    async def session() -> list[dict[str, Any]]:
        outcomes = []
        for fail in (lose_first_two, busy_first):
            async for transport in _served(db_url, fail):
                async with LedgerClient("http://ledger", admin, transport=transport) as client:
                    outcomes.append(
                        await client.apply_fill(
                            exec_id=f"lost-{fail.__name__}",
                            account="ACC",
                            instrument="FUT",
                            side="BUY",
                            quantity="1",
                            price="100",
                            ts=f"{T}10:00:00Z",
                            strategy="alpha",
                        )
                    )
                    assert transport.calls == (3 if fail is lose_first_two else 2)
        return outcomes

    lost, busy = run(session())
    assert lost["status"] == "duplicate"  # applied by the first attempt, whose answer was lost
    assert busy["status"] == "applied"  # the 503 applied nothing
    with open_ledger(db_url) as ledger:
        (slot,) = ledger.positions()
        assert slot["quantity"] == "2"
        fills = [e for e in ledger.journal(limit=None) if e.kind == "fill"]
        assert len(fills) == 2


def test_giving_up_is_a_database_error_and_refusals_are_not_retried(db_url: str) -> None:
    admin, _ = _keys(db_url)

    def always(call: int, answer: httpx.Response | None) -> None:
        raise httpx.ConnectError("refused")

    async def session() -> None:
        async for transport in _served(db_url, always):
            client = LedgerClient("http://ledger", admin, transport=transport, retries=2)
            with pytest.raises(Exception, match="refused") as raised:
                await client.positions()
            assert type(raised.value).__name__ == "DatabaseError"
            assert transport.calls == 3
            await client.aclose()
        async for transport in _served(db_url, lambda call, answer: None):
            async with LedgerClient("http://ledger", "plk_00_x", transport=transport) as client:
                with pytest.raises(AccessDenied):
                    await client.positions()
                assert transport.calls == 1

    run(session())


def test_the_stream_resumes_after_the_last_event_seen(db_url: str) -> None:
    admin, _ = _keys(db_url)
    live = Live(db_url)
    try:

        async def session() -> list[int]:
            seen: list[int] = []
            async with LedgerClient(live.base, admin) as client:
                head = await client.head()
                for n in range(3):
                    await client.apply_fill(
                        exec_id=f"s{n}", account="ACC", instrument="FUT", side="BUY",
                        quantity="1", price="100", ts=f"{T}10:0{n}:00Z", strategy="alpha",
                    )  # fmt: skip
                events = client.stream(after_seq=head)
                async for event in events:
                    seen.append(event["seq"])
                    if len(seen) == 2:
                        break
                await events.aclose()
                # Reconnecting from the last event seen: the third, then a new one.
                await client.apply_fill(
                    exec_id="s3", account="ACC", instrument="FUT", side="BUY", quantity="1",
                    price="100", ts=f"{T}10:03:00Z", strategy="alpha",
                )  # fmt: skip
                again = client.stream(after_seq=seen[-1])
                async for event in again:
                    seen.append(event["seq"])
                    if len(seen) == 4:
                        break
                await again.aclose()
            return seen

        seqs = run(session())
    finally:
        live.close()
    assert seqs == sorted(set(seqs)) and len(seqs) == 4
    with open_ledger(db_url) as ledger:
        fills = [e.seq for e in ledger.journal(limit=None) if e.kind == "fill"]
    assert seqs == fills
