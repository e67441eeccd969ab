"""NATS JetStream in and out (docs/nats.md): :func:`consume` applies the JSONL lines of a
stream's messages, :func:`publish` relays the journal to a stream.

``consume`` fetches up to ``batch`` messages from a pull consumer, applies their lines in
one transaction (:meth:`Ledger.apply_lines`, the group commit of ``posledger serve``) and
acknowledges them only once it is durable. A crash between the commit and the
acknowledgements gets the messages delivered again, and their lines are duplicates then:
delivery at least once, each fill applied once.

``publish`` sends each journal entry after the last one the stream holds, in number order,
read through a :class:`~posledger.service.feed.Tail`. The stream is the cursor: at start the
last message on the subject names its entry (``Posledger-Seq``). Each message says which
message of the subject it follows (``Nats-Expected-Last-Subject-Sequence``), so nothing is
sent twice or out of order, even by two publishers at once.

The ledger lives in a thread of its own (:class:`DatabaseThread`); the event loop keeps the
NATS connection alive while a transaction runs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.js import api

from ..adapters.jsonl import Line, read_lines
from ..errors import DatabaseError
from ..service.feed import Tail, changes
from ..service.queries import journal_views

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

    from ..service.handlers import Outcome
    from ..service.ledger import Ledger

__all__ = [
    "CRASH_AT",
    "ConsumeSettings",
    "DatabaseThread",
    "GaveUp",
    "NatsUnavailable",
    "PublishSettings",
    "Published",
    "Tally",
    "consume",
    "covers",
    "publish",
]

T = TypeVar("T")

CRASH_AT = "POSLEDGER_NATS_CRASH"
"""``after-commit``: ``consume`` kills itself (SIGKILL) after its first commit, before it
acknowledges anything (the crash the tests make happen)."""
FETCH_WAIT = 1.0
"""Seconds a fetch waits for a first message (and a stop is noticed within)."""
MAX_LINES = 2000
"""Lines one transaction applies at most (a fetch with more is applied in several)."""
PROGRESS_SECONDS = 5.0
"""Seconds between two progress lines."""
RECONNECTS = 60
"""Attempts to reconnect to NATS (2 s apart) before giving up."""
HOLD_SECONDS = 0.05
"""How often ``publish`` looks again while a missing journal number holds it back."""
SEQ_HEADER = "Posledger-Seq"
KIND_HEADER = "Posledger-Kind"
WRONG_LAST_SEQUENCE = 10071
"""JetStream's error code: the subject's last message is not the one a publish expected."""
SHOWN_REJECTIONS = 20
"""Rejected lines ``consume`` names on stderr; ``posledger rejected`` lists them all."""


class NatsUnavailable(Exception):
    """NATS, JetStream or the stream cannot be used (exit status 5)."""


class GaveUp(Exception):
    """The database failed too many times in a row (exit status 3)."""


@dataclass
class Tally:
    """What ``consume`` did: messages and lines, and each line's outcome."""

    messages: int = 0
    lines: int = 0
    applied: int = 0
    duplicate: int = 0
    rejected: int = 0
    failures: int = 0
    """Times the database failed a transaction (it was tried again, or given up on)."""
    started: bool = False
    """Whether it got as far as reading the stream."""

    def count(self, outcome: Outcome) -> None:
        self.lines += 1
        if outcome.status == "applied":
            self.applied += 1
        elif outcome.status == "duplicate":
            self.duplicate += 1
        else:
            self.rejected += 1

    def view(self) -> dict[str, int]:
        return {
            "messages": self.messages,
            "lines": self.lines,
            "applied": self.applied,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "failures": self.failures,
        }

    def text(self) -> str:
        return (
            f"{self.messages:,} messages, {self.lines:,} lines: {self.applied:,} applied, "
            f"{self.duplicate:,} duplicate, {self.rejected:,} rejected"
        )


@dataclass(frozen=True)
class ConsumeSettings:
    servers: list[str]
    stream: str
    subject: str
    durable: str | None
    batch: int
    ack_wait: float
    max_failures: int
    create_stream: bool
    quiet: bool


@dataclass(frozen=True)
class PublishSettings:
    servers: list[str]
    stream: str
    subject: str
    poll: float
    once: bool
    after_seq: int
    max_failures: int
    create_stream: bool
    quiet: bool


@dataclass
class Published:
    """What ``publish`` did: the entries it sent (``first``..``last``, journal numbers)."""

    entries: int = 0
    first: int | None = None
    last: int | None = None
    cursor: int = 0
    """The last entry the stream held when it started."""
    started: bool = False
    """Whether it got as far as reading the journal."""

    def view(self) -> dict[str, int | None]:
        return {
            "published": self.entries,
            "first_seq": self.first,
            "last_seq": self.last,
            "started_after": self.cursor,
        }


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class DatabaseThread:
    """The ledger, opened, used and closed in one thread of its own: an SQLite connection
    is used by the thread that made it, and the event loop stays free meanwhile."""

    def __init__(self, open_ledger: Callable[[], Ledger]) -> None:
        self._open = open_ledger
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="posledger-db")
        self._ledger: Ledger | None = None

    @property
    def ledger(self) -> Ledger:
        assert self._ledger is not None, "the database thread has not started"
        return self._ledger

    def start(self) -> None:
        """Open the ledger (in its thread); raise what opening it raised."""
        self._ledger = self._pool.submit(self._open).result()

    async def run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    def close(self) -> None:
        """Close the ledger (writing the marks kept in memory) and stop the thread."""
        try:
            if self._ledger is not None:
                self._pool.submit(self._ledger.close).result()
        finally:
            self._pool.shutdown()


def database_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be used (not that a line is bad)."""
    from .cli import _DRIVERS

    return isinstance(exc, DatabaseError) or type(exc).__module__.partition(".")[0] in _DRIVERS


def backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` failures in a row: 1, 2, 4 ... at most 30."""
    return float(min(2 ** (failures - 1), 30))


class Stopper:
    """SIGINT and SIGTERM: the first asks the work to stop once what it does is done,
    a second stops the process at once (what was not acknowledged is delivered again)."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.signals = 0

    @property
    def stopping(self) -> bool:
        return self.event.is_set()

    def stop(self) -> None:
        self.signals += 1
        if self.signals > 1:
            say("stopped at once: what was not acknowledged will be delivered again")
            os._exit(130)
        self.event.set()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or less when asked to stop."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout=seconds)

    @contextmanager
    def installed(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)


class Progress:
    """A line on stderr every :data:`PROGRESS_SECONDS` (none when quiet)."""

    def __init__(self, quiet: bool, line: Callable[[], str]) -> None:
        self.quiet = quiet
        self.line = line
        self.last = time.monotonic()

    def tick(self) -> None:
        now = time.monotonic()
        if not self.quiet and now - self.last >= PROGRESS_SECONDS:
            self.last = now
            say(self.line())


# -- the connection and the stream ------------------------------------------------------


@dataclass
class Link:
    """How the connection stands: lost for good, or being closed by this process."""

    closed: asyncio.Event = field(default_factory=asyncio.Event)
    leaving: bool = False


async def connect(servers: list[str], name: str, link: Link) -> Client:
    """A connection to NATS that reconnects for about two minutes before it gives up
    (``link.closed`` is set then). A server that does not answer at once is refused."""
    where = ", ".join(servers)
    problems: list[BaseException] = []

    async def noted(exc: Exception) -> None:
        problems.append(exc)

    try:  # a quick first look: reconnecting for minutes would hide a wrong URL
        probe = await asyncio.wait_for(
            nats.connect(
                servers,
                name=name,
                connect_timeout=5,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.2,
                error_cb=noted,
            ),
            timeout=30,
        )
    except Exception as exc:
        why = problems[-1] if problems else exc
        raise NatsUnavailable(f"cannot reach NATS at {where}: {_said(why)}") from None
    await probe.close()

    async def on_error(exc: Exception) -> None:
        say(f"nats: {_said(exc)}")

    async def on_disconnect() -> None:
        if not link.leaving:
            say(f"nats: disconnected from {where}; reconnecting")

    async def on_reconnect() -> None:
        say(f"nats: reconnected to {where}")

    async def on_close() -> None:
        link.closed.set()

    return await nats.connect(
        servers,
        name=name,
        connect_timeout=5,
        max_reconnect_attempts=RECONNECTS,
        reconnect_time_wait=2,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        closed_cb=on_close,
    )


def _said(exc: BaseException) -> str:
    if isinstance(exc, nats.js.errors.APIError) and exc.description:
        return str(exc.description)
    text = str(exc).strip()
    return text or type(exc).__name__


async def stream_info(
    js: JetStreamContext, stream: str, subject: str, create: bool, command: str
) -> api.StreamInfo:
    """The stream; created (taking ``subject``) when missing and ``create``, else refused
    with what to do."""
    try:
        return await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        if not create:
            raise NatsUnavailable(
                f"no JetStream stream {stream}: create it with `posledger {command} ... "
                f"--create-stream` (it takes the subject {subject}), or with the nats "
                f"tool: nats stream add {stream} --subjects '{subject}' (docs/nats.md)"
            ) from None
    except (nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError) as exc:
        raise NatsUnavailable(
            f"JetStream does not answer ({_said(exc)}): start nats-server with -js"
        ) from None
    except TimeoutError:
        raise NatsUnavailable("JetStream did not answer in time") from None
    try:
        info = await js.add_stream(name=stream, subjects=[subject], storage=api.StorageType.FILE)
    except nats.js.errors.APIError as exc:
        raise NatsUnavailable(f"cannot create stream {stream}: {_said(exc)}") from None
    say(f"created JetStream stream {stream} (subjects: {subject})")
    return info


def covers(pattern: str, subject: str) -> bool:
    """Whether the subject pattern ``pattern`` (``*`` one token, ``>`` the rest) takes
    ``subject``, a subject without wildcards."""
    wanted, given = pattern.split("."), subject.split(".")
    for at, token in enumerate(wanted):
        if token == ">":
            return len(given) > at
        if at >= len(given) or (token != "*" and token != given[at]):
            return False
    return len(wanted) == len(given)


# -- consume ------------------------------------------------------------------------------


async def _subscription(
    js: JetStreamContext, s: ConsumeSettings
) -> JetStreamContext.PullSubscription:
    """A pull subscription: to the durable consumer ``s.durable`` (created when missing,
    refused when it is not one this command can share), or to a new ephemeral one."""
    config = api.ConsumerConfig(
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=s.ack_wait,
        max_deliver=-1,  # a message is never dropped after so many deliveries
        max_ack_pending=max(1000, 10 * s.batch),
        deliver_policy=api.DeliverPolicy.ALL,
        inactive_threshold=None if s.durable else 300.0,
    )
    if s.durable is not None:
        try:
            found = await js.consumer_info(s.stream, s.durable)
        except nats.js.errors.NotFoundError:
            found = None
        if found is not None:
            problem = _unlike(found.config, s.subject)
            if problem is not None:
                raise NatsUnavailable(
                    f"the durable consumer {s.durable} of stream {s.stream} {problem}: "
                    "name another --durable, or delete it (nats consumer rm "
                    f"{s.stream} {s.durable})"
                )
    try:
        return await js.pull_subscribe(s.subject, durable=s.durable, stream=s.stream, config=config)
    except nats.js.errors.APIError as exc:
        raise NatsUnavailable(
            f"stream {s.stream} refuses a consumer of {s.subject}: {_said(exc)}"
        ) from None


def _unlike(config: api.ConsumerConfig, subject: str) -> str | None:
    """Why an existing consumer is not one to share (None when it is)."""
    if config.deliver_subject:
        return "is a push consumer"
    if config.ack_policy != api.AckPolicy.EXPLICIT:
        return f"acknowledges {config.ack_policy}, not explicitly"
    if (config.filter_subject or "") != subject:
        return f"takes the subject {config.filter_subject or '(all)'!r}, not {subject!r}"
    if config.max_deliver not in (None, -1, 0):
        return f"drops a message after {config.max_deliver} deliveries"
    return None


def _groups(msgs: list[Msg]) -> list[list[Msg]]:
    """The fetched messages in runs of at most :data:`MAX_LINES` lines (a longer message
    alone), one transaction each."""
    groups: list[list[Msg]] = []
    lines = 0
    for msg in msgs:
        count = msg.data.count(b"\n") + 1
        if groups and lines + count <= MAX_LINES:
            groups[-1].append(msg)
            lines += count
        else:
            groups.append([msg])
            lines = count
    return groups


def _apply(
    ledger: Ledger, stream: str, bodies: list[tuple[int, bytes]]
) -> list[list[tuple[Line, Outcome]]]:
    """Apply the lines of messages (stream sequence, body) in one transaction; each
    message's lines with their outcomes, once durable."""
    batch: list[tuple[Line, str | None, str | None]] = []
    counts = []
    for sequence, body in bodies:
        source = f"nats {stream}/{sequence}"
        lines = list(read_lines(body.split(b"\n")))
        batch += [(line, source, None) for line in lines]
        counts.append(len(lines))
    outcomes = ledger.apply_lines(batch) if batch else []
    result: list[list[tuple[Line, Outcome]]] = []
    at = 0
    for count in counts:
        result.append([(batch[k][0], outcomes[k]) for k in range(at, at + count)])
        at += count
    return result


async def _keep_alive(waiting: list[Msg], every: float) -> None:
    """Tell JetStream, every ``every`` s, that the messages not yet acknowledged are being
    worked on (a long transaction does not get them delivered to another consumer)."""
    while True:
        await asyncio.sleep(every)
        for msg in list(waiting):
            try:
                await msg.in_progress()
            except Exception:  # a redelivery is harmless: a duplicate
                return


async def consume(db: DatabaseThread, s: ConsumeSettings, tally: Tally) -> None:
    """Apply the stream's messages until SIGINT or SIGTERM (then the batch under way is
    finished and acknowledged). Raises :class:`NatsUnavailable`, :class:`GaveUp`."""
    link = Link()
    who = f"durable {s.durable}" if s.durable else "ephemeral consumer"
    nc = await connect(s.servers, f"posledger consume {s.stream}", link)
    try:
        js = nc.jetstream()
        await stream_info(js, s.stream, s.subject, s.create_stream, "consume")
        sub = await _subscription(js, s)
        tally.started = True
        if not s.quiet:
            say(f"consuming {s.subject} from stream {s.stream} ({who}); Ctrl-C stops")
        await _Consumer(db, s, tally, nc, sub, link, who).run()
    except (nats.errors.Error, TimeoutError) as exc:
        raise NatsUnavailable(f"NATS: {_said(exc)}") from None
    finally:
        link.leaving = True
        await _quietly(nc.close())


class _Consumer:
    """The loop of :func:`consume`: fetch, apply, acknowledge."""

    def __init__(
        self,
        db: DatabaseThread,
        s: ConsumeSettings,
        tally: Tally,
        nc: Client,
        sub: JetStreamContext.PullSubscription,
        link: Link,
        who: str,
    ) -> None:
        self.db, self.s, self.tally, self.nc, self.sub, self.link = db, s, tally, nc, sub, link
        self.stopper = Stopper()
        self.progress = Progress(s.quiet, lambda: f"consume {s.stream} ({who}): {tally.text()}")
        self.shown = 0

    async def run(self) -> None:
        with self.stopper.installed():
            while not self.stopper.stopping:
                if self.link.closed.is_set():
                    raise NatsUnavailable("the connection to NATS was lost for good")
                self.progress.tick()
                try:
                    msgs = await self.sub.fetch(self.s.batch, timeout=FETCH_WAIT)
                except TimeoutError:
                    continue
                except nats.errors.ConnectionClosedError:
                    raise NatsUnavailable("the connection to NATS was closed") from None
                except nats.errors.Error as exc:  # a reconnect under way: try again
                    say(f"nats: fetch: {_said(exc)}")
                    await self.stopper.sleep(1.0)
                    continue
                await self._batch(msgs)
        if self.tally.rejected > self.shown:
            more = self.tally.rejected - self.shown
            say(f"... and {more:,} more rejected: posledger rejected lists them")

    async def _batch(self, msgs: list[Msg]) -> None:
        """Apply the fetched messages, a transaction per group, in order; acknowledge each
        group once it has committed. JetStream is told they are in progress meanwhile."""
        waiting = list(msgs)
        keeper = asyncio.create_task(_keep_alive(waiting, max(0.5, self.s.ack_wait / 3)))
        try:
            for group in _groups(msgs):
                bodies = [(m.metadata.sequence.stream, m.data) for m in group]
                done = await self._commit(bodies, waiting)
                if done is None:  # stopped while waiting to try again: hand them back
                    for msg in waiting:
                        await _quietly(msg.nak())
                    return
                if os.environ.get(CRASH_AT) == "after-commit":
                    os.kill(os.getpid(), signal.SIGKILL)
                for msg in group:
                    await _quietly(msg.ack())
                del waiting[: len(group)]
                self._count(bodies, done)
        finally:
            keeper.cancel()
            await _quietly(self.nc.flush(timeout=10))

    async def _commit(
        self, bodies: list[tuple[int, bytes]], waiting: list[Msg]
    ) -> list[list[tuple[Line, Outcome]]] | None:
        """Apply the messages' lines in one transaction; while the database fails, try
        again 1, 2, 4 ... s later, holding the messages (so the order of the stream is
        kept). None when asked to stop meanwhile; :class:`GaveUp` after
        ``max_failures`` failures in a row (the messages are then handed back)."""
        failures = 0
        while True:
            try:
                return await self.db.run(partial(_apply, self.db.ledger, self.s.stream, bodies))
            except Exception as exc:
                if not database_error(exc):
                    raise
                failures += 1
                self.tally.failures += 1
                if failures >= self.s.max_failures:
                    for msg in waiting:
                        await _quietly(msg.nak())
                    raise GaveUp(
                        f"the database failed {failures} times in a row, last: {exc}; "
                        "what was not acknowledged will be delivered again"
                    ) from None
                wait = backoff(failures)
                say(
                    f"database error ({failures} of {self.s.max_failures} in a row): {exc}; "
                    f"nothing acknowledged, trying again in {wait:.0f} s"
                )
                await self.stopper.sleep(wait)
                if self.stopper.stopping:
                    return None

    def _count(
        self, bodies: list[tuple[int, bytes]], done: list[list[tuple[Line, Outcome]]]
    ) -> None:
        self.tally.messages += len(bodies)
        for (sequence, _), outcomes in zip(bodies, done, strict=True):
            for line, outcome in outcomes:
                self.tally.count(outcome)
                if outcome.status == "rejected" and self.shown < SHOWN_REJECTIONS:
                    self.shown += 1
                    say(
                        f"nats {self.s.stream}/{sequence} line {line.number}: "
                        f"rejected: {outcome.reason}"
                    )


async def _quietly(work: Any) -> None:
    """Await ``work``; a NATS error is only said (an acknowledgement lost is a duplicate
    later, never a loss)."""
    try:
        await work
    except (nats.errors.Error, TimeoutError, OSError) as exc:
        say(f"nats: {_said(exc)}")


# -- publish ------------------------------------------------------------------------------


async def _cursor(js: JetStreamContext, stream: str, subject: str) -> tuple[int, int]:
    """The journal number of the subject's last message in the stream, and its stream
    sequence; (0, 0) when the subject has none."""
    try:
        last = await js.get_last_msg(stream, subject)
    except nats.js.errors.NotFoundError:
        return 0, 0
    text = (last.headers or {}).get(SEQ_HEADER)
    if text is None or not str(text).isdigit():
        raise NatsUnavailable(
            f"the last message on {subject} in stream {stream} is no journal entry "
            f"(no {SEQ_HEADER} header): publish the journal to a subject of its own"
        )
    return int(text), int(last.seq or 0)


def _page(tail: Tail) -> list[tuple[int, str, bytes]]:
    """The next journal entries as messages (number, kind, body): each entry as the live
    stream sends it (``posledger journal --json`` with ``changes``)."""
    rows = tail.read()
    pages = []
    for view in journal_views(rows):
        view["changes"] = changes(view, tail.reads.owner)
        pages.append((int(view["seq"]), str(view["kind"]), msgspec.json.encode(view)))
    return pages


async def publish(db: DatabaseThread, s: PublishSettings, report: Published) -> None:
    """Send the journal after the stream's last entry, until SIGINT or SIGTERM (or, with
    ``once``, until the journal's end). Raises :class:`NatsUnavailable`, :class:`GaveUp`."""
    link = Link()
    nc = await connect(s.servers, f"posledger publish {s.stream}", link)
    try:
        js = nc.jetstream()
        info = await stream_info(js, s.stream, s.subject, s.create_stream, "publish")
        subjects = info.config.subjects or []
        if not any(covers(pattern, s.subject) for pattern in subjects):
            raise NatsUnavailable(
                f"stream {s.stream} does not take the subject {s.subject} "
                f"(its subjects: {', '.join(subjects) or 'none'})"
            )
        publisher = _Publisher(db, s, report, js, link)
        await publisher.start()
        await publisher.run()
    except (nats.errors.Error, TimeoutError) as exc:
        raise NatsUnavailable(f"NATS: {_said(exc)}") from None
    finally:
        link.leaving = True
        await _quietly(nc.close())


class _Publisher:
    """The loop of :func:`publish`: read a page of the journal, send it, in order."""

    def __init__(
        self,
        db: DatabaseThread,
        s: PublishSettings,
        report: Published,
        js: JetStreamContext,
        link: Link,
    ) -> None:
        self.db, self.s, self.report, self.js, self.link = db, s, report, js, link
        self.where = f"{s.stream}/{s.subject}"
        self.stopper = Stopper()
        self.progress = Progress(
            s.quiet,
            lambda: f"publish {self.where}: {report.entries:,} entries, up to {report.last}",
        )
        self.failures = 0
        self.cursor = 0
        """The journal number of the subject's last message."""
        self.last = 0
        """Its stream sequence (0: the subject has none)."""
        self.tail: Tail | None = None
        """The journal after :attr:`cursor`; None: read the stream's end again first."""

    async def start(self) -> None:
        self.reads = await self.db.run(self.db.ledger.store.reads)
        await self._resync()
        self.report.cursor = self.cursor
        end = await self.db.run(self.reads.journal_end)
        if self.cursor > end:
            raise NatsUnavailable(
                f"stream {self.s.stream} holds journal entry {self.cursor} on "
                f"{self.s.subject}, but this journal ends at {end}: is it another ledger's "
                "stream?"
            )
        if not self.s.quiet:
            say(f"publishing the journal after entry {self.cursor} to {self.where}")
        self.report.started = True

    async def _resync(self) -> None:
        """Where the stream ends: its last entry on the subject (else ``after_seq``)."""
        self.cursor, self.last = await _cursor(self.js, self.s.stream, self.s.subject)
        if self.last == 0:
            self.cursor = self.s.after_seq
        self.tail = Tail(self.reads, self.cursor)

    async def _failed(self, what: str, exc: BaseException, database: bool) -> None:
        """Count a failure: stop after ``max_failures`` in a row, else wait 1, 2, 4 ... s
        and read the stream's end again."""
        self.failures += 1
        self.tail = None
        if self.failures >= self.s.max_failures:
            text = f"{what} failed {self.failures} times in a row, last: {_said(exc)}"
            raise GaveUp(text) if database else NatsUnavailable(text)
        say(f"{what} failed ({self.failures} of {self.s.max_failures} in a row): {_said(exc)}")
        await self.stopper.sleep(backoff(self.failures))

    async def run(self) -> None:
        with self.stopper.installed():
            while not self.stopper.stopping:
                if self.link.closed.is_set():
                    raise NatsUnavailable("the connection to NATS was lost for good")
                self.progress.tick()
                if self.tail is None:
                    try:
                        await self._resync()
                    except (nats.errors.Error, TimeoutError) as exc:
                        await self._failed(f"reading the end of {self.where}", exc, False)
                        continue
                tail = self.tail
                assert tail is not None
                try:
                    page = await self.db.run(partial(_page, tail))
                except Exception as exc:
                    if not database_error(exc):
                        raise
                    await self._failed("the database", exc, True)
                    continue
                await self._send(page)
                if self.tail is None or self.stopper.stopping or tail.more:
                    continue
                if self.s.once and not tail.holding:
                    break
                await self.stopper.sleep(HOLD_SECONDS if tail.holding else self.s.poll)

    async def _send(self, page: list[tuple[int, str, bytes]]) -> None:
        """Publish the entries in order, each after the last; on a refusal or an error,
        :attr:`tail` becomes None (the stream's end is read again)."""
        for seq, kind, body in page:
            headers = {
                "Nats-Msg-Id": f"{self.s.subject}:{seq}",
                SEQ_HEADER: str(seq),
                KIND_HEADER: kind,
                "Nats-Expected-Last-Subject-Sequence": str(self.last),
            }
            try:
                ack = await self.js.publish(
                    self.s.subject, body, headers=headers, stream=self.s.stream
                )
            except nats.js.errors.APIError as exc:
                if exc.err_code != WRONG_LAST_SEQUENCE:
                    raise NatsUnavailable(
                        f"stream {self.s.stream} refused journal entry {seq}: {_said(exc)}"
                    ) from None
                say(f"{self.where} has a message this process did not send: reading it")
                self.tail = None
                return
            except (nats.errors.Error, TimeoutError) as exc:
                await self._failed(f"publishing to {self.where}", exc, False)
                return
            self.failures = 0
            self.cursor, self.last = seq, ack.seq
            report = self.report
            report.entries += 1
            report.first = seq if report.first is None else report.first
            report.last = seq
            if self.stopper.stopping:
                return
