"""``posledger serve``: the HTTP API (docs/service.md)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import click

__all__ = ["metrics_directory", "register"]

MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def metrics_directory() -> Iterator[str]:
    """A fresh private directory (mode 0700) for the workers' metrics, named by
    ``$PROMETHEUS_MULTIPROC_DIR`` while it lasts (docs/service.md, Metrics); removed, and
    the variable put back as it was, on the way out. Enter it before prometheus_client is
    imported: that import reads the variable."""
    before = os.environ.get(MULTIPROC)
    directory = tempfile.mkdtemp(prefix="posledger-metrics-")
    os.environ[MULTIPROC] = directory
    try:
        yield directory
    finally:
        if before is None:
            os.environ.pop(MULTIPROC, None)
        else:
            os.environ[MULTIPROC] = before
        shutil.rmtree(directory, ignore_errors=True)


@click.command(short_help="Run the HTTP API (keys: posledger keys).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8400, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (PostgreSQL and MariaDB; one on SQLite).",
)
@click.option(
    "--max-body",
    default=16,
    show_default=True,
    type=click.IntRange(1, 1024),
    help="MiB a request body may hold.",
)
@click.option(
    "--rate",
    default=200.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Requests per second per key, on average.",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log a line per request (it costs about as much as applying a fill).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    workers: int,
    max_body: int,
    rate: float,
    access_log: bool,
) -> None:
    """Serve the ledger over HTTP: ingest, reads, commands and reconciliation under
    /v1, /healthz and /readyz, Prometheus metrics at /metrics, the OpenAPI description
    at /openapi.json. Every /v1
    request carries a key (`posledger keys create`). It listens on loopback unless
    --host says otherwise: put a TLS proxy in front of anything else (docs/service.md).

    \b
    Example:
      posledger keys create --admin --name ops
      posledger serve --port 8400
      curl -H "Authorization: Bearer $KEY" --data-binary @fills.jsonl \\
          http://127.0.0.1:8400/v1/ingest
    """
    with metrics_directory():
        _serve(ctx, host, port, workers, max_body, rate, access_log)


def _serve(
    ctx: click.Context,
    host: str,
    port: int,
    workers: int,
    max_body: int,
    rate: float,
    access_log: bool,
) -> None:
    try:
        import uvicorn

        from .http import app  # noqa: F401  (fails early without the service extra)
    except ImportError as exc:
        raise click.ClickException(
            f"the HTTP service needs its extra: pip install 'posledger[service]' ({exc})"
        ) from None
    from ..bootstrap import open_ledger
    from ..store.database import in_memory
    from . import cli as shell  # (cli imports this module)

    url = shell.database_url(ctx)
    if in_memory(url):
        raise click.UsageError("serve keeps nothing in an in-memory database: give --db")
    if workers > 1 and url.startswith("sqlite"):
        raise click.UsageError(
            "SQLite has one writer at a time: serve it with one worker (group commit "
            "batches the requests); several workers need PostgreSQL or MariaDB"
        )
    open_ledger(url, create=True, persistent=True).close()  # created and current, or why not
    os.environ["POSLEDGER_DB"] = url
    os.environ["POSLEDGER_SERVE_MAX_BODY"] = str(max_body * 2**20)
    os.environ["POSLEDGER_SERVE_RATE"] = str(rate)
    os.environ["POSLEDGER_SERVE_WORKERS"] = str(workers)
    uvicorn.run(
        "posledger.entrypoints.http.app:factory",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
        timeout_graceful_shutdown=10,
    )


def register(group: click.Group) -> None:
    group.add_command(serve)
