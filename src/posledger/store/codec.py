"""Domain values <-> database rows: the store's one projection code.

Writing: :func:`rows` turns one change of a write set (``posledger.domain.writeset``) into
the row it writes, a tuple in the column order of :data:`COLUMNS`, given the journal number
of its entry. The SQL unit of work, the in-memory one and replay all write through it, so
they cannot disagree about what a decision stores. Amounts are canonical decimal text
(SQLite keeps them so; PostgreSQL and MariaDB take the text into ``NUMERIC(38, 18)``),
enums plain strings, times integer nanoseconds, flags booleans.

Reading: ``*_from_row`` build domain values from rows read back as dicts; :func:`dec`
gives one canonical Decimal whatever the database returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import msgspec

from ..domain.book import HaltState
from ..domain.decisions import Leg
from ..domain.enums import (
    CloseReason,
    Direction,
    ExitState,
    Intent,
    Kind,
    LotMethod,
    Mode,
    OrderType,
    PositionMode,
    PositionSide,
    ReconcilePolicy,
    Side,
)
from ..domain.exits import Bracket, ExitOrder
from ..domain.numbers import fmt
from ..domain.positions import Lot, Slot, SlotKey, Trade, commissions
from ..domain.refdata import (
    Account,
    BracketSpec,
    Distance,
    Instrument,
    Order,
    OrderSpec,
    Strategy,
)
from ..domain.writeset import (
    AddAccount,
    AddAdjustment,
    AddAnomalies,
    AddCheck,
    AddFill,
    AddInstrument,
    AddLegs,
    AddOrder,
    AddRejected,
    AddRun,
    AddStrategy,
    AddTransfer,
    Change,
    Command,
    JournalEntry,
    PutAccount,
    PutBracket,
    PutExit,
    PutHalt,
    PutMark,
    PutOrder,
    SettleCommand,
)
from . import schema as s

__all__ = ["COLUMNS", "KEYED", "Row", "command_row", "dec", "journal_row", "rows"]

Row = tuple[Any, ...]

COLUMNS: dict[str, tuple[str, ...]] = {
    table.name: tuple(
        c.name for c in table.columns if not (c.primary_key and c.autoincrement is True)
    )
    for table in s.metadata.sorted_tables
}
"""The columns each row tuple fills, in order (an auto-numbered key is left out)."""

KEYED: dict[str, tuple[str, ...]] = {
    "accounts": ("account",),
    "instruments": ("instrument",),
    "strategies": ("strategy",),
    "orders": ("client_order_id",),
    "slots": ("account", "instrument", "strategy", "position_side"),
    "trades": ("trade_id",),
    "marks": ("instrument",),
    "halts": ("account", "instrument"),
    "brackets": ("account", "instrument", "strategy", "position_side"),
    "exits": ("client_order_id",),
}
"""Tables whose rows are replaced as things change (the last write of a transaction wins);
every other table only grows."""


def dec(value: Any) -> Decimal:
    """An amount read back: servers return NUMERIC(38, 18) with trailing zeros, SQLite the
    canonical text; both become the same canonical Decimal, so that nothing written from
    a value read back (a message, a journal entry) depends on the database."""
    return Decimal(fmt(value)) if isinstance(value, Decimal) else Decimal(value)


def dec_opt(value: Any) -> Decimal | None:
    return None if value is None else dec(value)


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else fmt(value)


def _json(data: Any) -> str:
    return msgspec.json.encode(data).decode()


def encode_commissions(amounts: Mapping[str, Decimal]) -> str:
    return _json({ccy: fmt(amounts[ccy]) for ccy in sorted(amounts)})


def decode_commissions(text: str) -> dict[str, Decimal]:
    data = msgspec.json.decode(text)
    return {ccy: Decimal(amount) for ccy, amount in data.items()}


def encode_lots(lots: tuple[Lot, ...]) -> str | None:
    if not lots:
        return None
    return _json([[fmt(lot.quantity), fmt(lot.price)] for lot in lots])


def decode_lots(text: str | None) -> tuple[Lot, ...]:
    if not text:
        return ()
    return tuple(Lot(Decimal(q), Decimal(p)) for q, p in msgspec.json.decode(text))


def open_slot_key(key: SlotKey) -> str:
    return "\x1f".join((key.account, key.instrument, key.strategy, key.position_side))


# -- the rows a change writes -----------------------------------------------------------------

Keyed = tuple[str, Any, Row | None]
"""(table, key within the table or None for a growing table, row; None: the keyed row
is deleted)."""


def journal_row(entry: JournalEntry, seq: int, txid: str | None) -> Row:
    return (
        seq,
        entry.stream,
        entry.version,
        entry.kind,
        entry.recorded_at,
        entry.input,
        entry.effects,
        txid,
    )


def command_row(command: Command, seq: int, now: int) -> Row:
    return (
        command.command_id,
        seq,
        command.kind,
        command.account,
        command.instrument,
        command.strategy,
        command.payload,
        "pending",
        now,
        now,
        None,
        None,
        0,
        None,
        None,
    )


def _account(change: AddAccount | PutAccount, seq: int | None) -> Keyed:
    a = change.account
    row = (
        a.account,
        a.venue,
        str(a.mode),
        str(a.position_mode),
        str(a.lot_method),
        seq,
        str(a.reconcile_policy),
    )
    return "accounts", a.account, row


def _instrument(change: AddInstrument, seq: int | None) -> Keyed:
    i = change.instrument
    row = (
        i.instrument,
        str(i.kind),
        fmt(i.multiplier),
        i.quote_currency,
        i.settlement_currency,
        i.base_currency,
        _amount(i.tick_size),
        _amount(i.lot_size),
        i.inverse,
        i.negative_prices,
        seq,
    )
    return "instruments", i.instrument, row


def _strategy(change: AddStrategy, seq: int | None) -> Keyed:
    t = change.strategy
    row = (
        t.strategy,
        t.adopt_orphans,
        t.max_open_slots,
        seq,
        None if t.take_profit is None else str(t.take_profit),
        None if t.stop_loss is None else str(t.stop_loss),
    )
    return "strategies", t.strategy, row


def _order(change: AddOrder | PutOrder, seq: int | None) -> Keyed:
    o = change.order
    row = (
        o.client_order_id,
        o.account,
        o.strategy,
        o.instrument,
        str(o.side),
        fmt(o.quantity),
        str(o.intent),
        None if o.position_side is None else str(o.position_side),
        o.bracket_id,
        o.ts,
        str(change.status),
        seq,
        None if o.bracket is None else encode_bracket(o.bracket),
    )
    return "orders", o.client_order_id, row


def encode_bracket(spec: BracketSpec) -> str:
    return _json(spec.as_record())


def _order_spec(data: Mapping[str, str] | None) -> OrderSpec | None:
    if data is None:
        return None
    return OrderSpec(
        OrderType(data["order_type"]), dec_opt(data.get("price")), dec_opt(data.get("stop_price"))
    )


def decode_bracket(text: str | None) -> BracketSpec | None:
    if text is None:
        return None
    data = msgspec.json.decode(text)
    return BracketSpec(_order_spec(data.get("take_profit")), _order_spec(data.get("stop_loss")))


def _bracket(change: PutBracket, seq: int | None) -> Keyed:
    key = change.key
    pk = (key.account, key.instrument, key.strategy, str(key.position_side))
    b = change.bracket
    if b is None:
        return "brackets", pk, None
    tp, sl = b.spec.take_profit, b.spec.stop_loss
    row = (
        *pk,
        b.bracket_id,
        str(b.direction),
        None if tp is None else _amount(tp.price),
        None if sl is None else str(sl.order_type),
        None if sl is None else _amount(sl.stop_price),
        None if sl is None else _amount(sl.price),
        ",".join(b.failed),
        seq,
    )
    return "brackets", pk, row


def _exit(change: PutExit, seq: int | None) -> Keyed:
    e = change.exit
    if e is None:
        return "exits", (change.client_order_id,), None
    key, spec = e.key, e.spec
    row = (
        e.client_order_id,
        key.account,
        key.instrument,
        key.strategy,
        str(key.position_side),
        str(e.intent),
        str(e.side),
        fmt(e.quantity),
        fmt(e.filled),
        str(e.state),
        None if spec is None else str(spec.order_type),
        None if spec is None else _amount(spec.price),
        None if spec is None else _amount(spec.stop_price),
        e.bracket_id,
        fmt(e.confirmed),
        e.armed,
        seq,
    )
    return "exits", (e.client_order_id,), row


def _fill(change: AddFill, seq: int | None) -> Keyed:
    f = change.fill
    row = (
        f.account,
        f.exec_id,
        f.instrument,
        str(f.side),
        fmt(f.quantity),
        fmt(f.price),
        f.ts,
        f.client_order_id,
        change.strategy,
        str(change.position_side),
        None if change.intent is None else str(change.intent),
        fmt(f.commission),
        change.commission_currency,
        f.liquidation,
        seq,
        change.digest,
    )
    return "fills", None, row


def slot_row(slot: Slot, seq: int | None) -> Row:
    key = slot.key
    return (
        key.account,
        key.instrument,
        key.strategy,
        str(key.position_side),
        fmt(slot.quantity),
        _amount(slot.avg_entry),
        encode_lots(slot.lots),
        slot.trade_id,
        _amount(slot.last_price),
        seq,
    )


def _slot(slot: Slot, seq: int | None) -> Keyed:
    return "slots", slot.key, slot_row(slot, seq)


def trade_row(trade: Trade) -> Row:
    key = trade.key
    is_open = trade.closed_at is None
    return (
        trade.trade_id,
        key.account,
        key.instrument,
        key.strategy,
        str(key.position_side),
        str(trade.direction),
        "open" if is_open else "closed",
        open_slot_key(key) if is_open else None,
        trade.opened_at,
        trade.closed_at,
        trade.pnl_currency,
        fmt(trade.quantity),
        fmt(trade.peak_quantity),
        fmt(trade.avg_entry),
        fmt(trade.entry_quantity),
        _amount(trade.avg_exit),
        fmt(trade.exit_quantity),
        fmt(trade.gross_realized),
        fmt(trade.realized_pnl),
        encode_commissions(trade.commissions),
        _amount(trade.realized_return),
        None if trade.close_reason is None else str(trade.close_reason),
        _amount(trade.mae),
        _amount(trade.mfe),
        _amount(trade.mae_price),
        _amount(trade.mfe_price),
    )


def _trade(trade: Trade, seq: int | None) -> Keyed:
    return "trades", trade.trade_id, trade_row(trade)


def leg_rows(
    legs: tuple[Leg, ...], seq: int | None, account: str, exec_id: str | None, ts: int
) -> list[Row]:
    return [
        (
            leg.trade_id,
            seq,
            index,
            account,
            exec_id,
            str(leg.role),
            fmt(leg.quantity),
            fmt(leg.delta),
            fmt(leg.price),
            fmt(leg.commission),
            leg.commission_currency,
            fmt(leg.realized),
            leg.adjustment,
            ts,
            str(leg.source),
        )
        for index, leg in enumerate(legs)
    ]


def _anomaly_rows(change: AddAnomalies, seq: int | None) -> list[Row]:
    return [
        (
            seq,
            index,
            anomaly.kind,
            anomaly.key.account,
            anomaly.key.instrument,
            anomaly.key.strategy,
            str(anomaly.key.position_side),
            change.exec_id,
            fmt(anomaly.quantity),
            anomaly.detail,
        )
        for index, anomaly in enumerate(change.anomalies)
    ]


def _mark(change: PutMark, seq: int | None) -> Keyed:
    return "marks", change.instrument, (change.instrument, fmt(change.price), change.ts, seq)


def _halt(change: PutHalt, seq: int | None) -> Keyed:
    key = (change.account, change.instrument)
    halt = change.halt
    row = None if halt is None else (change.account, change.instrument, seq, halt.ts, halt.reason)
    return "halts", key, row


def _transfer(change: AddTransfer, seq: int | None) -> Keyed:
    t = change.transfer
    row = (
        seq,
        t.account,
        t.transfer_id,
        t.instrument,
        str(change.position_side),
        t.from_strategy,
        t.to_strategy,
        fmt(t.quantity),
        fmt(change.price),
        t.ts,
        change.origin,
        change.digest,
    )
    return "transfers", None, row


def _adjustment(change: AddAdjustment, seq: int | None) -> Keyed:
    rec = change.reconcile
    row = (
        seq,
        rec.run,
        rec.account,
        rec.instrument,
        str(rec.position_side),
        fmt(change.quantity),
        fmt(change.price),
        rec.ts,
    )
    return "adjustments", None, row


def _check(change: AddCheck, seq: int | None) -> Keyed:
    rec, check, orphan = change.reconcile, change.check, change.orphan
    row = (
        seq,
        rec.run,
        rec.account,
        rec.instrument,
        str(rec.position_side),
        str(check.kind),
        str(rec.policy),
        fmt(check.ledger_quantity),
        fmt(check.broker_quantity),
        _amount(check.ledger_avg_price),
        _amount(check.broker_avg_price),
        _json({strategy: fmt(quantity) for strategy, quantity in check.holders}),
        check.action,
        check.detail,
        None
        if orphan is None
        else _json(
            {
                "quantity": fmt(orphan.quantity),
                "strategy": orphan.strategy,
                "price": _amount(orphan.price),
                "detail": orphan.detail,
            }
        ),
        rec.ts,
    )
    return "reconciliation_checks", None, row


def _run(change: AddRun, seq: int | None) -> Keyed:
    return "reconciliation_runs", None, (change.run, seq, change.ts)


def _rejected(change: AddRejected, seq: int | None) -> Keyed:
    r = change.rejected
    return "rejected_inputs", None, (r.received_at, r.source, r.line_no, r.raw, r.reason, r.digest)


_ONE: dict[type, Callable[[Any, int | None], Keyed]] = {
    AddAccount: _account,
    PutAccount: _account,
    AddInstrument: _instrument,
    AddStrategy: _strategy,
    AddOrder: _order,
    PutOrder: _order,
    AddFill: _fill,
    Slot: _slot,
    Trade: _trade,
    PutMark: _mark,
    PutHalt: _halt,
    AddTransfer: _transfer,
    AddAdjustment: _adjustment,
    AddCheck: _check,
    AddRun: _run,
    AddRejected: _rejected,
    PutBracket: _bracket,
    PutExit: _exit,
}


KEY_OF: dict[type, tuple[str, Callable[[Any], Any]]] = {
    PutAccount: ("accounts", lambda change: change.account.account),
    PutOrder: ("orders", lambda change: change.order.client_order_id),
    Slot: ("slots", lambda slot: slot.key),
    Trade: ("trades", lambda trade: trade.trade_id),
    PutMark: ("marks", lambda change: change.instrument),
    PutHalt: ("halts", lambda change: (change.account, change.instrument)),
    PutBracket: (
        "brackets",
        lambda change: (*change.key[:3], str(change.key.position_side)),
    ),
    PutExit: ("exits", lambda change: (change.client_order_id,)),
}
"""The changes that replace a keyed row: the table and the row's key. Only the last of a
transaction's changes to one row needs a row built. (An ``Add...`` change inserts: the
row is new, and the database refuses a second one.)"""


def row(change: Change, seq: int | None) -> Row | None:
    """The row of a change that replaces a keyed row (None: the row is deleted)."""
    return _ONE[type(change)](change, seq)[2]


def rows(change: Change, seq: int | None) -> list[Keyed]:
    """The rows ``change`` writes when its entry is journal number ``seq``."""
    one = _ONE.get(type(change))
    if one is not None:
        return [one(change, seq)]
    if type(change) is AddLegs:
        assert isinstance(change, AddLegs)
        return [
            ("trade_fills", None, row)
            for row in leg_rows(change.legs, seq, change.account, change.exec_id, change.ts)
        ]
    if type(change) is AddAnomalies:
        assert isinstance(change, AddAnomalies)
        return [("anomalies", None, row) for row in _anomaly_rows(change, seq)]
    if type(change) is SettleCommand:
        return []  # the outbox is written by the unit of work as it stages the change
    raise TypeError(f"not a change: {type(change).__name__}")


# -- rows read back -----------------------------------------------------------------------


def account_from_row(row: Mapping[str, Any]) -> Account:
    return Account(
        account=row["account"],
        venue=row["venue"],
        mode=Mode(row["mode"]),
        position_mode=PositionMode(row["position_mode"]),
        lot_method=LotMethod(row["lot_method"]),
        reconcile_policy=ReconcilePolicy(row["reconcile_policy"]),
    )


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


def strategy_from_row(row: Mapping[str, Any]) -> Strategy:
    return Strategy(
        strategy=row["strategy"],
        adopt_orphans=bool(row["adopt_orphans"]),
        max_open_slots=row["max_open_slots"],
        take_profit=_distance(row.get("take_profit")),
        stop_loss=_distance(row.get("stop_loss")),
    )


def _distance(text: str | None) -> Distance | None:
    return None if text is None else Distance.parse(text)


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
        bracket=decode_bracket(row.get("bracket")),
    )


def bracket_from_row(row: Mapping[str, Any]) -> Bracket:
    tp = row["take_profit_price"]
    sl = row["stop_loss_type"]
    spec = BracketSpec(
        None if tp is None else OrderSpec(OrderType.LIMIT, dec(tp)),
        None
        if sl is None
        else OrderSpec(
            OrderType(sl), dec_opt(row["stop_loss_price"]), dec_opt(row["stop_loss_stop_price"])
        ),
    )
    failed = row["failed"]
    return Bracket(
        row["bracket_id"],
        slot_key_from_row(row),
        spec,
        Direction(row["direction"]),
        tuple(Intent(name) for name in failed.split(",")) if failed else (),
    )


def exit_from_row(row: Mapping[str, Any]) -> ExitOrder:
    kind = row["order_type"]
    return ExitOrder(
        client_order_id=row["client_order_id"],
        key=slot_key_from_row(row),
        intent=Intent(row["intent"]),
        side=Side(row["side"]),
        quantity=dec(row["quantity"]),
        state=ExitState(row["state"]),
        filled=dec(row["filled"]),
        spec=None
        if kind is None
        else OrderSpec(OrderType(kind), dec_opt(row["price"]), dec_opt(row["stop_price"])),
        bracket_id=row["bracket_id"],
        confirmed=dec(row["confirmed"]),
        armed=bool(row["armed"]),
    )


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
        commissions=commissions(decode_commissions(row["commissions"])),
        realized_return=dec_opt(row["realized_return"]),
        closed_at=row["closed_at"],
        close_reason=None if reason is None else CloseReason(reason),
        mae=dec_opt(row["mae"]),
        mfe=dec_opt(row["mfe"]),
        mae_price=dec_opt(row["mae_price"]),
        mfe_price=dec_opt(row["mfe_price"]),
    )


def halt_from_row(row: Mapping[str, Any]) -> HaltState:
    return HaltState(row["ts"], row["reason"])
