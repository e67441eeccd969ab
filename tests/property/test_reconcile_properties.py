"""Reconciliation with the broker through the real ledger, over random streams (issue 4).

* Reconciliation after applying the broker's full fill history always ends in agreement:
  the broker's position per (account, instrument, position side) is computed here, from
  the fills alone; the ledger first sees only some of them, then reconciles with that
  snapshot and the whole history.
* Under the ``adopt`` policy (no history), a second reconciliation always agrees, the
  journal still replays to the stored state, and no strategy's slot moved except by an
  orphan transfer the report names.

One SQLite database per test function; every Hypothesis example works under ids of its
own (the prefix of :func:`~tests.property.test_ledger_properties.disjoint`).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posledger import Ledger, open_ledger
from posledger.adapters.records import parse_record
from posledger.domain.enums import EXTERNAL, CheckKind, Side
from posledger.domain.invariants import fill_delta
from posledger.domain.numbers import ZERO, D, fmt
from posledger.domain.refdata import Instrument

from .test_ledger_properties import disjoint
from .world import ACCOUNTS, render, streams

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

Key = tuple[str, str, str]
"""(account, instrument, position side) where the broker keeps one position."""

LATER = "2026-03-03T00:00:00Z"
"""After every generated input: a mark sent at this time is always the newest."""


@dataclass
class Shared:
    """One SQLite ledger, shared by the examples of one test function."""

    ledger: Ledger
    examples: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def prefix(self) -> str:
        return f"r{next(self.examples)}."


@pytest.fixture
def shared(tmp_path: Path) -> Iterator[Shared]:
    with open_ledger(f"sqlite:///{tmp_path / 'reconcile.db'}") as ledger:
        yield Shared(ledger)


# -- the broker, computed from the fills alone -------------------------------------------------


def is_hedge(record: dict[str, object]) -> bool:
    return ACCOUNTS[str(record["account"]).rsplit(".", 1)[-1]] == "hedge"


def fill_key(record: dict[str, object], orders: dict[str, dict[str, object]]) -> Key:
    side = record.get("position_side")
    if side is None and "client_order_id" in record:
        side = orders[str(record["client_order_id"])].get("position_side")
    return (str(record["account"]), str(record["instrument"]), str(side or "BOTH"))


def broker_history(
    records: list[dict[str, object]],
) -> tuple[list[dict[str, object]], dict[Key, Decimal]]:
    """The stream without the fills a hedge-mode broker would not execute (taking a LONG
    position short or a SHORT one long), and what the broker then holds per key."""
    instruments: dict[str, Instrument] = {}
    orders: dict[str, dict[str, object]] = {}
    held: dict[Key, Decimal] = defaultdict(lambda: ZERO)
    kept = []
    for record in records:
        if record["type"] == "instrument":
            item = parse_record(record)
            assert isinstance(item, Instrument)
            instruments[item.instrument] = item
        elif record["type"] == "order":
            orders[str(record["client_order_id"])] = record
        elif record["type"] == "fill":
            key = fill_key(record, orders)
            currency = record.get("commission_currency")
            instrument = instruments[key[1]]
            delta = fill_delta(
                Side(str(record["side"])),
                D(str(record["quantity"])),
                D(str(record.get("commission", "0"))),
                str(currency or instrument.settlement_currency),
                instrument,
            )
            after = held[key] + delta
            if is_hedge(record) and (after < 0 if key[2] == "LONG" else after > 0):
                continue
            held[key] = after
        kept.append(record)
    return kept, dict(held)


def every_key(records: list[dict[str, object]]) -> list[Key]:
    """Every (account, instrument, position side) the stream's accounts could hold."""
    accounts = [r for r in records if r["type"] == "account"]
    instruments = [str(r["instrument"]) for r in records if r["type"] == "instrument"]
    keys = []
    for account in accounts:
        sides = ("LONG", "SHORT") if account["position_mode"] == "hedge" else ("BOTH",)
        for instrument in instruments:
            keys += [(str(account["account"]), instrument, side) for side in sides]
    return keys


def snapshot_line(
    key: Key, quantity: Decimal, *, avg_price: str | None = None, mode: str | None = None
) -> dict[str, object]:
    line: dict[str, object] = {
        "type": "broker_position",
        "account": key[0],
        "instrument": key[1],
        "quantity": fmt(quantity),
        "position_side": key[2],
    }
    if avg_price is not None:
        line["avg_price"] = avg_price
    if mode is not None:
        line["position_mode"] = mode
    return line


def adopting(records: list[dict[str, object]], data: st.DataObject) -> list[dict[str, object]]:
    """The stream with each strategy's ``adopt_orphans`` policy drawn at random."""
    return [
        {**r, "adopt_orphans": data.draw(st.booleans())} if r["type"] == "strategy" else r
        for r in records
    ]


def held_by_key(ledger: Ledger, accounts: set[str]) -> dict[Key, Decimal]:
    held: dict[Key, Decimal] = defaultdict(lambda: ZERO)
    for p in ledger.positions(include_flat=True):
        if p["account"] in accounts:
            held[(p["account"], p["instrument"], p["position_side"])] += D(p["signed_quantity"])
    return {key: quantity for key, quantity in held.items() if quantity}


def strategy_slots(ledger: Ledger, accounts: set[str]) -> dict[tuple[str, ...], Decimal]:
    return {
        (p["account"], p["instrument"], p["position_side"], p["strategy"]): D(p["signed_quantity"])
        for p in ledger.positions(include_flat=True)
        if p["account"] in accounts and p["strategy"] != EXTERNAL
    }


# -- properties ---------------------------------------------------------------------------------


@SETTINGS
@given(records=streams(max_steps=16, invalid=False), data=st.data())
def test_reconciliation_after_the_full_fill_history_agrees(shared: Shared, records, data):
    ledger = shared.ledger
    records = adopting(disjoint(records, shared.prefix()), data)
    records, broker = broker_history(records)
    accounts = {str(r["account"]) for r in records if r["type"] == "account"}
    fills = [r for r in records if r["type"] == "fill"]
    seen = data.draw(st.lists(st.booleans(), min_size=len(fills), max_size=len(fills)))
    missed = [fill for fill, known in zip(fills, seen, strict=True) if not known]

    # the ledger sees the reference data, orders, marks and only some of the fills
    known = [r for r in records if not any(r is m for m in missed)]
    first = ledger.ingest(render(known))
    # orders may be refused (pre-trade, or a hedge order without a side); fills never
    assert all(known[number - 1]["type"] == "order" for number, _ in first.rejections)

    # the broker lists its nonzero positions, and maybe some flat ones
    lines = []
    for key in every_key(records):
        quantity = broker.get(key, ZERO)
        if quantity or data.draw(st.booleans()):
            mode = data.draw(st.sampled_from([None, "hedge" if key[2] != "BOTH" else "netting"]))
            lines.append(snapshot_line(key, quantity, mode=mode))
    policy = data.draw(st.sampled_from(["report", "adopt", "halt"]))
    report = ledger.reconcile(
        render(lines), fills=render(fills), accounts=sorted(accounts), policy=policy
    )

    # every fill of the history was applied exactly once
    assert report.history.rejected == 0, report.history.rejections
    assert report.history.applied == len(missed)
    assert report.history.duplicate == len(fills) - len(missed)
    # and the books agree with the broker, key by key
    assert report.agreed, report.differences
    assert all(check["action"] == "none" for check in report.checks)
    compared = {(c["account"], c["instrument"], c["position_side"]) for c in report.checks}
    assert {key for key, quantity in broker.items() if quantity} <= compared
    assert held_by_key(ledger, accounts) == {k: q for k, q in broker.items() if q}
    assert not [h for h in ledger.halts() if h["account"] in accounts]
    verified = ledger.verify()
    assert verified.ok, verified.problems


@SETTINGS
@given(records=streams(max_steps=14, invalid=False), data=st.data())
def test_after_adopting_a_second_reconciliation_agrees(shared: Shared, records, data):
    ledger = shared.ledger
    records = adopting(disjoint(records, shared.prefix()), data)
    accounts = {str(r["account"]) for r in records if r["type"] == "account"}
    instruments = [str(r["instrument"]) for r in records if r["type"] == "instrument"]
    ingested = [r for r in records if r["type"] != "fill" or data.draw(st.booleans())]
    marked = data.draw(st.booleans())
    if marked:
        ingested += [
            {"type": "mark", "instrument": name, "price": "101.25", "ts": LATER}
            for name in instruments
        ]
    ledger.ingest(render(ingested))

    # whatever the broker says (a LONG side never short, a SHORT side never long)
    amounts = st.sampled_from(["0", "0", "0.5", "1", "2", "3.25"])
    lines = []
    for key in every_key(records):
        if not data.draw(st.booleans()):
            continue  # not listed: the broker holds none of it
        quantity = D(data.draw(amounts))
        if key[2] == "SHORT" or (key[2] == "BOTH" and data.draw(st.booleans())):
            quantity = -quantity
        avg = data.draw(st.sampled_from([None, "99.5", "104"]))
        lines.append(snapshot_line(key, quantity, avg_price=avg if quantity else None))
    before = strategy_slots(ledger, accounts)

    first = ledger.reconcile(render(lines), accounts=sorted(accounts), policy="adopt")
    for check in first.checks:
        if check["kind"] in (CheckKind.AGREE, CheckKind.AVG_PRICE_DRIFT):
            assert check["action"] == "none"
        else:
            assert check["action"] == "adopted" or "not adopted" in check["detail"]
            if marked:
                assert check["action"] == "adopted"

    # a strategy's own slot moved only by an orphan transfer the report names
    after = strategy_slots(ledger, accounts)
    adopted: dict[tuple[str, ...], Decimal] = {}
    for check in first.checks:
        orphan = check["orphan"]
        if orphan is not None and orphan["strategy"] is not None:
            where = (check["account"], check["instrument"], check["position_side"])
            adopted[(*where, orphan["strategy"])] = D(orphan["quantity"])
    for slot in set(before) | set(after):
        moved = after.get(slot, ZERO) - before.get(slot, ZERO)
        assert moved == adopted.get(slot, ZERO), slot

    # quantities now agree wherever the policy could adopt; with the broker's averages
    # left out, that is agreement
    plain = [{k: v for k, v in line.items() if k != "avg_price"} for line in lines]
    second = ledger.reconcile(render(plain), accounts=sorted(accounts), policy="report")
    not_adopted = {
        (c["account"], c["instrument"], c["position_side"])
        for c in first.checks
        if c["kind"] not in (CheckKind.AGREE, CheckKind.AVG_PRICE_DRIFT)
        and c["action"] != "adopted"
    }
    for check in second.differences:
        assert (check["account"], check["instrument"], check["position_side"]) in not_adopted
    if marked:
        assert second.agreed, second.differences
    assert all(check["orphan"] is None for check in second.checks)  # report hands nothing on
    verified = ledger.verify()
    assert verified.ok, verified.problems
