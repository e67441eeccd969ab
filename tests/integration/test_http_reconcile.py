"""``POST /v1/reconcile`` on every store (docs/service.md, Endpoints): a snapshot alone,
and a snapshot with the broker's fill history, whose unseen fills are applied first,
exactly once, as ``posledger reconcile --fills`` does."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from posledger import open_ledger
from posledger.entrypoints.http.app import Settings, create_app

from .helpers import fill_record, setup


def _position(quantity: str) -> dict[str, str]:
    return {"type": "broker_position", "account": "ACC", "instrument": "FUT", "quantity": quantity}


@pytest.fixture
def served(db_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        _, admin = ledger.create_key(admin=True)
    with TestClient(create_app(Settings(db=db_url, rate=1e6))) as client:
        yield client, {"Authorization": f"Bearer {admin}"}


def test_a_snapshot_with_the_brokers_fills_applies_the_unseen_ones_first(
    served: tuple[TestClient, dict[str, str]],
) -> None:
    client, admin = served
    seen = json.dumps(fill_record("f1", "BUY", "2", "100", 1, strategy="alpha"))
    assert client.post("/v1/ingest", content=seen, headers=admin).json()["applied"] == 1
    # The broker holds 3: f1 and a fill the ledger never got (f2, naming nobody).
    missed = fill_record("f2", "BUY", "1", "101", 2)
    body = [_position("3"), json.loads(seen), missed]
    first = client.post("/v1/reconcile", json=body, headers=admin)
    assert first.status_code == 200, first.text
    report = first.json()
    assert report["agreed"] is True and report["differences"] == 0
    history = report["fill_history"]
    assert (history["lines"], history["applied"], history["duplicate"]) == (2, 1, 1)
    # The same again (JSON Lines this time): nothing is applied twice, and it agrees.
    again = client.post(
        "/v1/reconcile",
        content="\n".join(json.dumps(r) for r in body).encode(),
        headers={**admin, "Content-Type": "application/x-ndjson"},
    ).json()
    assert again["agreed"] is True
    assert (again["fill_history"]["applied"], again["fill_history"]["duplicate"]) == (0, 2)
    slots = client.get("/v1/positions", headers=admin).json()
    assert sorted((s["strategy"], s["quantity"]) for s in slots) == [
        ("EXTERNAL", "1"),
        ("alpha", "2"),
    ]


def test_a_snapshot_alone_reports_what_differs(
    served: tuple[TestClient, dict[str, str]],
) -> None:
    client, admin = served
    seen = json.dumps(fill_record("f1", "BUY", "2", "100", 1, strategy="alpha"))
    assert client.post("/v1/ingest", content=seen, headers=admin).json()["applied"] == 1
    report = client.post("/v1/reconcile", json=[_position("5")], headers=admin).json()
    assert report["agreed"] is False and report["differences"] == 1
    assert "fill_history" not in report
    (check,) = client.get("/v1/reconciliations", headers=admin).json()
    assert check["run"] == report["run"]
