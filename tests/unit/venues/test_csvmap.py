"""CSV exports through a TOML mapping (posledger.venues.csvmap), on the constructed samples
of tests/fixtures/venues/csv/ (SOURCES.md there)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from posledger import Ledger, open_ledger
from posledger.venues.base import SymbolMap
from posledger.venues.csvmap import (
    Mapping,
    MappingError,
    load_mapping,
    parse_csv,
    parse_rows,
    preview,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "venues" / "csv"
IBKR_SYMBOLS = SymbolMap("ibkr", {("U1234567", "AAPL"): "AAPL", ("U1234567", "ESM4"): "ES-2024-06"})


def mapping_of(name: str) -> Mapping:
    return load_mapping((FIXTURES / f"{name}.toml").read_text())


def parse_fixture(name: str, symbols: SymbolMap | None = None) -> Any:
    return parse_csv((FIXTURES / f"{name}.csv").read_bytes(), mapping_of(name), symbols=symbols)


def fill(
    exec_id: str,
    account: str,
    instrument: str,
    side: str,
    quantity: str,
    price: str,
    ts: str,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "type": "fill",
        "exec_id": exec_id,
        "account": account,
        "instrument": instrument,
        "side": side,
        "quantity": quantity,
        "price": price,
        "ts": ts,
        **extra,
    }


IBKR = [
    fill(
        "0000e0d5.65ead2a1.01.01",
        "U1234567",
        "AAPL",
        "BUY",
        "100",
        "170.12",
        "2024-03-08T09:30:12-05:00",
        commission="1",
        commission_currency="USD",
        client_order_id="alpha-17",
    ),
    fill(
        "0000e0d5.65ead2a2.01.01",
        "U1234567",
        "AAPL",
        "BUY",
        "50",
        "170.1",
        "2024-03-08T09:30:13-05:00",
        commission="0.5",
        commission_currency="USD",
        client_order_id="alpha-17",
    ),
    fill(
        "0000f1a3.65ef0c12.02.01",
        "U1234567",
        "ES-2024-06",
        "BUY",
        "1",
        "5150.25",
        "2024-03-11T10:00:00-04:00",
        commission="2.25",
        commission_currency="USD",
        client_order_id="alpha-18",
    ),
    fill(
        "0000e0d5.65ef6a03.01.01",
        "U1234567",
        "AAPL",
        "SELL",
        "150",
        "172.5",
        "2024-03-11T15:45:02-04:00",
        commission="1.0345",
        commission_currency="USD",
        client_order_id="alpha-19",
    ),
]

FLATEX = [
    fill(
        "1184529713",
        "FLATEX-1",
        "DE0007030033",
        "BUY",
        "10",
        "1052.4",
        "2025-03-28T09:04:17+01:00",
        commission="5.9",
        commission_currency="EUR",
    ),
    fill(
        "1184529714",
        "FLATEX-1",
        "DE0007030033",
        "BUY",
        "5",
        "1052.6",
        "2025-03-28T09:04:17+01:00",
        commission="0",
        commission_currency="EUR",
    ),
    fill(
        "1185102266",
        "FLATEX-1",
        "DE0007030033",
        "SELL",
        "15",
        "1210",
        "2025-03-31T15:32:08+02:00",
        commission="5.9",
        commission_currency="EUR",
    ),
    fill(
        "1185117020",
        "FLATEX-1",
        "IE00B4L5Y983",
        "BUY",
        "12.3456",
        "96.934",
        "2025-03-31T17:29:55+02:00",
        commission="0",
        commission_currency="EUR",
    ),
]

APPLE_1 = "3f1b5c9e-8d2a-4c61-9a0e-5b7d2e4f8a11"
APPLE_2 = "9a07c2d4-1e55-4b3f-8c6a-0f2d7e9b3c45"
VWRL = "c5e8a1f3-6b2d-4a9e-b7c0-3d1f5e8a2b96"
DEGIRO = [
    fill(
        f"{APPLE_1} 05-03-2024 15:31 12 170.7300",
        "DEGIRO-1",
        "US0378331005",
        "BUY",
        "12",
        "170.73",
        "2024-03-05T15:31:00+01:00",
        commission="2",
        commission_currency="EUR",
        client_order_id=APPLE_1,
    ),
    fill(
        f"{APPLE_1} 05-03-2024 15:31 3 170.7400",
        "DEGIRO-1",
        "US0378331005",
        "BUY",
        "3",
        "170.74",
        "2024-03-05T15:31:00+01:00",
        client_order_id=APPLE_1,
    ),
    fill(
        f"{APPLE_2} 27-03-2024 16:02 -15 173.1500",
        "DEGIRO-1",
        "US0378331005",
        "SELL",
        "15",
        "173.15",
        "2024-03-27T16:02:00+01:00",
        commission="2",
        commission_currency="EUR",
        client_order_id=APPLE_2,
    ),
    fill(
        f"{VWRL} 02-04-2024 09:00 4 111.0200",
        "DEGIRO-1",
        "IE00B3RBWM25",
        "BUY",
        "4",
        "111.02",
        "2024-04-02T09:00:00+02:00",
        commission="1",
        commission_currency="EUR",
        client_order_id=VWRL,
    ),
]


# -- the samples -----------------------------------------------------------------------


def test_the_ibkr_flex_sample_gives_its_executions_exactly() -> None:
    parsed = parse_fixture("ibkr_flex_trades", IBKR_SYMBOLS)
    assert list(parsed.fills) == IBKR
    assert parsed.rejections == ()
    assert dict(parsed.extra) == {"rows": 6, "skipped": 2}  # SYMBOL_SUMMARY, ORDER


def test_the_european_sample_keeps_decimal_commas_exact() -> None:
    parsed = parse_fixture("flatex_depotumsaetze")
    assert list(parsed.fills) == FLATEX
    assert parsed.rejections == ()


def test_the_signed_quantity_sample_takes_the_side_from_the_sign() -> None:
    parsed = parse_fixture("degiro_transactions")
    assert list(parsed.fills) == DEGIRO
    assert parsed.rejections == ()


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    with open_ledger(f"memory://csv-test-{uuid.uuid4().hex}") as opened:
        yield opened


def register(ledger: Ledger, account: str, *instruments: tuple[str, str, str, str]) -> None:
    outcomes = [
        ledger.register_account(account=account, venue="CSV", mode="LIVE", position_mode="netting")
    ]
    for instrument, kind, multiplier, currency in instruments:
        outcomes.append(
            ledger.register_instrument(
                instrument=instrument,
                kind=kind,
                multiplier=multiplier,
                quote_currency=currency,
                settlement_currency=currency,
            )
        )
    assert all(outcome.status == "applied" for outcome in outcomes), outcomes


def holdings(ledger: Ledger) -> dict[str, tuple[str, str]]:
    return {
        p["instrument"]: (p["signed_quantity"], p["avg_entry_price"])
        for p in ledger.positions(include_flat=True)
    }


@pytest.mark.parametrize(
    ("name", "symbols", "account", "instruments", "expected"),
    [
        (
            "ibkr_flex_trades",
            IBKR_SYMBOLS,
            "U1234567",
            [("AAPL", "equity", "1", "USD"), ("ES-2024-06", "future", "50", "USD")],
            {"AAPL": "0", "ES-2024-06": "1"},
        ),
        (
            "flatex_depotumsaetze",
            None,
            "FLATEX-1",
            [("DE0007030033", "equity", "1", "EUR"), ("IE00B4L5Y983", "equity", "1", "EUR")],
            {"DE0007030033": "0", "IE00B4L5Y983": "12.3456"},
        ),
        (
            "degiro_transactions",
            None,
            "DEGIRO-1",
            [("US0378331005", "equity", "1", "USD"), ("IE00B3RBWM25", "equity", "1", "EUR")],
            {"US0378331005": "0", "IE00B3RBWM25": "4"},
        ),
    ],
)
def test_the_records_are_ledger_inputs_applied_once(
    ledger: Ledger,
    name: str,
    symbols: SymbolMap | None,
    account: str,
    instruments: list[tuple[str, str, str, str]],
    expected: dict[str, str],
) -> None:
    register(ledger, account, *instruments)
    lines = [json.dumps(record) for record in parse_fixture(name, symbols).fills]
    report = ledger.ingest(lines)
    assert (report.applied, report.duplicate, report.rejected) == (4, 0, 0), report.rejections
    assert {k: q for k, (q, _) in holdings(ledger).items()} == expected
    again = ledger.ingest(lines)
    assert (again.applied, again.duplicate, again.rejected) == (0, 4, 0)


def test_the_ledger_books_the_european_prices_exactly(ledger: Ledger) -> None:
    register(
        ledger,
        "FLATEX-1",
        ("DE0007030033", "equity", "1", "EUR"),
        ("IE00B4L5Y983", "equity", "1", "EUR"),
    )
    ledger.ingest([json.dumps(record) for record in parse_fixture("flatex_depotumsaetze").fills])
    assert holdings(ledger)["IE00B4L5Y983"] == ("12.3456", "96.934")
    (trade,) = [t for t in ledger.trades() if t["instrument"] == "DE0007030033"]
    # 10 @ 1052.40 + 5 @ 1052.60 = 15787.00 for 15; sold 15 @ 1210.00 = 18150.00
    assert (trade["status"], trade["avg_exit_price"], trade["commissions"]) == (
        "closed",
        "1210",
        {"EUR": "11.8"},
    )


# -- bad rows --------------------------------------------------------------------------

HEADER = (FIXTURES / "ibkr_flex_trades.csv").read_text().splitlines()[0]
GOOD = (
    '"U1234567","USD","STK","AAPL","265598","1","1","X.1","9","","20240308;093012",'
    '"BUY","100","170.12","-1","USD","EXECUTION"'
)


def ibkr_rows(*changes: dict[int, str]) -> str:
    """The IBKR header and one row per change, each GOOD with some cells replaced."""
    good = next(csv.reader([GOOD]))
    lines = [HEADER]
    for number, change in enumerate(changes):
        cells = list(good)
        cells[7] = f"X.{number}"
        for index, value in change.items():
            cells[index] = value
        lines.append(",".join(f'"{cell}"' for cell in cells))
    return "\n".join(lines) + "\n"


def test_bad_rows_are_rejected_with_their_row_numbers() -> None:
    text = ibkr_rows(
        {},
        {12: "-100"},  # row 3: a negative quantity on a BUY
        {13: ""},  # row 4
        {11: "BOT"},  # row 5
        {3: "MSFT"},  # row 6
        {10: "2024-03-08 09:30:12"},  # row 7
        {13: "1,234.50"},  # row 8
        {12: "0"},  # row 9
        {7: ""},  # row 10
        {14: "1.5 USD"},  # row 11
        {10: "20240310;023000"},  # row 12: not a New York time
    )
    text += '"U1234567","USD","STK"\n'  # row 13: no LevelOfDetail, left out by [filter]
    parsed = parse_csv(text, mapping_of("ibkr_flex_trades"), symbols=IBKR_SYMBOLS)
    assert [record["exec_id"] for record in parsed.fills] == ["X.0"]
    assert [rejection.reason for rejection in parsed.rejections] == [
        "row 3: 'Quantity' (quantity) is negative (-100) on a BUY: the sign and the side disagree",
        "row 4: 'TradePrice' (price) is empty",
        "row 5: 'Buy/Sell' (side) 'BOT' is none of BUY, SELL",
        "row 6: " + IBKR_SYMBOLS.missing("U1234567", "MSFT"),
        "row 7: 'DateTime' (ts) '2024-03-08 09:30:12' is not a time written as '%Y%m%d;%H%M%S'",
        "row 8: 'TradePrice' (price) '1,234.50' is not a number written with decimal separator "
        "'.' and thousands separator none",
        "row 9: 'Quantity' (quantity) is 0",
        "row 10: 'IBExecID' (exec_id) is empty",
        "row 11: 'IBCommission' (commission) '1.5 USD' is not a number written with decimal "
        "separator '.' and thousands separator none",
        "row 12: 'DateTime' (ts) 2024-03-10 02:30:00 does not exist in America/New_York: the "
        "clocks skipped it (daylight saving time began)",
    ]
    assert dict(parsed.extra) == {"rows": 12, "skipped": 1}
    assert parsed.rejections[0].raw.startswith("U1234567,USD,STK,AAPL,265598,1,1,X.1,9,,")


def test_a_row_the_ledger_would_refuse_is_rejected_here_with_its_number() -> None:
    text = ibkr_rows({}, {7: "x" * 129})
    (rejection,) = parse_csv(text, mapping_of("ibkr_flex_trades"), symbols=IBKR_SYMBOLS).rejections
    assert rejection.reason == (
        "row 3: the ledger would refuse the fill: exec_id is longer than 128 characters"
    )


def test_a_file_without_a_mapped_column_is_one_rejection() -> None:
    text = HEADER.replace('"IBExecID"', '"ExecID"') + "\n" + GOOD + "\n"
    parsed = parse_csv(text, mapping_of("ibkr_flex_trades"), symbols=IBKR_SYMBOLS)
    assert parsed.fills == ()
    (rejection,) = parsed.rejections
    assert rejection.reason.startswith(
        "the file has no column 'IBExecID' (columns.exec_id); its columns: 'ClientAccountID', "
    )


def test_an_undecodable_file_is_one_rejection() -> None:
    data = (FIXTURES / "flatex_depotumsaetze.csv").read_bytes()
    mapping = load_mapping(
        (FIXTURES / "flatex_depotumsaetze.toml").read_text().replace("cp1252", "utf-8")
    )
    (rejection,) = parse_csv(data, mapping).rejections
    at = data.index("ä".encode("cp1252"))  # in the header's "Währung"
    assert rejection.reason == (
        f"the file is not utf-8 (byte 0xe4 at {at}): set csv.encoding in the mapping"
    )


# -- numbers ---------------------------------------------------------------------------

NUMBERS = """
[columns]
exec_id = "id"
instrument = "i"
side = "s"
quantity = "q"
price = "p"
ts = "t"
[values]
account = "A"
[time]
format = "iso"
[numbers]
"""


def prices(cells: list[str], numbers: str, delimiter: str = ";") -> list[str]:
    """Each cell read as the price of a row, or the row's rejection."""
    toml = NUMBERS + numbers + f'\n[csv]\ndelimiter = "{delimiter}"\n'
    rows = [["id", "i", "s", "q", "p", "t"]] + [
        [str(n), "X", "BUY", "1", cell, "2024-01-02T03:04:05Z"] for n, cell in enumerate(cells)
    ]
    parsed = parse_rows(rows, load_mapping(toml))
    out = {int(r["exec_id"]): r["price"] for r in parsed.fills}
    for rejection in parsed.rejections:
        out[int(rejection.reason.split(":")[0].split()[1]) - 2] = "rejected"
    return [out[n] for n in range(len(cells))]


def test_european_decimals_are_exact() -> None:
    cells = [
        "1.052,40",
        "12,3456",
        "1.234.567,891",
        "0,1",
        "-2,50",
        "96,934",
        "7",
        "12.50",
        "1.2,5",
        "1,2,3",
        "1.052.40",
        "12,5.0",
        "1 000,5",
    ]
    assert prices(cells, 'decimal = ","\nthousands = "."') == [
        "1052.4",
        "12.3456",
        "1234567.891",
        "0.1",
        "-2.5",
        "96.934",
        "7",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
    ]


def test_decimal_commas_without_thousands_refuse_dots() -> None:
    assert prices(["1052,40", "1.052,40", "0,000000000000000001"], 'decimal = ","') == [
        "1052.4",
        "rejected",
        "0.000000000000000001",
    ]


def test_spaces_and_commas_between_thousands() -> None:
    assert prices(["1 234,5", "12 34,5", "1234,5"], 'decimal = ","\nthousands = " "') == [
        "1234.5",
        "rejected",
        "1234.5",
    ]
    assert prices(["1,234.5", "1,23,456.0", "1234.5", "1e3"], 'thousands = ","', "|") == [
        "1234.5",
        "rejected",
        "1234.5",
        "rejected",
    ]


# -- times -----------------------------------------------------------------------------


def times(cells: list[str], time: str) -> list[str]:
    toml = NUMBERS.replace('[time]\nformat = "iso"\n', "") + f"\n[time]\n{time}\n"
    rows = [["id", "i", "s", "q", "p", "t"]] + [
        [str(n), "X", "BUY", "1", "1", cell] for n, cell in enumerate(cells)
    ]
    parsed = parse_rows(rows, load_mapping(toml))
    out = {int(r["exec_id"]): r["ts"] for r in parsed.fills}
    for rejection in parsed.rejections:
        out[int(rejection.reason.split(":")[0].split()[1]) - 2] = rejection.reason
    return [out[n] for n in range(len(cells))]


NEW_YORK = 'format = "%Y-%m-%d %H:%M:%S"\ntimezone = "America/New_York"'


def test_local_times_take_their_offset_across_daylight_saving_time() -> None:
    assert times(
        [
            "2024-03-10 01:59:59",
            "2024-03-10 03:00:00",
            "2024-07-01 12:00:00",
            "2024-12-31 23:59:59",
        ],
        NEW_YORK,
    ) == [
        "2024-03-10T01:59:59-05:00",
        "2024-03-10T03:00:00-04:00",
        "2024-07-01T12:00:00-04:00",
        "2024-12-31T23:59:59-05:00",
    ]


def test_a_skipped_or_repeated_local_time_is_rejected_by_default() -> None:
    assert times(["2024-03-10 02:30:00", "2024-11-03 01:30:00"], NEW_YORK) == [
        "row 2: 't' (ts) 2024-03-10 02:30:00 does not exist in America/New_York: the clocks "
        "skipped it (daylight saving time began)",
        "row 3: 't' (ts) 2024-11-03 01:30:00 happened twice in America/New_York (daylight "
        "saving time ended, at -04:00 and at -05:00): set time.ambiguous to earlier or later",
    ]


def test_the_mapping_can_pick_either_repeated_time() -> None:
    (earlier,) = times(["2024-11-03 01:30:00"], NEW_YORK + '\nambiguous = "earlier"')
    (later,) = times(["2024-11-03 01:30:00"], NEW_YORK + '\nambiguous = "later"')
    assert (earlier, later) == ("2024-11-03T01:30:00-04:00", "2024-11-03T01:30:00-05:00")
    gap = dt.datetime.fromisoformat(later) - dt.datetime.fromisoformat(earlier)
    assert gap == dt.timedelta(hours=1)
    (skipped,) = times(["2024-03-10 02:30:00"], NEW_YORK + '\nambiguous = "later"')
    assert "does not exist" in skipped


def test_iso_and_epoch_times() -> None:
    assert times(
        ["2024-03-10T02:30:00+01:00", "2024-03-10 12:00:00", "2024-03-10T17:00:00Z"],
        'format = "iso"\ntimezone = "Europe/Berlin"',
    ) == ["2024-03-10T02:30:00+01:00", "2024-03-10T12:00:00+01:00", "2024-03-10T17:00:00+00:00"]
    (naive,) = times(["2024-03-10 12:00:00"], 'format = "iso"')
    assert naive.endswith("has no UTC offset and the mapping gives no time.timezone")
    assert times(["1710000000123", "1.5"], 'format = "epoch_ms"') == [
        "2024-03-09T16:00:00.123Z",
        "row 3: 't' (ts) '1.5' is not whole epoch milliseconds",
    ]
    assert times(["1710000000", "1710000000.25", "-1"], 'format = "epoch_s"') == [
        "2024-03-09T16:00:00Z",
        "2024-03-09T16:00:00.25Z",
        "row 4: 't' (ts) '-1' is out of range",
    ]


# -- the mapping -----------------------------------------------------------------------

BASE = {
    "columns": {
        "exec_id": '"id"',
        "instrument": '"i"',
        "side": '"s"',
        "quantity": '"q"',
        "price": '"p"',
        "ts": '"t"',
    },
    "values": {"account": '"A"'},
}


def toml(**sections: dict[str, str] | None) -> str:
    """BASE with sections changed (a key set to None is removed; a section to None too)."""
    merged: dict[str, dict[str, str]] = {name: dict(keys) for name, keys in BASE.items()}
    for name, keys in sections.items():
        if keys is None:
            merged.pop(name, None)
            continue
        table = merged.setdefault(name, {})
        for key, value in keys.items():
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
    return "\n".join(
        f"[{name}]\n" + "\n".join(f"{key} = {value}" for key, value in keys.items())
        for name, keys in merged.items()
    )


def test_a_minimal_mapping_loads() -> None:
    mapping = load_mapping(toml())
    assert mapping.columns["exec_id"] == ("id",)
    assert (mapping.delimiter, mapping.time_format, mapping.decimal) == (",", "iso", ".")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[columns\n", "mapping: not valid TOML: "),
        (toml(colums={"a": '"b"'}), "mapping: unknown section [colums]; known: csv, columns, "),
        ('delimiter = ";"\n' + toml(), "mapping: unknown key 'delimiter' outside any section"),
        (
            toml(columns={"trade_id": '"x"'}),
            "mapping: unknown key 'columns.trade_id'; known: exec_id, ",
        ),
        (toml(csv={"separator": '";"'}), "mapping: unknown key 'csv.separator'"),
        (toml(time={"zone": '"UTC"'}), "mapping: unknown key 'time.zone'"),
        (toml(numbers={"decimals": '","'}), "mapping: unknown key 'numbers.decimals'"),
        (toml(symbols={"name": '"ibkr"'}), "mapping: unknown key 'symbols.name'"),
        (
            toml(columns={"exec_id": None}),
            "mapping: exec_id is not mapped: give columns.exec_id (a column)",
        ),
        (
            toml(values={"account": None}),
            "mapping: account is not mapped: give columns.account (a column) or values.account "
            "(a constant)",
        ),
        (
            toml(columns={"exec_id": None}, values={"exec_id": '"1"'}),
            "mapping: values.exec_id: exec_id must come from a column",
        ),
        (
            toml(values={"instrument": '"X"'}),
            "mapping: values.instrument: instrument is also read from a column "
            "(columns.instrument)",
        ),
        (
            toml(columns={"price": '["a", "b"]'}),
            "mapping: columns.price: price is read from one column",
        ),
        (toml(columns={"price": "[]"}), "mapping: columns.price: an empty list names no column"),
        (toml(columns={"price": "0"}), "mapping: columns.price: column numbers start at 1, got 0"),
        (
            toml(columns={"price": "1.5"}),
            "mapping: columns.price: 1.5 is neither a column name nor a number",
        ),
        (toml(columns={"price": '" "'}), "mapping: columns.price: a column name must not be blank"),
        (
            toml(values={"commission": "0.5"}),
            "mapping: values.commission: must be a non-empty string, got 0.5",
        ),
        (
            toml(values={"commission": '"1,5"'}),
            "mapping: values.commission: '1,5' is not a decimal number",
        ),
        (
            toml(values={"liquidation": '"yes"'}),
            "mapping: values.liquidation: must be true or false",
        ),
        (
            toml(columns={"side": None}, values={"side": '"HOLD"'}),
            "mapping: values.side: must be BUY or SELL",
        ),
        (toml(side={"BOT": '"LONG"'}), "mapping: side.BOT: must be BUY or SELL, got 'LONG'"),
        (
            toml(columns={"side": None}, values={"side": '"BUY"'}, side={"BOT": '"BUY"'}),
            "mapping: [side] translates a side column, but columns.side is not given",
        ),
        (
            toml(numbers={"negative_quantity_is_sell": "true"}),
            "mapping: columns.side: numbers.negative_quantity_is_sell = true takes the side "
            "from the quantity's sign",
        ),
        (
            toml(numbers={"negative_quantity_is_sell": '"yes"'}),
            "mapping: numbers.negative_quantity_is_sell: must be true or false",
        ),
        (toml(numbers={"decimal": '";"'}), 'mapping: numbers.decimal: must be "." or ","'),
        (
            toml(numbers={"decimal": '","', "thousands": '","'}),
            "mapping: numbers.thousands: ',' cannot separate thousands",
        ),
        (
            toml(numbers={"thousands": '".,"'}),
            'mapping: numbers.thousands: must be "" or one character',
        ),
        (
            toml(csv={"delimiter": '";;"'}),
            "mapping: csv.delimiter: must be one character, got ';;'",
        ),
        (toml(csv={"delimiter": "'\"'"}), "mapping: csv.quotechar: '\"' is also the delimiter"),
        (
            toml(csv={"encoding": '"latin-9x"'}),
            "mapping: csv.encoding: 'latin-9x' is not a known encoding",
        ),
        (toml(csv={"skip_rows": "-1"}), "mapping: csv.skip_rows: must be a whole number >= 0"),
        (
            toml(time={"format": '"yyyyMMdd"'}),
            "mapping: time.format: 'yyyyMMdd' is none of iso, epoch_ms, epoch_s",
        ),
        (
            toml(time={"format": '"%Y-%m-%d %H:%M"'}),
            "mapping: time.timezone: required: the format '%Y-%m-%d %H:%M' gives no UTC offset "
            "(%z)",
        ),
        (
            toml(time={"format": '"epoch_ms"', "timezone": '"UTC"'}),
            "mapping: time.timezone: not used with epoch_ms",
        ),
        (
            toml(time={"timezone": '"Europe/Berln"'}),
            "mapping: time.timezone: 'Europe/Berln' is not a time zone name",
        ),
        (
            toml(time={"ambiguous": '"first"'}),
            "mapping: time.ambiguous: must be one of reject, earlier, later",
        ),
        (
            toml(filter={"Level": "[1]"}),
            "mapping: filter.Level: must be a string or a list of strings",
        ),
        (toml(symbols={"venue": '""'}), "mapping: symbols.venue: must be a venue name"),
        ("columns = 1\n" + toml(columns=None), "mapping: columns: must be a table ([columns])"),
    ],
)
def test_a_mapping_error_names_the_key(text: str, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        load_mapping(text)
    assert str(caught.value).startswith(message), str(caught.value)


def test_the_samples_mappings_load() -> None:
    ibkr = mapping_of("ibkr_flex_trades")
    assert ibkr.symbols_venue == "ibkr" and ibkr.negate_commission
    assert ibkr.filters == {"LevelOfDetail": frozenset({"EXECUTION"})}
    flatex = mapping_of("flatex_depotumsaetze")
    assert (flatex.delimiter, flatex.encoding, flatex.decimal, flatex.thousands) == (
        ";",
        "cp1252",
        ",",
        ".",
    )
    assert flatex.columns["ts"] == ("Buchtag", "Uhrzeit")
    degiro = mapping_of("degiro_transactions")
    assert degiro.columns["commission_currency"] == (16,) and degiro.negative_quantity_is_sell


def test_a_symbol_mapping_needs_its_symbol_map() -> None:
    text = (FIXTURES / "ibkr_flex_trades.csv").read_text()
    with pytest.raises(ValueError, match="pass symbols="):
        parse_csv(text, mapping_of("ibkr_flex_trades"))
    with pytest.raises(ValueError, match="not kotak_neo"):
        parse_csv(text, mapping_of("ibkr_flex_trades"), symbols=SymbolMap("kotak_neo", {}))


# -- the file's shape ------------------------------------------------------------------


def test_rows_before_the_header_blank_rows_and_a_bom() -> None:
    text = (
        "\ufeffTrades export\nid,i,s,q,p,t\n\n1,X,buy,2,3,2024-01-02T03:04:05Z\n,,,,,\n"
        "2,X,Sell,2,4,2024-01-02T03:04:06Z\n"
    )
    mapping = load_mapping(toml(csv={"skip_rows": "1"}))
    parsed = parse_csv(text.encode("utf-8"), mapping)
    assert [(r["exec_id"], r["side"]) for r in parsed.fills] == [("1", "BUY"), ("2", "SELL")]
    assert dict(parsed.extra) == {"rows": 4, "skipped": 2}
    bom = parse_csv("\ufeffid,i,s,q,p,t\n1,X,BUY,2,3,2024-01-02T03:04:05Z\n", load_mapping(toml()))
    assert len(bom.fills) == 1


def test_columns_by_number_and_joined_columns() -> None:
    mapping = load_mapping(
        toml(
            columns={"exec_id": '[1, "p"]', "instrument": "2", "ts": '["d", "t"]'},
            time={"format": '"%d.%m.%Y %H:%M"', "timezone": '"Europe/Berlin"'},
        )
    )
    rows = [["id", "", "s", "q", "p", "d", "t"], ["7", "X", "BUY", "1", "2", "30.03.2025", "03:00"]]
    (record,) = parse_rows(rows, mapping).fills
    assert (record["exec_id"], record["instrument"], record["ts"]) == (
        "7 2",
        "X",
        "2025-03-30T03:00:00+02:00",
    )


def test_a_repeated_or_missing_column_name_is_one_rejection() -> None:
    rows = [
        ["id", "i", "s", "q", "p", "p", "t"],
        ["1", "X", "BUY", "1", "2", "2", "2024-01-02T03:04:05Z"],
    ]
    (rejection,) = parse_rows(rows, load_mapping(toml())).rejections
    assert rejection.reason == "the file has 2 columns named 'p' (columns.price): name it by number"
    (short,) = parse_rows(
        [["id"], ["1"]], load_mapping(toml(columns={"instrument": "9"}))
    ).rejections
    assert short.reason == "the file has 1 columns, not 9 (columns.instrument)"
    (empty,) = parse_rows([], load_mapping(toml())).rejections
    assert empty.reason == "the file has no header row"


def test_extra_cells_optional_values_and_liquidation() -> None:
    mapping = load_mapping(
        toml(columns={"liquidation": '"l"', "position_side": '"ps"', "strategy": '"st"'})
    )
    rows = [
        ["id", "i", "s", "q", "p", "t", "l", "ps", "st"],
        ["1", "X", "SELL", "1", "2", "2024-01-02T03:04:05Z", "Yes", "short", "alpha", ""],
        ["2", "X", "SELL", "1", "2", "2024-01-02T03:04:05Z", "", "", "", "", ""],
        ["3", "X", "SELL", "1", "2", "2024-01-02T03:04:05Z", "maybe", "", ""],
        ["4", "X", "SELL", "1", "2", "2024-01-02T03:04:05Z", "", "", "", "surplus"],
        ["5", "X"],
    ]
    parsed = parse_rows(rows, mapping)
    assert [r for r in parsed.fills] == [
        fill(
            "1",
            "A",
            "X",
            "SELL",
            "1",
            "2",
            "2024-01-02T03:04:05+00:00",
            strategy="alpha",
            position_side="SHORT",
            liquidation=True,
        ),
        fill("2", "A", "X", "SELL", "1", "2", "2024-01-02T03:04:05+00:00"),
    ]
    assert [r.reason for r in parsed.rejections] == [
        "row 4: 'l' (liquidation) 'maybe' is not true or false",
        "row 5: has 10 cells, the header 9",
        "row 6: has 2 cells; 'q' (quantity) is column 4",
    ]


def test_preview_shows_the_first_records_and_every_rejection() -> None:
    text = ibkr_rows({}, {11: "BOT"}, {}, {}, {13: ""})
    shown = preview(text, mapping_of("ibkr_flex_trades"), symbols=IBKR_SYMBOLS, limit=2)
    assert (shown.rows, shown.fills, shown.skipped) == (5, 3, 0)
    assert [r["exec_id"] for r in shown.records] == ["X.0", "X.2"]
    assert [r.reason.split(":")[0] for r in shown.rejections] == ["row 3", "row 6"]
    as_dict = shown.as_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert (as_dict["rejected"], len(as_dict["records"])) == (2, 2)


def test_times_out_of_range_are_rejected() -> None:
    assert times(["99999999999999999", "1e3"], 'format = "epoch_ms"') == [
        "row 2: 't' (ts) '99999999999999999' is out of range",
        "row 3: 't' (ts) '1e3' is not epoch_ms (a number)",
    ]
    assert times(["9007199254740991"], 'format = "epoch_s"') == [
        "row 2: 't' (ts) '9007199254740991' is out of range"
    ]
    (early,) = times(
        ["0001-01-01 00:10:00"], 'format = "%Y-%m-%d %H:%M:%S"\ntimezone = "Asia/Tokyo"'
    )
    assert early.startswith(
        "row 2: the ledger would refuse the fill: ts: '0001-01-01T00:10:00+09:18:59'"
    )
    (old,) = times(["1969-12-31 23:59:59"], 'format = "%Y-%m-%d %H:%M:%S"\ntimezone = "UTC"')
    assert old.startswith(
        "row 2: the ledger would refuse the fill: ts: '1969-12-31T23:59:59+00:00'"
    )
