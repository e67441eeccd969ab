"""The HTTP API on every store (docs/service.md): every endpoint, its problems, keys and
what a strategy key may do. The app runs in the test process (Starlette's test client,
lifespan included), on the same stores as the rest of the contract suite."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from posledger import open_ledger
from posledger.entrypoints.http.app import Settings, create_app

from .helpers import fill_record, setup

T = "2026-03-02T"
PROBLEM = "application/problem+json"


def _fill(exec_id: str, side: str, qty: str, price: str, minute: int, **extra: Any) -> str:
    return json.dumps(fill_record(exec_id, side, qty, price, minute, **extra))


def _order(cid: str, strategy: str, side: str = "BUY", qty: str = "2") -> str:
    return json.dumps(
        {
            "type": "order",
            "client_order_id": cid,
            "account": "ACC",
            "strategy": strategy,
            "instrument": "FUT",
            "side": side,
            "quantity": qty,
            "intent": "entry",
            "ts": f"{T}09:59:00Z",
        }
    )


class Api:
    def __init__(self, client: TestClient, admin: str, alpha: str, beta: str) -> None:
        self.client, self.admin, self.alpha, self.beta = client, admin, alpha, beta

    def call(self, method: str, path: str, key: str | None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return self.client.request(method, path, headers=headers, **kwargs)

    def ingest(self, key: str, *lines: str) -> httpx.Response:
        return self.call(
            "POST",
            "/v1/ingest",
            key,
            content="\n".join(lines).encode(),
            headers={"Content-Type": "application/x-ndjson"},
        )


def _api(db_url: str, **settings: Any) -> Iterator[Api]:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        _, admin = ledger.create_key(admin=True, name="ops")
        _, alpha = ledger.create_key(strategy="alpha")
        _, beta = ledger.create_key(strategy="beta")
    app = create_app(Settings(db=db_url, **settings))
    with TestClient(app) as client:
        yield Api(client, admin, alpha, beta)


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    yield from _api(db_url)


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["type"] and body["title"] and body["detail"]
    return body


def test_health_needs_no_key_and_everything_else_does(api: Api) -> None:
    assert api.call("GET", "/healthz", None).json() == {"status": "ok"}
    assert api.call("GET", "/readyz", None).json() == {"status": "ready"}
    assert "/v1/ingest" in api.call("GET", "/openapi.json", None).json()["paths"]
    for method, path in [("GET", "/v1/positions"), ("POST", "/v1/ingest")]:
        missing = api.call(method, path, None)
        assert _problem(missing, 401)["detail"].startswith("send a key")
        assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = api.call("GET", "/v1/positions", "plk_0000000000000000_notthekey")
    assert _problem(wrong, 401)["detail"] == "the key is unknown or revoked"


def test_ingest_applies_each_line_once_and_reads_show_it(api: Api) -> None:
    first = api.ingest(
        api.admin,
        _order("o-1", "alpha"),
        _fill("f1", "BUY", "2", "100", 1, client_order_id="o-1"),
        "",
        '{"type": "fill", "exec_id": "bad"}',
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["applied"], body["duplicate"], body["rejected"]) == (2, 0, 1)
    lines = [(o["line"], o["status"], o["kind"], o["key"]) for o in body["outcomes"]]
    assert lines == [(1, "applied", "order", "o-1"), (2, "applied", "fill", "f1"),
                     (4, "rejected", None, None)]  # fmt: skip
    assert body["outcomes"][1]["seq"] > body["outcomes"][0]["seq"] > 0
    assert "missing" in body["outcomes"][2]["reason"]
    again = api.ingest(api.admin, _fill("f1", "BUY", "2", "100", 1, client_order_id="o-1"))
    assert again.json()["duplicate"] == 1
    (slot,) = api.call("GET", "/v1/positions", api.admin).json()
    assert (slot["strategy"], slot["quantity"], slot["avg_entry_price"]) == ("alpha", "2", "100")
    (trade,) = api.call("GET", "/v1/trades", api.admin, params={"status": "open"}).json()
    assert trade["strategy"] == "alpha" and trade["quantity"] == "2"
    pnl = api.call("GET", "/v1/pnl", api.admin, params={"by": "strategy"}).json()
    assert [row["strategy"] for row in pnl] == ["alpha"]
    (kept,) = api.call("GET", "/v1/rejected", api.admin).json()
    assert kept["source"].startswith("key ") and "missing" in kept["reason"]
    entries = api.call("GET", "/v1/journal", api.admin, params={"after_seq": 0}).json()
    assert [e["kind"] for e in entries][-2:] == ["order", "fill"]
    # The audit trail: which key sent each input (the setup came from the Python API).
    admin_id = api.admin.split("_")[1]
    assert [e["key_id"] for e in entries][-2:] == [admin_id, admin_id]
    assert entries[0]["key_id"] is None


def test_a_json_object_or_array_is_a_body_too(api: Api) -> None:
    one = api.call("POST", "/v1/ingest", api.admin, json=json.loads(_order("o-1", "alpha")))
    assert one.json()["applied"] == 1
    fills = [json.loads(_fill(f"f{n}", "BUY", "1", "100", n, strategy="beta")) for n in (1, 2)]
    many = api.call("POST", "/v1/ingest", api.admin, json=fills)
    assert many.json()["applied"] == 2
    broken = api.call(
        "POST", "/v1/ingest", api.admin, content=b"[{", headers={"Content-Type": "application/json"}
    )
    _problem(broken, 400)


def test_a_strategy_key_acts_for_its_strategy_alone(api: Api) -> None:
    assert api.ingest(api.admin, _order("b-1", "beta")).json()["applied"] == 1
    journal_before = len(api.call("GET", "/v1/journal", api.admin).json())
    refused = [
        [_order("a-1", "alpha"), _order("x-1", "beta")],  # another's order, after its own
        [_fill("f1", "BUY", "1", "100", 1, strategy="beta")],
        [_fill("f2", "BUY", "1", "100", 2, client_order_id="b-1", strategy="alpha")],
        [_fill("f3", "BUY", "1", "100", 3)],  # names nobody: EXTERNAL's
        ['{"type": "cancel", "client_order_id": "b-1", "ts": "2026-03-02T10:00:00Z"}'],
        ['{"type": "mark", "instrument": "FUT", "price": "1", "ts": "2026-03-02T10:00:00Z"}'],
        ['{"type": "halt", "account": "ACC", "instrument": "FUT"}'],
        ['{"type": "strategy", "strategy": "gamma"}'],
        [
            '{"type": "transfer", "account": "ACC", "instrument": "FUT", "from_strategy": '
            '"beta", "to_strategy": "alpha", "quantity": "1"}'
        ],
    ]
    for lines in refused:
        answer = api.ingest(api.alpha, *lines)
        assert "nothing was applied" in _problem(answer, 403)["detail"], lines
    assert len(api.call("GET", "/v1/journal", api.admin).json()) == journal_before
    # Its own: an order, a fill of it, a fill naming it, a cancel of its order.
    mine = api.ingest(
        api.alpha,
        _order("a-1", "alpha"),
        _fill("f4", "BUY", "1", "100", 4, client_order_id="a-1"),
        _fill("f5", "BUY", "1", "101", 5, strategy="alpha"),
        '{"type": "cancel", "client_order_id": "a-1", "ts": "2026-03-02T10:06:00Z"}',
    )
    assert mine.json()["applied"] == 4, mine.text
    seqs = {o["seq"] for o in mine.json()["outcomes"]}
    audit = api.call("GET", "/v1/journal", api.admin).json()
    assert {e["key_id"] for e in audit if e["seq"] in seqs} == {api.alpha.split("_")[1]}
    assert (
        api.ingest(api.beta, _fill("f6", "BUY", "3", "99", 6, client_order_id="b-1")).json()[
            "applied"
        ]
        == 1
    )
    # It reads its own slots, trades and P&L only; asking for another's is refused.
    seen = api.call("GET", "/v1/positions", api.alpha).json()
    assert [(s["strategy"], s["quantity"]) for s in seen] == [("alpha", "2")]
    assert {t["strategy"] for t in api.call("GET", "/v1/trades", api.alpha).json()} == {"alpha"}
    assert {r["strategy"] for r in api.call("GET", "/v1/pnl", api.alpha).json()} == {"alpha"}
    for path in ("/v1/positions", "/v1/trades", "/v1/anomalies", "/v1/pnl"):
        _problem(api.call("GET", path, api.alpha, params={"strategy": "beta"}), 403)
    for path in ("/v1/rejected", "/v1/reconciliations", "/v1/journal"):
        _problem(api.call("GET", path, api.alpha), 403)
    assert api.call("POST", "/v1/commands/claim", api.alpha, params={"worker": "w"}).json() == []
    asked = {"worker": "w", "strategy": "beta"}
    _problem(api.call("POST", "/v1/commands/claim", api.alpha, params=asked), 403)
    _problem(api.call("POST", "/v1/reconcile", api.alpha, content=b""), 403)
    everyone = api.call("GET", "/v1/positions", api.admin).json()
    assert {s["strategy"] for s in everyone} == {"alpha", "beta"}


def test_a_revoked_key_is_refused(db_url: str) -> None:
    for api in _api(db_url, key_seconds=0):
        assert api.call("GET", "/v1/positions", api.beta).status_code == 200
        with open_ledger(db_url) as ledger:
            (beta,) = [k for k in ledger.api_keys() if k["strategy"] == "beta"]
            ledger.revoke_key(beta["key_id"])
            assert [k["revoked_at"] is not None for k in ledger.api_keys()].count(True) == 1
        _problem(api.call("GET", "/v1/positions", api.beta), 401)


def test_errors_are_problems_with_the_ledgers_reasons(api: Api) -> None:
    unknown = api.call("GET", "/v1/positions", api.admin, params={"strategy": "nobody"})
    assert "no strategy 'nobody'" in _problem(unknown, 404)["detail"]
    invalid = api.call("GET", "/v1/trades", api.admin, params={"status": "maybe"})
    assert _problem(invalid, 422)["errors"][0]["where"] == "query.status"
    bad_tz = api.call("GET", "/v1/pnl", api.admin, params={"tz": "Mars/Olympus"})
    _problem(bad_tz, 400)
    assert api.call("GET", "/v1/nothing", api.admin).status_code == 404
    refused = api.call("POST", "/v1/reconcile", api.admin, content=b'{"type": "broker_position"}\n')
    assert _problem(refused, 422)["reasons"]


def test_a_body_too_large_or_too_many_requests_is_refused(db_url: str) -> None:
    for api in _api(db_url, max_body=200, rate=1.0):
        big = api.ingest(api.admin, *[_order(f"o-{n}", "alpha") for n in range(5)])
        assert "at most 200 bytes" in _problem(big, 413)["detail"]
        answers = [api.call("GET", "/healthz", api.alpha) for _ in range(3)]
        assert all(a.status_code == 200 for a in answers)  # health is not rate-limited
        limited = [api.call("GET", "/v1/positions", api.alpha) for _ in range(4)]
        codes = [a.status_code for a in limited]
        assert codes[:2] == [200, 200] and 429 in codes, codes
        slow = limited[codes.index(429)]
        _problem(slow, 429)
        assert int(slow.headers["retry-after"]) >= 1
        assert api.call("GET", "/v1/positions", api.beta).status_code == 200  # per key


def _bracket(strategy: str) -> dict[str, str]:
    return {
        "type": "bracket",
        "account": "ACC",
        "instrument": "FUT",
        "strategy": strategy,
        "take_profit": "110",
        "stop_loss": "95",
    }


def test_commands_claim_ack_and_fail_through_the_api(api: Api) -> None:
    assert (
        api.ingest(api.admin, _fill("f1", "BUY", "2", "100", 1, strategy="alpha")).json()["applied"]
        == 1
    )
    bracket = _bracket("alpha")
    assert api.call("POST", "/v1/ingest", api.alpha, json=bracket).json()["applied"] == 1
    pending = api.call("GET", "/v1/commands", api.alpha, params={"status": "pending"}).json()
    assert len(pending) == 2 and {c["strategy"] for c in pending} == {"alpha"}
    assert api.call("GET", "/v1/commands", api.beta).json() == []
    claimed = api.call("POST", "/v1/commands/claim", api.admin, params={"worker": "w1"}).json()
    assert sorted(c["command_id"] for c in claimed) == sorted(c["command_id"] for c in pending)
    first, second = (c["command_id"] for c in claimed)
    _problem(api.call("POST", f"/v1/commands/{first}/ack", api.beta), 403)
    acked = api.call(
        "POST", f"/v1/commands/{first}/ack", api.alpha, params={"broker_order_id": "B-1"}
    )
    assert acked.json()["status"] == "acked", acked.text
    failed = api.call(
        "POST", f"/v1/commands/{second}/fail", api.admin, params={"reason": "rejected: margin"}
    )
    assert failed.json()["status"] == "failed"
    _problem(api.call("POST", "/v1/commands/nope/ack", api.admin), 404)


def test_a_strategy_key_claims_its_strategys_commands_alone(api: Api) -> None:
    for minute, (strategy, key) in enumerate([("alpha", api.alpha), ("beta", api.beta)], 1):
        opened = api.ingest(
            api.admin, _fill(f"f{minute}", "BUY", "2", "100", minute, strategy=strategy)
        )
        assert opened.json()["applied"] == 1, opened.text
        assert api.call("POST", "/v1/ingest", key, json=_bracket(strategy)).json()["applied"] == 1

    def pending() -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for c in api.call("GET", "/v1/commands", api.admin, params={"status": "pending"}).json():
            found.setdefault(c["strategy"], set()).add(c["command_id"])
        return found

    def claim(key: str, **params: Any) -> httpx.Response:
        return api.call("POST", "/v1/commands/claim", key, params=params)

    before = pending()
    alphas, betas = before["alpha"], before["beta"]
    assert len(alphas) == len(betas) == 2
    for asked in (["beta"], ["alpha", "beta"]):  # another's, alone or beside its own
        refused = claim(api.alpha, worker="w1", strategy=asked)
        detail = _problem(refused, 403)["detail"]
        assert detail == "a key of strategy alpha claims alpha's commands only, not beta's"
    assert pending() == before  # a refused claim claims nothing

    mine = claim(api.alpha, worker="w1").json()
    assert {c["command_id"] for c in mine} == alphas
    assert {(c["strategy"], c["worker"], c["status"]) for c in mine} == {("alpha", "w1", "claimed")}
    assert pending() == {"beta": betas}  # beta's stay pending
    assert claim(api.alpha, worker="w1", strategy="alpha").json() == []  # none of its own left
    (one,) = claim(api.beta, worker="w2", strategy="beta", limit=1).json()
    assert one["command_id"] in betas

    # An admin key claims any strategy's, or those of the strategies it names.
    assert claim(api.admin, worker="w3", strategy="alpha").json() == []  # w1 holds them
    (other,) = claim(api.admin, worker="w3").json()
    assert {one["command_id"], other["command_id"]} == betas
    assert pending() == {}
    unknown = claim(api.admin, worker="w3", strategy=["beta", "nobody"])
    assert "no strategy 'nobody'" in _problem(unknown, 404)["detail"]


def test_check_order_answers_without_registering(api: Api) -> None:
    answer = api.call("POST", "/v1/check-order", api.alpha, content=_order("o-9", "alpha"))
    assert answer.json() == {"allowed": True, "reasons": []}
    exit_order = json.loads(_order("o-10", "alpha", side="SELL"))
    exit_order["intent"] = "exit"
    refused = api.call("POST", "/v1/check-order", api.alpha, json=exit_order)
    assert refused.json()["allowed"] is False and refused.json()["reasons"]
    _problem(api.call("POST", "/v1/check-order", api.beta, content=_order("o-9", "alpha")), 403)
    assert (
        api.call("GET", "/v1/journal", api.admin, params={"after_seq": 0}).json()[-1]["kind"]
        != "order"
    )


def test_concurrent_requests_each_get_their_own_outcomes(db_url: str) -> None:
    """Sixteen clients at once: the writer may apply several requests in one transaction,
    and each is answered with its own lines' outcomes."""
    with open_ledger(db_url) as ledger:
        setup(ledger)
        _, admin = ledger.create_key(admin=True)
    app = create_app(Settings(db=db_url))

    async def run() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                headers = {"Authorization": f"Bearer {admin}"}

                async def send(n: int) -> httpx.Response:
                    body = "\n".join(
                        _fill(f"c{n}-{k}", "BUY", "1", "100", k, strategy="alpha") for k in range(3)
                    )
                    return await client.post("/v1/ingest", content=body, headers=headers)

                return list(await asyncio.gather(*(send(n) for n in range(16))))

    answers = asyncio.run(run())
    for n, answer in enumerate(answers):
        keys = [o["key"] for o in answer.json()["outcomes"]]
        assert keys == [f"c{n}-{k}" for k in range(3)]
        assert answer.json()["applied"] == 3
    with open_ledger(db_url) as ledger:
        (slot,) = ledger.positions()
        assert slot["quantity"] == "48"
