"""The live stream of the HTTP API (docs/service.md, Live stream) on every store: each
journal entry an event, in order, with what it changed; a client that comes back with its
last id misses nothing and sees nothing twice; entries another process writes arrive by
polling; a strategy key sees its own; and, on PostgreSQL and MariaDB, an entry whose
number was drawn before a later one's but committed after it is not skipped.

The app runs in the test process, served by uvicorn on a loopback socket in a thread of
its own, so the clients (``tests/sse.py``) stream and hang up over real connections.
Every wait is for a condition, bounded by a stall limit (``tests/progress.py``)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import text

from posledger import open_ledger
from posledger.entrypoints.http.app import Settings, create_app
from posledger.entrypoints.http.stream import StreamSettings
from posledger.service.feed import Tail
from posledger.store.reads import SqlReads
from tests.databases import SERVERS
from tests.progress import wait_until
from tests.sse import Block, Reader

from .helpers import engine, execute, fill, fill_record, kind_of, setup, sqlite_only

T = "2026-03-02T"
FAST = StreamSettings(poll=0.05, heartbeat=0.2)
"""Quick enough that a test never waits long for a poll or a heartbeat."""


class Live:
    """The app served by uvicorn in a thread of the test process."""

    def __init__(self, db_url: str, stream: StreamSettings = FAST) -> None:
        self.app = create_app(Settings(db=db_url, rate=1e6, key_seconds=0, stream=stream))
        listening = socket.socket()
        listening.bind(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{listening.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [listening]}, daemon=True
        )
        self.thread.start()
        wait_until(
            lambda: self.server.started or not self.thread.is_alive(),
            lambda: self.server.started,
            "the server to start",
        )
        assert self.server.started

    def close(self) -> None:
        """Stop the server, its streams first (as a SIGTERM does)."""
        self.app.state.stream_hub.stop()
        self.server.should_exit = True
        wait_until(lambda: not self.thread.is_alive(), lambda: None, "the server to stop")

    def post(self, key: str, *lines: str | dict[str, Any], path: str = "/v1/ingest") -> Any:
        body = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
        answer = httpx.post(
            f"{self.base}{path}",
            content=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=None,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def ingest(self, key: str, *lines: dict[str, Any]) -> list[int]:
        """Apply ``lines`` through the API; their journal numbers."""
        found = self.post(key, *lines)
        assert found["applied"] == len(lines), found
        return [o["seq"] for o in found["outcomes"]]

    def get(self, key: str, path: str, **params: Any) -> Any:
        answer = httpx.get(
            f"{self.base}{path}",
            params=params,
            headers={"Authorization": f"Bearer {key}"},
            timeout=None,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def reader(self, key: str | None, **kwargs: Any) -> Reader:
        started = Reader(self.base, key, **kwargs)
        started.start()
        return started


@dataclass(frozen=True)
class Keys:
    admin: str
    alpha: str
    beta: str
    alpha_id: str


@pytest.fixture
def keys(db_url: str) -> Keys:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        _, admin = ledger.create_key(admin=True, name="ops")
        alpha_row, alpha = ledger.create_key(strategy="alpha")
        _, beta = ledger.create_key(strategy="beta")
    return Keys(admin, alpha, beta, alpha_row["key_id"])


@pytest.fixture
def live(db_url: str, keys: Keys) -> Iterator[Live]:
    served = Live(db_url)
    try:
        yield served
    finally:
        served.close()


def _fill(exec_id: str, side: str, qty: str, minute: int, **extra: Any) -> dict[str, Any]:
    """A fill at 100 + its minute, with no commission unless ``extra`` says."""
    record = fill_record(exec_id, side, qty, str(100 + minute), minute, **extra)
    if "commission" not in extra:
        del record["commission"], record["commission_currency"]
    return record


def _entry_order(cid: str, strategy: str, qty: str) -> dict[str, Any]:
    """An entry order with a bracket: its fills make the ledger issue commands."""
    return {
        "type": "order",
        "client_order_id": cid,
        "account": "ACC",
        "strategy": strategy,
        "instrument": "FUT",
        "side": "BUY",
        "quantity": qty,
        "intent": "entry",
        "ts": f"{T}09:59:00Z",
        "bracket": {"take_profit": "150", "stop_loss": "50"},
    }


def _ids(blocks: list[Block]) -> list[int]:
    return [b.seq for b in blocks if b.seq is not None]


def _without_changes(block: Block) -> dict[str, Any]:
    return {k: v for k, v in block.data.items() if k != "changes"}


def test_each_entry_is_an_event_in_journal_order_with_what_it_changed(
    live: Live, keys: Keys
) -> None:
    reader = live.reader(keys.admin, params={"after_seq": 0})
    (order,) = live.ingest(keys.admin, _entry_order("o-1", "alpha", "2"))
    opening, beta = live.ingest(
        keys.admin,
        _fill("f1", "BUY", "2", 1, client_order_id="o-1"),
        _fill("f2", "BUY", "1", 2, strategy="beta"),
    )
    (closing,) = live.ingest(keys.alpha, _fill("f3", "SELL", "2", 3, strategy="alpha"))
    reader.want = closing
    reader.finish("the stream to reach the last entry")

    assert reader.status == 200 and reader.content_type == "text/event-stream; charset=utf-8"
    first = reader.snapshot()[0]
    assert (first["retry"], first.seq, "event" in first) == ("1000", 0, False)
    journal = live.get(keys.admin, "/v1/journal", after_seq=0, limit=10_000)
    events = reader.events
    assert [e.seq for e in events] == [entry["seq"] for entry in journal]  # each once, in order
    assert [e["event"] for e in events] == [entry["kind"] for entry in journal]
    assert [_without_changes(e) for e in events] == journal  # the entry as /v1/journal has it
    by_seq = {e.seq: e.data for e in events}

    assert by_seq[order]["changes"] == {
        "strategies": ["alpha"], "slots": [], "trades": [], "opened": [], "closed": [],
        "commands": [],
    }  # fmt: skip
    opened = by_seq[opening]["changes"]
    (trade,) = opened["opened"]
    slot = {"account": "ACC", "instrument": "FUT", "strategy": "alpha", "position_side": "BOTH"}
    assert (opened["strategies"], opened["slots"], opened["trades"]) == (["alpha"], [slot], [trade])
    commands = live.get(keys.admin, "/v1/commands")
    placed = [c for c in commands if c["seq"] == opening]
    assert opened["commands"] == [
        {"command_id": c["command_id"], "kind": "place", "client_order_id": c["command_id"],
         "strategy": "alpha"}
        for c in placed
    ] and len(placed) == 2  # fmt: skip
    assert by_seq[beta]["changes"]["strategies"] == ["beta"]
    assert by_seq[beta]["changes"]["opened"] != [trade]
    closed = by_seq[closing]["changes"]
    assert (closed["closed"], closed["opened"], closed["slots"]) == ([trade], [], [slot])
    # The bracket ends: both legs cancelled.
    cancels = [(c["kind"], c["client_order_id"], c["strategy"]) for c in closed["commands"]]
    assert cancels == [("cancel", c["command_id"], "alpha") for c in placed]
    assert by_seq[closing]["key_id"] == keys.alpha_id
    for entry in journal[:6]:  # reference data
        assert by_seq[entry["seq"]]["changes"]["slots"] == []


def test_a_client_that_comes_back_with_its_last_id_misses_nothing_and_sees_nothing_twice(
    live: Live, keys: Keys, db_url: str
) -> None:
    first = live.ingest(
        keys.admin, *(_fill(f"a{n}", "BUY", "1", n, strategy="alpha") for n in range(3))
    )
    gone = live.reader(keys.admin, params={"after_seq": 0}, want=first[1])
    gone.finish("the first client to read up to the second fill and hang up")
    last = gone.last_id
    assert last == first[1] and _ids(gone.events)[-1] == last
    # Written while it was away: through the API, and by another process's hand.
    later = live.ingest(
        keys.admin, *(_fill(f"b{n}", "BUY", "1", 10 + n, strategy="beta") for n in range(3))
    )
    with open_ledger(db_url) as other:
        outcome = fill(other, "c1", "SELL", "1", "101", strategy="alpha", minute=20)
        assert outcome.applied
    missing = [first[2], *later, outcome.seq]

    ways = {
        "Last-Event-ID": {"headers": {"Last-Event-ID": str(last)}},
        "after_seq": {"params": {"after_seq": last}},
        "both: Last-Event-ID wins": {
            "headers": {"Last-Event-ID": str(last)},
            "params": {"after_seq": 0},
        },
    }
    for how, request in ways.items():
        back = live.reader(keys.admin, want=missing[-1], **request)
        back.finish(f"the client to come back ({how})")
        assert _ids(back.events) == missing, how
        assert back.snapshot()[0].seq == last, how  # it starts where the client left off


def test_entries_another_process_writes_come_by_polling(
    live: Live, keys: Keys, db_url: str
) -> None:
    reader = live.reader(keys.admin)  # from now on
    reader.wait_for(lambda r: r.snapshot(), "the stream to start")
    start = reader.snapshot()[0].seq
    with open_ledger(db_url) as other:  # as `posledger ingest` would, beside the server
        assert start == other.journal(after_seq=0, limit=None)[-1].seq
        seqs = [fill(other, f"p{n}", "BUY", "1", "100", minute=n).seq for n in range(3)]
    reader.want = seqs[-1]
    reader.finish("the entries another ledger wrote to arrive")
    assert _ids(reader.events) == seqs


def test_the_servers_own_writes_wake_the_streams_without_waiting_for_a_poll(
    db_url: str, keys: Keys
) -> None:
    hour = StreamSettings(poll=3600, heartbeat=3600)  # only the writer's ring can wake it
    served = Live(db_url, hour)
    try:
        reader = served.reader(keys.admin)
        reader.wait_for(lambda r: r.snapshot(), "the stream to start")
        seqs = served.ingest(keys.admin, _fill("w1", "BUY", "1", 1, strategy="alpha"))
        reader.want = seqs[-1]
        reader.finish("the entry the server wrote to arrive")
        assert _ids(reader.events) == seqs
    finally:
        served.close()


def test_a_strategy_key_sees_the_entries_of_its_strategy_only(live: Live, keys: Keys) -> None:
    admin = live.reader(keys.admin, params={"after_seq": 0})
    alpha = live.reader(keys.alpha, params={"after_seq": 0})
    beta = live.reader(None, params={"after_seq": 0, "access_token": keys.beta})
    live.ingest(
        keys.alpha,
        _entry_order("o-1", "alpha", "2"),
        _fill("f1", "BUY", "2", 1, client_order_id="o-1"),
    )
    live.ingest(keys.beta, _fill("f2", "BUY", "1", 2, strategy="beta"))
    live.ingest(
        keys.admin,
        {"type": "halt", "account": "ACC", "instrument": "FUT"},
        {"type": "resume", "account": "ACC", "instrument": "FUT"},
        {"type": "transfer", "account": "ACC", "instrument": "FUT", "from_strategy": "alpha",
         "to_strategy": "beta", "quantity": "1"},
    )  # fmt: skip
    order = _entry_order("o-2", "alpha", "1") | {"bracket": None}
    live.ingest(keys.alpha, order, {"type": "cancel", "client_order_id": "o-2"})
    (command, *_) = live.get(keys.alpha, "/v1/commands", status="pending")
    live.post(keys.alpha, path=f"/v1/commands/{command['command_id']}/ack")
    (last,) = live.ingest(keys.beta, _fill("f3", "SELL", "1", 4, strategy="beta"))
    for reader in (admin, alpha, beta):
        reader.want = last
        reader.finish("every stream to reach the last entry")

    everything = admin.events
    for reader, name in ((alpha, "alpha"), (beta, "beta")):
        own = [e for e in everything if name in e.data["changes"]["strategies"]]
        assert [e.data for e in reader.events] == [e.data for e in own], name
        assert reader.last_id == last  # skipped entries still move its resume point
    kinds = [e["event"] for e in alpha.events]
    assert kinds == ["strategy", "order", "fill", "transfer", "order", "cancel", "command_ack"]
    assert [e["event"] for e in beta.events] == ["strategy", "fill", "transfer", "fill"]
    assert {"halt", "resume", "account", "instrument"} <= {e["event"] for e in everything}


def test_the_stream_needs_a_key_and_a_journal_number(live: Live, keys: Keys, db_url: str) -> None:
    refused = {
        "no key": live.reader(None),
        "an unknown key": live.reader(None, params={"access_token": "plk_0000000000000000_x"}),
        "a Last-Event-ID that is no number": live.reader(
            keys.admin, headers={"Last-Event-ID": "abc"}
        ),
        "a negative after_seq": live.reader(keys.admin, params={"after_seq": -1}),
    }
    for why, reader in refused.items():
        reader.finish(f"the refusal of {why}")
        assert reader.refusal is not None, why
        assert reader.status == reader.refusal["status"] in (400, 401, 422), why
    assert refused["no key"].status == 401 and refused["an unknown key"].status == 401

    with open_ledger(db_url) as ledger:
        row, token = ledger.create_key(strategy="alpha", name="soon revoked")
    quiet = live.reader(None, params={"access_token": token})
    quiet.wait_for(lambda r: any("comment" in b for b in r.snapshot()), "a heartbeat")
    with open_ledger(db_url) as ledger:
        ledger.revoke_key(row["key_id"])
    quiet.finish("the stream of a revoked key to end")
    again = live.reader(token)
    again.finish("the revoked key to be refused")
    assert again.status == 401


def test_the_streams_end_when_the_server_stops(db_url: str, keys: Keys) -> None:
    served = Live(db_url, StreamSettings(poll=0.05))  # heartbeats 15 s apart: no help
    readers = [served.reader(keys.admin), served.reader(keys.alpha)]
    for reader in readers:
        reader.wait_for(lambda r: r.snapshot(), "the stream to start")
    served.close()
    for reader in readers:
        reader.finish("the stream to end with the server")
        assert reader.status == 200


# -- a number drawn before another, committed after it (PostgreSQL, MariaDB) -------------


def _draw(db_url: str, conn: Any) -> int:
    """Take the FUT stream's lock and draw a journal number, as a writer does at its end."""
    conn.execute(text("SELECT version FROM streams WHERE stream = 'instrument:FUT' FOR UPDATE"))
    draw = (
        "SELECT nextval('journal_seq')"
        if kind_of(db_url) == "postgresql"
        else "SELECT NEXTVAL(journal_seq)"
    )
    return int(conn.execute(text(draw)).scalar_one())


@pytest.mark.parametrize("ending", ["commit", "rollback"])
def test_a_number_drawn_earlier_holds_the_later_entries_back_until_its_writer_ends(
    db_url: str, ending: str
) -> None:
    if kind_of(db_url) not in SERVERS:
        pytest.skip(f"{kind_of(db_url)}: entries are numbered in the order they are committed")
    with open_ledger(db_url) as ledger, engine(db_url) as raw, raw.connect() as conn:
        setup(ledger)
        tail = Tail(ledger.store.reads(), ledger.journal(after_seq=0, limit=None)[-1].seq)
        assert tail.read() == [] and not tail.holding
        drawn = _draw(db_url, conn)
        later = fill(ledger, "p1", "BUY", "1", "100", account="HDG", instrument="PERP",
                     position_side="LONG")  # fmt: skip
        assert later.applied and later.seq > drawn
        assert tail.read() == [] and tail.holding  # number `drawn` may still come
        assert tail.read() == [] and tail.holding
        if ending == "commit":
            conn.execute(
                text(
                    "INSERT INTO journal (seq, stream, version, kind, recorded_at, input, effects)"
                    " VALUES (:seq, 'test:late', 1, 'halt', 0, :input, '{}')"
                ),
                {"seq": drawn, "input": '{"type": "halt", "account": "ACC", "instrument": "FUT"}'},
            )
            conn.commit()
            expected = [drawn, later.seq]
        else:
            conn.rollback()
            expected = [later.seq]  # a number that never comes is passed
        given: list[int] = []

        def caught_up() -> bool:
            given.extend(row.seq for row in tail.read())
            return not tail.holding and not tail.more

        wait_until(caught_up, lambda: len(given), "the tail to settle the missing number")
        assert given == expected


class _Blind(SqlReads):
    """Reads of a database that cannot say which transactions are writing (MariaDB
    without the PROCESS privilege)."""

    def journal_writers(self) -> frozenset[int] | None:
        return None


def test_where_no_one_can_say_who_writes_a_missing_number_is_waited_for_a_while(
    db_url: str,
) -> None:
    sqlite_only(db_url, "a number skipped by hand, and reads that cannot say who writes")
    with open_ledger(db_url) as ledger:
        setup(ledger)
        end = ledger.journal(after_seq=0, limit=None)[-1].seq
        execute(
            db_url,
            "INSERT INTO journal (seq, stream, version, kind, recorded_at, input, effects)"
            " VALUES (:seq, 'test:late', 1, 'halt', 0, :input, '{}')",
            seq=end + 2,
            input='{"type": "halt", "account": "ACC", "instrument": "FUT"}',
        )
        now = [100.0]
        tail = Tail(_Blind(ledger.store.database.engine), end, settle=10, clock=lambda: now[0])
        assert tail.read() == [] and tail.holding and not tail.more
        now[0] = 109.9
        assert tail.read() == [] and tail.holding
        now[0] = 110.0  # settled: number end + 1 is taken as never to come
        assert [row.seq for row in tail.read()] == [end + 2] and not tail.holding
