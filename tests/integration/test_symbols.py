"""The symbol map on every store (docs/venues/README.md, Symbol map): a venue's symbol is
an instrument per account; the same entry again changes nothing, another instrument for
a mapped symbol is refused, and rebuilding the books leaves the map alone."""

from __future__ import annotations

import pytest

from posledger import NotFound, UsageError, open_ledger

from .helpers import setup


def test_a_symbol_is_an_instrument_per_account(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        first = ledger.map_symbol("Binance", "HDG", "BTCUSDT", "PERP")
        assert (first["venue"], first["added"]) == ("binance", True)
        again = ledger.map_symbol("binance", "HDG", "BTCUSDT", "PERP")
        assert again["added"] is False and again["created_at"] == first["created_at"]
        # The same symbol on another account is another entry, here another instrument.
        ledger.map_symbol("binance", "ACC", "BTCUSDT", "FUT")
        ledger.map_symbol("dtc", "ACC", "ESZ6", "FUT")
        with pytest.raises(UsageError, match="mapped to PERP: remove it first"):
            ledger.map_symbol("binance", "HDG", "BTCUSDT", "FUT")
        with pytest.raises(NotFound, match="no instrument 'ETH'"):
            ledger.map_symbol("binance", "HDG", "ETHUSDT", "ETH")
        with pytest.raises(NotFound, match="no account 'NOPE'"):
            ledger.map_symbol("binance", "NOPE", "BTCUSDT", "PERP")
        with pytest.raises(UsageError, match="surrounding spaces"):
            ledger.map_symbol("binance", "HDG", " BTCUSDT", "PERP")
        listed = [
            (r["venue"], r["account"], r["symbol"], r["instrument"]) for r in ledger.symbols()
        ]
        assert listed == [
            ("binance", "ACC", "BTCUSDT", "FUT"),
            ("binance", "HDG", "BTCUSDT", "PERP"),
            ("dtc", "ACC", "ESZ6", "FUT"),
        ]
        symbols = ledger.symbol_map("BINANCE")
        assert symbols.instrument("HDG", "BTCUSDT") == "PERP"
        assert symbols.instrument("ACC", "BTCUSDT") == "FUT"
        assert symbols.instrument("ACC", "ESZ6") is None  # dtc's, not binance's
        removed = ledger.unmap_symbol("binance", "ACC", "BTCUSDT")
        assert removed["instrument"] == "FUT"
        with pytest.raises(NotFound, match="is not mapped"):
            ledger.unmap_symbol("binance", "ACC", "BTCUSDT")
        assert [r["symbol"] for r in ledger.symbols("binance")] == ["BTCUSDT"]
    with open_ledger(db_url) as ledger:  # kept
        assert ledger.symbol_map("binance").entries == {("HDG", "BTCUSDT"): "PERP"}


def test_rebuild_leaves_the_map_alone(db_url: str) -> None:
    with open_ledger(db_url) as ledger:
        setup(ledger)
        ledger.map_symbol("binance", "HDG", "BTCUSDT", "PERP")
        ledger.rebuild()
        assert ledger.symbol_map("binance").entries == {("HDG", "BTCUSDT"): "PERP"}
        assert ledger.verify().ok
