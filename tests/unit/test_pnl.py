"""The pure P&L and statistics arithmetic (posledger.domain.pnl, docs/pnl.md), by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from posledger.domain.pnl import (
    INFINITY,
    Leg,
    PnlBook,
    Sessions,
    StatsBook,
    TradeResult,
    parse_groups,
    period_of,
    thin,
)
from posledger.domain.timestamps import parse_ts

D = Decimal


def ns(text: str) -> int:
    return parse_ts(text)


# -- trading days ------------------------------------------------------------------------


def test_an_evening_session_start_belongs_to_the_next_day() -> None:
    cme = Sessions("America/Chicago", "17:00")
    # CST (UTC-6) in early March 2026
    assert cme.day(ns("2026-03-02T16:30:00-06:00")) == date(2026, 3, 2)
    assert cme.day(ns("2026-03-02T16:59:59.999999999-06:00")) == date(2026, 3, 2)
    assert cme.day(ns("2026-03-02T17:00:00-06:00")) == date(2026, 3, 3)
    assert cme.day(ns("2026-03-02T17:30:00-06:00")) == date(2026, 3, 3)
    # Sunday's evening open trades for Monday
    assert cme.day(ns("2026-03-01T18:00:00-06:00")) == date(2026, 3, 2)
    # CDT (UTC-5) after 2026-03-08: still 17:00 on the wall clock
    assert cme.day(ns("2026-03-10T21:59:00Z")) == date(2026, 3, 10)  # 16:59 CDT
    assert cme.day(ns("2026-03-10T22:00:00Z")) == date(2026, 3, 11)  # 17:00 CDT
    assert cme.day_start(date(2026, 3, 3)) == ns("2026-03-02T17:00:00-06:00")
    assert cme.day_start(date(2026, 3, 11)) == ns("2026-03-10T17:00:00-05:00")


def test_a_morning_session_start_leaves_earlier_times_to_the_previous_day() -> None:
    tokyo = Sessions("Asia/Tokyo", "08:00")
    assert tokyo.day(ns("2026-03-02T07:59:00+09:00")) == date(2026, 3, 1)
    assert tokyo.day(ns("2026-03-02T08:00:00+09:00")) == date(2026, 3, 2)
    assert tokyo.day_start(date(2026, 3, 2)) == ns("2026-03-02T08:00:00+09:00")


def test_midnight_utc_is_the_calendar_date() -> None:
    utc = Sessions()
    assert utc.day(ns("2026-03-02T23:59:59Z")) == date(2026, 3, 2)
    assert utc.day(ns("2026-03-03T00:00:00Z")) == date(2026, 3, 3)
    # the per-hour shortcut answers the same as the direct reading, on both sides of a start
    cme = Sessions("America/Chicago", "17:00")
    for minute in range(0, 24 * 60, 7):
        t = ns("2026-03-02T00:00:00Z") + minute * 60 * 10**9
        assert cme.day(t) == cme._day(t)


def test_periods() -> None:
    assert period_of(date(2026, 3, 4), "day") == ("2026-03-04", "2026-03-04")
    assert period_of(date(2026, 3, 4), "week") == ("2026-W10", "2026-03-02")
    assert period_of(date(2026, 1, 1), "week") == ("2026-W01", "2025-12-29")
    assert period_of(date(2026, 3, 4), "month") == ("2026-03", "2026-03-01")
    assert period_of(date(2026, 3, 4), None) == ("", "")
    with pytest.raises(ValueError, match="period"):
        period_of(date(2026, 3, 4), "hour")


def test_bad_sessions_and_groups() -> None:
    for start in ("5:00", "24:00", "12:60", "noon", "12:00:00", "１２:00"):
        with pytest.raises(ValueError, match="HH:MM"):
            Sessions("UTC", start)
    with pytest.raises(ValueError, match="time zone"):
        Sessions("Nowhere/Town")
    assert parse_groups("Strategy, mode") == ("strategy", "mode")
    with pytest.raises(ValueError, match="desk"):
        parse_groups("strategy,desk")
    with pytest.raises(ValueError, match="twice"):
        parse_groups("mode,mode")


# -- P&L book ----------------------------------------------------------------------------


def test_a_trade_closed_in_two_parts_on_two_days_books_each_part_on_its_day() -> None:
    book = PnlBook(Sessions(), "day")
    g = ("s",)
    book.add_leg(Leg(g, "USD", ns("2026-03-02T10:00:00Z"), D(0), D("1"), "USD"))  # open
    book.add_leg(Leg(g, "USD", ns("2026-03-02T15:00:00Z"), D("30"), D("0.5"), "USD"))
    book.add_leg(Leg(g, "USD", ns("2026-03-03T15:00:00Z"), D("-10"), D("0.5"), "BNB"))
    book.add_unrealized(g, "USD", ns("2026-03-04T09:00:00Z"), D("7.25"))
    rows = book.rows()
    assert [(r.currency, r.period) for r in rows] == [
        ("BNB", "2026-03-03"),
        ("USD", "2026-03-02"),
        ("USD", "2026-03-03"),
        ("USD", "2026-03-04"),
    ]
    bnb, mon, tue, wed = rows
    assert (bnb.gross_realized, bnb.commissions, bnb.total) == (0, D("0.5"), D("-0.5"))
    # Monday: 30 - (1 + 0.5) = 28.5
    assert (mon.gross_realized, mon.commissions, mon.realized, mon.total) == (
        D("30"),
        D("1.5"),
        D("28.5"),
        D("28.5"),
    )
    # Tuesday: -10, its commission paid in BNB (booked there); cumulative 28.5 - 10 = 18.5
    assert (tue.realized, tue.cumulative) == (D("-10"), D("18.5"))
    # Wednesday: unrealized only; cumulative 18.5 + 7.25 = 25.75
    assert (wed.unrealized, wed.realized, wed.total, wed.cumulative) == (
        D("7.25"),
        0,
        D("7.25"),
        D("25.75"),
    )
    assert wed.cash_flows == 0


def test_without_a_period_one_row_per_group_and_currency() -> None:
    book = PnlBook(Sessions(), None)
    for day in ("02", "03", "04"):
        book.add_leg(Leg(("a", "X"), "EUR", ns(f"2026-03-{day}T10:00:00Z"), D("1.1"), D(0), "EUR"))
    book.add_leg(Leg(("b", "X"), "EUR", ns("2026-03-02T10:00:00Z"), D("-2"), D(0), "EUR"))
    rows = book.rows()
    assert [(r.group, r.period, r.total, r.cumulative) for r in rows] == [
        (("a", "X"), "", D("3.3"), D("3.3")),
        (("b", "X"), "", D("-2"), D("-2")),
    ]


# -- statistics ----------------------------------------------------------------------------


def _trades(*pnls: str) -> list[TradeResult]:
    hour = 3600 * 10**9
    return [
        TradeResult(
            "s", "USD", closed_at=(i + 1) * 2 * hour, opened_at=(i + 1) * 2 * hour - hour,
            pnl=D(p), mae=D(-i), mfe=D(i * 2),
        )
        for i, p in enumerate(pnls)
    ]  # fmt: skip


def test_hand_computed_statistics() -> None:
    """Trades +100, -50, +30, -80, +20 (in close order).

    wins 3 (100, 30, 20), losses 2 (-50, -80): win rate 3/5 = 0.6
    avg win 150/3 = 50; avg loss -130/2 = -65
    profit factor 150/130 = 1.153846153846153846 (18 digits, half-even)
    expectancy 20/5 = 4
    equity 100, 50, 80, 0, 20; peak 100 throughout; drawdowns 0, 50, 20, 100, 80:
    max drawdown 100, i.e. 100% of the peak of 100
    MAE 0, -1, -2, -3, -4: mean -2; MFE 0, 2, 4, 6, 8: mean 4; each trade lasts 1 hour.
    """
    book = StatsBook(keep_curves=True)
    book.add_all(_trades("100", "-50", "30", "-80", "20"))
    [s] = book.stats()
    assert (s.trades, s.wins, s.losses, s.breakeven) == (5, 3, 2, 0)
    assert s.win_rate == D("0.6")
    assert s.avg_win == D("50")
    assert s.avg_loss == D("-65")
    assert s.profit_factor == D("1.153846153846153846")
    assert s.expectancy == D("4")
    assert s.max_drawdown == D("100")
    assert s.max_drawdown_pct == D("100")
    assert s.avg_mae == D("-2") and s.avg_mfe == D("4")
    assert s.avg_duration_seconds == D("3600")
    assert [(e, d) for _, e, d in s.curve] == [
        (D(100), D(0)),
        (D(50), D(50)),
        (D(80), D(20)),
        (D(0), D(100)),
        (D(20), D(80)),
    ]


def test_drawdown_percent_is_of_a_positive_peak_only() -> None:
    """-10, +30, -5: equity -10, 20, 15. The first drawdown (10, from the starting peak of 0)
    has no percent; the second is 5 of a peak of 20 = 25%. Max drawdown in money is 10."""
    book = StatsBook()
    book.add_all(_trades("-10", "30", "-5"))
    [s] = book.stats()
    assert s.max_drawdown == D("10")
    assert s.max_drawdown_pct == D("25")
    # A curve that never rises above 0 has no drawdown percent at all.
    book = StatsBook()
    book.add_all(_trades("-1", "-2"))
    [s] = book.stats()
    assert (s.max_drawdown, s.max_drawdown_pct) == (D("3"), None)
    assert s.profit_factor == D("0")


def test_edge_cases_of_statistics() -> None:
    assert StatsBook().stats() == []
    # No losses: profit factor "inf"; no wins either (all breakeven): null.
    book = StatsBook()
    book.add_all(_trades("5", "0"))
    [s] = book.stats()
    assert s.profit_factor == INFINITY
    assert (s.wins, s.losses, s.breakeven, s.avg_loss) == (1, 0, 1, None)
    assert s.win_rate == D("0.5")
    assert s.max_drawdown == 0 and s.max_drawdown_pct == 0
    book = StatsBook()
    book.add_all(_trades("0"))
    [s] = book.stats()
    assert s.profit_factor is None
    assert s.max_drawdown_pct is None
    # A strategy's statistics never mix currencies.
    book = StatsBook()
    book.add(TradeResult("s", "USD", 2, 1, D(1)))
    book.add(TradeResult("s", "EUR", 2, 1, D(1)))
    assert [(x.strategy, x.currency) for x in book.stats()] == [("s", "EUR"), ("s", "USD")]
    # No trade: nothing to average.
    empty = type(s)("s", "USD")
    assert (empty.win_rate, empty.expectancy, empty.profit_factor) == (None, None, None)
    assert (empty.avg_duration_seconds, empty.max_drawdown, empty.max_drawdown_pct) == (
        None,
        0,
        None,
    )


def test_thinning_keeps_the_troughs_and_the_last_point() -> None:
    points = [(i, D(i % 10), D(0 if i != 777 else 500)) for i in range(5000)]
    thinned = thin(points, 1000)
    assert len(thinned) <= 1000
    assert thinned[-1] == points[-1]
    assert (777, D(7), D(500)) in thinned
    assert [p[0] for p in thinned] == sorted(p[0] for p in thinned)
    assert thin(points[:10], 1000) == points[:10]


# -- the window (--since, --until) ---------------------------------------------------------


def test_dates_are_trading_days_and_times_are_read_in_the_zone() -> None:
    from posledger.service.reporting import window

    found = window("America/Chicago", "17:00", since="2026-03-03", until="2026-03-03")
    # trading day Tue 03-03 runs from Mon 17:00 CST to Tue 17:00 CST; --until includes it
    assert found.since == ns("2026-03-02T17:00:00-06:00")
    assert found.until == ns("2026-03-03T17:00:00-06:00")
    # a time without an offset is on the zone's wall clock; with one, it is that instant
    assert window("America/Chicago", since="2026-03-03T09:30").since == ns(
        "2026-03-03T09:30:00-06:00"
    )
    assert window("America/Chicago", since="2026-03-03T09:30:00.5Z").since == ns(
        "2026-03-03T09:30:00.5Z"
    )
    assert window().since is None and window().until is None
    for bad in ({"since": "03/03/2026"}, {"since": "2026-02-30"}, {"until": "soon"}):
        with pytest.raises(ValueError, match="not a date"):
            window(**bad)
    with pytest.raises(ValueError, match="not after"):
        window(since="2026-03-03", until="2026-03-02")
