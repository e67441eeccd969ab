"""Kotak Neo trade report and position book (posledger.venues.kotak) on the documented
samples (tests/fixtures/venues/kotak_neo/SOURCES.md)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from posledger import Ledger, open_ledger
from posledger.venues.base import SymbolMap, VenueError
from posledger.venues.kotak import exact_number, parse_positions, parse_trade_report

FIXTURES = Path(__file__).parents[2] / "fixtures" / "venues" / "kotak_neo"
ACCOUNT = "KOTAK-1"
SYMBOLS = SymbolMap(
    "kotak_neo",
    {
        (ACCOUNT, "nse_cm:AXISBANK-EQ"): "AXISBANK",
        (ACCOUNT, "nse_cm:IDEA-EQ"): "IDEA",
        (ACCOUNT, "nse_cm:RELIANCE-EQ"): "RELIANCE",
        (ACCOUNT, "nse_fo:BANKNIFTY21JULFUT"): "BANKNIFTY-2021-07",
        (ACCOUNT, "nse_fo:TCS26JULFUT"): "TCS-2026-07",
        (ACCOUNT, "nse_fo:NIFTY24OCT25000CE"): "NIFTY-2024-10-25000-C",
        (ACCOUNT, "nse_fo:BANKNIFTY24OCTFUT"): "BANKNIFTY-2024-10",
    },
)


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


def body(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(text(name))
    return loaded


def fill(
    exec_id: str, quantity: str, price: str, ts: str, order: str, **extra: Any
) -> dict[str, Any]:
    return {
        "type": "fill",
        "exec_id": exec_id,
        "account": ACCOUNT,
        "instrument": extra.pop("instrument", "AXISBANK"),
        "side": extra.pop("side", "BUY"),
        "quantity": quantity,
        "price": price,
        "ts": ts,
        "client_order_id": order,
        **extra,
    }


AXIS_FILLS = [
    fill(
        "nse_cm:220621000000085:42857", "5", "658.7", "2022-06-21T14:30:38+05:30", "220621000000085"
    ),
    fill(
        "nse_cm:220621000000077:41349", "2", "641", "2022-06-21T14:21:07+05:30", "220621000000077"
    ),
    fill(
        "nse_cm:220621000000062:35790",
        "1",
        "644.65",
        "2022-06-21T14:07:50+05:30",
        "220621000000062",
    ),
]


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    """A memory ledger with the Kotak account, the fixtures' instruments and a strategy."""
    with open_ledger(f"memory://kotak-test-{uuid.uuid4().hex}") as opened:
        outcomes = [
            opened.register_account(
                account=ACCOUNT, venue="KOTAK_NEO", mode="LIVE", position_mode="netting"
            ),
            opened.register_strategy(strategy="alpha"),
        ]
        for instrument, kind, lot in (
            ("AXISBANK", "equity", "1"),
            ("IDEA", "equity", "1"),
            ("NIFTY-2024-10-25000-C", "option", "25"),
            ("BANKNIFTY-2024-10", "future", "15"),
        ):
            outcomes.append(
                opened.register_instrument(
                    instrument=instrument,
                    kind=kind,
                    multiplier="1",
                    lot_size=lot,
                    quote_currency="INR",
                    settlement_currency="INR",
                )
            )
        assert all(outcome.status == "applied" for outcome in outcomes), outcomes
        yield opened


# -- the trade report ------------------------------------------------------------------


def test_the_documented_fill_is_one_exact_fill_record() -> None:
    parsed = parse_trade_report(
        text("trade_report_sample_1fill.json"), account=ACCOUNT, symbols=SYMBOLS
    )
    assert parsed.fills == (AXIS_FILLS[0],)
    assert parsed.rejections == () and parsed.positions == () and parsed.ignored is None


def test_every_documented_fill_is_read_exactly() -> None:
    parsed = parse_trade_report(
        text("trade_report_sample_3fills.json"), account=ACCOUNT, symbols=SYMBOLS
    )
    assert list(parsed.fills) == AXIS_FILLS
    assert parsed.rejections == ()


def test_the_newer_sdk_sample_is_read_exactly() -> None:
    parsed = parse_trade_report(
        text("trade_report_v2_sample.json"), account=ACCOUNT, symbols=SYMBOLS
    )
    assert list(parsed.fills) == [
        fill(
            "nse_cm:250122000612876:207983744",
            "1",
            "9.39",
            "2025-01-22T14:28:16+05:30",
            "250122000612876",
            instrument="IDEA",
        ),
        fill(
            "nse_cm:250122000624384:208109719",
            "1",
            "9.39",
            "2025-01-22T14:33:01+05:30",
            "250122000624384",
            instrument="IDEA",
        ),
    ]


@pytest.mark.parametrize(
    "name",
    [
        "trade_report_sample_3fills.json",
        "trade_report_v2_sample.json",
        "trade_report_constructed.json",
    ],
)
def test_a_fill_is_timed_at_its_fill_time_in_ist(name: str) -> None:
    """flDt + flTm, read as UTC+05:30, is the instant boeSec gives (in the newer sample
    exTm is earlier: the order's time at the exchange, not the fill's)."""
    rows = body(name)["data"]
    parsed = parse_trade_report(text(name), account=ACCOUNT, symbols=SYMBOLS)
    assert len(parsed.fills) == len(rows)
    for record, row in zip(parsed.fills, rows, strict=True):
        assert record["ts"].endswith("+05:30")
        at = dt.datetime.fromisoformat(record["ts"])
        assert at.utcoffset() == dt.timedelta(hours=5, minutes=30)
        assert int(at.timestamp()) == row["boeSec"]
    assert parsed.fills[0]["ts"] != ""


def test_a_tag_or_else_the_order_number_asks_for_the_strategy() -> None:
    asked: list[str] = []

    def strategy_of(tag: str) -> str | None:
        asked.append(tag)
        return "alpha" if tag.startswith("alpha-") else None

    parsed = parse_trade_report(
        text("trade_report_constructed.json"),
        account=ACCOUNT,
        symbols=SYMBOLS,
        strategy_of=strategy_of,
    )
    assert asked == ["241015000104512", "241015000104512", "alpha-7", "241015000131007"]
    assert [record.get("strategy") for record in parsed.fills] == [None, None, "alpha", None]
    assert all(
        record["client_order_id"] == record["exec_id"].split(":")[1] for record in parsed.fills
    )


def test_the_constructed_fno_fills_count_units_not_lots() -> None:
    parsed = parse_trade_report(
        text("trade_report_constructed.json"), account=ACCOUNT, symbols=SYMBOLS
    )
    assert [
        (r["exec_id"], r["instrument"], r["side"], r["quantity"], r["price"], r["ts"])
        for r in parsed.fills
    ] == [
        (
            "nse_fo:241015000104512:300481",
            "NIFTY-2024-10-25000-C",
            "SELL",
            "25",
            "125",
            "2024-10-15T09:20:14+05:30",
        ),
        (
            "nse_fo:241015000104512:300482",
            "NIFTY-2024-10-25000-C",
            "SELL",
            "25",
            "125.2",
            "2024-10-15T09:20:15+05:30",
        ),
        (
            "nse_fo:241015000118830:512907",
            "BANKNIFTY-2024-10",
            "BUY",
            "15",
            "51234.55",
            "2024-10-15T10:02:31+05:30",
        ),
        (
            "nse_fo:241015000131007:733315",
            "BANKNIFTY-2024-10",
            "BUY",
            "15",
            "51240.05",
            "2024-10-15T11:45:02+05:30",
        ),
    ]


def test_a_price_sent_as_a_json_number_is_kept_exactly_decoded_or_not() -> None:
    as_text = parse_trade_report(
        text("trade_report_constructed.json"), account=ACCOUNT, symbols=SYMBOLS
    )
    decoded = body("trade_report_constructed.json")
    assert isinstance(decoded["data"][3]["avgPrc"], float)
    as_object = parse_trade_report(decoded, account=ACCOUNT, symbols=SYMBOLS)
    assert as_text.fills == as_object.fills
    assert as_text.fills[3]["price"] == "51240.05"


def test_exact_numbers() -> None:
    assert exact_number("658.70", "p") == "658.7"
    assert exact_number(5, "q") == "5"
    assert exact_number(Decimal("51240.050"), "p") == "51240.05"
    assert exact_number(658.7, "p") == "658.7"
    assert exact_number(0.1, "p") == "0.1"
    assert exact_number(1e-7, "p") == "0.0000001"
    for bad in (0.1 + 0.2, float("nan"), float("inf"), True, None, "1e3", " 1", "1_000", "", "abc"):
        with pytest.raises(VenueError):
            exact_number(bad, "p")


def test_the_fills_are_ledger_inputs_applied_once(ledger: Ledger) -> None:
    parsed = parse_trade_report(
        text("trade_report_sample_3fills.json"),
        account=ACCOUNT,
        symbols=SYMBOLS,
        strategy_of=lambda tag: "alpha",
    )
    lines = [json.dumps(record) for record in parsed.fills]
    report = ledger.ingest(lines)
    assert (report.applied, report.duplicate, report.rejected) == (3, 0, 0), report.rejections
    (position,) = ledger.positions()
    # 5 @ 658.70 + 2 @ 641.00 + 1 @ 644.65 = 5220.15 for 8
    assert (position["instrument"], position["strategy"], position["signed_quantity"]) == (
        "AXISBANK",
        "alpha",
        "8",
    )
    assert position["avg_entry_price"] == "652.51875"
    again = ledger.ingest(lines)
    assert (again.applied, again.duplicate, again.rejected) == (0, 3, 0)


def test_an_unknown_order_number_leaves_the_fill_external(ledger: Ledger) -> None:
    parsed = parse_trade_report(
        text("trade_report_v2_sample.json"), account=ACCOUNT, symbols=SYMBOLS
    )
    report = ledger.ingest([json.dumps(record) for record in parsed.fills])
    assert report.applied == 2
    (position,) = ledger.positions()
    assert (position["strategy"], position["signed_quantity"], position["avg_entry_price"]) == (
        "EXTERNAL",
        "2",
        "9.39",
    )


def test_an_unmapped_symbol_is_rejected_with_the_command_that_maps_it() -> None:
    symbols = SymbolMap("kotak_neo", {(ACCOUNT, "nse_fo:BANKNIFTY24OCTFUT"): "BANKNIFTY-2024-10"})
    parsed = parse_trade_report(
        text("trade_report_constructed.json"), account=ACCOUNT, symbols=symbols
    )
    assert [record["instrument"] for record in parsed.fills] == ["BANKNIFTY-2024-10"] * 2
    assert [rejection.reason for rejection in parsed.rejections] == [
        f"data[{index}]: " + symbols.missing(ACCOUNT, "nse_fo:NIFTY24OCT25000CE")
        for index in (0, 1)
    ]
    assert json.loads(parsed.rejections[0].raw)["flId"] == "300481"


def broken(**changes: Any) -> dict[str, Any]:
    """The one-fill sample with its row changed (None: the field removed)."""
    sample = body("trade_report_sample_1fill.json")
    row = sample["data"][0]
    for name, value in changes.items():
        if value is None:
            del row[name]
        else:
            row[name] = value
    return sample


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"flId": None}, "data[0]: missing field 'flId'"),
        ({"nOrdNo": None}, "data[0]: missing field 'nOrdNo'"),
        ({"exSeg": ""}, "data[0]: exSeg '' is not a non-empty string"),
        ({"trnsTp": "X"}, "data[0]: trnsTp 'X' is neither B nor S"),
        ({"fldQty": 0}, "data[0]: fldQty 0 is not a positive quantity"),
        ({"fldQty": "-5"}, "data[0]: fldQty '-5' is not a positive quantity"),
        ({"fldQty": "5 lots"}, "data[0]: fldQty '5 lots' is not a plain decimal number"),
        ({"avgPrc": "abc"}, "data[0]: avgPrc 'abc' is not a plain decimal number"),
        ({"avgPrc": None}, "data[0]: missing field 'avgPrc'"),
        ({"flDt": "2022-06-21"}, "data[0]: flDt '2022-06-21' is not a date like 21-Jun-2022"),
        (
            {"flDt": "31-Jun-2022"},
            "data[0]: flDt '31-Jun-2022' flTm '14:30:38' is not a valid time: day is out of "
            "range for month",
        ),
        ({"flTm": "2:30 PM"}, "data[0]: flTm '2:30 PM' is not a time like 14:30:38"),
        ({"rptTp": "cancel"}, "data[0]: rptTp 'cancel' is not a fill"),
        (
            {"nOrdNo": "x" * 130},
            "data[0]: the ledger would refuse the fill: exec_id is longer than 128 characters",
        ),
    ],
)
def test_a_malformed_fill_is_rejected_with_its_reason(changes: dict[str, Any], reason: str) -> None:
    payload = broken(**changes)
    parsed = parse_trade_report(payload, account=ACCOUNT, symbols=SYMBOLS)
    assert parsed.fills == ()
    assert [rejection.reason for rejection in parsed.rejections] == [reason]
    assert json.loads(parsed.rejections[0].raw) == payload["data"][0]


def test_a_float_that_lost_digits_is_rejected() -> None:
    payload = broken(avgPrc=0.1 + 0.2)
    (rejection,) = parse_trade_report(payload, account=ACCOUNT, symbols=SYMBOLS).rejections
    assert rejection.reason.startswith("data[0]: avgPrc 0.30000000000000004 is a JSON number")


def test_one_bad_row_does_not_stop_the_others() -> None:
    payload = body("trade_report_sample_3fills.json")
    payload["data"][1]["trnsTp"] = "?"
    payload["data"].append("not a row")
    parsed = parse_trade_report(payload, account=ACCOUNT, symbols=SYMBOLS)
    assert list(parsed.fills) == [AXIS_FILLS[0], AXIS_FILLS[2]]
    assert [r.reason for r in parsed.rejections] == [
        "data[1]: trnsTp '?' is neither B nor S",
        "data[3]: the row is not a JSON object",
    ]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (
            "<html>502</html>",
            "the trade report is not JSON: Expecting value: line 1 column 1 (char 0)",
        ),
        (
            b"\xff",
            "the trade report is not JSON: 'utf-8' codec can't decode byte 0xff in position 0: "
            "invalid start byte",
        ),
        ('{"data": [], "x": NaN}', "the trade report is not JSON: NaN is not a number"),
        ("[1, 2]", "the trade report is not a JSON object"),
        (
            '{"stat": "Not_Ok", "stCode": 1007, "errMsg": "Invalid session"}',
            "Kotak Neo refused the trade report: stat 'Not_Ok', stCode 1007: Invalid session",
        ),
        ('{"stat": "Ok", "stCode": 200}', "the trade report has no 'data'"),
        ('{"stat": "Ok", "data": {"a": 1}}', "the trade report's 'data' is not a list"),
    ],
)
def test_a_response_that_is_not_a_report_is_rejected_whole(
    payload: str | bytes, reason: str
) -> None:
    parsed = parse_trade_report(payload, account=ACCOUNT, symbols=SYMBOLS)
    assert parsed.fills == ()
    assert [r.reason for r in parsed.rejections] == [reason]


@pytest.mark.parametrize("data", ["[]", "null"])
def test_an_empty_report_is_ignored(data: str) -> None:
    parsed = parse_trade_report(
        f'{{"stat": "Ok", "stCode": 200, "data": {data}}}', account=ACCOUNT, symbols=SYMBOLS
    )
    assert parsed == parsed.__class__(ignored="the trade report lists no fills")


# -- the position book -----------------------------------------------------------------


def position(instrument: str, quantity: str, ts: str, **extra: str) -> dict[str, Any]:
    return {
        "type": "broker_position",
        "account": ACCOUNT,
        "instrument": instrument,
        "quantity": quantity,
        "position_side": "BOTH",
        "position_mode": "netting",
        **extra,
        "ts": ts,
    }


def test_the_documented_position_is_flat_after_buying_and_selling_one_lot() -> None:
    parsed = parse_positions(text("positions_sample.json"), account=ACCOUNT, symbols=SYMBOLS)
    assert parsed.positions == (position("BANKNIFTY-2021-07", "0", "2021-07-13T18:34:44+05:30"),)
    assert parsed.rejections == () and parsed.fills == ()


def test_the_newer_sample_holds_225_units_one_lot_at_the_sdk_average() -> None:
    parsed = parse_positions(text("positions_v2_sample.json"), account=ACCOUNT, symbols=SYMBOLS)
    # 475200.00 / 225: the SDK's own averagePrice, 2112.0
    assert parsed.positions == (
        position("TCS-2026-07", "225", "2026-07-24T12:57:46+05:30", avg_price="2112"),
    )


def test_the_constructed_book_nets_products_and_carried_quantity() -> None:
    parsed = parse_positions(text("positions_constructed.json"), account=ACCOUNT, symbols=SYMBOLS)
    assert parsed.rejections == ()
    assert list(parsed.positions) == [
        # CNC 10 carried + 5 - 3, MIS 4 - 4: 12; no average (carried at the last close)
        position("RELIANCE", "12", "2024-10-15T15:20:41+05:30"),
        # 6255.00 / 50
        position("NIFTY-2024-10-25000-C", "-50", "2024-10-15T09:20:15+05:30", avg_price="125.1"),
        # 1537119.00 / 30
        position("BANKNIFTY-2024-10", "30", "2024-10-15T11:45:02+05:30", avg_price="51237.3"),
    ]


def test_the_book_reconciles_with_the_fills_of_the_day(ledger: Ledger) -> None:
    fills = parse_trade_report(
        text("trade_report_constructed.json"), account=ACCOUNT, symbols=SYMBOLS
    )
    assert ledger.ingest([json.dumps(record) for record in fills.fills]).applied == 4
    book = parse_positions(text("positions_constructed.json"), account=ACCOUNT, symbols=SYMBOLS)
    snapshot = [json.dumps(p) for p in book.positions if p["instrument"] != "RELIANCE"]
    report = ledger.reconcile(snapshot)
    assert [(c["instrument"], str(c["kind"]), c["broker_avg_price"]) for c in report.checks] == [
        ("BANKNIFTY-2024-10", "agree", "51237.3"),
        ("NIFTY-2024-10-25000-C", "agree", "125.1"),
    ]


def book(*rows: dict[str, Any]) -> dict[str, Any]:
    """A position book of the rows, each over the NIFTY call's constructed row."""
    base = body("positions_constructed.json")["data"][2]
    return {"stat": "Ok", "stCode": 200, "data": [{**copy.deepcopy(base), **row} for row in rows]}


def test_quantities_are_units_whatever_the_lot_size() -> None:
    parsed = parse_positions(
        book({"flSellQty": "0", "flBuyQty": "75", "buyAmt": "9382.50", "sellAmt": "0.00"}),
        account=ACCOUNT,
        symbols=SYMBOLS,
    )
    (record,) = parsed.positions
    assert (record["quantity"], record["avg_price"]) == ("75", "125.1")  # 3 lots of 25


def test_the_average_divides_by_the_price_scaling() -> None:
    # amount = price x quantity x multiplier x genNum/genDen x prcNum/prcDen
    # 2 x 83.2525 x 1000 x 1/1 x 1/100 = 1665.05
    row = {
        "flSellQty": "0",
        "flBuyQty": "2",
        "buyAmt": "1665.05",
        "multiplier": "1000",
        "prcDen": "100",
    }
    (record,) = parse_positions(book(row), account=ACCOUNT, symbols=SYMBOLS).positions
    assert record["avg_price"] == "83.2525"


def test_an_average_that_does_not_end_is_rounded_half_even_to_18_places() -> None:
    row = {"flSellQty": "0", "flBuyQty": "3", "buyAmt": "100.00"}
    (record,) = parse_positions(book(row), account=ACCOUNT, symbols=SYMBOLS).positions
    assert record["avg_price"] == "33.333333333333333333"
    row = {"flSellQty": "0", "flBuyQty": "3", "buyAmt": "200.00"}
    (record,) = parse_positions(book(row), account=ACCOUNT, symbols=SYMBOLS).positions
    assert record["avg_price"] == "66.666666666666666667"


@pytest.mark.parametrize(
    "row",
    [
        {"flBuyQty": "25", "buyAmt": "3000.00"},  # short 25, but reduced today
        {"cfSellQty": "25", "cfSellAmt": "3100.00", "flSellQty": "25"},  # carried
        {"multiplier": None},  # the scaling is not given
    ],
)
def test_no_average_where_the_amounts_do_not_give_the_entry(row: dict[str, Any]) -> None:
    payload = book(row)
    payload["data"][0] = {k: v for k, v in payload["data"][0].items() if v is not None}
    (record,) = parse_positions(payload, account=ACCOUNT, symbols=SYMBOLS).positions
    assert "avg_price" not in record
    assert record["quantity"] in ("-25", "-50")


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"flSellQty": None}, "missing field 'flSellQty'"),
        ({"cfBuyQty": "-1"}, "cfBuyQty '-1' is negative"),
        ({"buyAmt": "1,000.00"}, "buyAmt '1,000.00' is not a plain decimal number"),
        ({"prcDen": "0"}, "prcDen '0' is not positive"),
        (
            {"hsUpTm": "15-Oct-2024 09:20:15"},
            "hsUpTm '15-Oct-2024 09:20:15' is not a time like 2021/07/13 18:34:44",
        ),
    ],
)
def test_a_malformed_row_withholds_its_instrument(row: dict[str, Any], reason: str) -> None:
    good = {"prod": "MIS"}
    payload = book(good, row)
    payload["data"][1] = {k: v for k, v in payload["data"][1].items() if v is not None}
    parsed = parse_positions(payload, account=ACCOUNT, symbols=SYMBOLS)
    assert parsed.positions == ()
    assert [r.reason for r in parsed.rejections] == [
        f"data[1]: {reason}; no position is reported for NIFTY-2024-10-25000-C"
    ]


def test_an_unmapped_position_is_rejected_and_the_rest_reported() -> None:
    symbols = SymbolMap("kotak_neo", {(ACCOUNT, "nse_cm:RELIANCE-EQ"): "RELIANCE"})
    parsed = parse_positions(text("positions_constructed.json"), account=ACCOUNT, symbols=symbols)
    assert [p["instrument"] for p in parsed.positions] == ["RELIANCE"]
    assert [r.reason for r in parsed.rejections] == [
        "data[2]: " + symbols.missing(ACCOUNT, "nse_fo:NIFTY24OCT25000CE"),
        "data[3]: " + symbols.missing(ACCOUNT, "nse_fo:BANKNIFTY24OCTFUT"),
    ]


def test_a_refused_position_book_is_one_rejection() -> None:
    parsed = parse_positions(
        '{"stat": "Not_Ok", "stCode": 5203, "emsg": "No Data"}', account=ACCOUNT, symbols=SYMBOLS
    )
    assert [r.reason for r in parsed.rejections] == [
        "Kotak Neo refused the position book: stat 'Not_Ok', stCode 5203: No Data"
    ]
    empty = parse_positions('{"stat": "ok", "data": []}', account=ACCOUNT, symbols=SYMBOLS)
    assert empty.ignored == "the position book lists no positions"


def test_a_body_nested_too_deep_is_rejected_not_raised() -> None:
    deep = '{"data": ' + "[" * 100_000 + "]" * 100_000 + "}"
    (rejection,) = parse_trade_report(deep, account=ACCOUNT, symbols=SYMBOLS).rejections
    assert rejection.reason == "the trade report is not JSON this parser reads: nested too deep"
