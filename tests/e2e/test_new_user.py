"""What a new user ran into, each fixed: demo overwriting files, ``--db`` after the command,
check-order reading orders differently from ingest, and the outbox commands."""

from __future__ import annotations

import json
from pathlib import Path

from posledger import open_ledger
from posledger.domain.writeset import Command, JournalEntry, WriteSet

from .conftest import Ingested
from .scenario import SESSION, invoke, invoke_json, run, sql, url, write


def test_demo_never_overwrites_a_file_it_did_not_make(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my trading notes\n")
    result = run("demo", "--file", str(notes), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "not a posledger demo database" in result.stderr
    assert notes.read_text() == "my trading notes\n"
    # an earlier demo's file is made anew
    demo = tmp_path / "d.db"
    assert run("demo", "--file", str(demo), cwd=tmp_path).returncode == 0
    assert run("demo", "--file", str(demo), cwd=tmp_path).returncode == 0
    first = sql(demo, "SELECT count(*) FROM journal")
    assert first and first[0][0] > 0


def test_demo_writes_to_the_database_given_with_db_only_if_it_is_empty(tmp_path: Path) -> None:
    target = tmp_path / "mine.db"
    result = run("--db", url(target), "demo", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (tmp_path / "posledger-demo.db").exists()
    entries = sql(target, "SELECT count(*) FROM journal")[0][0]
    again = run("--db", url(target), "demo", cwd=tmp_path)
    assert again.returncode == 2 and "is not empty" in again.stderr
    assert sql(target, "SELECT count(*) FROM journal")[0][0] == entries


def test_db_may_follow_the_command(ingested: Ingested) -> None:
    before = json.loads(run("--db", url(ingested.db), "positions", "--json").stdout)
    after = run("positions", "--json", "--db", url(ingested.db))
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout) == before == ingested.positions


def test_check_order_reads_an_order_as_ingest_does(tmp_path: Path, ingested: Ingested) -> None:
    """A JSON number as quantity is refused by ingest; check-order must refuse it too."""
    order = {
        "type": "order",
        "client_order_id": "new-1",
        "account": "ACC-1",
        "strategy": "alpha",
        "instrument": "FUT.X",
        "side": "BUY",
        "quantity": 1,
        "intent": "entry",
    }
    path = tmp_path / "order.json"
    path.write_text(json.dumps(order))
    checked = run("check-order", str(path), db=ingested.db)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    line = write(tmp_path / "order.jsonl", [order])
    ingested_copy = ingested.copy(tmp_path / "copy.db")
    refused = run("ingest", "--json", str(line), db=ingested_copy)
    (reason,) = [r["reason"] for r in json.loads(refused.stdout)["rejections"]]
    assert reason in checked.stdout
    # the same order with a decimal string, and without "type", is allowed
    del order["type"]
    order["quantity"] = "1"
    path.write_text(json.dumps(order))
    assert run("check-order", str(path), db=ingested.db).stdout.strip() == "allowed"


def test_commands_claim_ack_and_fail_through_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "outbox.db"
    assert run("ingest", str(write(tmp_path / "s.jsonl", SESSION)), db=db).returncode == 0
    # Commands come from brackets (a later feature); put two in as a write set would.
    with open_ledger(url(db)) as ledger:
        uow = ledger.store.unit_of_work()
        uow.begin("test")
        version = uow.stream_version("outbox-test")
        entry = JournalEntry("outbox-test", version + 1, "note", "{}", "{}", 1)
        commands = tuple(
            Command(f"cmd-{n}", "cancel", "ACC-1", "FUT.X", "alpha", '{"order":"o-1"}')
            for n in (1, 2)
        )
        uow.add(WriteSet(entry, (), commands))
        uow.commit()
        uow.close()
    pending = invoke_json("commands", db=db)
    assert [c["command_id"] for c in pending] == ["cmd-1", "cmd-2"]
    assert {c["status"] for c in pending} == {"pending"}
    claimed = invoke_json("commands", "--claim", "worker-1", "--limit", "1", db=db)
    assert [(c["command_id"], c["status"], c["worker"]) for c in claimed] == [
        ("cmd-1", "claimed", "worker-1")
    ]
    assert [c["command_id"] for c in invoke_json("commands", db=db)] == ["cmd-2"]
    acked = invoke("ack", "cmd-1", "--broker-order-id", "88123", db=db)
    assert acked.exit_code == 0 and "acked cancel cmd-1" in acked.output
    assert invoke("ack", "cmd-1", "--broker-order-id", "88123", db=db).exit_code == 0
    failed = invoke("fail", "cmd-2", "--reason", "unknown order", db=db)
    assert failed.exit_code == 0, failed.output
    assert invoke("ack", "cmd-2", db=db).exit_code == 2  # failed is final
    assert invoke("ack", "no-such", db=db).exit_code == 1
    settled = {c["command_id"]: c for c in invoke_json("commands", "--status", "all", db=db)}
    assert settled["cmd-1"]["status"] == "acked"
    assert settled["cmd-1"]["broker_order_id"] == "88123"
    assert settled["cmd-2"]["status"] == "failed"
    assert settled["cmd-2"]["reason"] == "unknown order"
