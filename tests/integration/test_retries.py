"""Retries that cannot apply anything twice: a commit whose reply is lost, run names taken
by runs that commit at the same moment.

The lost reply is made by a loopback TCP proxy between posledger and the server: it passes
everything through until it sees the client send ``COMMIT``, lets the server commit, and
then closes the connection instead of passing the server's reply on. posledger sees a lost
connection; the transaction's idempotency key must tell it that the commit happened.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from decimal import Decimal

import pytest
from sqlalchemy.engine import make_url

from posledger import Ledger, UsageError, open_ledger

from .helpers import T, fill, kind_of, rows, setup

# What a client sends to commit: a simple Query message on PostgreSQL, COM_QUERY on MariaDB.
COMMIT = {"postgresql": b"COMMIT\x00", "mariadb": b"\x03COMMIT"}


class LosingProxy:
    """A loopback TCP proxy that, once armed, drops the server's reply to the first COMMIT
    of a transaction that inserted something (read-only transactions commit too)."""

    def __init__(self, host: str, port: int, marker: bytes) -> None:
        self.target = (host, port)
        self.marker = marker
        self.armed = threading.Event()
        self.dropped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            committing, wrote = threading.Event(), threading.Event()
            threading.Thread(
                target=self._pump, args=(client, server, committing, wrote, True), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(server, client, committing, wrote, False), daemon=True
            ).start()

    def _pump(
        self,
        source: socket.socket,
        sink: socket.socket,
        committing: threading.Event,
        wrote: threading.Event,
        up: bool,
    ) -> None:
        try:
            while data := source.recv(65536):
                if up and b"INSERT" in data:
                    wrote.set()
                if up and self.marker in data:
                    if self.armed.is_set() and wrote.is_set():
                        committing.set()
                    wrote.clear()
                elif not up and committing.is_set():
                    # The server has answered the COMMIT: it committed. The reply is lost.
                    self.armed.clear()
                    self.dropped.set()
                    break
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self._closing = True
        self.listener.close()


@contextmanager
def through_proxy(db_url: str) -> Iterator[tuple[Ledger, LosingProxy]]:
    url = make_url(db_url)
    proxy = LosingProxy(url.host or "127.0.0.1", url.port or 0, COMMIT[kind_of(db_url)])
    try:
        with open_ledger(url.set(port=proxy.port).render_as_string(hide_password=False)) as led:
            yield led, proxy
    finally:
        proxy.close()


def servers_only(db_url: str) -> None:
    if kind_of(db_url) not in COMMIT:
        pytest.skip("a commit's reply is lost only on a network connection (servers)")


def test_a_transfer_without_an_id_is_not_applied_twice_when_the_commit_reply_is_lost(
    ledger: Ledger, db_url: str
) -> None:
    servers_only(db_url)
    setup(ledger)
    assert fill(ledger, "t1", "BUY", "2", "100").applied
    with through_proxy(db_url) as (proxied, proxy):
        proxy.armed.set()
        # The README's example: no transfer_id, so nothing but the transaction's
        # idempotency key can tell the retry that the first attempt committed.
        outcome = proxied.transfer(
            account="ACC",
            instrument="FUT",
            from_strategy="alpha",
            to_strategy="beta",
            quantity="0.5",
            ts=f"{T}11:00:00Z",
        )
        assert proxy.dropped.is_set(), "the proxy never dropped a COMMIT reply"
    assert outcome.applied and outcome.seq is not None
    assert rows(db_url, "SELECT seq, quantity FROM transfers") == [(outcome.seq, Decimal("0.5"))]
    held = {p["strategy"]: p["signed_quantity"] for p in ledger.positions()}
    assert held == {"alpha": "1.5", "beta": "0.5"}
    assert ledger.verify().ok


def test_a_mark_without_a_time_is_not_applied_twice_when_the_commit_reply_is_lost(
    ledger: Ledger, db_url: str
) -> None:
    servers_only(db_url)
    setup(ledger)
    assert fill(ledger, "m1", "BUY", "1", "100").applied
    with through_proxy(db_url) as (proxied, proxy):
        proxy.armed.set()
        outcome = proxied.apply_mark(instrument="FUT", price="101")
        assert proxy.dropped.is_set()
    assert outcome.applied
    marks = rows(db_url, "SELECT seq FROM journal WHERE kind = 'mark'")
    assert marks == [(outcome.seq,)]


def test_a_reconcile_run_is_not_applied_twice_when_the_commit_reply_is_lost(
    ledger: Ledger, db_url: str
) -> None:
    servers_only(db_url)
    setup(ledger)
    assert fill(ledger, "r1", "BUY", "1", "100").applied
    snapshot = ['{"type":"broker_position","account":"ACC","instrument":"FUT","quantity":"3"}']
    with through_proxy(db_url) as (proxied, proxy):
        proxy.armed.set()
        report = proxied.reconcile(snapshot, policy="adopt", run="eod")
        assert proxy.dropped.is_set()
    assert [check["kind"] for check in report.checks] == ["missing_fills"]
    assert rows(db_url, "SELECT count(*) FROM reconciliation_checks") == [(1,)]
    assert rows(db_url, "SELECT quantity FROM adjustments") == [(Decimal("2"),)]
    external = [p for p in ledger.positions() if p["strategy"] == "EXTERNAL"]
    assert [p["signed_quantity"] for p in external] == ["2"]
    assert ledger.verify().ok


def test_concurrent_runs_with_one_name_commit_once(ledger: Ledger, db_url: str) -> None:
    """Four runs named alike, started at the same moment from four connections: one
    commits, the others are told the name is taken, and nothing is compared twice."""
    setup(ledger)
    assert fill(ledger, "c1", "BUY", "1", "100").applied
    snapshot = ['{"type":"broker_position","account":"ACC","instrument":"FUT","quantity":"1"}']
    start = threading.Barrier(4)
    results: list[object] = []

    def run() -> None:
        with open_ledger(db_url) as mine:
            start.wait()
            try:
                results.append(mine.reconcile(snapshot, run="eod-0302"))
            except UsageError as exc:
                results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refused = [r for r in results if isinstance(r, UsageError)]
    assert len(results) == 4 and len(refused) == 3, results
    assert all("eod-0302 was already recorded" in str(r) for r in refused)
    assert [c["run"] for c in ledger.reconciliations(last=5)] == ["eod-0302"]
    assert ledger.verify().ok
