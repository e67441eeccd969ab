"""Reading price streams for the paper venue: CSV and JSONL ticks and bars, and each error."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from posledger.domain.timestamps import parse_ts
from posledger.paper.prices import Bar, PriceError, Tick, read_prices

T0 = "2026-03-02T14:30:00Z"
T1 = "2026-03-02T14:31:00Z"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def read(path: Path, **kwargs: str) -> list[Tick | Bar]:
    return list(read_prices(path, **kwargs))


def error(path: Path, **kwargs: str) -> str:
    with pytest.raises(PriceError) as caught:
        read(path, **kwargs)
    return str(caught.value)


# -- good files ---------------------------------------------------------------------------


def test_ticks_csv(tmp_path):
    path = write(
        tmp_path,
        "ticks.csv",
        f"ts,instrument,price\n{T0},BTC,100.5\n\n2026-03-02T15:31:00+01:00,BTC,101\n",
    )
    assert read(path) == [
        Tick("BTC", parse_ts(T0), Decimal("100.5")),
        Tick("BTC", parse_ts(T1), Decimal("101")),
    ]
    # Exact decimals, not floats.
    first = read(path)[0]
    assert isinstance(first, Tick)
    assert str(first.price) == "100.5"


def test_bars_csv_with_extra_columns_and_instrument_argument(tmp_path):
    path = write(
        tmp_path,
        "bars.csv",
        f"ts,open,high,low,close,volume\n{T0},10,12,9.5,11,300\n{T1},11,11,10,10.25,100\n",
    )
    assert read(path, instrument="ES") == [
        Bar("ES", parse_ts(T0), Decimal(10), Decimal(12), Decimal("9.5"), Decimal(11)),
        Bar("ES", parse_ts(T1), Decimal(11), Decimal(11), Decimal(10), Decimal("10.25")),
    ]


def test_empty_instrument_cell_takes_the_argument(tmp_path):
    path = write(tmp_path, "ticks.csv", f"ts,instrument,price\n{T0},,5\n{T1},ES,6\n")
    assert [t.instrument for t in read(path, instrument="ES")] == ["ES", "ES"]


def test_jsonl_ticks_and_bars_with_integers_and_strings(tmp_path):
    path = write(
        tmp_path,
        "prices.jsonl",
        f'{{"ts": "{T0}", "instrument": "BTC", "price": "100.25"}}\n'
        "\n"
        f'{{"ts": "{T1}", "instrument": "BTC", "open": 100, "high": "102", '
        f'"low": "99.5", "close": "101", "note": "ignored"}}\n',
    )
    assert read(path) == [
        Tick("BTC", parse_ts(T0), Decimal("100.25")),
        Bar("BTC", parse_ts(T1), Decimal(100), Decimal(102), Decimal("99.5"), Decimal(101)),
    ]


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        ("prices.txt", f'  \n{{"ts": "{T0}", "instrument": "X", "price": "1"}}\n', Tick),
        ("prices", f"ts,instrument,price\n{T0},X,1\n", Tick),
        ("prices.json", f'{{"ts": "{T0}", "instrument": "X", "price": "1"}}\n', Tick),
        ("PRICES.CSV", f"ts,instrument,price\n{T0},X,1\n", Tick),
    ],
)
def test_format_by_suffix_or_sniffed(tmp_path, name, text, kind):
    [event] = read(write(tmp_path, name, text))
    assert isinstance(event, kind)
    assert event == kind("X", parse_ts(T0), Decimal(1))


def test_times_are_checked_per_instrument(tmp_path):
    path = write(
        tmp_path,
        "ticks.csv",
        f"ts,instrument,price\n{T1},A,1\n{T0},B,2\n{T0},B,3\n{T1},A,4\n",
    )
    assert [t.instrument for t in read(path)] == ["A", "B", "B", "A"]


def test_reading_streams_rows_before_an_error(tmp_path):
    path = write(tmp_path, "ticks.csv", f"ts,instrument,price\n{T0},A,1\n{T0},A,oops\n")
    stream = read_prices(path)
    assert next(stream) == Tick("A", parse_ts(T0), Decimal(1))
    with pytest.raises(PriceError):
        next(stream)


def test_bom_is_skipped(tmp_path):
    path = tmp_path / "ticks.csv"
    path.write_bytes(f"\ufeffts,instrument,price\n{T0},A,1\n".encode())
    assert read(path) == [Tick("A", parse_ts(T0), Decimal(1))]


# -- errors: each names the file, the line and the field ---------------------------------


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("NaN", "is not a decimal number"),
        ("Infinity", "is not a decimal number"),
        ("", "is not a decimal number"),
        ("1e3", "without an exponent"),
        ("+5", "without a '+' sign"),
        (" 5", "surrounding spaces"),
        ("1,5", "is not a decimal number"),
        ("abc", "is not a decimal number"),
    ],
)
def test_bad_csv_amounts(tmp_path, cell, problem):
    path = write(tmp_path, "ticks.csv", f'ts,instrument,price\n{T0},A,1\n{T0},A,"{cell}"\n')
    message = error(path)
    assert message.startswith(f"{path}, line 3, field 'price': ")
    assert problem in message


def test_bad_bar_amount_names_its_field(tmp_path):
    path = write(tmp_path, "bars.csv", f"ts,instrument,open,high,low,close\n{T0},A,1,2,x,1\n")
    assert f"{path}, line 2, field 'low': 'x' is not a decimal number" in error(path)


@pytest.mark.parametrize(
    ("ts", "problem"),
    [
        ("2026-03-02T14:30:00", "add Z or ±HH:MM"),
        ("2026-03-02", "is not an ISO 8601 time"),
        ("2026-02-30T14:30:00Z", "not a valid time"),
        ("", "is not an ISO 8601 time"),
    ],
)
def test_bad_times(tmp_path, ts, problem):
    path = write(tmp_path, "ticks.csv", f"ts,instrument,price\n{ts},A,1\n")
    message = error(path)
    assert message.startswith(f"{path}, line 2, field 'ts': ")
    assert problem in message


def test_time_going_back_within_an_instrument(tmp_path):
    path = write(tmp_path, "ticks.csv", f"ts,instrument,price\n{T1},A,1\n{T0},B,1\n{T0},A,1\n")
    message = error(path)
    assert message.startswith(f"{path}, line 4, field 'ts': goes back in time")
    assert "earlier than line 2 of 'A'" in message


@pytest.mark.parametrize(
    ("bar", "field"),
    [
        ("10,10.5,9,11", "high"),  # high below close
        ("12,11,9,10", "high"),  # high below open
        ("10,12,10.5,11", "low"),  # low above open
        ("10,12,9,8", "low"),  # low above close
    ],
)
def test_inconsistent_bars(tmp_path, bar, field):
    path = write(tmp_path, "bars.csv", f"ts,instrument,open,high,low,close\n{T0},A,{bar}\n")
    assert error(path).startswith(f"{path}, line 2, field '{field}': ")


def test_bar_with_equal_prices_is_fine(tmp_path):
    path = write(tmp_path, "bars.csv", f"ts,instrument,open,high,low,close\n{T0},A,5,5,5,5\n")
    assert read(path) == [Bar("A", parse_ts(T0), *(Decimal(5),) * 4)]


def test_instrument_differs_from_argument(tmp_path):
    path = write(tmp_path, "ticks.csv", f"ts,instrument,price\n{T0},ES,1\n{T0},NQ,1\n")
    message = error(path, instrument="ES")
    assert message.startswith(f"{path}, line 3, field 'instrument': 'NQ' differs")


def test_instrument_missing(tmp_path):
    no_column = write(tmp_path, "a.csv", f"ts,price\n{T0},1\n")
    assert error(no_column).startswith(f"{no_column}, line 1, field 'instrument': is missing")
    empty_cell = write(tmp_path, "b.csv", f"ts,instrument,price\n{T0},,1\n")
    assert error(empty_cell).startswith(f"{empty_cell}, line 2, field 'instrument': is missing")
    jsonl = write(tmp_path, "c.jsonl", f'{{"ts": "{T0}", "price": "1"}}\n')
    assert error(jsonl).startswith(f"{jsonl}, line 1, field 'instrument': is missing")


@pytest.mark.parametrize(
    ("header", "field", "problem"),
    [
        ("instrument,price", "ts", "is missing from the header row"),
        ("ts,instrument", "price", "is missing"),
        ("ts,instrument,open,high,low", "close", "a bar needs open, high, low, close"),
        ("ts,instrument,price,open,high,low,close", "price", "not both"),
        ("ts,instrument,price,price", "price", "appears twice"),
    ],
)
def test_bad_csv_headers(tmp_path, header, field, problem):
    path = write(tmp_path, "p.csv", f"{header}\n")
    message = error(path)
    assert message.startswith(f"{path}, line 1, field '{field}': ")
    assert problem in message


def test_empty_csv_needs_a_header(tmp_path):
    path = write(tmp_path, "p.csv", "\n\n")
    assert "needs a header row" in error(path)


def test_empty_jsonl_is_an_empty_stream(tmp_path):
    assert read(write(tmp_path, "p.jsonl", "\n")) == []


def test_csv_row_with_wrong_number_of_cells(tmp_path):
    path = write(tmp_path, "p.csv", f"ts,instrument,price\n{T0},A\n")
    assert error(path) == f"{path}, line 2: has 2 cells where the header has 3"


def test_line_numbers_count_blank_lines_and_multiline_cells(tmp_path):
    path = write(
        tmp_path,
        "p.csv",
        f'ts,instrument,price,note\n\n{T0},A,1,"two\nlines"\n\n{T0},A,bad,x\n',
    )
    assert error(path).startswith(f"{path}, line 6, field 'price': ")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1.5", 'write it as a string ("1.5") or an integer'),
        ("1e3", "binary float"),
        ("NaN", "is not a finite number"),
        ("Infinity", "is not a finite number"),
        ("true", "must be a string"),
        ("null", "is missing"),
        ('"1e3"', "without an exponent"),
        ('"NaN"', "is not a decimal number"),
        ("123456789012345678901", "more than 20 digits"),
    ],
)
def test_bad_jsonl_amounts(tmp_path, value, problem):
    path = write(
        tmp_path,
        "p.jsonl",
        f'{{"ts": "{T0}", "instrument": "A", "price": "1"}}\n'
        f'{{"ts": "{T0}", "instrument": "A", "price": {value}}}\n',
    )
    message = error(path)
    assert message.startswith(f"{path}, line 2, field 'price': ")
    assert problem in message


@pytest.mark.parametrize(
    ("line", "field", "problem"),
    [
        ("not json", None, "is not valid JSON"),
        ('["a"]', None, "is not a JSON object"),
        (f'{{"ts": "{T0}", "ts": "{T1}", "instrument": "A", "price": "1"}}', None, "twice"),
        ('{"ts": 1, "instrument": "A", "price": "1"}', "ts", "must be a string"),
        ('{"instrument": "A", "price": "1"}', "ts", "is missing"),
        (f'{{"ts": "{T0}", "instrument": 7, "price": "1"}}', "instrument", "must be a string"),
        (f'{{"ts": "{T0}", "instrument": "A", "open": "1"}}', "high", "a bar needs"),
    ],
)
def test_bad_jsonl_records(tmp_path, line, field, problem):
    path = write(tmp_path, "p.jsonl", f"\n{line}\n")
    message = error(path)
    where = f"{path}, line 2" + ("" if field is None else f", field '{field}'")
    assert message.startswith(where + ": ")
    assert problem in message


def test_price_error_is_a_value_error_with_its_parts(tmp_path):
    path = write(tmp_path, "p.csv", f"ts,instrument,price\n{T0},A,x\n")
    with pytest.raises(ValueError) as caught:
        read(path)
    assert isinstance(caught.value, PriceError)
    assert (caught.value.path, caught.value.line, caught.value.field) == (path, 2, "price")
