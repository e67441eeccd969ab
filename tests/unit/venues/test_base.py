"""The helpers every venue parser shares (posledger.venues.base)."""

from __future__ import annotations

import pytest

from posledger.venues.base import SymbolMap, VenueError, decimal_text, iso_from_ms


def test_decimal_text_is_exact_and_canonical() -> None:
    assert decimal_text("0.00100000", "qty") == "0.001"
    assert decimal_text("25000", "price") == "25000"
    assert decimal_text("-0.0", "pnl") == "0"
    assert decimal_text(7, "qty") == "7"
    assert decimal_text("1E+2", "qty") == "100"
    for bad in (0.1, True, None, "abc", "NaN", "Infinity"):
        with pytest.raises(VenueError):
            decimal_text(bad, "qty")


def test_iso_from_ms_keeps_the_milliseconds() -> None:
    assert iso_from_ms(1568879465651) == "2019-09-19T07:51:05.651Z"
    assert iso_from_ms("1568879465000") == "2019-09-19T07:51:05.000Z"
    for bad in (0, -1, "x", 1.5, 2**60):
        with pytest.raises(VenueError):
            iso_from_ms(bad)


def test_a_symbol_map_is_per_account() -> None:
    symbols = SymbolMap("binance", {("A1", "BTCUSDT"): "BTC-PERP", ("A2", "BTCUSDT"): "BTC2"})
    assert symbols.instrument("A1", "BTCUSDT") == "BTC-PERP"
    assert symbols.instrument("A2", "BTCUSDT") == "BTC2"
    assert symbols.instrument("A3", "BTCUSDT") is None
    assert "posledger symbols add binance A3 BTCUSDT" in symbols.missing("A3", "BTCUSDT")
