"""The HTTP API (docs/service.md): FastAPI on uvicorn, versioned under ``/v1``.

Writes go through the process's one writer (:mod:`.writer`, group commit); reads use the
ledger's read side directly. Every request but ``/healthz``, ``/readyz``, ``/metrics``
(:mod:`.metrics`) and ``/openapi.json`` carries a key (``Authorization: Bearer KEY``); a
strategy key acts for its strategy alone (:mod:`posledger.service.scopes`). Errors are
problem details (:mod:`.problems`).
"""

from __future__ import annotations

import asyncio
import fcntl
import math
import os
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypedDict

import msgspec
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ...adapters.jsonl import Line, read_lines
from ...errors import LedgerError
from ...service.keys import Principal
from ...service.ledger import Ledger
from . import metrics, stream
from .problems import Problem, from_ledger_error, problem
from .stream import StreamSettings
from .writer import Batch, GroupWriter, outcome_view

__all__ = ["Settings", "create_app", "factory"]

API = "/v1"


class Settings(msgspec.Struct, frozen=True):
    """How the service runs (``posledger serve`` options, or ``$POSLEDGER_SERVE_*``)."""

    db: str | None = None
    max_body: int = 16 * 2**20
    """Bytes a request body may hold."""
    body_seconds: float = 30.0
    """How long a request body may take to arrive."""
    rate: float = 200.0
    """Requests per second a key may make, on average (bursts of twice that)."""
    workers: int = 1
    """Worker processes serving the app: with more than one, keys' rates are shared
    through files in ``metrics_dir``."""
    key_seconds: float = 1.0
    """How long a key looked up stays known (a revoked key is refused after that)."""
    metrics_dir: str | None = None
    """prometheus_client's multiprocess directory (``$PROMETHEUS_MULTIPROC_DIR``, which
    ``posledger serve`` sets): every worker's metrics are added up there."""
    metrics_cache: float = 5.0
    """Seconds the metrics read from the database are kept between scrapes."""
    stream: StreamSettings = msgspec.field(default_factory=StreamSettings)
    """The live stream's intervals (:mod:`.stream`)."""

    @classmethod
    def from_environ(cls) -> Settings:
        env, default = os.environ, cls()
        return cls(
            db=env.get("POSLEDGER_DB") or None,
            max_body=int(env.get("POSLEDGER_SERVE_MAX_BODY") or default.max_body),
            body_seconds=float(env.get("POSLEDGER_SERVE_BODY_SECONDS") or default.body_seconds),
            rate=float(env.get("POSLEDGER_SERVE_RATE") or default.rate),
            workers=int(env.get("POSLEDGER_SERVE_WORKERS") or default.workers),
            metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
            metrics_cache=float(env.get("POSLEDGER_SERVE_METRICS_CACHE") or default.metrics_cache),
        )


class Buckets:
    """A token bucket per key: ``rate`` a second, bursts of ``2 * rate``, in this process."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst = rate, 2 * rate
        self._clock = clock
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """0 when the key may go on now (a token is taken), else the seconds to wait."""
        with self._lock:
            now = self._clock()
            wait, self._state[key] = self._take(self._state.get(key), now)
            return wait

    def _take(
        self, kept: tuple[float, float] | None, now: float
    ) -> tuple[float, tuple[float, float]]:
        tokens, then = kept if kept is not None else (self.burst, now)
        tokens = min(self.burst, tokens + max(0.0, now - then) * self.rate)
        if tokens >= 1:
            return 0.0, (tokens - 1, now)
        return (1 - tokens) / self.rate, (tokens, now)

    def close(self) -> None:
        """Let go of what the buckets hold."""


class SharedBuckets(Buckets):
    """The same buckets, shared by every worker process: a key's bucket is a file in
    ``directory`` (``serve``'s private one), locked while it is read and written, so a
    key's rate holds across workers (docs/service.md, Running it). The clock is the
    machine's monotonic one, the same in every process."""

    def __init__(
        self, rate: float, directory: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(rate, clock)
        self._directory = Path(directory)
        self._files: dict[str, int] = {}

    def wait(self, key: str) -> float:
        with self._lock:
            fd = self._files.get(key)
            if fd is None:
                path = self._directory / f"rate-{key}"
                fd = self._files[key] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                raw = os.pread(fd, _BUCKET.size, 0)
                kept = _BUCKET.unpack(raw) if len(raw) == _BUCKET.size else None
                wait, state = self._take(kept, self._clock())
                os.pwrite(fd, _BUCKET.pack(*state), 0)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            return wait

    def close(self) -> None:
        with self._lock:
            for fd in self._files.values():
                os.close(fd)
            self._files.clear()


_BUCKET = struct.Struct("<dd")
"""A shared bucket's file: its tokens, and when they were counted."""


class _Keys:
    """Who a token is, looked up in the database at most once a second per token: a
    revoked key is refused within a second (docs/service.md, Keys)."""

    def __init__(self, reader: Ledger, seconds: float) -> None:
        self._reader = reader
        self._seconds = seconds
        self._known: dict[str, tuple[Principal | None, float]] = {}
        self._lock = threading.Lock()

    def authenticate(self, token: str) -> Principal | None:
        now = time.monotonic()
        with self._lock:
            found = self._known.get(token)
        if found is not None and now - found[1] < self._seconds:
            return found[0]
        principal = self._reader.authenticate(token)
        with self._lock:
            if len(self._known) > 10_000:  # a flood of made-up tokens: start again
                self._known.clear()
            self._known[token] = (principal, now)
        return principal


class Service:
    """What the app holds while it runs: a ledger to read from, and the writer."""

    def __init__(
        self, settings: Settings, on_batch: Callable[[int, int, float], None] | None = None
    ) -> None:
        from ...bootstrap import open_ledger

        self.settings = settings
        self.reader = open_ledger(settings.db)
        self.writer = GroupWriter(lambda: open_ledger(settings.db), on_batch=on_batch)
        self.buckets = (
            SharedBuckets(settings.rate, settings.metrics_dir)
            if settings.workers > 1 and settings.metrics_dir is not None
            else Buckets(settings.rate)
        )
        self.keys = _Keys(self.reader, settings.key_seconds)

    def start(self) -> None:
        self.writer.start()

    def close(self) -> None:
        try:
            self.writer.close()
        finally:
            self.buckets.close()
            self.reader.close()


INGEST = f"{API}/ingest"


class LedgerApp(FastAPI):
    """The FastAPI app, with one short way in: ``POST /v1/ingest``, the hot path, goes
    straight to the same function its route calls (:func:`_ingest`), past the
    middleware, routing and dependency machinery, which cost more than applying a fill.
    Its errors are the same problem details; everything else takes the usual way."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != INGEST or scope["method"] != "POST":
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        request = Request(scope, receive)
        try:
            response = await _ingest(request, await _principal(request))
        except Problem as exc:
            response = problem(exc, INGEST)
        except LedgerError as exc:
            response = problem(from_ledger_error(exc), INGEST)
        except Exception:
            failed = problem(Problem(500, "internal", "Internal error", "see the server log"))
            await failed(scope, receive, send)
            raise  # for the server's log, as the usual way does
        await response(scope, receive, send)


def _service(request: Request) -> Service:
    found: Service = request.app.state.service
    return found


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="posledger"'}


async def _principal(request: Request) -> Principal:
    """The key the request carries (401 without a valid one; 429 over its rate)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "unauthorized",
            "A key is needed",
            "send a key as `Authorization: Bearer KEY` (posledger keys create)",
            headers=_CHALLENGE,
        )
    return _authenticate(request, token.strip())


def _authenticate(request: Request, token: str) -> Principal:
    """The key ``token`` is (401 unless a valid one; 429 over its rate)."""
    service = _service(request)
    found = service.keys.authenticate(token)
    if found is None:
        raise Problem(
            401, "unauthorized", "Unknown key", "the key is unknown or revoked", headers=_CHALLENGE
        )
    wait = service.buckets.wait(found.key_id)
    if wait > 0:
        raise Problem(
            429,
            "rate-limited",
            "Too many requests",
            f"key {found.key_id} may make {service.settings.rate:g} requests a second",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    return found


Key = Annotated[Principal, Depends(_principal)]


def _admin(principal: Principal, what: str) -> None:
    if not principal.admin:
        raise Problem(
            403,
            "forbidden",
            "Forbidden",
            f"only an admin key may {what}: this key acts for strategy {principal.strategy}",
        )


def _own(principal: Principal, strategy: str | None) -> str | None:
    """The strategy filter a read uses: a strategy key reads its own strategy only."""
    if principal.admin:
        return strategy
    if strategy is not None and strategy != principal.strategy:
        raise Problem(
            403,
            "forbidden",
            "Forbidden",
            f"a key of strategy {principal.strategy} reads {principal.strategy}'s only",
        )
    return principal.strategy


async def _body(request: Request) -> bytes:
    """The request body, refused when larger than the limit or slower than allowed."""
    settings = _service(request).settings
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > settings.max_body:
        raise _too_large(settings.max_body)

    async def read() -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > settings.max_body:
                raise _too_large(settings.max_body)
            chunks.append(chunk)
        return b"".join(chunks)

    try:
        async with asyncio.timeout(settings.body_seconds):
            return await read()
    except TimeoutError:
        raise Problem(
            408,
            "body-timeout",
            "Request body too slow",
            f"the body did not arrive within {settings.body_seconds:g} s",
        ) from None


def _too_large(limit: int) -> Problem:
    return Problem(
        413,
        "body-too-large",
        "Request body too large",
        f"a request body holds at most {limit} bytes: send more requests",
    )


def _lines(body: bytes, content_type: str) -> list[bytes]:
    """The input lines a body holds: a JSON object, a JSON array of them, or JSON Lines."""
    stripped = body.strip()
    if content_type.split(";")[0].strip().lower() == "application/json" or (stripped[:1] == b"["):
        if stripped[:1] == b"[":
            try:
                items = msgspec.json.decode(stripped, type=list[msgspec.Raw])
            except msgspec.DecodeError as exc:
                raise Problem(400, "bad-json", "Body is not JSON", str(exc)) from None
            return [bytes(item) for item in items]
        return [stripped] if stripped else []
    return body.split(b"\n")


def _ledger_errors(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> Response:
        return problem(exc, request.url.path)

    @app.exception_handler(LedgerError)
    async def on_ledger_error(request: Request, exc: LedgerError) -> Response:
        return problem(from_ledger_error(exc), request.url.path)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"where": ".".join(str(part) for part in error.get("loc", ())), "why": error["msg"]}
            for error in exc.errors()
        ]
        detail = "; ".join(f"{e['where']}: {e['why']}" for e in errors)
        found = Problem(422, "invalid-request", "Invalid request", detail, errors=errors)
        return problem(found, request.url.path)

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> Response:
        found = Problem(exc.status_code, "http", str(exc.detail), str(exc.detail))
        return problem(found, request.url.path)


def create_app(settings: Settings | None = None) -> LedgerApp:
    """The app; it opens the ledger (``settings.db``) when it starts."""
    chosen = settings or Settings.from_environ()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(chosen, on_batch=counted.batch)
        try:
            await asyncio.to_thread(service.start)
            app.state.service = service
            yield
        finally:
            await asyncio.to_thread(service.close)

    app = LedgerApp(
        title="posledger",
        version="1",
        summary="Per-strategy positions, trades and P&L from fills (docs/service.md).",
        lifespan=lifespan,
        responses=PROBLEMS,
        # FastAPI's /docs and /redoc pages load their scripts from a CDN: the service
        # loads nothing from outside (its description is /openapi.json).
        docs_url=None,
        redoc_url=None,
    )
    _ledger_errors(app)
    _health(app)
    _writes(app)
    _reads(app)
    counted = metrics.install(app, chosen.metrics_dir, chosen.metrics_cache)
    app.include_router(stream.router(_principal, _authenticate), prefix=API)
    _dashboard(app)
    return app


def factory() -> LedgerApp:
    """For uvicorn's ``--factory`` (each worker process builds its app)."""
    return create_app(Settings.from_environ())


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
}
PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {
        "description": why + " (problem details, docs/service.md, Errors)",
        "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}},
    }
    for status, why in [
        (400, "A usage error, or a body that is not JSON"),
        (401, "No key, or an unknown or revoked one"),
        (403, "What this key may not do"),
        (404, "An unknown name, command or path"),
        (405, "A method the path does not take"),
        (408, "The body arrived too slowly"),
        (413, "The body is too large"),
        (422, "A parameter out of range, or a refused snapshot"),
        (429, "Over the key's rate"),
        (503, "The database cannot be used"),
    ]
}
"""The errors every operation may answer with."""


# -- health ------------------------------------------------------------------------------


def _health(app: FastAPI) -> None:
    @app.get("/healthz", tags=["health"], summary="The process is up.")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="The database is reachable and its schema current.",
        responses={503: {"description": "Not ready (problem details)."}},
    )
    def readyz(request: Request) -> dict[str, str]:
        why = _service(request).reader.store.unready()
        if why is not None:
            raise Problem(503, "not-ready", "Not ready", why)
        return {"status": "ready"}


# -- writes ------------------------------------------------------------------------------

INGEST_REPLY: dict[str, Any] = {
    "type": "object",
    "required": ["applied", "duplicate", "rejected", "outcomes"],
    "properties": {
        "applied": {"type": "integer"},
        "duplicate": {"type": "integer"},
        "rejected": {"type": "integer"},
        "outcomes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["line", "status", "kind", "key", "reason", "seq"],
                "properties": {
                    "line": {"type": "integer"},
                    "status": {"enum": ["applied", "duplicate", "rejected"]},
                    "kind": {"type": ["string", "null"]},
                    "key": {"type": ["string", "null"]},
                    "reason": {"type": ["string", "null"]},
                    "seq": {"type": ["integer", "null"]},
                },
            },
        },
    },
}

_INGEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "object", "description": "One input record."},
                        {"type": "array", "items": {"type": "object"}},
                    ]
                }
            },
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


def _writes(app: FastAPI) -> None:
    @app.post(
        INGEST,
        tags=["writes"],
        summary="Apply input records: one JSON object, a JSON array, or JSON Lines.",
        openapi_extra=_INGEST_BODY,
        response_model=None,
        responses={
            200: {
                "description": "An outcome per line, once the applied ones are durable.",
                "content": {"application/json": {"schema": INGEST_REPLY}},
            },
            403: {"description": "A line this key may not send; nothing was applied."},
        },
    )
    async def ingest(request: Request, principal: Key) -> Response:
        """Each line is applied exactly once, or refused whole with its reason (kept
        with the others in `rejected`). The reply comes once every applied line is
        durable, with an outcome per line. A line a strategy key may not send refuses
        the whole request (403) before anything is applied."""
        return await _ingest(request, principal)

    @app.post(f"{API}/check-order", tags=["writes"], summary="Would this order be allowed?")
    async def check_order(request: Request, principal: Key) -> dict[str, Any]:
        """The pre-trade check of an `order` record (nothing is registered)."""
        service = _service(request)
        body = (await _body(request)).strip()
        lines = list(read_lines([body]))
        if not principal.admin:
            await asyncio.to_thread(_check_scope, service.reader, principal, lines)
        text = body.decode("utf-8", "replace")
        found = await service.writer.call(lambda ledger: ledger.check_order_line(text))
        return {"allowed": found.allowed, "reasons": list(found.reasons)}

    @app.post(
        f"{API}/commands/claim",
        tags=["commands"],
        summary="Claim pending commands (a strategy key: its strategy's).",
    )
    async def claim(
        request: Request,
        principal: Key,
        worker: Annotated[str, Query(min_length=1, max_length=128)],
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        strategy: Annotated[list[str] | None, Query()] = None,
    ) -> list[dict[str, Any]]:
        """Claim up to `limit` commands for `worker`, under a 30 s lease: of the
        strategies `strategy` names (repeated for several), or of every strategy. A
        strategy key claims its own strategy's only (403 for another's)."""
        service = _service(request)
        strategies = await asyncio.to_thread(
            _claimed_strategies, service.reader, principal, strategy
        )
        return await service.writer.call(
            lambda ledger: ledger.commands(claim=worker, limit=limit, strategies=strategies),
            principal.key_id,
        )

    @app.post(f"{API}/commands/{{command_id}}/ack", tags=["commands"], summary="Ack a command.")
    async def ack(
        request: Request,
        principal: Key,
        command_id: str,
        broker_order_id: Annotated[str | None, Query(max_length=128)] = None,
    ) -> dict[str, Any]:
        """The command was carried out (a strategy key: its own strategy's commands)."""
        service = _service(request)
        await asyncio.to_thread(_own_command, service.reader, principal, command_id)
        return await service.writer.call(
            lambda ledger: ledger.ack(command_id, broker_order_id=broker_order_id),
            principal.key_id,
        )

    @app.post(f"{API}/commands/{{command_id}}/fail", tags=["commands"], summary="Fail a command.")
    async def fail(
        request: Request,
        principal: Key,
        command_id: str,
        reason: Annotated[str, Query(min_length=1, max_length=4000)],
    ) -> dict[str, Any]:
        """The command could not be carried out, and why."""
        service = _service(request)
        await asyncio.to_thread(_own_command, service.reader, principal, command_id)
        return await service.writer.call(
            lambda ledger: ledger.fail(command_id, reason=reason), principal.key_id
        )

    @app.post(f"{API}/reconcile", tags=["writes"], summary="Compare with a broker snapshot.")
    async def reconcile(
        request: Request,
        principal: Key,
        accounts: Annotated[list[str] | None, Query()] = None,
        policy: Annotated[str | None, Query()] = None,
    ) -> dict[str, Any]:
        """The body is the broker's positions as JSON Lines (`broker_position` records),
        or a JSON array of them (admin). `fill` records among them are the broker's fill
        history: the ones the ledger has not seen are applied first, exactly once, as
        `posledger reconcile --fills` does."""
        _admin(principal, "reconcile")
        service = _service(request)
        body = await _body(request)
        snapshot: list[str] = []
        fills: list[str] = []
        for line in _lines(body, request.headers.get("content-type", "")):
            (fills if _record_type(line) == "fill" else snapshot).append(
                line.decode("utf-8", "replace")
            )
        source = f"key {principal.key_id}"
        report = await service.writer.call(
            lambda ledger: ledger.reconcile(
                snapshot,
                fills=fills or None,
                accounts=accounts or (),
                policy=policy,
                source=source,
                fills_source=source,
            ),
            principal.key_id,
        )
        return report.as_dict()


class _Typed(msgspec.Struct):
    type: str = ""


def _record_type(line: bytes) -> str:
    """A JSON line's record type ("" for one that is not a JSON object with a type)."""
    try:
        return msgspec.json.decode(line, type=_Typed).type
    except msgspec.DecodeError:
        return ""


async def _ingest(request: Request, principal: Principal) -> Response:
    """``POST /v1/ingest``, for the route and for :class:`LedgerApp`'s short way to it."""
    service = _service(request)
    body = await _body(request)
    lines = list(read_lines(_lines(body, request.headers.get("content-type", ""))))
    if not principal.admin:
        await asyncio.to_thread(_check_scope, service.reader, principal, lines)
    source, key = f"key {principal.key_id}", principal.key_id
    batch: Batch = [(line, source, key) for line in lines]
    outcomes = await service.writer.apply(batch, key, principal.strategy)
    request.app.state.metrics.count(outcomes)
    counts = {"applied": 0, "duplicate": 0, "rejected": 0}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    views = [
        outcome_view(line.number, outcome) for line, outcome in zip(lines, outcomes, strict=True)
    ]
    # Encoded here, not by FastAPI's validating encoder: this is the hot path.
    reply = msgspec.json.encode({**counts, "outcomes": views})
    return Response(reply, media_type="application/json")


def _check_scope(reader: Ledger, principal: Principal, lines: list[Line]) -> None:
    registered: dict[str, str] = {}
    for line in lines:
        if line.item is None:
            continue
        why = reader.refusal(principal, line.item, registered)
        if why is not None:
            raise Problem(
                403, "forbidden", "Forbidden", f"line {line.number}: {why}; nothing was applied"
            )


def _claimed_strategies(
    reader: Ledger, principal: Principal, asked: list[str] | None
) -> tuple[str, ...] | None:
    """The strategies a claim takes commands of: those asked for (404 for one the ledger
    does not know), every one when none is; a strategy key's own (403 for another's)."""
    own = principal.strategy
    if own is not None:
        others = sorted({name for name in asked or () if name != own})
        if others:
            raise Problem(
                403,
                "forbidden",
                "Forbidden",
                f"a key of strategy {own} claims {own}'s commands only, not {', '.join(others)}'s",
            )
        return (own,)
    if asked is None:
        return None
    for name in asked:
        reader.check_names(strategy=name)
    return tuple(dict.fromkeys(asked))


def _own_command(reader: Ledger, principal: Principal, command_id: str) -> None:
    if principal.admin:
        return
    owner = reader.store.reads().owner("command", command_id)
    if owner != principal.strategy:
        raise Problem(
            403,
            "forbidden",
            "Forbidden",
            f"command {command_id} is not strategy {principal.strategy}'s",
        )


# -- reads -------------------------------------------------------------------------------


async def _reader(request: Request) -> Ledger:
    return _service(request).reader


Reader = Annotated[Ledger, Depends(_reader)]
Text = Annotated[str | None, Query(max_length=128)]


class Scope(TypedDict):
    account: str | None
    instrument: str | None
    strategy: str | None
    mode: str | None


def _filters(
    ledger: Reader,
    principal: Key,
    account: Text = None,
    instrument: Text = None,
    strategy: Text = None,
    mode: Text = None,
) -> Scope:
    """A read's filters: names the ledger knows (404 otherwise), and a strategy key's own
    strategy (403 for another's)."""
    strategy = _own(principal, strategy)
    ledger.check_names(account=account, instrument=instrument, strategy=strategy)
    return Scope(account=account, instrument=instrument, strategy=strategy, mode=mode)


Filters = Annotated[Scope, Depends(_filters)]


def _dashboard(app: FastAPI) -> None:
    """The dashboard: one page and its two files (docs/service.md, Dashboard)."""
    from fastapi.staticfiles import StaticFiles
    from starlette.responses import FileResponse

    static = Path(__file__).with_name("static")
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(static / "index.html", headers={"Cache-Control": "no-cache"})


def _reads(app: FastAPI) -> None:
    @app.get(f"{API}/head", tags=["reads"], summary="Who the key is, and the last entry.")
    def head(ledger: Reader, principal: Key) -> dict[str, Any]:
        """The journal's last entry (where a stream that starts now begins) and what the
        key acts for."""
        return {
            "seq": ledger.head(),
            "key_id": principal.key_id,
            "strategy": principal.strategy,
        }

    @app.get(f"{API}/positions", tags=["reads"], summary="Each strategy's slots.")
    def positions(ledger: Reader, filters: Filters, all: bool = False) -> list[dict[str, Any]]:
        """Open slots (all with `all=true`), with realized and unrealized P&L."""
        return ledger.positions(include_flat=all, **filters)

    @app.get(f"{API}/trades", tags=["reads"], summary="Round-trip trades.")
    def trades(
        ledger: Reader,
        filters: Filters,
        status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[dict[str, Any]]:
        """Trades in the order they were opened, newest `limit`, with their fills."""
        return ledger.trades(status=status, **filters)[-limit:]

    @app.get(f"{API}/pnl", tags=["reads"], summary="Realized and unrealized P&L.")
    def pnl(
        ledger: Reader,
        filters: Filters,
        by: str = "strategy",
        period: Annotated[str | None, Query(pattern="^(day|week|month)$")] = None,
        tz: str = "UTC",
        session_start: str = "00:00",
        since: Text = None,
        until: Text = None,
    ) -> list[dict[str, Any]]:
        """Grouped `by` strategy, account, mode, instrument (comma-separated), per period."""
        rows: list[dict[str, Any]] = ledger.pnl(
            by=by, period=period, tz=tz, session_start=session_start, since=since, until=until,
            **filters,
        )  # fmt: skip
        return rows

    @app.get(f"{API}/anomalies", tags=["reads"], summary="Fills booked to EXTERNAL, and why.")
    def anomalies(ledger: Reader, filters: Filters) -> list[dict[str, Any]]:
        return ledger.anomalies(**filters)

    @app.get(f"{API}/rejected", tags=["reads"], summary="Refused inputs (admin).")
    def rejected(ledger: Reader, principal: Key) -> list[dict[str, Any]]:
        _admin(principal, "read refused inputs")
        return ledger.rejected_inputs()

    @app.get(f"{API}/reconciliations", tags=["reads"], summary="Reconciliation runs (admin).")
    def reconciliations(
        ledger: Reader,
        principal: Key,
        run: Text = None,
        account: Text = None,
        last: Annotated[int, Query(ge=1, le=1000)] = 1,
    ) -> list[dict[str, Any]]:
        _admin(principal, "read reconciliations")
        ledger.check_names(account=account)
        return ledger.reconciliations(run=run, account=account, last=None if run else last)

    @app.get(f"{API}/commands", tags=["commands"], summary="Outbox commands.")
    def commands(
        ledger: Reader,
        principal: Key,
        status: Annotated[str | None, Query(pattern="^(pending|claimed|acked|failed)$")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """Commands of `status` (all without), oldest first; a strategy key's own."""
        found = ledger.commands(status=status, limit=limit if principal.admin else 1_000_000)
        if not principal.admin:
            found = [c for c in found if c["strategy"] == principal.strategy][:limit]
        return found

    @app.get(f"{API}/journal", tags=["reads"], summary="Journal entries after a seq (admin).")
    def journal(
        ledger: Reader,
        principal: Key,
        after_seq: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[dict[str, Any]]:
        _admin(principal, "read the journal")
        return ledger.journal_json(after_seq=after_seq, limit=limit)
