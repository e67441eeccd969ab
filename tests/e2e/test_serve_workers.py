"""``posledger serve --workers 2`` on PostgreSQL and MariaDB (docs/service.md): a real
server, its two worker processes each with its own group-commit writer, on one database.

* **A crash.** Clients on both workers send one fill per request; the whole server (the
  uvicorn parent and both workers) is SIGKILLed in the middle, started again, and every
  fill sent is sent again: every acknowledged fill is in the journal once, applied by the
  request that was answered (a resend of it is ``duplicate``), none is there twice, and
  the positions are what the fills add up to. The dead server's metric files show that
  each worker applied fills, and that the counts they hold lie between what the clients
  were told and what the journal holds.
* **The live stream.** Two clients, one on each worker, follow ``/v1/stream`` from the
  start while fills are written through both workers at once (on these databases a lower
  journal number can commit after a higher one, and half the entries come from the other
  process): each gets every journal entry exactly once, in order, as ``/v1/journal``
  gives it; back with its last id, each gets only what was written since.
* **Metrics.** After a scripted session through both workers (fills, resends, refused
  lines), ``/metrics`` answered by each worker in turn is the same every time, its input
  counts the ones worked out by hand (and the sum of the outcomes the clients were given).

Which worker serves a connection is steered, not left to the kernel: while a client
connects, the other worker is stopped (SIGSTOP, then SIGCONT), and the worker holding the
connection is checked through ``/proc`` (the server's end of the socket). Every wait is
for a condition, bounded by a stall limit (``tests/progress.py``); nothing is timed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.databases import SERVERS, fresh_database
from tests.progress import run_to_end, wait_until
from tests.sse import Reader

from .scenario import SCRIPT, clean_env
from .test_serve import SETUP as SERVE_SETUP

WORKERS = 2
CLIENTS = 6
"""Client threads: clients ``n`` and ``n + 1`` are on different workers."""
KILL_AFTER = 150
"""Acknowledged fills before the server is killed."""
STREAM_FILLS = 50
"""Fills each of the stream test's clients sends."""
METRICS_REQUESTS = 40
"""Requests each of the metrics test's clients sends."""
SETUP = [*SERVE_SETUP, {**SERVE_SETUP[1], "instrument": "FUT2"}]
"""test_serve.py's accounts, instrument and strategies, and a second instrument (another
journal stream: its writers do not wait for those of the first)."""
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(params=SERVERS)
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database on the server (skipped without it; a failure under CI=true)."""
    with fresh_database(request.param) as url:
        yield url


def _cli(db: str, *args: str) -> str:
    done = run_to_end([str(SCRIPT), "--db", db, *args], env=clean_env())
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _state(pid: int) -> str | None:
    """A process's state letter (``Z`` for a zombie), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0].decode()
    except (OSError, IndexError):
        return None


def _workers(parent: int) -> list[int]:
    """uvicorn's worker processes under ``parent`` (multiprocessing children; not its
    resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[2])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"spawn_main" in command and _state(int(entry.name)) != "Z":
            found.append(int(entry.name))
    return sorted(found)


def _socket_inode(local_port: int, remote_port: int) -> int:
    """The inode of the loopback TCP socket from ``local_port`` to ``remote_port``."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
            established = fields[3] == "01"  # not an earlier one's TIME_WAIT (no inode)
            if established and (int(local, 16), int(remote, 16)) == (local_port, remote_port):
                return int(fields[9])
    raise AssertionError(f"no connection from port {local_port} to {remote_port}")


class Workers:
    """``posledger serve --workers 2`` in a session of its own (a process group: SIGKILL
    reaches the workers too), its temporary directory (where it makes its metrics
    directory) and its log in ``home``."""

    def __init__(self, db: str, home: Path, rate: str = "1000000") -> None:
        home.mkdir()
        self.home = home
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = home / "server.log"
        self._log: IO[str] = self.log.open("a")
        argv = [str(SCRIPT), "--db", db, "serve", "--workers", str(WORKERS)]
        argv += ["--port", str(self.port), "--rate", rate]
        self.proc = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=clean_env(TMPDIR=str(home)),
            start_new_session=True,
        )
        self.workers: list[int] = []

    def _tail(self) -> str:
        return self.log.read_text()[-3000:]

    def _started(self) -> bool:
        assert self.proc.poll() is None, self._tail()
        if self.log.read_text().count("Application startup complete.") < WORKERS:
            return False
        self.workers = _workers(self.proc.pid)
        assert len(self.workers) <= WORKERS, (self.workers, self._tail())
        return len(self.workers) == WORKERS

    def wait_ready(self) -> None:
        """Until both workers have started; then each answers ``/readyz`` itself."""
        wait_until(self._started, lambda: self.log.stat().st_size, "the workers to start")
        for worker in self.workers:
            self.connect(worker).close()

    @contextmanager
    def only(self, worker: int) -> Iterator[None]:
        """The other workers stopped (SIGSTOP) meanwhile: ``worker`` alone accepts."""
        others = [w for w in self.workers if w != worker]
        for other in others:
            os.kill(other, signal.SIGSTOP)
        try:
            yield
        finally:
            for other in others:
                os.kill(other, signal.SIGCONT)

    def holder(self, answer: httpx.Response) -> int:
        """The worker that holds the connection ``answer`` came on."""
        _, port = answer.extensions["network_stream"].get_extra_info("client_addr")
        inode = _socket_inode(self.port, port)
        for worker in self.workers:
            for fd in Path(f"/proc/{worker}/fd").iterdir():
                try:
                    if os.readlink(fd) == f"socket:[{inode}]":
                        return worker
                except OSError:
                    continue
        raise AssertionError(f"no worker holds the connection from port {port}")

    def connect(self, worker: int, key: str | None = None) -> httpx.Client:
        """A keep-alive connection to ``worker``, with ``key``."""
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        client = httpx.Client(base_url=self.base, headers=headers, timeout=120)
        with self.only(worker):
            answer = client.get("/readyz")
        assert answer.status_code == 200, answer.text
        assert self.holder(answer) == worker
        return client

    def request(
        self, worker: int, method: str, path: str, key: str | None = None, **kw: Any
    ) -> httpx.Response:
        """One request answered by ``worker`` (checked), on a connection of its own."""
        http = self.connect(worker, key)
        try:
            answer = http.request(method, path, **kw)
            assert self.holder(answer) == worker
            return answer
        finally:
            http.close()

    def reader(self, worker: int, key: str | None, **kw: Any) -> Reader:
        """A live-stream client started on ``worker`` (it has read the first block)."""
        reader = Reader(self.base, key, **kw)
        with self.only(worker):
            reader.start()
            reader.wait_for(lambda r: r.snapshot(), "the stream to start")
        return reader

    def metrics_directory(self) -> Path:
        (found,) = self.home.glob("posledger-metrics-*")
        return found

    def kill(self) -> None:
        """SIGKILL to the parent and the workers at once; until all of them are dead."""
        workers = _workers(self.proc.pid) or self.workers
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._log.close()
        # Orphans are reparented; a zombie is dead (holds no connection) even unreaped.
        wait_until(
            lambda: all(_state(w) in (None, "Z") for w in workers),
            lambda: [_state(w) for w in workers],
            "the killed workers to die",
        )

    def stop(self) -> None:
        """SIGTERM to the parent: it stops its workers and exits."""
        self.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: self.proc.poll() is not None, self.log.read_text, "the server to stop")
        self._log.close()
        assert self.proc.returncode in (0, -signal.SIGTERM), (self.proc.returncode, self._tail())
        assert self.log.read_text().count("Application shutdown complete.") == WORKERS


def _fill(
    exec_id: str, strategy: str, side: str, n: int, account: str = "ACC", instrument: str = "FUT"
) -> str:
    return json.dumps(
        {
            "type": "fill",
            "exec_id": exec_id,
            "account": account,
            "instrument": instrument,
            "side": side,
            "quantity": "1",
            "price": str(100 + n % 7),
            "ts": f"2026-03-02T10:{n // 60 % 60:02d}:{n % 60:02d}Z",
            "strategy": strategy,
            "commission": "0.5",
            "commission_currency": "USD",
        }
    )


class Client(threading.Thread):
    """Sends each request (its lines) on its connection, one after the other, until they
    run out, ``stop`` is set, or the server goes away (:attr:`gone`)."""

    def __init__(
        self,
        http: httpx.Client,
        requests: Iterable[list[str]],
        stop: threading.Event | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.http, self.requests, self.stop = http, requests, stop or threading.Event()
        self.sent: list[list[str]] = []
        self.answers: list[list[dict[str, Any]]] = []
        """The outcomes of each request answered, in order."""
        self.gone = False
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for lines in self.requests:
                if self.stop.is_set():
                    return
                self.sent.append(lines)
                try:
                    answer = self.http.post("/v1/ingest", content="\n".join(lines))
                except httpx.TransportError:
                    self.gone = True  # the last request is not acknowledged
                    return
                if answer.status_code != 200:
                    raise AssertionError(answer.text)
                self.answers.append(answer.json()["outcomes"])
        except BaseException as exc:  # reported by the test's thread
            self.error = exc
        finally:
            self.http.close()

    def outcomes(self) -> list[dict[str, Any]]:
        return [outcome for answer in self.answers for outcome in answer]


def _run(clients: list[Client], what: str) -> None:
    for client in clients:
        client.start()
    wait_until(
        lambda: not any(c.is_alive() for c in clients),
        lambda: sum(len(c.answers) for c in clients),
        what,
    )
    for client in clients:
        assert client.error is None, client.error
        assert not client.gone


def _started(
    db: str, tmp: Path, name: str = "server", rate: str = "1000000"
) -> tuple[Workers, str, dict[str, str]]:
    """:data:`SETUP` and keys (admin; ``alpha`` and ``beta``) made with the command line,
    and a ready server: the server, the admin key, each strategy's key by its name."""
    setup = tmp / "setup.jsonl"
    setup.write_text("".join(json.dumps(record) + "\n" for record in SETUP))
    _cli(db, "ingest", str(setup))
    admin = json.loads(_cli(db, "keys", "create", "--admin", "--json"))["key"]
    keys = {
        strategy: json.loads(_cli(db, "keys", "create", "--strategy", strategy, "--json"))["key"]
        for strategy in ("alpha", "beta")
    }
    server = Workers(db, tmp / name, rate)
    server.wait_ready()
    return server, admin, keys


def _key_id(key: str) -> str:
    return key.split("_")[1]


def _samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in found, key
            found[key] = sample.value
    return found


def _get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _worker_counts(directory: Path, worker: int) -> Samples:
    """What one worker counted: its own file of the multiprocess directory, read alone."""
    with tempfile.TemporaryDirectory() as alone:
        shutil.copy(directory / f"counter_{worker}.db", alone)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=alone)  # type: ignore[no-untyped-call]
        return _samples(generate_latest(registry).decode())


def _signed(side: str) -> int:
    return 1 if side == "BUY" else -1


def _positions(base: str, key: str) -> dict[str, Decimal]:
    answer = httpx.get(
        f"{base}/v1/positions", headers={"Authorization": f"Bearer {key}"}, timeout=120
    )
    assert answer.status_code == 200, answer.text
    return {p["strategy"]: Decimal(p["signed_quantity"]) for p in answer.json()}


def test_a_killed_two_worker_server_keeps_every_acknowledged_fill_once(
    database: str, tmp_path: Path, servers: list[Any]
) -> None:
    server, admin, keys = _started(database, tmp_path)
    servers.append(server)
    stop = threading.Event()
    plan: dict[str, tuple[str, str]] = {}  # exec_id: (strategy, side)
    clients = []
    for n in range(CLIENTS):
        strategy = ("alpha", "beta")[n // 2 % 2]
        side = ("BUY", "BUY", "SELL")[n % 3]

        def requests(n: int = n, strategy: str = strategy, side: str = side) -> Iterator[list[str]]:
            k = 0
            while True:
                exec_id = f"c{n}-{k}"
                plan[exec_id] = (strategy, side)
                yield [_fill(exec_id, strategy, side, k)]
                k += 1

        worker = server.workers[n % WORKERS]
        clients.append(Client(server.connect(worker, keys[strategy]), requests(), stop))
    for client in clients:
        client.start()

    def acked() -> list[int]:
        return [len(c.answers) for c in clients]

    wait_until(lambda: sum(acked()) >= KILL_AFTER and min(acked()) > 0, acked, "fills acknowledged")
    workers = server.workers
    server.kill()
    stop.set()
    for client in clients:
        client.join()
        assert client.error is None, client.error
    acknowledged = {o["key"]: o["status"] for c in clients for o in c.outcomes()}
    assert len(acknowledged) >= KILL_AFTER
    assert set(acknowledged.values()) == {"applied"}
    sent = [json.loads(line)["exec_id"] for c in clients for lines in c.sent for line in lines]
    assert len(sent) == len(set(sent))

    # What each worker of the dead server counted, in the files it left behind.
    left = server.metrics_directory()
    counted = {
        w: _get(_worker_counts(left, w), "posledger_inputs_total", kind="fill", status="applied")
        for w in workers
    }
    assert all(count > 0 for count in counted.values()), counted  # both applied fills

    again = Workers(database, tmp_path / "again")
    servers.append(again)
    again.wait_ready()
    lines = [_fill(e, *plan[e], int(e.split("-")[1])) for e in sent]
    answer = httpx.post(
        f"{again.base}/v1/ingest",
        content="\n".join(lines),
        headers={"Authorization": f"Bearer {admin}"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["rejected"] == 0
    statuses = {o["key"]: o["status"] for o in report["outcomes"]}
    assert len(statuses) == len(sent)
    for exec_id in acknowledged:
        assert statuses[exec_id] == "duplicate", exec_id  # durable before acknowledged

    # Every fill sent is in the journal once; each acknowledged one by its client's key.
    entries = json.loads(_cli(database, "journal", "--limit", "100000", "--json"))
    fills = [e for e in entries if e["kind"] == "fill"]
    assert sorted(e["input"]["exec_id"] for e in fills) == sorted(sent)  # none twice
    senders = {e["input"]["exec_id"]: e["key_id"] for e in fills}
    for exec_id in acknowledged:
        assert senders[exec_id] == _key_id(keys[plan[exec_id][0]]), exec_id
    before = [e for e, k in senders.items() if k != _key_id(admin)]  # durable at the kill
    assert {e for e, s in statuses.items() if s == "duplicate"} == set(before)
    assert report["applied"] == len(sent) - len(before)
    # The dead workers counted every answer they gave, and nothing the journal lacks.
    assert len(acknowledged) <= sum(counted.values()) <= len(before)

    expected = Counter[str]()
    for exec_id in sent:
        strategy, side = plan[exec_id]
        expected[strategy] += _signed(side)
    assert _positions(again.base, admin) == {s: q for s, q in expected.items() if q}
    scrape = _samples(httpx.get(f"{again.base}/metrics", timeout=120).text)
    applied = _get(scrape, "posledger_inputs_total", kind="fill", status="applied")
    assert applied == report["applied"]
    assert _get(scrape, "posledger_inputs_total", kind="fill", status="duplicate") == len(before)
    again.stop()
    _cli(database, "verify")


def test_streams_on_both_workers_get_every_entry_once_in_order(
    database: str, tmp_path: Path, servers: list[Any]
) -> None:
    server, admin, keys = _started(database, tmp_path)
    servers.append(server)
    first, second = server.workers
    readers = [
        server.reader(first, admin, params={"after_seq": 0}),
        server.reader(second, None, params={"after_seq": 0, "access_token": admin}),
    ]
    # Each worker writes its own instrument (journal stream): their transactions do not
    # wait for one another, and one may commit a lower number after the other a higher.
    clients = []
    for n in range(4):
        strategy, instrument = ("alpha", "beta")[n // 2], ("FUT", "FUT2")[n % 2]
        lines = [
            [_fill(f"s{n}-{k}", strategy, ("BUY", "SELL")[(n + k) % 2], k, instrument=instrument)]
            for k in range(STREAM_FILLS)
        ]
        clients.append(Client(server.connect(server.workers[n % 2], keys[strategy]), lines))
    _run(clients, "the clients to send their fills")
    answer = server.request(
        first, "GET", "/v1/journal", admin, params={"after_seq": 0, "limit": 10_000}
    )
    assert answer.status_code == 200, answer.text
    journal: list[dict[str, Any]] = answer.json()
    assert sum(e["kind"] == "fill" for e in journal) == 4 * STREAM_FILLS
    last = journal[-1]["seq"]

    for reader in readers:
        # (The stream stays open: it may have read the last entry already.)
        reader.wait_for(lambda r: (r.last_id or 0) >= last, "the stream to reach the end")
        assert reader.status == 200
        seen = [e.seq for e in reader.events]
        assert seen == [e["seq"] for e in journal]  # each once, in order, none missing
        assert [{k: v for k, v in e.data.items() if k != "changes"} for e in reader.events] == (
            journal
        )
        assert reader.last_id == last

    # Back with the last id, on either worker: only what was written since.
    backs = [server.reader(w, admin, headers={"Last-Event-ID": str(last)}) for w in (second, first)]
    since = []
    for n, worker in enumerate((first, second)):
        late = _fill(f"late-{n}", "alpha", "BUY", n)
        answer = server.request(worker, "POST", "/v1/ingest", admin, content=late)
        assert answer.status_code == 200, answer.text
        (outcome,) = answer.json()["outcomes"]
        assert outcome["status"] == "applied"
        since.append(outcome["seq"])
    for back in backs:
        back.wait_for(lambda r: (r.last_id or 0) >= max(since), "the stream to catch up")
        assert [e.seq for e in back.events] == sorted(since)
        assert {e.data["input"]["exec_id"] for e in back.events} == {"late-0", "late-1"}
    server.stop()  # SIGTERM ends the open streams
    for stream in readers + backs:
        stream.finish("the stream to end with the server")
    assert [e.seq for e in readers[0].events] == [e["seq"] for e in journal] + sorted(since)


def test_every_worker_scrapes_the_same_summed_counts(
    database: str, tmp_path: Path, servers: list[Any]
) -> None:
    server, admin, keys = _started(database, tmp_path)
    servers.append(server)
    clients = []
    for n in range(4):
        strategy = ("alpha", "beta")[n // 2]
        requests = []
        for k in range(METRICS_REQUESTS):
            lines = [_fill(f"m{n}-{k}", strategy, "BUY", k)]
            if k % 5 == 4:  # the previous request's fill again: a duplicate
                lines.append(_fill(f"m{n}-{k - 1}", strategy, "BUY", k - 1))
            if k % 10 == 9:
                lines.append(_fill(f"m{n}-x{k}", strategy, "BUY", k, account="NOPE"))
            requests.append(lines)
        clients.append(Client(server.connect(server.workers[n % 2], keys[strategy]), requests))
    _run(clients, "the clients to send their session")
    given = Counter((o["kind"], o["status"]) for c in clients for o in c.outcomes())
    fills = 4 * METRICS_REQUESTS
    assert given == {
        ("fill", "applied"): fills,
        ("fill", "duplicate"): fills // 5,
        ("fill", "rejected"): fills // 10,
    }
    sent_lines = sum(len(r) for c in clients for r in c.sent)
    assert sent_lines == fills + fills // 5 + fills // 10

    scrapes: list[tuple[int, Samples]] = []
    for _ in range(3):
        for worker in server.workers:
            answer = server.request(worker, "GET", "/metrics")  # no key
            assert answer.status_code == 200, answer.text
            scrapes.append((worker, _samples(answer.text)))

    def steady(samples: Samples) -> Samples:
        """All but how long the database part took to read."""
        return {k: v for k, v in samples.items() if k[0] != "posledger_ledger_metrics_read_seconds"}

    for worker, scrape in scrapes:
        for (kind, status), count in given.items():
            found = _get(scrape, "posledger_inputs_total", kind=kind, status=status)
            assert found == count, (worker, kind, status)
        assert _get(scrape, "posledger_batch_requests_sum") == 4 * METRICS_REQUESTS
        assert _get(scrape, "posledger_batch_lines_sum") == sent_lines
        assert _get(scrape, "posledger_open_slots", strategy="alpha") == 1
        assert _get(scrape, "posledger_open_slots", strategy="beta") == 1
        assert _get(scrape, "posledger_ledger_metrics_up") == 1
        assert steady(scrape) == steady(scrapes[0][1]), worker  # everything else too
    # Each worker counted its own clients' fills; the scrapes add them up.
    directory = server.metrics_directory()
    applied = [
        _get(_worker_counts(directory, w), "posledger_inputs_total", kind="fill", status="applied")
        for w in server.workers
    ]
    assert applied == [fills // 2, fills // 2]
    assert _positions(server.base, admin) == {"alpha": fills // 2, "beta": fills // 2}
    server.stop()


def test_a_keys_rate_holds_across_workers(database: str, tmp_path: Path) -> None:
    """``--rate 0.5``: a key may make one request, then one every 2 s, whichever worker
    answers. Requests alternating between the two workers: at most ``1 + 0.5 * elapsed``
    succeed (each worker with a bucket of its own would let at least two through at
    once), the others are 429 with ``Retry-After``; another key has its own bucket."""
    server, _, keys = _started(database, tmp_path, rate="0.5")
    try:
        started = time.monotonic()
        answers = [
            server.request(server.workers[n % WORKERS], "GET", "/v1/head", keys["alpha"])
            for n in range(6)
        ]
        elapsed = time.monotonic() - started
        statuses = [a.status_code for a in answers]
        assert set(statuses) <= {200, 429}, statuses
        assert statuses[0] == 200
        assert statuses.count(200) <= 1 + int(0.5 * elapsed), (statuses, elapsed)
        for refused in (a for a in answers if a.status_code == 429):
            assert int(refused.headers["retry-after"]) >= 1
            assert "may make 0.5 requests a second" in refused.json()["detail"]
        other = server.request(server.workers[1], "GET", "/v1/head", keys["beta"])
        assert other.status_code == 200, other.text
    finally:
        server.stop()
