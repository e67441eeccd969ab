"""Decimals round-trip digit for digit on every store (docs/accounting.md, Numbers;
docs/format.md, Limits: NUMERIC(38, 18) on the servers, canonical text on SQLite and in
memory).

Amounts with up to 20 integer and 18 fractional digits, negative, zero, tiny and huge, are
written through the real ledger (an instrument and two fills per example) and read back
through ``positions``, ``trades``, the journal and the stored rows as the store reads them
(``ledger.store.reads().table``), on every store; on the SQL databases also through the
raw columns (SQLAlchemy Core, with and without posledger's ``Amount`` type): a memory
store has no driver to return raw values. One store per test function; each example uses
its own instrument and exec ids, so the examples never touch each other's slots.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, text

from posledger import Ledger, open_ledger
from posledger.domain.numbers import MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS, fmt
from posledger.store import schema

from .helpers import T, engine, entries, is_sql

WIDEST = "99999999999999999999.999999999999999999"
SMALLEST = "0.000000000000000001"


@st.composite
def amounts(draw: st.DrawFn, *, positive: bool = False) -> Decimal:
    """Up to 20 integer and 18 fractional digits, trailing zeros kept as drawn."""
    scale = draw(st.integers(0, MAX_FRACTION_DIGITS))
    bound = 10 ** (MAX_INTEGER_DIGITS + scale) - 1
    units = draw(st.integers(1 if positive else -bound, bound))
    return Decimal(f"{units}E-{scale}")  # exact: scaleb() would round to 28 digits


def given_as(value: Decimal, how: str) -> str | Decimal:
    """The amount as the API is handed it: plain text (trailing zeros and all) or a Decimal."""
    return format(value, "f") if how == "text" else value


LEG = st.tuples(amounts(positive=True), amounts(), amounts(), st.sampled_from(["text", "decimal"]))
"""quantity, price, commission of one fill, and how they are handed over."""
REFDATA = st.tuples(amounts(positive=True), amounts(positive=True), amounts(positive=True))
"""multiplier, tick_size, lot_size of the example's instrument."""


Prepared = tuple[Ledger, Engine | None, Iterator[int]]


@pytest.fixture
def prepared(db_url: str) -> Iterator[Prepared]:
    """The ledger, a plain SQLAlchemy engine on its database (None on the memory store: no
    SQL database to read raw columns from) and the examples' counter."""
    with open_ledger(db_url) as ledger, ExitStack() as stack:
        reader = stack.enter_context(engine(db_url)) if is_sql(db_url) else None
        outcomes = [
            ledger.register_account(account="ACC", venue="V", mode="SIM", position_mode="netting"),
            ledger.register_strategy(strategy="alpha"),
            ledger.register_strategy(strategy="beta"),
        ]
        assert all(outcome.applied for outcome in outcomes), outcomes
        yield ledger, reader, itertools.count(1)


def same(actual: Any, expected: Decimal, where: object) -> None:
    """Equal as a Decimal and as canonical text; raw SQLite text must be canonical already."""
    if isinstance(actual, str):
        assert actual == fmt(expected), (where, actual, expected)
        actual = Decimal(actual)
    assert isinstance(actual, Decimal), (where, type(actual), actual)
    assert actual == expected, (where, actual, expected)
    assert fmt(actual) == fmt(expected), (where, actual, expected)


def stored(
    ledger: Ledger, reader: Engine | None, table: Any, columns: list[str], where: Any
) -> list[tuple[Any, Any]]:
    """(raw driver value, typed value) of each column of one row. Typed as the store reads
    it back, on every store (on the SQL databases the same as through SQLAlchemy Core and
    the Amount type); raw only on the SQL databases (None in memory: no driver)."""
    found = [
        row
        for row in ledger.store.reads().table(table.name)
        if all(row[name] == value for name, value in where.items())
    ]
    assert len(found) == 1, (table.name, where, found)
    typed = [found[0][name] for name in columns]
    if reader is None:
        return [(None, value) for value in typed]
    pairs = raw_and_typed(reader, table, columns, where)
    assert [value for _, value in pairs] == typed, (table.name, where, pairs, typed)
    return pairs


def same_stored(pair: tuple[Any, Any], expected: Decimal, where: tuple[Any, ...]) -> None:
    raw, typed = pair
    if raw is not None:  # a SQL database's driver value (see stored())
        same(raw, expected, (*where, "raw"))
    same(typed, expected, (*where, "typed"))


def raw_and_typed(reader: Engine, table: Any, columns: list[str], where: Any) -> list[Any]:
    """(raw driver value, value through the Amount type) of each column of one row."""
    names = ", ".join(columns)
    clause = " AND ".join(f"{name} = :{name}" for name in where)
    with reader.connect() as conn:
        (raw,) = conn.execute(text(f"SELECT {names} FROM {table.name} WHERE {clause}"), where)
        query = select(*(table.c[name] for name in columns))
        for name, value in where.items():
            query = query.where(table.c[name] == value)
        (typed,) = conn.execute(query)
    return list(zip(raw, typed, strict=True))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(refdata=REFDATA, buy=LEG, sell=LEG)
@example(
    refdata=(Decimal(WIDEST), Decimal(SMALLEST), Decimal(WIDEST)),
    buy=(Decimal(WIDEST), Decimal("-" + WIDEST), Decimal("-" + WIDEST), "text"),
    sell=(Decimal(SMALLEST), Decimal(SMALLEST), Decimal(0), "text"),
)
@example(
    refdata=(Decimal(SMALLEST), Decimal(WIDEST), Decimal(SMALLEST)),
    buy=(Decimal(SMALLEST), Decimal(WIDEST), Decimal(WIDEST), "decimal"),
    sell=(Decimal(WIDEST), Decimal(0), Decimal("-" + SMALLEST), "decimal"),
)
@example(
    refdata=(Decimal("1"), Decimal("0.25"), Decimal("1")),
    buy=(Decimal("12345678901234567890"), Decimal("0.123456789012345678"), Decimal(0), "text"),
    sell=(Decimal("1.500"), Decimal("-0.000"), Decimal("-12.50"), "text"),
)
@example(  # 29 significant digits: nothing overflows, a digit could still be lost
    refdata=(Decimal("1"), Decimal("0.01"), Decimal("1")),
    buy=(Decimal("2"), Decimal("100.5"), Decimal("12345678901.123456789012345678"), "text"),
    sell=(Decimal("3"), Decimal("99.25"), Decimal("-98765432109.876543210987654321"), "text"),
)
def test_amounts_round_trip_digit_for_digit(
    prepared: Prepared,
    refdata: tuple[Decimal, Decimal, Decimal],
    buy: tuple[Decimal, Decimal, Decimal, str],
    sell: tuple[Decimal, Decimal, Decimal, str],
) -> None:
    ledger, reader, counter = prepared
    n = next(counter)
    instrument = f"I{n}"
    multiplier, tick_size, lot_size = refdata
    registered = ledger.register_instrument(
        instrument=instrument,
        kind="future",
        multiplier=format(multiplier, "f"),
        tick_size=format(tick_size, "f"),
        lot_size=lot_size,
        quote_currency="USD",
        settlement_currency="USD",
    )
    assert registered.applied, registered
    legs = {"alpha": ("BUY", f"b{n}", *buy), "beta": ("SELL", f"s{n}", *sell)}
    for strategy, (side, exec_id, quantity, price, commission, how) in legs.items():
        out = ledger.apply_fill(
            exec_id=exec_id,
            account="ACC",
            instrument=instrument,
            side=side,
            quantity=given_as(quantity, how),
            price=given_as(price, how),
            commission=given_as(commission, how),
            commission_currency="USD",
            ts=f"{T}10:00:00Z",
            strategy=strategy,
        )
        assert out.applied, out

    # reference data
    pairs = stored(
        ledger,
        reader,
        schema.instruments,
        ["multiplier", "tick_size", "lot_size"],
        {"instrument": instrument},
    )
    for pair, expected in zip(pairs, refdata, strict=True):
        same_stored(pair, expected, (instrument,))

    positions = {p["strategy"]: p for p in ledger.positions(instrument=instrument)}
    trades = {t["strategy"]: t for t in ledger.trades(instrument=instrument)}
    assert set(positions) == set(trades) == {"alpha", "beta"}
    for strategy, (side, exec_id, quantity, price, commission, _how) in legs.items():
        # (copy_negate: unary minus would round to the default context's 28 digits)
        signed = quantity if side == "BUY" else quantity.copy_negate()
        net = commission.copy_negate()
        where = (instrument, strategy)
        # the fill's columns
        pairs = stored(
            ledger,
            reader,
            schema.fills,
            ["quantity", "price", "commission"],
            {"account": "ACC", "exec_id": exec_id},
        )
        for pair, expected in zip(pairs, (quantity, price, commission), strict=True):
            same_stored(pair, expected, (*where, "fills"))
        # the slot's columns
        pairs = stored(
            ledger,
            reader,
            schema.slots,
            ["quantity", "avg_entry", "last_price"],
            {"instrument": instrument, "strategy": strategy},
        )
        for pair, expected in zip(pairs, (signed, price, price), strict=True):
            same_stored(pair, expected, (*where, "slots"))
        # the trade's columns
        trade = trades[strategy]
        pairs = stored(
            ledger,
            reader,
            schema.trades,
            ["quantity", "peak_quantity", "avg_entry", "entry_quantity", "realized_pnl"],
            {"trade_id": trade["trade_id"]},
        )
        wanted = (quantity, quantity, price, quantity, net)
        for pair, expected in zip(pairs, wanted, strict=True):
            same_stored(pair, expected, (*where, "trades"))

        # what the API says
        position = positions[strategy]
        assert position["signed_quantity"] == fmt(signed), (where, position)
        assert position["quantity"] == fmt(quantity), (where, position)
        assert position["avg_entry_price"] == fmt(price), (where, position)
        assert position["last_price"] == fmt(price), (where, position)
        assert position["realized_pnl"] == fmt(net), (where, position)
        assert position["commissions"] == {"USD": fmt(commission)}, (where, position)
        assert trade["quantity"] == trade["peak_quantity"] == fmt(quantity), (where, trade)
        assert trade["avg_entry_price"] == fmt(price), (where, trade)
        assert trade["realized_pnl"] == fmt(net), (where, trade)
        assert trade["commissions"] == {"USD": fmt(commission)}, (where, trade)
        (leg,) = trade["fills"]
        assert (leg["quantity"], leg["price"], leg["commission"]) == (
            fmt(quantity),
            fmt(price),
            fmt(commission),
        ), (where, leg)

        # the journal keeps the input as given, to the digit
        (entry,) = journal_inputs(ledger, exec_id)
        record = json.loads(entry)
        for name, expected in (
            ("quantity", quantity),
            ("price", price),
            ("commission", commission),
        ):
            journaled = Decimal(record.get(name, "0"))
            assert journaled == expected, (where, name, record)
            assert fmt(journaled) == fmt(expected), (where, name, record)

    report = ledger.verify()
    assert report.ok, report.problems


def journal_inputs(ledger: Ledger, exec_id: str) -> list[str]:
    """The journaled inputs of the fills of that exec_id (through the public API)."""
    found = [entry[4] for entry in entries(ledger) if entry[3] == "fill"]
    return [entry for entry in found if json.loads(entry).get("exec_id") == exec_id]
