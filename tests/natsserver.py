"""The NATS server (with JetStream) the tests use, and a blocking client for them.

``POSLEDGER_TEST_NATS_URL`` (default ``nats://127.0.0.1:4222``) names a server on this
machine. A test asking for it when it does not answer is skipped with the reason, unless
``CI=true``, where a missing server fails the run (as for the databases:
tests/databases.py). Every test makes streams of its own (:meth:`Jet.fresh_stream`),
deleted afterwards.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager, suppress
from functools import cache
from typing import Any, TypeVar
from urllib.parse import urlparse

import pytest

T = TypeVar("T")

ENV = "POSLEDGER_TEST_NATS_URL"
DEFAULT = "nats://127.0.0.1:4222"


def nats_url() -> str:
    url = os.environ.get(ENV) or DEFAULT
    host = urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise RuntimeError(f"{ENV} must point at this machine (loopback), not {host}")
    return url


class Jet:
    """One NATS connection, run on an event loop of its own: :meth:`run` waits for a
    coroutine from any thread."""

    def __init__(self, url: str) -> None:
        import nats

        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        try:
            self.nc = self.run(
                nats.connect(
                    url, connect_timeout=3, max_reconnect_attempts=1, reconnect_time_wait=0.2
                )
            )
        except BaseException:
            self._stop()
            raise
        self.js = self.nc.jetstream()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def _stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()

    def close(self) -> None:
        self.run(self.nc.close())
        self._stop()

    def publish(self, subject: str, body: bytes) -> int:
        """Publish and wait for JetStream to store it; its stream sequence."""
        return self.run(self.js.publish(subject, body)).seq

    def consumer(self, stream: str, durable: str) -> Any:
        return self.run(self.js.consumer_info(stream, durable))

    def messages(self, stream: str) -> int:
        return int(self.run(self.js.stream_info(stream)).state.messages)

    @contextmanager
    def fresh_stream(self, create: bool = True) -> Iterator[tuple[str, str]]:
        """A stream name and a subject prefix no other test uses; the stream (made here
        when ``create``, taking ``PREFIX.>``) is deleted afterwards."""
        from nats.js.errors import NotFoundError

        token = uuid.uuid4().hex[:12]
        stream, prefix = f"T_{token}", f"t{token}"
        if create:
            self.run(self.js.add_stream(name=stream, subjects=[f"{prefix}.>"]))
        try:
            yield stream, prefix
        finally:
            with suppress(NotFoundError):
                self.run(self.js.delete_stream(stream))

    def read_all(self, stream: str, subject: str) -> list[Any]:
        """Every message the stream holds on ``subject``, in stream order."""
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        from tests.progress import wait_until

        total = self.run(self.js.stream_info(stream, subjects_filter=subject))
        count = (total.state.subjects or {}).get(subject, 0)
        config = ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL)
        sub = self.run(self.js.pull_subscribe(subject, stream=stream, config=config))
        found: list[Any] = []

        def more() -> bool:
            with suppress(TimeoutError):
                found.extend(self.run(sub.fetch(min(1000, count - len(found)), timeout=1)))
            return len(found) >= count

        if count:
            wait_until(more, lambda: len(found), f"reading {count} messages of {stream}")
        self.run(sub.unsubscribe())
        return found


@cache
def unavailable() -> str | None:
    """Why the NATS server cannot be used, or None when it answers with JetStream."""
    url = nats_url()
    try:
        jet = Jet(url)
    except Exception as exc:  # any client or network error: the server is not usable
        return f"NATS at {url} is unavailable: {exc!r}"
    try:
        jet.run(jet.js.account_info())
    except Exception as exc:
        return f"NATS at {url} answers without JetStream: {exc!r}"
    finally:
        jet.close()
    return None


def require() -> str:
    """The server's URL; skip (or, under CI=true, fail) the current test without it."""
    reason = unavailable()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    return nats_url()
