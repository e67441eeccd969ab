"""A strategy key's lines are checked twice (docs/service.md, What a strategy key may do):
when the request arrives, against what the database holds then, and again inside the
transaction that applies them, against what that transaction reads. The second check is
what holds when another process registers an order between the two: on every store."""

from __future__ import annotations

import json

from posledger import open_ledger
from posledger.adapters.jsonl import read_lines

from .helpers import fill_record, setup

ORDER = {
    "type": "order",
    "client_order_id": "a-1",
    "account": "ACC",
    "strategy": "alpha",
    "instrument": "FUT",
    "side": "BUY",
    "quantity": "2",
    "intent": "entry",
    "ts": "2026-03-02T09:59:00Z",
}


def test_an_order_registered_after_the_check_is_still_anothers(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        _, token = ledger.create_key(strategy="beta")
    fill = json.dumps(fill_record("f1", "BUY", "2", "100", 1, client_order_id="a-1"))
    with open_ledger(db_url) as writer, open_ledger(db_url) as other:
        beta = writer.authenticate(token)
        assert beta is not None and beta.strategy == "beta"
        (line,) = read_lines([fill])
        # The request's check: a-1 is nobody's yet, and a key may send a fill of an
        # order nobody registered only if it names its own strategy; this one names
        # none, so it is refused ...
        assert writer.refusal(beta, line.item, {}) is not None
        # ... but naming beta, it passes.
        named = json.dumps(
            fill_record("f1", "BUY", "2", "100", 1, client_order_id="a-1", strategy="beta")
        )
        (line,) = read_lines([named])
        assert writer.refusal(beta, line.item, {}) is None
        # Another process registers a-1 for alpha before the line is applied.
        assert other.ingest([json.dumps(ORDER)]).applied == 1
        (outcome,) = writer.apply_lines([(line, "key beta", beta.key_id)], {beta.key_id: "beta"})
    assert outcome.status == "rejected", outcome
    assert outcome.reason == "forbidden: order a-1 is strategy alpha's: its fills are too"
    with open_ledger(db_url) as ledger:
        assert ledger.positions() == []
        (kept,) = ledger.rejected_inputs()
        assert kept["reason"] == outcome.reason and kept["source"] == "key beta"
        # An admin key's line (no scope) of the order is attributed as usual: to alpha.
        (line,) = read_lines([fill])
        (applied,) = ledger.apply_lines([(line, "ops", None)])
        assert applied.status == "applied"
        assert [(s["strategy"], s["quantity"]) for s in ledger.positions()] == [("alpha", "2")]
