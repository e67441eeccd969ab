"""Who owns a fill (docs/accounting.md#who-owns-a-fill): ownership by evidence, never adoption."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from .enums import EXTERNAL, Intent, PositionSide
from .inputs import Fill
from .refdata import Account, InvalidInput, Order

__all__ = ["Attribution", "attribute"]


class Attribution(NamedTuple):
    strategy: str
    position_side: PositionSide
    intent: Intent | None
    """The intent of the registered order; None for fills without one."""


def attribute(
    fill: Fill,
    account: Account,
    order: Order | None,
    strategy_known: Callable[[str], bool],
) -> Attribution:
    """The registered order's strategy; else the fill's ``strategy``; else ``EXTERNAL``.

    Raises :class:`InvalidInput` when the fill contradicts its order or names a strategy
    the ledger does not know.
    """
    if order is not None:
        cid = order.client_order_id
        if order.account != fill.account:
            raise InvalidInput(
                f"order {cid} belongs to account {order.account}, not {fill.account}"
            )
        if order.instrument != fill.instrument:
            raise InvalidInput(
                f"order {cid} is for instrument {order.instrument}, not {fill.instrument}"
            )
        if order.side is not fill.side:
            raise InvalidInput(f"fill side {fill.side} contradicts order {cid} side {order.side}")
        if fill.strategy is not None and fill.strategy != order.strategy:
            raise InvalidInput(
                f"fill names strategy {fill.strategy} but order {cid} belongs to {order.strategy}"
            )
        if (
            fill.position_side is not None
            and order.position_side is not None
            and fill.position_side is not order.position_side
        ):
            raise InvalidInput(
                f"fill position_side {fill.position_side} contradicts order {cid} "
                f"position_side {order.position_side}"
            )
        side = fill.position_side if fill.position_side is not None else order.position_side
        return Attribution(order.strategy, account.resolve_position_side(side), order.intent)
    strategy = fill.strategy if fill.strategy is not None else EXTERNAL
    if strategy != EXTERNAL and not strategy_known(strategy):
        raise InvalidInput(f"unknown strategy {strategy}: register it before its fills")
    return Attribution(strategy, account.resolve_position_side(fill.position_side), None)
