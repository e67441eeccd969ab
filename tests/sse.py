"""A client of the live stream (docs/service.md, Live stream) for the tests: a thread that
reads server-sent events from ``GET /v1/stream`` until it has what it was told to wait
for, then drops the connection, as a client that goes away does.

The test's own thread waits for it with ``tests.progress.wait_until``: its progress is
the ids and events it has read (heartbeats are none), so a stream that brings nothing
new for the stall limit fails the test.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx

from tests.progress import wait_until


class Block(dict[str, str]):
    """One block of the stream: its fields (``id``, ``event``, ``data``, ``retry``, and
    ``comment`` for a line that starts with a colon)."""

    @property
    def seq(self) -> int | None:
        return int(self["id"]) if "id" in self else None

    @property
    def data(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self["data"])
        return found


class Reader(threading.Thread):
    """Reads ``base``/v1/stream until a block carries an id at or past :attr:`want` (set
    it when known), or the server ends the stream; then closes the connection."""

    def __init__(
        self,
        base: str,
        key: str | None,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        want: int | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.params = params or {}
        self.headers = dict(headers or {})
        if key is not None:
            self.headers["Authorization"] = f"Bearer {key}"
        self.want = want
        self.blocks: list[Block] = []
        self.status: int | None = None
        self.refusal: dict[str, Any] | None = None
        self.content_type: str | None = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()

    def run(self) -> None:
        try:
            with (
                httpx.Client(base_url=self.base, timeout=None) as client,
                client.stream("GET", "/v1/stream", params=self.params, headers=self.headers) as r,
            ):
                self.status = r.status_code
                self.content_type = r.headers.get("content-type")
                if r.status_code != 200:
                    r.read()
                    self.refusal = r.json()
                    return
                fields: dict[str, str] = {}
                for line in r.iter_lines():
                    if line:
                        name, _, value = line.partition(":")
                        name = name or "comment"
                        fields[name] = value[1:] if value.startswith(" ") else value
                        continue
                    block = Block(fields)
                    fields = {}
                    with self._lock:
                        self.blocks.append(block)
                    last = self.last_id
                    if self.want is not None and last is not None and last >= self.want:
                        return
        except BaseException as exc:  # reported by the test's thread
            self.error = exc

    def snapshot(self) -> list[Block]:
        with self._lock:
            return list(self.blocks)

    @property
    def events(self) -> list[Block]:
        """The blocks that are events (not a comment, not an id alone)."""
        return [b for b in self.snapshot() if "event" in b]

    @property
    def last_id(self) -> int | None:
        ids = [b.seq for b in self.snapshot() if b.seq is not None]
        return ids[-1] if ids else None

    def progress(self) -> tuple[int | None, int]:
        """The last id read and how many events: heartbeats are no progress."""
        return self.last_id, len(self.events)

    def finish(self, what: str) -> None:
        """Wait until the thread has ended, as long as events keep coming."""
        wait_until(lambda: not self.is_alive(), self.progress, what)
        if self.error is not None:
            raise self.error

    def wait_for(self, done: Any, what: str) -> None:
        """Wait until ``done(self)``, as long as events keep coming."""
        wait_until(lambda: self.error is not None or done(self), self.progress, what)
        if self.error is not None:
            raise self.error
