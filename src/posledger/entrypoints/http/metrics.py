"""Prometheus metrics of the service (docs/service.md, Metrics): ``GET /metrics``, no key.

Two parts make a scrape:

* the process's own counts (inputs applied, duplicate or rejected; each group commit's
  time, requests and lines), counted where they happen. With several workers,
  ``posledger serve`` gives them a fresh ``PROMETHEUS_MULTIPROC_DIR``: each worker writes its
  counts to files there (prometheus_client's multiprocess mode) and a scrape adds up every
  worker's, the stopped ones' included. Without it (in one process, as in tests) they
  live in the app's own registry.
* the ledger's, read from the database (:mod:`.ledger_metrics`) and kept for
  ``cache_seconds``. With several workers the copy kept is one file all of them share,
  made by one worker at a time: every worker answers the same values, and they never go
  back in time from one scrape to the next (a counter that did would read as a reset).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.responses import Response

from ...service.handlers import Outcome
from ...service.ledger import Ledger
from .ledger_metrics import ledger_exposition

__all__ = ["CACHE_FILE", "Cache", "ProcessMetrics", "SharedCache", "install", "process_exposition"]

CACHE_FILE = "ledger-metrics.prom"
"""The ledger's metrics as last read, in the multiprocess directory (not a ``*.db`` file:
the multiprocess collector reads only those)."""


class ProcessMetrics:
    """What this process counts: the ingest endpoint's outcomes, the writer's commits."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.inputs = Counter(
            "posledger_inputs",
            "Input lines sent to /v1/ingest, by record type and outcome.",
            ["kind", "status"],
            registry=registry,
        )
        self.apply_seconds = Histogram(
            "posledger_apply_seconds",
            "How long one group-commit transaction took to apply and commit.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.batch_requests = Histogram(
            "posledger_batch_requests",
            "Requests applied together in one group-commit transaction.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=registry,
        )
        self.batch_lines = Histogram(
            "posledger_batch_lines",
            "Lines applied in one group-commit transaction.",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
            registry=registry,
        )

    def count(self, outcomes: Iterable[Outcome]) -> None:
        """Count an ingest request's outcomes (a line that could not be read: ``unknown``)."""
        for outcome in outcomes:
            self.inputs.labels(outcome.kind or "unknown", outcome.status).inc()

    def batch(self, requests: int, lines: int, seconds: float) -> None:
        """The writer's ``on_batch``: one group commit."""
        self.apply_seconds.observe(seconds)
        self.batch_requests.observe(requests)
        self.batch_lines.observe(lines)


class Cache:
    """The ledger's part of a scrape, made at most once per ``seconds`` (in this process)."""

    def __init__(self, seconds: float, make: Callable[[], bytes]) -> None:
        self.seconds, self.make = seconds, make
        self._lock = threading.Lock()
        self._kept: tuple[float, bytes] | None = None

    def get(self) -> bytes:
        with self._lock:  # a storm of scrapes waits for one read
            now = time.monotonic()
            if self._kept is None or now - self._kept[0] >= self.seconds:
                self._kept = (now, self.make())
            return self._kept[1]


class SharedCache(Cache):
    """The same, kept in a file of ``directory`` that every worker reads: one worker at a
    time makes it (a lock file), so the copies follow one another in time."""

    def __init__(self, seconds: float, make: Callable[[], bytes], directory: str) -> None:
        super().__init__(seconds, make)
        self.path = Path(directory) / CACHE_FILE
        self.lock_path = Path(directory) / "ledger-metrics.lock"

    def _fresh(self) -> bytes | None:
        try:
            kept = self.path.read_bytes()
        except FileNotFoundError:
            return None
        stamp, _, body = kept.partition(b"\n")
        if time.monotonic() - float(stamp) >= self.seconds:
            return None
        return body

    def get(self) -> bytes:
        found = self._fresh()
        if found is not None:
            return found
        with self.lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            found = self._fresh()  # another worker made it while this one waited
            if found is not None:
                return found
            stamp = time.monotonic()
            body = self.make()
            temporary = self.path.with_name(f"{CACHE_FILE}.{os.getpid()}")
            temporary.write_bytes(repr(stamp).encode() + b"\n" + body)
            temporary.replace(self.path)
            return body


def process_exposition(registry: CollectorRegistry | None, directory: str | None) -> bytes:
    """The processes' own metrics: ``registry``'s, or every worker's files in
    ``directory`` added up."""
    if directory is None:
        assert registry is not None
        return generate_latest(registry)
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(merged)


def install(app: FastAPI, directory: str | None, cache_seconds: float) -> ProcessMetrics:
    """Add ``GET /metrics`` to ``app``; the process's metrics, kept as ``app.state.metrics``.

    ``directory``: the multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``), which must
    have been set in the environment before prometheus_client was imported."""
    if directory is not None and values.ValueClass is values.MutexValue:
        raise RuntimeError(
            "PROMETHEUS_MULTIPROC_DIR must be set before prometheus_client is imported"
        )
    # The same series with one process or several (multiprocess mode has no ``_created``).
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = None if directory is not None else CollectorRegistry()
    counted = ProcessMetrics(registry)
    app.state.metrics = counted

    def ledger() -> Ledger:
        service: Any = app.state.service
        found: Ledger = service.reader
        return found

    def make() -> bytes:
        return ledger_exposition(ledger())

    cache = (
        Cache(cache_seconds, make)
        if directory is None
        else SharedCache(cache_seconds, make, directory)
    )

    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics (no key).",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
    )
    def metrics() -> Response:
        """The process's counts (every worker's) and the ledger's state, in the Prometheus
        text format (docs/service.md, Metrics)."""
        body = process_exposition(registry, directory) + cache.get()
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return counted
