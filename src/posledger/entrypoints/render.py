"""How the command line shows things to people: tables, summaries, progress.

JSON output needs none of this: it prints what the ledger's queries return.
"""

from __future__ import annotations

import sys
import time
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from ..domain.numbers import fmt

if TYPE_CHECKING:
    from ..service.ledger import IngestReport

__all__ = [
    "Progress",
    "anomalies_table",
    "commands_table",
    "console",
    "doctor_text",
    "halts_table",
    "human",
    "positions_table",
    "reconcile_table",
    "rejected_table",
    "summary_text",
    "trades_table",
    "transfers_table",
]


def console(stream: IO[str] | None = None) -> Console:
    target = stream or sys.stdout
    tty = target.isatty()
    return Console(file=target, width=None if tty else 250, highlight=False, soft_wrap=False)


class Progress:
    """Progress on stderr: a live line on a terminal, a plain line every 5 s otherwise."""

    def __init__(self, enabled: bool, what: str = "ingesting", unit: str = "lines") -> None:
        self.enabled = enabled
        self.what = what
        self.unit = unit
        self.tty = sys.stderr.isatty()
        self.start = time.monotonic()
        self.last = self.start
        self.lines = 0

    def tick(self, lines: int) -> None:
        self.lines = lines
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < (0.2 if self.tty else 5.0):
            return
        self.last = now
        rate = lines / max(now - self.start, 1e-9)
        text = f"{self.what}: {lines:,} {self.unit} ({rate:,.0f}/s)"
        if self.tty:
            click.echo(f"\r{text}", err=True, nl=False)
        else:
            click.echo(text, err=True)

    def done(self) -> None:
        if self.enabled and self.tty and self.last != self.start:
            click.echo("\r" + " " * 60 + "\r", err=True, nl=False)


def summary_text(report: IngestReport, source: str) -> str:
    lines = [
        f"{source}: {report.lines} lines: {report.applied} applied, "
        f"{report.duplicate} duplicate, {report.rejected} rejected"
    ]
    for number, reason in report.rejections:
        lines.append(f"  rejected line {number}: {reason}")
    return "\n".join(lines)


def human(value: str | None, places: int = 6) -> str:
    """An amount for a human table: at most ``places`` decimals (JSON keeps every digit)."""
    if value is None:
        return "-"
    amount = Decimal(value)
    if amount.as_tuple().exponent < -places:  # type: ignore[operator]
        amount = amount.quantize(Decimal(1).scaleb(-places))
    return fmt(amount)


def _percent(value: str | None) -> str:
    if value is None:
        return "-"
    return f"{(Decimal(value) * 100).quantize(Decimal('0.001'))}%"


def _when(value: str | None) -> str:
    return "-" if value is None else value.replace("T", " ")[:19]


def positions_table(rows: list[dict[str, Any]], title: str = "Positions") -> Table:
    table = Table(title=title, title_justify="left")
    for name, justify in [
        ("account", "left"),
        ("instrument", "left"),
        ("strategy", "left"),
        ("pos side", "left"),
        ("qty", "right"),
        ("avg entry", "right"),
        ("realized", "right"),
        ("unrealized", "right"),
        ("ccy", "left"),
        ("trade", "right"),
    ]:
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            row["account"],
            row["instrument"],
            row["strategy"],
            row["position_side"],
            row["signed_quantity"],
            human(row["avg_entry_price"]),
            human(row["realized_pnl"]),
            human(row["unrealized_pnl"]),
            row["pnl_currency"],
            str(row["trade_id"] or ""),
        )
    return table


def trades_table(rows: list[dict[str, Any]], title: str = "Trades") -> Table:
    table = Table(title=title, title_justify="left")
    for name, justify in [
        ("id", "right"),
        ("account", "left"),
        ("instrument", "left"),
        ("strategy", "left"),
        ("side", "left"),
        ("qty/peak", "right"),
        ("entry", "right"),
        ("exit", "right"),
        ("net p&l", "right"),
        ("ccy", "left"),
        ("return", "right"),
        ("opened", "left"),
        ("reason", "left"),
    ]:
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            str(row["trade_id"]),
            row["account"],
            row["instrument"],
            row["strategy"],
            row["side"],
            f"{row['quantity']}/{row['peak_quantity']}",
            human(row["avg_entry_price"]),
            human(row["avg_exit_price"]),
            human(row["realized_pnl"]),
            row["pnl_currency"],
            _percent(row["realized_return"]),
            _when(row["opened_at"]),
            row["close_reason"] or "",
        )
    return table


def anomalies_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Anomalies", title_justify="left")
    for name in ("seq", "kind", "account", "instrument", "strategy", "exec_id", "detail"):
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(
            str(row["seq"]),
            row["kind"],
            row["account"],
            row["instrument"],
            row["strategy"],
            row["exec_id"] or "",
            row["detail"],
        )
    return table


def rejected_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Rejected inputs", title_justify="left")
    for name in ("id", "received", "source", "line", "reason", "raw"):
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["received_at"],
            row["source"] or "",
            str(row["line"] or ""),
            row["reason"],
            row["raw"],
        )
    return table


def reconcile_table(checks: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("account", "instrument", "pos side", "ledger", "broker", "result", "action"):
        table.add_column(name, overflow="fold")
    table.add_column("detail", overflow="fold")
    for check in checks:
        result = check["kind"]
        table.add_row(
            check["account"],
            check["instrument"],
            check["position_side"],
            check["ledger_quantity"],
            check["broker_quantity"],
            result if result == "agree" else result.upper(),
            check["action"],
            check["detail"] + ("" if not check["orphan"] else f"; {check['orphan']['detail']}"),
        )
    return table


def halts_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Halts", title_justify="left")
    for name in ("account", "instrument", "since", "seq", "reason"):
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(
            row["account"], row["instrument"], row["since"], str(row["seq"]), row["reason"]
        )
    return table


def transfers_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Transfers", title_justify="left")
    for name in (
        "seq",
        "account",
        "instrument",
        "pos side",
        "from",
        "to",
        "qty",
        "price",
        "origin",
    ):
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(
            str(row["seq"]),
            row["account"],
            row["instrument"],
            row["position_side"],
            row["from_strategy"],
            row["to_strategy"],
            row["quantity"],
            row["price"],
            row["origin"],
        )
    return table


def doctor_text(findings: list[dict[str, Any]], checks_run: list[str]) -> str:
    errors = sum(1 for f in findings if f["severity"] == "error")
    warnings = sum(1 for f in findings if f["severity"] == "warning")
    lines = []
    for finding in findings:
        lines.append(f"{finding['severity'].upper():7} {finding['check']}: {finding['subject']}")
        lines.append(f"        {finding['detail']}")
    verdict = "ok" if not errors else "PROBLEMS FOUND"
    lines.append(
        f"doctor: {verdict}: {len(checks_run)} checks, {errors} errors, {warnings} warnings, "
        f"{len(findings) - errors - warnings} notes"
    )
    return "\n".join(lines)


def order_text(kind: str, payload: dict[str, Any]) -> str:
    """What a command asks for, in a few words."""
    if kind == "place":
        price = []
        if payload.get("stop_price") is not None:
            price.append(f"stop {payload['stop_price']}")
        if payload.get("price") is not None:
            price.append(f"limit {payload['price']}")
        return (
            f"{payload.get('side', '')} {payload.get('quantity', '')} "
            f"{' '.join(price) or payload.get('order_type', '')} ({payload.get('intent', '')})"
        ).strip()
    if kind == "amend":
        return f"{payload.get('client_order_id', '')} to {payload.get('quantity', '')}"
    return str(payload.get("client_order_id", ""))


def commands_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Outbox commands", title_justify="left")
    for name in ("command", "kind", "order", "status", "account", "instrument", "strategy"):
        table.add_column(name, overflow="fold")
    table.add_column("seq", justify="right")
    table.add_column("worker / lease")
    table.add_column("broker id / reason")
    for row in rows:
        lease = "" if row["worker"] is None else f"{row['worker']} until {row['lease_until']}"
        settled = row["broker_order_id"] or row["reason"] or ""
        table.add_row(
            row["command_id"],
            row["kind"],
            order_text(row["kind"], row["payload"]),
            row["status"],
            row["account"],
            row["instrument"],
            row["strategy"],
            str(row["seq"]),
            lease if row["status"] == "claimed" else (row["worker"] or ""),
            settled,
        )
    return table


def _leg_text(spec: dict[str, str] | None) -> str:
    if spec is None:
        return "-"
    if spec["order_type"] == "stop_limit":
        return f"stop {spec['stop_price']} limit {spec['price']}"
    if spec["order_type"] == "stop":
        return f"stop {spec['stop_price']}"
    return f"limit {spec['price']}"


def brackets_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Brackets", title_justify="left")
    for name in ("account", "instrument", "strategy", "side", "take-profit", "stop-loss", "legs"):
        table.add_column(name, overflow="fold")
    for row in rows:
        legs = ", ".join(
            f"{leg['intent']} {leg['remaining']} {leg['state']}" for leg in row["legs"]
        )
        if row["refused"]:
            legs += f" (refused: {', '.join(row['refused'])})"
        table.add_row(
            row["account"],
            row["instrument"],
            row["strategy"],
            f"{row['direction']} {row['position_side']}",
            _leg_text(row["take_profit"]),
            _leg_text(row["stop_loss"]),
            legs or "-",
        )
    return table


def watched_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="Watched exit orders", title_justify="left")
    for name in ("client order id", "account", "instrument", "strategy", "intent", "order"):
        table.add_column(name, overflow="fold")
    table.add_column("left", justify="right")
    table.add_column("state")
    for row in rows:
        spec = None
        if row["order_type"] is not None:
            spec = {k: row[k] for k in ("order_type", "price", "stop_price")}
        table.add_row(
            row["client_order_id"],
            row["account"],
            row["instrument"],
            row["strategy"],
            row["intent"],
            f"{row['side']} {_leg_text(spec) if spec else 'own order'}",
            row["remaining"],
            row["state"],
        )
    return table


def missing_exits_table(rows: list[dict[str, Any]], policy: str) -> Table:
    table = Table(title=f"Missing exits (policy {policy})", title_justify="left")
    for name in ("account", "instrument", "strategy", "pos side", "exit"):
        table.add_column(name, overflow="fold")
    table.add_column("qty", justify="right")
    for name in ("price", "at", "note"):
        table.add_column(name, overflow="fold")
    for row in rows:
        price = row["price"] if row["price"] is not None else row["stop_price"]
        table.add_row(
            row["account"],
            row["instrument"],
            row["strategy"],
            row["position_side"],
            f"{row['side']} {row['order_type']} ({row['intent']})",
            row["quantity"],
            price or "-",
            row["at"] or "now",
            row["note"],
        )
    if not rows:
        table.caption = "every open position is covered"
    return table
