"""Positions and trades as the CLI's JSON contract describes them (DESIGN §7).

Every decimal is a string; absent values are ``None`` (JSON null).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from ..domain.enums import PositionSide
from ..domain.numbers import exact, fmt, fmt_opt
from ..domain.positions import Slot, SlotKey, unrealized
from ..domain.timestamps import format_ts
from ..store.codec import decode_commissions
from ..store.views import Filters, Views

__all__ = [
    "anomaly_views",
    "halt_views",
    "position_views",
    "reconciliation_views",
    "rejected_views",
    "trade_views",
    "transfer_views",
]


def _commissions(text: str | None) -> dict[str, str]:
    if text is None:
        return {}
    return {ccy: fmt(amount) for ccy, amount in decode_commissions(text).items()}


def position_views(views: Views, filters: Filters, include_flat: bool) -> list[dict[str, Any]]:
    out = []
    for row in views.slots(filters, include_flat):
        quantity: Decimal = row["quantity"]
        slot = Slot(
            SlotKey(
                row["account"],
                row["instrument"],
                row["strategy"],
                PositionSide(row["position_side"]),
            ),
            quantity,
            row["avg_entry"],
        )
        mark = row["mark_price"]
        if mark is None:
            open_pnl = None
        else:
            with exact():
                open_pnl = fmt(unrealized(slot, mark, row["multiplier"], bool(row["inverse"])))
        out.append(
            {
                "account": row["account"],
                "instrument": row["instrument"],
                "strategy": row["strategy"],
                "position_side": row["position_side"],
                "side": slot.direction.value,
                "quantity": fmt(quantity.copy_abs()),
                "signed_quantity": fmt(quantity),
                "avg_entry_price": fmt_opt(row["avg_entry"]),
                "realized_pnl": fmt_opt(row["realized_pnl"]) or "0",
                "unrealized_pnl": open_pnl,
                "commissions": _commissions(row["commissions"]),
                "pnl_currency": row["pnl_currency"] or row["settlement_currency"],
                "trade_id": row["trade_id"],
                "last_price": fmt_opt(row["last_price"]),
                "mark_price": fmt_opt(mark),
                "mark_ts": None if row["mark_ts"] is None else format_ts(row["mark_ts"]),
            }
        )
    return out


def _duration(row: dict[str, Any]) -> str | None:
    if row["closed_at"] is None:
        return None
    with exact():
        return fmt(Decimal(row["closed_at"] - row["opened_at"]).scaleb(-9))


def trade_views(
    views: Views, filters: Filters, status: str | None = None, with_fills: bool = True
) -> list[dict[str, Any]]:
    rows = views.trades(filters, status)
    legs = views.trade_fills([row["trade_id"] for row in rows]) if with_fills else {}
    out = []
    for row in rows:
        item: dict[str, Any] = {
            "trade_id": row["trade_id"],
            "account": row["account"],
            "instrument": row["instrument"],
            "strategy": row["strategy"],
            "position_side": row["position_side"],
            "side": row["direction"],
            "status": row["status"],
            "quantity": fmt(row["quantity"]),
            "peak_quantity": fmt(row["peak_quantity"]),
            "avg_entry_price": fmt(row["avg_entry"]),
            "avg_exit_price": fmt_opt(row["avg_exit"]),
            "realized_pnl": fmt(row["realized_pnl"]),
            "gross_realized_pnl": fmt(row["gross_realized"]),
            "commissions": _commissions(row["commissions"]),
            "pnl_currency": row["pnl_currency"],
            "realized_return": fmt_opt(row["realized_return"]),
            "opened_at": format_ts(row["opened_at"]),
            "closed_at": None if row["closed_at"] is None else format_ts(row["closed_at"]),
            "duration_seconds": _duration(row),
            "close_reason": row["close_reason"],
            "mae": fmt_opt(row["mae"]),
            "mfe": fmt_opt(row["mfe"]),
            "mae_price": fmt_opt(row["mae_price"]),
            "mfe_price": fmt_opt(row["mfe_price"]),
        }
        if with_fills:
            item["fills"] = [
                {
                    "exec_id": leg["exec_id"],
                    "source": leg["source"],
                    "seq": leg["seq"],
                    "role": leg["role"],
                    "quantity": fmt(leg["quantity"]),
                    "price": fmt(leg["price"]),
                    "commission": fmt(leg["commission"]),
                    "commission_currency": leg["commission_currency"],
                    "realized_pnl": fmt(leg["realized"]),
                    "ts": format_ts(leg["ts"]),
                    **({"adjustment": True} if leg["adjustment"] else {}),
                }
                for leg in legs.get(row["trade_id"], [])
            ]
        out.append(item)
    return out


def anomaly_views(views: Views, filters: Filters) -> list[dict[str, Any]]:
    return [
        {
            "seq": row["seq"],
            "kind": row["kind"],
            "account": row["account"],
            "instrument": row["instrument"],
            "strategy": row["strategy"],
            "position_side": row["position_side"],
            "exec_id": row["exec_id"],
            "quantity": fmt(row["quantity"]),
            "detail": row["detail"],
        }
        for row in views.anomalies(filters)
    ]


def rejected_views(views: Views) -> list[dict[str, Any]]:
    return [
        {
            "id": row["id"],
            "received_at": format_ts(row["received_at"]),
            "source": row["source"],
            "line": row["line_no"],
            "reason": row["reason"],
            "raw": row["raw"],
        }
        for row in views.rejected()
    ]


def halt_views(views: Views, filters: Filters) -> list[dict[str, Any]]:
    return [
        {
            "account": row["account"],
            "instrument": row["instrument"],
            "since": format_ts(row["ts"]),
            "reason": row["reason"],
            "seq": row["seq"],
        }
        for row in views.halts(filters)
    ]


def transfer_views(views: Views, filters: Filters) -> list[dict[str, Any]]:
    return [
        {
            "seq": row["seq"],
            "transfer_id": row["transfer_id"],
            "account": row["account"],
            "instrument": row["instrument"],
            "position_side": row["position_side"],
            "from_strategy": row["from_strategy"],
            "to_strategy": row["to_strategy"],
            "quantity": fmt(row["quantity"]),
            "price": fmt(row["price"]),
            "ts": format_ts(row["ts"]),
            "origin": row["origin"],
        }
        for row in views.transfers(filters)
    ]


def reconciliation_views(
    views: Views, filters: Filters, run: str | None, last: int | None
) -> list[dict[str, Any]]:
    rows = views.reconciliation_checks(filters, run, last)
    newest: dict[str, int] = {}
    for row in rows:
        newest[row["run"]] = max(newest.get(row["run"], row["seq"]), row["seq"])
    rows.sort(key=lambda row: (-newest[row["run"]], row["seq"]))
    out = []
    for row in rows:
        ledger: Decimal = row["ledger_quantity"]
        broker: Decimal = row["broker_quantity"]
        with exact():
            difference = broker - ledger
        out.append(
            {
                "run": row["run"],
                "recorded_at": format_ts(row["ts"]),
                "seq": row["seq"],
                "account": row["account"],
                "instrument": row["instrument"],
                "position_side": row["position_side"],
                "kind": row["kind"],
                "policy": row["policy"],
                "ledger_quantity": fmt(ledger),
                "broker_quantity": fmt(broker),
                "difference": fmt(difference),
                "ledger_avg_price": fmt_opt(row["ledger_avg_price"]),
                "broker_avg_price": fmt_opt(row["broker_avg_price"]),
                "holders": {
                    name: fmt(amount) for name, amount in decode_commissions(row["holders"]).items()
                },
                "action": row["action"],
                "detail": row["detail"],
                "orphan": None if row["orphan"] is None else msgspec.json.decode(row["orphan"]),
            }
        )
    return out
