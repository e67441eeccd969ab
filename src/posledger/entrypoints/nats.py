"""``posledger consume`` and ``posledger publish``: NATS JetStream in and out
(docs/nats.md). The work is in :mod:`.jetstream`, imported when a command runs (it needs
the nats extra)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from . import cli as shell

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["EXIT_NATS", "register"]

EXIT_NATS = 5
"""NATS, JetStream or the stream cannot be used."""

_FORBIDDEN = set(" \t\r\n.*>/\\")


def _jetstream() -> ModuleType:
    """:mod:`.jetstream`, or a clear error without nats-py."""
    try:
        import nats  # noqa: F401

        from . import jetstream
    except ImportError as exc:
        raise click.ClickException(
            f"consume and publish need the nats extra: pip install 'posledger[nats]' ({exc})"
        ) from None
    return jetstream


def _servers(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    servers = [part.strip() for part in value.split(",") if part.strip()]
    for server in servers:
        scheme = server.partition("://")[0] if "://" in server else ""
        if scheme not in ("nats", "tls", "ws", "wss"):
            raise click.BadParameter(
                f"{server!r} is no NATS URL: write it as nats://HOST:PORT", ctx, param
            )
    if not servers:
        raise click.BadParameter("name a NATS server: nats://HOST:PORT", ctx, param)
    return servers


def _name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A stream or consumer name: no spaces, dots, wildcards or slashes."""
    if value is None:
        return None
    if not value or _FORBIDDEN & set(value) or not value.isprintable():
        raise click.BadParameter(
            f"{value!r} cannot name a stream or consumer: no spaces, '.', '*', '>', '/' or '\\'",
            ctx,
            param,
        )
    return value


def _subject(ctx: click.Context, param: click.Parameter, value: str) -> str:
    tokens = value.split(".")
    if not value or any(not t or any(c.isspace() for c in t) for t in tokens):
        raise click.BadParameter(f"{value!r} is no NATS subject (e.g. fills.>)", ctx, param)
    wild = any((t != ">" and ">" in t) or (t != "*" and "*" in t) for t in tokens)
    if wild or ">" in tokens[:-1]:
        raise click.BadParameter(f"{value!r}: '>' ends a subject, '*' is a token", ctx, param)
    return value


def _run(ctx: click.Context, work: Callable[[Any], Any], open_ledger: Callable[[], Any]) -> None:
    """Run ``work(db)`` with the ledger in its own thread; NATS and database problems
    become exit statuses 5 and 3."""
    js = _jetstream()
    db = js.DatabaseThread(open_ledger)
    try:
        db.start()
        asyncio.run(work(db))
    except js.NatsUnavailable as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(EXIT_NATS)
    except js.GaveUp as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(shell.EXIT_DATABASE)
    finally:
        db.close()


def _opened(ctx: click.Context, *, create: bool) -> Callable[[], Any]:
    from ..bootstrap import open_ledger
    from ..store.database import in_memory

    url = shell.database_url(ctx)
    if in_memory(url):
        raise click.UsageError("an in-memory database keeps nothing: give --db")
    return lambda: open_ledger(url, create=create, persistent=True)


@click.command(short_help="Apply fills from a NATS JetStream stream.")
@click.argument("server", metavar="URL", callback=_servers)
@click.option("--stream", required=True, callback=_name, help="The JetStream stream.")
@click.option(
    "--subject", required=True, callback=_subject, help="The subject to read (e.g. 'fills.>')."
)
@click.option(
    "--durable",
    metavar="NAME",
    callback=_name,
    help="A durable consumer: it remembers what was acknowledged, and several processes "
    "naming it share the messages. Without it, each run reads the stream from its start.",
)
@click.option(
    "--batch",
    default=100,
    show_default=True,
    type=click.IntRange(1, 10_000),
    metavar="N",
    help="Messages fetched and applied in one transaction (at most 2,000 lines each).",
)
@click.option(
    "--ack-wait",
    default=30.0,
    show_default=True,
    type=click.FloatRange(1, 3600),
    metavar="SECONDS",
    help="How long JetStream waits for an acknowledgement before it delivers a message "
    "again (set when the consumer is created).",
)
@click.option(
    "--max-failures",
    default=5,
    show_default=True,
    type=click.IntRange(min=1),
    metavar="N",
    help="Database failures in a row (tried again 1, 2, 4 ... s apart) before it stops "
    "with exit status 3.",
)
@click.option("--create-stream", is_flag=True, help="Create the stream if it is missing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", is_flag=True, help="No progress output on stderr.")
@click.pass_context
def consume(
    ctx: click.Context,
    server: list[str],
    stream: str,
    subject: str,
    durable: str | None,
    batch: int,
    ack_wait: float,
    max_failures: int,
    create_stream: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Apply the JSONL lines of a JetStream stream's messages, as `ingest` does a file:
    each message holds one or more lines (docs/format.md). Up to --batch messages are
    applied in one transaction and acknowledged once it has committed, so a message is
    delivered again until its lines are durable, and a fill sent twice is a duplicate:
    each is applied once. Rejected lines are kept (`posledger rejected`, source `nats
    STREAM/SEQ`) and their message acknowledged. A database error acknowledges nothing:
    the batch is tried again, 1, 2, 4 ... s later, in stream order; after --max-failures
    in a row it exits 3 and the messages are delivered again. NATS unreachable or no such
    stream: exit 5.

    Several processes may share one --durable on PostgreSQL or MariaDB (they apply
    batches side by side: the order between batches is not kept); on SQLite run one. It
    runs until SIGINT or SIGTERM, which let the batch under way commit and be
    acknowledged, then exits 0. Counts go to stderr every 5 s (docs/nats.md).

    \b
    Example:
      posledger --db postgresql+psycopg://ledger@127.0.0.1/ledger consume \\
          nats://127.0.0.1:4222 --stream FILLS --subject 'fills.>' \\
          --durable ledger --create-stream
    """
    js = _jetstream()
    settings = js.ConsumeSettings(
        servers=server,
        stream=stream,
        subject=subject,
        durable=durable,
        batch=batch,
        ack_wait=ack_wait,
        max_failures=max_failures,
        create_stream=create_stream,
        quiet=quiet,
    )
    tally = js.Tally()
    opened = _opened(ctx, create=True)
    try:
        _run(ctx, lambda db: js.consume(db, settings, tally), opened)
    finally:
        if tally.started:  # else nothing to sum up: the error says why
            summary = {"stream": stream, "subject": subject, "durable": durable, **tally.view()}
            if as_json:
                click.echo(json.dumps(summary, indent=2))
            else:
                click.echo(f"nats {stream}: {tally.text()}")


@click.command(short_help="Send the journal to a NATS JetStream stream.")
@click.argument("server", metavar="URL", callback=_servers)
@click.option("--stream", required=True, callback=_name, help="The JetStream stream.")
@click.option(
    "--subject",
    required=True,
    callback=_subject,
    help="The subject to publish on: one of its own (no wildcard).",
)
@click.option(
    "--poll",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0.01, 3600),
    metavar="SECONDS",
    help="How often to look for new journal entries.",
)
@click.option("--once", is_flag=True, help="Publish what the journal holds, then exit.")
@click.option(
    "--after-seq",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    metavar="SEQ",
    help="Where to start when the stream holds no entry yet (later: after its last one).",
)
@click.option(
    "--max-failures",
    default=5,
    show_default=True,
    type=click.IntRange(min=1),
    metavar="N",
    help="Failures in a row (database or NATS) before it stops.",
)
@click.option("--create-stream", is_flag=True, help="Create the stream if it is missing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", is_flag=True, help="No progress output on stderr.")
@click.pass_context
def publish(
    ctx: click.Context,
    server: list[str],
    stream: str,
    subject: str,
    poll: float,
    once: bool,
    after_seq: int,
    max_failures: int,
    create_stream: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Relay the journal to a JetStream stream: each entry once, in journal order, as
    `posledger journal --json` and the live stream show it (with `changes`). Other
    systems read the ledger's facts from the stream instead of writing them to a second
    database of their own (docs/nats.md).

    The stream is the cursor: it starts after the entry of the subject's last message
    (header Posledger-Seq) and so resumes where it stopped, however it stopped. Each
    message carries Nats-Msg-Id SUBJECT:SEQ and says which message it follows, so a
    second run or a second publisher never sends an entry twice. It follows the journal
    every --poll seconds until SIGINT or SIGTERM; --once stops at its end. NATS
    unreachable, no such stream, a stream of another ledger: exit 5.

    \b
    Example:
      posledger --db sqlite:///desk.db publish nats://127.0.0.1:4222 \\
          --stream JOURNAL --subject journal --create-stream
    """
    if any(c in subject for c in "*>"):
        raise click.BadParameter(
            f"{subject!r}: publish to a subject without wildcards", ctx, param_hint="--subject"
        )
    js = _jetstream()
    settings = js.PublishSettings(
        servers=server,
        stream=stream,
        subject=subject,
        poll=poll,
        once=once,
        after_seq=after_seq,
        max_failures=max_failures,
        create_stream=create_stream,
        quiet=quiet,
    )
    report = js.Published()
    opened = _opened(ctx, create=False)
    try:
        _run(ctx, lambda db: js.publish(db, settings, report), opened)
    finally:
        if report.started:  # else nothing to sum up: the error says why
            summary = {"stream": stream, "subject": subject, **report.view()}
            if as_json:
                click.echo(json.dumps(summary, indent=2))
            else:
                span = "" if report.first is None else f" (seq {report.first}..{report.last})"
                click.echo(f"published {report.entries:,} journal entries{span} to {stream}")


def register(group: click.Group) -> None:
    group.add_command(consume)
    group.add_command(publish)
