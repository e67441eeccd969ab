"""``posledger serve`` as a user runs it: keys made with ``posledger keys``, a real server
process on loopback, many clients at once (group commit), and a SIGKILL of the server in
the middle: every input it acknowledged is durable, and sent again it is a duplicate,
never applied twice (docs/service.md, Group commit).

Every wait is for a condition, bounded by a stall limit (``tests/progress.py``)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
from pathlib import Path
from typing import IO, Any

import httpx

from tests.progress import wait_until

from .scenario import SCRIPT, clean_env, url

CLIENTS = 8
KILL_AFTER = 120
"""Acknowledged fills before the server is killed."""

SETUP = [
    {
        "type": "account",
        "account": "ACC",
        "venue": "CME",
        "mode": "SIM",
        "position_mode": "netting",
    },
    {
        "type": "instrument",
        "instrument": "FUT",
        "kind": "future",
        "multiplier": "5",
        "quote_currency": "USD",
        "settlement_currency": "USD",
    },
    {"type": "strategy", "strategy": "alpha"},
    {"type": "strategy", "strategy": "beta"},
]


def _cli(db: Path, *args: str) -> str:
    done = subprocess.run(
        [str(SCRIPT), "--db", url(db), *args],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=False,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    def __init__(self, db: Path, log: Path, *options: str) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._log: IO[str] = log.open("a")
        self.proc = subprocess.Popen(
            [str(SCRIPT), "--db", url(db), "serve", "--port", str(self.port), *options],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=clean_env(),
        )
        self.log = log

    def ready(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()[-3000:]
        try:
            return httpx.get(f"{self.base}/readyz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def wait_ready(self) -> None:
        wait_until(self.ready, lambda: self.log.stat().st_size, "the server to be ready")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._log.close()

    def stop(self) -> None:
        """SIGTERM: the server finishes what it was doing, closes the ledger and exits
        (uvicorn then ends by the signal it was sent)."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=120)
        self._log.close()
        assert code in (0, -signal.SIGTERM), code
        assert "Application shutdown complete" in self.log.read_text()


def started(tmp_path: Path, servers: list[Server]) -> tuple[Server, Path, str]:
    """A database with :data:`SETUP` and an admin key (both made with the command line),
    served by a ready ``posledger serve``: the server, the database and the key."""
    db = tmp_path / "ledger.db"
    setup = tmp_path / "setup.jsonl"
    setup.write_text("".join(json.dumps(record) + "\n" for record in SETUP))
    _cli(db, "ingest", str(setup))
    key = json.loads(_cli(db, "keys", "create", "--admin", "--json"))["key"]
    server = Server(db, tmp_path / "server.log")
    servers.append(server)
    server.wait_ready()
    return server, db, key


def _fill(exec_id: str, strategy: str, minute: int) -> str:
    return json.dumps(
        {
            "type": "fill",
            "exec_id": exec_id,
            "account": "ACC",
            "instrument": "FUT",
            "side": "BUY",
            "quantity": "1",
            "price": "100",
            "ts": f"2026-03-02T10:{minute % 60:02d}:00Z",
            "strategy": strategy,
            "commission": "0.5",
            "commission_currency": "USD",
        }
    )


class Client(threading.Thread):
    """Sends its fills one per request until told to stop or the server goes away."""

    def __init__(self, n: int, base: str, key: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.n, self.base, self.key, self.stop = n, base, key, stop
        self.sent: list[str] = []
        self.acked: dict[str, str] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=60) as client:
            k = 0
            while not self.stop.is_set():
                exec_id = f"c{self.n}-{k}"
                self.sent.append(exec_id)
                try:
                    answer = client.post("/v1/ingest", content=_fill(exec_id, "alpha", k))
                except httpx.TransportError:
                    return  # the server is gone: this one is not acknowledged
                if answer.status_code != 200:
                    self.error = AssertionError(answer.text)
                    return
                (outcome,) = answer.json()["outcomes"]
                self.acked[exec_id] = outcome["status"]
                k += 1


def _post(base: str, key: str, lines: list[str]) -> dict[str, Any]:
    answer = httpx.post(
        f"{base}/v1/ingest",
        content="\n".join(lines),
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_a_killed_server_keeps_every_acknowledged_input_once(
    tmp_path: Path, servers: list[Server]
) -> None:
    db = tmp_path / "ledger.db"
    setup = tmp_path / "setup.jsonl"
    setup.write_text("".join(json.dumps(record) + "\n" for record in SETUP))
    _cli(db, "ingest", str(setup))
    admin = json.loads(_cli(db, "keys", "create", "--admin", "--json"))["key"]
    created = json.loads(_cli(db, "keys", "create", "--strategy", "alpha", "--json"))
    assert created["scope"] == "strategy" and "secret_hash" not in created
    alpha = created["key"]
    listed = json.loads(_cli(db, "keys", "list", "--json"))
    assert [k["scope"] for k in listed] == ["admin", "strategy"]
    assert all(admin not in json.dumps(k) and alpha not in json.dumps(k) for k in listed)

    server = Server(db, tmp_path / "server.log")
    servers.append(server)
    server.wait_ready()
    stop = threading.Event()
    clients = [Client(n, server.base, alpha, stop) for n in range(CLIENTS)]
    for client in clients:
        client.start()

    def acked() -> int:
        return sum(len(c.acked) for c in clients)

    wait_until(lambda: acked() >= KILL_AFTER, acked, "fills acknowledged")
    server.kill()
    stop.set()
    for client in clients:
        client.join()
        assert client.error is None, client.error
    acknowledged = {e: s for c in clients for e, s in c.acked.items()}
    assert len(acknowledged) >= KILL_AFTER
    assert set(acknowledged.values()) == {"applied"}

    again = Server(db, tmp_path / "server.log")
    servers.append(again)
    again.wait_ready()
    sent = [exec_id for c in clients for exec_id in c.sent]
    # Each fill's line as it was sent (its minute was its number).
    lines = [_fill(e, "alpha", int(e.split("-")[1])) for e in sent]
    report = _post(again.base, admin, lines)
    statuses = {o["key"]: o["status"] for o in report["outcomes"]}
    for exec_id in acknowledged:
        assert statuses[exec_id] == "duplicate", exec_id  # durable before acknowledged
    assert report["rejected"] == 0
    positions = httpx.get(
        f"{again.base}/v1/positions", headers={"Authorization": f"Bearer {admin}"}, timeout=60
    ).json()
    assert [(p["strategy"], p["quantity"]) for p in positions] == [("alpha", str(len(sent)))]
    again.stop()
    verify = subprocess.run(
        [str(SCRIPT), "--db", url(db), "verify"], capture_output=True, text=True,
        env=clean_env(), check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # The audit trail: each fill's entry names the key that sent it; the setup, none.
    entries = json.loads(_cli(db, "journal", "--limit", "100000", "--json"))
    by_key = {(e["kind"], e["key_id"]) for e in entries}
    alpha_id, admin_id = created["key_id"], admin.split("_")[1]
    assert ("account", None) in by_key and ("fill", alpha_id) in by_key
    senders = {e["input"]["exec_id"]: e["key_id"] for e in entries if e["kind"] == "fill"}
    for exec_id in acknowledged:
        assert senders[exec_id] == alpha_id  # applied by alpha's request, not the resend
    assert set(senders.values()) <= {alpha_id, admin_id}
    table = _cli(db, "journal", "--after-seq", str(entries[-1]["seq"] - 1))
    assert entries[-1]["key_id"] in table


def test_serve_refuses_what_cannot_work(tmp_path: Path) -> None:
    for args, why in [
        (["--db", "memory://x", "serve"], "in-memory"),
        (["--db", url(tmp_path / "x.db"), "serve", "--workers", "2"], "one worker"),
    ]:
        done = subprocess.run(
            [str(SCRIPT), *args], capture_output=True, text=True, env=clean_env(), check=False
        )
        assert done.returncode != 0 and why in done.stderr, done.stderr
