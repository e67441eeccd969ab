"""Group commit: one writer per process (docs/service.md, Group commit).

Requests hand their parsed lines to the writer and wait. The writer thread takes every
request waiting, up to :data:`MAX_LINES` lines, and applies them in one transaction (one
fsync); then it answers each request with its own outcomes. So a request is answered only
once its inputs are durable, one client sees one transaction per request, and many
clients share transactions.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ...adapters.jsonl import Line
from ...service.handlers import Outcome
from ...service.ledger import Ledger

__all__ = ["MAX_LINES", "Batch", "GroupWriter", "outcome_view"]

MAX_LINES = 2000
"""The most lines one transaction applies (a request with more gets one of its own)."""

Batch = list[tuple[Line, str | None, str | None]]
"""Lines, each with its source and the key that sent it."""
T = TypeVar("T")


@dataclass
class _Job:
    lines: Batch
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    call: Callable[[Ledger], Any] | None = None
    """Work that runs alone on the writer's ledger, instead of lines."""
    key: str | None = None
    """The key the work is done for (its journal entries record it)."""
    strategy: str | None = None
    """The strategy ``key`` acts for, if it is a strategy key: its lines are checked again
    inside the transaction (:meth:`Ledger.apply_lines`)."""

    def answer(self, result: Any, error: BaseException | None) -> None:
        def deliver() -> None:
            if self.future.done():  # the client went away: nothing to tell
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        self.loop.call_soon_threadsafe(deliver)


class GroupWriter:
    """The process's one writer: a thread that owns a :class:`Ledger`."""

    def __init__(
        self,
        open_ledger: Callable[[], Ledger],
        *,
        max_lines: int = MAX_LINES,
        on_batch: Callable[[int, int, float], None] | None = None,
    ) -> None:
        self._open = open_ledger
        self._max = max_lines
        self._on_batch = on_batch
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="posledger-writer", daemon=True)
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._listeners: tuple[Callable[[], None], ...] = ()

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` in the writer's thread after each transaction (and each call
        run alone): the live stream reads the journal then (:mod:`.stream`). It must be
        quick, safe to call from another thread than its own, and never raise."""
        self._listeners = (*self._listeners, listener)

    def _committed(self) -> None:
        for listener in self._listeners:
            listener()

    def start(self) -> None:
        """Start the writer; raise what opening its ledger raised."""
        self._thread.start()
        self._ready.wait()
        if self._failed is not None:
            raise self._failed

    async def apply(
        self, lines: Batch, key: str | None = None, strategy: str | None = None
    ) -> list[Outcome]:
        """Apply ``lines`` (with the requests' others); their outcomes once durable.
        ``strategy``: the one ``key`` acts for, when it is a strategy key."""
        if not lines:
            return []
        if not self._thread.is_alive():
            raise RuntimeError("the writer has stopped")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Outcome]] = loop.create_future()
        self._jobs.put(_Job(lines, future, loop, key=key, strategy=strategy))
        return await future

    async def call(self, work: Callable[[Ledger], T], key: str | None = None) -> T:
        """Run ``work`` on the writer's ledger, alone, between two group commits (what
        writes but is no line: a claim, an ack, a reconciliation, a pre-trade check)."""
        if not self._thread.is_alive():
            raise RuntimeError("the writer has stopped")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job([], future, loop, work, key))
        return await future

    def close(self) -> None:
        """Apply what is waiting, write the marks kept in memory, and stop."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()

    def _run(self) -> None:
        try:
            ledger = self._open()
        except BaseException as exc:
            self._failed = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            stopping = False
            while not stopping:
                job = self._jobs.get()
                if job is None:
                    break
                if job.call is not None:
                    self._call(ledger, job)
                    self._committed()
                    continue
                batch, count, alone = [job], len(job.lines), None
                while count < self._max:
                    try:
                        more = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stopping = True
                        break
                    if more.call is not None:
                        alone = more
                        break
                    batch.append(more)
                    count += len(more.lines)
                self._apply(ledger, batch, count)
                self._committed()
                if alone is not None:
                    self._call(ledger, alone)
                    self._committed()
        finally:
            ledger.close()

    @staticmethod
    def _call(ledger: Ledger, job: _Job) -> None:
        assert job.call is not None
        try:
            with ledger.acting_for(job.key):
                result = job.call(ledger)
        except Exception as exc:
            job.answer(None, exc)
            return
        job.answer(result, None)

    def _apply(self, ledger: Ledger, batch: list[_Job], count: int) -> None:
        started = time.perf_counter()
        try:
            scoped = {job.key: job.strategy for job in batch if job.key and job.strategy}
            lines = [line for job in batch for line in job.lines]
            outcomes = ledger.apply_lines(lines, scoped)
        except Exception as exc:
            for job in batch:
                job.answer(None, exc)
            return
        at = 0
        for job in batch:
            job.answer(outcomes[at : at + len(job.lines)], None)
            at += len(job.lines)
        if self._on_batch is not None:
            self._on_batch(len(batch), count, time.perf_counter() - started)


def outcome_view(number: int, outcome: Outcome) -> dict[str, Any]:
    """An outcome as the API returns it (docs/service.md, Ingest)."""
    return {
        "line": number,
        "status": outcome.status,
        "kind": outcome.kind,
        "key": outcome.key,
        "reason": outcome.reason,
        "seq": outcome.seq,
    }
