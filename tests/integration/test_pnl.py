"""``Ledger.pnl`` and ``Ledger.stats`` on every store, against the hand-checked session of
tests/pnl_session.py (docs/pnl.md)."""

from __future__ import annotations

import pytest

from posledger import open_ledger
from posledger.errors import UsageError
from tests.pnl_session import CHICAGO, DAILY_CHICAGO, DAILY_UTC_USD, LINES, TOTALS, whole


@pytest.fixture
def url(db_url: str) -> str:
    with open_ledger(db_url) as ledger:
        report = ledger.ingest(LINES)
        assert (report.applied, report.rejected) == (len(LINES), 0), report.rejections
    return db_url


def test_daily_pnl_on_chicago_sessions(url: str) -> None:
    with open_ledger(url) as ledger:
        assert ledger.pnl(period="day", **CHICAGO) == DAILY_CHICAGO


def test_utc_days_put_the_1730_chicago_fill_on_monday(url: str) -> None:
    with open_ledger(url) as ledger:
        rows = ledger.pnl(period="day")
    assert [r for r in rows if r["currency"] == "USD"] == DAILY_UTC_USD


def test_one_row_per_group_without_a_period(url: str) -> None:
    with open_ledger(url) as ledger:
        assert ledger.pnl(**CHICAGO) == TOTALS
        assert ledger.pnl() == TOTALS  # the days do not matter without periods


def test_since_starts_at_the_trading_days_first_instant(url: str) -> None:
    """--since 2026-03-03 in Chicago sessions starts at 17:00 CST on Monday (23:00Z): e3
    (23:30Z) is in, e2 (22:30Z) is out; cumulative counts from --since."""
    with open_ledger(url) as ledger:
        rows = ledger.pnl(period="day", since="2026-03-03", **CHICAGO)
    expected = [dict(r) for r in DAILY_CHICAGO if r["period"] >= "2026-03-03"]
    for item in expected:
        if item["strategy"] == "alpha" and item["currency"] == "USD":
            item["cumulative"] = "-501.25"
        if item["strategy"] == "beta" and item["currency"] == "USDT":
            item["cumulative"] = "-101.2"
    assert rows == expected


def test_until_a_date_includes_that_trading_day(url: str) -> None:
    """--until 2026-03-03 ends where Wednesday's session starts (Tue 17:00 CST): b2 and the
    Wednesday mark are out, so beta's USDT is only Monday's commission."""
    with open_ledger(url) as ledger:
        rows = ledger.pnl(until="2026-03-03", **CHICAGO)
    beta_usdt = [r for r in rows if r["strategy"] == "beta" and r["currency"] == "USDT"]
    assert beta_usdt == whole(
        [
            {
                "strategy": "beta",
                "currency": "USDT",
                "period": "",
                "period_start": "",
                "gross_realized": "0",
                "commissions": "3",
                "realized": "-3",
                "unrealized": "0",
                "cash_flows": "0",
                "total": "-3",
                "cumulative": "-3",
            }
        ]
    )


def test_group_by_mode_and_account_and_filters(url: str) -> None:
    with open_ledger(url) as ledger:
        by_mode = ledger.pnl(by="mode")
        paper = ledger.pnl(by="account,instrument", mode="PAPER")
        beta = ledger.pnl(by=["strategy", "mode"], strategy="beta", period="week", **CHICAGO)
    assert [(r["mode"], r["currency"], r["total"]) for r in by_mode] == [
        ("PAPER", "BNB", "-0.01"),
        ("LIVE", "USD", "493.75"),  # -5 + 498.75
        ("PAPER", "USDT", "-206.2"),  # -102 - 104.2
    ]
    assert [(r["account"], r["instrument"], r["currency"], r["total"]) for r in paper] == [
        ("C-1", "BTCUSDT.P", "BNB", "-0.01"),
        ("C-1", "BTCUSDT.P", "USDT", "-206.2"),
    ]
    # ISO week 10 of 2026 starts on Monday 2026-03-02.
    assert [(r["period"], r["period_start"], r["currency"], r["total"]) for r in beta] == [
        ("2026-W10", "2026-03-02", "USD", "498.75"),
        ("2026-W10", "2026-03-02", "USDT", "-104.2"),
    ]
    assert {r["mode"] for r in beta} == {"LIVE", "PAPER"}


def test_month_periods(url: str) -> None:
    with open_ledger(url) as ledger:
        rows = ledger.pnl(period="month", by="instrument")
    assert [(r["instrument"], r["period"], r["period_start"], r["total"]) for r in rows] == [
        ("BTCUSDT.P", "2026-03", "2026-03-01", "-0.01"),
        ("ESM6", "2026-03", "2026-03-01", "493.75"),
        ("BTCUSDT.P", "2026-03", "2026-03-01", "-206.2"),
    ]


def test_bad_options_are_usage_errors(url: str) -> None:
    with open_ledger(url) as ledger:
        for kwargs in (
            {"by": "desk"},
            {"by": "strategy,strategy"},
            {"period": "hour"},
            {"tz": "Mars/Olympus"},
            {"session_start": "25:00"},
            {"since": "yesterday"},
            {"since": "2026-03-04", "until": "2026-03-02"},
        ):
            with pytest.raises(UsageError):
                ledger.pnl(**kwargs)  # type: ignore[arg-type]


def test_stats_of_the_session(url: str) -> None:
    """Closed trades: alpha's ESM6 trade (-5 USD) and alpha's BTC trade (-102 USDT). A lone
    loss: win rate 0, profit factor 0 / 5 = 0, expectancy -5; the curve falls from its
    starting peak of 0, so the drawdown is 5 in money and has no percent (peak not > 0)."""
    with open_ledger(url) as ledger:
        rows = ledger.stats(**CHICAGO)
    assert [(r["strategy"], r["currency"]) for r in rows] == [("alpha", "USD"), ("alpha", "USDT")]
    usd = rows[0]
    assert usd["trades"] == 1 and usd["wins"] == 0 and usd["losses"] == 1
    assert usd["win_rate"] == "0"
    assert usd["avg_win"] is None
    assert usd["avg_loss"] == "-5"
    assert usd["profit_factor"] == "0"
    assert usd["expectancy"] == "-5"
    assert usd["max_drawdown"] == "5"
    assert usd["max_drawdown_pct"] is None
    # opened 15:00Z, closed 23:30Z: 8.5 hours
    assert usd["avg_duration_seconds"] == "30600"
    assert usd["first_close"] == usd["last_close"] == "2026-03-02T23:30:00Z"
    assert rows[1]["net_pnl"] == "-102"
    # MAE/MFE at the peak quantity (docs/accounting.md, Trades). alpha's ESM6 trade, long
    # 2 @ 5000, saw 5000, the mark 5004, 5010 and 4990: (4990 - 5000) x 2 x 50 = -1000 and
    # (5010 - 5000) x 2 x 50 = +1000. Its BTC trade, long 1 @ 60500, saw 60500, the mark
    # 60450 and 60400: (60400 - 60500) x 1 = -100, and never better than its entry: 0.
    assert (usd["avg_mae"], usd["avg_mfe"]) == ("-1000", "1000")
    assert (rows[1]["avg_mae"], rows[1]["avg_mfe"]) == ("-100", "0")
    with open_ledger(url) as ledger:
        assert ledger.stats(strategy="beta") == []
        # Closed on Monday (Chicago sessions): nothing closed from Tuesday's session on...
        assert ledger.stats(since="2026-03-03T00:00:00-06:00") == []
        # ...but e3 closed at 17:30 CST, inside Tuesday's trading day.
        assert len(ledger.stats(since="2026-03-03", **CHICAGO)) == 1


def test_a_flip_books_its_closing_part_on_its_day_and_the_days_add_up_to_the_trades(
    db_url: str,
) -> None:
    """MES (multiplier 5), strategy s, UTC days:
    Mon BUY 2 @ 100, commission 2                      -> Mon: -2
    Tue SELL 3 @ 110, commission 3: a flip; 2 close ((110 - 100) x 2 x 5 = +100, commission
        3 x 2/3 = 2) and 1 opens short @ 110 (commission 1) -> Tue: 100 - 3 = 97
    Wed BUY 1 @ 105, commission 1: closes the short (110 - 105) x 1 x 5 = +25 -> Wed: 24
    Trades: 100 - 2 - 2 = 96 and 25 - 1 - 1 = 23; days: -2 + 97 + 24 = 119 = 96 + 23."""
    with open_ledger(db_url) as ledger:
        ledger.register_account(account="A", venue="CME", mode="SIM", position_mode="netting")
        ledger.register_instrument(
            instrument="MES", kind="future", multiplier="5", quote_currency="USD",
            settlement_currency="USD",
        )  # fmt: skip
        ledger.register_strategy(strategy="s")
        for exec_id, side, qty, price, day, fee in [
            ("f1", "BUY", "2", "100", "02", "2"),
            ("f2", "SELL", "3", "110", "03", "3"),
            ("f3", "BUY", "1", "105", "04", "1"),
        ]:
            outcome = ledger.apply_fill(
                exec_id=exec_id, account="A", instrument="MES", side=side, quantity=qty,
                price=price, ts=f"2026-03-{day}T15:00:00Z", strategy="s", commission=fee,
            )  # fmt: skip
            assert outcome.status == "applied", outcome.reason
        rows = ledger.pnl(period="day")
        trades = ledger.trades()
    assert [(r["period"], r["gross_realized"], r["commissions"], r["total"]) for r in rows] == [
        ("2026-03-02", "0", "2", "-2"),
        ("2026-03-03", "100", "3", "97"),
        ("2026-03-04", "25", "1", "24"),
    ]
    assert rows[-1]["cumulative"] == "119"
    assert [t["realized_pnl"] for t in trades] == ["96", "23"]
