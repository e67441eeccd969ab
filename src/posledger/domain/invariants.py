"""The invariants of docs/accounting.md#invariants, checked over a whole ledger's state.

Used by ``verify`` and by the tests; returns problems as text, never raises.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal

from .enums import EXTERNAL, Direction, Kind, PositionSide, Side
from .numbers import ZERO, exact, fmt
from .positions import Slot, SlotKey, Trade
from .refdata import Instrument

__all__ = ["Position3", "check_invariants", "fill_delta"]

Position3 = tuple[str, str, PositionSide]
"""(account, instrument, position_side): where the broker keeps one position."""


def fill_delta(
    side: Side,
    quantity: Decimal,
    commission: Decimal,
    commission_currency: str,
    instrument: Instrument,
) -> Decimal:
    """How much a fill changes the quantity held at the broker (docs/accounting.md)."""
    delta = quantity if side is Side.BUY else quantity.copy_negate()
    if instrument.kind is Kind.SPOT and commission_currency == instrument.base_currency:
        with exact():
            delta -= commission
    return delta


def check_invariants(
    slots: Iterable[Slot],
    open_trades: Iterable[Trade],
    fill_net: Mapping[Position3, Decimal],
    hedge_accounts: set[str],
) -> list[str]:
    with exact():
        return _check(slots, open_trades, fill_net, hedge_accounts)


def _check(
    slots: Iterable[Slot],
    open_trades: Iterable[Trade],
    fill_net: Mapping[Position3, Decimal],
    hedge_accounts: set[str],
) -> list[str]:
    problems: list[str] = []
    slot_sum: dict[Position3, Decimal] = defaultdict(lambda: ZERO)
    by_key: dict[SlotKey, Slot] = {}
    for slot in slots:
        key = slot.key
        by_key[key] = slot
        slot_sum[(key.account, key.instrument, key.position_side)] += slot.quantity
        if key.account in hedge_accounts and key.strategy != EXTERNAL:
            if key.position_side is PositionSide.LONG and slot.quantity < 0:
                problems.append(f"hedge LONG slot {_name(key)} is short {fmt(slot.quantity)}")
            if key.position_side is PositionSide.SHORT and slot.quantity > 0:
                problems.append(f"hedge SHORT slot {_name(key)} is long {fmt(slot.quantity)}")
        if slot.lots and sum((lot.quantity for lot in slot.lots), ZERO) != abs(slot.quantity):
            problems.append(f"slot {_name(key)} lots do not add up to its quantity")
    for where in sorted(set(slot_sum) | set(fill_net)):
        held = slot_sum.get(where, ZERO)
        net = fill_net.get(where, ZERO)
        if held != net:
            problems.append(
                f"conservation: slots on {where[0]}/{where[1]}/{where[2]} sum to {held} "
                f"but the fills applied there net {net}"
            )
    open_by_slot: dict[SlotKey, list[Trade]] = defaultdict(list)
    for trade in open_trades:
        open_by_slot[trade.key].append(trade)
    for key, trades in open_by_slot.items():
        if len(trades) > 1:
            ids = ", ".join(str(t.trade_id) for t in trades)
            problems.append(f"slot {_name(key)} has {len(trades)} open trades ({ids})")
    for key, slot in by_key.items():
        trades = open_by_slot.get(key, [])
        if not slot.quantity:
            if trades:
                problems.append(f"flat slot {_name(key)} has an open trade {trades[0].trade_id}")
            continue
        if not trades:
            problems.append(f"slot {_name(key)} holds {fmt(slot.quantity)} without an open trade")
            continue
        trade = trades[0]
        if trade.trade_id != slot.trade_id:
            problems.append(
                f"slot {_name(key)} points at trade {slot.trade_id}, open is {trade.trade_id}"
            )
        if trade.quantity != abs(slot.quantity):
            problems.append(
                f"trade {trade.trade_id} holds {trade.quantity}, "
                f"its slot {_name(key)} {fmt(slot.quantity)}"
            )
        want = Direction.LONG if slot.quantity > 0 else Direction.SHORT
        if trade.direction is not want:
            problems.append(f"trade {trade.trade_id} is {trade.direction}, its slot is {want}")
    for key in open_by_slot:
        if key not in by_key:
            problems.append(f"open trade on unknown slot {_name(key)}")
    return problems


def _name(key: SlotKey) -> str:
    return "/".join(str(part) for part in key)
