"""Domain values <-> database rows.

Rows here are plain dicts keyed by column name holding *domain* values (Decimal, int,
str, bool). The writer converts amounts for its driver; SQLAlchemy's :class:`Amount` type
does the same for Core queries.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec

from ..domain.book import HaltState
from ..domain.enums import (
    EXTERNAL,
    CloseReason,
    Direction,
    Intent,
    Kind,
    LotMethod,
    Mode,
    OrderStatus,
    PositionMode,
    PositionSide,
    ReconcilePolicy,
    Side,
)
from ..domain.events import FillDecision, Leg, MarkDecision, ReconcileDecision, TransferDecision
from ..domain.inputs import Transfer
from ..domain.numbers import fmt
from ..domain.positions import Lot, Slot, SlotKey, Trade
from ..domain.refdata import Account, Instrument, Order, Strategy
from ..service.unit_of_work import Rejected

Row = dict[str, Any]


def dec(value: Any) -> Decimal:
    """An amount read back: servers return NUMERIC(38, 18) with trailing zeros, SQLite the
    canonical text; both become the same canonical Decimal, so that nothing written from
    a value read back (a message, a journal entry) depends on the database."""
    return Decimal(fmt(value)) if isinstance(value, Decimal) else Decimal(value)


def dec_opt(value: Any) -> Decimal | None:
    return None if value is None else dec(value)


def encode_commissions(commissions: Mapping[str, Decimal]) -> str:
    return msgspec.json.encode({ccy: fmt(commissions[ccy]) for ccy in sorted(commissions)}).decode()


def decode_commissions(text: str) -> dict[str, Decimal]:
    data = msgspec.json.decode(text)
    return {ccy: Decimal(amount) for ccy, amount in data.items()}


def encode_lots(lots: tuple[Lot, ...]) -> str | None:
    if not lots:
        return None
    return msgspec.json.encode([[fmt(lot.quantity), fmt(lot.price)] for lot in lots]).decode()


def decode_lots(text: str | None) -> tuple[Lot, ...]:
    if not text:
        return ()
    return tuple(Lot(Decimal(q), Decimal(p)) for q, p in msgspec.json.decode(text))


def open_slot_key(key: SlotKey) -> str:
    return "\x1f".join((key.account, key.instrument, key.strategy, key.position_side))


# -- reference data -------------------------------------------------------------------


def account_row(account: Account, seq: int) -> Row:
    return {
        "account": account.account,
        "venue": account.venue,
        "mode": account.mode,
        "position_mode": account.position_mode,
        "lot_method": account.lot_method,
        "seq": seq,
        "reconcile_policy": account.reconcile_policy,
    }


def account_from_row(row: Mapping[str, Any]) -> Account:
    return Account(
        account=row["account"],
        venue=row["venue"],
        mode=Mode(row["mode"]),
        position_mode=PositionMode(row["position_mode"]),
        lot_method=LotMethod(row["lot_method"]),
        reconcile_policy=ReconcilePolicy(row["reconcile_policy"]),
    )


def instrument_row(instrument: Instrument, seq: int) -> Row:
    return {
        "instrument": instrument.instrument,
        "kind": instrument.kind,
        "multiplier": instrument.multiplier,
        "quote_currency": instrument.quote_currency,
        "settlement_currency": instrument.settlement_currency,
        "base_currency": instrument.base_currency,
        "tick_size": instrument.tick_size,
        "lot_size": instrument.lot_size,
        "inverse": instrument.inverse,
        "allow_negative_prices": instrument.negative_prices,
        "seq": seq,
    }


def instrument_from_row(row: Mapping[str, Any]) -> Instrument:
    return Instrument(
        instrument=row["instrument"],
        kind=Kind(row["kind"]),
        multiplier=dec(row["multiplier"]),
        quote_currency=row["quote_currency"],
        settlement_currency=row["settlement_currency"],
        base_currency=row["base_currency"],
        tick_size=dec_opt(row["tick_size"]),
        lot_size=dec_opt(row["lot_size"]),
        inverse=bool(row["inverse"]),
        allow_negative_prices=bool(row["allow_negative_prices"]),
    )


def strategy_row(strategy: Strategy, seq: int) -> Row:
    return {
        "strategy": strategy.strategy,
        "adopt_orphans": strategy.adopt_orphans,
        "max_open_slots": strategy.max_open_slots,
        "seq": seq,
    }


def strategy_from_row(row: Mapping[str, Any]) -> Strategy:
    return Strategy(
        strategy=row["strategy"],
        adopt_orphans=bool(row["adopt_orphans"]),
        max_open_slots=row["max_open_slots"],
    )


def order_row(order: Order, status: OrderStatus, seq: int) -> Row:
    return {
        "client_order_id": order.client_order_id,
        "account": order.account,
        "strategy": order.strategy,
        "instrument": order.instrument,
        "side": order.side,
        "quantity": order.quantity,
        "intent": order.intent,
        "position_side": None if order.position_side is None else order.position_side,
        "bracket_id": order.bracket_id,
        "ts": order.ts,
        "status": status,
        "seq": seq,
    }


def order_from_row(row: Mapping[str, Any]) -> Order:
    side = row["position_side"]
    return Order(
        client_order_id=row["client_order_id"],
        account=row["account"],
        strategy=row["strategy"],
        instrument=row["instrument"],
        side=Side(row["side"]),
        quantity=dec(row["quantity"]),
        intent=Intent(row["intent"]),
        position_side=None if side is None else PositionSide(side),
        bracket_id=row["bracket_id"],
        ts=row["ts"],
    )


# -- projections ----------------------------------------------------------------------


def slot_row(slot: Slot, seq: int) -> Row:
    key = slot.key
    return {
        "account": key.account,
        "instrument": key.instrument,
        "strategy": key.strategy,
        "position_side": key.position_side,
        "quantity": slot.quantity,
        "avg_entry": slot.avg_entry,
        "lots": encode_lots(slot.lots),
        "trade_id": slot.trade_id,
        "last_price": slot.last_price,
        "seq": seq,
    }


def slot_key_from_row(row: Mapping[str, Any]) -> SlotKey:
    return SlotKey(
        row["account"], row["instrument"], row["strategy"], PositionSide(row["position_side"])
    )


def slot_from_row(row: Mapping[str, Any]) -> Slot:
    return Slot(
        key=slot_key_from_row(row),
        quantity=dec(row["quantity"]),
        avg_entry=dec_opt(row["avg_entry"]),
        lots=decode_lots(row["lots"]),
        trade_id=row["trade_id"],
        last_price=dec_opt(row["last_price"]),
    )


def trade_row(trade: Trade) -> Row:
    key = trade.key
    return {
        "trade_id": trade.trade_id,
        "account": key.account,
        "instrument": key.instrument,
        "strategy": key.strategy,
        "position_side": key.position_side,
        "direction": trade.direction,
        "status": "open" if trade.is_open else "closed",
        "open_slot": open_slot_key(key) if trade.is_open else None,
        "opened_at": trade.opened_at,
        "closed_at": trade.closed_at,
        "pnl_currency": trade.pnl_currency,
        "quantity": trade.quantity,
        "peak_quantity": trade.peak_quantity,
        "avg_entry": trade.avg_entry,
        "entry_quantity": trade.entry_quantity,
        "avg_exit": trade.avg_exit,
        "exit_quantity": trade.exit_quantity,
        "gross_realized": trade.gross_realized,
        "realized_pnl": trade.realized_pnl,
        "commissions": encode_commissions(trade.commissions),
        "realized_return": trade.realized_return,
        "close_reason": None if trade.close_reason is None else trade.close_reason,
        "mae": trade.mae,
        "mfe": trade.mfe,
        "mae_price": trade.mae_price,
        "mfe_price": trade.mfe_price,
    }


def trade_from_row(row: Mapping[str, Any]) -> Trade:
    reason = row["close_reason"]
    return Trade(
        trade_id=row["trade_id"],
        key=slot_key_from_row(row),
        direction=Direction(row["direction"]),
        opened_at=row["opened_at"],
        pnl_currency=row["pnl_currency"],
        quantity=dec(row["quantity"]),
        peak_quantity=dec(row["peak_quantity"]),
        avg_entry=dec(row["avg_entry"]),
        entry_quantity=dec(row["entry_quantity"]),
        avg_exit=dec_opt(row["avg_exit"]),
        exit_quantity=dec(row["exit_quantity"]),
        gross_realized=dec(row["gross_realized"]),
        commissions=decode_commissions(row["commissions"]),
        realized_return=dec_opt(row["realized_return"]),
        closed_at=row["closed_at"],
        close_reason=None if reason is None else CloseReason(reason),
        mae=dec_opt(row["mae"]),
        mfe=dec_opt(row["mfe"]),
        mae_price=dec_opt(row["mae_price"]),
        mfe_price=dec_opt(row["mfe_price"]),
    )


# -- the rows a decision writes --------------------------------------------------------


def fill_row(decision: FillDecision, seq: int, digest: str) -> Row:
    fill = decision.fill
    return {
        "account": fill.account,
        "exec_id": fill.exec_id,
        "instrument": fill.instrument,
        "side": fill.side,
        "quantity": fill.quantity,
        "price": fill.price,
        "ts": fill.ts,
        "client_order_id": fill.client_order_id,
        "strategy": decision.strategy,
        "position_side": decision.position_side,
        "intent": None if decision.intent is None else decision.intent,
        "commission": fill.commission,
        "commission_currency": decision.commission_currency,
        "liquidation": fill.liquidation,
        "seq": seq,
        "digest": digest,
    }


def trade_fill_rows(decision: FillDecision, seq: int) -> list[Row]:
    fill = decision.fill
    return leg_rows(decision.legs, seq, fill.account, fill.exec_id, fill.ts)


def leg_rows(legs: list[Leg], seq: int, account: str, exec_id: str | None, ts: int) -> list[Row]:
    return [
        {
            "trade_id": leg.trade_id,
            "seq": seq,
            "leg": index,
            "account": account,
            "exec_id": exec_id,
            "role": leg.role,
            "quantity": leg.quantity,
            "delta": leg.delta,
            "price": leg.price,
            "commission": leg.commission,
            "commission_currency": leg.commission_currency,
            "realized": leg.realized,
            "adjustment": leg.adjustment,
            "ts": ts,
            "source": leg.source,
        }
        for index, leg in enumerate(legs)
    ]


def anomaly_rows(decision: FillDecision, seq: int) -> list[Row]:
    return [
        {
            "seq": seq,
            "idx": index,
            "kind": anomaly.kind,
            "account": anomaly.key.account,
            "instrument": anomaly.key.instrument,
            "strategy": anomaly.key.strategy,
            "position_side": anomaly.key.position_side,
            "exec_id": decision.fill.exec_id,
            "quantity": anomaly.quantity,
            "detail": anomaly.detail,
        }
        for index, anomaly in enumerate(decision.anomalies)
    ]


def mark_row(decision: MarkDecision, seq: int) -> Row:
    return {
        "instrument": decision.mark.instrument,
        "price": decision.mark.price,
        "ts": decision.ts,
        "seq": seq,
    }


def rejected_row(rejected: Rejected) -> Row:
    return {
        "received_at": rejected.received_at,
        "source": rejected.source,
        "line_no": rejected.line_no,
        "raw": rejected.raw,
        "reason": rejected.reason,
        "digest": rejected.digest,
    }


# -- ownership and reconciliation -----------------------------------------------------


def transfer_rows(decision: TransferDecision, seq: int, digest: str | None) -> dict[str, list[Row]]:
    """Rows of every table a transfer writes (besides slots and trades)."""
    transfer = decision.transfer
    assert transfer.ts is not None
    row = _transfer_row(transfer, seq, decision.position_side, decision.price, "transfer", digest)
    return {
        "transfers": [row],
        "trade_fills": leg_rows(decision.legs, seq, transfer.account, None, transfer.ts),
    }


def _transfer_row(
    transfer: Transfer,
    seq: int,
    position_side: PositionSide,
    price: Decimal,
    origin: str,
    digest: str | None,
) -> Row:
    return {
        "seq": seq,
        "account": transfer.account,
        "transfer_id": transfer.transfer_id,
        "instrument": transfer.instrument,
        "position_side": position_side,
        "from_strategy": transfer.from_strategy,
        "to_strategy": transfer.to_strategy,
        "quantity": transfer.quantity,
        "price": price,
        "ts": transfer.ts,
        "origin": origin,
        "digest": digest,
    }


def reconcile_rows(decision: ReconcileDecision, seq: int) -> dict[str, list[Row]]:
    """Rows of every table one reconciliation check writes (besides slots and trades)."""
    rec, check = decision.reconcile, decision.check
    orphan = decision.orphan
    rows: dict[str, list[Row]] = {
        "reconciliation_checks": [
            {
                "seq": seq,
                "run": rec.run,
                "account": rec.account,
                "instrument": rec.instrument,
                "position_side": rec.position_side,
                "kind": check.kind,
                "policy": rec.policy,
                "ledger_quantity": check.ledger_quantity,
                "broker_quantity": check.broker_quantity,
                "ledger_avg_price": check.ledger_avg_price,
                "broker_avg_price": check.broker_avg_price,
                "holders": msgspec.json.encode(
                    {strategy: fmt(quantity) for strategy, quantity in check.holders}
                ).decode(),
                "action": check.action,
                "detail": check.detail,
                "orphan": None
                if orphan is None
                else msgspec.json.encode(
                    {
                        "quantity": fmt(orphan.quantity),
                        "strategy": orphan.strategy,
                        "price": None if orphan.price is None else fmt(orphan.price),
                        "detail": orphan.detail,
                    }
                ).decode(),
                "ts": rec.ts,
            }
        ],
        "trade_fills": leg_rows(decision.legs, seq, rec.account, None, rec.ts),
    }
    if decision.adjustment is not None:
        assert decision.adjustment_price is not None
        rows["adjustments"] = [
            {
                "seq": seq,
                "run": rec.run,
                "account": rec.account,
                "instrument": rec.instrument,
                "position_side": rec.position_side,
                "quantity": decision.adjustment,
                "price": decision.adjustment_price,
                "ts": rec.ts,
            }
        ]
    if orphan is not None and orphan.strategy is not None:
        assert orphan.price is not None
        adopted = Transfer(
            account=rec.account,
            instrument=rec.instrument,
            from_strategy=EXTERNAL,
            to_strategy=orphan.strategy,
            quantity=orphan.quantity.copy_abs(),
            position_side=rec.position_side,
            price=orphan.price,
            ts=rec.ts,
        )
        row = _transfer_row(adopted, seq, rec.position_side, orphan.price, "adopt_orphans", None)
        rows["transfers"] = [row]
    return rows


def halt_row(account: str, instrument: str, halt: HaltState, seq: int) -> Row:
    return {
        "account": account,
        "instrument": instrument,
        "seq": seq,
        "ts": halt.ts,
        "reason": halt.reason,
    }


def halt_from_row(row: Mapping[str, Any]) -> HaltState:
    return HaltState(row["ts"], row["reason"])
