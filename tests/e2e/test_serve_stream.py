"""The live stream of a real ``posledger serve`` (docs/service.md, Live stream): a client
streams events over loopback, hangs up, fills arrive while it is away (through the API,
and from a ``posledger ingest`` beside the server), and the client, back with its last
id, gets exactly the entries it missed. A SIGTERM ends the open streams at once: the
server's graceful shutdown does not wait for them.

Every wait is for a condition, bounded by a stall limit (``tests/progress.py``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.sse import Reader

from .test_serve import SETUP, Server, _cli, _fill, _post


@dataclass
class Desk:
    db: Path
    tmp: Path
    server: Server
    admin: str
    alpha: str

    def fills(self, *exec_ids: str) -> list[int]:
        """Alpha's fills, sent through the API; their journal numbers."""
        found = _post(
            self.server.base, self.admin, [_fill(e, "alpha", n) for n, e in enumerate(exec_ids)]
        )
        assert found["applied"] == len(exec_ids), found
        return [o["seq"] for o in found["outcomes"]]

    def journal(self) -> list[dict[str, Any]]:
        answer = httpx.get(
            f"{self.server.base}/v1/journal",
            params={"after_seq": 0, "limit": 10_000},
            headers={"Authorization": f"Bearer {self.admin}"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()
        return found


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    db = tmp_path / "ledger.db"
    setup = tmp_path / "setup.jsonl"
    setup.write_text("".join(json.dumps(record) + "\n" for record in SETUP))
    _cli(db, "ingest", str(setup))
    admin = json.loads(_cli(db, "keys", "create", "--admin", "--json"))["key"]
    alpha = json.loads(_cli(db, "keys", "create", "--strategy", "alpha", "--json"))["key"]
    server = Server(db, tmp_path / "server.log", "--access-log")  # the key is never in it
    try:
        server.wait_ready()
        yield Desk(db, tmp_path, server, admin, alpha)
    finally:
        if server.proc.poll() is None:
            server.kill()


def test_a_client_back_with_its_last_id_gets_exactly_what_it_missed(desk: Desk) -> None:
    base = desk.server.base
    start = desk.journal()[-1]["seq"]
    client = Reader(base, desk.admin, params={"after_seq": start})
    client.start()
    seen = desk.fills("f1", "f2", "f3")
    client.want = seen[-1]
    client.finish("the client to read three fills and hang up")
    assert [e.seq for e in client.events] == seen
    assert [e.data["input"]["exec_id"] for e in client.events] == ["f1", "f2", "f3"]
    last = client.last_id
    assert last == seen[-1]

    # While it is away: fills through the API, and one from `posledger ingest`.
    missed = desk.fills("f4", "f5")
    beside = desk.tmp / "beside.jsonl"
    beside.write_text(_fill("f6", "alpha", 6) + "\n")
    _cli(desk.db, "ingest", str(beside))
    missed.append(desk.journal()[-1]["seq"])

    back = Reader(base, desk.admin, headers={"Last-Event-ID": str(last)}, want=missed[-1])
    back.start()
    back.finish("the client to come back and catch up")
    assert [e.seq for e in back.events] == missed  # no gap, nothing twice
    assert [e.data["input"]["exec_id"] for e in back.events] == ["f4", "f5", "f6"]
    assert all(e["event"] == "fill" for e in back.events)
    assert back.events[0].data["changes"]["strategies"] == ["alpha"]

    # A browser's way: the key in the query string, kept out of the server's own log.
    browser = Reader(base, None, params={"after_seq": last, "access_token": desk.alpha})
    browser.want = missed[-1]
    browser.start()
    browser.finish("the strategy key's stream")
    assert [e.seq for e in browser.events] == missed
    log = desk.server.log.read_text()
    assert "GET /v1/stream?after_seq=" in log and desk.alpha not in log


def test_sigterm_ends_open_streams_without_waiting_for_them(desk: Desk) -> None:
    streams = [
        Reader(desk.server.base, desk.admin),
        Reader(desk.server.base, desk.alpha, params={"after_seq": 0}),
    ]
    for stream in streams:
        stream.start()
    for stream in streams:
        stream.wait_for(lambda r: r.snapshot(), "the stream to start")
    desk.server.stop()  # SIGTERM; asserts a clean exit
    for stream in streams:
        stream.finish("the stream to end with the server")
        assert stream.status == 200
    assert "timeout graceful shutdown exceeded" not in desk.server.log.read_text()
