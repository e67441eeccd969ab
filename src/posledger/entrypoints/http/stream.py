"""The live stream (docs/service.md, Live stream): the journal as server-sent events.

``GET /v1/stream`` sends each journal entry after the client's last one as an event: its
number as ``id``, its kind as ``event``, and as ``data`` the entry as ``/v1/journal``
gives it with ``changes``, what it changed (:func:`posledger.service.feed.changes`). A
client that reconnects with the last id it got (``Last-Event-ID``) misses nothing and sees
nothing twice; a strategy key gets the entries that concern its strategy only.

Each stream reads the journal itself, a page at a time, through a
:class:`~posledger.service.feed.Tail`: a slow client, or one back after a long absence,
costs a page of memory. A :class:`Hub` per process tells the streams when to read: the
writer rings it after each commit (entries go out within milliseconds), a poller when the
journal has grown by another process's hand (``posledger ingest``, another worker), and
SIGINT or SIGTERM when the server stops. uvicorn waits for open responses before it shuts
the app down and tells them nothing, so the streams learn of the signal from handlers
chained before the server's own.

(No ``from __future__ import annotations`` here: FastAPI reads the route's annotations,
and one names a dependency made inside :func:`router`.)
"""

import asyncio
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from starlette.responses import StreamingResponse

from ...ports import Reads
from ...service.feed import PAGE, SETTLE_SECONDS, Tail, changes
from ...service.keys import MAX_TOKEN, Principal
from ...service.queries import journal_views
from .problems import Problem

if TYPE_CHECKING:
    from .app import Service

__all__ = ["Hub", "StreamSettings", "router"]

logger = logging.getLogger("posledger.stream")

RETRY_MS = 1000
"""How long an EventSource waits before it reconnects (the ``retry`` field)."""
HOLD_SECONDS = 0.05
"""How often a stream held back by a missing number looks again."""


class StreamSettings(msgspec.Struct, frozen=True):
    """How the live stream runs (docs/service.md, Live stream)."""

    poll: float = 0.5
    """Seconds between two looks at the journal for what other processes wrote."""
    heartbeat: float = 15.0
    """Seconds of silence after which a stream sends a comment (and its key is checked
    again: a revoked key's stream ends)."""
    settle: float = SETTLE_SECONDS
    """Seconds a missing journal number is waited for where the database cannot say which
    transactions may still write it (:class:`~posledger.service.feed.Tail`)."""
    page: int = PAGE
    """Journal entries a stream reads at a time."""


class Hub:
    """Wakes the streams of one process. :meth:`ring` and :meth:`stop` may be called from
    any thread (the writer's) or a signal handler; the rest runs on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, reads: Reads, poll: float) -> None:
        self._loop = loop
        self._reads = reads
        self._poll = poll
        self._waiters: set[asyncio.Future[None]] = set()
        self._high = 0
        self.rung = 0
        """How many times the hub rang: a stream that read after ``rung`` was n waits
        only while it is still n."""
        self.stopping = False
        self.streams = 0
        """Streams open now (the poller looks at the journal only while there are)."""

    def ring(self) -> None:
        """Wake every stream: the journal may have grown."""
        if not self._loop.is_closed():  # closed: no stream is left to wake
            self._loop.call_soon_threadsafe(self._wake)

    def stop(self) -> None:
        """End every stream: the server stops."""
        self.stopping = True
        self.ring()

    def seen(self, seq: int) -> None:
        """A stream has read up to ``seq``: the poller rings for entries after it."""
        self._high = max(self._high, seq)

    async def wait(self, rung: int, timeout: float) -> None:
        """Until the hub rings after ``rung`` (at once if it has), or ``timeout`` s."""
        if self.rung != rung or self.stopping:
            return
        waiter = self._loop.create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait([waiter], timeout=timeout)
        finally:
            self._waiters.discard(waiter)

    def _wake(self) -> None:
        self.rung += 1
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def watch(self) -> None:
        """Ring when the journal ends past what the streams have read, whoever wrote it:
        one look every ``poll`` seconds, while a stream is open."""
        while not self.stopping:
            await asyncio.sleep(self._poll)
            if not self.streams:
                continue
            try:
                end = await asyncio.to_thread(self._reads.journal_end)
            except Exception as exc:  # the streams meet it too, and end; this goes on
                logger.warning("the live stream cannot look at the journal: %s", exc)
                continue
            if end > self._high:
                self._high = end
                self.ring()


def _stop_on_signals(hub: Hub) -> Callable[[], None]:
    """Chain SIGINT and SIGTERM to stop ``hub`` before the handlers installed (the
    server's); what puts them back. Nothing off the main thread (a test client's)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    chained: dict[int, tuple[Any, Any]] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        before = signal.getsignal(sig)
        if not callable(before):
            continue  # the default action or none: nothing to hand the signal on to

        def handler(signum: int, frame: FrameType | None, before: Any = before) -> None:
            hub.stop()
            before(signum, frame)

        signal.signal(sig, handler)
        chained[sig] = (before, handler)

    def restore() -> None:
        for sig, (before, handler) in chained.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, before)

    return restore


@dataclass(frozen=True)
class Keyed:
    """A stream's key: who it is, and the token, checked again as the stream goes on."""

    principal: Principal
    token: str


class EventStream(StreamingResponse):
    media_type = "text/event-stream"


def _event(view: dict[str, Any]) -> bytes:
    data = msgspec.json.encode(view)
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (view["seq"], view["kind"].encode(), data)


def _page(tail: Tail, principal: Principal) -> list[tuple[int, bytes]]:
    """The next entries as events, those the key may see (in a worker thread)."""
    rows = tail.read()
    events = []
    for view in journal_views(rows):
        found = changes(view, tail.reads.owner)
        if principal.admin or principal.strategy in found["strategies"]:
            view["changes"] = found
            events.append((view["seq"], _event(view)))
    return events


async def _events(
    service: "Service", hub: Hub, keyed: Keyed, after: int, settings: StreamSettings
) -> AsyncIterator[bytes]:
    tail = Tail(service.reader.store.reads(), after, page=settings.page, settle=settings.settle)
    hub.streams += 1
    try:
        yield b"retry: %d\nid: %d\n\n" % (RETRY_MS, after)
        given = after  # the last id the client has
        quiet = checked = time.monotonic()
        while not hub.stopping:
            rung = hub.rung
            events = await asyncio.to_thread(_page, tail, keyed.principal)
            hub.seen(tail.cursor)
            for seq, event in events:
                yield event
                given = seq
            if events:
                quiet = time.monotonic()
            if tail.more:
                continue
            if tail.cursor != given:  # entries the key may not see: move its resume point
                yield b"id: %d\n\n" % tail.cursor
                given, quiet = tail.cursor, time.monotonic()
            now = time.monotonic()
            if now - checked >= settings.heartbeat:
                checked = now
                if await asyncio.to_thread(service.reader.authenticate, keyed.token) is None:
                    return  # revoked: reconnecting gets a 401
            timeout = HOLD_SECONDS if tail.holding else settings.heartbeat - (now - quiet)
            await hub.wait(rung, max(0.0, timeout))
            if time.monotonic() - quiet >= settings.heartbeat:
                yield b": keep-alive\n\n"
                quiet = time.monotonic()
    finally:
        hub.streams -= 1


def _start(request: Request, after_seq: int | None, last_event_id: str | None) -> int:
    """Where a stream starts: after ``Last-Event-ID``, else ``after_seq``, else the
    journal's last entry (entries from now on)."""
    if last_event_id is not None and last_event_id.strip():
        text = last_event_id.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 18):
            raise Problem(
                400,
                "bad-request",
                "Bad Last-Event-ID",
                f"Last-Event-ID {last_event_id[:40]!r} is no journal number",
            )
        return int(text)
    if after_seq is not None:
        return after_seq
    service: Service = request.app.state.service
    return service.reader.store.reads().journal_end()


def _hide_token(request: Request) -> None:
    """Take ``access_token`` out of the query string the server's access log shows (it
    reads the request's scope); proxies in front have logged it already."""
    query: bytes = request.scope.get("query_string", b"")
    kept = [p for p in query.split(b"&") if p.split(b"=", 1)[0] != b"access_token"]
    request.scope["query_string"] = b"&".join(kept)


def router(
    principal: Callable[[Request], Awaitable[Principal]],
    authenticate: Callable[[Request, str], Principal],
) -> APIRouter:
    """``GET /stream`` and the hub it needs while the app runs. ``principal``: the key a
    request carries in its header; ``authenticate``: the key a token is (each with the
    app's 401 and 429)."""

    async def keyed(
        request: Request,
        access_token: Annotated[
            str | None,
            Query(
                max_length=MAX_TOKEN,
                description="The key, for a browser's EventSource, which cannot send a "
                "header. It ends up in the logs of proxies: prefer the header.",
            ),
        ] = None,
    ) -> Keyed:
        header = request.headers.get("authorization")
        if access_token is not None:
            _hide_token(request)
        if header is None and access_token is not None:
            token = access_token.strip()
            return Keyed(authenticate(request, token), token)
        found = await principal(request)
        return Keyed(found, (header or "").partition(" ")[2].strip())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service: Service = app.state.service
        hub = Hub(
            asyncio.get_running_loop(), service.reader.store.reads(), service.settings.stream.poll
        )
        app.state.stream_hub = hub
        service.writer.on_commit(hub.ring)
        watching = asyncio.create_task(hub.watch())
        restore = _stop_on_signals(hub)
        try:
            yield
        finally:
            restore()
            hub.stop()
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)

    routes = APIRouter(lifespan=lifespan)

    @routes.get(
        "/stream",
        tags=["stream"],
        summary="The journal as it grows: server-sent events.",
        response_class=EventStream,
        responses={
            200: {
                "description": "Server-sent events, one per journal entry (docs/service.md, "
                "Live stream).",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        },
    )
    async def stream(
        request: Request,
        key: Annotated[Keyed, Depends(keyed)],
        after_seq: Annotated[int | None, Query(ge=0, le=2**62)] = None,
        last_event_id: Annotated[str | None, Header(max_length=64)] = None,
    ) -> EventStream:
        """Each journal entry after `Last-Event-ID` (else `after_seq`, else from now on)
        as an event: `id` its number, `event` its kind, `data` the entry as
        `/v1/journal` gives it with `changes`. A strategy key gets the entries that
        concern its strategy. A comment every 15 s of silence (docs/service.md, Live
        stream)."""
        service: Service = request.app.state.service
        hub: Hub = request.app.state.stream_hub
        after = await asyncio.to_thread(_start, request, after_seq, last_event_id)
        return EventStream(
            _events(service, hub, key, after, service.settings.stream),
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return routes
