"""P&L by period and trade statistics: the pure arithmetic (docs/pnl.md).

Nothing here reads a database. :class:`Sessions` says which trading day an instant belongs
to; :class:`PnlBook` adds up realized P&L, commissions and unrealized P&L per group,
currency and period as rows stream past; :class:`StatsBook` does the same for closed
trades (win rate, profit factor, expectancy, drawdown of the realized equity curve). Every
amount is an exact ``Decimal``; a quotient is rounded half-even to 18 fractional digits
(docs/accounting.md, Numbers). Amounts of different currencies are never added together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .numbers import ZERO, exact, q18

__all__ = [
    "CURVE_POINTS",
    "GROUPS",
    "INFINITY",
    "PERIODS",
    "Leg",
    "PnlBook",
    "PnlRow",
    "Sessions",
    "Stats",
    "StatsBook",
    "TradeResult",
    "parse_groups",
    "period_of",
    "thin",
]

GROUPS = ("strategy", "account", "mode", "instrument")
"""What ``pnl --by`` may group by."""
PERIODS = ("day", "week", "month")
INFINITY = "inf"
"""The profit factor of trades with wins and no loss."""

_NS = 1_000_000_000
_HOUR_NS = 3600 * _NS
_HUNDRED = Decimal(100)

CURVE_POINTS = 2000
"""A kept equity curve holds at most twice this many points (see :func:`thin`)."""


def thin(
    points: list[tuple[int, Decimal, Decimal]], limit: int = CURVE_POINTS
) -> list[tuple[int, Decimal, Decimal]]:
    """At most ``limit`` points of a curve of ``(time, equity, drawdown)``: while there are
    more, each pair of neighbours becomes the one with the deeper drawdown (the later one
    when equal), so the troughs and the largest drawdown stay drawn; the last point stays."""
    while len(points) > limit:
        last = points[-1]
        merged = [a if a[2] > b[2] else b for a, b in zip(points[0::2], points[1::2], strict=False)]
        if merged[-1] is not last:
            merged.append(last)
        points = merged
    return points


def parse_groups(text: str) -> tuple[str, ...]:
    """``strategy,account`` -> ``("strategy", "account")``; each of :data:`GROUPS` at most
    once, at least one. Raises ValueError with a message fit for a user."""
    names = tuple(part.strip().lower() for part in text.split(","))
    for name in names:
        if name not in GROUPS:
            raise ValueError(f"cannot group by {name!r}: choose from {', '.join(GROUPS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{text!r} names a group twice")
    return names


class Sessions:
    """Trading days in time zone ``tz`` whose session starts at ``start`` (``HH:MM``).

    The instant ``t`` is read on the wall clock of ``tz``; with ``s`` the session start,
    its trading day is the calendar date of ``wall(t) − s``, plus one day when ``s`` is
    12:00 or later. So with 17:00 (CME's evening open) 16:59 on Monday belongs to Monday
    and 17:00 to Tuesday; with 08:00, 07:59 on Monday belongs to Sunday; with 00:00 the
    trading day is the calendar date.
    """

    def __init__(self, tz: str = "UTC", start: str = "00:00") -> None:
        try:
            self.zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {tz!r} (an IANA name such as America/Chicago)"
            ) from None
        hours, sep, minutes = start.partition(":")
        if not (
            sep
            and hours.isascii()
            and hours.isdigit()
            and minutes.isascii()
            and minutes.isdigit()
            and len(hours) == 2
            and len(minutes) == 2
            and int(hours) <= 23
            and int(minutes) <= 59
        ):
            raise ValueError(f"a session start is HH:MM (00:00 to 23:59), got {start!r}")
        self.tz = tz
        self.start = time(int(hours), int(minutes))
        self.shift = timedelta(hours=int(hours), minutes=int(minutes))
        self.evening = int(hours) >= 12
        self._hours: dict[int, date | None] = {}

    def _day(self, ns: int) -> date:
        wall = datetime.fromtimestamp(ns // _NS, self.zone).replace(tzinfo=None)
        day = (wall - self.shift).date()
        return day + timedelta(days=1) if self.evening else day

    def day(self, ns: int) -> date:
        """The trading day of an instant (nanoseconds since the epoch, UTC)."""
        hour = ns // _HOUR_NS
        if hour in self._hours:
            found = self._hours[hour]
            # None: a session starts within this hour, so no shortcut.
            return self._day(ns) if found is None else found
        first, last = self._day(hour * _HOUR_NS), self._day((hour + 1) * _HOUR_NS - 1)
        if len(self._hours) > 100_000:
            self._hours.clear()
        self._hours[hour] = first if first == last else None
        return self._day(ns)

    def day_start(self, day: date) -> int:
        """The first instant of a trading day: the session start on the wall clock of the
        day before (evening starts) or of the day itself (ns since the epoch)."""
        calendar = day - timedelta(days=1) if self.evening else day
        local = datetime.combine(calendar, self.start, self.zone)
        return int(local.timestamp()) * _NS

    def local(self, ns: int) -> datetime:
        """The instant on the wall clock of the time zone (aware)."""
        return datetime.fromtimestamp(ns // _NS, self.zone).replace(microsecond=(ns % _NS) // 1000)


def period_of(day: date, kind: str | None) -> tuple[str, str]:
    """A trading day's period as ``(label, first day)``: the day itself (``2026-03-02``),
    its ISO week (``2026-W10``, from Monday), its month (``2026-03``); ``("", "")`` for
    no period."""
    if kind is None:
        return "", ""
    if kind == "day":
        text = day.isoformat()
        return text, text
    if kind == "week":
        year, week, weekday = day.isocalendar()
        return f"{year}-W{week:02d}", (day - timedelta(days=weekday - 1)).isoformat()
    if kind == "month":
        return f"{day.year}-{day.month:02d}", day.replace(day=1).isoformat()
    raise ValueError(f"a period is one of {', '.join(PERIODS)}, got {kind!r}")


@dataclass(frozen=True, slots=True)
class Leg:
    """What one trade-fill leg adds to P&L: ``realized`` (gross, in ``currency``, the
    trade's P&L currency) and ``commission`` in ``commission_currency``, at ``ts``."""

    group: tuple[str, ...]
    currency: str
    ts: int
    realized: Decimal
    commission: Decimal
    commission_currency: str


@dataclass(slots=True)
class PnlRow:
    group: tuple[str, ...]
    currency: str
    period: str
    period_start: str
    gross_realized: Decimal = ZERO
    commissions: Decimal = ZERO
    unrealized: Decimal = ZERO
    cash_flows: Decimal = ZERO
    cumulative: Decimal = ZERO

    @property
    def realized(self) -> Decimal:
        with exact():
            return self.gross_realized - self.commissions

    @property
    def total(self) -> Decimal:
        with exact():
            return self.gross_realized - self.commissions + self.unrealized + self.cash_flows


class PnlBook:
    """P&L per group, currency and period, added up as legs stream past (memory grows
    with the number of rows, not of legs)."""

    def __init__(self, sessions: Sessions, period: str | None) -> None:
        if period is not None:
            period_of(date(2000, 1, 1), period)  # refuse an unknown period now
        self.sessions = sessions
        self.period = period
        self._rows: dict[tuple[tuple[str, ...], str, str], PnlRow] = {}
        self._days: dict[date, tuple[str, str]] = {}

    def _row(self, group: tuple[str, ...], currency: str, ts: int) -> PnlRow:
        if self.period is None:
            label = start = ""
        else:
            day = self.sessions.day(ts)
            found = self._days.get(day)
            if found is None:
                found = self._days[day] = period_of(day, self.period)
            label, start = found
        key = (group, currency, label)
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = PnlRow(group, currency, label, start)
        return row

    def add_leg(self, leg: Leg) -> None:
        """Realized P&L on the leg's trading day in the trade's currency; the commission on
        the same day in its own currency (subtracted there)."""
        with exact():
            if leg.realized:
                row = self._row(leg.group, leg.currency, leg.ts)
                row.gross_realized += leg.realized
            if leg.commission:
                row = self._row(leg.group, leg.commission_currency, leg.ts)
                row.commissions += leg.commission

    def add_legs(self, legs: Iterable[Leg]) -> None:
        for leg in legs:
            self.add_leg(leg)

    def add_unrealized(
        self, group: tuple[str, ...], currency: str, ts: int, amount: Decimal
    ) -> None:
        """An open position's unrealized P&L at its mark, on the mark's trading day."""
        with exact():
            self._row(group, currency, ts).unrealized += amount

    def rows(self) -> list[PnlRow]:
        """Every row, by currency, group and period, with ``cumulative`` the running total
        of ``total`` over the group's periods in that currency."""
        ordered = sorted(self._rows.values(), key=lambda r: (r.currency, r.group, r.period))
        running: dict[tuple[str, tuple[str, ...]], Decimal] = {}
        with exact():
            for row in ordered:
                key = (row.currency, row.group)
                row.cumulative = running[key] = running.get(key, ZERO) + row.total
        return ordered


@dataclass(frozen=True, slots=True)
class TradeResult:
    """A closed trade as statistics see it."""

    strategy: str
    currency: str
    closed_at: int
    opened_at: int
    pnl: Decimal
    mae: Decimal | None = None
    mfe: Decimal | None = None


@dataclass(slots=True)
class Stats:
    """Statistics of one strategy's closed trades in one currency (docs/pnl.md)."""

    strategy: str
    currency: str
    trades: int = 0
    wins: int = 0
    losses: int = 0
    gross_profit: Decimal = ZERO
    gross_loss: Decimal = ZERO
    """The sum of the losing trades' P&L (zero or negative)."""
    net_pnl: Decimal = ZERO
    peak: Decimal = ZERO
    """The running maximum of cumulative realized P&L, starting from 0."""
    max_drawdown: Decimal = ZERO
    max_drawdown_pct: Decimal | None = None
    mae_sum: Decimal = ZERO
    mae_count: int = 0
    mfe_sum: Decimal = ZERO
    mfe_count: int = 0
    duration_ns: int = 0
    first_close: int | None = None
    last_close: int | None = None
    curve: list[tuple[int, Decimal, Decimal]] = field(default_factory=list)
    """(closed_at, cumulative P&L, drawdown) per trade when the book keeps curves, thinned
    (:func:`thin`) whenever it reaches twice :data:`CURVE_POINTS`."""

    def add(self, trade: TradeResult, keep_curve: bool = False) -> None:
        """The next trade in close order."""
        with exact():
            self.trades += 1
            if trade.pnl > 0:
                self.wins += 1
                self.gross_profit += trade.pnl
            elif trade.pnl < 0:
                self.losses += 1
                self.gross_loss += trade.pnl
            self.net_pnl += trade.pnl
            if self.net_pnl > self.peak:
                self.peak = self.net_pnl
            drawdown = self.peak - self.net_pnl
            if drawdown > self.max_drawdown:
                self.max_drawdown = drawdown
            if self.peak > 0:
                pct = q18(drawdown * _HUNDRED / self.peak)
                if self.max_drawdown_pct is None or pct > self.max_drawdown_pct:
                    self.max_drawdown_pct = pct
            if trade.mae is not None:
                self.mae_sum += trade.mae
                self.mae_count += 1
            if trade.mfe is not None:
                self.mfe_sum += trade.mfe
                self.mfe_count += 1
        self.duration_ns += max(trade.closed_at - trade.opened_at, 0)
        if self.first_close is None:
            self.first_close = trade.closed_at
        self.last_close = trade.closed_at
        if keep_curve:
            self.curve.append((trade.closed_at, self.net_pnl, drawdown))
            if len(self.curve) >= 2 * CURVE_POINTS:
                self.curve = thin(self.curve)

    @staticmethod
    def _mean(total: Decimal, count: int) -> Decimal | None:
        if not count:
            return None
        with exact():
            return q18(total / count)

    @property
    def breakeven(self) -> int:
        return self.trades - self.wins - self.losses

    @property
    def win_rate(self) -> Decimal | None:
        """Winning trades over all closed trades (a fraction: 0.5 is half)."""
        return self._mean(Decimal(self.wins), self.trades)

    @property
    def avg_win(self) -> Decimal | None:
        return self._mean(self.gross_profit, self.wins)

    @property
    def avg_loss(self) -> Decimal | None:
        """The mean losing trade (negative)."""
        return self._mean(self.gross_loss, self.losses)

    @property
    def profit_factor(self) -> Decimal | str | None:
        """Gross profit over the absolute gross loss; :data:`INFINITY` with wins and no
        loss; None with neither."""
        if self.gross_loss:
            with exact():
                return q18(self.gross_profit / -self.gross_loss)
        return INFINITY if self.gross_profit else None

    @property
    def expectancy(self) -> Decimal | None:
        """The mean net P&L per closed trade."""
        return self._mean(self.net_pnl, self.trades)

    @property
    def avg_mae(self) -> Decimal | None:
        return self._mean(self.mae_sum, self.mae_count)

    @property
    def avg_mfe(self) -> Decimal | None:
        return self._mean(self.mfe_sum, self.mfe_count)

    @property
    def avg_duration_seconds(self) -> Decimal | None:
        if not self.trades:
            return None
        with exact():
            return q18(Decimal(self.duration_ns) / (self.trades * _NS))

    def as_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "currency": self.currency,
            "trades": self.trades,
            "wins": self.wins,
            "losses": self.losses,
            "breakeven": self.breakeven,
            "win_rate": self.win_rate,
            "avg_win": self.avg_win,
            "avg_loss": self.avg_loss,
            "gross_profit": self.gross_profit,
            "gross_loss": self.gross_loss,
            "net_pnl": self.net_pnl,
            "profit_factor": self.profit_factor,
            "expectancy": self.expectancy,
            "max_drawdown": self.max_drawdown,
            "max_drawdown_pct": self.max_drawdown_pct,
            "avg_mae": self.avg_mae,
            "avg_mfe": self.avg_mfe,
            "avg_duration_seconds": self.avg_duration_seconds,
        }


class StatsBook:
    """Statistics per strategy and currency, trades added in close order."""

    def __init__(self, keep_curves: bool = False) -> None:
        self.keep_curves = keep_curves
        self._stats: dict[tuple[str, str], Stats] = {}

    def add(self, trade: TradeResult) -> None:
        key = (trade.strategy, trade.currency)
        found = self._stats.get(key)
        if found is None:
            found = self._stats[key] = Stats(trade.strategy, trade.currency)
        found.add(trade, self.keep_curves)

    def add_all(self, trades: Iterable[TradeResult]) -> None:
        for trade in trades:
            self.add(trade)

    def stats(self) -> list[Stats]:
        """By strategy, then currency."""
        return [self._stats[key] for key in sorted(self._stats)]
