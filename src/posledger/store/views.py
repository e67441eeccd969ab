"""The read side: plain queries over the projections, rows out as dicts of domain values."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, Table, func, select

from . import schema as s
from .database import Database

__all__ = ["Filters", "Views"]

Filters = dict[str, str | None]


def _filtered(query: Select[Any], table: Table, filters: Filters) -> Select[Any]:
    for name, value in filters.items():
        if value is None:
            continue
        if name == "mode":
            # LIVE, SIM and PAPER accounts side by side: a mode is the accounts it has.
            accounts = select(s.accounts.c.account).where(s.accounts.c.mode == value)
            query = query.where(table.c.account.in_(accounts))
        else:
            query = query.where(table.c[name] == value)
    return query


class Views:
    def __init__(self, database: Database) -> None:
        self.database = database

    def _rows(self, query: Select[Any]) -> list[dict[str, Any]]:
        with self.database.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def slots(self, filters: Filters, include_flat: bool) -> list[dict[str, Any]]:
        sl, tr, mk = s.slots, s.trades, s.marks
        query = (
            select(
                sl,
                tr.c.realized_pnl,
                tr.c.commissions,
                tr.c.pnl_currency,
                mk.c.price.label("mark_price"),
                mk.c.ts.label("mark_ts"),
                s.instruments.c.multiplier,
                s.instruments.c.inverse,
                s.instruments.c.settlement_currency,
            )
            .join(tr, tr.c.trade_id == sl.c.trade_id, isouter=True)
            .join(mk, mk.c.instrument == sl.c.instrument, isouter=True)
            .join(s.instruments, s.instruments.c.instrument == sl.c.instrument)
            .order_by(sl.c.account, sl.c.instrument, sl.c.strategy, sl.c.position_side)
        )
        rows = self._rows(_filtered(query, sl, filters))
        if not include_flat:
            rows = [row for row in rows if row["quantity"]]
        return rows

    def trades(self, filters: Filters, status: str | None = None) -> list[dict[str, Any]]:
        """Trades in the order they were opened: by the journal number of their first fill
        (trade ids are unique but, with several writers, not allocated in that order)."""
        tr, tf = s.trades, s.trade_fills
        opened = select(func.min(tf.c.seq)).where(tf.c.trade_id == tr.c.trade_id).scalar_subquery()
        query = _filtered(select(tr).order_by(opened, tr.c.trade_id), tr, filters)
        if status is not None:
            query = query.where(tr.c.status == status)
        return self._rows(query)

    def trade_fills(self, trade_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        tf = s.trade_fills
        result: dict[int, list[dict[str, Any]]] = {trade_id: [] for trade_id in trade_ids}
        for start in range(0, len(trade_ids), 500):
            chunk = trade_ids[start : start + 500]
            query = (
                select(tf)
                .where(tf.c.trade_id.in_(chunk))
                .order_by(tf.c.trade_id, tf.c.seq, tf.c.leg)
            )
            for row in self._rows(query):
                result[row["trade_id"]].append(row)
        return result

    def rejected(self) -> list[dict[str, Any]]:
        table = s.rejected_inputs
        return self._rows(select(table).order_by(table.c.id))

    def anomalies(self, filters: Filters) -> list[dict[str, Any]]:
        table = s.anomalies
        query = select(table).order_by(table.c.seq, table.c.idx)
        return self._rows(_filtered(query, table, filters))

    def table(self, table: Table) -> Iterator[dict[str, Any]]:
        """Every row of a table in primary-key order (for verify)."""
        order = list(table.primary_key.columns)
        with self.database.engine.connect() as conn:
            result = conn.execution_options(yield_per=2000).execute(select(table).order_by(*order))
            for row in result:
                yield dict(row._mapping)

    def journal(self) -> Iterator[dict[str, Any]]:
        yield from self.table(s.journal)

    def reconciliation_checks(
        self, filters: Filters, run: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Reconciliation checks, newest run first (``limit`` runs), keys in order."""
        table = s.reconciliation_checks
        query = _filtered(select(table), table, filters)
        if run is not None:
            query = query.where(table.c.run == run)
        elif limit is not None:
            runs = (
                select(table.c.run, func.max(table.c.seq).label("last"))
                .group_by(table.c.run)
                .order_by(func.max(table.c.seq).desc())
                .limit(limit)
            )
            picked = [row["run"] for row in self._rows(_filtered(runs, table, filters))]
            query = query.where(table.c.run.in_(picked))
        return self._rows(query.order_by(table.c.seq.desc()))

    def halts(self, filters: Filters) -> list[dict[str, Any]]:
        table = s.halts
        query = select(table).order_by(table.c.account, table.c.instrument)
        return self._rows(_filtered(query, table, filters))

    def transfers(self, filters: Filters) -> list[dict[str, Any]]:
        table = s.transfers
        return self._rows(_filtered(select(table).order_by(table.c.seq), table, filters))
