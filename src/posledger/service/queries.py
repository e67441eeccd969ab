"""Positions and trades as the CLI's JSON contract describes them (docs/format.md).

Every decimal is a string; absent values are ``None`` (JSON null).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import msgspec

from ..domain.brackets import PlannedExit
from ..domain.enums import PositionSide
from ..domain.exits import Bracket, ExitOrder
from ..domain.numbers import exact, fmt, fmt_opt
from ..domain.positions import Slot, SlotKey, unrealized
from ..domain.refdata import OrderSpec
from ..domain.timestamps import format_ts
from ..ports import CommandRow, Filters, JournalRow, Reads, Window

__all__ = [
    "LISTINGS",
    "anomaly_views",
    "bracket_views",
    "command_views",
    "exit_view",
    "halt_views",
    "journal_views",
    "listing_views",
    "parse_sort",
    "planned_views",
    "position_views",
    "reconciliation_views",
    "reference_views",
    "rejected_views",
    "trade_views",
    "transfer_views",
]


def _amounts(text: str | None) -> dict[str, str]:
    """A JSON object of amounts by name (a trade's commissions by currency, a check's
    holders by strategy), canonical."""
    if text is None:
        return {}
    data: dict[str, str] = msgspec.json.decode(text)
    return {name: fmt(Decimal(amount)) for name, amount in data.items()}


def position_views(reads: Reads, filters: Filters, include_flat: bool) -> list[dict[str, Any]]:
    return [position_view(row) for row in reads.slots(filters, include_flat)]


def position_view(row: dict[str, Any]) -> dict[str, Any]:
    """One slot row as a ``positions --json`` object."""
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
    return {
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
        "commissions": _amounts(row["commissions"]),
        "pnl_currency": row["pnl_currency"] or row["settlement_currency"],
        "trade_id": row["trade_id"],
        "last_price": fmt_opt(row["last_price"]),
        "mark_price": fmt_opt(mark),
        "mark_ts": None if row["mark_ts"] is None else format_ts(row["mark_ts"]),
    }


def _duration(row: dict[str, Any]) -> str | None:
    if row["closed_at"] is None:
        return None
    with exact():
        return fmt(Decimal(row["closed_at"] - row["opened_at"]).scaleb(-9))


def trade_views(
    reads: Reads, filters: Filters, status: str | None = None, with_fills: bool = True
) -> list[dict[str, Any]]:
    rows = reads.trades(filters, status)
    legs = reads.trade_fills([row["trade_id"] for row in rows]) if with_fills else {}
    return [trade_view(row, legs.get(row["trade_id"], []) if with_fills else None) for row in rows]


def trade_view(row: dict[str, Any], legs: list[dict[str, Any]] | None) -> dict[str, Any]:
    """One trade row as a ``trades --json`` object; with ``fills`` unless ``legs`` is None."""
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
        "commissions": _amounts(row["commissions"]),
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
    if legs is not None:
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
            for leg in legs
        ]
    return item


def anomaly_views(reads: Reads, filters: Filters) -> list[dict[str, Any]]:
    return [anomaly_view(row) for row in reads.anomalies(filters)]


def anomaly_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
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


def rejected_views(reads: Reads) -> list[dict[str, Any]]:
    return [rejected_view(row) for row in reads.rejected()]


def rejected_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "received_at": format_ts(row["received_at"]),
        "source": row["source"],
        "line": row["line_no"],
        "reason": row["reason"],
        "raw": row["raw"],
    }


def halt_views(reads: Reads, filters: Filters) -> list[dict[str, Any]]:
    return [
        {
            "account": row["account"],
            "instrument": row["instrument"],
            "since": format_ts(row["ts"]),
            "reason": row["reason"],
            "seq": row["seq"],
        }
        for row in reads.halts(filters)
    ]


def transfer_views(reads: Reads, filters: Filters) -> list[dict[str, Any]]:
    return [transfer_view(row) for row in reads.transfers(filters)]


def transfer_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
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


def reconciliation_views(
    reads: Reads, filters: Filters, run: str | None, last: int | None
) -> list[dict[str, Any]]:
    rows = reads.reconciliation_checks(filters, run, last)
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
                "holders": _amounts(row["holders"]),
                "action": row["action"],
                "detail": row["detail"],
                "orphan": None if row["orphan"] is None else msgspec.json.decode(row["orphan"]),
            }
        )
    return out


def command_views(rows: list[CommandRow]) -> list[dict[str, Any]]:
    """Outbox commands as JSON-able objects (times ISO 8601, the payload decoded)."""
    return [
        {
            "command_id": row.command_id,
            "kind": row.kind,
            "status": row.status,
            "account": row.account,
            "instrument": row.instrument,
            "strategy": row.strategy,
            "payload": msgspec.json.decode(row.payload),
            "seq": row.seq,
            "created_at": format_ts(row.created_at),
            "updated_at": format_ts(row.updated_at),
            "worker": row.worker,
            "lease_until": None if row.lease_until is None else format_ts(row.lease_until),
            "attempts": row.attempts,
            "broker_order_id": row.broker_order_id,
            "reason": row.reason,
        }
        for row in rows
    ]


def journal_views(rows: list[JournalRow]) -> list[dict[str, Any]]:
    """Journal entries as JSON-able objects (input and effects decoded)."""
    return [
        {
            "seq": row.seq,
            "stream": row.stream,
            "version": row.version,
            "kind": row.kind,
            "recorded_at": format_ts(row.recorded_at),
            "input": msgspec.json.decode(row.input),
            "effects": msgspec.json.decode(row.effects),
            "key_id": row.key_id,
        }
        for row in rows
    ]


def _spec(spec: OrderSpec | None) -> dict[str, str] | None:
    return None if spec is None else spec.as_record()


def bracket_views(brackets: list[Bracket], exits: list[ExitOrder]) -> list[dict[str, Any]]:
    """Each slot's bracket with its legs as they stand (docs/brackets.md)."""
    legs: dict[tuple[SlotKey, str], list[dict[str, Any]]] = {}
    for found in exits:
        if found.bracket_id is not None and found.leg:
            legs.setdefault((found.key, found.bracket_id), []).append(exit_view(found))
    return [
        {
            "account": b.key.account,
            "instrument": b.key.instrument,
            "strategy": b.key.strategy,
            "position_side": b.key.position_side.value,
            "bracket_id": b.bracket_id,
            "direction": b.direction.value,
            "take_profit": _spec(b.spec.take_profit),
            "stop_loss": _spec(b.spec.stop_loss),
            "refused": [intent.value for intent in b.failed],
            "legs": legs.get((b.key, b.bracket_id), []),
        }
        for b in brackets
    ]


def exit_view(found: ExitOrder) -> dict[str, Any]:
    spec = found.spec
    return {
        "client_order_id": found.client_order_id,
        "account": found.key.account,
        "instrument": found.key.instrument,
        "strategy": found.key.strategy,
        "position_side": found.key.position_side.value,
        "intent": found.intent.value,
        "side": found.side.value,
        "state": found.state.value,
        "quantity": fmt(found.quantity),
        "filled": fmt(found.filled),
        "remaining": fmt(found.remaining),
        "order_type": None if spec is None else spec.order_type.value,
        "price": None if spec is None else fmt_opt(spec.price),
        "stop_price": None if spec is None else fmt_opt(spec.stop_price),
        "bracket_id": found.bracket_id,
        "leg": found.leg,
    }


def planned_views(planned: list[PlannedExit]) -> list[dict[str, Any]]:
    """Missing exits as JSON-able objects."""
    return [
        {
            "account": p.key.account,
            "instrument": p.key.instrument,
            "strategy": p.key.strategy,
            "position_side": p.key.position_side.value,
            "side": p.side.value,
            "quantity": fmt(p.quantity),
            "intent": p.intent.value,
            "order_type": p.order_type.value,
            "price": fmt_opt(p.price),
            "stop_price": fmt_opt(p.stop_price),
            "at": None if p.at is None else format_ts(p.at),
            "note": p.note,
        }
        for p in planned
    ]


# -- listings: filters, a time window, an order, a limit, one row at a time ---------------


class Listing(msgspec.Struct, frozen=True):
    """What a listing of the command line reads (docs/cli.md#listings)."""

    rows: str
    """The :meth:`Reads.listing` it reads."""
    time: str | None
    """The field ``--since``/``--until`` bound (None: they do not apply)."""
    time_column: str | None
    sorts: dict[str, str]
    """``--sort`` fields (the JSON names) and the row columns they sort by."""


def _names(*names: str) -> dict[str, str]:
    return {name: name for name in names}


LISTINGS: dict[str, Listing] = {
    "positions": Listing(
        "slots",
        None,
        None,
        {
            **_names("account", "instrument", "strategy", "position_side", "trade_id"),
            "signed_quantity": "quantity",
            "avg_entry_price": "avg_entry",
            "last_price": "last_price",
        },
    ),
    "trades": Listing(
        "trades",
        "opened_at",
        "opened_at",
        {
            **_names(
                "trade_id",
                "account",
                "instrument",
                "strategy",
                "position_side",
                "status",
                "quantity",
                "peak_quantity",
                "realized_pnl",
                "realized_return",
                "opened_at",
                "closed_at",
                "close_reason",
                "mae",
                "mfe",
            ),
            "side": "direction",
            "avg_entry_price": "avg_entry",
            "avg_exit_price": "avg_exit",
            "gross_realized_pnl": "gross_realized",
        },
    ),
    "anomalies": Listing(
        "anomalies",
        None,
        None,
        _names("seq", "kind", "account", "instrument", "strategy", "quantity"),
    ),
    "rejected": Listing(
        "rejected",
        "received_at",
        "received_at",
        {**_names("id", "received_at", "source", "reason"), "line": "line_no"},
    ),
    "transfers": Listing(
        "transfers",
        "ts",
        "ts",
        _names(
            "seq",
            "ts",
            "account",
            "instrument",
            "from_strategy",
            "to_strategy",
            "quantity",
            "price",
            "origin",
        ),
    ),
}


def parse_sort(listing: str, fields: list[str] | tuple[str, ...]) -> tuple[tuple[str, bool], ...]:
    """``--sort`` fields (``name`` ascending, ``-name`` descending) as row columns; an
    unknown field raises ValueError naming the fields there are."""
    spec = LISTINGS[listing]
    out = []
    for text in fields:
        for part in text.split(","):
            name = part.strip()
            descending = name.startswith("-")
            name = name.lstrip("-+").strip().lower()
            if name not in spec.sorts:
                raise ValueError(
                    f"{listing} cannot be sorted by {part.strip()!r}; "
                    f"sort fields: {', '.join(sorted(spec.sorts))} (-field: descending)"
                )
            out.append((spec.sorts[name], descending))
    return tuple(out)


def listing_views(
    reads: Reads,
    listing: str,
    filters: Filters,
    *,
    since: int | None = None,
    until: int | None = None,
    sort: tuple[tuple[str, bool], ...] = (),
    limit: int | None = None,
    include_flat: bool = False,
    status: str | None = None,
    with_fills: bool = False,
) -> Iterator[dict[str, Any]]:
    """The objects of a ``--json`` listing, one at a time, read in bounded memory."""
    spec = LISTINGS[listing]
    if (since is not None or until is not None) and spec.time_column is None:
        raise ValueError(f"{listing} have no time: --since and --until do not apply")
    window = Window(spec.time_column, since, until, sort, limit)
    options: dict[str, Any] = {}
    if listing == "positions":
        options["include_flat"] = include_flat
    if listing == "trades":
        options.update(status=status, with_fills=with_fills)
    rows = reads.listing(spec.rows, filters, window, **options)
    if listing == "positions":
        return (position_view(row) for row in rows)
    if listing == "trades":
        return (trade_view(row, row["fills"] if with_fills else None) for row in rows)
    view = {"anomalies": anomaly_view, "rejected": rejected_view, "transfers": transfer_view}
    return (view[listing](row) for row in rows)


_REFERENCE = {"account": "accounts", "instrument": "instruments", "strategy": "strategies"}


def reference_views(reads: Reads, kind: str) -> list[dict[str, Any]]:
    """Registered accounts, instruments or strategies (``kind``), by name: the fields of
    their JSONL records (docs/format.md), and ``seq``, the journal entry that registered
    them (or last changed them)."""
    out = []
    for row in reads.table(_REFERENCE[kind]):
        item: dict[str, Any] = {}
        for name, value in row.items():
            if isinstance(value, Decimal):
                item[name] = fmt(value)
            elif name in ("inverse", "allow_negative_prices", "adopt_orphans"):
                item[name] = bool(value)
            else:
                item[name] = value
        out.append(item)
    return sorted(out, key=lambda item: str(item[kind]))
