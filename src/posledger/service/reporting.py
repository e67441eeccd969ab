"""P&L by period and trade statistics as JSON-able rows (docs/pnl.md).

The arithmetic is :mod:`posledger.domain.pnl`'s; this module feeds it from the read side:
trade-fill legs streamed in chunks (memory grows with the rows of the answer, not with the
fills), open positions with their latest marks, closed trades in close order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ..domain.numbers import fmt, fmt_opt
from ..domain.pnl import GROUPS, Leg, PnlBook, Sessions, Stats, StatsBook, TradeResult
from ..domain.timestamps import datetime_ns, format_ts, parse_ts
from ..ports import Filters, Reads
from .queries import position_views

__all__ = [
    "SCATTER_POINTS",
    "ReportData",
    "Window",
    "pnl_views",
    "report_data",
    "stats_view",
    "stats_views",
    "window",
]

Progress = Callable[[int], None]
"""Told how many rows have been read so far, now and then."""

_TICK = 20_000
SCATTER_POINTS = 5000
"""The MAE/MFE scatter of a report draws at most this many trades: the latest closed."""


@dataclass(frozen=True)
class Window:
    """What ``--tz``, ``--session-start``, ``--since`` and ``--until`` say: trading days and
    the instants ``[since, until)`` (None: unbounded)."""

    sessions: Sessions
    since: int | None
    until: int | None


def _bound(sessions: Sessions, text: str, end: bool) -> int:
    """A date is a trading day (``--since`` from its first instant, ``--until`` through its
    last); a time with an offset is that instant; a time without one is read on the wall
    clock of the time zone."""
    text = text.strip()
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO time") from None
        return sessions.day_start(date.fromordinal(day.toordinal() + 1) if end else day)
    try:
        return parse_ts(text)
    except ValueError:
        pass
    try:
        local = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO time") from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=sessions.zone)
    return datetime_ns(local)


def window(
    tz: str = "UTC",
    session_start: str = "00:00",
    since: str | None = None,
    until: str | None = None,
) -> Window:
    """Raises ValueError with a message fit for a user."""
    sessions = Sessions(tz, session_start)
    low = None if since is None else _bound(sessions, since, end=False)
    high = None if until is None else _bound(sessions, until, end=True)
    if low is not None and high is not None and high <= low:
        raise ValueError(f"--until ({until}) is not after --since ({since})")
    return Window(sessions, low, high)


def _inside(found: Window, ts: int) -> bool:
    return (found.since is None or ts >= found.since) and (found.until is None or ts < found.until)


def pnl_views(
    reads: Reads,
    filters: Filters,
    by: tuple[str, ...] = ("strategy",),
    period: str | None = None,
    found: Window | None = None,
    progress: Progress | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """P&L rows (docs/pnl.md) and how many open positions had no mark (their unrealized
    P&L is unknown, so left out)."""
    found = found or window()
    book = PnlBook(found.sessions, period)
    picks = [GROUPS.index(name) for name in by]
    count = 0
    for (
        strategy,
        account,
        mode,
        instrument,
        currency,
        ts,
        realized,
        commission,
        paid_in,
    ) in reads.pnl_legs(filters, found.since, found.until):
        values = (strategy, account, mode, instrument)
        book.add_leg(
            Leg(tuple(values[i] for i in picks), currency, ts, realized, commission, paid_in)
        )
        count += 1
        if progress is not None and count % _TICK == 0:
            progress(count)
    if progress is not None:
        progress(count)
    modes = {row["account"]: row["mode"] for row in reads.table("accounts")}
    unmarked = 0
    for position in position_views(reads, filters, include_flat=False):
        if position["unrealized_pnl"] is None:
            unmarked += 1
            continue
        ts = parse_ts(position["mark_ts"])
        if not _inside(found, ts):
            continue
        values = (
            position["strategy"],
            position["account"],
            modes.get(position["account"], ""),
            position["instrument"],
        )
        book.add_unrealized(
            tuple(values[i] for i in picks),
            position["pnl_currency"],
            ts,
            Decimal(position["unrealized_pnl"]),
        )
    out = []
    for row in book.rows():
        item: dict[str, Any] = dict(zip(by, row.group, strict=True))
        item["currency"] = row.currency
        if period is not None:
            item["period"] = row.period
            item["period_start"] = row.period_start
        item.update(
            {
                "gross_realized": fmt(row.gross_realized),
                "commissions": fmt(row.commissions),
                "realized": fmt(row.realized),
                "unrealized": fmt(row.unrealized),
                "cash_flows": fmt(row.cash_flows),
                "total": fmt(row.total),
                "cumulative": fmt(row.cumulative),
            }
        )
        out.append(item)
    return out, unmarked


def _text(value: Decimal | str | None) -> str | None:
    if isinstance(value, str):
        return value
    return fmt_opt(value)


def stats_view(stats: Stats) -> dict[str, Any]:
    """One strategy's statistics in one currency, decimals as exact strings."""
    out: dict[str, Any] = {}
    for name, value in stats.as_dict().items():
        out[name] = (
            value if isinstance(value, int) or name in ("strategy", "currency") else (_text(value))
        )
    out["first_close"] = None if stats.first_close is None else format_ts(stats.first_close)
    out["last_close"] = None if stats.last_close is None else format_ts(stats.last_close)
    return out


def trade_result(row: dict[str, Any]) -> TradeResult:
    return TradeResult(
        strategy=row["strategy"],
        currency=row["pnl_currency"],
        closed_at=row["closed_at"],
        opened_at=row["opened_at"],
        pnl=row["realized_pnl"],
        mae=row["mae"],
        mfe=row["mfe"],
    )


def stats_book(
    reads: Reads,
    filters: Filters,
    found: Window | None = None,
    keep_curves: bool = False,
    each: Callable[[dict[str, Any]], None] | None = None,
    progress: Progress | None = None,
) -> StatsBook:
    """Statistics of the closed trades closed inside the window; ``each`` also sees every
    trade row, in close order."""
    found = found or window()
    book = StatsBook(keep_curves)
    count = 0
    for row in reads.closed_trades(filters, found.since, found.until):
        book.add(trade_result(row))
        if each is not None:
            each(row)
        count += 1
        if progress is not None and count % _TICK == 0:
            progress(count)
    if progress is not None:
        progress(count)
    return book


def stats_views(
    reads: Reads, filters: Filters, found: Window | None = None
) -> list[dict[str, Any]]:
    """Per strategy and currency, the statistics of its closed trades (docs/pnl.md)."""
    return [stats_view(stats) for stats in stats_book(reads, filters, found).stats()]


@dataclass
class ReportData:
    """What the HTML report shows (docs/pnl.md, The report)."""

    window: Window
    stats: list[Stats]
    """Per strategy and currency, with their equity curves (thinned)."""
    daily: list[dict[str, Any]]
    """P&L per strategy, currency and trading day (:func:`pnl_views`)."""
    trades: list[dict[str, Any]]
    """The latest closed trades, newest first (at most the report's cap)."""
    closed: int
    """How many trades closed in the window."""
    scatter: list[dict[str, Any]]
    """Trades with MAE and MFE: strategy, currency, trade_id, mae, mfe, pnl (the latest
    :data:`SCATTER_POINTS`)."""


def report_data(
    reads: Reads,
    filters: Filters,
    found: Window,
    max_trades: int,
    progress: Progress | None = None,
) -> ReportData:
    latest: deque[dict[str, Any]] = deque(maxlen=max_trades)
    scatter: deque[dict[str, Any]] = deque(maxlen=SCATTER_POINTS)

    def keep(row: dict[str, Any]) -> None:
        if max_trades:
            latest.append(row)
        if row["mae"] is not None and row["mfe"] is not None:
            scatter.append(
                {
                    "strategy": row["strategy"],
                    "currency": row["pnl_currency"],
                    "trade_id": row["trade_id"],
                    "mae": row["mae"],
                    "mfe": row["mfe"],
                    "pnl": row["realized_pnl"],
                }
            )

    book = stats_book(reads, filters, found, keep_curves=True, each=keep, progress=progress)
    found_stats = book.stats()
    read = sum(item.trades for item in found_stats)
    # one count of rows read for the whole report: the trades, then the legs
    more = None if progress is None else (lambda legs: progress(read + legs))
    daily, _ = pnl_views(reads, filters, ("strategy",), "day", found, more)
    return ReportData(
        window=found,
        stats=found_stats,
        daily=daily,
        trades=list(reversed(latest)),
        closed=read,
        scatter=list(scatter),
    )
