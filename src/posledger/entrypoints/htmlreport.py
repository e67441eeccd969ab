"""The HTML report (``posledger report``): one self-contained page, plotly's JavaScript
inside it, nothing fetched from a network when it is opened (docs/pnl.md, The report).

Charts draw amounts as floating-point numbers (what a browser plots); every table shows the
exact decimals, rounded for reading as the command line's tables are.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..domain.numbers import fmt
from ..domain.pnl import CURVE_POINTS, thin
from ..service.reporting import SCATTER_POINTS, ReportData, stats_view
from .reporting import _human, _percent, stats_cells

if TYPE_CHECKING:
    from ..service.ledger import Ledger

__all__ = ["build_report", "render_report"]

_CONFIG = {"displaylogo": False, "responsive": True}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f2f2f2; } p.note { color: #555; }
.chart { min-height: 420px; }
"""


def _e(value: object) -> str:
    """Text escaped for HTML, and for plotly's labels, which read a few tags (``<b>``,
    ``<a href>``) and the entities."""
    return html.escape(str(value), quote=True)


def _f(value: Decimal) -> float:
    """An amount for a chart (a chart plots floats; tables keep the decimals)."""
    return float(value)


def _table(headers: list[str], rows: list[list[str]], numeric_from: int) -> str:
    head = "".join(f"<th>{_e(name)}</th>" for name in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="n">{_e(cell)}</td>' if index >= numeric_from else f"<td>{_e(cell)}</td>"
            for index, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class _Figures:
    """Figures as HTML divs; plotly's JavaScript is put inside the first one."""

    def __init__(self) -> None:
        self.count = 0

    def div(self, figure: go.Figure, name: str) -> str:
        self.count += 1
        text: str = figure.to_html(
            full_html=False,
            include_plotlyjs=self.count == 1,
            include_mathjax=False,
            div_id=f"chart-{self.count}-{name}",
            config=_CONFIG,
        )
        return f'<div class="chart" data-chart="{_e(name)}">{text}</div>'


def render_report(data: ReportData, title: str = "posledger report") -> str:
    """The page for ``data`` (every text escaped)."""
    sessions = data.window.sessions

    def when(ns: int) -> str:
        return sessions.local(ns).strftime("%Y-%m-%d %H:%M:%S")

    figures = _Figures()
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="note">Times and trading days in {_e(sessions.tz)}, sessions starting at '
        f"{sessions.start.strftime('%H:%M')}; {data.closed} closed trades in the window. "
        "Amounts of different currencies are never added: each currency has its own charts."
        "</p>",
    ]
    currencies = sorted({s.currency for s in data.stats} | {row["currency"] for row in data.daily})
    if not currencies:
        parts.append('<p class="note">Nothing to show: no trades in this window.</p>')
    for currency in currencies:
        parts.append(f"<h2>{_e(currency)}</h2>")
        # Equity curve and drawdown per strategy.
        equity = make_subplots(
            rows=2,
            cols=1,
            shared_xaxes=True,
            row_heights=[0.7, 0.3],
            vertical_spacing=0.06,
            subplot_titles=("realized equity (closed trades)", "drawdown"),
        )
        for found in data.stats:
            if found.currency != currency:
                continue
            curve = thin(found.curve, CURVE_POINTS)
            if curve:  # the curve starts from 0, at the first close
                curve = [(curve[0][0], Decimal(0), Decimal(0)), *curve]
            x = [when(point[0]) for point in curve]
            equity.add_trace(
                go.Scatter(
                    x=x,
                    y=[_f(point[1]) for point in curve],
                    mode="lines+markers",
                    name=_e(found.strategy),
                    legendgroup=found.strategy,
                ),
                row=1,
                col=1,
            )
            equity.add_trace(
                go.Scatter(
                    x=x,
                    y=[-_f(point[2]) for point in curve],
                    mode="lines",
                    fill="tozeroy",
                    name=f"{_e(found.strategy)} drawdown",
                    legendgroup=found.strategy,
                    showlegend=False,
                ),
                row=2,
                col=1,
            )
        equity.update_layout(title=f"Equity curve per strategy ({_e(currency)})", height=520)
        parts.append(figures.div(equity, f"equity-{currency}"))
        # P&L by trading day.
        daily = go.Figure()
        strategies = sorted({row["strategy"] for row in data.daily if row["currency"] == currency})
        for name in strategies:
            days = [r for r in data.daily if r["currency"] == currency and r["strategy"] == name]
            daily.add_trace(
                go.Bar(
                    x=[row["period"] for row in days],
                    y=[_f(Decimal(row["total"])) for row in days],
                    name=_e(name),
                )
            )
        daily.update_layout(
            title=f"P&amp;L by trading day ({_e(currency)}; realized net, with unrealized on the "
            "mark's day)",
            barmode="relative",
            xaxis={"type": "category", "categoryorder": "category ascending"},
            height=420,
        )
        parts.append(figures.div(daily, f"daily-{currency}"))
        # MAE/MFE scatter.
        scatter = go.Figure()
        points = [p for p in data.scatter if p["currency"] == currency]
        for name in sorted({p["strategy"] for p in points}):
            mine = [p for p in points if p["strategy"] == name]
            scatter.add_trace(
                go.Scatter(
                    x=[_f(p["mae"]) for p in mine],
                    y=[_f(p["mfe"]) for p in mine],
                    mode="markers",
                    name=_e(name),
                    text=[f"trade {p['trade_id']}: {fmt(p['pnl'])}" for p in mine],
                    marker={"color": ["#2a9d8f" if p["pnl"] > 0 else "#e76f51" for p in mine]},
                )
            )
        scatter.update_layout(
            title=f"MAE / MFE per closed trade ({_e(currency)}; at most {SCATTER_POINTS} latest)",
            xaxis_title="MAE",
            yaxis_title="MFE",
            height=420,
        )
        parts.append(figures.div(scatter, f"maemfe-{currency}"))
    # Statistics.
    parts.append("<h2>Statistics of closed trades</h2>")
    if data.stats:
        headers = [
            "strategy",
            "ccy",
            "trades",
            "win rate",
            "avg win",
            "avg loss",
            "profit factor",
            "expectancy",
            "net p&l",
            "max dd",
            "max dd %",
            "avg MAE",
            "avg MFE",
            "avg duration",
        ]
        parts.append(_table(headers, [stats_cells(stats_view(s)) for s in data.stats], 2))
    else:
        parts.append('<p class="note">No closed trades.</p>')
    # Trades.
    parts.append("<h2>Closed trades</h2>")
    shown = len(data.trades)
    if shown < data.closed:
        parts.append(
            f'<p class="note">The latest {shown} of {data.closed} closed trades, newest first '
            "(--max-trades).</p>"
        )
    headers = [
        "id",
        "strategy",
        "account",
        "instrument",
        "side",
        "peak qty",
        "entry",
        "exit",
        "net p&l",
        "ccy",
        "return",
        "opened",
        "closed",
        "reason",
        "MAE",
        "MFE",
    ]
    rows: list[list[str]] = []
    for row in data.trades:
        rows.append(
            [
                str(row["trade_id"]),
                row["strategy"],
                row["account"],
                row["instrument"],
                row["direction"],
                fmt(row["peak_quantity"]),
                _human(fmt(row["avg_entry"])),
                _human(None if row["avg_exit"] is None else fmt(row["avg_exit"])),
                _human(fmt(row["realized_pnl"])),
                row["pnl_currency"],
                _percent(None if row["realized_return"] is None else fmt(row["realized_return"])),
                when(row["opened_at"]),
                when(row["closed_at"]),
                row["close_reason"] or "",
                _human(None if row["mae"] is None else fmt(row["mae"])),
                _human(None if row["mfe"] is None else fmt(row["mfe"])),
            ]
        )
    parts.append(_table(headers, rows, 5) if rows else '<p class="note">No closed trades.</p>')
    parts.append(
        f'<p class="note">Written {_e(datetime.now(sessions.zone).strftime("%Y-%m-%d %H:%M"))}'
        f" ({_e(sessions.tz)}).</p></body></html>"
    )
    return "\n".join(parts)


def build_report(
    ledger: Ledger,
    *,
    max_trades: int = 500,
    progress: Callable[[int], None] | None = None,
    **window: Any,
) -> tuple[str, str]:
    """The page and a one-line summary of what it holds."""
    data = ledger.report_data(max_trades=max_trades, progress=progress, **window)
    page = render_report(data)
    strategies = len({found.strategy for found in data.stats})
    return page, f"{data.closed} closed trades, {strategies} strategies"
